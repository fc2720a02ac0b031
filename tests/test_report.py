"""``python -m mie_core evaluate`` (mie_core.evaluation.report) and the back-ends it fits
(mie_core.scoring.fitting) on the tiny corpus."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


# ------------------------------------------------------------------ the command
def test_evaluate_command_writes_every_file(reference_run, tiny_corpus, tmp_path):
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "mie_core", "evaluate", "--model", f"tinyA={reference_run / 'last'}",
           "--model", f"tinyB={reference_run / 'best'}", "--corpus", str(tiny_corpus.root), "--split",
           "program_disjoint", "--parts", "valid,wet", "--out", str(out), "--draws", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env={**__import__("os").environ, "MIE_DATA": str(tmp_path / "data")})
    assert res.returncode == 0, res.stderr[-3000:]
    for f in ("results.json", "tables.md", "det.png", "significance.png", "probing.png", "trials.txt",
              "enroll.txt", "scores_tinyA.txt", "scores_mfcc_baseline.txt", "tsne_family_tinyA.png"):
        assert (out / f).stat().st_size > 0, f
    full = json.loads((out / "results.json").read_text())
    assert set(full["verification"]["models"]) == {"tinyA", "tinyB", "mfcc_baseline"}
    # identical weights (best == last here) give identical EERs on identical trials
    v = full["verification"]["models"]
    assert v["tinyA"]["eer_draws"] == v["tinyB"]["eer_draws"]
    assert {r["label"] for r in full["probing"]} >= {"family", "velocity"}
    md = (out / "tables.md").read_text()
    assert "Tables II-III" in md and "Table IV" in md
    # every part on identical trials, raw and with the calibrated back-end
    assert set(full["parts"]) == {"valid", "wet"}
    for part in full["parts"].values():
        m = part["models"]["tinyA"]
        assert {"asnorm", "centred", "calibrated"} <= set(m) and 0 <= m["asnorm"]["eer"] <= 0.5
        assert m["calibrated"]["cllr"] > 0 and "asnorm" not in part["models"]["mfcc_baseline"]
    assert full["parts"]["valid"]["models"]["tinyA"]["eer"] == v["tinyA"]["eer"]
    assert "EER by part" in md and "Calibrated verdicts" in md
    # the embeddings were cached: a second run reuses them
    assert list((tmp_path / "data" / "embeddings").glob("*.npy"))


def test_evaluate_raw_only_embeds_the_scored_parts_alone(reference_run, tiny_corpus, tmp_path):
    """``--raw-only``: the paper's cosine scores, no back-end, so no bank or calibration notes
    are embedded (an ablation's evaluation on a CPU)."""
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "mie_core", "evaluate", "--raw-only", "--model", f"tinyA={reference_run / 'last'}",
           "--corpus", str(tiny_corpus.root), "--parts", "valid", "--out", str(out), "--draws", "2", "--no-probing"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env={**__import__("os").environ, "MIE_DATA": str(tmp_path / "data")})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "fitting the scoring back-ends" not in res.stderr and "bank part" not in res.stderr
    full = json.loads((out / "results.json").read_text())
    m = full["parts"]["valid"]["models"]["tinyA"]
    assert "asnorm" not in m and "calibrated" not in m and 0 <= m["eer"] <= 0.5
    assert len(list((tmp_path / "data" / "embeddings").glob("*.npy"))) == 1  # one model, one part


