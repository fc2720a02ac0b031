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
