"""Streamlit glue shared by the pages: cached loaders, the model picker, figures.

Not a page: Streamlit makes a page of every ``pages/*.py`` but ignores subfolders, so
this module lives in ``pages/common/`` and is only imported. Everything heavy is cached: models with
``st.cache_resource``, arrays with ``st.cache_data``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mie_core import audio as mie_audio
from mie_core import evaluation, maps, trials, workbench
from mie_core.jobs import Job, JobRunner
from mie_core.gm import FAMILIES

COLOUR_BY = {"family": "instrument_family_str", "source": "instrument_source_str", "playing style": "playing_style",
             "soundfont": "soundfont", "pitch": "pitch", "velocity": "velocity"}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363"]


# (script, sidebar label, icon, what it is for): the sidebar's navigation and the Home page's list.
# Streamlit's own navigation is switched off (.streamlit/config.toml) because it names Home "app".
PAGES = [
    ("app.py", "Home", ":material/home:", "what the workbench is, the models and the corpus"),
    ("pages/1_Verify.py", "Verify", ":material/mic:", "enrol an instrument and test notes"),
    ("pages/8_My_instruments.py", "My instruments", ":material/library_music:",
     "your enrolled instruments, kept; score many clips"),
    ("pages/2_Filter_bands.py", "Filter bands", ":material/graphic_eq:", "what the sinc filters learned"),
    ("pages/3_Embedding_map.py", "Embedding map", ":material/scatter_plot:", "t-SNE / UMAP of unseen instruments"),
    ("pages/4_Benchmark.py", "Benchmark", ":material/monitoring:", "EER, DET, significance"),
    ("pages/5_Probing.py", "Probing", ":material/biotech:", "what the embeddings know"),
    ("pages/6_Mel_vs_CQT.py", "Mel vs CQT", ":material/compare:", "the two front-ends side by side"),
    ("pages/7_Training_runs.py", "Training runs", ":material/show_chart:", "loss and validation EER"),
]


def kept(key: str) -> str:
    """``key`` for a widget whose value should survive a visit to another page.

    Streamlit forgets the value of a widget that a run does not draw (leaving a page, or a
    fragment's run, resets the page's choices). :func:`page_setup` copies the values of the
    kept keys aside at the start of every page run and puts them back when Streamlit has
    dropped them. Only for value widgets (not buttons, uploaders or charts).
    """
    st.session_state.setdefault("_kept_keys", set()).add(key)
    return key


def forget(key: str) -> None:
    """Drop a kept widget's value (the widget starts from its default again)."""
    st.session_state.pop(key, None)
    st.session_state.get("_kept_values", {}).pop(key, None)


def _restore_kept() -> None:
    saved = st.session_state.setdefault("_kept_values", {})
    for key in st.session_state.get("_kept_keys", ()):
        if key in st.session_state:
            saved[key] = st.session_state[key]
        if key in saved:
            # set in this run (also when unchanged), so the browser is sent the value with the widget
            st.session_state[key] = saved[key]


def page_setup(title: str, tab: str | None = None) -> None:
    """Wide layout, the browser tab's title, the sidebar's navigation and the page title."""
    st.set_page_config(page_title=f"{tab or title} · instrument embeddings", page_icon=":material/music_note:",
                       layout="wide")
    _restore_kept()
    for script, label, icon, _ in PAGES:
        st.sidebar.page_link(script, label=label, icon=icon)
    st.sidebar.divider()
    st.title(title)


# ---------------------------------------------------------------- cached loaders
@st.cache_resource(show_spinner="Loading the model ...")
def verifier(path: str):
    """The model of a checkpoint with its scoring back-end and instrument centroids
    (:func:`mie_core.verify.load_verifier`), loaded once per server (torch is imported
    here, not at start-up, so pages without a model open fast)."""
    from mie_core.verify import load_verifier

    v = load_verifier(path, precision=embed_precision())
    # the first forward pass sets up the convolution kernels (about a second); do it now,
    # not on the user's first upload
    v.embed([np.zeros(16000, dtype=np.float32)])
    return v


def encoder(path: str):
    """The InstrumentEncoder of a checkpoint (the one :func:`verifier` holds)."""
    return verifier(path).encoder