def test_multicondition_lda_backend_on_the_tiny_corpus(tiny_corpus, reference_run, tmp_path):
    """``bankwet`` is the training instruments' bank notes through the training chain, and a
    back-end with LDA is fitted on both (the ``build_cache --lda-dims`` path)."""
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.parts import load_parts
    from mie_core.scoring.fitting import BACKEND_PARTS, LDA_PARTS, fit_backends

    parts = load_parts(tiny_corpus, BACKEND_PARTS + LDA_PARTS)
    bank, wet = parts["bank"], parts["bankwet"]
    train = (bank.rows["part"] == "train").to_numpy()
    assert wet.rows["note_str"].tolist() == bank.rows["note_str"][train].tolist() and wet.key != bank.key
    clean, recorded = np.asarray(bank.audio())[train].astype(np.float32) / 32768.0, np.asarray(wet.audio())
    assert recorded.shape == clean.shape and not np.allclose(recorded, clean, atol=1e-3)
    store = EmbeddingStore(tmp_path)
    model = {"tiny": reference_run / "best"}
    plain, _ = fit_backends(model, parts, store, "fp32")
    lda, _ = fit_backends(model, parts, store, "fp32", lda_dims=8)
    assert plain["tiny"].projection is None and plain["tiny"].info["n_train_notes"] == train.sum()
    be = lda["tiny"]
    assert be.projection.shape == (be.mean.size, 8) and be.cohort.shape[1] == 8
    assert be.info["n_train_notes"] == 2 * train.sum() and be.calibration is not None


def test_played_calibration_parts_on_the_tiny_corpus(tiny_corpus, reference_run, tmp_path):
    """``played`` is the ``calib`` notes played as a musician would (clean), ``playedwet`` the
    same through the training rooms; both are seeded per note, and the back-end's
    calibration is fitted on all four held-out parts."""
    from mie_core.data.audio import trim_bounds
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.parts import load_parts
    from mie_core.scoring.fitting import BACKEND_PARTS, CALIBRATION_PARTS, PLAYED_PARTS, fit_backends

    parts = load_parts(tiny_corpus, BACKEND_PARTS + PLAYED_PARTS)
    calib, played, wet = parts["calib"], parts["played"], parts["playedwet"]
    assert played.rows["note_str"].tolist() == calib.rows["note_str"].tolist() == wet.rows["note_str"].tolist()
    assert len({calib.key, played.key, wet.key}) == 3
    held = parts["valid"].rows.set_index("note_str").index.get_indexer(calib.rows["note_str"])
    a, p = np.asarray(parts["valid"].audio())[held], np.asarray(played.audio())
    assert (held >= 0).all() and p.shape == a.shape and p.dtype == np.int16
    # played notes end when the player lets go (0.2-3 s, log-uniform), held notes after 3 s
    played_len = [np.subtract(*trim_bounds(x.astype(np.float32) / 32768, 16000, 40.0)[::-1]) for x in p]
    held_len = [np.subtract(*trim_bounds(x.astype(np.float32) / 32768, 16000, 40.0)[::-1]) for x in a]
    assert np.median(played_len) < 0.8 * np.median(held_len), (np.median(played_len), np.median(held_len))
    # seeded per note: the same notes are played the same way again, whatever else is in the part
    again = load_parts(tiny_corpus, ("played",))["played"]
    np.testing.assert_array_equal(np.asarray(again.audio()), p)
    w = np.asarray(wet.audio())
    assert w.shape == p.shape and not np.allclose(w, p.astype(np.float32) / 32768, atol=1e-3)
    store, model = EmbeddingStore(tmp_path), {"tiny": reference_run / "best"}
    shipped = fit_backends(model, parts, store, "fp32")[0]["tiny"]
    pooled = fit_backends(model, parts, store, "fp32", calibration_parts=CALIBRATION_PARTS + PLAYED_PARTS)[0]["tiny"]
    assert shipped.info["calibrated_on"] == ["valid", "calib"]
    assert pooled.info["calibrated_on"] == ["valid", "calib", "played", "playedwet"]
    assert pooled.info["n_calibration_trials"] > shipped.info["n_calibration_trials"]
    assert pooled.calibration != shipped.calibration
    np.testing.assert_array_equal(pooled.cohort, shipped.cohort)  # the pool changes the calibration alone
    with pytest.raises(ValueError, match="playedwet"):
        fit_backends(model, {k: v for k, v in parts.items() if k != "playedwet"}, store, "fp32",
                     calibration_parts=CALIBRATION_PARTS + PLAYED_PARTS)
