"""The user's instrument library: kept on disk, plain files, calibrated on the user's clips."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mie_core.scoring import backend
from mie_core.service import verify
from mie_core.service.library import InstrumentLibrary


def clusters(seed=0, n_inst=30, per=10, d=24):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_inst, d)).astype(np.float32)
    labels = np.repeat(np.arange(n_inst), per)
    emb = 2.0 + centres[labels] + 0.3 * rng.standard_normal((labels.size, d)).astype(np.float32)
    return emb, labels


def test_library_persists_plain_files_and_scores(tmp_path):
    emb, labels = clusters()
    be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
    be = be.calibrated((4.0, -1.0))
    lib = InstrumentLibrary("abc123", tmp_path)
    lib.add("my violin", emb[labels == 25][:5], ["v1.wav", "v2.wav"], pitches=[55.0, 62.2, np.nan, 67.0, 76.0])
    lib.add("my trumpet", emb[labels == 26][:5], ["t1.wav"])  # no pitches given (a library kept before them)
    again = InstrumentLibrary("abc123", tmp_path)  # as after a restart
    kept = again.pitches()
    np.testing.assert_array_equal(kept["my violin"], [55.0, 62.2, np.nan, 67.0, 76.0])
    assert kept["my trumpet"].shape == (5,) and np.isnan(kept["my trumpet"]).all()
    with pytest.raises(ValueError, match="2 pitches for 5"):
        lib.add("bad", emb[labels == 27][:5], ["b.wav"], pitches=[60.0, 61.0])
    assert again.names() == ["my trumpet", "my violin"]
    index = json.loads((tmp_path / "abc123" / "library.json").read_text())["instruments"]
    files = sorted(p.name for p in (tmp_path / "abc123").iterdir())
    # JSON and float16 files named by the library's ids, nothing pickled
    assert files == sorted([".lock", "library.json", index["my trumpet"]["file"], index["my violin"]["file"]])
    assert all(re.fullmatch(r"[0-9a-f]{32}\.npy", r["file"]) for r in index.values())
    assert np.load(tmp_path / "abc123" / index["my violin"]["file"]).dtype == np.float16
    assert index["my violin"]["n"] == 5
    v = verify.Verifier(tmp_path, None, be, None, None)
    res = verify.identify_enrolled(v, emb[labels == 25][5:8], again.embeddings(), test_midi=[60.0, 80.0, np.nan],
                                   enrolled_midi=kept)
    gap = res.set_index(["clip", "instrument"])["pitch_gap"]
    assert gap[(0, "my violin")] == pytest.approx(2.2) and gap[(1, "my violin")] == pytest.approx(4.0)
    assert np.isnan(gap[(2, "my violin")]) and np.isnan(gap[(0, "my trumpet")])  # no pitch on one side
    assert "pitch_gap" not in verify.identify_enrolled(v, emb[labels == 25][5:8], again.embeddings())
    best = res.groupby("clip").head(1)
    assert (best["instrument"] == "my violin").all() and best["probability"].min() > 0.5
    again.remove("my trumpet")
    assert InstrumentLibrary("abc123", tmp_path).names() == ["my violin"]
    assert not (tmp_path / "abc123" / index["my trumpet"]["file"]).exists()


def test_the_library_keeps_each_enrolment_clips_recording_features(tmp_path):
    """What the automatic calibration reads of an enrolment (its six recording features per
    clip) survives a restart; an instrument enrolled before they were kept has None."""
    emb, labels = clusters()
    feats = np.random.default_rng(0).normal(size=(5, 6)) * [10, 1, 3, 20, 0.1, 5]
    lib = InstrumentLibrary("abc123", tmp_path)
    lib.add("my violin", emb[labels == 25][:5], ["v.wav"], recording=feats)
    lib.add("my trumpet", emb[labels == 26][:5], ["t.wav"])
    kept = InstrumentLibrary("abc123", tmp_path).recordings()
    assert kept["my trumpet"] is None
    np.testing.assert_allclose(kept["my violin"], feats, atol=1e-5 * np.abs(feats).max())  # 5 decimals in the JSON
    with pytest.raises(ValueError, match="for 5 enrolment clips"):
        lib.add("bad", emb[labels == 27][:5], ["b.wav"], recording=feats[:3])
    with pytest.raises(ValueError, match="for 5 enrolment clips"):
        lib.add("bad", emb[labels == 27][:5], ["b.wav"], recording=np.full((5, 6), np.nan))
    assert lib.names() == ["my trumpet", "my violin"]


def test_calibration_on_the_users_clips(tmp_path):
    emb, labels = clusters(1)
    be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
    be = be.calibrated((0.5, 6.0))  # badly calibrated for these clusters: too eager to accept
    v = verify.Verifier(tmp_path, None, be, None, None)
    lib = InstrumentLibrary("m", tmp_path)
    lib.add("inst21", emb[labels == 21][:5], [])
    with pytest.raises(ValueError, match="two enrolled"):
        lib.calibrate(v, emb[:3], ["inst21"] * 3)
    for k in (21, 22, 23):
        lib.add(f"inst{k}", emb[labels == k][:5], [])
    with pytest.raises(ValueError, match="not enrolled"):
        lib.calibrate(v, emb[:2], ["inst21", "nope"])
    clips = np.concatenate([emb[labels == k][5:] for k in (21, 22, 23)])
    names = [f"inst{k}" for k in (21, 22, 23) for _ in range(5)]
    before = verify.identify_enrolled(v, clips, lib.embeddings())
    info = lib.calibrate(v, clips, names)
    assert info["n_target"] == 15 and info["n_nontarget"] == 30
    cal = InstrumentLibrary("m", tmp_path).calibration
    assert cal[0] > 0  # higher LLRs, more likely the same instrument
    after = verify.identify_enrolled(v, clips, lib.embeddings(), recalibration=cal)
    # an affine map of the LLR: the ranking stays, and the user's impostor trials are now rejected
    np.testing.assert_allclose(after["llr"], cal[0] * before["llr"] + cal[1])
    impostor = after["instrument"].to_numpy() != np.asarray(names)[after["clip"]]
    assert before["accept"][impostor].mean() > 0.5 and after["accept"][impostor].mean() < 0.2
    lib.clear_calibration()
    assert lib.calibration is None
    # a calibration of the earlier form (on AS-norm scores, no "calibration_on") is not applied
    idx = json.loads(lib.index_path.read_text())
    idx["calibration"] = [1.0, 0.0]
    lib.index_path.write_text(json.dumps(idx))
    assert lib.calibration is None


def test_calibration_from_the_enrolments_alone(tmp_path):
    """No labelled clips: each enrolment clip is a genuine trial against the rest of its own
    enrolment and an impostor trial against every other instrument. On a too-eager system
    it rejects the impostor clips it accepted, and it names what it was fitted on."""
    emb, labels = clusters(1)
    be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
    be = be.calibrated((0.5, 6.0))  # too eager to accept
    v = verify.Verifier(tmp_path, None, be, None, None)
    lib = InstrumentLibrary("m", tmp_path)
    lib.add("inst21", emb[labels == 21][:1], [])
    lib.add("inst22", emb[labels == 22][:1], [])
    with pytest.raises(ValueError, match="at least two clips"):
        lib.calibrate_from_enrolments(v)
    for k in (21, 22, 23):
        lib.add(f"inst{k}", emb[labels == k][:5], [])
    info = lib.calibrate_from_enrolments(v)
    # 3 instruments x 5 clips: 15 leave-one-out genuine trials, each clip against 2 others
    assert info["n_target"] == 15 and info["n_nontarget"] == 30 and "leave one out" in info["from"]
    clips = np.concatenate([emb[labels == k][5:] for k in (21, 22, 23)])  # never seen by the fit
    names = np.asarray([f"inst{k}" for k in (21, 22, 23) for _ in range(len(emb[labels == k][5:]))])
    after = verify.identify_enrolled(v, clips, lib.embeddings(), recalibration=lib.calibration)
    before = verify.identify_enrolled(v, clips, lib.embeddings())
    impostor = after["instrument"].to_numpy() != names[after["clip"]]
    assert before["accept"][impostor].mean() > 0.5 and after["accept"][impostor].mean() < 0.2
    assert after["accept"][~impostor].mean() > 0.8


def test_the_calibration_follows_the_enrolments(tmp_path):
    """Unasked, the library calibrates on its enrolments once two instruments allow it,
    refits when one is added, drops it when fewer than two remain; a calibration on
    labelled clips, or the user's going back to the model's own, is never overridden."""
    emb, labels = clusters(1)
    be = backend.fit_backend(emb[labels < 20], labels[labels < 20], top_n=5)
    be = be.calibrated((0.5, 6.0))
    v = verify.Verifier(tmp_path, None, be, None, None)
    lib = InstrumentLibrary("m", tmp_path)
    lib.add("inst21", emb[labels == 21][:5], [])
    assert lib.refresh_calibration(v) is None and lib.calibration is None  # one instrument: nothing to fit
    lib.add("inst22", emb[labels == 22][:5], [])
    first = lib.refresh_calibration(v)
    assert first["n_target"] == 10 and first["n_nontarget"] == 10 and lib.calibration is not None
    assert lib.refresh_calibration(v) is None  # nothing changed: no refit
    lib.add("inst23", emb[labels == 23][:5], [])
    assert lib.refresh_calibration(v)["n_nontarget"] == 30
    assert lib.calibration == InstrumentLibrary("m", tmp_path).calibration  # what the Verify page reads
    lib.remove("inst23")
    lib.remove("inst22")
    assert lib.refresh_calibration(v) is None and lib.calibration is None  # one left: dropped
    lib.add("inst22", emb[labels == 22][:5], [])
    assert lib.refresh_calibration(v) is not None
    lib.clear_calibration()  # the user goes back to the model's own: it stays so
    lib.add("inst23", emb[labels == 23][:5], [])
    assert lib.refresh_calibration(v) is None and lib.calibration is None
    clips = np.concatenate([emb[labels == k][5:8] for k in (21, 22, 23)])
    lib.calibrate(v, clips, [f"inst{k}" for k in (21, 22, 23) for _ in range(3)])
    labelled = lib.calibration
    lib.add("inst24", emb[labels == 24][:5], [])
    assert lib.refresh_calibration(v) is None and lib.calibration == labelled  # the user's labels stand


def test_a_damaged_library_is_one_clear_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "library.json").write_text("{oops")
    with pytest.raises(ValueError, match="library.json"):
        InstrumentLibrary("m", tmp_path).names()
    with pytest.raises(ValueError, match="name"):
        InstrumentLibrary("n", tmp_path).add("  ", np.zeros((1, 4)), [])
