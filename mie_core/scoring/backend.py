"""Scoring as speaker verification does it: normalised embeddings, AS-norm, calibrated LLRs.

Raw cosine on our embeddings misleads: they are far from centred (the mean of the unit
vectors has norm about 0.9), so every pair of notes scores 0.85-0.98 and one threshold
cannot serve clean renders and real recordings alike. The back-end here is the standard
one of speaker verification, as pure functions over arrays:

1. **Centring and length normalisation** (Garcia-Romero & Espy-Wilson 2011):
   ``x' = unit(unit(x) - m)`` with ``m`` the mean unit embedding of training notes;
   optionally ``x' = unit(W^T unit(unit(x) - m))`` with ``W`` (d, k) a Fisher LDA fitted on
   training notes clean *and* through the recording chain (the multi-condition LDA of
   speaker verification). The shipped back-ends have no LDA: it helps clean and wet
   renders but costs the verdicts on real recordings (README, "A multi-condition LDA").
2. **Adaptive score normalisation, AS-norm** (Matejka et al. 2017; Cumani et al. 2011):
   for a trial (enrolment ``e``, test ``t``) with score ``s = <e', t'>``, the top-N cohort
   scores of ``e'`` and of ``t'`` against a cohort (training-instrument centroids) give
   ``s_n = ((s - mu_e) / sd_e + (s - mu_t) / sd_t) / 2``.

   **Enrolment rule.** With several enrolment clips, ``e'`` is either their mean vector
   (``centroid``: the paper's protocol, Sec. V-B-3, and speaker verification's embedding
   averaging) or each clip on its own, the trial's score the soft maximum of the clip-wise
   AS-norm scores, ``T log mean_k exp(s_n,k / T)`` (``softmax``, temperature ``T``; the mean
   for large ``T``, the best clip as ``T -> 0``). An instrument's timbre moves with pitch
   and dynamics, and five notes across its range are not one cluster: a test note is best
   judged by the enrolment notes it resembles. Measured on identical trials
   (``benchmarks/enrolment_rule.py``): ``softmax`` at ``T = 0.5`` lowers the EER on clean,
   wet and real notes alike; it is the rule of :func:`fit_backend` and of every shipped
   back-end (a back-end saved before it has none and keeps ``centroid``).
3. **Calibration** to log-likelihood ratios by prior-weighted linear logistic regression
   (BOSARIS ``train_linear_calibration``): ``llr = a s_n + b``, fitted on held-out trials
   (validation instruments, clean and through the recording chain), never on test.
   A verdict at prior ``p`` accepts when ``llr + logit(p) >= 0``; its posterior is
   ``sigmoid(llr + logit(p))``.

Measures beside EER (:mod:`mie_core.scoring.metrics`): ``cllr`` (the calibration-sensitive
cost, bits; 1 is an uninformative system) and ``act_dcf`` (the cost of the actual
decisions at a prior).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mie_core.evaluation.embeddings import unit

LOG2 = np.log(2.0)


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def sigmoid(x):
    """The logistic function, as 0.5 (1 + tanh(x / 2)): no overflow for LLRs far out."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


# ------------------------------------------------------------------ normalisation
def centre(emb: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d): ``unit(unit(x) - mean)`` (step 1)."""
    return unit(unit(np.atleast_2d(emb)) - np.asarray(mean, np.float32)[None, :])


def cohort_stats(vectors: np.ndarray, cohort: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (each (n,)) of the ``top_n`` highest scores of each vector against the cohort."""
    s = np.atleast_2d(vectors) @ cohort.T
    k = int(min(top_n, cohort.shape[0]))
    top = -np.partition(-s, k - 1, axis=1)[:, :k]
    return top.mean(1), np.maximum(top.std(1), 1e-6)


def asnorm(scores: np.ndarray, enrol_stats, test_stats) -> np.ndarray:
    """AS-norm of scores given (mean, std) of their enrolment and test sides (step 2):
    the mean of the score's z-scores against each side's cohort statistics.

    >>> asnorm(np.array([0.5, 0.1]), (0.1, 0.2), (0.3, 0.1))  # (0.4/0.2 + 0.2/0.1) / 2, ...
    array([ 2., -1.])
    """
    (me, se), (mt, st) = enrol_stats, test_stats
    return 0.5 * ((scores - me) / se + (scores - mt) / st)


