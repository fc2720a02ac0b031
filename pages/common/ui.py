"""Streamlit glue shared by the pages: cached loaders and jobs, the model picker, widgets,
page state. The figures themselves are pure Plotly, in :mod:`pages.common.figures`.

Not a page: Streamlit makes a page of every ``pages/*.py`` but ignores subfolders, so
this module lives in ``pages/common/`` and is only imported. Everything heavy is cached: models with
``st.cache_resource``, arrays with ``st.cache_data``.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mie_core.data import audio as mie_audio
from mie_core.evaluation import protocol as evaluation_protocol
from mie_core.explore import maps
from mie_core.scoring import trials
from mie_core.service import workbench
from mie_core.fileio import csv_bytes
from mie_core.service.jobs import Job, JobRunner
from mie_core.data.sf2check import SoundFontError
from pages.common import figures
from pages.common.figures import (  # noqa: F401  (the pages' names for the pure figures)
    COLOUR_BY, HOVER, MAP_CONFIG, PALETTE, RING_AT_MOST, colour_map, map_traces, model_colour, paired_maps, point_data,
    scatter_map, selected_rows, spectrogram_figure, threshold_range, waveform_figure,
)


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
    warm_up()


# ---------------------------------------------------------------- cached loaders
WARMUP_SAY = ("Loading the model and warming it up: the first time after the workbench starts this takes up to half "
              "a minute (a system loads every model it fuses); afterwards a clip takes well under a second ...")


@st.cache_resource(show_spinner=WARMUP_SAY)
def verifier(path: str):
    """The model of a checkpoint with its scoring back-end and instrument centroids
    (:func:`mie_core.service.verify.load_verifier`), loaded once per server (torch is imported
    here, not at start-up, so pages without a model open fast)."""
    from mie_core.service.verify import load_verifier

    v = load_verifier(path, precision=embed_precision())
    # the first forward pass of each input length sets up its convolution kernels (about a
    # second for the first, 0.1-0.3 s for each new length): do it now for the commonest
    # upload, a 4-s note (the model's window), not on the user's first upload
    v.embed([np.zeros(64000, dtype=np.float32)])
    return v


DEFAULT_SYSTEM = "mel+cqt"  # what Verify and My instruments open on (the best system the cache ships)


def default_entry(with_systems: bool = True) -> workbench.ModelEntry | None:
    """The model a page that verifies opens on: :data:`DEFAULT_SYSTEM`, else the first found."""
    ms = models() + (systems() if with_systems else [])
    return next((m for m in ms if m.name == DEFAULT_SYSTEM), ms[0] if ms else None)


@st.cache_resource(show_spinner=False)
def _warm_up(path: str) -> threading.Thread:
    thread = threading.Thread(target=verifier, args=(path,), name=f"warm-up {path}", daemon=True)
    thread.start()
    return thread


def warm_up() -> threading.Thread | None:
    """Start loading the default system in the background, once per server, on the first page
    anyone opens: the first enrolment then finds it ready instead of waiting for it (issue 32:
    the first Enrol after a start took 27 s). A page that needs it before it is ready waits on
    :func:`verifier`'s cache, which computes a value once (Streamlit's per-key lock), and shows
    its spinner meanwhile. Returns the loading thread (None without a model)."""
    entry = default_entry()
    return _warm_up(str(entry.path)) if entry is not None else None


def encoder(path: str):
    """The InstrumentEncoder of a checkpoint (the one :func:`verifier` holds)."""
    return verifier(path).encoder


MAX_UPLOAD_S = 60.0  # mie_core.data.audio's default limit, said before an upload
UPLOAD_HELP = (f"The note is used from its onset for at most {mie_audio.NOTE_SECONDS:g} s (leading silence skipped), "
               "as the real recordings the verdicts were measured on.")
AUDIO_FORMATS = ["wav", "flac", "ogg", "mp3"]  # what the uploaders accept (mie_core.data.audio reads them all)


PRIORS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
PART_NAMES = {"test": "clean renders of unseen instruments", "wet": "the same through unseen rooms, microphones, "
              "noise and codecs", "real": "real recordings (tonejs-instruments)"}


@st.cache_data(show_spinner=False)
def pitch_gap_rates(model: str) -> list[dict] | None:
    """The cache's measured verdicts on real notes by pitch gap for one model or system (or None)."""
    return cache().pitch_gaps().get("models", {}).get(model, {}).get("bins")


