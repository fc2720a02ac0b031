"""The workbench's figures: pure Plotly, no Streamlit (tests and benchmarks import this alone).

Maps of embeddings (WebGL, binary customdata), audio (waveform, spectrogram), filter bands
and responses, the benchmark's DET, histograms and significance grid. Colours of the Mel
and CQT models are the same on every page (:func:`model_colour`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mie_core.service import workbench
from mie_core.data.gm import FAMILIES


COLOUR_BY = {"family": "instrument_family_str", "source": "instrument_source_str", "playing style": "playing_style",
             "soundfont": "soundfont", "pitch": "pitch", "velocity": "velocity"}


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363"]


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
    traces += extra_traces(extra, first)
    return traces


def extra_traces(extra, first: bool = True) -> list:
    """Points placed on a map from outside the corpus: ``extra`` holds (name, (n, 2) points)
    or (name, points, group). Ungrouped points (the Verify page's one clip) are gold stars
    labelled with their name; grouped ones (a batch scored in My instruments: each clip grouped
    under the instrument it was scored best against, each enrolment ``★ NAME`` under its own
    instrument) are one trace per group in the group's colour, clips as diamonds and
    enrolments as stars, named on hover only, one legend entry per group."""
    traces, groups = [], {}
    for item in extra or []:
        name, pts, group = (*item, None)[:3]
        if group is None:
            traces.append(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers+text", name=name,
                                       text=[name] * len(pts), textposition="top center", hoverinfo="name",
                                       showlegend=first, marker=dict(size=16, symbol="star", color="gold",
                                                                     line=dict(color="black", width=1))))
        else:
            groups.setdefault(str(group), []).append((name, pts))
    for k, (group, items) in enumerate(sorted(groups.items())):
        pts = np.concatenate([p for _, p in items])
        names = [n for n, p in items for _ in range(len(p))]
        star = [n.startswith("★") for n in names]
        traces.append(go.Scattergl(
            x=pts[:, 0], y=pts[:, 1], mode="markers", name=group, legendgroup=f"extra:{group}", showlegend=first,
            hovertext=names, hovertemplate="<b>%{hovertext}</b><extra>" + group + "</extra>",
            marker=dict(size=[18 if s else 11 for s in star], symbol=["star" if s else "diamond" for s in star],
                        color=EXTRA_COLOURS[k % len(EXTRA_COLOURS)], line=dict(color="black", width=1))))
    return traces


# strong colours for the groups placed on a map, apart from the corpus's (a gold star is the Verify page's clip)
EXTRA_COLOURS = ("#000000", "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                 "#bfef45", "#469990", "#9a6324", "#800000")


def figure_html(fig: go.Figure) -> bytes:
    """A standalone HTML page of a figure with plotly.js inside (about 4.6 MB), so a
    downloaded figure opens offline (a CDN link is blank without a network)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()


def threshold_range(threshold: float, below: float = 0.3, above: float = 0.1) -> tuple[float, float]:
    """(low, high) of a cosine threshold slider around a model's EER threshold: the useful
    range only (scores of real pairs lie within a few tenths of it), inside [-1, 1]."""
    return max(-1.0, round(threshold - below, 2)), min(1.0, round(threshold + above, 2))


def _map_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(itemsizing="constant"),
                      dragmode="lasso")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def scatter_map(coords: np.ndarray, meta: pd.DataFrame, colour: str, idx: np.ndarray, title: str = "",
                highlight: np.ndarray | None = None, extra: list[tuple[str, np.ndarray]] | None = None,
                legend: bool = True) -> go.Figure:
    """One map: WebGL scatter of the notes ``idx`` coloured by ``colour`` (see :func:`map_traces`);
    ``legend=False`` for the second of two maps shown side by side (one legend is enough)."""
    fig = go.Figure(map_traces(coords, meta, colour, idx, highlight, extra, first=legend))
    fig.update_layout(title=title, showlegend=legend)
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


# ---------------------------------------------------------------- filter bands
NOTE_TICKS = [24, 36, 48, 60, 72, 84, 96, 108, 120]


def model_colour(name: str) -> str:
    """One colour per model on every page: Mel models blue, CQT models red, others from the palette."""
    low = name.lower()
    if "mel" in low:
        return "#1f77b4"
    if "cqt" in low:
        return "#d62728"
    return PALETTE[2 + sum(map(ord, name)) % (len(PALETTE) - 2)]


BLUES = ("#1f77b4", "#6baed6", "#08519c", "#9ecae1", "#3182bd", "#c6dbef")
REDS = ("#d62728", "#fb6a4a", "#a50f15", "#fcae91", "#ef3b2c", "#67000d")


def run_colours(names) -> dict:
    """A colour per run, distinct within the list: Mel runs in shades of blue, CQT runs in shades
    of red (as :func:`model_colour`), others from the palette."""
    out, used = {}, {"mel": 0, "cqt": 0}
    for k, name in enumerate(names):
        low = name.lower()
        kind = "mel" if "mel" in low else "cqt" if "cqt" in low else None
        if kind:
            shades = BLUES if kind == "mel" else REDS
            out[name] = shades[used[kind] % len(shades)]
            used[kind] += 1
        else:
            out[name] = PALETTE[2 + k % (len(PALETTE) - 2)]
    return out


