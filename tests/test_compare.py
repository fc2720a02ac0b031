"""Comparing models across evaluate reports on identical trials (mie_core.evaluation.compare)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mie_core.scoring import metrics
from mie_core.evaluation.compare import compare_reports, markdown

REPO = Path(__file__).resolve().parent.parent


def result(models: dict, n_t=1960, n_n=1960, parts=("test", "wet")) -> dict:
    """A results.json as evaluate writes it: per part, each model's EER draws."""
    out = {"parts": {}}
    for p in parts:
        out["parts"][p] = {"n_target": n_t, "n_nontarget": n_n, "models": {
            name: {"eer": sum(d) / len(d), "eer_std": 0.0, "eer_first_draw": d[0], "eer_draws": list(d)}
            for name, d in models.items()}}
    return out


def test_eq1_between_reports_as_within_one_run():
    a = result({"ablation": [0.124, 0.12], "mfcc": [0.29, 0.28]})
    b = result({"control": [0.111, 0.113], "mfcc": [0.29, 0.28]})
    c = compare_reports({"A": (a, "same"), "B": (b, "same")})
    assert list(c) == ["test", "wet"]
    test = c["test"]
    assert list(test["models"]) == ["ablation", "mfcc", "control"]  # the shared baseline once
    s = test["significance"]
    i, j = s["names"].index("ablation"), s["names"].index("control")
    z, p = metrics.z_test(0.124, 0.111, 1960, 1960)  # Eq. 1 on the first draw
    assert s["z"][i][j] == pytest.approx(z) and s["p"][i][j] == pytest.approx(p)
    assert s["p_holm"][i][j] >= s["p"][i][j]  # corrected over the three pairs
    assert test["models"]["control"]["report"] == "B"
    text = markdown(c)
    assert "| ablation | A | 12.20 +- 0.00 | 12.20 +- 0.00 |" in text and f"| test | ablation | control | {z:.2f} |" in text


def test_a_model_that_differs_between_reports_is_kept_under_both_names():
    a = result({"mel122": [0.11, 0.12]})
    b = result({"mel122": [0.11, 0.125], "x": [0.2, 0.2]})  # e.g. embedded at another precision
    c = compare_reports({"A": (a, "s"), "B": (b, "s")})
    assert list(c["test"]["models"]) == ["mel122", "mel122@B", "x"]
    assert c["test"]["notes"] == ["test: mel122 scores differently in A and B (another precision, or another part version)"]
    # the weightless MFCC baseline differing means the part's audio differs: said as such
    c = compare_reports({"A": (result({"mfcc_baseline": [0.4]}), "s"), "B": (result({"mfcc_baseline": [0.41]}), "s")})
    assert "the part's audio differs" in c["wet"]["notes"][0] and "the part's audio differs" in markdown(c)


def test_reports_on_other_trials_or_parts_are_refused():
    a, b = result({"a": [0.1]}), result({"b": [0.2]})
    with pytest.raises(ValueError, match="not scored on identical trials"):
        compare_reports({"A": (a, "one"), "B": (b, "two")})
    with pytest.raises(ValueError, match="not in every report"):
        compare_reports({"A": (a, "s"), "B": (result({"b": [0.2]}, parts=("test",)), "s")}, parts=["wet"])
    with pytest.raises(ValueError, match="trial counts differ"):
        compare_reports({"A": (a, "s"), "B": (result({"b": [0.2]}, n_t=100), "s")})
    with pytest.raises(ValueError, match="at least two"):
        compare_reports({"A": (a, "s")})


def test_compare_command(tmp_path):
    def report(name, models, trials="enrol 1 2 3\n"):
        d = tmp_path / name
        d.mkdir()
        (d / "results.json").write_text(json.dumps(result(models)))
        (d / "trials.txt").write_text(trials)
        return str(d)

    a, b = report("abl", {"abl500": [0.124]}), report("ctrl", {"ctrl500": [0.111]})
    res = subprocess.run([sys.executable, "-m", "mie_core", "compare", a, b, "--parts", "test", "--out",
                          str(tmp_path / "t.md")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "| abl500 | abl | 12.40 +- 0.00 |" in res.stdout and (tmp_path / "t.md").read_text() == res.stdout
    other = report("other", {"o": [0.1]}, trials="enrol 9\n")
    res = subprocess.run([sys.executable, "-m", "mie_core", "compare", a, other], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and "not scored on identical trials" in res.stderr
    res = subprocess.run([sys.executable, "-m", "mie_core", "compare", a, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no results.json" in res.stderr
