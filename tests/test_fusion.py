"""Quality-aware fusion (mie_core.scoring.fusion) against worked examples and properties."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mie_core.scoring import backend, fusion, metrics
from mie_core.scoring.trials import Trials


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
    # with one feature and no ridge it is the back-end's calibration (mie_core.scoring.backend)
    a, b1 = backend.fit_calibration(t[:, 0], n[:, 0])
    w1, b2 = fusion.fit_linear_fusion(t[:, :1], n[:, :1], l2=0.0)
    assert w1[0] == pytest.approx(a, rel=1e-3) and b2 == pytest.approx(b1, abs=1e-3)
    with pytest.raises(ValueError, match="one width"):
        fusion.fit_linear_fusion(t, n[:, :1])


def test_trial_weights_count_as_repeated_trials():
    """A trial weighted 3 inside its class is fitted as three copies of it: the weighted fit
    equals the fit on the repeated trials (to the optimiser's tolerance)."""
    rng = np.random.default_rng(2)
    t, n = rng.normal(1.0, 1.0, (40, 2)), rng.normal(-1.0, 1.5, (70, 2))
    wt, wn = rng.integers(1, 4, 40), rng.integers(1, 4, 70)
    w1, b1 = fusion.fit_linear_fusion(t, n, target_weight=wt, nontarget_weight=wn)
    w2, b2 = fusion.fit_linear_fusion(np.repeat(t, wt, axis=0), np.repeat(n, wn, axis=0))
    np.testing.assert_allclose(np.r_[w1, b1], np.r_[w2, b2], rtol=1e-3, atol=1e-4)
    w0, _ = fusion.fit_linear_fusion(t, n)
    assert np.abs(w1 - w0).max() > 1e-3  # the weights change the fit
    with pytest.raises(ValueError, match="non-negative"):
        fusion.fit_linear_fusion(t, n, target_weight=-np.ones(40))


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
    fit = fusion.fit_weights([l_clean[: n // 2], l_chain[: n // 2]], w[: n // 2], target[: n // 2])
    held = slice(n // 2, None)
    fused = fit.llr([l_clean[held], l_chain[held]], w[held])
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


def _two_backends(seed=3, n_inst=30, per=8, d=16):
    """Two calibrated back-ends over the same clips (a 'clean' and a 'chain' view of them)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_inst), per)
    views = []
    for k in range(2):
        centres = rng.standard_normal((n_inst, d)).astype(np.float32)
        emb = 1.5 + centres[labels] + (0.4 + 0.3 * k) * rng.standard_normal((labels.size, d)).astype(np.float32)
        be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
        be = be.calibrated((3.0 + k, -1.0 - k))
        views.append((be, emb))
    return views, labels


def _fitted(views, labels, seed=4):
    (bp, ep), (bm, em) = views
    rng = np.random.default_rng(seed)
    wet_m, wet_p = em + rng.normal(0, 1, em.shape), ep + rng.normal(0, 1, ep.shape)
    held = labels >= 20
    from mie_core.scoring.trials import make_trials

    tr = make_trials(labels[held], np.random.default_rng(0), 3, 3, 3)
    # the member order: the main (chain) model first, then its clean partner
    return fusion.fit_fusion([bm, bp], [em, ep], [wet_m, wet_p], [([em[held], ep[held]], tr)]), tr


def test_system_llr_is_the_trial_llr_and_reduces_to_one_model():
    """The app's path (one enrolment, many clips) and the evaluation's (a trial list) give the
    same fused LLRs; with weights (1, 0, 0, 0, 0) the fusion is the main model alone."""
    views, labels = _two_backends()
    (bp, ep), (bm, em) = views
    qf, _ = _fitted(views, labels)
    held = labels >= 20
    em, ep, lab = em[held], ep[held], labels[held]
    from mie_core.scoring.trials import make_trials

    tr = make_trials(lab, np.random.default_rng(7), 3, 4, 4)
    want = fusion.trial_llrs([bm, bp], qf, [em, ep], tr)
    for m in range(len(tr.model_label)):
        sel = np.flatnonzero(tr.model == m)
        enrol = tr.enroll[m]
        got, w = fusion.system_llr([bm, bp], qf, [em[enrol], ep[enrol]], [em[tr.test[sel]], ep[tr.test[sel]]])
        # the back-end's vectors are float32 and the two paths average the enrolment in another
        # order: equal to a few float32 ulps of the normalised scores, amplified by the calibration
        np.testing.assert_allclose(got, want[sel], rtol=1e-5, atol=1e-5 * np.abs(want).max())
        assert ((0 <= w) & (w <= 1)).all()
    alone = fusion.QualityFusion(qf.detector, fusion.Fusion(np.r_[1.0, 0.0, 0.0, 0.0, 0.0], 0.0))
    np.testing.assert_allclose(fusion.trial_llrs([bm, bp], alone, [em, ep], tr),
                               backend.trial_scores(bm, em, tr)["llr"], rtol=1e-12)


def test_quality_fusion_saves_and_loads_exactly(tmp_path):
    views, labels = _two_backends()
    qf, _ = _fitted(views, labels)
    assert qf.info["fusion_trials"] > 0 and qf.info["detector_notes"]["clean"] == len(labels)
    qf.save(tmp_path)
    back = fusion.QualityFusion.load(tmp_path)
    np.testing.assert_array_equal(back.detector.coef, qf.detector.coef)  # JSON keeps every float64 bit
    np.testing.assert_array_equal(back.fusion.weights, qf.fusion.weights)
    assert back.detector.intercept == qf.detector.intercept and back.fusion.offset == qf.fusion.offset
    (tmp_path / "fusion.json").write_text('{"detector": {"coef": [1, 2]}}')
    with pytest.raises(ValueError, match="fusion.json"):
        fusion.QualityFusion.load(tmp_path)


def test_a_pairs_file_holds_the_clean_partner_first_and_loads_main_first(tmp_path):
    """Every pair's fusion.json since the first release lists the clean partner first (its
    features say ``l_clean, l_chain``); in memory the member order is the main model first.
    Saving writes the partner's weights and detector block first; loading swaps them back, and
    a file written by hand in the old order scores the same LLRs as the fitted fusion."""
    views, labels = _two_backends()
    (bp, ep), (bm, em) = views
    qf, tr = _fitted(views, labels)
    qf.save(tmp_path)
    meta = json.loads((tmp_path / "fusion.json").read_text())
    assert meta["features"][:2] == ["l_clean", "l_chain"]
    d = len(qf.detector.coef) // 2
    w = qf.fusion.weights
    np.testing.assert_array_equal(meta["fusion"]["weights"], [w[1], w[0], w[3], w[2], w[4]])
    np.testing.assert_array_equal(meta["detector"]["coef"], np.r_[qf.detector.coef[d:], qf.detector.coef[:d]])
    held = labels >= 20
    back = fusion.QualityFusion.load(tmp_path)
    np.testing.assert_array_equal(fusion.trial_llrs([bm, bp], back, [em[held], ep[held]], tr),
                                  fusion.trial_llrs([bm, bp], qf, [em[held], ep[held]], tr))
    # the same LLR as the old order's computation over the file's numbers, partner first
    file_qf = fusion.QualityFusion(fusion.ConditionDetector(np.asarray(meta["detector"]["coef"]), qf.detector.intercept),
                                   fusion.Fusion(np.asarray(meta["fusion"]["weights"]), qf.fusion.offset), members=("p", "m"),
                                   main="p")
    np.testing.assert_allclose(fusion.trial_llrs([bp, bm], file_qf, [ep[held], em[held]], tr),
                               fusion.trial_llrs([bm, bp], back, [em[held], ep[held]], tr), rtol=1e-12, atol=1e-12)
    meta["detector"]["coef"] = meta["detector"]["coef"][:-1]  # two members of one width: an even count
    (tmp_path / "fusion.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="one width"):
        fusion.QualityFusion.load(tmp_path)


class _Encoder:
    """A stand-in encoder: returns fixed embeddings for clip indices."""

    def __init__(self, emb):
        self.table = emb
        self.args = type("A", (), {"embed_dim": emb.shape[1]})()

    def embed(self, clips, bf16=False):
        return self.table[np.asarray(clips, int)]


def test_a_fused_verifier_scores_with_the_fused_llr(tmp_path):
    from mie_core.service import verify

    views, labels = _two_backends()
    (bp, ep), (bm, em) = views
    qf, _ = _fitted(views, labels)
    (tmp_path / "p").mkdir()
    (tmp_path / "m").mkdir()
    for folder, e in ((tmp_path / "p", ep), (tmp_path / "m", em)):
        (folder / "model.safetensors").write_bytes(e.tobytes())  # what the hash reads
    partner = verify.Verifier(tmp_path / "p", _Encoder(ep), bp, None, None)
    v = verify.Verifier(tmp_path / "m", _Encoder(em), bm, None, None, others=(partner,), fusion=qf)
    alone = verify.Verifier(tmp_path / "m", _Encoder(em), bm, None, None)
    assert v.fused and v.width == em.shape[1] + ep.shape[1] and v.hash != alone.hash
    enrol, test = [200, 201, 202], [203, 204, 230, 231]  # instrument 25; then 25 twice and 28 twice
    res = verify.verify(v, v.embed(enrol), v.embed(test), prior=0.5)
    llr, w = fusion.system_llr([bm, bp], qf, [em[enrol], ep[enrol]], [em[test], ep[test]])
    np.testing.assert_allclose(res["llr"], llr)
    np.testing.assert_allclose(res["quality"], w)
    np.testing.assert_allclose(res["probability"], backend.sigmoid(llr))
    assert res["accept"].tolist() == [True, True, False, False]
    np.testing.assert_allclose(res["score"], verify.verify(alone, em[enrol], em[test])["score"])  # the main model's
    # the user's recalibration is affine on the system's LLR
    re = verify.verify(v, v.embed(enrol), v.embed(test), recalibration=(0.5, 1.0))
    np.testing.assert_allclose(re["llr"], 0.5 * llr + 1.0)
    with pytest.raises(ValueError, match="width"):  # e.g. a library enrolled with the main model alone
        verify.verify(v, em[enrol], v.embed(test))


def test_fusion_features_lay_out_every_member_then_the_quality():
    """Three members: l1, l2, l3, w l1, w l2, w l3, w; two members are the pair's layout
    (l_clean, l_chain, w l_clean, w l_chain, w)."""
    l1, l2, l3, w = np.array([1.0, -2.0]), np.array([3.0, 0.5]), np.array([-1.0, 4.0]), np.array([0.5, 0.25])
    np.testing.assert_array_equal(fusion.fusion_features([l1, l2, l3], w),
                                  [[1.0, 3.0, -1.0, 0.5, 1.5, -0.5, 0.5], [-2.0, 0.5, 4.0, -0.5, 0.125, 1.0, 0.25]])
    np.testing.assert_array_equal(fusion.fusion_features([l1, l2], w), [[1.0, 3.0, 0.5, 1.5, 0.5], [-2.0, 0.5, -0.5, 0.125, 0.25]])


def _member_views(widths=(16, 12, 8), seed=5, n_inst=30, per=8):
    """Calibrated back-ends of models of different widths over the same clips."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_inst), per)
    views = []
    for k, d in enumerate(widths):
        centres = rng.standard_normal((n_inst, d)).astype(np.float32)
        emb = 1.5 + centres[labels] + (0.5 + 0.2 * k) * rng.standard_normal((labels.size, d)).astype(np.float32)
        be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
        be = be.calibrated((2.0 + k, -0.5 * k))
        views.append((be, emb))
    return views, labels


def test_a_system_of_three_models_scores_as_its_trial_list_and_keeps_its_members(tmp_path):
    """Three members of widths 16, 12 and 8, the second the main one: the member order is the
    main model first (``b, a, c``), for the embedding's columns and the fusion alike; the
    verdict's LLR is the m-member trial LLR of the same trials; identification over every
    member gives unit vectors; the fusion file names its members, and refuses a weight count
    that is not 2m + 1 and a main member that is not first."""
    from dataclasses import replace

    from mie_core.service import verify
    from mie_core.scoring.trials import make_trials

    views, labels = _member_views()
    views = [views[1], views[0], views[2]]  # the member order: b (main), a, c
    backends, embs = [b for b, _ in views], [e for _, e in views]
    rng = np.random.default_rng(6)
    held = labels >= 20
    tr = make_trials(labels[held], np.random.default_rng(0), 3, 3, 3)
    qf = fusion.fit_fusion(backends, embs, [e + rng.normal(0, 1, e.shape) for e in embs],
                                  [([e[held] for e in embs], tr)])
    qf = replace(qf, members=("b", "a", "c"), main="b")
    assert qf.fusion.weights.shape == (7,) and qf.n_members == 3
    qf.save(tmp_path)
    back = fusion.QualityFusion.load(tmp_path)
    assert back.members == ("b", "a", "c") and back.main == "b"
    np.testing.assert_array_equal(back.fusion.weights, qf.fusion.weights)
    members = []
    for name, (be, e) in zip("bac", views):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(e.tobytes())  # what the hash reads
        members.append(verify.Verifier(tmp_path / name, _Encoder(e), be, None, None))
    b, a, c = members
    v = verify.Verifier(tmp_path, b.encoder, b.backend, None, None, others=(a, c), fusion=back, weights=b.path)
    assert v.fused and v.width == 12 + 16 + 8 and [p.name for p in v.member_paths] == ["b", "a", "c"]
    clips = np.arange(len(labels))[held]
    emb = v.embed(clips)
    parts = v.split(emb)
    assert [x.shape[1] for x in parts] == [12, 16, 8]
    np.testing.assert_array_equal(parts[1], embs[1][clips])
    got_be, got_parts = v.fusion_members(emb)
    assert got_be == backends and all(np.array_equal(x, y) for x, y in zip(got_parts, parts))
    want = fusion.trial_llrs(backends, back, [e[held] for e in embs], tr)
    for m in range(len(tr.model_label)):
        sel = tr.model == m
        got = verify.verify(v, emb[tr.enroll[m]], emb[tr.test[sel]])
        np.testing.assert_allclose(got["llr"], want[sel], rtol=1e-5, atol=1e-5 * np.abs(want).max())
        np.testing.assert_allclose(got["score"], b.backend.score(parts[0][tr.enroll[m]], parts[0][tr.test[sel]]))
    # identification over every member: each member's unit vectors side by side over sqrt(3)
    v.centroids = np.zeros((2, 36), np.float32)
    np.testing.assert_allclose(np.linalg.norm(v.identify_vectors(emb), axis=1), 1.0, rtol=1e-5)
    v.centroids = np.zeros((2, 12), np.float32)  # the main model's space
    np.testing.assert_allclose(v.identify_vectors(emb), b.backend.vectors(parts[0]))
    # the same members in another order are the same system, permuted: the same LLRs
    perm = (0, 2, 1)
    moved = back.permuted(perm, [x.shape[1] for x in parts])
    np.testing.assert_allclose(fusion.trial_llrs([backends[i] for i in perm], moved, [embs[i][held] for i in perm], tr),
                               want, rtol=1e-12, atol=1e-12)
    # the hash names every member's weights: another member order makes another system
    other = verify.Verifier(tmp_path, b.encoder, b.backend, None, None, others=(c, a), fusion=moved, weights=b.path)
    assert v.hash != other.hash and v.hash != b.hash
    meta = json.loads((tmp_path / "fusion.json").read_text())
    meta["main"] = "a"
    (tmp_path / "fusion.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="its main one first"):
        fusion.QualityFusion.load(tmp_path)
    meta["main"] = "b"
    meta["fusion"]["weights"] = meta["fusion"]["weights"][:5]
    (tmp_path / "fusion.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="3 models needs 7"):
        fusion.QualityFusion.load(tmp_path)


def test_a_real_notes_calibration_refits_the_fusion_weights_and_nothing_else(tmp_path):
    """``RealCalibration`` (issue 29): a fused system's weights refitted on real notes replace the
    fusion's weights alone (detector, back-ends, embeddings and the library's hash unchanged),
    so its LLR is the fusion's features times the new weights; an affine one is ``a llr + b``
    on the model's own LLR, fused or not; the first file format still loads; a fusion of
    another size is refused."""
    from mie_core.service import verify

    views, labels = _two_backends()
    (bp, ep), (bm, em) = views
    qf, _ = _fitted(views, labels)
    for folder, e in ((tmp_path / "p", ep), (tmp_path / "m", em)):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(e.tobytes())
    partner = verify.Verifier(tmp_path / "p", _Encoder(ep), bp, None, None)
    v = verify.Verifier(tmp_path / "m", _Encoder(em), bm, None, None, others=(partner,), fusion=qf)
    enrol, test = [200, 201, 202], [203, 204, 230, 231]
    own = verify.verify(v, v.embed(enrol), v.embed(test))
    weights = np.array([0.5, 2.0, -0.25, 0.75, 1.0])
    rc = verify.RealCalibration("fusion", tuple(weights), -0.5, {"a": {"genuine_accepted": 0.9,
                                "impostors_rejected": 0.95}, "pooled": {}}, {}, {"sources": ["a"]})
    rv = rc.applied(v)
    assert rv.hash == v.hash and rv.fusion.detector is v.fusion.detector and v.fusion.fusion is qf.fusion
    got = verify.verify(rv, rv.embed(enrol), rv.embed(test))
    llr, w = fusion.system_llr([bm, bp], qf, [em[enrol], ep[enrol]], [em[test], ep[test]])
    clean = bp.llr(bp.score(ep[enrol], ep[test]))
    chain = bm.llr(bm.score(em[enrol], em[test]))
    want = fusion.fusion_features([chain, clean], w) @ weights - 0.5
    np.testing.assert_allclose(got["llr"], want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got["quality"], own["quality"])
    np.testing.assert_allclose(own["llr"], llr)
    assert rc.worst() == (0.9, 0.95)
    # saved and loaded exactly; the first format (an affine a, b) still loads
    rc.save(tmp_path / "m")
    assert verify.RealCalibration.load(tmp_path / "m") == rc
    # in a pair's folder (fusion.json and clean/) the file holds the clean partner first, as
    # every shipped pair's; loaded, main first again
    qf.save(tmp_path / "m")
    (tmp_path / "m" / "clean").mkdir()
    (tmp_path / "m" / "model.json").write_text("{}")
    rc.save(tmp_path / "m")
    on_file = json.loads((tmp_path / "m" / "real_calibration.json").read_text())["weights"]
    assert on_file == [2.0, 0.5, 0.75, -0.25, 1.0]
    assert verify.RealCalibration.load(tmp_path / "m") == rc
    from dataclasses import replace

    from mie_core.scoring.condition import ConditionModel

    k = bm.width + bp.width  # the condition model reads both members' vectors, main first
    cond = ConditionModel(np.arange(3.0 * k).reshape(3, k), np.zeros(3))
    replace(rc, condition=cond, auto={}, renders={}).save(tmp_path / "m")
    on_file = np.asarray(json.loads((tmp_path / "m" / "real_calibration.json").read_text())["condition"]["coef"])
    np.testing.assert_array_equal(on_file, np.c_[cond.coef[:, bm.width:], cond.coef[:, :bm.width]])
    np.testing.assert_array_equal(verify.RealCalibration.load(tmp_path / "m").condition.coef, cond.coef)
    for name in ("model.json", "fusion.json"):
        (tmp_path / "m" / name).unlink()
    (tmp_path / "m" / "real_calibration.json").write_text(json.dumps(
        {"a": 2.0, "b": -1.0, "held_out": {}, "as_shipped": {}, "fitted_on": {}}))
    old = verify.RealCalibration.load(tmp_path / "m")
    assert (old.kind, old.weights, old.offset) == ("affine", (2.0,), -1.0)
    np.testing.assert_allclose(verify.verify(old.applied(v), v.embed(enrol), v.embed(test))["llr"],
                               2.0 * own["llr"] - 1.0, rtol=1e-10, atol=1e-10)
    # a model alone: the affine map composes with its own calibration
    alone = verify.Verifier(tmp_path / "m", _Encoder(em), bm, None, None)
    np.testing.assert_allclose(verify.verify(old.applied(alone), em[enrol], em[test])["llr"],
                               2.0 * verify.verify(alone, em[enrol], em[test])["llr"] - 1.0, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="weights"):
        verify.RealCalibration("fusion", (1.0, 2.0, 3.0), 0.0, {}, {}, {}).applied(v)
    (tmp_path / "m" / "real_calibration.json").write_text(json.dumps(
        {"kind": "affine", "weights": [-1.0], "offset": 0.0, "held_out": {}, "as_shipped": {}, "fitted_on": {}}))
    with pytest.raises(ValueError, match="positive slope"):
        verify.RealCalibration.load(tmp_path / "m")