MAX_UPLOAD_S = 60.0  # mie_core.audio's default limit, said before an upload


def with_calibration(backend, calibration):
    """A copy of a back-end with another calibration (the user's own)."""
    from dataclasses import replace

    return replace(backend, calibration=tuple(calibration))


PRIORS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
PART_NAMES = {"test": "clean renders of unseen instruments", "wet": "the same through unseen rooms, microphones, "
              "noise and codecs", "real": "real recordings (tonejs-instruments)"}


def verdict_rates(model: str) -> pd.DataFrame | None:
    """How often the calibrated verdict (prior 50 %) was right, per evaluation part, from the cache."""
    rows = []
    for part, res in benchmark().get("parts", {}).items():
        c = res.get("models", {}).get(model, {}).get("calibrated")
        if c and part in PART_NAMES:
            rows.append({"measured on": PART_NAMES[part], "genuine accepted": f"{100 * (1 - c['p_miss']):.1f} %",
                         "impostors rejected": f"{100 * (1 - c['p_fa']):.1f} %",
                         "instruments": res.get("n_instruments"), "trials": res["n_target"] + res["n_nontarget"]})
    return pd.DataFrame(rows) if rows else None


def parts_summary() -> pd.DataFrame | None:
    """EER per model and part (clean / wet / real), raw and AS-norm, and the calibrated verdict's
    error rates, from the cache's benchmark results."""
    parts = benchmark().get("parts", {})
    rows = []
    for part in ("test", "wet", "real"):
        res = parts.get(part)
        if not res:
            continue
        for name, m in res["models"].items():
            c = m.get("calibrated", {})
            rows.append({"part": PART_NAMES[part], "model": name, "EER raw (%)": round(100 * m["eer"], 2),
                         "EER AS-norm (%)": round(100 * m["asnorm"]["eer"], 2) if "asnorm" in m else None,
                         "Cllr": round(c["cllr"], 3) if c else None,
                         "genuine accepted (%)": round(100 * (1 - c["p_miss"]), 1) if c else None,
                         "impostors rejected (%)": round(100 * (1 - c["p_fa"]), 1) if c else None,
                         "instruments": res["n_instruments"]})
    return pd.DataFrame(rows) if rows else None


def instrument_note(info_row) -> dict:
    """A playable note (MIDI 60, velocity 100) of a corpus instrument from its centroid's labels."""
    r = dict(info_row)
    return {"soundfont": r["soundfont"], "bank": int(r.get("bank", 0)), "program": int(r["program"]), "pitch": 60,
            "velocity": 100, "gain_db": float(r.get("gain_db", 0.0)), "instrument_str": r.get("instrument_str")}


@st.cache_resource
def cache() -> workbench.Cache:
    return workbench.Cache()


def models() -> list[workbench.ModelEntry]:
    return _models(str(workbench.cache_dir()), str(workbench.runs_dir()))


def broken_models() -> list[tuple[str, str]]:
    """(folder, reason) of checkpoints whose model.json cannot be read (listed, never fatal)."""
    return _scan(str(workbench.cache_dir()), str(workbench.runs_dir()))[1]


@st.cache_data(ttl=30, show_spinner=False)
def _models(cache_path: str, runs_path: str) -> list[workbench.ModelEntry]:
    return _scan(cache_path, runs_path)[0]


@st.cache_data(ttl=30, show_spinner=False)
def _scan(cache_path: str, runs_path: str) -> tuple[list, list]:
    broken: list = []
    return workbench.find_models(Path(cache_path), Path(runs_path), broken), broken


@st.cache_data(show_spinner=False)
def notes(part: str = "test") -> pd.DataFrame:
    return cache().notes(part)


@st.cache_data(show_spinner=False)
def benchmark() -> dict:
    return cache().benchmark()


@st.cache_data(show_spinner=False)
def all_notes() -> pd.DataFrame:
    """Test and valid notes in one table, in the order of :func:`centroids`' embeddings."""
    return pd.concat([notes("test"), notes("valid")], ignore_index=True)


@st.cache_resource
def jobs() -> JobRunner:
    """The server's background jobs (one runner for every session, so a job started in one
    browser tab is joined, not repeated, by another)."""
    return JobRunner()