def verdict_record(m: dict) -> dict | None:
    """Of one model's cached results in a part, those of the verdict the Verify page gives:
    the fused system's where the model has a clean partner, else its calibrated back-end's."""
    return m.get("fused") or m.get("calibrated")


def verdict_rates(model: str) -> pd.DataFrame | None:
    """How often the calibrated verdict (prior 50 %; the fused system's where the model has one)
    was right, per evaluation part, from the cache."""
    rows = []
    for part, res in benchmark().get("parts", {}).items():
        c = verdict_record(res.get("models", {}).get(model) or res.get("systems", {}).get(model, {}))
        if c and part in PART_NAMES:
            rows.append({"measured on": PART_NAMES[part], "genuine accepted": f"{100 * (1 - c['p_miss']):.1f} %",
                         "impostors rejected": f"{100 * (1 - c['p_fa']):.1f} %",
                         "instruments": res.get("n_instruments"), "trials": res["n_target"] + res["n_nontarget"]})
    return pd.DataFrame(rows) if rows else None


NOT_MEASURED = {"system": "n/a: fused only", "partner": "n/a: no partner", "calibration": "n/a: not calibrated"}
SUMMARY_HELP = {  # the summary table's short headers, said in full where the reader hovers
    "part": "which notes: clean renders, the same through simulated rooms/mics/noise/codecs, or real recordings",
    "model": "a shipped model, or a system of several (its members in the caption)",
    "raw %": "EER (%) of the paper's scoring: cosine to the mean of the enrolment notes",
    "AS-norm %": "EER (%) of the scoring back-end: centred embeddings, soft maximum over enrolment notes, AS-norm",
    "fused %": "EER (%) of the fusion with the clean-trained partner (what the Verify page scores with)",
    "Cllr": "cost of the calibrated LLRs in bits (0 perfect, 1 uninformative)",
    "accepted %": "genuine trials accepted by the Verify page's verdict at prior 50 %",
    "rejected %": "impostor trials rejected by the Verify page's verdict at prior 50 %",
    "instruments": "unseen instruments enrolled in this part's trials",
}


def verify_scoring_eer(part: str = "test") -> dict:
    """{model: (EER, scoring)} of the scoring the Verify page uses, per shipped model, on a
    part, from the cache (fused with the clean partner where there is one, else AS-norm, else
    raw): the figure Home cites, so every page cites one number for one thing."""
    out = {}
    res = benchmark().get("parts", {}).get(part, {})
    for name, m in res.get("models", {}).items():
        for key, label in (("fused", "fused"), ("asnorm", "AS-norm")):
            if key in m:
                out[name] = (float(m[key]["eer"]), label)
                break
        else:
            out[name] = (float(m["eer"]), "raw cosine")
    for name, m in res.get("systems", {}).items():
        out[name] = (float(m["fused"]["eer"]), "fused")
    return out


