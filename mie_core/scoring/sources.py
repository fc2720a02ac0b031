"""Real notes scored source by source, with whatever is fitted on real notes fitted
without the source scored (leave one source out).

A *source* is the collection a real note was recorded for (:mod:`mie_core.data.realrec`:
VSCO-2, Karoryfer, Freesound packs, Iowa MIS, Salamander, ...). A trial belongs to the
source of its **enrolled** instrument; its test clip may be of any instrument (a source
of one instrument has no impostors of its own). Fitting for source S uses only the
trials whose enrolled instrument and test clip are both of other sources, so nothing of
S is seen before S is scored.

The verdict is the Bayes decision at the prior (``llr >= -logit(prior)``); its rates are
the share of genuine trials accepted and of impostor trials rejected.

Pure functions over arrays: no printing, no files, no global random state.

>>> import numpy as np
>>> llr = np.array([2.0, 1.0, -1.0, -2.0, 3.0, 0.5, -0.5, 0.2])
>>> target = np.array([True, True, False, False, True, True, False, False])
>>> src = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
>>> r = source_rates(llr, target, src)
>>> r["a"]["genuine_accepted"], r["a"]["impostors_rejected"], r["b"]["impostors_rejected"]
(1.0, 1.0, 0.5)
"""
from __future__ import annotations

import numpy as np

from mie_core.scoring import metrics
from mie_core.scoring.backend import fit_linear_fusion, logit


def verdict_rates(llr: np.ndarray, target: np.ndarray, prior: float = 0.5) -> dict:
    """Genuine accepted and impostors rejected (fractions) at ``prior``, with the counts."""
    llr, target = np.asarray(llr, float), np.asarray(target, bool)
    accept = llr >= -logit(prior)
    t, n = accept[target], ~accept[~target]
    return {"genuine_accepted": float(t.mean()) if t.size else float("nan"),
            "impostors_rejected": float(n.mean()) if n.size else float("nan"),
            "n_target": int(t.size), "n_nontarget": int(n.size)}


def verdict_intervals(rates: dict, confidence: float = 0.95) -> str | None:
    """"lo-hi / lo-hi" (whole percents): the Wilson intervals of a :func:`verdict_rates`
    record's genuine-accepted and impostors-rejected rates on its counts (one draw's trials:
    the draws reuse the same notes), or None where the record has no counts.

    >>> verdict_intervals({"genuine_accepted": 0.9, "impostors_rejected": 0.95, "n_target": 20, "n_nontarget": 20})
    '70-97 / 76-99'
    """
    if "n_target" not in rates or "n_nontarget" not in rates:
        return None
    spans = (metrics.wilson_interval(rates[k], rates[n], confidence)
             for k, n in (("genuine_accepted", "n_target"), ("impostors_rejected", "n_nontarget")))
    return " / ".join(f"{100 * lo:.0f}-{100 * hi:.0f}" for lo, hi in spans)


def source_rates(llr: np.ndarray, target: np.ndarray, trial_source: np.ndarray, prior: float = 0.5) -> dict:
    """Per source (of the enrolled instrument): EER (ROCCH) and the verdict's rates."""
    llr, target, trial_source = np.asarray(llr, float), np.asarray(target, bool), np.asarray(trial_source)
    out = {}
    for s in sorted(set(trial_source.tolist())):
        m = trial_source == s
        t, n = llr[m & target], llr[m & ~target]
        eer = metrics.eer(t, n, "rocch") if t.size and n.size else float("nan")
        out[str(s)] = {"eer": float(eer), **verdict_rates(llr[m], target[m], prior)}
    return out


