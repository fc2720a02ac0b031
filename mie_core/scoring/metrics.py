"""Verification metrics: EER (two definitions), minDCF, DET, bootstrap, significance.

Pure functions over arrays; randomness only through an explicit generator.

EER, two definitions that differ by design:

* ``method="rocch"`` (default, what the paper used): the EER of the ROC *convex hull*
  of the BOSARIS toolkit (Brummer & de Villiers). Scores are sorted, the
  pool-adjacent-violators algorithm gives the hull's vertices, and the EER is the
  largest intersection of the line P_miss = P_fa with the hull's segments. The hull
  never falls below chance: inverted scores give 0.5.
* ``method="interp"``: the NIST SRE scorer's EER as WeSpeaker and 3D-Speaker compute
  it: the empirical (P_fa, P_miss) curve over every threshold, linearly interpolated
  where P_miss crosses P_fa. Inverted scores give 1.0. It is at least the ROCCH EER.

Significance (paper Eq. 1, after Bengio & Mariethoz): for systems A and B scored on
the same trials,
    z = 2 |EER_A - EER_B| / sqrt((EER_A(1-EER_A) + EER_B(1-EER_B)) (N_t + N_n) / (N_t N_n)),
compared with Z_{alpha/2} after Holm-Bonferroni correction over all pairs. N_t and
N_n must count *distinct* trials: the authors' release samples trials with
replacement, which inflates the counts and makes z too large. Our trials are drawn
without replacement (:mod:`mie_core.scoring.trials`), so the counts are honest.
"""
from __future__ import annotations

import numpy as np
# the standard normal's quantile and CDF from scipy.special (scipy.stats costs 1.7 s to import
# in every process that scores: the trainer, each test's subprocess)
from scipy.special import ndtr, ndtri


