"""The recording-condition model and the automatic choice between a system's own fusion and
its weights refitted on studio recordings (mie_core.scoring.condition, verify(conditions=...))."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mie_core.scoring import condition, sources
from mie_core.scoring.trials import make_trials


def _classes(rng, n=80, k=6):
    centres = np.eye(3, k) * 4.0
    return [rng.normal(0, 1, (n, k)) + c for c in centres]


def test_condition_model_separates_three_conditions_and_round_trips():
    rng = np.random.default_rng(0)
    render, room, studio = _classes(rng)
    m = condition.fit_condition_model(render, room, studio)
    test = _classes(np.random.default_rng(1))
    for k, x in enumerate(test):
        p = m.proba(x)
        assert np.allclose(p.sum(axis=1), 1.0) and (p.argmax(axis=1) == k).mean() > 0.95
    again = condition.ConditionModel.from_dict(m.to_dict())
    np.testing.assert_allclose(again.proba(test[2]), m.proba(test[2]))
    with pytest.raises(ValueError, match="condition model"):
        condition.ConditionModel.from_dict({**m.to_dict(), "coef": m.coef[:2].tolist()})
    with pytest.raises(ValueError, match="one width"):
        condition.fit_condition_model(render, room, studio[:, :3])


def _recording_classes(rng, n=80):
    """Six recording features per clip on unlike scales (dB, kHz, ratios): renders, rooms
    (a higher noise floor) and studio notes (between, with a room's low rumble)."""
    scale = np.array([10.0, 1.0, 3.0, 20.0, 0.1, 5.0])
    shift = {"render": [-8, 0, 0, 0, 0, 0], "room": [0, 2, 0, 0, 0, 0], "studio": [0, 0, -3, 0, 0, 4]}
    return [(rng.normal(0, 1, (n, 6)) + np.array(shift[c], float)) * scale for c in condition.CONDITIONS]


def test_a_recording_model_standardises_on_the_renders_and_reads_the_features_as_they_come():
    rng = np.random.default_rng(0)
    classes = _recording_classes(rng)
    m = condition.fit_condition_model(*classes, c=0.1, inputs="recording")
    assert m.inputs == "recording"
    test = _recording_classes(np.random.default_rng(1))
    for k, x in enumerate(test):
        assert (m.proba(x).argmax(axis=1) == k).mean() > 0.9
    # the same fit on features standardised by hand (the renders' mean and std) with no scaling inside
    renders = np.concatenate(classes[:2])
    mu, sd = renders.mean(0), renders.std(0)
    by_hand = condition.fit_condition_model(*[(x - mu) / sd for x in classes], c=0.1)
    np.testing.assert_allclose(m.proba(test[2]), by_hand.proba((test[2] - mu) / sd), atol=1e-9)
    # units do not matter: a feature in mdB instead of dB gives the same probabilities
    milli = np.array([1000.0, 1, 1, 1, 1, 1])
    m2 = condition.fit_condition_model(*[x * milli for x in classes], c=0.1, inputs="recording")
    np.testing.assert_allclose(m2.proba(test[2] * milli), m.proba(test[2]), atol=1e-6)
    again = condition.ConditionModel.from_dict(m.to_dict())
    assert again.inputs == "recording"
    np.testing.assert_allclose(again.proba(test[0]), m.proba(test[0]))
    old = {k: v for k, v in m.to_dict().items() if k != "inputs"}  # a file from before: member vectors
    assert condition.ConditionModel.from_dict(old).inputs == "members"
    with pytest.raises(ValueError, match="reads one of"):
        condition.ConditionModel.from_dict({**m.to_dict(), "inputs": "pitch"})
    with pytest.raises(ValueError, match="reads 6 recording values per clip, not 4"):
        m.proba(test[0][:, :4])


def test_describe_names_the_condition_in_words_and_says_when_unsure():
    assert condition.describe(np.array([0.8, 0.1, 0.1])) == "sounds like a clean synthesized note"
    assert condition.describe(np.array([0.1, 0.7, 0.2])) == "sounds like a room or phone recording"
    assert condition.describe(np.array([0.35, 0.3, 0.35])).startswith("sounds between a clean synthesized note and a "
                                                                       "studio recording")


def _real_trials(rng):
    """Clips of 12 instruments in 3 sources, and per draw features whose first column is a
    good LLR on source 'a' and 'b' and whose second is good everywhere."""
    labels = np.repeat(np.arange(12), 10)
    src = np.array(["a", "b", "c"])[labels // 4]
    draws = [make_trials(labels, np.random.default_rng(s), 3, 4, 4) for s in range(2)]
    feats = []
    for d in draws:
        y = d.target.astype(float) * 2 - 1
        feats.append(np.stack([y * 2 + rng.normal(0, 1, y.size), y * 3 + rng.normal(0, 1, y.size)], axis=1))
    return labels, src, draws, feats


def test_auto_llrs_are_the_own_fusion_at_weight_zero_and_the_refitted_one_at_weight_one():
    rng = np.random.default_rng(0)
    labels, src, draws, feats = _real_trials(rng)
    d, x = draws[0], feats[0]
    enrol_src, test_src = sources.trial_sources(src, d.enroll, d.model, d.test)
    own_w, own_b = np.array([1.0, 0.0]), 0.5
    studio, _ = sources.leave_one_source_out(x, d.target, enrol_src, test_src)
    zeros = {s: np.zeros(len(labels)) for s in "abc"}
    ones = {s: np.ones(len(labels)) for s in "abc"}
    np.testing.assert_allclose(sources.auto_llrs(x, d.target, enrol_src, test_src, zeros, own_w, own_b, d)[0],
                               x @ own_w + own_b)
    np.testing.assert_allclose(sources.auto_llrs(x, d.target, enrol_src, test_src, ones, own_w, own_b, d)[0], studio)
    half = {s: np.full(len(labels), 0.5) for s in "abc"}
    llr, s = sources.auto_llrs(x, d.target, enrol_src, test_src, half, own_w, own_b, d)
    np.testing.assert_allclose(llr, 0.5 * (x @ own_w + own_b) + 0.5 * studio)
    assert np.all(s == 0.5)


def test_measure_auto_reports_every_source_and_the_studio_weight():
    rng = np.random.default_rng(0)
    labels, src, draws, feats = _real_trials(rng)
    render, room, studio = _classes(rng, n=40, k=4)
    vectors = rng.normal(0, 1, (len(labels), 4)) + np.eye(3, 4)[2] * 4.0  # every real clip sounds like a studio
    res = sources.measure_auto(feats, draws, src, vectors, render, room, np.array([1.0, 0.0]), 0.0)
    assert set(res) == {"a", "b", "c", "pooled"}
    for rec in res.values():
        assert rec["studio_weight"] > 0.8 and 0 <= rec["eer"] <= 0.5
        assert 0 <= rec["genuine_accepted"] <= 1 and 0 <= rec["impostors_rejected"] <= 1


@pytest.fixture
def fused_with_real_calibration(tiny_cache):
    """The tiny cache's fused cqt_tiny with a real-notes calibration whose weights differ from
    its own, and a condition model over its members' vectors."""
    from mie_core.service.verify import RealCalibration, load_verifier
    from mie_core.scoring.fusion import member_vectors
    from mie_core.service import workbench

    ver = load_verifier(tiny_cache["cache"] / "models" / "cqt_tiny")
    cache = workbench.Cache(tiny_cache["cache"])
    emb = ver.join(cache.embeddings("cqt_tiny", "test"), cache.embeddings("cqt_tiny_clean", "test"))
    backends, members = ver.fusion_members(emb)
    vec = member_vectors(backends, members)
    rng = np.random.default_rng(0)
    third = len(vec) // 3
    model = condition.fit_condition_model(vec[:third] + rng.normal(0, 0.1, vec[:third].shape), vec[third:2 * third],
                                          vec[2 * third:])
    own = ver.fusion.fusion
    rc = RealCalibration("fusion", tuple(2.0 * own.weights), own.offset - 1.0, {}, {}, {}, model, {}, {})
    return dataclasses.replace(ver, real_calibration=rc), emb


def test_verify_mixes_own_and_studio_weights_by_the_trials_studio_weight(fused_with_real_calibration):
    from mie_core.service.verify import verify

    ver, emb = fused_with_real_calibration
    enrol, test = emb[:3], emb[10:40]
    own = verify(ver, enrol, test, conditions="own")
    studio = verify(ver, enrol, test, conditions="studio")
    auto = verify(ver, enrol, test, conditions="auto")
    assert not np.allclose(own["llr"], studio["llr"])
    s = auto["studio_weight"].to_numpy()
    assert ((0 <= s) & (s <= 1)).all() and 0 < s.mean() < 1
    np.testing.assert_allclose(auto["llr"], (1 - s) * own["llr"] + s * studio["llr"], rtol=1e-9, atol=1e-9)
    # s = min(mean P(studio) of the enrolment, P(studio) of the test clip)
    assert (s <= auto["p_studio"].to_numpy() + 1e-12).all()
    np.testing.assert_allclose(auto[["p_render", "p_room", "p_studio"]].sum(axis=1), 1.0)
    assert all(c.startswith("sounds ") for c in auto["condition"])
    np.testing.assert_array_equal(own["quality"], auto["quality"])  # the fusion's own trial quality is untouched
    # the margin lowers the refitted weights' part of the mix alone: s * m off each trial's LLR
    m = 0.75
    lowered = dataclasses.replace(ver, real_calibration=dataclasses.replace(ver.real_calibration, auto_margin=m))
    shifted = verify(lowered, enrol, test, conditions="auto")
    np.testing.assert_allclose(shifted["llr"], auto["llr"] - s * m, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(verify(lowered, enrol, test, conditions="studio")["llr"], studio["llr"])


def test_verify_weighs_each_trial_by_its_clips_recording_features(fused_with_real_calibration, tmp_path):
    """The shipped condition model reads recording features: "auto" needs the test clips', the
    trial's weight is min(enrolment's mean P(studio), test clip's), an enrolment kept without
    them is weighed by the test clip alone, and a pair's file keeps the model as it is."""
    from mie_core.service.verify import RealCalibration, verify

    ver, emb = fused_with_real_calibration
    model = condition.fit_condition_model(*_recording_classes(np.random.default_rng(0)), c=0.1, inputs="recording")
    ver = dataclasses.replace(ver, real_calibration=dataclasses.replace(ver.real_calibration, condition=model))
    render, room, studio = _recording_classes(np.random.default_rng(2), n=3)
    test_rec = np.concatenate([render, room, studio])  # 9 clips, three of each
    enrol, test = emb[:3], emb[10:19]
    with pytest.raises(ValueError, match="recording features"):
        verify(ver, enrol, test, conditions="auto")
    assert "p_studio" not in verify(ver, enrol, test, conditions="own")  # no features: no words, the own fusion
    own, studio_llr = (verify(ver, enrol, test, conditions=c)["llr"].to_numpy() for c in ("own", "studio"))
    p_test = model.proba(test_rec)[:, condition.STUDIO]
    for enrol_rec in (studio, render):
        auto = verify(ver, enrol, test, conditions="auto", enrol_recording=enrol_rec, test_recording=test_rec)
        s = np.minimum(model.proba(enrol_rec)[:, condition.STUDIO].mean(), p_test)
        np.testing.assert_allclose(auto["studio_weight"], s, atol=1e-12)
        np.testing.assert_allclose(auto["llr"], (1 - s) * own + s * studio_llr, atol=1e-9)
        np.testing.assert_allclose(auto["p_studio"], p_test, atol=1e-12)
    assert (auto["studio_weight"] < 0.2).all()  # a render enrolled: the own fusion for every trial
    alone = verify(ver, enrol, test, conditions="auto", test_recording=test_rec)
    np.testing.assert_allclose(alone["studio_weight"], p_test, atol=1e-12)
    assert [c.split()[-2] for c in alone["condition"]][-3:] == ["studio"] * 3
    import shutil

    from mie_core.scoring.fusion import folder_kind

    folder = shutil.copytree(ver.path, tmp_path / "cqt_tiny")  # with its clean partner: a pair's file order
    assert folder_kind(folder) == "pair"
    ver.real_calibration.save(folder)
    back = RealCalibration.load(folder)
    np.testing.assert_allclose(back.condition.proba(test_rec), model.proba(test_rec))


def test_a_model_of_both_inputs_scales_the_recording_alone_and_survives_a_pair_s_file(fused_with_real_calibration,
                                                                                      tmp_path):
    """"recording+members" (shipped): the six recording features, standardised on the renders,
    then the member vectors as they are; verify reads both, and a pair's file (its members in
    the file's order) gives the same probabilities back."""
    import shutil

    from mie_core.scoring.fusion import member_vectors
    from mie_core.service.verify import RealCalibration, verify

    ver, emb = fused_with_real_calibration
    backends, members = ver.fusion_members(emb)
    vec = member_vectors(backends, members)
    rng = np.random.default_rng(3)
    rec = np.concatenate(_recording_classes(rng, n=len(vec) // 3 + 1))[:len(vec)]
    x = np.hstack([rec, vec])
    third = len(x) // 3
    model = condition.fit_condition_model(x[:third], x[third:2 * third], x[2 * third:], c=0.1,
                                          inputs="recording+members")
    renders = x[:2 * third]
    mu, sd = renders[:, :6].mean(0), renders[:, :6].std(0)
    scaled = [np.hstack([(v[:, :6] - mu) / sd, v[:, 6:]]) for v in (x[:third], x[third:2 * third], x[2 * third:])]
    by_hand = condition.fit_condition_model(*scaled, c=0.1)
    np.testing.assert_allclose(model.proba(x), by_hand.proba(np.hstack([(x[:, :6] - mu) / sd, x[:, 6:]])), atol=1e-9)
    ver = dataclasses.replace(ver, real_calibration=dataclasses.replace(ver.real_calibration, condition=model))
    enrol, test = slice(0, 3), slice(10, 30)
    auto = verify(ver, emb[enrol], emb[test], conditions="auto", enrol_recording=rec[enrol], test_recording=rec[test])
    p = model.proba(x)[:, condition.STUDIO]
    np.testing.assert_allclose(auto["studio_weight"], np.minimum(p[enrol].mean(), p[test]), atol=1e-12)
    folder = shutil.copytree(ver.path, tmp_path / "cqt_tiny")
    ver.real_calibration.save(folder)
    np.testing.assert_allclose(RealCalibration.load(folder).condition.proba(x), model.proba(x), atol=1e-12)
    import json

    filed = np.asarray(json.loads((folder / "real_calibration.json").read_text())["condition"]["coef"])
    half = (filed.shape[1] - 6) // 2  # the file holds the clean partner's vectors first, the recording's in place
    np.testing.assert_allclose(filed[:, :6], model.coef[:, :6])
    np.testing.assert_allclose(filed[:, 6:6 + half], model.coef[:, 6 + half:])
    np.testing.assert_allclose(filed[:, 6 + half:], model.coef[:, 6:6 + half])


def test_verify_refuses_a_mode_the_system_cannot_score(fused_with_real_calibration, tiny_cache):
    from mie_core.service.verify import load_verifier, verify

    ver, emb = fused_with_real_calibration
    with pytest.raises(ValueError, match="conditions must be one of"):
        verify(ver, emb[:3], emb[5:8], conditions="phone")
    plain = load_verifier(tiny_cache["cache"] / "models" / "cqt_tiny")  # no real_calibration.json in the tiny cache
    with pytest.raises(ValueError, match="needs a fused system with weights refitted"):
        verify(plain, emb[:3], emb[5:8], conditions="auto")
    no_model = dataclasses.replace(ver, real_calibration=dataclasses.replace(ver.real_calibration, condition=None))
    with pytest.raises(ValueError, match="recording-condition model"):
        verify(no_model, emb[:3], emb[5:8], conditions="auto")


def test_real_calibration_round_trips_its_condition_model(fused_with_real_calibration, tmp_path):
    from mie_core.service.verify import RealCalibration

    ver, emb = fused_with_real_calibration
    rc = dataclasses.replace(ver.real_calibration, auto={"pooled": {"eer": 0.05, "genuine_accepted": 0.95,
                                                                    "impostors_rejected": 0.93}}, auto_margin=0.4)
    rc.save(tmp_path)
    back = RealCalibration.load(tmp_path)
    assert back.auto == rc.auto and back.figures("auto") == rc.auto and back.figures("studio") == rc.held_out
    assert back.auto_margin == 0.4
    x = np.random.default_rng(0).normal(size=(4, rc.condition.coef.shape[1]))
    np.testing.assert_allclose(back.condition.proba(x), rc.condition.proba(x))
