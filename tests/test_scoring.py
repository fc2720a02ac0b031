"""The scoring back-end (centring, AS-norm, calibration) against worked examples and properties."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mie_core.scoring import backend, metrics, trials
from mie_core.evaluation.embeddings import unit


def test_centring_removes_the_common_direction():
    rng = np.random.default_rng(0)
    common = np.zeros(16, np.float32)
    common[0] = 10.0
    x = common + rng.standard_normal((500, 16)).astype(np.float32)
    raw_cos = unit(x[:250]) @ unit(x[250:]).T
    assert raw_cos.mean() > 0.8  # what raw cosine does on uncentred embeddings
    m = unit(x).mean(0)
    c = backend.centre(x, m)
    assert np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    assert abs((c[:250] @ c[250:].T).mean()) < 0.05
    assert np.linalg.norm(c.mean(0)) < 0.1


def test_asnorm_worked_example():
    # one trial, score 0.5; enrolment side cohort top scores [0.1, 0.3] -> mean 0.2, std 0.1;
    # test side [0.2, 0.2, 0.5, 0.5] top-2 -> mean 0.5, std 0 -> floored at 1e-6
    cohort_e = np.array([[0.1], [0.3]])
    s = np.array([0.5])
    out = backend.asnorm(s, (np.array([0.2]), np.array([0.1])), (np.array([0.4]), np.array([0.2])))
    assert out[0] == pytest.approx(0.5 * ((0.5 - 0.2) / 0.1 + (0.5 - 0.4) / 0.2))
    # cohort_stats picks the top-n scores
    v = np.array([[1.0, 0.0]])
    cohort = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])  # scores 1, 0, 0.6, -1
    m, sd = backend.cohort_stats(v, cohort, 2)
    assert m[0] == pytest.approx(0.8) and sd[0] == pytest.approx(0.2)
    assert cohort_e.shape == (2, 1)


def test_calibration_recovers_the_gaussian_llr():
    """Equal-variance Gaussian scores: the true LLR is linear, a = (mt - mn) / s^2,
    b = -(mt^2 - mn^2) / (2 s^2); logistic regression with prior 0.5 finds it."""
    rng = np.random.default_rng(1)
    mt, mn, sd = 2.0, 0.0, 1.0
    t = rng.normal(mt, sd, 200_000)
    n = rng.normal(mn, sd, 200_000)
    a, b = backend.fit_calibration(t, n)
    assert a == pytest.approx((mt - mn) / sd**2, rel=0.03)
    assert b == pytest.approx(-(mt**2 - mn**2) / (2 * sd**2), abs=0.03)
    # calibrated LLRs beat (or equal) any rescaling of them in Cllr
    llr_t, llr_n = a * t + b, a * n + b
    best = metrics.cllr(llr_t, llr_n)
    for k in (0.5, 2.0):
        assert metrics.cllr(k * llr_t, k * llr_n) > best
    assert metrics.cllr(llr_t + 1.0, llr_n + 1.0) > best


def test_cllr_and_act_dcf_worked_examples():
    assert metrics.cllr(np.zeros(10), np.zeros(10)) == pytest.approx(1.0)  # uninformative: 1 bit
    assert metrics.cllr(np.full(10, 50.0), np.full(10, -50.0)) < 1e-12
    # 1 of 4 targets below 0, 2 of 4 non-targets at or above 0: (0.5 * 0.25 + 0.5 * 0.5) / 0.5
    assert metrics.act_dcf(np.array([-1, 1, 2, 3]), np.array([-2, -1, 0, 1]), 0.5) == pytest.approx(0.75)
    assert backend.sigmoid(backend.logit(0.2)) == pytest.approx(0.2)


def test_backend_on_clusters_separates_and_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    d, n_inst, per = 32, 40, 12
    common = np.full(d, 3.0, np.float32)
    centres = rng.standard_normal((n_inst, d)).astype(np.float32)
    labels = np.repeat(np.arange(n_inst), per)
    emb = common + centres[labels] + 0.4 * rng.standard_normal((labels.size, d)).astype(np.float32)
    train = labels < 30
    be = backend.fit_backend(emb[train], labels[train], top_n=10)
    assert be.cohort.shape == (30, d)
    tr = trials.make_trials(labels[~train], np.random.default_rng(0))
    sc = backend.trial_scores(be, emb[~train], tr)
    from mie_core.scoring import metrics

    e_raw = metrics.eer(sc["raw"][tr.target], sc["raw"][~tr.target])
    e_norm = metrics.eer(sc["asnorm"][tr.target], sc["asnorm"][~tr.target])
    assert e_norm <= e_raw and e_norm < 0.05
    be = be.calibrated(backend.fit_calibration(sc["asnorm"][tr.target], sc["asnorm"][~tr.target]), typical_min=0.1)
    be.save(tmp_path)
    again = backend.Backend.load(tmp_path)
    assert again.calibration == pytest.approx(be.calibration) and again.top_n == 10
    enrol = emb[labels == 35][:5]
    assert again.rule == be.rule == "softmax" and again.temperature == be.temperature
    p_same = again.posterior(again.score(enrol, emb[labels == 35][5:]))
    p_other = again.posterior(again.score(enrol, emb[labels == 36]))
    assert p_same.min() > 0.5 > p_other.max()
    # float16 storage of the cohort: scores agree with the in-memory back-end to 1e-2
    np.testing.assert_allclose(again.score(enrol, emb[:20]), be.score(enrol, emb[:20]), atol=1e-2)


def test_lda_finds_the_discriminant_direction_and_whitens_within_class():
    """Two classes apart along x0, with ten times more within-class spread along x1:
    the first LDA direction is x0 (PCA's would be x1), and W^T S_w W = I."""
    rng = np.random.default_rng(3)
    n = 4000
    labels = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 4)) * np.array([0.5, 5.0, 1.0, 1.0])
    x[:, 0] += 2.0 * labels
    w = backend.fit_lda(x, labels, 1, floor=0.0)
    assert w.shape == (4, 1)
    assert abs(w[0, 0]) / np.linalg.norm(w[:, 0]) > 0.995
    # whitening: unit within-class variance along the projection
    within = x - np.stack([x[labels == k].mean(0) for k in (0, 1)])[labels]
    proj_var = float((within @ w).var())
    assert proj_var == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="dims"):
        backend.fit_lda(x, labels, 2)  # two classes give one discriminant


