"""Which features the studio weights (the fusion refitted on real notes) should read, and
whether that choice can be made without the source scored.

    python benchmarks/studio_features.py [--system cache/models/mel+cqt] [--draws 20]

The pages score a real trial ``s llr_studio + (1 - s) llr_own`` (:mod:`mie_core.scoring.condition`);
``llr_studio`` is a prior-weighted logistic regression over the fusion's features fitted on
the trials of the other real sources (:func:`mie_core.scoring.sources.leave_one_source_out`).
Those features (:func:`mie_core.scoring.fusion.trial_features`) are, for m members, each
member's LLR ``l_i``, each times the trial's quality ``w`` (P(clean)), and ``w``: 2m + 1
weights fitted on five sources. Each set below is a smaller one (:func:`feature_sets`):

* ``shipped``: the 2m + 1 features;
* ``l``: the members' LLRs alone (m);
* ``l, w``: and the quality (m + 1);
* ``l, mean(l) w, w``: one shared quality interaction (m + 2);
* ``mean(l), mean(l) w, w``: the members averaged (3).

Every set is scored with each real source held out from its fit, the condition model's ``s``
fitted without it too (:func:`_common.held_out_system`). A set that reads best here was
chosen by looking at the held-out figures; the last two rows choose the set *per held-out
source* on the other sources only (:func:`nested_choice`: each of them held out in turn,
by the pooled EER or by the worst verdict rate there), which is what a shipped rule would
do. Prints EER % (genuine accepted / impostors rejected %) per source, pooled and the worst
rate, means over the draws, and how often each set was chosen.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

import _common  # puts the repository on the path; held_out_system


def feature_sets(x: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """{name: (n, k) features} of the module docstring from the fusion's features ``x``
    (n, 2m + 1): ``[l_1..l_m, l_1 w..l_m w, w]`` for ``m`` members."""
    if x.ndim != 2 or x.shape[1] != 2 * m + 1:
        raise ValueError(f"features of {m} members have {2 * m + 1} columns, not {x.shape}")
    l, w = x[:, :m], x[:, -1]
    mean = l.mean(1)
    return {"shipped": x, "l": l, "l, w": np.c_[l, w], "l, mean(l) w, w": np.c_[l, mean * w, w],
            "mean(l), mean(l) w, w": np.c_[mean, mean * w, w]}


def worst_of(rates: dict) -> float:
    """The lowest verdict rate (genuine accepted or impostors rejected) over the sources of
    ``rates`` ({source | "pooled": {"genuine_accepted", "impostors_rejected", ...}}), pooled aside."""
    return min(min(v["genuine_accepted"], v["impostors_rejected"]) for k, v in rates.items() if k != "pooled")


def worst_rate(llr: np.ndarray, target: np.ndarray, enrol_source: np.ndarray) -> float:
    """:func:`worst_of` the verdicts at prior 0.5 of ``llr`` (n,) by the enrolled instrument's source."""
    from mie_core.scoring import sources

    return worst_of(sources.rates_with_pooled(llr, target, enrol_source))


def nested_choice(sets: dict[str, np.ndarray], target: np.ndarray, enrol_source: np.ndarray,
                  test_source: np.ndarray, llr_own: np.ndarray, s: np.ndarray,
                  criterion: str = "eer", outer: dict | None = None) -> tuple[np.ndarray, dict]:
    """Each trial's mixed LLR with the studio weights' feature set chosen without its source.

    For the source S of a trial's enrolment, every set of ``sets`` ({name: (n, k)}) is
    scored on the trials of the other sources, each of them held out in turn from a fit on
    the rest (:func:`mie_core.scoring.sources.leave_one_source_out` one level down) and mixed
    with ``llr_own`` (n,) by ``s`` (n,) as the pages mix; the set with the lowest pooled EER
    (``criterion`` "eer") or the highest worst verdict rate ("worst") is fitted on every
    other source and scores S (``outer``: those fits' LLRs, {name: (n,)}, where the caller
    has them already). Returns (llr (n,), {S: the set chosen}).
    """
    from mie_core.scoring import metrics, sources
    from mie_core.scoring.condition import mixed_llr

    if criterion not in ("eer", "worst"):
        raise ValueError(f"criterion is 'eer' or 'worst', not {criterion!r}")
    target = np.asarray(target, bool)
    out, chosen = np.full(len(target), np.nan), {}
    if outer is None:
        outer = {name: sources.leave_one_source_out(x, target, enrol_source, test_source)[0] for name, x in sets.items()}
    for held in sorted(set(enrol_source.tolist())):
        inner = (enrol_source != held) & (test_source != held)
        t, es, ts = target[inner], enrol_source[inner], test_source[inner]
        score = {}
        for name, x in sets.items():
            mix = mixed_llr(llr_own[inner], sources.leave_one_source_out(x[inner], t, es, ts)[0], s[inner])
            score[name] = -metrics.eer(mix[t], mix[~t]) if criterion == "eer" else worst_rate(mix, t, es)
        chosen[str(held)] = max(score, key=score.get)
        scored = enrol_source == held
        out[scored] = mixed_llr(llr_own[scored], outer[chosen[str(held)]][scored], s[scored])
    return out, chosen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="cache/models/mel+cqt", help="a fused system's folder")
    p.add_argument("--draws", type=int, default=20, help="trial draws (default 20, as the shipped real figures)")
    args = p.parse_args()
    from mie_core.scoring import fusion, sources
    from mie_core.scoring.condition import mixed_llr, trial_weight

    h = _common.held_out_system(Path(args.system), args.draws)
    ver, draws, src, p_by = h["ver"], h["draws"], h["src"], h["p_by"]
    own, m = ver.fusion.fusion, len(h["backends"])
    recs: dict[str, list] = {}
    picks: dict[str, Counter] = {"eer": Counter(), "worst": Counter()}
    for d in draws:
        x = fusion.trial_features(h["backends"], ver.fusion, h["members"], d)
        es, ts = sources.trial_sources(src, d.enroll, d.model, d.test)
        llr_own = x @ own.weights + own.offset
        s = np.full(len(es), np.nan)
        for held, pw in p_by.items():
            s[es == held] = trial_weight(pw, d)[es == held]
        sets = feature_sets(x, m)
        studio = {name: sources.leave_one_source_out(xs, d.target, es, ts)[0] for name, xs in sets.items()}
        for name in sets:
            recs.setdefault(name, []).append(sources.rates_with_pooled(mixed_llr(llr_own, studio[name], s), d.target, es))
        for crit in picks:
            llr, chosen = nested_choice(sets, d.target, es, ts, llr_own, s, crit, outer=studio)
            picks[crit].update(chosen.values())
            recs.setdefault(f"chosen per source by the others' {'pooled EER' if crit == 'eer' else 'worst rate'}",
                            []).append(sources.rates_with_pooled(llr, d.target, es))
    print(f"{args.system}: the studio weights' features, each real source held out from every fit; "
          f"EER % (genuine accepted / impostors rejected %), means over {args.draws} draws")
    for name, rr in recs.items():
        r = {k: {v: float(np.mean([q[k][v] for q in rr])) for v in rr[0][k]} for k in rr[0]}
        print(f"| {name} | " + " | ".join(
            f"{k} {100 * v['eer']:.2f} ({100 * v['genuine_accepted']:.1f} / {100 * v['impostors_rejected']:.1f})"
            for k, v in r.items()) + f" | worst {100 * worst_of(r):.1f} |", flush=True)
    for crit, c in picks.items():
        print(f"chosen by the {crit}: " + ", ".join(f"{n} {k}" for n, k in c.most_common()) + " (sources x draws)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
