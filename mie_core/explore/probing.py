"""Probing classifiers on embeddings (paper Sec. VI-B, Table IV, Fig. 5).

Shallow scikit-learn classifiers are trained on the embeddings of *unseen*
instruments to predict metadata the encoder may or may not carry. The test set is
split 8:1:1 into probe-train, probe-valid and probe-test (stratified by the label
where every class allows it); hyper-parameters are chosen on probe-valid, and the
chosen model is scored on probe-test.

* MLP: one hidden layer (300 on NSynth, 100 on RWC), scikit-learn defaults otherwise.
* SVM: RBF kernel, C searched over 10^-3 .. 10^3 on a log grid.
* Decision tree: grid over maximum depth, minimum leaf size and criterion.

Every classifier is a Pipeline with feature standardisation. Scores are micro F1 (=
accuracy for single-label tasks) and macro F1, with the majority-vote baseline and
the relative improvement I = (F1 - F1_majority) / F1_majority of Table IV.

Labels (:func:`probe_labels`): family, source, pitch per octave, velocity, and
playing style per family. Classes with fewer than ``min_per_class`` examples are
dropped, and the result says which.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

CLASSIFIERS = ("mlp", "svm", "tree")
SVM_C_GRID = tuple(10.0 ** k for k in range(-3, 4))
TREE_GRID = {"max_depth": (8, 16, None), "min_samples_leaf": (1, 10), "criterion": ("gini", "entropy")}


@dataclass
class ProbeResult:
    label: str
    classifier: str
    micro_f1: float
    macro_f1: float
    majority_micro_f1: float
    majority_macro_f1: float
    n_classes: int
    n_train: int
    n_valid: int
    n_test: int
    params: dict = field(default_factory=dict)
    dropped_classes: list = field(default_factory=list)

    @property
    def improvement_micro(self) -> float:
        """Table IV: (F1 - F1_majority) / F1_majority on micro F1."""
        return (self.micro_f1 - self.majority_micro_f1) / self.majority_micro_f1 if self.majority_micro_f1 else float("nan")

    @property
    def improvement_macro(self) -> float:
        return (self.macro_f1 - self.majority_macro_f1) / self.majority_macro_f1 if self.majority_macro_f1 else float("nan")

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["improvement_micro"] = self.improvement_micro
        d["improvement_macro"] = self.improvement_macro
        return d


def probe_labels(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    """The probing targets from a note table (object arrays of class names).

    ``family``, ``source``, ``pitch_octave`` (MIDI // 12 - 1: octave number),
    ``velocity`` and ``style_<family>`` for every family with two or more playing
    styles (and ``playing_style`` overall).
    """
    out: dict[str, np.ndarray] = {}
    if "instrument_family_str" in meta:
        out["family"] = meta["instrument_family_str"].astype(str).to_numpy()
    if "instrument_source_str" in meta:
        out["source"] = meta["instrument_source_str"].astype(str).to_numpy()
    if "pitch" in meta:
        out["pitch_octave"] = (meta["pitch"].to_numpy() // 12 - 1).astype(str).astype(object)
    if "velocity" in meta:
        out["velocity"] = meta["velocity"].astype(str).to_numpy()
    if "dynamics" in meta:
        out["dynamics"] = meta["dynamics"].astype(str).to_numpy()
    if "playing_style" in meta and "instrument_family_str" in meta:
        styles = meta["playing_style"].astype(str).to_numpy()
        fams = meta["instrument_family_str"].astype(str).to_numpy()
        out["playing_style"] = styles
        for fam in sorted(set(fams)):
            mask = fams == fam
            if len(set(styles[mask])) >= 2:
                lab = np.full(len(meta), None, dtype=object)
                lab[mask] = styles[mask]
                out[f"style_{fam}"] = lab
    return out


def subsample(n: int, max_notes: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_notes`` of ``n`` examples (all when None), seeded.

    Probing on the whole test split is what the paper did; on a 2-core CPU an RBF SVM on
    5,500 x 512 training examples takes about half a minute per fit, so the shipped
    cache and the app probe a seeded subset by default (the count is reported)."""
    if max_notes is None or max_notes >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_notes, replace=False))