def parts_summary() -> tuple[pd.DataFrame, dict] | None:
    """EER per model and part (clean / wet / real), raw, AS-norm and fused (with the clean
    partner, where the model has one), and the error rates of the verdict the Verify page
    gives (the fused system's where there is one), from the cache's benchmark results; a
    figure that does not exist for a row says why (:data:`NOT_MEASURED`), never None.
    Returns (table, {system: its members})."""
    parts = benchmark().get("parts", {})
    rows, members = [], {}
    for part in ("test", "wet", "real"):
        res = parts.get(part)
        if not res:
            continue
        for name, m in res["models"].items():
            c = verdict_record(m)
            rows.append({"part": PART_NAMES[part], "model": name, "raw %": round(100 * m["eer"], 2),
                         "AS-norm %": round(100 * m["asnorm"]["eer"], 2) if "asnorm" in m else NOT_MEASURED["calibration"],
                         "fused %": round(100 * m["fused"]["eer"], 2) if "fused" in m else NOT_MEASURED["partner"],
                         "Cllr": round(c["cllr"], 3) if c else NOT_MEASURED["calibration"],
                         "accepted %": round(100 * (1 - c["p_miss"]), 1) if c else NOT_MEASURED["calibration"],
                         "rejected %": round(100 * (1 - c["p_fa"]), 1) if c else NOT_MEASURED["calibration"],
                         "instruments": res["n_instruments"]})
        for name, m in res.get("systems", {}).items():  # systems of several models: fused only
            c = m["fused"]
            members[name] = m["members"]
            rows.append({"part": PART_NAMES[part], "model": name, "raw %": NOT_MEASURED["system"],
                         "AS-norm %": NOT_MEASURED["system"], "fused %": round(100 * c["eer"], 2),
                         "Cllr": round(c["cllr"], 3), "accepted %": round(100 * (1 - c["p_miss"]), 1),
                         "rejected %": round(100 * (1 - c["p_fa"]), 1), "instruments": res["n_instruments"]})
    if not rows:
        return None
    table = pd.DataFrame(rows)
    return table.astype({c: str for c in table.columns if table[c].map(type).eq(str).any()}), members


def instrument_note(info_row, midi: float = float("nan")) -> dict:
    """A playable note (velocity 100) of a corpus instrument from its centroid's labels, at
    ``midi`` rounded (a clip's pitch: the note it is compared with), MIDI 60 without one."""
    r = dict(info_row)
    return {"soundfont": r["soundfont"], "bank": int(r.get("bank", 0)), "program": int(r["program"]),
            "pitch": workbench.playable_pitch(midi), "velocity": 100, "gain_db": float(r.get("gain_db", 0.0)),
            "instrument_str": r.get("instrument_str")}


@st.cache_resource
def cache() -> workbench.Cache:
    return workbench.Cache()


def models() -> list[workbench.ModelEntry]:
    return _models(str(workbench.cache_dir()), str(workbench.runs_dir()))


def systems() -> list[workbench.ModelEntry]:
    """The cache's systems of several models (Verify and My instruments offer them)."""
    return _systems(str(workbench.cache_dir()))


@st.cache_data(ttl=30, show_spinner=False)
def _systems(cache_path: str) -> list[workbench.ModelEntry]:
    return workbench.find_systems(Path(cache_path))


def main_entry(entry: workbench.ModelEntry) -> workbench.ModelEntry:
    """The model that stands for ``entry`` on maps and in the cache's embeddings: itself, or a
    system's main member."""
    if not entry.system:
        return entry
    found = next((m for m in models() if m.shipped and m.name == entry.main), None)
    if found is None:
        raise ValueError(f"the system {entry.name} names {entry.main} as its main model, which the cache lacks")
    return found


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


@st.cache_data(show_spinner=False)
def _recording(root: str, part: str) -> np.ndarray | None:
    return workbench.Cache(Path(root)).recording(part)


def recording(part: str = "test") -> np.ndarray | None:
    """(n, 6) recording features of a cache part's notes, row for row with its embeddings (what
    the condition model reads of a corpus enrolment), or None where the cache has none."""
    return _recording(str(workbench.cache_dir()), part)


def system_embeddings(entry: workbench.ModelEntry, ver, part: str = "test") -> np.ndarray:
    """(n, width) embeddings of the evaluation notes as ``ver.embed`` gives them: for a fused
    shipped model or system, every member's from the cache side by side (a model's own as
    ``<name>_<part>.npy``, its clean partner's as ``<name>_clean_<part>.npy``)."""
    if not ver.fused:
        return embeddings(entry, part)
    root = workbench.cache_dir().resolve() / "models"
    paths = [p.resolve() for p in ver.member_paths]
    names = [str(p.relative_to(root)).replace("/", "_") if p.is_relative_to(root) else None for p in paths]
    missing = [n or str(p) for n, p in zip(names, ver.member_paths) if not (n and cache().has_embeddings(n, part))]
    if not entry.shipped or missing:
        raise ValueError(f"the cache has no {part} embeddings of {', '.join(missing) or entry.name}; rebuild the cache")
    return ver.join(*[_shipped_embeddings(n, part) for n in names])