def trial_sources(source_of_clip: np.ndarray, enroll: np.ndarray, model: np.ndarray, test: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(source of each trial's enrolled instrument, source of its test clip) from the
    protocol's index arrays (:class:`mie_core.scoring.trials.Trials`: ``enroll`` (n_models, k),
    ``model`` and ``test`` (n_trials,))."""
    source_of_clip = np.asarray(source_of_clip)
    model_source = source_of_clip[np.asarray(enroll)[:, 0]]
    return model_source[np.asarray(model)], source_of_clip[np.asarray(test)]


def group_weights(target: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights of the target trials, of the non-target ones) that give every group the same
    total inside each class: ``1 / (the group's trials of that class)``.

    >>> t, n = group_weights(np.array([True, True, True, False]), np.array(["a", "a", "b", "a"]))
    >>> t.tolist(), n.tolist()
    ([0.5, 0.5, 1.0], [1.0])
    """
    target, groups = np.asarray(target, bool), np.asarray(groups)
    out = []
    for cls in (target, ~target):
        _, inv, counts = np.unique(groups[cls], return_inverse=True, return_counts=True)
        out.append(1.0 / counts[inv])
    return out[0], out[1]


def fit_linear(features: np.ndarray, target: np.ndarray, prior: float = 0.5,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(w (k,), b): ``features @ w + b`` as an LLR, by prior-weighted logistic regression
    (:func:`mie_core.scoring.backend.fit_linear_fusion`); one feature, the LLR itself, is the
    affine recalibration ``a llr + b``. ``groups`` (n,): each group (a source) weighted
    equally inside each class (:func:`group_weights`) instead of each trial."""
    x, target = np.asarray(features, float).reshape(len(target), -1), np.asarray(target, bool)
    if groups is None:
        return fit_linear_fusion(x[target], x[~target], prior)
    wt, wn = group_weights(target, groups)
    return fit_linear_fusion(x[target], x[~target], prior, target_weight=wt, nontarget_weight=wn)


def leave_one_source_out(features: np.ndarray, target: np.ndarray, enrol_source: np.ndarray,
                         test_source: np.ndarray, fit=fit_linear, balanced: bool = False) -> tuple[np.ndarray, dict]:
    """Each trial's LLR from ``features`` (n,) or (n, k), mapped by ``fit`` fitted on the
    trials of the other sources only.

    For the source S of a trial's enrolment, ``fit(features[m], target[m])`` -> (w, b) is
    fitted on the trials ``m`` whose enrolled instrument and test clip are both of other
    sources, and ``features @ w + b`` is S's trials' LLR. ``balanced``: ``fit`` also gets
    ``groups=enrol_source[m]``, so that each source counts alike (:func:`fit_linear`).
    Returns (llr, {source: (w, b)}).
    """
    target = np.asarray(target, bool)
    x = np.asarray(features, float).reshape(len(target), -1)
    enrol_source, test_source = np.asarray(enrol_source), np.asarray(test_source)
    out = np.full(len(target), np.nan)
    params = {}
    for s in sorted(set(enrol_source.tolist())):
        fit_on = (enrol_source != s) & (test_source != s)
        if not (target[fit_on].any() and (~target[fit_on]).any()):
            raise ValueError(f"no trials outside source {s!r} of both kinds to fit on")
        w, b = (fit(x[fit_on], target[fit_on], groups=enrol_source[fit_on]) if balanced
                else fit(x[fit_on], target[fit_on]))
        scored = enrol_source == s
        out[scored] = x[scored] @ np.asarray(w, float).reshape(-1) + b
        params[str(s)] = ([float(v) for v in np.ravel(w)], float(b))
    return out, params


MARGIN_GRID = np.round(np.arange(-3.0, 3.0001, 0.05), 2)  # candidate margins (natural-log LLR units)


def unseen_margin(features: np.ndarray, target: np.ndarray, enrol_source: np.ndarray, test_source: np.ndarray,
                  prior: float = 0.5, grid: np.ndarray = MARGIN_GRID, mix: tuple | None = None,
                  fit=fit_linear, balanced: bool = False) -> float:
    """The margin ``m`` to subtract from a linear map fitted on these sources so that its
    verdict holds on a source it was not fitted on.

    A map fitted on some sources is too sure of itself on another: on a source held out, its
    impostors score higher than the fitted sources' did, and the verdict accepts too many.
    Inside the fitted sources, each is held out in turn (:func:`leave_one_source_out`, the
    same simulation one level down), and ``m`` is the grid value whose worst source's worse
    verdict rate (``min over sources of min(genuine accepted, impostors rejected)`` at
    ``prior`` for ``llr - m``) is highest; of equal ones, the smallest ``|m|``. Needs two
    sources or more (0.0 otherwise). ``mix``: ``(llr_own, s)``, each (n,): the verdict is
    taken on the automatic mix ``(1 - s) llr_own + s (llr - m)`` instead
    (:func:`mie_core.scoring.condition.mixed_llr`), as the pages score. ``fit``, ``balanced``:
    the map's fit, as :func:`leave_one_source_out` takes them.

    >>> rng = np.random.default_rng(0)
    >>> src = np.repeat(np.array(["a", "b", "c"]), 400); t = np.tile(np.arange(400) < 200, 3)
    >>> shift = np.repeat([0.0, 1.0, 2.0], 400)  # each source's impostors score higher than the last's
    >>> x = np.where(t, 3.0, -3.0 + shift) + rng.normal(size=1200)
    >>> unseen_margin(x, t, src, src) > 0  # held out, a source is harder than the fit says
    True
    """
    target, enrol_source = np.asarray(target, bool), np.asarray(enrol_source)
    if len(set(enrol_source.tolist())) < 2:
        return 0.0
    llr, _ = leave_one_source_out(features, target, enrol_source, test_source, fit, balanced)
    if mix is None:
        base, slope = llr, np.ones(len(llr))
    else:
        own, w = (np.asarray(v, float) for v in mix)
        w = np.clip(w, 0.0, 1.0)
        base, slope = (1.0 - w) * own + w * llr, w
    thr = -logit(prior)
    worst = np.full(len(grid), np.inf)
    for s in set(enrol_source.tolist()):
        m = enrol_source == s
        if not (m & target).any() or not (m & ~target).any():
            continue
        shifted = base[m][None, :] - grid[:, None] * slope[m][None, :]  # (grid, trials of s)
        ga = (shifted[:, target[m]] >= thr).mean(1)
        ir = (shifted[:, ~target[m]] < thr).mean(1)
        worst = np.minimum(worst, np.minimum(ga, ir))
    best = np.flatnonzero(worst == worst.max())
    return float(grid[best[np.argmin(np.abs(grid[best]))]])


def trial_pitch_gaps(clip_midi: np.ndarray, enroll: np.ndarray, model: np.ndarray, test: np.ndarray) -> np.ndarray:
    """(n_trials,) semitones from each trial's test note to the nearest note of its
    enrolment (NaN where a pitch is unknown), from per-clip MIDI pitches."""
    clip_midi = np.asarray(clip_midi, float)
    enrol_midi = clip_midi[np.asarray(enroll)]  # (n_models, k)
    d = np.abs(clip_midi[np.asarray(test)][:, None] - enrol_midi[np.asarray(model)])
    with np.errstate(all="ignore"):
        return np.where(np.isnan(d).all(1), np.nan, np.nanmin(np.where(np.isnan(d), np.inf, d), axis=1))


def quality_features(llr: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """(n, 3): the LLR, the pitch gap in octaves (unknown: the median gap) and their product:
    the quality-measure calibration measured beside the affine one (not shipped)."""
    g = np.where(np.isnan(gap), np.nanmedian(gap), gap) / 12.0
    return np.stack([llr, g, llr * g], axis=1)


def rates_with_pooled(scores: np.ndarray, target: np.ndarray, enrol_src: np.ndarray, prior: float = 0.5) -> dict:
    """:func:`source_rates` per source, and ``pooled``: the same over every trial."""
    rec = source_rates(scores, target, enrol_src, prior)
    rec["pooled"] = {"eer": float(metrics.eer(scores[target], scores[~target], "rocch")), **verdict_rates(scores, target, prior)}
    return rec


def measure_sources(llr_draws: list, draws: list, source_of_clip: np.ndarray, clip_midi: np.ndarray | None = None,
                    prior: float = 0.5, feature_draws: list | None = None) -> dict:
    """Per source and pooled, means over trial draws of EER and both verdict rates:
    ``before`` (the scores as given), ``loso`` (:func:`leave_one_source_out` of the affine
    recalibration); with ``feature_draws`` (per draw, (n, k) features whose fitted linear map
    is an LLR: a fused system's :func:`mie_core.scoring.fusion.fusion_features`), ``fusion``
    (that map fitted without the source: the fusion's weights refitted on real notes); with
    ``clip_midi``, ``quality`` (the LLR with the pitch gap, :func:`quality_features`, also
    fitted without the source)."""
    out: dict[str, list] = {}
    for k, (llr, d) in enumerate(zip(llr_draws, draws)):
        enrol_src, test_src = trial_sources(source_of_clip, d.enroll, d.model, d.test)
        scored = {"before": llr, "loso": leave_one_source_out(llr, d.target, enrol_src, test_src)[0]}
        if feature_draws is not None:
            scored["fusion"] = leave_one_source_out(feature_draws[k], d.target, enrol_src, test_src)[0]
        if clip_midi is not None:
            gap = trial_pitch_gaps(clip_midi, d.enroll, d.model, d.test)
            scored["quality"] = leave_one_source_out(quality_features(llr, gap), d.target, enrol_src, test_src)[0]
        for key, scores in scored.items():
            out.setdefault(key, []).append(rates_with_pooled(scores, d.target, enrol_src, prior))
    return {k: {s: {m: float(np.mean([r[s][m] for r in recs])) for m in recs[0][s]} for s in recs[0]}
            for k, recs in out.items()}


def fit_real_calibration(llr_draws: list, draws: list, prior: float = 0.5) -> tuple[float, float]:
    """(a, b) of ``a llr + b`` fitted on every real trial of every draw (every source): a model
    alone's calibration on real notes (:func:`fit_real_fusion` with the LLR as its one feature)."""
    w, b = fit_real_fusion([np.asarray(llr, float)[:, None] for llr in llr_draws], draws, prior)
    return float(w[0]), b


def fit_real_fusion(feature_draws: list, draws: list, prior: float = 0.5) -> tuple[np.ndarray, float]:
    """(weights (k,), offset) of ``features @ weights + offset`` fitted on every real trial of
    every draw (every source): a fused system's weights refitted on real notes, what ships
    for recordings of sources none of which it has seen (:func:`measure_sources`'s ``fusion``
    gives its figures on each source held out)."""
    x = np.concatenate(feature_draws)
    target = np.concatenate([d.target for d in draws])
    w, b = fit_linear(x, target, prior=prior)
    return np.asarray(w, float).ravel(), float(b)


def auto_margin(feature_draws: list, draws: list, source_of_clip: np.ndarray, p_studio: np.ndarray,
                own_weights: np.ndarray, own_offset: float, prior: float = 0.5) -> float:
    """:func:`unseen_margin` of the automatic mix over every real trial of every draw (every
    source): what ships beside the refitted weights (``real_calibration.json``), with
    ``p_studio`` (n_clips,) each clip's P(studio) by the condition model fitted on every
    source."""
    from mie_core.scoring.condition import trial_weight

    x = np.concatenate(feature_draws)
    target = np.concatenate([d.target for d in draws])
    es, ts = (np.concatenate(v) for v in zip(*[trial_sources(source_of_clip, d.enroll, d.model, d.test)
                                               for d in draws]))
    own = x @ np.asarray(own_weights, float) + float(own_offset)
    w = np.concatenate([trial_weight(p_studio, d) for d in draws])
    return unseen_margin(x, target, es, ts, prior, mix=(own, w))


def auto_llrs(features: np.ndarray, target: np.ndarray, enrol_source: np.ndarray, test_source: np.ndarray,
              studio_weight_by_source: dict, own_weights: np.ndarray, own_offset: float, trials,
              margin: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each trial's LLR as the pages' automatic choice scores it, fitted without its source:
    ``s llr_studio + (1 - s) llr_own`` (:func:`mie_core.scoring.condition.mixed_llr`), with
    ``llr_studio`` the fusion's weights refitted on the other sources' trials
    (:func:`leave_one_source_out`'s fit) and ``s`` the trial's studio weight from the condition
    model fitted without the source (``studio_weight_by_source[S]``: (n_clips,) P(studio) of
    every clip by the model fitted without S); ``margin``: the studio map lowered by
    :func:`unseen_margin` of the mix, chosen on the other sources' trials. Returns (llr, s),
    each (n_trials,)."""
    from mie_core.scoring.condition import mixed_llr, trial_weight

    x = np.asarray(features, float).reshape(len(target), -1)
    enrol_source, test_source = np.asarray(enrol_source), np.asarray(test_source)
    studio, _ = leave_one_source_out(x, target, enrol_source, test_source)
    own = x @ np.asarray(own_weights, float) + float(own_offset)
    s = np.full(len(target), np.nan)
    for src, p in studio_weight_by_source.items():
        w = trial_weight(p, trials)  # every trial's weight by the condition model fitted without src
        m = enrol_source == src
        s[m] = w[m]
        if margin:  # chosen on the other sources' trials, each held out in turn, as the mix scores them
            fit_on = (enrol_source != src) & (test_source != src)
            studio[m] -= unseen_margin(x[fit_on], target[fit_on], enrol_source[fit_on], test_source[fit_on],
                                       mix=(own[fit_on], w[fit_on]))
    return mixed_llr(own, studio, s), s


def measure_auto(feature_draws: list, draws: list, source_of_clip: np.ndarray, vectors: np.ndarray,
                 render: np.ndarray, room: np.ndarray, own_weights: np.ndarray, own_offset: float,
                 prior: float = 0.5, c: float = 0.1, rule: str = "studio", margin: bool = False,
                 inputs: str = "members") -> dict:
    """:func:`measure_sources`' figures for the automatic choice (:func:`auto_llrs`): per source
    and pooled, means over draws of EER, both verdict rates and the mean studio weight, the
    condition model (:func:`mie_core.scoring.condition.fit_condition_model`, inverse strength
    ``c``) fitted for each source on ``render`` and ``room`` (the ``inputs`` of renders, clean
    and through rooms: member vectors or recording features) and the real clips of the other
    sources (``vectors``, (n_clips, k));
    ``rule``: a clip's studio weight (:func:`mie_core.scoring.condition.clip_weight`); ``margin``:
    the studio map lowered by :func:`unseen_margin` (:func:`auto_llrs`)."""
    from mie_core.scoring.condition import clip_weight, fit_condition_model

    source_of_clip = np.asarray(source_of_clip)
    p_by = {str(s): clip_weight(fit_condition_model(render, room, vectors[source_of_clip != s], c, inputs), vectors,
                                rule)
            for s in sorted(set(source_of_clip.tolist()))}
    recs = []
    for x, d in zip(feature_draws, draws):
        enrol_src, test_src = trial_sources(source_of_clip, d.enroll, d.model, d.test)
        llr, s = auto_llrs(x, d.target, enrol_src, test_src, p_by, own_weights, own_offset, d, margin)
        rec = rates_with_pooled(llr, d.target, enrol_src, prior)
        for key in rec:
            m = np.ones(len(s), bool) if key == "pooled" else enrol_src == key
            rec[key]["studio_weight"] = float(np.mean(s[m]))
        recs.append(rec)
    return {s: {m: float(np.mean([r[s][m] for r in recs])) for m in recs[0][s]} for s in recs[0]}
