"""Quality-aware fusion (mie_core.fusion) against worked examples and properties."""
from __future__ import annotations

import numpy as np
import pytest

from mie_core import fusion, metrics, scoring
from mie_core.trials import Trials


def test_linear_fusion_recovers_the_gaussian_llr_and_ignores_noise():
    """Equal-variance Gaussian scores, N(2, 1) targets and N(0, 1) non-targets: the true LLR is
    2 x - 2. A second feature of pure noise gets no weight. Tolerances: the standard errors
    of 100,000 trials a side are about 0.01."""
    rng = np.random.default_rng(1)
    t = np.c_[rng.normal(2.0, 1.0, 100_000), rng.normal(0, 1, 100_000)]
    n = np.c_[rng.normal(0.0, 1.0, 100_000), rng.normal(0, 1, 100_000)]
    w, b = fusion.fit_linear_fusion(t, n)
    assert w[0] == pytest.approx(2.0, rel=0.03)
    assert abs(w[1]) < 0.03
    assert b == pytest.approx(-2.0, abs=0.05)
    # with one feature and no ridge it is the back-end's calibration (mie_core.scoring)
    a, b1 = scoring.fit_calibration(t[:, 0], n[:, 0])
    w1, b2 = fusion.fit_linear_fusion(t[:, :1], n[:, :1], l2=0.0)
    assert w1[0] == pytest.approx(a, rel=1e-3) and b2 == pytest.approx(b1, abs=1e-3)
    with pytest.raises(ValueError, match="one width"):
        fusion.fit_linear_fusion(t, n[:, :1])


def test_trial_quality_is_the_wetter_side():
    q = np.array([0.9, 0.8, 0.1, 0.6])
    tr = Trials(enroll=np.array([[0, 1]]), model_label=np.array(["a"]), model=np.array([0, 0]),
                test=np.array([2, 3]), target=np.array([False, True]))
    np.testing.assert_allclose(fusion.trial_quality(q, tr), [0.1, 0.6])


def test_condition_detector_separates_conditions():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 1, (400, 8)) + np.r_[3.0, np.zeros(7)]
    wet = rng.normal(0, 1, (100, 8)) - np.r_[3.0, np.zeros(7)]  # fewer: the classes are weighted equally
    det = fusion.fit_condition_detector(clean, wet)
    assert det.prob_clean(clean).mean() > 0.95 and det.prob_clean(wet).mean() < 0.05
    p = det.prob_clean(np.r_[[[1e4] + [0] * 7], [[-1e4] + [0] * 7]])  # no overflow far out
    np.testing.assert_array_equal(p, [1.0, 0.0])
    with pytest.raises(ValueError, match="one width"):
        fusion.fit_condition_detector(clean, wet[:, :4])


def test_quality_fusion_trusts_each_model_in_its_condition():
    """Clean trials (w = 1): the clean model's LLR separates, the other's is noise; wet trials
    (w = 0): the reverse. The fitted fusion follows the quality and beats each model and
    their equal-weight fusion on the mixture."""
    rng = np.random.default_rng(2)
    n = 20_000
    target = rng.random(n) < 0.5
    w = (rng.random(n) < 0.5).astype(float)
    good = np.where(target, rng.normal(2, 1, n), rng.normal(-2, 1, n))
    noise = rng.normal(0, 1, n)
    l_clean = np.where(w == 1, good, noise)
    l_chain = np.where(w == 1, rng.normal(0, 1, n), np.where(target, rng.normal(2, 1, n), rng.normal(-2, 1, n)))
    fit = fusion.fit_fusion(l_clean[: n // 2], l_chain[: n // 2], w[: n // 2], target[: n // 2])
    held = slice(n // 2, None)
    fused = fit.llr(l_clean[held], l_chain[held], w[held])
    tt = target[held]

    def eer(s):
        return metrics.eer(s[tt], s[~tt])

    # each single model is right on half the trials only; the fusion on nearly all (the
    # Bayes error of N(2,1) vs N(-2,1) is 2.3 %)
    assert eer(fused) < 0.04
    assert eer(l_clean[held]) > 0.2 and eer(l_chain[held]) > 0.2
    assert eer(0.5 * (l_clean[held] + l_chain[held])) > 1.5 * eer(fused)
    # the weights: the clean model counts where w = 1, the chain model where w = 0
    a1, a2, a3, a4, _ = fit.weights
    # (within 10 %: the fit sees 10,000 trials, half of them of each condition)
    assert a1 + a3 > 1.0 and abs(a1) < 0.1 * (a1 + a3)
    assert a2 > 1.0 and abs(a2 + a4) < 0.1 * a2