# ---------------------------------------------------------------- filter bands
def bands_figure(items, show=("init", "learned")) -> go.Figure:
    """Centre frequency against bandwidth of every filter, initial (open circles, dotted) and
    learned (filled, solid), for ``items``: (model name, SincConv front-end) pairs; ``show``:
    which of the two to draw. The initial bands are drawn over the learned ones, so where
    training barely moved a filter both stay visible."""
    from mie_core.nnet.sincconv import note_name

    fig = go.Figure()
    for name_, sinc in items:
        colour = model_colour(name_)
        learned = sinc.bands()
        init = sinc.init_bands.cpu().numpy()
        for bands, name, dash in ((learned, "learned", "solid"), (init, "init", "dot")):
            if name not in show:
                continue
            centre = np.sqrt(bands[:, 0] * bands[:, 1])
            width = bands[:, 1] - bands[:, 0]
            marker = (dict(size=5, color=colour) if name == "learned" else
                      dict(size=8, symbol="circle-open", color=colour, line=dict(width=1)))
            fig.add_trace(go.Scatter(
                x=centre, y=width, mode="markers+lines", name=f"{name_} {name}",
                line=dict(color=colour, dash=dash, width=1), marker=marker, opacity=1.0 if name == "learned" else 0.8,
                customdata=np.column_stack([np.arange(len(bands)), bands]),
                hovertemplate=f"{name_} {name}: " + "filter %{customdata[0]}<br>%{customdata[1]:.1f}-%{customdata[2]:.1f} "
                              "Hz<extra></extra>"))
    tick_hz = [440 * 2 ** ((m - 69) / 12) for m in NOTE_TICKS]
    fig.update_xaxes(type="log", title="centre frequency (geometric mean of the cut-offs)",
                     tickvals=tick_hz, ticktext=[f"{note_name(m)}<br>{h:.0f} Hz" for m, h in zip(NOTE_TICKS, tick_hz)])
    fig.update_yaxes(type="log", title="bandwidth (Hz)")
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def response_figure(model: str, sinc, index) -> go.Figure:
    """Frequency responses (dB re. peak) of the filters ``index`` of a front-end."""
    from mie_core.nnet.sincconv import band_response

    freqs, db = band_response(sinc, index)
    fig = go.Figure()
    for k, row in zip(index, db):
        fig.add_trace(go.Scatter(x=freqs[1:], y=row[1:] - row.max(), name=f"filter {k}", mode="lines"))
    fig.update_xaxes(type="log", title="Hz")
    fig.update_yaxes(title="dB (re. peak)", range=[-80, 3])
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), title=f"{model}: frequency responses")
    return fig


# ---------------------------------------------------------------- benchmark
def det_figure(res: dict) -> go.Figure:
    fig = go.Figure()
    for name, m in res["models"].items():
        fig.add_trace(go.Scatter(x=m["det"]["probit_fa"], y=m["det"]["probit_miss"], mode="lines",
                                 name=f"{name} ({100 * m['eer']:.2f} %)", line=dict(color=model_colour(name))))
    from scipy.stats import norm

    from mie_core.evaluation.plots import DET_TICKS

    ticks = norm.ppf(DET_TICKS)
    labels = [f"{100 * t:g}" for t in DET_TICKS]
    fig.update_xaxes(tickvals=ticks, ticktext=labels, range=[ticks[0], ticks[-1]], title="false acceptance rate (%)")
    fig.update_yaxes(tickvals=ticks, ticktext=labels, range=[ticks[0], ticks[-1]], title="false rejection rate (%)")
    fig.add_trace(go.Scatter(x=[ticks[0], ticks[-1]], y=[ticks[0], ticks[-1]], mode="lines", showlegend=False,
                             line=dict(color="lightgrey", dash="dot")))
    fig.update_layout(height=480, title="DET curves (first draw)", margin=dict(l=10, r=10, t=40, b=10))
    return fig


def histogram_figure(res: dict, name: str) -> go.Figure:
    s = np.asarray(res["_scores"][name])
    t = np.asarray(res["_target"])
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=s[t], name="target", opacity=0.6, nbinsx=50))
    fig.add_trace(go.Histogram(x=s[~t], name="non-target", opacity=0.6, nbinsx=50))
    fig.add_vline(x=res["models"][name]["threshold"], line_dash="dash", annotation_text="EER threshold")
    fig.update_layout(barmode="overlay", height=300, title=name, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="cosine score")
    return fig


def significance_figure(res: dict) -> go.Figure:
    sig = res["significance"]
    z = np.asarray(sig["z"])
    s = np.asarray(sig["significant"])
    text = [[("" if i == j else f"z={z[i, j]:.1f}<br>{'significant' if s[i, j] else 'n.s.'}") for j in range(len(z))]
            for i in range(len(z))]
    # zmin/zmax fixed: with nothing significant the cells stay light (plotly would stretch one value to dark)
    fig = go.Figure(go.Heatmap(z=s.astype(float), x=sig["names"], y=sig["names"], text=text, texttemplate="%{text}",
                               colorscale=[[0, "#f7f7f7"], [1, "#636363"]], zmin=0, zmax=1, showscale=False))
    fig.update_layout(height=120 + 60 * len(z), title="Pairwise significance (Eq. 1, Holm, alpha 0.05)",
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    return fig
