"""Quality-aware fusion of a clean model and a chain-trained model (speaker verification's answer to mixed conditions).

A model trained on clean renders scores clean recordings best and is lost on wet ones; the
same model fine-tuned through the recording chain holds on wet clips and loses 2-4 points
on clean studio notes (README, the ablations). Neither distillation nor weight averaging
escapes the trade-off; speaker verification's usual answer is to keep both systems and
fuse their calibrated scores with weights that depend on a *quality measure* of the
trial (BOSARIS toolkit, Brümmer & de Villiers 2013: linear fusion with quality measures;
NIST SRE systems since 2010). Here, as pure functions over arrays:

1. **Condition detector**: ``q(x) = P(clean | x)``, a logistic regression on a clip's two
   back-end vectors (:meth:`mie_core.scoring.Backend.vectors` of both models, concatenated),
   fitted on the ``bank`` notes of *training* instruments as rendered (clean) against the
   same notes through the training rooms' chain (``bankwet``).
2. **Trial quality**: ``w = min(mean q over the enrolment clips, q of the test clip)``:
   a trial is as clean as its wetter side.
3. **Fusion**: ``llr = a1 l_clean + a2 l_chain + a3 w l_clean + a4 w l_chain + a5 w + b``
   with ``l_*`` each model's calibrated LLR (:mod:`mie_core.scoring`, step 3), fitted by
   prior-weighted logistic regression on held-out trials (the valid instruments' notes,
   clean and through the training rooms: the calibration's own pool); test instruments,
   test rooms and real recordings are never used.

Measured (``benchmarks/quality_fusion.py``): against the shipped chain-trained model on
identical trials, lower EER on clean and real notes at equal wet EER.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scoring import fit_linear_fusion, sigmoid


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
    ``q``: (n_clips,) per-clip quality, ``trials``: a :class:`mie_core.trials.Trials`."""
    q = np.asarray(q, np.float64)
    return np.minimum(q[trials.enroll].mean(axis=1)[trials.model], q[trials.test])


def fusion_features(llr_clean: np.ndarray, llr_chain: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n, 5): ``l_clean, l_chain, w l_clean, w l_chain, w`` (step 3)."""
    a, b, w = (np.asarray(v, np.float64) for v in (llr_clean, llr_chain, w))
    return np.stack([a, b, w * a, w * b, w], axis=1)


@dataclass(frozen=True)
class Fusion:
    weights: np.ndarray  # (5,), over fusion_features
    offset: float

    def llr(self, llr_clean: np.ndarray, llr_chain: np.ndarray, w: np.ndarray) -> np.ndarray:
        return fusion_features(llr_clean, llr_chain, w) @ self.weights + self.offset


def fit_fusion(llr_clean: np.ndarray, llr_chain: np.ndarray, w: np.ndarray, target: np.ndarray,
               prior: float = 0.5) -> Fusion:
    """The fusion of step 3 from held-out trials: each model's LLR, the trial quality and
    whether the trial is a target (bool)."""
    x = fusion_features(llr_clean, llr_chain, w)
    target = np.asarray(target, bool)
    weights, offset = fit_linear_fusion(x[target], x[~target], prior, l2=1e-4)
    return Fusion(weights, offset)