def split_8_1_1(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of probe-train / probe-valid / probe-test (8:1:1), stratified where possible."""
    idx = np.arange(len(y))
    seed = int(rng.integers(2**31 - 1))
    counts = pd.Series(y).value_counts()
    strat = y if counts.min() >= 10 else None
    tr, rest = train_test_split(idx, test_size=0.2, random_state=seed, stratify=strat)
    strat_rest = y[rest] if strat is not None and pd.Series(y[rest]).value_counts().min() >= 2 else None
    va, te = train_test_split(rest, test_size=0.5, random_state=seed, stratify=strat_rest)
    return tr, va, te


def _make(kind: str, params: dict, seed: int, hidden: int):
    if kind == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), random_state=seed, **params)
    elif kind == "svm":
        clf = SVC(kernel="rbf", random_state=seed, **params)
    elif kind == "tree":
        clf = DecisionTreeClassifier(random_state=seed, **params)
    else:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, not {kind!r}")
    return make_pipeline(StandardScaler(), clf)


def _grid(kind: str) -> list[dict]:
    if kind == "mlp":
        return [{}]
    if kind == "svm":
        return [{"C": c} for c in SVM_C_GRID]
    return [{"max_depth": d, "min_samples_leaf": m, "criterion": c}
            for d in TREE_GRID["max_depth"] for m in TREE_GRID["min_samples_leaf"] for c in TREE_GRID["criterion"]]


def _majority(y_train: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    top = pd.Series(y_train).value_counts().index[0]
    pred = np.full(len(y_test), top, dtype=object)
    labels = np.unique(y_test.astype(str))
    return (f1_score(y_test.astype(str), pred.astype(str), average="micro"),
            f1_score(y_test.astype(str), pred.astype(str), average="macro", labels=labels, zero_division=0))


def probe(embeddings: np.ndarray, y, label: str, classifier: str, rng: np.random.Generator, hidden: int = 300,
          min_per_class: int = 10) -> ProbeResult:
    """Train and score one probing classifier (module docstring).

    ``y`` may hold None for examples the label does not apply to (playing style of
    another family); they are left out. Raises ValueError when fewer than two classes
    have ``min_per_class`` examples.
    """
    y = np.asarray(y, dtype=object)
    keep = np.asarray([v is not None for v in y])
    counts = pd.Series(y[keep]).value_counts()
    dropped = sorted(str(c) for c in counts.index[counts < min_per_class])
    ok_classes = set(counts.index[counts >= min_per_class])
    keep &= np.asarray([v in ok_classes for v in y])
    if len(ok_classes) < 2:
        raise ValueError(f"label {label!r}: fewer than two classes with {min_per_class} or more examples")
    X = np.asarray(embeddings, dtype=np.float64)[keep]
    yk = y[keep].astype(str)
    tr, va, te = split_8_1_1(yk, rng)
    seed = int(rng.integers(2**31 - 1))
    best, best_f1 = None, -1.0
    for params in _grid(classifier):
        with warnings.catch_warnings():  # scikit-learn's default MLP budget, as the paper used
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _make(classifier, params, seed, hidden).fit(X[tr], yk[tr])
        f1 = f1_score(yk[va], model.predict(X[va]), average="macro", zero_division=0)
        if f1 > best_f1:
            best, best_f1 = (params, model), f1
    params, model = best
    pred = model.predict(X[te])
    maj_micro, maj_macro = _majority(yk[tr], yk[te])
    labels = np.unique(yk[te])
    return ProbeResult(label, classifier, float(f1_score(yk[te], pred, average="micro")),
                       float(f1_score(yk[te], pred, average="macro", labels=labels, zero_division=0)),
                       float(maj_micro), float(maj_macro), len(ok_classes), len(tr), len(va), len(te),
                       {k: (v if v is not None else "none") for k, v in params.items()}, dropped)


def job_rng(seed: int, label: str, classifier: str) -> np.random.Generator:
    """The generator of one probing job: from the seed and the job's own names, so a job gives
    the same result whichever other jobs run with it (the cache builder runs them all, the
    Probing page one at a time)."""
    import zlib

    return np.random.default_rng([int(seed), zlib.crc32(label.encode()), zlib.crc32(classifier.encode())])


def run_probes(embeddings: np.ndarray, labels: dict[str, np.ndarray], seed: int,
               classifiers=CLASSIFIERS, hidden: int = 300, min_per_class: int = 10,
               progress: Callable[[int, int, str], None] | None = None) -> tuple[list[ProbeResult], dict[str, str]]:
    """Every (label, classifier) pair, each with :func:`job_rng`; returns (results, {label: why
    it was skipped})."""
    jobs = [(l, c) for l in labels for c in classifiers]
    results, skipped = [], {}
    for k, (label, clf) in enumerate(jobs):
        if label in skipped:
            continue
        if progress:
            progress(k, len(jobs), f"{label} / {clf}")
        try:
            results.append(probe(embeddings, labels[label], label, clf, job_rng(seed, label, clf), hidden,
                                 min_per_class))
        except ValueError as err:
            skipped[label] = str(err)
    if progress:
        progress(len(jobs), len(jobs), "done")
    return results, skipped


def results_table(results: list[ProbeResult]) -> pd.DataFrame:
    return pd.DataFrame([r.as_dict() for r in results])