def await_job(job: Job):
    """The job's result when it is done; else a progress bar that follows it, and the page
    stops here until it ends (the job goes on if the user leaves the page)."""
    if job.state == "done":
        return job.result
    if job.state == "failed":
        raise RuntimeError(f"{job.label} failed: {job.error}") from job.error
    _follow(job)
    st.stop()


@st.fragment(run_every=1.0)
def _follow(job: Job) -> None:
    if job.state != "running":
        st.rerun()  # the whole page, now with the result
    text = (f"{job.label}: {job.message or 'working'} ({job.elapsed_s:.0f} s). It runs in the background: "
            "use the other pages meanwhile; this one picks the result up when it is done.")
    if job.fraction is None:  # a job that cannot say how far it is (a t-SNE fit): the time it has taken
        st.info(text, icon=":material/hourglass_top:")
    else:
        st.progress(job.fraction, text=text)


def embeddings(entry: workbench.ModelEntry, part: str = "test") -> np.ndarray:
    """(n, d) embeddings of the evaluation notes: the cache's, or for a model without any
    (a run trained here), rendered and embedded in a background job (minutes; then saved)."""
    if entry.shipped and cache().has_embeddings(entry.name, part):
        return _shipped_embeddings(entry.name, part)
    precision = embed_precision()
    key = ("embed", str(entry.path), _stamp(entry.path), part, precision)
    job = jobs().submit(key, workbench.embed_part, entry, notes(part), precision=precision, part=part,
                        label=f"Embedding the {part} notes with {entry.name} (once)")
    return await_job(job)


def _stamp(path: Path) -> int:
    """When a checkpoint's weights were written (a run's ``best`` is rewritten while it trains)."""
    weights = path / "model.safetensors" if path.is_dir() else path
    return weights.stat().st_mtime_ns if weights.exists() else 0


@st.cache_data(show_spinner=False)
def _shipped_embeddings(name: str, part: str) -> np.ndarray:
    return cache().embeddings(name, part)


def embeddings_parquet(entry: workbench.ModelEntry, part: str = "test") -> bytes:
    """Metadata and embeddings of the notes as Parquet bytes (for a download button)."""
    import io

    emb = embeddings(entry, part)
    table = notes(part).copy()
    table["embedding"] = list(emb.astype(np.float32))
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def centroids(name: str, path: str, shipped: bool):
    """Per-instrument mean embeddings of the test and valid notes (see ``workbench.instrument_centroids``)."""
    entry = workbench.ModelEntry(name, Path(path), shipped)
    for part in ("test", "valid"):
        embeddings(entry, part)  # computed (with progress) first if need be
    return _centroids(name, path, shipped, _stamp(Path(path)))


@st.cache_data(show_spinner=False)
def _centroids(name: str, path: str, shipped: bool, stamp: int):
    entry = workbench.ModelEntry(name, Path(path), shipped)
    emb = np.concatenate([embeddings(entry, "test"), embeddings(entry, "valid")])
    return workbench.instrument_centroids(emb, all_notes())


