"""Quality-aware fusion of a clean model and a chain-trained model (speaker verification's answer to mixed conditions).

A model trained on clean renders scores clean recordings best and is lost on wet ones; the
same model fine-tuned through the recording chain holds on wet clips and loses 2-4 points
on clean studio notes (README, the ablations). Neither distillation nor weight averaging
escapes the trade-off; speaker verification's usual answer is to keep both systems and
fuse their calibrated scores with weights that depend on a *quality measure* of the
trial (BOSARIS toolkit, Brümmer & de Villiers 2013: linear fusion with quality measures;
NIST SRE systems since 2010). Here, as pure functions over arrays:

1. **Condition detector**: ``q(x) = P(clean | x)``, a logistic regression on a clip's two
   back-end vectors (:meth:`mie_core.scoring.backend.Backend.vectors` of both models, concatenated),
   fitted on the ``bank`` notes of *training* instruments as rendered (clean) against the
   same notes through the training rooms' chain (``bankwet``).
2. **Trial quality**: ``w = min(mean q over the enrolment clips, q of the test clip)``:
   a trial is as clean as its wetter side.
3. **Fusion**: ``llr = a1 l_chain + a2 l_clean + a3 w l_chain + a4 w l_clean + a5 w + b``
   with ``l_*`` each model's calibrated LLR (:mod:`mie_core.scoring.backend`, step 3), fitted by
   prior-weighted logistic regression on held-out trials (the valid instruments' notes,
   clean and through the training rooms: the calibration's own pool); test instruments,
   test rooms and real recordings are never used.

Measured (``benchmarks/quality_fusion.py``): against the chain-trained model alone on
identical trials, lower EER on clean and real notes at equal wet EER.

A shipped model folder with a fusion holds its clean partner in ``clean/`` (checkpoint
and back-end) and the fitted detector and weights in ``fusion.json``
(:class:`QualityFusion`). The same recipe fuses m models (:func:`fit_fusion`): a
*system* folder (``cache/models/mel+cqt``) holds only its ``fusion.json``, naming the
shipped model folders it fuses, and its instrument centroids.
:func:`mie_core.service.verify.load_verifier` loads every member and :func:`mie_core.service.verify.verify`
scores with the fused LLR. Two entry points compute it: :func:`system_llr` (one
enrolment against clips: the app and the command line) and :func:`trial_llrs` (a
trial list: ``evaluate`` and the cache builder); tests hold them equal. Every function
takes its members as lists in one order, the *member order*: the main model first (a pair:
the chain-trained model, then its clean partner; a system: the member it shows on maps,
then the others), the order of a fused embedding's columns
(:meth:`mie_core.service.verify.Verifier.layout`). A pair's files list the clean partner
first, as every pair was written since the first release (their features say so:
``l_clean, l_chain``); :meth:`QualityFusion.load` and :meth:`QualityFusion.save` convert at
the file (:data:`PAIR_FILE_ORDER`), nothing else sees that order. :func:`folder_kind` says
what a folder holds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mie_core.fileio import atomic_write_text
from mie_core.scoring.backend import Backend, fit_linear_fusion, sigmoid

PARTNER_DIR = "clean"  # the clean partner's folder inside a fused model's folder
FUSION_FILE = "fusion.json"
# A pair's files (fusion.json, real_calibration.json) hold the clean partner's numbers first:
# in the file, member i of the member order (main first) is at position PAIR_FILE_ORDER[i].
PAIR_FILE_ORDER = (1, 0)
PAIR_TO_FILE = tuple(int(i) for i in np.argsort(PAIR_FILE_ORDER))  # the inverse: memory -> file


def feature_index(perm) -> np.ndarray:
    """Columns of :func:`fusion_features` reordered by a member permutation: ``x[:, feature_index(perm)]``
    are the features of the members ``perm[0], perm[1], ...`` (``perm[i]``: where member i was).

    >>> feature_index((1, 0)).tolist()  # l_0 l_1 wl_0 wl_1 w -> l_1 l_0 wl_1 wl_0 w
    [1, 0, 3, 2, 4]
    """
    perm = np.asarray(perm, int)
    return np.r_[perm, len(perm) + perm, 2 * len(perm)]


def block_index(perm, widths) -> np.ndarray:
    """Columns of members' vectors side by side (:func:`member_vectors`; member i ``widths[i]``
    wide) reordered by a member permutation, as :func:`feature_index`.

    >>> block_index((1, 0), (2, 3)).tolist()
    [2, 3, 4, 0, 1]
    """
    starts = np.r_[0, np.cumsum(widths)[:-1]]
    return np.concatenate([np.arange(starts[i], starts[i] + widths[i]) for i in perm]).astype(int)


def pair_widths(k: int, where: str) -> tuple[int, int]:
    """The two members' widths of a pair's k side-by-side values: a pair's members share one
    architecture (the clean partner is the same recipe on clean renders), so halves."""
    if k % 2:
        raise ValueError(f"{where}: {k} values cannot be a pair's two members of one width")
    return k // 2, k // 2


@dataclass(frozen=True)
class ConditionDetector:
    """``prob_clean(v)``: P(the clip is a clean render) from its (n, k) feature vectors."""

    coef: np.ndarray  # (k,)
    intercept: float

    def prob_clean(self, vectors: np.ndarray) -> np.ndarray:
        return sigmoid(np.atleast_2d(vectors).astype(np.float64) @ self.coef + self.intercept)


def fit_condition_detector(clean: np.ndarray, wet: np.ndarray, c: float = 1.0) -> ConditionDetector:
    """Logistic regression (L2, inverse strength ``c``), clean (n1, k) vs wet (n2, k), classes
    weighted equally whatever their counts."""
    from sklearn.linear_model import LogisticRegression

    clean, wet = np.atleast_2d(clean), np.atleast_2d(wet)
    if len(clean) == 0 or len(wet) == 0 or clean.shape[1] != wet.shape[1]:
        raise ValueError(f"need clean and wet vectors of one width, not {clean.shape} and {wet.shape}")
    x = np.concatenate([clean, wet]).astype(np.float64)
    y = np.r_[np.ones(len(clean)), np.zeros(len(wet))]
    m = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
    return ConditionDetector(m.coef_[0].copy(), float(m.intercept_[0]))


def trial_quality(q: np.ndarray, trials) -> np.ndarray:
    """(n_trials,) ``min(mean of q over the trial's enrolment clips, q of its test clip)``;
    ``q``: (n_clips,) per-clip quality, ``trials``: a :class:`mie_core.scoring.trials.Trials`."""
    q = np.asarray(q, np.float64)
    return np.minimum(q[trials.enroll].mean(axis=1)[trials.model], q[trials.test])


def fusion_features(llrs, w: np.ndarray) -> np.ndarray:
    """(n, 2m + 1): the LLRs of m members (each (n,)), each times the trial quality ``w``
    (n,), and ``w`` (step 3 for any number of models; ``benchmarks/ensemble_fusion.py``)."""
    stacked = np.stack([np.asarray(v, np.float64) for v in llrs], axis=1)
    w = np.asarray(w, np.float64)[:, None]
    return np.concatenate([stacked, w * stacked, w], axis=1)


@dataclass(frozen=True)
class Fusion:
    weights: np.ndarray  # (2m + 1,), over fusion_features (a pair: 5)
    offset: float

    def llr(self, llrs, w: np.ndarray) -> np.ndarray:
        """The fused LLR of m members' LLRs (each (n,), in the member order) at the
        trial quality ``w`` (n,) (:func:`fusion_features`)."""
        return fusion_features(llrs, w) @ self.weights + self.offset


def fit_weights(llrs, w: np.ndarray, target: np.ndarray, prior: float = 0.5) -> Fusion:
    """The fusion of step 3 from held-out trials: each member's LLR (m arrays (n,)), the trial
    quality ``w`` (n,) and whether the trial is a target (bool), by prior-weighted logistic
    regression (a light ridge) of :func:`fusion_features`."""
    x, target = fusion_features(llrs, w), np.asarray(target, bool)
    return Fusion(*fit_linear_fusion(x[target], x[~target], prior, l2=1e-4))


@dataclass(frozen=True)
class QualityFusion:
    """A fitted quality-aware fusion: the condition detector (over every member's back-end
    vectors, :func:`member_vectors`) and the fusion of the members' LLRs (step 3).

    ``members``: empty for a model folder fused with its clean partner (the pair: the
    folder's own model, then its partner); for a system of several shipped models (an
    *ensemble* folder, :func:`mie_core.service.verify.load_verifier`), their folders relative
    to the folder that holds the system's (``cache/models``), the main one first, and
    ``main`` that member, whose embedding the system shows on maps. Always in the member
    order (main first, module docstring).
    """

    detector: ConditionDetector
    fusion: Fusion
    info: dict = field(default_factory=dict)
    members: tuple[str, ...] = ()
    main: str | None = None

    @property
    def n_members(self) -> int:
        return len(self.members) or 2

    def permuted(self, perm, widths) -> "QualityFusion":
        """The same fusion over members reordered by ``perm`` (``perm[i]``: where member i was;
        ``widths``: each member's back-end width, in the current order): the same LLRs.

        >>> qf = QualityFusion(ConditionDetector(np.arange(4.0), 0.5), Fusion(np.arange(5.0), 1.0))
        >>> back = qf.permuted((1, 0), (2, 2))
        >>> back.detector.coef.tolist(), back.fusion.weights.tolist()
        ([2.0, 3.0, 0.0, 1.0], [1.0, 0.0, 3.0, 2.0, 4.0])
        """
        det = ConditionDetector(self.detector.coef[block_index(perm, widths)], self.detector.intercept)
        fus = Fusion(self.fusion.weights[feature_index(perm)], self.fusion.offset)
        members = tuple(self.members[i] for i in perm) if self.members else ()
        return QualityFusion(det, fus, self.info, members, self.main)

    def save(self, folder: Path) -> None:
        """``fusion.json`` in ``folder`` (whole or not at all); a pair's in its file order
        (:data:`PAIR_FILE_ORDER`)."""
        qf = self
        if not self.members:
            qf = self.permuted(PAIR_TO_FILE, pair_widths(self.detector.coef.size, str(folder)))
        meta = {"detector": {"coef": [float(v) for v in qf.detector.coef], "intercept": qf.detector.intercept},
                "fusion": {"weights": [float(v) for v in qf.fusion.weights], "offset": qf.fusion.offset}}
        if qf.members:
            names = [f"l_{i}" for i in range(len(qf.members))]
            meta.update({"members": list(qf.members), "main": qf.main,
                         "features": names + [f"w {n}" for n in names] + ["w"]})
        else:  # where the partner lives, for a reader of the file (load_verifier looks in PARTNER_DIR)
            meta.update({"features": ["l_clean", "l_chain", "w l_clean", "w l_chain", "w"], "partner": PARTNER_DIR})
        meta["info"] = qf.info
        Path(folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(folder) / FUSION_FILE, json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "QualityFusion":
        path = Path(folder) / FUSION_FILE
        try:
            meta = json.loads(path.read_text())
            det = ConditionDetector(np.asarray(meta["detector"]["coef"], np.float64), float(meta["detector"]["intercept"]))
            fus = Fusion(np.asarray(meta["fusion"]["weights"], np.float64), float(meta["fusion"]["offset"]))
            members = tuple(str(m) for m in meta.get("members", ()))
            main = meta.get("main")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a fusion ({err})") from None
        m = len(members) or 2
        if fus.weights.shape != (2 * m + 1,) or not (np.isfinite(det.coef).all() and np.isfinite(fus.weights).all()):
            raise ValueError(f"{path}: a fusion of {m} models needs {2 * m + 1} finite weights and a finite detector")
        if members and (len(members) < 2 or main != members[0] or len(set(members)) != len(members)):
            raise ValueError(f"{path}: a system of models needs two or more distinct members, its main one first")
        qf = cls(det, fus, meta.get("info", {}), members, main)
        if not members:  # a pair's file: the clean partner first (PAIR_FILE_ORDER); main first here
            qf = qf.permuted(PAIR_FILE_ORDER, pair_widths(det.coef.size, str(path)))
        return qf

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / FUSION_FILE).exists()


def folder_kind(folder: str | Path) -> str:
    """What a model folder holds, the one rule every reader uses (a file: its folder):

    * ``"system"``: a ``fusion.json`` naming the member folders it fuses, no checkpoint of its
      own (``cache/models/mel+cqt``);
    * ``"pair"``: a checkpoint fused with its clean partner (``fusion.json`` and ``clean/``:
      ``cache/models/cqt122``), a system of two members;
    * ``"model"``: a checkpoint alone (with or without its back-end);
    * ``"none"``: none of these.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); folder_kind(d)
    'none'
    >>> _ = (d / "fusion.json").write_text("{}"); folder_kind(d)
    'system'
    """
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    fused, checkpoint = (folder / FUSION_FILE).exists(), (folder / "model.json").exists()
    if fused and not checkpoint:
        return "system"
    if checkpoint:
        return "pair" if fused and (folder / PARTNER_DIR).is_dir() else "model"
    return "none"


def partner_folder(folder: str | Path) -> Path | None:
    """The clean partner's folder of a pair (:func:`folder_kind`), or None."""
    folder = Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    return folder / PARTNER_DIR if folder_kind(folder) == "pair" else None


def fit_fusion(backends: list[Backend], clean, wet, held, prior: float = 0.5) -> QualityFusion:
    """Steps 1-3 for m members, from data that never touches the test instruments or rooms
    (a pair is two members, the chain-trained model first; the mel+cqt system three).

    backends: the m members' calibrated back-ends; clean, wet: each member's raw embeddings
    of the detector's two classes of notes (m arrays, rows aligned); held: (m members'
    embeddings, trials) per held-out part. The detector reads every member's back-end
    vectors side by side, the fusion every member's LLR and its product with the quality.
    """
    detector = fit_condition_detector(member_vectors(backends, clean), member_vectors(backends, wet))
    llrs, ws, target = [], [], []
    for embs, tr in held:
        ws.append(trial_quality(detector.prob_clean(member_vectors(backends, embs)), tr))
        llrs.append([scoring_llr(b, e, tr) for b, e in zip(backends, embs)])
        target.append(np.asarray(tr.target, bool))
    target = np.concatenate(target)
    info = {"detector_notes": {"clean": int(len(clean[0])), "wet": int(len(wet[0]))},
            "fusion_trials": int(len(target)), "prior": prior}
    llrs = [np.concatenate([part[k] for part in llrs]) for k in range(len(backends))]
    return QualityFusion(detector, fit_weights(llrs, np.concatenate(ws), target, prior), info)


def member_vectors(backends: list[Backend], embs) -> np.ndarray:
    """(n, sum of widths): each member's back-end vectors of the same clips, side by side."""
    return np.concatenate([b.vectors(e) for b, e in zip(backends, embs)], axis=1)


def trial_features(backends: list[Backend], qf: QualityFusion, embs, trials) -> np.ndarray:
    """(n_trials, 2m + 1) the fusion's features of a trial list (:func:`fusion_features`: each
    member's calibrated LLR, each times the trial quality, the quality) over clips embedded
    by every member (rows aligned)."""
    w = trial_quality(qf.detector.prob_clean(member_vectors(backends, embs)), trials)
    return fusion_features([scoring_llr(b, e, trials) for b, e in zip(backends, embs)], w)


def trial_llrs(backends: list[Backend], qf: QualityFusion, embs, trials) -> np.ndarray:
    """(n_trials,) fused LLRs of a trial list over clips embedded by every member (rows aligned)."""
    return trial_features(backends, qf, embs, trials) @ qf.fusion.weights + qf.fusion.offset


def scoring_llr(backend: Backend, emb: np.ndarray, trials) -> np.ndarray:
    """(n_trials,) one model's calibrated LLRs of a trial list (AS-norm, step 3 of :mod:`mie_core.scoring.backend`)."""
    from mie_core.scoring.backend import trial_scores

    return trial_scores(backend, emb, trials)["llr"]


def system_llr(backends: list[Backend], qf: QualityFusion, enrols, tests) -> tuple[np.ndarray, np.ndarray]:
    """The fused LLR of test clips against one enrolment, and each trial's quality.

    ``enrols`` (m arrays (k, d_i)) and ``tests`` (m arrays (n, d_i)): each member's raw
    embeddings of the enrolment and test clips, in the member order. Returns ``llr``
    (n,) and ``w`` (n,), the trial quality of step 2: per trial, the numbers
    :func:`trial_llrs` gives for a trial list."""
    enrol_q = qf.detector.prob_clean(member_vectors(backends, enrols))
    test_q = qf.detector.prob_clean(member_vectors(backends, tests))
    w = np.minimum(float(enrol_q.mean()), test_q)
    llrs = [b.llr(b.score(e, t)) for b, e, t in zip(backends, enrols, tests)]
    return qf.fusion.llr(llrs, w), w