def embeddings_parquet(entry: workbench.ModelEntry, part: str = "test") -> bytes:
    """Metadata and embeddings of the notes as Parquet bytes (for a download button): the
    model's raw embedding, the same at unit length, and the model's hash."""
    import io

    from mie_core.evaluation.embeddings import model_hash, unit

    emb = embeddings(entry, part)
    table = notes(part).copy()
    table["embedding"] = list(emb.astype(np.float32))
    table["embedding_unit"] = list(unit(emb))
    table["model_hash"] = model_hash(entry.path)
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
    """Embed uploads and runs as the cache was embedded ("bf16" autocast or "fp32") where this
    CPU has native bf16; elsewhere in fp32. bf16 autocast on a CPU without it is emulated:
    6.6x slower for five real notes with the mel+cqt system on an AMD EPYC without AVX-512,
    and fp32 and bf16 embeddings agree to a cosine of 0.99998 or better
    (``benchmarks/upload_embedding.py``, ``benchmarks/cross_cpu.py``)."""
    from mie_core.evaluation.embeddings import resolve_precision

    b = benchmark()
    cached = b.get("precision") or ("bf16" if b.get("embed_bf16") else "fp32")
    return resolve_precision("auto") if cached == "bf16" else "fp32"


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
def _verification(names: tuple, paths: tuple, shipped: tuple, stamps: tuple, part: str, protocol: tuple,
                  with_backend: bool = False) -> dict:
    """(``stamps``: when each checkpoint was written, so a retrained run is scored again.)"""
    from mie_core.scoring.backend import Backend

    emb = {n: embeddings(workbench.ModelEntry(n, Path(p), s), part) for n, p, s in zip(names, paths, shipped)}
    # AS-norm and calibrated results on the page's own protocol only where asked (the Benchmark
    # page's table); the cache's summary table already has them for the default protocol
    backends = {n: Backend.load(Path(p)) for n, p in zip(names, paths) if Backend.exists(Path(p))} if with_backend else {}
    meta = notes(part)
    res = evaluation_protocol.compare_models(emb, meta["instrument_str"].to_numpy(), meta["instrument_family_str"].to_numpy(),
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
    problems = cache_problems()
    if problems:
        st.error("The shipped cache does not match its manifest, so results may be wrong: "
                 + "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
                 + ". `python -m mie_core verify-cache` checks it; `git checkout cache/` restores it.")


@st.cache_data(ttl=60, show_spinner=False)
def cache_problems() -> list[str]:
    """The cache checked against its manifest, sizes only (milliseconds), once a minute."""
    return cache().problems()


def pick_model(label: str = "Model", key: str = "model", default: str | None = None,
               container=None, with_systems: bool = False) -> workbench.ModelEntry | None:
    """A model chosen in the sidebar (kept across pages); ``with_systems``: the cache's systems
    of several models too (for the pages that verify and identify clips)."""
    ms = models() + (systems() if with_systems else [])
    for folder, why in broken_models():
        (container or st.sidebar).warning(f"Broken checkpoint left out: {why}", icon=":material/broken_image:")
    if not ms:
        (container or st).error("No model found: neither cache/models nor runs/*/best holds a checkpoint.")
        return None
    names = [m.label for m in ms]
    index = 0
    if default:
        index = next((i for i, m in enumerate(ms) if m.name == default), 0)  # default_entry's rule
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
        except SoundFontError as err:  # a corrupt or crafted file: named, and the page goes on
            st.error(str(err))


def download_csv(df: pd.DataFrame, name: str, label: str = "Download CSV", key: str | None = None) -> None:
    """A download button whose CSV is written only when it is pressed (not on every rerun)."""
    st.download_button(label, lambda: csv_bytes(df), file_name=name, mime="text/csv", key=key,
                       on_click="ignore")


def download_figure(fig: go.Figure, name: str, key: str | None = None) -> None:
    """A download button for a figure as a standalone HTML page, written only when pressed
    (a 7,090-point map is ~0.7 MB of HTML: making it on every rerun cost ~40 ms per map).
    plotly.js is inside the page (4.6 MB), so it opens offline."""
    st.download_button("Download figure (HTML)", lambda: figures.figure_html(fig), file_name=name, mime="text/html",
                       key=key, on_click="ignore")


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


def read_uploads(files) -> list[tuple[str, np.ndarray]]:
    """(name, audio) of the readable uploads; each unreadable one gets the library's message,
    naming the file, in the page."""
    good = []
    for f in files or []:
        x, err = read_upload(f)
        if err:
            st.error(err, icon="⚠️")
        else:
            good.append((f.name, x))
    return good


def read_upload(f) -> tuple[np.ndarray | None, str | None]:
    """(audio, None) or (None, the library's message naming the file) for an uploaded file;
    the audio is the note as every embedding path cuts it (:func:`mie_core.data.audio.note_bounds`),
    and the page says so where that is not the whole file."""
    try:
        x = mie_audio.load_audio(f)
    except mie_audio.AudioError as err:
        return None, str(err)
    start, end = mie_audio.note_bounds(x)
    if (start, end) != (0, len(x)):
        sr = mie_audio.SAMPLE_RATE
        st.caption(f"{f.name}: {len(x) / sr:.1f} s; its note from {start / sr:.2f} s to {end / sr:.2f} s is used "
                   f"(from the onset, at most {mie_audio.NOTE_SECONDS:g} s).")
    return x[start:end], None


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


def bands_figure(entries, show=("init", "learned")) -> go.Figure:
    """The learned and initial bands of the models ``entries`` (see ``figures.bands_figure``)."""
    return figures.bands_figure([(e.name, encoder(str(e.path)).frontend) for e in entries], show)


def response_figure(entry, index) -> go.Figure:
    return figures.response_figure(entry.name, encoder(str(entry.path)).frontend, index)


def real_calibration_line(ver, conditions: str = "auto") -> str | None:
    """How the verdicts on real recordings are made in mode ``conditions`` and how well they
    hold, in one sentence, or None where the model has no real-notes calibration
    (:class:`mie_core.service.verify.RealCalibration`)."""
    rc = getattr(ver, "real_calibration", None)
    if rc is None:
        return None
    if conditions == "auto" and rc.condition is None:
        conditions = "studio"
    figs = rc.figures(conditions)
    t, n = rc.worst(conditions)
    pooled = figs.get("pooled", {})
    n_src = len(rc.fitted_on.get("sources", []))
    what = {"auto": "Each trial mixes the fusion's weights refitted on real studio recordings and the model's own, "
                    "by how much its clips sound like studio recordings",
            "studio": "Verdicts use the fusion's weights refitted" if rc.kind == "fusion" else "Verdicts use the "
                      "calibration fitted",
            "own": "Verdicts use the model's own calibration (fitted on renders, clean and through simulated rooms)"}
    where = {"studio": f" on real recordings of {n_src} collections ({rc.fitted_on.get('notes', '?')} notes)"}.get(
        conditions, "")
    line = (f"{what[conditions]}{where}. Measured on {n_src} real collections, each scored with what was fitted "
            f"without it: genuine notes accepted {100 * t:.0f} % or more, impostors rejected {100 * n:.0f} % or more "
            f"(all collections: {100 * pooled.get('genuine_accepted', float('nan')):.0f} % / "
            f"{100 * pooled.get('impostors_rejected', float('nan')):.0f} %, EER "
            f"{100 * pooled.get('eer', float('nan')):.1f} %).")
    wet = (rc.renders or {}).get("wet", {}).get(conditions)
    if wet is not None:
        line += (f" On renders through unseen rooms, microphones and noise: EER {100 * wet['eer']:.1f} %, "
                 f"{100 * wet['genuine_accepted']:.0f} % / {100 * wet['impostors_rejected']:.0f} %.")
    return line


def real_calibration_table(ver, conditions: str = "auto") -> pd.DataFrame:
    """One row per real collection (and all together): EER and the verdict's rates at prior
    50 % in mode ``conditions``, everything fitted on real notes fitted without that
    collection, with its trials per draw and the rates' 95 % interval on them
    (:func:`mie_core.scoring.sources.verdict_intervals`: a collection of one instrument has 20
    genuine trials), beside the model's own calibration."""
    from mie_core.scoring.sources import verdict_intervals

    rc = ver.real_calibration
    figs = rc.figures(conditions)
    rows = []
    for src in [s for s in figs if s != "pooled"] + ["pooled"]:
        h, b = figs[src], rc.as_shipped[src]
        n = len(rc.fitted_on.get("instruments", {}).get(src, [])) or sum(
            len(v) for v in rc.fitted_on.get("instruments", {}).values())
        rows.append({"recordings": "all collections" if src == "pooled" else src, "instruments": n,
                     "EER (%)": round(100 * h["eer"], 2),
                     "genuine accepted (%)": round(100 * h["genuine_accepted"], 1),
                     "impostors rejected (%)": round(100 * h["impostors_rejected"], 1),
                     "trials per draw": f"{h['n_target']:.0f} / {h['n_nontarget']:.0f}" if "n_target" in h else "n/a",
                     "95 % interval (%)": verdict_intervals(h) or "n/a",
                     "with the model's own calibration (%)": f"{100 * b['genuine_accepted']:.1f} / "
                                                             f"{100 * b['impostors_rejected']:.1f}"})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the paper's study
@st.cache_data(show_spinner=False, ttl=60)
def study_results() -> dict | None:
    """``docs/study/results.json`` (:mod:`mie_core.evaluation.study`), or None."""
    from mie_core.evaluation.study import load_results
    from mie_core.paths import study_dir

    return load_results(study_dir() / "results.json")


FRONT_ENDS = {"mel80_fixed": "Mel-80 fixed", "mel80": "Mel-80 learned", "mel122_fixed": "Mel-122 fixed",
              "mel122": "Mel-122 learned", "cqt122_fixed": "CQT-122 fixed", "cqt122": "CQT-122 learned"}


def study_front_ends(runs: list[dict], split: str, part: str) -> tuple[pd.DataFrame, go.Figure]:
    """Table III over seeds for one split and part: per front-end the mean +- std of EER (%)
    and the seeds present, and a figure with each seed's point."""
    from mie_core.evaluation.study import condition_stats

    st_ = condition_stats(runs, split)
    rows, fig = [], go.Figure()
    for c in FRONT_ENDS:
        p = st_.get(c, {}).get(part)
        if not p:
            continue
        rows.append({"front-end": FRONT_ENDS[c], "EER (%)": f"{100 * p['mean']:.2f} +- {100 * p['std']:.2f}",
                     "seeds": p["n"]})
        seeds = [r["seed"] for r in runs if r["condition"] == c and r["split"] == split and part in r["parts"]]
        fig.add_trace(go.Scatter(x=[FRONT_ENDS[c]] * len(p["values"]), y=[100 * v for v in p["values"]], mode="markers",
                                 name=c, text=[f"seed {s}" for s in seeds], hovertemplate="%{text}: %{y:.2f} %<extra></extra>",
                                 marker=dict(size=10, color=figures.model_colour(c),
                                             symbol="circle-open" if c.endswith("_fixed") else "circle")))
    fig.update_layout(height=320, yaxis_title=f"EER on {part} notes (%)", showlegend=False,
                      margin=dict(l=10, r=10, t=20, b=10))
    return pd.DataFrame(rows), fig
