"""The workbench's pure figures (no Streamlit needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from pages.common import figures

REPO = Path(__file__).resolve().parent.parent


def test_figures_do_not_import_streamlit():
    code = "import sys, pages.common.figures; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_model_has_one_colour_everywhere():
    assert figures.model_colour("mel122") == figures.model_colour("mel122_old") != figures.model_colour("cqt122")
    res = {"models": {"cqt122": {"eer": 0.1, "det": {"probit_fa": [0, 1], "probit_miss": [1, 0]}},
                      "mel122": {"eer": 0.1, "det": {"probit_fa": [0, 1], "probit_miss": [1, 0]}}}}
    det = figures.det_figure(res)
    colours = {t.name.split(" ")[0]: t.line.color for t in det.data if t.name}
    assert colours == {"cqt122": figures.model_colour("cqt122"), "mel122": figures.model_colour("mel122")}


def test_significance_grid_is_light_when_nothing_is_significant():
    res = {"significance": {"names": ["a", "b"], "z": [[0, 1.0], [1.0, 0]],
                            "significant": [[False, False], [False, False]]}}
    hm = figures.significance_figure(res).data[0]
    assert hm.zmin == 0 and hm.zmax == 1 and np.asarray(hm.z).max() == 0  # zero maps to the light end


def _legend_entries(fig) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False]


def test_side_by_side_maps_have_one_legend_entry_per_category():
    """Two panels of the same notes: each category (and the ring of a selection) is listed once,
    and clicking it toggles both panels (one legend group)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    meta = pd.DataFrame({"instrument_str": [f"i{k % 7}" for k in range(60)],
                         "instrument_family_str": [["brass", "reed", "string"][k % 3] for k in range(60)],
                         "pitch": rng.integers(30, 90, 60), "velocity": 100, "note_str": [f"n{k}" for k in range(60)],
                         "preset_name": "p", "soundfont": "sf", "playing_style": "sustained",
                         "instrument_source_str": "acoustic"})
    c = [rng.standard_normal((60, 2)), rng.standard_normal((60, 2))]
    fig = figures.paired_maps(c, ["Mel", "CQT"], meta, "family", np.arange(60), highlight=np.array([1, 2]))
    entries = _legend_entries(fig)
    assert sorted(entries) == sorted(set(entries)) == ["brass", "reed", "selected", "string"]
    groups = {t.legendgroup for t in fig.data}
    assert groups == {"brass", "reed", "string", "selected"}  # each entry toggles its points in both panels


def test_a_downloaded_figure_opens_offline():
    import plotly.graph_objects as go

    html = figures.figure_html(go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))).decode()
    assert "<script src=\"http" not in html and "cdn.plot.ly" not in html.split("</head>")[0]
    assert len(html) > 3_000_000 and "Plotly.newPlot" in html  # plotly.js itself is inside the page


def test_threshold_slider_spans_the_useful_range_only():
    lo, hi = figures.threshold_range(0.950)
    assert lo < 0.950 < hi and hi - lo <= 0.4 + 1e-9  # not -1..1 with every useful value in its last 3 %
    assert figures.threshold_range(0.98) == (0.68, 1.0)  # clipped to the cosine's range
    assert figures.threshold_range(-0.85)[0] == -1.0