def map_coords(name: str, path: str, shipped: bool, method: str, perplexity: float = 30.0,
               n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """(n, 2) map of a model's test embeddings: the cache's for the shipped models' default
    parameters, else fitted in a background job (t-SNE of 7,090 notes: about a minute)."""
    default = (perplexity == 30.0) if method == "tsne" else (n_neighbors == 15 and min_dist == 0.1)
    if shipped and default:
        c = _shipped_map(name, method)
        if c is not None:
            return c
    emb = embeddings(workbench.ModelEntry(name, Path(path), shipped), "test")
    params = dict(perplexity=perplexity, n_neighbors=n_neighbors, min_dist=min_dist)
    key = ("map", path, _stamp(Path(path)), method, tuple(sorted(params.items())))
    job = jobs().submit(key, _fit_coords, emb, method, params, label=f"Computing the {method.upper()} map of {name}")
    return await_job(job)


def _fit_coords(emb: np.ndarray, method: str, params: dict, progress) -> np.ndarray:
    progress(0, 0, f"{method.upper()} of {len(emb)} notes")
    return maps.fit_map(emb, method, seed=0, **params).coords


@st.cache_data(show_spinner=False)
def _shipped_map(name: str, method: str) -> np.ndarray | None:
    return cache().map_coords(name, method)


def embed_precision() -> str:
    """Embed uploads and runs as the cache was embedded ("bf16" autocast or "fp32"), so scores
    compare; on a CPU without native bf16 the same autocast runs, only slower."""
    b = benchmark()
    return b.get("precision") or ("bf16" if b.get("embed_bf16") else "fp32")


def embed_bf16() -> bool:
    return embed_precision() == "bf16"


@st.cache_data(show_spinner=False, max_entries=64)
def play(row_dict: dict) -> bytes:
    """WAV bytes of a corpus note rendered on demand."""
    return mie_audio.to_wav_bytes(workbench.play_note(row_dict))


# ---------------------------------------------------------------- verification
def verification(names: tuple, paths: tuple, shipped: tuple, part: str = "test", **protocol) -> dict:
    """The paper's protocol for several models on identical trials (cached by its inputs).

    ``protocol``: ``evaluation.compare_models``' ``n_enroll``, ``n_target``, ``n_nontarget``,
    ``n_draws`` and ``seed``; those not given are the paper's (its defaults), as in the cache.
    """
    for n, p, s in zip(names, paths, shipped):
        embeddings(workbench.ModelEntry(n, Path(p), s), part)  # computed (with progress) first if need be
    stamps = tuple(_stamp(Path(p)) for p in paths)
    return _verification(names, paths, shipped, stamps, part, tuple(sorted(protocol.items())))


@st.cache_data(show_spinner="Scoring the trials ...")
def _verification(names: tuple, paths: tuple, shipped: tuple, stamps: tuple, part: str, protocol: tuple) -> dict:
    """(``stamps``: when each checkpoint was written, so a retrained run is scored again.)"""
    from mie_core.scoring import Backend

    emb = {n: embeddings(workbench.ModelEntry(n, Path(p), s), part) for n, p, s in zip(names, paths, shipped)}
    backends = {n: Backend.load(Path(p)) for n, p in zip(names, paths) if Backend.exists(Path(p))}
    meta = notes(part)
    res = evaluation.compare_models(emb, meta["instrument_str"].to_numpy(), meta["instrument_family_str"].to_numpy(),
                                    n_boot=300, backends=backends, **dict(protocol))
    tr = res.pop("_trials")
    trial_text, enroll_text = trials.trials_to_text(tr, meta["note_str"].to_numpy())
    res["_scores"] = {k: v.tolist() for k, v in res["_scores"].items()}
    res["_target"] = tr.target.tolist()
    res["_trial_text"], res["_enroll_text"] = trial_text, enroll_text
    return res


# ---------------------------------------------------------------- widgets
def require_cache() -> None:
    """Stop the page with a clear message when there is no cache to show."""
    if not cache().exists:
        st.warning("No shipped cache was found (cache/manifest.json). Build it with "
                   "`python -m training.build_cache` after training, or point MIE_CACHE at one.")
        st.stop()


def pick_model(label: str = "Model", key: str = "model", default: str | None = None,
               container=None) -> workbench.ModelEntry | None:
    ms = models()
    for folder, why in broken_models():
        (container or st.sidebar).warning(f"Broken checkpoint left out: {why}", icon=":material/broken_image:")
    if not ms:
        (container or st).error("No model found: neither cache/models nor runs/*/best holds a checkpoint.")
        return None
    names = [m.label for m in ms]
    index = 0
    if default:
        index = next((i for i, m in enumerate(ms) if m.name == default), 0)
    if st.session_state.get(key) not in (None, *names):  # a kept choice whose model has gone
        forget(key)
    choice = (container or st.sidebar).selectbox(label, names, index=index, key=kept(key))
    return ms[names.index(choice)]


def play_button(row: pd.Series | dict, key: str, label: str = "play") -> None:
    """An audio player for a corpus note, rendered when asked for."""
    row = dict(row)
    if st.button(f"▶ {label}", key=key):
        try:
            st.audio(play(row), format="audio/wav")
        except workbench.MissingSoundfont as err:
            st.info(str(err))


def download_csv(df: pd.DataFrame, name: str, label: str = "Download CSV", key: str | None = None) -> None:
    """A download button whose CSV is written only when it is pressed (not on every rerun)."""
    st.download_button(label, lambda: df.to_csv(index=False).encode(), file_name=name, mime="text/csv", key=key,
                       on_click="ignore")


def download_figure(fig: go.Figure, name: str, key: str | None = None) -> None:
    """A download button for a figure as a standalone HTML page, written only when pressed
    (a 7,090-point map is ~0.7 MB of HTML: making it on every rerun cost ~40 ms per map).
    plotly.js is inside the page (4.6 MB), so it opens offline."""
    st.download_button("Download figure (HTML)", lambda: fig.to_html(include_plotlyjs=True, full_html=True).encode(),
                       file_name=name, mime="text/html", key=key, on_click="ignore")


def colour_map(values: pd.Series) -> dict:
    cats = sorted(values.astype(str).unique(), key=lambda v: (FAMILIES.index(v) if v in FAMILIES else 99, v))
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cats)}