ENROL_RULES = ("centroid", "softmax")


def soft_max(scores: np.ndarray, temperature: float, axis: int = -1) -> np.ndarray:
    """``T log mean exp(s / T)`` along ``axis`` (overflow-free): between the mean (T large)
    and the maximum (T -> 0) of the scores."""
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, not {temperature}")
    s = np.asarray(scores, np.float64) / temperature
    top = s.max(axis=axis, keepdims=True)
    pooled = top + np.log(np.exp(s - top).mean(axis=axis, keepdims=True))
    return temperature * np.squeeze(pooled, axis=axis)


def pooled_asnorm(enrol: np.ndarray, test: np.ndarray, model: np.ndarray, index: np.ndarray, cohort: np.ndarray,
                  top_n: int, rule: str = "softmax", temperature: float = 0.5) -> np.ndarray:
    """AS-norm scores (step 2) of trials under an enrolment rule, in the scoring space.

    enrol: (m, k, d) unit vectors of m enrolments of k clips each; test: (n, d) unit vectors;
    trial ``t`` pairs enrolment ``model[t]`` with test clip ``index[t]``. Returns (n_trials,)
    float64: ``centroid`` scores the enrolment's unit mean vector, ``softmax`` the soft maximum
    (:func:`soft_max`) of the k clip-wise AS-norm scores.
    """
    enrol, test = np.asarray(enrol, np.float32), np.atleast_2d(np.asarray(test, np.float32))
    if enrol.ndim != 3:
        raise ValueError(f"enrolments must be (m, k, d), not {enrol.shape}")
    model, index = np.asarray(model), np.asarray(index)
    mt, st = (x[index] for x in cohort_stats(test, cohort, top_n))
    if rule == "centroid":
        c = unit(enrol.mean(axis=1))
        me, se = (x[model] for x in cohort_stats(c, cohort, top_n))
        return asnorm(np.einsum("ij,ij->i", c[model], test[index]).astype(np.float64), (me, se), (mt, st))
    if rule != "softmax":
        raise ValueError(f"unknown enrolment rule {rule!r} (one of {', '.join(ENROL_RULES)})")
    m, k, d = enrol.shape
    me, se = (x.reshape(m, k)[model] for x in cohort_stats(enrol.reshape(m * k, d), cohort, top_n))
    s = np.einsum("tkd,td->tk", enrol[model], test[index]).astype(np.float64)
    return soft_max(asnorm(s, (me, se), (mt[:, None], st[:, None])), temperature, axis=1)


def fit_lda(vectors: np.ndarray, labels, dims: int, floor: float = 1e-6) -> np.ndarray:
    """Fisher LDA: the (d, dims) projection of the leading solutions of ``S_b w = l S_w w``.

    vectors: (n, d) centred unit embeddings; labels: (n,) class of each. ``S_w`` is the
    within-class and ``S_b`` the between-class scatter (each over n); ``floor`` times the
    mean variance is added to ``S_w``'s diagonal so it is invertible when n is small. The
    columns are ``S_w``-orthonormal (``W^T S_w W = I``), as ``scipy.linalg.eigh`` returns them.
    """
    from scipy.linalg import eigh

    v = np.asarray(vectors, np.float64)
    labels = np.asarray(labels)
    classes, inv = np.unique(labels, return_inverse=True)
    if not 1 <= dims <= min(v.shape[1], len(classes) - 1):
        raise ValueError(f"LDA needs 1 <= dims <= min(dim {v.shape[1]}, classes - 1 = {len(classes) - 1}); got {dims}")
    counts = np.bincount(inv).astype(np.float64)
    means = np.zeros((len(classes), v.shape[1]))
    np.add.at(means, inv, v)
    means /= counts[:, None]
    within = v - means[inv]
    sw = within.T @ within / len(v)
    between = means - v.mean(0)
    sb = (between * counts[:, None]).T @ between / len(v)
    sw += floor * np.trace(sw) / len(sw) * np.eye(len(sw))
    _, vecs = eigh(sb, sw)
    return vecs[:, ::-1][:, :dims].astype(np.float32)