def test_multicondition_lda_discounts_a_channel_direction(tmp_path):
    """Every instrument also recorded through 'channels' that shift embeddings along a few
    shared directions: a back-end with LDA fitted on clean + channel notes discounts them
    and verifies channel-shifted test notes better than centring alone; it round-trips."""
    from mie_core.scoring import metrics

    rng = np.random.default_rng(4)
    d, n_inst, per = 48, 80, 16
    centres = rng.standard_normal((n_inst, d)).astype(np.float32)
    channels = 2.5 * rng.standard_normal((6, d)).astype(np.float32)
    labels = np.repeat(np.arange(n_inst), per)
    chan = rng.integers(0, 6, labels.size)
    wet = rng.random(labels.size) < 0.5
    emb = 2.0 + centres[labels] + 0.5 * rng.standard_normal((labels.size, d)).astype(np.float32)
    emb[wet] += channels[chan[wet]]
    train = labels < 60
    plain = backend.fit_backend(emb[train], labels[train], top_n=10)
    lda = backend.fit_backend(emb[train], labels[train], top_n=10, lda_dims=32)
    assert lda.projection.shape == (d, 32) and lda.cohort.shape == (60, 32)
    tr = trials.make_trials(labels[~train], np.random.default_rng(0))
    eers = {}
    for name, be in (("plain", plain), ("lda", lda)):
        s = backend.trial_scores(be, emb[~train], tr)["asnorm"]
        eers[name] = metrics.eer(s[tr.target], s[~tr.target])
    assert eers["lda"] < 0.5 * eers["plain"], eers
    lda.save(tmp_path)
    again = backend.Backend.load(tmp_path)
    np.testing.assert_array_equal(again.projection, lda.projection)
    np.testing.assert_allclose(again.vectors(emb[:10]), lda.vectors(emb[:10]), atol=1e-6)
    plain.save(tmp_path)  # a back-end without LDA saved over it leaves no stale projection
    assert backend.Backend.load(tmp_path).projection is None


def test_soft_max_lies_between_the_mean_and_the_maximum():
    s = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0], [-800.0, 800.0, 0.0]])
    np.testing.assert_allclose(backend.soft_max(s[:2], 1e4, axis=1), s[:2].mean(1), atol=1e-3)
    # one clear maximum: T -> 0 gives it, less T log(k)
    np.testing.assert_allclose(backend.soft_max(s[[0, 2]], 1e-3, axis=1), s[[0, 2]].max(1) - 1e-3 * np.log(3), atol=1e-9)
    # T log mean exp(s/T) of equal scores is that score; far-out scores do not overflow
    assert backend.soft_max(s, 0.5, axis=1)[1] == pytest.approx(2.0)
    assert np.isfinite(backend.soft_max(s, 0.01, axis=1)).all()
    # worked example: 0.5 * log((e^0 + e^2 + e^6) / 3)
    assert backend.soft_max(s[0], 0.5) == pytest.approx(0.5 * np.log((1 + np.e ** 2 + np.e ** 6) / 3))
    with pytest.raises(ValueError, match="temperature"):
        backend.soft_max(s, 0.0)


