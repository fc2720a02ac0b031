"""mie_core.scoring.trials and the protocol over several models (mie_core.evaluation.protocol):
the paper's trials without the release's flaws, identical for every model."""
from __future__ import annotations

import numpy as np
import pytest

from mie_core.evaluation.protocol import compare_models, condition_table
from mie_core.scoring import metrics, trials


# ------------------------------------------------------------------ trials
def test_trial_invariants():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 30)
    tr = trials.make_trials(labels, rng)
    enrolled = set(tr.enroll.ravel().tolist())
    assert tr.enroll.shape == (12, 5) and len(enrolled) == 60
    assert not enrolled & set(tr.test.tolist())  # no enrolment clip is ever scored
    pairs = list(zip(tr.model.tolist(), tr.test.tolist()))
    assert len(pairs) == len(set(pairs))  # no duplicate trial
    assert tr.n_target == 12 * 20 and tr.n_nontarget == 12 * 20
    lab_model = tr.model_label[tr.model]
    assert np.all((labels[tr.test] == lab_model) == tr.target)
    for m in range(12):
        assert np.all(labels[tr.enroll[m]] == tr.model_label[m])
    # seeded: the same generator state gives the same trials
    tr2 = trials.make_trials(labels, np.random.default_rng(0))
    assert np.array_equal(tr.test, tr2.test) and np.array_equal(tr.enroll, tr2.enroll)


def test_small_instruments_give_fewer_targets_and_tiny_ones_are_skipped():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 3)
    tr = trials.make_trials(labels, np.random.default_rng(0))
    assert set(tr.model_label.tolist()) == {0, 1}
    assert (tr.target & (tr.model == 1)).sum() == 5


def test_scores_are_cosines_with_the_enrolment_mean():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 8))
    labels = np.repeat(np.arange(4), 10)
    tr = trials.make_trials(labels, rng, n_enroll=3, n_target=4, n_nontarget=4)
    s = trials.score_trials(emb, tr)
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    c = u[tr.enroll[tr.model[0]]].mean(0)
    assert s[0] == pytest.approx(u[tr.test[0]] @ c / np.linalg.norm(c), rel=1e-5)


def test_separable_embeddings_give_eer_zero():
    rng = np.random.default_rng(0)
    centres = np.eye(10)
    labels = np.repeat(np.arange(10), 30)
    emb = centres[labels] + 0.01 * rng.normal(size=(300, 10))
    t, n = trials.verification_scores(emb, labels, rng)
    assert metrics.eer(t, n) == 0.0


def test_trial_lists_round_trip_in_kaldi_style():
    labels = np.repeat(["violin", "flute", "oboe"], 10)
    ids = np.array([f"clip{i:02d}" for i in range(30)])
    tr = trials.make_trials(labels, np.random.default_rng(0), n_enroll=3, n_target=5, n_nontarget=5)
    text, enroll = trials.trials_to_text(tr, ids)
    first = text.splitlines()[0].split()
    assert len(first) == 3 and first[2] in ("target", "nontarget")
    back = trials.trials_from_text(text, enroll, ids)
    assert np.array_equal(back.test, tr.test) and np.array_equal(back.target, tr.target)
    emb = np.random.default_rng(2).normal(size=(30, 4))
    np.testing.assert_allclose(trials.score_trials(emb, back), trials.score_trials(emb, tr))
    with pytest.raises(ValueError, match="trial line 1"):
        trials.trials_from_text("violin clip00 maybe\n", enroll, ids)


def test_protocol_speed_on_4096_clips():
    import time

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4096, 512)).astype(np.float32)
    labels = np.repeat(np.arange(64), 64)
    start = time.perf_counter()
    trials.verification_scores(emb, labels, rng)
    assert time.perf_counter() - start < 1.0


def test_compare_models_uses_identical_trials_and_reports_everything():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 30)
    fams = np.repeat(np.arange(4), 150)
    good = np.eye(20)[labels] + 0.3 * rng.normal(size=(600, 20))
    bad = np.eye(20)[labels] + 3.0 * rng.normal(size=(600, 20))
    res = compare_models({"good": good, "bad": bad}, labels, fams, seed=1, n_draws=3, n_boot=100)
    g, b = res["models"]["good"], res["models"]["bad"]
    assert g["eer"] < b["eer"] and len(g["eer_draws"]) == 3
    assert res["significance"]["significant"][0][1]
    assert set(g["family_eer"]) == {"0", "1", "2", "3"}
    assert res["_trials"].n_target == 400
    tab = condition_table(res, {"good": "A", "bad": "A"})
    assert tab.iloc[0]["models"] == 2 and tab.iloc[0]["std_over"] == "seeds"
