"""mie_core.explore.probing: probes find a present label, not an absent one."""
from __future__ import annotations

import numpy as np
import pytest

from mie_core.explore import probing


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