# What a map's point carries, kept small: a 7,090-note map is sent to the browser on every
# recolouring, and Plotly and Streamlit copy it several times on the way. Numbers go as one binary
# block (customdata: row, pitch, velocity); the hover's two strings per note are fixed-width numpy
# string arrays in plain ASCII (plotly escapes "<" and non-ASCII characters to six bytes each).
# Against one object array of every column this halved the server's part of a recolouring.
HOVER = "<b>%{text}</b><br>%{hovertext}<br>pitch %{customdata[1]}, velocity %{customdata[2]}<extra></extra>"
# The WebGL canvases at the screen's resolution: Plotly's default draws them at twice it, four
# times the pixels to fill and composite; a new map draws 2x faster in software-rendered
# Chromium (benchmarks/map_browser.py). On a HiDPI screen the points are a little softer.
MAP_CONFIG = {"plotGlPixelRatio": 1}


def point_data(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per note of ``meta``: int32 (row, pitch, velocity), "preset (soundfont)" and
    "family, source, playing style" (see :data:`HOVER`)."""
    numbers = np.column_stack([np.arange(len(meta)), meta["pitch"], meta["velocity"]]).astype(np.int32)
    what = meta["preset_name"].astype(str) + " (" + meta["soundfont"].astype(str) + ")"
    kind = (meta["instrument_family_str"].astype(str) + ", " + meta["instrument_source_str"].astype(str) + ", "
            + meta["playing_style"].astype(str))
    return numbers, what.to_numpy(dtype=str), kind.to_numpy(dtype=str)


RING_AT_MOST = 200  # ring the selected notes too when there are this few (to find a note on the other map)


def map_traces(coords: np.ndarray, meta: pd.DataFrame, colour: str, idx: np.ndarray,
               highlight: np.ndarray | None = None, extra: list[tuple[str, np.ndarray]] | None = None,
               first: bool = True) -> list:
    """WebGL traces of the notes ``idx`` (rows of ``meta``, points ``coords[idx]``) coloured by ``colour``.

    ``customdata[:, 0]`` holds the row index, so a selection event names notes (see
    :func:`selected_rows`). A trace per category (legend groups named after it, so one legend
    entry toggles a category in every panel); ``first=False`` hides the legend entries of a
    second panel. Rows in ``highlight`` are shown as Plotly shows a selection (the other points
    faded), and ringed when there are at most ``RING_AT_MOST`` of them.
    """
    col = COLOUR_BY[colour]
    numbers, what, kind = point_data(meta)
    chosen = None if highlight is None or not len(highlight) else np.asarray(highlight, dtype=int)

    def points(rows: np.ndarray, **kw) -> go.Scattergl:
        sel = {} if chosen is None else dict(selectedpoints=np.flatnonzero(np.isin(rows, chosen)).tolist(),
                                             unselected=dict(marker=dict(opacity=0.15)))
        return go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], mode="markers", customdata=numbers[rows],
                            text=what[rows], hovertext=kind[rows], hovertemplate=HOVER, **sel, **kw)

    traces = []
    if col in ("pitch", "velocity"):
        traces.append(points(idx, name=colour, showlegend=False,
                             marker=dict(size=6, color=meta[col].to_numpy()[idx], colorscale="Viridis",
                                         showscale=first, colorbar=dict(title=colour))))
    else:
        cmap = colour_map(meta[col])
        cats = meta[col].astype(str).to_numpy()[idx]
        for cat in sorted(set(cats)):
            traces.append(points(idx[cats == cat], name=cat, legendgroup=cat, showlegend=first,
                                 marker=dict(size=6, color=cmap[cat])))
    if chosen is not None and len(chosen) <= RING_AT_MOST:
        traces.append(go.Scattergl(x=coords[chosen, 0], y=coords[chosen, 1], mode="markers", name="selected",
                                   legendgroup="selected", showlegend=first, hoverinfo="skip",
                                   marker=dict(size=12, color="rgba(0,0,0,0)", line=dict(color="black", width=1.5))))
    for name, pts in extra or []:
        traces.append(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers+text", name=name, text=[name] * len(pts),
                                   textposition="top center", hoverinfo="name", showlegend=first,
                                   marker=dict(size=16, symbol="star", color="gold",
                                               line=dict(color="black", width=1))))
    return traces


def _map_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(itemsizing="constant"),
                      dragmode="lasso")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def scatter_map(coords: np.ndarray, meta: pd.DataFrame, colour: str, idx: np.ndarray, title: str = "",
                highlight: np.ndarray | None = None, extra: list[tuple[str, np.ndarray]] | None = None) -> go.Figure:
    """One map: WebGL scatter of the notes ``idx`` coloured by ``colour`` (see :func:`map_traces`)."""
    fig = go.Figure(map_traces(coords, meta, colour, idx, highlight, extra))
    fig.update_layout(title=title)
    return _map_layout(fig, 560)


def paired_maps(coords: list[np.ndarray], titles: list[str], meta: pd.DataFrame, colour: str, idx: np.ndarray,
                highlight: np.ndarray | None = None) -> go.Figure:
    """Two maps of the same notes side by side in one figure, one legend for both.

    One figure, not two, because the browser sets up one WebGL context and one plot instead
    of two (on a software-rendered browser that is ~40 % of a page switch); a selection in
    either panel names notes by ``customdata[0]``, so it can be ringed in both.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(coords), subplot_titles=titles, horizontal_spacing=0.02)
    for k, c in enumerate(coords):
        for tr in map_traces(c, meta, colour, idx, highlight, first=k == 0):
            fig.add_trace(tr, row=1, col=k + 1)
    return _map_layout(fig, 560)


