"""The paper's evaluation of several models on identical trials: pure functions.

:func:`compare_models` runs the verification protocol (:mod:`mie_core.scoring.trials`)
``n_draws`` times with generators derived from one seed; every model is scored on the
same trials in every draw. It returns, per model, the EER of each draw (ROCCH and
interpolated), their mean and standard deviation, minDCF, the EER threshold, DET
points, a bootstrap interval over instruments, and the per-family EER; and, over
models, the significance matrix of Eq. 1 with Holm's correction (first draw).

:func:`condition_table` groups models of one condition (several seeds) into Table
II/III rows, mean +- std.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mie_core.scoring import metrics, trials as trials_mod

EVAL_PITCH_STEP = 6  # evaluation notes: C and F# of every octave (MIDI 60 included), all velocities


def draw_rngs(seed: int, n_draws: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_draws)]


def compare_models(embeddings: dict[str, np.ndarray], labels, families=None, seed: int = 0, n_draws: int = 5,
                   n_enroll: int = 5, n_target: int = 20, n_nontarget: int = 20, n_boot: int = 500,
                   alpha: float = 0.05, backends: dict | None = None, fusions: dict | None = None) -> dict:
    """Score every model on the same trials; see the module docstring for what comes back.

    Args:
        embeddings: name -> (n, d) embeddings of the same n clips (rows aligned).
        labels: (n,) instrument of each clip.
        families: (n,) family of each clip, for per-family EER (optional).
        backends: name -> :class:`mie_core.scoring.backend.Backend` for the models that have one:
            their record gets ``centred`` and ``asnorm`` (EER, minDCF, threshold) on the
            identical trials, and ``calibrated`` (Cllr, actual DCF at prior 0.5, the
            verdict's miss and false-alarm rates) when the back-end is calibrated.
        fusions: name -> (partner back-end, partner embeddings (n, d) of the same clips,
            :class:`mie_core.scoring.fusion.QualityFusion`) for models fused with a clean partner
            (each also in ``backends``): their record gets ``fused`` (:func:`fusion_results`).
    """
    labels = np.asarray(labels)
    names = list(embeddings)
    draws = protocol_draws(labels, seed, n_draws, n_enroll, n_target, n_nontarget)
    first = draws[0]
    out: dict = {"models": {}, "n_target": first.n_target, "n_nontarget": first.n_nontarget,
                 "n_instruments": int(len(first.model_label)), "n_draws": n_draws, "seed": seed,
                 "protocol": {"n_enroll": n_enroll, "n_target": n_target, "n_nontarget": n_nontarget}}
    boot_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(n_draws + 1)[-1])
    fam_of_model = None
    if families is not None:
        fam = pd.Series(np.asarray(families)).groupby(labels).first()
        fam_of_model = np.asarray([fam[l] for l in first.model_label])
    scores_first = {}
    for name in names:
        emb = embeddings[name]
        per = []
        for d in draws:
            s = trials_mod.score_trials(emb, d)
            per.append((metrics.eer(s[d.target], s[~d.target], "rocch"), metrics.eer(s[d.target], s[~d.target], "interp"),
                        metrics.min_dcf(s[d.target], s[~d.target])))
        s = trials_mod.score_trials(emb, first)
        scores_first[name] = s
        t, n = s[first.target], s[~first.target]
        groups = first.model_label[first.model]
        lo, hi = metrics.bootstrap_eer(t, n, groups[first.target], groups[~first.target], boot_rng, n_boot, alpha)
        det = metrics.det_curve(t, n)
        per = np.asarray(per)
        rec = {
            "eer_draws": per[:, 0].tolist(), "eer_interp_draws": per[:, 1].tolist(), "min_dcf_draws": per[:, 2].tolist(),
            "eer": float(per[:, 0].mean()), "eer_std": float(per[:, 0].std()),
            "eer_interp": float(per[:, 1].mean()), "eer_interp_std": float(per[:, 1].std()),
            "min_dcf": float(per[:, 2].mean()), "eer_ci": [lo, hi], "eer_first_draw": float(per[0, 0]),
            "threshold": metrics.eer_threshold(t, n),
            "det": {k: _thin(v).tolist() for k, v in det.items() if k != "threshold"},
        }
        if fam_of_model is not None:
            rec["family_eer"] = family_eer(s, first, fam_of_model)
        if backends and name in backends:
            rec.update(backend_results(backends[name], emb, draws))
        if fusions and name in fusions:
            rec["fused"] = fusion_results(backends[name], emb, *fusions[name], draws)
        out["models"][name] = rec
    if len(names) > 1:
        sig = metrics.significance_matrix([out["models"][m]["eer_first_draw"] for m in names], first.n_target,
                                          first.n_nontarget, alpha)
        out["significance"] = {"names": names, **{k: v.tolist() for k, v in sig.items()}}
    out["_trials"] = first
    out["_scores"] = scores_first
    return out


def backend_results(backend, emb: np.ndarray, draws: list) -> dict:
    """Centred, AS-norm and calibrated results of one model over trial draws (means over draws)."""
    from mie_core.scoring import backend as scoring_backend

    acc: dict[str, list] = {}
    for d in draws:
        sc = scoring_backend.trial_scores(backend, emb, d)
        for kind in ("centred", "asnorm"):
            t, n = sc[kind][d.target], sc[kind][~d.target]
            acc.setdefault(kind, []).append((metrics.eer(t, n, "rocch"), metrics.eer(t, n, "interp"),
                                             metrics.min_dcf(t, n), metrics.eer_threshold(t, n)))
        if "llr" in sc:
            acc.setdefault("calibrated", []).append(_verdicts(sc["llr"][d.target], sc["llr"][~d.target]))
    out = {}
    for kind in ("centred", "asnorm"):
        a = np.asarray(acc[kind])
        out[kind] = {"eer": float(a[:, 0].mean()), "eer_std": float(a[:, 0].std()), "eer_interp": float(a[:, 1].mean()),
                     "min_dcf": float(a[:, 2].mean()), "threshold": float(a[0, 3]), "eer_draws": a[:, 0].tolist()}
    if "calibrated" in acc:
        out["calibrated"] = _mean_verdicts(acc["calibrated"])
    return out


def _verdicts(target_llr: np.ndarray, nontarget_llr: np.ndarray) -> dict:
    """Cllr, actual DCF and the miss and false-alarm rates of the Bayes verdict at prior 0.5."""
    t, n = target_llr, nontarget_llr
    return {"cllr": metrics.cllr(t, n), "act_dcf": metrics.act_dcf(t, n, 0.5), "p_miss": float(np.mean(t < 0)),
            "p_fa": float(np.mean(n >= 0))}


def _mean_verdicts(per_draw: list[dict]) -> dict:
    return {**{k: float(np.mean([d[k] for d in per_draw])) for k in per_draw[0]}, "prior": 0.5}


def fusion_results(backend, emb: np.ndarray, partner_backend, partner_emb: np.ndarray, qf, draws: list) -> dict:
    """A fused system (:mod:`mie_core.scoring.fusion`) over trial draws: EER (ROCCH), minDCF, Cllr,
    actual DCF and the verdict's miss and false-alarm rates at prior 0.5 (means over draws)."""
    return member_fusion_results([backend, partner_backend], [emb, partner_emb], qf, draws)


def member_fusion_results(backends: list, embs: list[np.ndarray], qf, draws: list) -> dict:
    """:func:`fusion_results` for m members (back-ends and embeddings of the same clips, in
    the member order, the main model first; a system of shipped models, :mod:`mie_core.scoring.fusion`)."""
    from mie_core.scoring import fusion

    eer, dcf, verdicts = [], [], []
    for d in draws:
        llr = fusion.trial_llrs(backends, qf, embs, d)
        t, n = llr[d.target], llr[~d.target]
        eer.append(metrics.eer(t, n, "rocch"))
        dcf.append(metrics.min_dcf(t, n))
        verdicts.append(_verdicts(t, n))
    return {"eer": float(np.mean(eer)), "eer_std": float(np.std(eer)), "eer_draws": [float(e) for e in eer],
            "min_dcf": float(np.mean(dcf)), **_mean_verdicts(verdicts)}


def protocol_draws(labels, seed: int = 0, n_draws: int = 5, n_enroll: int = 5, n_target: int = 20,
                   n_nontarget: int = 20) -> list:
    """The trial draws :func:`compare_models` scores every model on (the paper's protocol)."""
    return [trials_mod.make_trials(np.asarray(labels), r, n_enroll, n_target, n_nontarget)
            for r in draw_rngs(seed, n_draws)]


def _thin(x: np.ndarray, keep: int = 400) -> np.ndarray:
    """At most ``keep`` points of a DET curve, evenly spaced in index (ends kept)."""
    x = np.asarray(x)
    if x.size <= keep:
        return x
    return x[np.unique(np.linspace(0, x.size - 1, keep).round().astype(int))]


def family_eer(scores: np.ndarray, tr: trials_mod.Trials, fam_of_model: np.ndarray) -> dict[str, float]:
    """EER of the trials of the enrolments of each family (targets and their non-targets)."""
    out = {}
    fam = fam_of_model[tr.model]
    for f in sorted(set(fam_of_model)):
        m = fam == f
        t, n = scores[m & tr.target], scores[m & ~tr.target]
        if t.size and n.size:
            out[str(f)] = metrics.eer(t, n, "rocch")
    return out


def condition_table(results: dict, conditions: dict[str, str]) -> pd.DataFrame:
    """Rows of Tables II-III: one per condition, EER (ROCCH, %) mean +- std over its models.

    ``conditions`` maps model name -> condition; a condition with one model shows the
    standard deviation over trial draws instead and says so.
    """
    rows = []
    by_cond: dict[str, list[str]] = {}
    for m, c in conditions.items():
        by_cond.setdefault(c, []).append(m)
    for c, ms in by_cond.items():
        e = np.asarray([results["models"][m]["eer"] for m in ms])
        dcf = np.asarray([results["models"][m]["min_dcf"] for m in ms])
        if len(ms) > 1:
            std, over = e.std(ddof=1), "seeds"
        else:
            std, over = results["models"][ms[0]]["eer_std"], "trial draws"
        rows.append({"condition": c, "models": len(ms), "eer_percent": 100 * e.mean(), "std_percent": 100 * std,
                     "std_over": over, "min_dcf": dcf.mean()})
    return pd.DataFrame(rows)