def _as_scores(target, nontarget) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(target, dtype=np.float64).ravel()
    n = np.asarray(nontarget, dtype=np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise ValueError("EER needs at least one target and one non-target score")
    if not (np.isfinite(t).all() and np.isfinite(n).all()):
        raise ValueError("scores must be finite")
    return t, n


def rocch(target, nontarget) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the ROC convex hull as (P_miss, P_fa), BOSARIS ``rocch``.

    Scores are sorted ascending with ties keeping targets first (a stable sort of
    [targets, non-targets]); PAV on the labels gives the hull. O(n log n).
    """
    t, n = _as_scores(target, nontarget)
    scores = np.concatenate([t, n])
    ideal = np.concatenate([np.ones(t.size), np.zeros(n.size)])
    order = np.argsort(scores, kind="stable")
    ideal = ideal[order]
    # PAV on runs of equal labels is equivalent and much faster: collapse runs first
    change = np.flatnonzero(np.diff(ideal)) + 1
    starts = np.concatenate([[0], change])
    run_w = np.diff(np.concatenate([starts, [ideal.size]]))
    run_v = ideal[starts]
    means, widths = _pav_weighted(run_v, run_w)
    n_t, n_n = t.size, n.size
    # cumulative targets / non-targets left of each block boundary
    tar_in = means * widths
    cum_w = np.concatenate([[0], np.cumsum(widths)])
    cum_t = np.concatenate([[0.0], np.cumsum(tar_in)])
    pmiss = cum_t / n_t
    pfa = (n_n - (cum_w - cum_t)) / n_n
    return pmiss, pfa


def _pav_weighted(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    means: list[float] = []
    widths: list[float] = []
    for val, wt in zip(v, w):
        means.append(float(val))
        widths.append(float(wt))
        while len(means) > 1 and means[-2] > means[-1]:
            tw = widths[-2] + widths[-1]
            m = (means[-2] * widths[-2] + means[-1] * widths[-1]) / tw
            means[-2:] = [m]
            widths[-2:] = [tw]
    return np.asarray(means), np.asarray(widths)


def _rocch_eer(target, nontarget) -> float:
    pmiss, pfa = rocch(target, nontarget)
    x1, x2 = pfa[:-1], pfa[1:]
    y1, y2 = pmiss[:-1], pmiss[1:]
    dx, dy = x1 - x2, y1 - y2
    ok = (dx != 0) & (dy != 0)
    if not ok.any():
        return 0.0
    det = x1[ok] * y2[ok] - x2[ok] * y1[ok]
    denom = (x1[ok] - x2[ok]) + (y2[ok] - y1[ok])
    eer = det / denom
    return float(max(0.0, eer.max()))


def error_rates(target, nontarget) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical (P_fa, P_miss, threshold) for every distinct threshold, accepting score >= threshold.

    The first point is threshold +inf (accept nothing: P_fa 0, P_miss 1), the last the
    lowest score (accept all). O(n log n).
    """
    t, n = _as_scores(target, nontarget)
    scores = np.concatenate([t, n])
    is_t = np.concatenate([np.ones(t.size, bool), np.zeros(n.size, bool)])
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    lab = is_t[order]
    cum_t = np.cumsum(lab)
    cum_n = np.cumsum(~lab)
    last = np.concatenate([s[1:] != s[:-1], [True]])  # last index of each tie group
    pfa = np.concatenate([[0.0], cum_n[last] / n.size])
    pmiss = np.concatenate([[1.0], 1.0 - cum_t[last] / t.size])
    thr = np.concatenate([[np.inf], s[last]])
    return pfa, pmiss, thr


def _interp_eer(target, nontarget) -> tuple[float, float]:
    pfa, pmiss, thr = error_rates(target, nontarget)
    d = pmiss - pfa  # decreasing from 1 to <= 0
    i = int(np.argmax(d <= 0))
    if i == 0:
        return float(pfa[0]), float(thr[0])
    d0, d1 = d[i - 1], d[i]
    a = d0 / (d0 - d1) if d0 != d1 else 0.0
    eer = pfa[i - 1] + a * (pfa[i] - pfa[i - 1])
    t0 = thr[i - 1] if np.isfinite(thr[i - 1]) else thr[i]
    return float(eer), float(t0 + a * (thr[i] - t0))


def eer(target_scores, nontarget_scores, method: str = "rocch") -> float:
    """Equal error rate in [0, 1]; ``method`` "rocch" (BOSARIS) or "interp" (NIST/WeSpeaker).

    A worked case: targets 0.9, 0.8, 0.3 and non-targets 0.1, 0.4, 0.7. The ROC's operating
    points (P_miss, P_fa) include (0, 2/3), (1/3, 1/3)... and (1/3, 0); its convex hull
    joins (0, 2/3) to (1/3, 0), which meets P_miss = P_fa at 2/9 (the "interp" EER is 1/3):

    >>> round(eer([0.9, 0.8, 0.3], [0.1, 0.4, 0.7]), 4)
    0.2222
    >>> eer([3.0, 2.0, 1.0], [0.0, -1.0])  # separable scores
    0.0
    """
    if method == "rocch":
        return _rocch_eer(target_scores, nontarget_scores)
    if method == "interp":
        return _interp_eer(target_scores, nontarget_scores)[0]
    raise ValueError(f"method must be 'rocch' or 'interp', not {method!r}")


def eer_threshold(target_scores, nontarget_scores) -> float:
    """The score threshold at the (interpolated) EER point: accept when score >= it."""
    return _interp_eer(target_scores, nontarget_scores)[1]


def min_dcf(target_scores, nontarget_scores, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (NIST SRE): min over thresholds of
    (c_miss p P_miss + c_fa (1-p) P_fa) / min(c_miss p, c_fa (1-p))."""
    pfa, pmiss, _ = error_rates(target_scores, nontarget_scores)
    pfa = np.concatenate([pfa, [1.0]])
    pmiss = np.concatenate([pmiss, [0.0]])
    cost = c_miss * p_target * pmiss + c_fa * (1 - p_target) * pfa
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def det_curve(target_scores, nontarget_scores, clip: float = 1e-4) -> dict[str, np.ndarray]:
    """DET points: P_fa, P_miss, thresholds and their normal deviates (probit, for DET axes).

    Probabilities are clipped to [clip, 1 - clip] before the probit.
    """
    pfa, pmiss, thr = error_rates(target_scores, nontarget_scores)
    return {
        "p_fa": pfa, "p_miss": pmiss, "threshold": thr,
        "probit_fa": ndtri(np.clip(pfa, clip, 1 - clip)),
        "probit_miss": ndtri(np.clip(pmiss, clip, 1 - clip)),
    }


def bootstrap_eer(target_scores, nontarget_scores, target_groups, nontarget_groups, rng: np.random.Generator,
                  n_boot: int = 1000, alpha: float = 0.05, method: str = "rocch") -> tuple[float, float]:
    """Percentile bootstrap interval of the EER that resamples *instruments*, not trials.

    ``target_groups``/``nontarget_groups`` give the enrolled instrument of each trial;
    each replicate draws instruments with replacement and keeps all of their trials.
    Returns (low, high) at confidence 1 - alpha.
    """
    t, n = _as_scores(target_scores, nontarget_scores)
    tg = np.asarray(target_groups)
    ng = np.asarray(nontarget_groups)
    groups = np.unique(np.concatenate([tg, ng]))
    t_idx = {g: np.flatnonzero(tg == g) for g in groups}
    n_idx = {g: np.flatnonzero(ng == g) for g in groups}
    stats = []
    for _ in range(n_boot):
        pick = rng.choice(groups, size=groups.size, replace=True)
        ti = np.concatenate([t_idx[g] for g in pick])
        ni = np.concatenate([n_idx[g] for g in pick])
        if ti.size == 0 or ni.size == 0:
            continue
        stats.append(eer(t[ti], n[ni], method))
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def z_test(eer_a: float, eer_b: float, n_target: int, n_nontarget: int) -> tuple[float, float]:
    """Paper Eq. 1: (z, two-sided p) for the difference of two EERs on the same trials."""
    var = (eer_a * (1 - eer_a) + eer_b * (1 - eer_b)) * (n_target + n_nontarget) / (n_target * n_nontarget)
    if var <= 0:
        return (0.0, 1.0) if eer_a == eer_b else (float("inf"), 0.0)
    z = 2.0 * abs(eer_a - eer_b) / np.sqrt(var)
    return float(z), float(2.0 * ndtr(-z))


def wilson_interval(rate: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval of a binomial proportion: ``rate`` observed on
    ``n`` independent trials (a verdict rate on one source's trials). NaN where ``n`` is 0.

    >>> lo, hi = wilson_interval(0.9, 20)   # 18 of 20 genuine trials accepted
    >>> round(lo, 3), round(hi, 3)
    (0.699, 0.972)
    >>> [round(x, 3) for x in wilson_interval(1.0, 100)]
    [0.963, 1.0]
    """
    if not n > 0:
        return float("nan"), float("nan")
    z = float(ndtri(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def holm_bonferroni(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure.

    Sort the m p-values ascending; reject H_(i) (i = 1..m) while p_(i) <= alpha / (m - i + 1),
    and stop at the first that is not rejected. Returns (reject mask, Holm-adjusted p-values),
    both in the input order; adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    order = np.argsort(p, kind="stable")
    ps = p[order]
    factors = m - np.arange(m)
    adj_sorted = np.maximum.accumulate(np.minimum(1.0, factors * ps))
    reject_sorted = np.zeros(m, bool)
    for i in range(m):
        if ps[i] <= alpha / factors[i]:
            reject_sorted[i] = True
        else:
            break
    reject = np.empty(m, bool)
    adj = np.empty(m)
    reject[order] = reject_sorted
    adj[order] = adj_sorted
    return reject, adj


def significance_matrix(eers, n_target: int, n_nontarget: int, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Figs. 2-3: every pair of models on the same trials, Holm-corrected over all pairs.

    Returns {"z", "p", "p_holm", "significant"} as (k, k) symmetric arrays (diagonal:
    z 0, p 1, not significant).
    """
    e = np.asarray(eers, dtype=np.float64)
    k = e.size
    z = np.zeros((k, k))
    p = np.ones((k, k))
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pv = []
    for i, j in pairs:
        zz, pp = z_test(e[i], e[j], n_target, n_nontarget)
        z[i, j] = z[j, i] = zz
        p[i, j] = p[j, i] = pp
        pv.append(p[i, j])
    sig = np.zeros((k, k), bool)
    p_holm = np.ones((k, k))
    if pairs:
        reject, adj = holm_bonferroni(pv, alpha)
        for (i, j), r, a in zip(pairs, reject, adj):
            sig[i, j] = sig[j, i] = r
            p_holm[i, j] = p_holm[j, i] = a
    return {"z": z, "p": p, "p_holm": p_holm, "significant": sig}


# ------------------------------------------------------------------ calibrated scores (LLRs)
def cllr(target_llr: np.ndarray, nontarget_llr: np.ndarray) -> float:
    """Cost of log-likelihood-ratio scores in bits (0 perfect, 1 uninformative, above 1 misleading).

    >>> round(cllr(np.zeros(4), np.zeros(4)), 6), round(cllr(np.full(4, 20.0), np.full(4, -20.0)), 6)
    (1.0, 0.0)
    """
    t = np.asarray(target_llr, np.float64)
    n = np.asarray(nontarget_llr, np.float64)
    return float((np.logaddexp(0, -t).mean() + np.logaddexp(0, n).mean()) / (2 * np.log(2.0)))


def min_cllr(target_scores, nontarget_scores) -> float:
    """Cllr after the best monotonic calibration (bits): the scores' discrimination alone,
    whatever their scale (BOSARIS's min Cllr). Pool-adjacent-violators on the scores sorted
    (a target before a non-target at a tie) gives the posterior of each block; removing the
    trials' own prior gives the LLRs whose :func:`cllr` this is. 0 when the scores separate
    the classes, 1 when they carry nothing.

    >>> min_cllr([2.0, 3.0], [0.0, 1.0]), round(min_cllr([0.0, 1.0], [0.0, 1.0]), 6)
    (0.0, 1.0)
    """
    t, n = _as_scores(target_scores, nontarget_scores)
    s = np.concatenate([t, n])
    y = np.concatenate([np.ones(t.size), np.zeros(n.size)])
    order = np.lexsort((-y, s))  # ascending score; at a tie the target first (the pessimistic order)
    means, widths = _pav_weighted(y[order], np.ones(s.size))
    post = np.repeat(means, widths.astype(int))
    prior_logit = np.log(t.size) - np.log(n.size)
    with np.errstate(divide="ignore"):
        llr = np.log(post) - np.log1p(-post) - prior_logit
    llr_sorted = np.empty_like(llr)
    llr_sorted[order] = llr
    return cllr(llr_sorted[: t.size], llr_sorted[t.size:])


def act_dcf(target_llr: np.ndarray, nontarget_llr: np.ndarray, p_target: float = 0.5) -> float:
    """Normalised detection cost of the Bayes decisions ``llr >= -logit(p_target)``.

    >>> act_dcf(np.array([-1.0, 1.0, 2.0, 3.0]), np.array([-2.0, -1.0, 0.0, 1.0]), 0.5)  # 1 miss, 2 false accepts
    0.75
    """
    thr = -float(np.log(p_target) - np.log1p(-p_target))  # -logit(p_target)
    p_miss = float(np.mean(np.asarray(target_llr) < thr))
    p_fa = float(np.mean(np.asarray(nontarget_llr) >= thr))
    return (p_target * p_miss + (1 - p_target) * p_fa) / min(p_target, 1 - p_target)