def selected_rows(event) -> list[int]:
    """Row indices (our ``customdata[0]``) of the points a plotly selection event holds.

    The maps send customdata as a binary int32 block, which Plotly decodes into typed arrays;
    the browser then serialises a point's row as ``{"0": row, "1": pitch, ...}``, not a list.
    """
    try:
        points = event.selection.points  # type: ignore[union-attr]
    except AttributeError:
        try:
            points = event["selection"]["points"]
        except (KeyError, TypeError):
            return []
    out = []
    for p in points:
        cd = p.get("customdata") if isinstance(p, dict) else None
        first = cd.get("0") if isinstance(cd, dict) else cd[0] if isinstance(cd, (list, tuple)) and cd else None
        try:
            out.append(int(first))
        except (TypeError, ValueError):
            continue
    return sorted(set(out))


def kept_selection(store_key: str, chart_key: str) -> list[int]:
    """Rows (``customdata[0]``) selected on a Plotly chart, kept until :func:`clear_selection_button`.

    Streamlit gives a chart a new identity, with an empty selection, whenever its figure
    changes (another colouring, or the rings that mark the selection itself), so the page
    keeps its own copy in ``st.session_state[store_key]``, replaced only by a new non-empty
    selection. Call it before drawing the chart, to ring the rows it returns.
    """
    rows = selected_rows(st.session_state.get(chart_key))
    if rows and rows != st.session_state.get(store_key):
        st.session_state[store_key] = rows
    return st.session_state.get(store_key, [])


def chart_epoch(name: str) -> int:
    """A number to put in a selectable chart's key; :func:`clear_selection_button` changes it."""
    return st.session_state.get(f"{name}_epoch", 0)


