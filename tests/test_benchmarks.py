"""Every benchmark script answers --help (exit 0, a usage line) without doing its work."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_answers_help(script):
    res = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout


def _held_out_verdicts(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # its `import _common`, for this test only
    spec = importlib.util.spec_from_file_location("held_out_verdicts", REPO / "benchmarks" / "held_out_verdicts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_confusions_count_the_accepted_impostor_pairs_per_source(monkeypatch):
    """Two sources; source a's instrument A meets impostors B (twice, one accepted) and C
    (once, accepted); b's instrument B meets A once, rejected: a lists C then B, b nothing."""
    import numpy as np
    import pandas as pd

    from mie_core.scoring.trials import Trials

    rows = pd.DataFrame({"instrument_str": ["A", "A", "B", "B", "C"], "source": ["a", "a", "b", "b", "b"]})
    d = Trials(enroll=np.array([[0], [2]]), model_label=np.array(["A", "B"]), model=np.array([0, 0, 0, 0, 1]),
               test=np.array([1, 2, 3, 4, 0]), target=np.array([True, False, False, False, False]))
    llr = np.array([3.0, 1.0, -1.0, 0.5, -2.0])
    out = _held_out_verdicts(monkeypatch).confusions([(llr, d)], rows, top=5)
    assert list(out) == ["a"]
    (e1, t1, share1, rate1), (e2, t2, share2, rate2) = sorted(out["a"], key=lambda r: r[2])
    assert (e1, t1, share1, rate1) == ("A", "C", 1 / 3, 1.0)
    assert (e2, t2, share2, rate2) == ("A", "B", 2 / 3, 0.5)
