"""mie_core.scoring.metrics: EER (ROCCH against the BOSARIS reference vectors, interpolated),
minDCF, DET, bootstrap, the paper's Eq. 1 and Holm-Bonferroni."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mie_core.scoring import metrics

# BOSARIS ROCCH-EER reference vectors, a copy of the team's ../shared/notes/eer_reference_vectors.json
REFERENCE = Path(__file__).resolve().parent / "data" / "eer_reference_vectors.json"


# ------------------------------------------------------------------ EER
def test_separable_and_inverted_scores():
    t, n = [2.0, 3.0, 4.0], [-1.0, 0.0, 1.0]
    assert metrics.eer(t, n, "rocch") == 0.0 and metrics.eer(t, n, "interp") == 0.0
    assert metrics.eer(n, t, "interp") == 1.0
    assert metrics.eer(n, t, "rocch") == 0.5  # the convex hull never falls below chance


def test_hand_worked_case():
    # targets 0.3, 0.8; non-targets 0.1, 0.5. Sorted: 0.1 n, 0.3 t, 0.5 n, 0.8 t.
    # interp: at threshold 0.5, P_miss = 1/2 (0.3 rejected) and P_fa = 1/2 (0.5 accepted) -> 0.5.
    # rocch: PAV pools the violating pair (0.3 t, 0.5 n); the hull's vertices (P_fa, P_miss) are
    # (1, 0), (1/2, 0), (0, 1/2), (0, 1); P_fa = P_miss on the segment (1/2, 0)-(0, 1/2) at 1/4.
    assert metrics.eer([0.3, 0.8], [0.5, 0.1], "rocch") == pytest.approx(0.25)
    assert metrics.eer([0.3, 0.8], [0.5, 0.1], "interp") == pytest.approx(0.5)


def test_reference_vectors_match_to_1e9():
    cases = json.loads(REFERENCE.read_text())["cases"]
    assert len(cases) >= 3
    for c in cases:
        assert abs(metrics.eer(c["target"], c["nontarget"], "rocch") - c["rocch_eer"]) < 1e-9, c["name"]


def _brute_interp(t, n):
    """Independent O(n^2) computation: P_miss and P_fa at every threshold, linear crossing."""
    thr = np.concatenate([[np.inf], np.sort(np.unique(np.concatenate([t, n])))[::-1]])
    pmiss = np.array([(t < th).mean() for th in thr])
    pfa = np.array([(n >= th).mean() for th in thr])
    d = pmiss - pfa
    i = np.argmax(d <= 0)
    a = d[i - 1] / (d[i - 1] - d[i])
    return pfa[i - 1] + a * (pfa[i] - pfa[i - 1])


def test_interp_eer_matches_a_brute_force_computation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        t = rng.normal(1, 1, rng.integers(5, 60)).round(1)  # rounding makes ties
        n = rng.normal(0, 1, rng.integers(5, 200)).round(1)
        assert metrics.eer(t, n, "interp") == pytest.approx(_brute_interp(t, n), abs=1e-12)
        assert metrics.eer(t, n, "rocch") <= metrics.eer(t, n, "interp") + 1e-12


def test_eer_scales_n_log_n():
    import time

    rng = np.random.default_rng(0)
    t, n = rng.normal(1, 1, 200_000), rng.normal(0, 1, 2_000_000)
    start = time.perf_counter()
    e = metrics.eer(t, n, "rocch")
    assert time.perf_counter() - start < 10 and 0.25 < e < 0.35  # normal EER for d' = 1 is 0.309


def test_min_dcf_det_and_threshold():
    t, n = np.array([0.9, 0.8, 0.7, 0.2]), np.array([0.1, 0.3, 0.75, 0.0])
    # best operating point at p_target 0.5: threshold 0.7 -> P_miss 1/4, P_fa 1/4 -> cost 0.25 / 0.5
    assert metrics.min_dcf(t, n, p_target=0.5) == pytest.approx(0.5)
    assert metrics.min_dcf([2, 3], [0, 1]) == 0.0
    d = metrics.det_curve(t, n)
    assert d["p_fa"][0] == 0 and d["p_miss"][0] == 1 and d["p_fa"][-1] == 1 and d["p_miss"][-1] == 0
    assert np.all(np.diff(d["p_fa"]) >= 0) and np.all(np.diff(d["p_miss"]) <= 0)
    th = metrics.eer_threshold(t, n)
    assert 0.3 <= th <= 0.8


def test_bootstrap_interval_contains_the_estimate_and_resamples_instruments():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 20)
    t = rng.normal(2, 1, groups.size) + rng.normal(0, 1, 30)[groups]  # instrument effects
    n = rng.normal(0, 1, groups.size)
    lo, hi = metrics.bootstrap_eer(t, n, groups, groups, np.random.default_rng(1), n_boot=300)
    e = metrics.eer(t, n)
    assert lo <= e <= hi and hi - lo > 0.01


# ------------------------------------------------------------------ significance
def test_z_test_is_eq_1():
    z, p = metrics.z_test(0.05, 0.03, 1000, 1000)
    expect = 2 * 0.02 / np.sqrt((0.05 * 0.95 + 0.03 * 0.97) * 2000 / 1e6)
    assert z == pytest.approx(expect) and p == pytest.approx(2 * (1 - __import__("scipy").stats.norm.cdf(expect)))
    assert metrics.z_test(0.1, 0.1, 100, 100) == (0.0, 1.0)


def test_holm_on_a_worked_example():
    # m = 4: sorted p 0.01, 0.02, 0.03, 0.04 against 0.05/4, 0.05/3, 0.05/2, 0.05/1:
    # 0.01 <= 0.0125 reject; 0.02 > 0.01667 stop -> only the first is rejected
    reject, adj = metrics.holm_bonferroni([0.03, 0.01, 0.04, 0.02], 0.05)
    assert reject.tolist() == [False, True, False, False]
    np.testing.assert_allclose(adj, [0.06, 0.04, 0.06, 0.06])
    # step-down stops at the first failure even if a later p would pass its own bound
    reject, _ = metrics.holm_bonferroni([0.001, 0.04, 0.045], 0.05)
    assert reject.tolist() == [True, False, False]


def test_significance_matrix_is_symmetric():
    s = metrics.significance_matrix([0.05, 0.05, 0.10], 2000, 2000)
    assert not s["significant"][0, 1] and s["significant"][0, 2] and s["significant"][2, 0]
    assert np.allclose(s["z"], s["z"].T) and np.all(np.diag(s["p"]) == 1)
