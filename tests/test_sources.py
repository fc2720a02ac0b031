"""Real notes by source (mie_core.scoring.sources, mie_core.data.realrec): every figure fitted without
the source it scores."""
from __future__ import annotations

import numpy as np
import pytest

from mie_core.data import realrec
from mie_core.scoring import sources, trials


def test_every_tonejs_package_has_its_collection():
    assert set(realrec.TONEJS_SOURCE) == set(realrec.TONEJS)
    counts = {s: sum(v == s for v in realrec.TONEJS_SOURCE.values()) for s in set(realrec.TONEJS_SOURCE.values())}
    # sample-source-info.txt: VSCO-2 12, Karoryfer 3, Freesound 3, Iowa 1; the clarinet is not listed
    assert counts == {"vsco2": 12, "karoryfer": 3, "freesound": 3, "iowa": 1, "unlisted": 1}


def test_salamander_names_are_read_as_notes_and_layers():
    assert realrec._salamander_name("D#4v10.mp3") == "Ds4v10.mp3"
    assert realrec._salamander_name("A0v4.mp3") == "A0v4.mp3"
    assert realrec._salamander_name("index.js") is None
    assert realrec.note_to_midi("Ds4") == 63


def test_the_fit_for_a_source_never_sees_its_trials():
    """A fit that records what it was given: no trial of the scored source, as enrolment
    or as test clip, reaches the fit applied to it."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 12)
    src_of_inst = np.array(["a", "a", "b", "b", "c", "c"])
    tr = trials.make_trials(labels, rng, n_enroll=3, n_target=5, n_nontarget=5)
    enrol_src, test_src = sources.trial_sources(src_of_inst[labels], tr.enroll, tr.model, tr.test)
    llr = rng.standard_normal(tr.target.size) + 2 * tr.target
    seen = []

    def fit(x, target):
        seen.append(x[:, 0].copy())
        return np.ones(1), 0.0

    out, params = sources.leave_one_source_out(llr, tr.target, enrol_src, test_src, fit=fit)
    assert sorted(params) == ["a", "b", "c"]
    for s, given in zip(sorted(params), seen):
        touching = llr[(enrol_src == s) | (test_src == s)]
        assert not np.isin(given, touching).any()
    np.testing.assert_allclose(out, llr)  # the identity fit gives the scores back


def test_a_balanced_fit_weighs_each_source_alike_and_never_sees_the_scored_one():
    """``balanced``: the fit gets the fitted trials' sources as groups (never the scored one),
    and fit_linear with groups weighs each source's trials alike: a source of many trials no
    longer sets the offset alone; with groups of equal counts it is the plain fit."""
    rng = np.random.default_rng(4)
    # source "big": 400 + 400 trials centred at 0; "small": 20 + 20 centred at 3 (a harder source)
    src = np.r_[np.repeat("big", 800), np.repeat("small", 40)]
    t = np.r_[np.arange(800) < 400, np.arange(40) < 20]
    x = np.where(t, 2.0, -2.0) + np.where(src == "small", 3.0, 0.0) + rng.normal(size=src.size)
    (_, b_pooled), (_, b_bal) = sources.fit_linear(x, t), sources.fit_linear(x, t, groups=src)
    assert b_bal < b_pooled - 0.3  # the small source's higher scores now count as much as the big one's
    even = np.r_[np.repeat("a", 400), np.repeat("b", 400)][np.r_[np.arange(0, 800, 2), np.arange(1, 800, 2)]]
    np.testing.assert_allclose(np.r_[sources.fit_linear(x[:800], t[:800], groups=even)],
                               np.r_[sources.fit_linear(x[:800], t[:800])], rtol=1e-4, atol=1e-6)
    seen = []

    def fit(xs, target, groups):
        seen.append(set(groups.tolist()))
        return np.ones(1), 0.0

    three = np.r_[src, np.repeat("third", 40)]
    out, _ = sources.leave_one_source_out(np.r_[x, x[-40:]], np.r_[t, t[-40:]], three, three, fit=fit, balanced=True)
    assert seen == [{"small", "third"}, {"big", "third"}, {"big", "small"}]


def test_an_affine_recalibration_moves_the_threshold_not_the_eer():
    rng = np.random.default_rng(1)
    target = np.r_[np.ones(400, bool), np.zeros(400, bool)]
    llr = np.where(target, 1.0, -1.0) + rng.standard_normal(800) + 3.0  # every impostor accepted before
    src = np.where(np.arange(800) % 2, "a", "b")
    before = sources.source_rates(llr, target, src)
    after, params = sources.leave_one_source_out(llr, target, src, src)
    now = sources.source_rates(after, target, src)
    for s in "ab":
        assert now[s]["eer"] == pytest.approx(before[s]["eer"])
        assert before[s]["impostors_rejected"] < 0.1 and now[s]["impostors_rejected"] > 0.7
        assert params[s][0][0] > 0


def test_pitch_gaps_of_trials_are_to_the_nearest_enrolment_note():
    midi = np.array([60.0, 64.0, 72.0, 61.0, np.nan])
    gaps = sources.trial_pitch_gaps(midi, enroll=np.array([[0, 1, 2]]), model=np.array([0, 0]), test=np.array([3, 4]))
    np.testing.assert_allclose(gaps, [1.0, np.nan])


def test_the_verdict_is_the_bayes_decision_at_any_prior():
    """Accept when the posterior is at least one half: ``llr + logit(prior) >= 0``; a high prior
    accepts weaker evidence, a low one asks for more."""
    llr = np.array([-1.0, 1.0, -1.0, 1.0])
    target = np.array([True, True, False, False])
    high, low = sources.verdict_rates(llr, target, prior=0.9), sources.verdict_rates(llr, target, prior=0.1)
    assert (high["genuine_accepted"], high["impostors_rejected"]) == (1.0, 0.0)  # -logit(0.9) = -2.2
    assert (low["genuine_accepted"], low["impostors_rejected"]) == (0.0, 1.0)  # -logit(0.1) = +2.2


def test_a_fusion_refitted_without_each_source_uses_every_feature_and_ships_one_fit_on_all():
    """``measure_sources``' ``fusion``: with the LLR as its one feature it is the affine
    recalibration exactly; with a second feature that carries the target in the other
    sources it is fitted without the scored source and improves on the LLR alone; the
    shipped fit (``fit_real_fusion``) sees every source and matches ``fit_real_calibration``
    on one feature."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(9), 14)
    src_of_inst = np.array(list("aaabbbccc"))[labels]
    draws = [trials.make_trials(labels, np.random.default_rng(k), n_enroll=3, n_target=6, n_nontarget=6)
             for k in range(2)]
    llrs = [rng.standard_normal(d.target.size) + 0.8 * d.target for d in draws]
    one = sources.measure_sources(llrs, draws, src_of_inst, feature_draws=[x[:, None] for x in llrs])
    assert one["fusion"] == one["loso"]
    good = [np.c_[x, 3.0 * d.target + 0.3 * rng.standard_normal(x.size)] for x, d in zip(llrs, draws)]
    two = sources.measure_sources(llrs, draws, src_of_inst, feature_draws=good)
    assert two["fusion"]["pooled"]["eer"] < 0.5 * two["loso"]["pooled"]["eer"]
    # the shipped fit on all trials: scores x ~ N(+-1, 1) have the true LLR 2 x (standard errors of
    # 20,000 trials a side: about 0.03 on the slope)
    from types import SimpleNamespace

    target = np.r_[np.ones(20_000, bool), np.zeros(20_000, bool)]
    x = np.where(target, 1.0, -1.0) + rng.standard_normal(target.size)
    fake = [SimpleNamespace(target=target[:20_000 + 10_000]), SimpleNamespace(target=target[30_000:])]
    parts = [x[:30_000], x[30_000:]]  # two draws: 20,000 + 10,000 trials, then 10,000
    w, b = sources.fit_real_fusion([p[:, None] for p in parts], fake)
    a, b1 = sources.fit_real_calibration(parts, fake)
    assert w.shape == (1,) and w[0] == pytest.approx(2.0, abs=0.1) and b == pytest.approx(0.0, abs=0.1)
    assert (a, b1) == (w[0], b)