# ------------------------------------------------------------------ calibration
def fit_linear_fusion(target: np.ndarray, nontarget: np.ndarray, prior: float = 0.5,
                      l2: float = 0.0, toward: np.ndarray | None = None,
                      target_weight: np.ndarray | None = None,
                      nontarget_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(weights (k,), offset) minimising the prior-weighted logistic loss of ``x @ weights +
    offset`` as an LLR (BOSARIS ``train_linear_fusion``), with an optional ridge ``l2`` on
    the weights' distance from ``toward`` (k,) (default 0; the offset is never penalised).
    target, nontarget: (n, k) features of target and non-target trials (k = 1: the
    calibration of step 3; more: a fusion, :mod:`mie_core.scoring.fusion`).
    ``target_weight``, ``nontarget_weight``: (n,) non-negative weights of the trials inside
    their class (default equal; each class's mean loss is taken with them, so the prior still
    splits the two classes)."""
    from scipy.optimize import minimize

    t, n = np.atleast_2d(target).astype(np.float64), np.atleast_2d(nontarget).astype(np.float64)
    if t.size == 0 or n.size == 0 or t.shape[1] != n.shape[1]:
        raise ValueError(f"need target and non-target features of one width, not {t.shape} and {n.shape}")
    k, off = t.shape[1], logit(prior)
    ut, un = (np.ones(len(x)) if wt is None else np.asarray(wt, np.float64)
              for x, wt in ((t, target_weight), (n, nontarget_weight)))
    if ut.shape != (len(t),) or un.shape != (len(n),) or (ut < 0).any() or (un < 0).any() \
            or not (ut.sum() > 0 and un.sum() > 0):
        raise ValueError("trial weights must be (n,) non-negative, one per trial of their class, not all zero")
    ut, un = ut / ut.sum(), un / un.sum()
    centre_ = np.r_[np.zeros(k) if toward is None else np.asarray(toward, np.float64).ravel(), 0.0]
    mask = np.r_[np.ones(k), 0.0]  # the offset is free

    def loss_grad(p):
        wt, b = p[:k], p[k]
        zt, zn = t @ wt + b + off, n @ wt + b + off
        st, sn = sigmoid(-zt), sigmoid(zn)  # d/dz log(1 + e^-z) = -sigmoid(-z)
        d = (p - centre_) * mask
        loss = prior * np.logaddexp(0, -zt) @ ut + (1 - prior) * np.logaddexp(0, zn) @ un + l2 * d @ d
        gw = prior * -((st * ut) @ t) + (1 - prior) * ((sn * un) @ n)
        gb = prior * -(st @ ut) + (1 - prior) * (sn @ un)
        return loss, np.r_[gw, gb] + 2 * l2 * d

    # start at unit-variance weights: the optimum's scale is that of the features' spread
    x = np.concatenate([t, n])
    scale = 1.0 / np.maximum(x.std(0), 1e-6)
    start = np.r_[scale / k, -float((scale / k) @ x.mean(0))]
    res = minimize(loss_grad, start, jac=True, method="L-BFGS-B")
    return res.x[:k].copy(), float(res.x[k])


def fit_calibration(target: np.ndarray, nontarget: np.ndarray, prior: float = 0.5,
                    shrink: float = 0.0) -> tuple[float, float]:
    """(a, b) minimising the prior-weighted logistic loss, so ``a s + b`` is an LLR (step 3).

    ``shrink`` > 0 is for scores that are LLRs already (a recalibration): the slope ``a`` is
    pulled towards 1 (the scores' own scale) by a ridge of ``shrink / min(n_target,
    n_nontarget)``, and the offset ``b`` is free. A handful of separable trials then moves
    the threshold without making every verdict certain (an unbounded slope would)."""
    t, n = np.asarray(target, np.float64).ravel(), np.asarray(nontarget, np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise ValueError("calibration needs target and non-target scores")
    w, b = fit_linear_fusion(t[:, None], n[:, None], prior, l2=shrink / min(t.size, n.size), toward=np.ones(1))
    return float(w[0]), b


# ------------------------------------------------------------------ the back-end of one model
@dataclass(frozen=True)
class Backend:
    """Everything between two embeddings and a calibrated verdict, for one model.

    mean: (d,) mean unit embedding of training notes; cohort: (c, k) unit centroids of
    training instruments in the scoring space; top_n: AS-norm cohort size; calibration: (a, b)
    for AS-norm scores (None before it is fitted on held-out trials:
    :func:`mie_core.scoring.fitting.fit_backends`); typical_min: the
    1st percentile, over held-out notes, of a note's best score against the cohort (a
    clip below it is unlike anything the model was trained on); info: provenance;
    projection: (d, k) LDA (:func:`fit_lda`) or None (k = d, centring alone); rule and
    temperature: how several enrolment clips are scored (:func:`pooled_asnorm`).
    """

    mean: np.ndarray
    cohort: np.ndarray
    top_n: int = 50
    calibration: tuple[float, float] | None = None
    typical_min: float | None = None
    info: dict = field(default_factory=dict)
    projection: np.ndarray | None = None
    rule: str = "softmax"
    temperature: float = 0.5

    def calibrated(self, calibration: tuple[float, float], typical_min: float | None = None, **info) -> "Backend":
        """A copy with its calibration ``(a, b)`` (LLR = a s + b), ``typical_min`` and more
        provenance (``info``) set; this one stays as it is (a fitted back-end is never edited)."""
        return replace(self, calibration=(float(calibration[0]), float(calibration[1])),
                       typical_min=self.typical_min if typical_min is None else float(typical_min),
                       info={**self.info, **info})

    def __post_init__(self):
        if self.rule not in ENROL_RULES or not self.temperature > 0:
            raise ValueError(f"enrolment rule {self.rule!r} at temperature {self.temperature}: the rule must be "
                             f"one of {', '.join(ENROL_RULES)} and the temperature positive")

    @property
    def width(self) -> int:
        """k, the width of the scoring space."""
        return int(self.mean.size if self.projection is None else self.projection.shape[1])

    def vectors(self, emb: np.ndarray) -> np.ndarray:
        """(n, d) raw embeddings -> (n, k) unit vectors of the scoring space (step 1)."""
        v = centre(emb, self.mean)
        return v if self.projection is None else unit(v @ self.projection)

    def enrol(self, emb: np.ndarray) -> np.ndarray:
        """(k,) unit mean vector of one instrument from its clips' raw embeddings (n, d): its
        place on a map and in an export (scoring uses every clip: :meth:`score`)."""
        return unit(self.vectors(emb).mean(0))

    def score(self, enrol_emb: np.ndarray, emb: np.ndarray, norm: bool = True) -> np.ndarray:
        """Scores (n,) of clips against one enrolment, both raw embeddings ((n, d) and
        (k, d), the enrolment's clips): AS-norm under the back-end's enrolment rule
        (:func:`pooled_asnorm`), or with ``norm=False`` the centred cosine to the enrolment's
        mean vector."""
        t = self.vectors(emb)
        e = self.vectors(enrol_emb)
        if not norm:
            return (t @ unit(e.mean(0))).astype(np.float64)
        return pooled_asnorm(e[None], t, np.zeros(len(t), int), np.arange(len(t)), self.cohort, self.top_n,
                             self.rule, self.temperature)

    def llr(self, normed_scores: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            raise ValueError("this back-end is not calibrated")
        a, b = self.calibration
        return a * np.asarray(normed_scores, np.float64) + b

    def posterior(self, normed_scores, prior: float = 0.5) -> np.ndarray:
        return sigmoid(self.llr(normed_scores) + logit(prior))

    def typicality(self, emb: np.ndarray) -> np.ndarray:
        """(n,) each clip's best score against the cohort (higher: more like training notes)."""
        return (self.vectors(emb) @ self.cohort.T).max(1)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "backend_mean.npy", self.mean.astype(np.float32))
        np.save(folder / "backend_cohort.npy", self.cohort.astype(np.float16))
        proj = folder / "backend_projection.npy"
        if self.projection is not None:
            np.save(proj, self.projection.astype(np.float32))
        elif proj.exists():
            proj.unlink()
        (folder / "backend.json").write_text(json.dumps({
            "top_n": self.top_n, "calibration": list(self.calibration) if self.calibration else None,
            "rule": self.rule, "temperature": self.temperature,
            "typical_min": self.typical_min, "info": self.info}, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "Backend":
        folder = Path(folder)
        meta = json.loads((folder / "backend.json").read_text())
        cal = meta.get("calibration")
        proj = folder / "backend_projection.npy"
        return cls(np.load(folder / "backend_mean.npy", allow_pickle=False).astype(np.float32),
                   np.load(folder / "backend_cohort.npy", allow_pickle=False).astype(np.float32),
                   int(meta["top_n"]), tuple(cal) if cal else None, meta.get("typical_min"), meta.get("info", {}),
                   np.load(proj, allow_pickle=False).astype(np.float32) if proj.exists() else None,
                   # a back-end saved before the enrolment rules scored the centroid
                   meta.get("rule", "centroid"), float(meta.get("temperature", 0.5)))

    @classmethod
    def exists(cls, folder: Path) -> bool:
        return (Path(folder) / "backend.json").exists()


def fit_backend(train_emb: np.ndarray, train_labels, top_n: int = 50, lda_dims: int | None = None,
                rule: str = "softmax", temperature: float = 0.5) -> Backend:
    """Mean, LDA (``lda_dims``; None: none) and cohort from embeddings of training notes
    with their instrument labels (clean notes and the same instruments through the
    recording chain, for a multi-condition LDA); ``lda_dims`` is capped at the number of
    training instruments minus one; ``rule`` and ``temperature``: the enrolment rule."""
    labels = np.asarray(train_labels)
    mean = unit(train_emb).mean(0).astype(np.float32)
    if lda_dims:  # at most classes - 1 discriminants (a small corpus has few training instruments)
        lda_dims = int(min(lda_dims, len(np.unique(labels)) - 1, np.shape(train_emb)[1]))
    proj = fit_lda(centre(train_emb, mean), labels, lda_dims) if lda_dims and lda_dims >= 1 else None
    space = Backend(mean, np.zeros((0, 0), np.float32), top_n, projection=proj, rule=rule, temperature=temperature)
    v = space.vectors(train_emb)
    names, inv = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(names), v.shape[1]), np.float64)
    np.add.at(sums, inv, v)
    info = {"n_train_notes": int(len(labels)), "n_cohort": int(len(names)), "lda_dims": lda_dims,
            "rule": rule, "temperature": temperature}
    return replace(space, cohort=unit(sums).astype(np.float32), info=info)


def trial_scores(backend: Backend, emb: np.ndarray, trials) -> dict[str, np.ndarray]:
    """Scores of a :class:`mie_core.scoring.trials.Trials` list three ways, on identical trials:
    ``raw`` (cosine of raw embeddings to the enrolment mean, the paper's), ``centred`` (step
    1, enrolment mean) and ``asnorm`` (steps 1-2 under the back-end's enrolment rule); plus
    ``llr`` (step 3) when the back-end is calibrated."""
    from mie_core.scoring.trials import score_trials

    out = {"raw": score_trials(emb, trials)}
    v = backend.vectors(emb)
    centres = unit(v[trials.enroll].mean(axis=1))
    out["centred"] = np.einsum("ij,ij->i", centres[trials.model], v[trials.test]).astype(np.float64)
    out["asnorm"] = pooled_asnorm(v[trials.enroll], v, trials.model, trials.test, backend.cohort, backend.top_n,
                                  backend.rule, backend.temperature)
    if backend.calibration is not None:
        out["llr"] = backend.llr(out["asnorm"])
    return out
