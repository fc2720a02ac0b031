"""Metrics, trials, significance, probing, maps and the evaluate command."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mie_core.explore import maps, probing
from mie_core.scoring import metrics, trials
from mie_core.evaluation.protocol import compare_models, condition_table

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


# ------------------------------------------------------------------ probing
def test_probing_finds_a_present_label_and_not_an_absent_one():
    rng = np.random.default_rng(0)
    n = 600
    present = rng.integers(0, 3, n)
    absent = rng.integers(0, 3, n)
    emb = rng.normal(size=(n, 16))
    emb[:, 0] += 3 * present  # the embedding carries `present`, not `absent`
    for clf in probing.CLASSIFIERS:
        r_yes = probing.probe(emb, present.astype(str), "present", clf, np.random.default_rng(1), hidden=50)
        r_no = probing.probe(emb, absent.astype(str), "absent", clf, np.random.default_rng(1), hidden=50)
        assert r_yes.micro_f1 > 0.8 and r_yes.improvement_micro > 1.0, clf
        assert r_no.micro_f1 < 0.5 and r_no.improvement_micro < 0.5, clf
        assert r_yes.n_train == 480 and r_yes.n_valid == 60 and r_yes.n_test == 60


def test_probing_drops_rare_classes_and_says_so():
    rng = np.random.default_rng(0)
    y = np.array(["a"] * 100 + ["b"] * 100 + ["rare"] * 3, dtype=object)
    r = probing.probe(rng.normal(size=(203, 4)), y, "y", "tree", np.random.default_rng(0))
    assert r.dropped_classes == ["rare"] and r.n_classes == 2
    with pytest.raises(ValueError, match="fewer than two classes"):
        probing.probe(rng.normal(size=(203, 4)), np.array(["a"] * 203, dtype=object), "y", "svm", rng)


def test_probe_labels_from_a_note_table(tiny_corpus):
    labels = probing.probe_labels(tiny_corpus.notes)
    assert {"family", "source", "pitch_octave", "velocity", "playing_style"} <= set(labels)
    style = [k for k in labels if k.startswith("style_")]
    assert style and all(len(v) == len(tiny_corpus.notes) for v in labels.values())
    assert set(labels["pitch_octave"]) <= {str(o) for o in range(-1, 10)}


def test_progress_callback_reports_every_job():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 4))
    seen = []
    probing.run_probes(emb, {"a": rng.integers(0, 2, 200).astype(str)}, 0, ("tree",),
                       progress=lambda d, t, m: seen.append((d, t)))
    assert seen[0] == (0, 1) and seen[-1] == (1, 1)


def test_a_probing_job_gives_the_same_result_alone_or_with_others():
    """The Probing page runs one job; the cache builder runs all: same job, same numbers."""
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(300, 6))
    labels = {"a": (emb[:, 0] > 0).astype(str), "b": (emb[:, 1] > 0.3).astype(str)}
    together, _ = probing.run_probes(emb, labels, 7, ("tree", "svm"))
    alone = probing.probe(emb, labels["b"], "b", "svm", probing.job_rng(7, "b", "svm"))
    match = [r for r in together if r.label == "b" and r.classifier == "svm"][0]
    assert match.as_dict() == alone.as_dict()


# ------------------------------------------------------------------ maps
@pytest.mark.parametrize("method", maps.METHODS)
def test_maps_are_seeded_and_keep_clusters_apart(method):
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(size=(40, 16)) + 8 * np.eye(16)[0], rng.normal(size=(40, 16)) + 8 * np.eye(16)[1]])
    a = maps.fit_map(emb, method, seed=3)
    b = maps.fit_map(emb, method, seed=3)
    np.testing.assert_allclose(a.coords, b.coords, rtol=1e-4, atol=1e-4)
    c0, c1 = a.coords[:40].mean(0), a.coords[40:].mean(0)
    spread = max(a.coords[:40].std(0).max(), a.coords[40:].std(0).max())
    assert np.linalg.norm(c0 - c1) > 2 * spread
    # a new point like the first cluster lands nearer the first cluster
    p = a.place(emb[:1] + 0.01)[0]
    assert np.linalg.norm(p - c0) < np.linalg.norm(p - c1)


def test_one_pitch_view(tiny_corpus):
    idx = maps.one_pitch(tiny_corpus.notes, 60)
    sub = tiny_corpus.notes.iloc[idx]
    assert (sub["pitch"] == 60).all() and sub["instrument_str"].is_unique
    auto = tiny_corpus.notes.iloc[maps.one_pitch(tiny_corpus.notes)]
    assert auto["pitch"].nunique() == 1


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