def clear_selection_button(store_key: str, name: str, key: str) -> None:
    """Forget a kept selection; the chart gets a new key, so Plotly's own selection goes too."""
    if st.button("Clear selection", key=key):
        st.session_state[store_key] = []
        st.session_state[f"{name}_epoch"] = chart_epoch(name) + 1
        st.rerun()


def waveform_figure(x: np.ndarray, sr: int = 16000) -> go.Figure:
    step = max(1, len(x) // 4000)
    t = np.arange(0, len(x), step) / sr
    fig = go.Figure(go.Scatter(x=t, y=x[::step], mode="lines", line=dict(width=1)))
    fig.update_layout(height=160, margin=dict(l=10, r=10, t=10, b=30), xaxis_title="s", showlegend=False)
    return fig


def spectrogram_figure(x: np.ndarray, sr: int = 16000) -> go.Figure:
    t, f, db = workbench.spectrogram(x, sr, n_fft=512, hop=320)  # 257 x 50/s cells: light to send
    fig = go.Figure(go.Heatmap(x=t, y=f, z=db, colorscale="Magma", showscale=False))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=10, b=30), xaxis_title="s", yaxis_title="Hz")
    return fig


def read_upload(f) -> tuple[np.ndarray | None, str | None]:
    """(audio, None) or (None, the library's message naming the file) for an uploaded file."""
    try:
        return mie_audio.load_audio(f), None
    except mie_audio.AudioError as err:
        return None, str(err)


class guard:
    """Run a page body; an unexpected error becomes a short message, never a traceback.

    The traceback goes to the server's log (stderr) for the developers.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        from streamlit.runtime.scriptrunner import RerunException, StopException

        if isinstance(exc, (RerunException, StopException)):
            return False
        import sys
        import traceback

        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        st.error(f"Something went wrong on this page ({exc_type.__name__}: {exc}). "
                 "The details are in the server log; the other pages keep working.")
        return True


# ---------------------------------------------------------------- filter bands
NOTE_TICKS = [24, 36, 48, 60, 72, 84, 96, 108, 120]


def bands_figure(entries) -> go.Figure:
    from mie_core.sincconv import note_name

    fig = go.Figure()
    for entry, colour in zip(entries, ["#1f77b4", "#d62728"]):
        sinc = encoder(str(entry.path)).frontend
        learned = sinc.bands()
        init = sinc.init_bands.cpu().numpy()
        for bands, name, dash in ((init, "init", "dot"), (learned, "learned", "solid")):
            centre = np.sqrt(bands[:, 0] * bands[:, 1])
            width = bands[:, 1] - bands[:, 0]
            fig.add_trace(go.Scatter(
                x=centre, y=width, mode="markers+lines" if name == "learned" else "lines",
                name=f"{entry.name} {name}", line=dict(color=colour, dash=dash, width=1),
                marker=dict(size=5), customdata=np.column_stack([np.arange(len(bands)), bands]),
                hovertemplate="filter %{customdata[0]}<br>%{customdata[1]:.1f}-%{customdata[2]:.1f} Hz<extra></extra>"))
    tick_hz = [440 * 2 ** ((m - 69) / 12) for m in NOTE_TICKS]
    fig.update_xaxes(type="log", title="centre frequency (geometric mean of the cut-offs)",
                     tickvals=tick_hz, ticktext=[f"{note_name(m)}<br>{h:.0f} Hz" for m, h in zip(NOTE_TICKS, tick_hz)])
    fig.update_yaxes(type="log", title="bandwidth (Hz)")
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def response_figure(entry, index) -> go.Figure:
    from mie_core.sincconv import band_response

    sinc = encoder(str(entry.path)).frontend
    freqs, db = band_response(sinc, index)
    fig = go.Figure()
    for k, row in zip(index, db):
        fig.add_trace(go.Scatter(x=freqs[1:], y=row[1:] - row.max(), name=f"filter {k}", mode="lines"))
    fig.update_xaxes(type="log", title="Hz")
    fig.update_yaxes(title="dB (re. peak)", range=[-80, 3])
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), title=f"{entry.name}: frequency responses")
    return fig