def _registers(rng, n_inst=60, per=16, d=48):
    """Instruments whose notes fall in two registers (two clusters each, as timbre moves
    with pitch), enrolment drawn from both."""
    low, high = rng.standard_normal((2, n_inst, d)).astype(np.float32)
    labels = np.repeat(np.arange(n_inst), per)
    reg = np.tile(np.arange(per) % 2, n_inst).astype(bool)
    emb = 2.0 + np.where(reg[:, None], high[labels], low[labels]) + 0.6 * rng.standard_normal((labels.size, d))
    return emb.astype(np.float32), labels


def test_one_enrolment_clip_scores_alike_under_every_rule():
    """With one enrolment clip the centroid is the clip and the soft maximum of one score is
    that score: the two rules agree to float32 precision."""
    rng = np.random.default_rng(5)
    emb, labels = _registers(rng)
    be = backend.fit_backend(emb[labels < 40], labels[labels < 40], top_n=10)
    cen = backend.Backend(be.mean, be.cohort, be.top_n, rule="centroid")
    test = emb[labels >= 40]
    np.testing.assert_allclose(be.score(test[:1], test[1:]), cen.score(test[:1], test[1:]), atol=1e-5)


def test_softmax_enrolment_beats_the_centroid_on_instruments_with_registers(tmp_path):
    """Five enrolment clips across two registers: their mean lies between the clusters, and
    the soft maximum of clip-wise scores verifies the held-out notes better. The trial-list
    scores and the one-enrolment scores agree; the rule round-trips, and a back-end saved
    without one (before the rules) scores the centroid."""
    from mie_core.scoring import metrics

    rng = np.random.default_rng(6)
    emb, labels = _registers(rng)
    train = labels < 40
    soft = backend.fit_backend(emb[train], labels[train], top_n=10)
    cen = backend.fit_backend(emb[train], labels[train], top_n=10, rule="centroid")
    tr = trials.make_trials(labels[~train], np.random.default_rng(0))
    e = {}
    for name, be in (("softmax", soft), ("centroid", cen)):
        s = backend.trial_scores(be, emb[~train], tr)["asnorm"]
        e[name] = metrics.eer(s[tr.target], s[~tr.target])
    assert e["softmax"] < 0.7 * e["centroid"], e
    # the trial list and Backend.score give the same number for a trial
    s = backend.trial_scores(soft, emb[~train], tr)["asnorm"]
    t = 7
    one = soft.score(emb[~train][tr.enroll[tr.model[t]]], emb[~train][tr.test[t]][None])
    assert one[0] == pytest.approx(s[t], abs=1e-5)
    soft.save(tmp_path)
    assert backend.Backend.load(tmp_path).rule == "softmax"
    meta = json.loads((tmp_path / "backend.json").read_text())
    del meta["rule"], meta["temperature"]
    (tmp_path / "backend.json").write_text(json.dumps(meta))
    old = backend.Backend.load(tmp_path)
    assert old.rule == "centroid"
    enrol, test = emb[labels == 45][:5], emb[labels == 46]
    np.testing.assert_allclose(old.score(enrol, test), cen.score(enrol, test), atol=1e-2)
    with pytest.raises(ValueError, match="enrolment rule"):
        backend.Backend(soft.mean, soft.cohort, rule="median")


def test_a_recalibration_from_few_trials_moves_the_threshold_without_certainty():
    """LLRs that accept every impostor (targets 3..6, impostors 0.5..2): four trials a side
    are separable, so an unshrunk fit makes its slope as large as the optimiser goes; the
    shrunk one keeps the slope near 1 and still moves the threshold between the two kinds."""
    t, n = np.array([3.0, 4.0, 5.0, 6.0]), np.array([0.5, 1.0, 1.5, 2.0])
    a0, _ = backend.fit_calibration(t, n)
    a, b = backend.fit_calibration(t, n, shrink=10.0)
    assert a0 > 5.0
    assert 0.5 < a < 2.0
    assert (a * t + b > 0).all() and (a * n + b < 0).all()
    assert np.abs(a * np.r_[t, n] + b).max() < 6.0


def test_shrinking_a_recalibration_fades_with_many_trials():
    """With 20,000 trials a side of N(+1.5, 1.7) vs N(-0.5, 1.7) LLR-like scores (true LLR
    (2 s - 1) / 1.7^2), the shrunk and unshrunk fits agree: the pull of ten pseudo-trials is
    1/2000 of the data's (the fits' standard errors are about 1 %)."""
    rng = np.random.default_rng(8)
    t, n = rng.normal(1.5, 1.7, 20_000), rng.normal(-0.5, 1.7, 20_000)
    a0, b0 = backend.fit_calibration(t, n)
    a, b = backend.fit_calibration(t, n, shrink=10.0)
    assert a0 == pytest.approx(2.0 / 1.7 ** 2, rel=0.03)
    assert a == pytest.approx(a0, rel=0.01) and b == pytest.approx(b0, abs=0.02)