def test_the_unseen_margin_lifts_the_worst_held_out_source_and_is_zero_where_sources_agree():
    rng = np.random.default_rng(1)
    n = 300
    t = np.tile(np.arange(n) < n // 2, 4)
    src = np.repeat(np.array(["a", "b", "c", "d"]), n)
    same = np.where(t, 2.5, -2.5) + rng.normal(size=4 * n)
    m0 = sources.unseen_margin(same, t, src, src)
    assert abs(m0) <= 0.3  # sources alike: the fitted map needs no margin (within the grid's noise)
    harder = same + np.where(t, 0.0, np.repeat([0.0, 0.7, 1.4, 2.1], n))  # each source's impostors higher
    m = sources.unseen_margin(harder, t, src, src)
    assert m > m0 + 0.2
    # the margin is the grid value with the best worst-source verdict: no other does better
    held, _ = sources.leave_one_source_out(harder, t, src, src)

    def worst(delta):
        return min(min((held[(src == s) & t] - delta >= 0).mean(), (held[(src == s) & ~t] - delta < 0).mean())
                   for s in "abcd")

    assert worst(m) >= max(worst(g) for g in sources.MARGIN_GRID) - 1e-12
    # mixed at weight w, the margin acts through w: at w = 0 nothing moves, and any margin is as good
    assert sources.unseen_margin(harder, t, src, src, mix=(harder, np.zeros(4 * n))) == 0.0
