"""Ways to fit the studio weights (the fusion refitted on real notes) so that the automatic
verdict holds on a real source none of the fits saw, on any system folder.

    python benchmarks/held_out_verdicts.py [--system cache/models/mel+cqt] [--draws 20]

The pages score a real trial ``s llr_studio + (1 - s) llr_own`` (the automatic mix,
:mod:`mie_core.scoring.condition`). Each way below fits ``llr_studio``, and the condition
model that gives ``s``, without the source scored (each of the six real sources held out in
turn), and is judged, as the issue asks, by its **worst** source: the lower of the two
verdict rates (genuine accepted, impostors rejected at prior 0.5) on the worst source.

* ``pooled`` (shipped): prior-weighted logistic regression over every trial of the other
  sources; the largest source (VSCO-2, 13 instruments) carries most of the fit.
* ``balanced``: the same with each source's trials weighted equally inside each class, so a
  source of one instrument counts as much as one of thirteen (a fit for the next source,
  not for the average trial).
* ``shrunk L``: a ridge of strength L pulling the weights towards the system's own (fitted
  on renders and rooms), the offset free.
* ``+ margin``: the studio map lowered by :func:`mie_core.scoring.sources.unseen_margin`,
  chosen on the other sources with each held out in turn (the same fit one level down).

Prints one row per way: per source EER % (genuine accepted / impostors rejected %), pooled,
and the worst rate; means over the trial draws. Then, for the first way, which impostors its
verdicts accept: the share of the accepted impostor trials whose test clip is of the enrolled
instrument's family (and GM program), beside that share among all impostor trials; and per
source, the ``--confusions`` (enrolled, impostor) instrument pairs it accepts most, each with
its share of that source's impostor trials and how many of them were accepted.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np

import _common  # puts the repository on the path; held_out_system


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="cache/models/mel+cqt", help="a fused system's folder")
    p.add_argument("--draws", type=int, default=20, help="trial draws (default 20, as the shipped real figures)")
    p.add_argument("--inputs", default=None, choices=("recording", "members", "recording+members"),
                   help="what the condition model reads (default: what ships, report.CONDITION_INPUTS)")
    p.add_argument("--c", type=float, default=None, help="the condition model's inverse L2 strength (default: shipped)")
    p.add_argument("--ways", default="pooled,balanced,shrunk",
                   help="which fits of the studio weights to measure (comma-separated: pooled, balanced, shrunk)")
    p.add_argument("--confusions", type=int, default=3, help="impostor pairs listed per source (0: none)")
    args = p.parse_args()
    names = [n for n in args.ways.split(",") if n]
    if not names or set(names) - {"pooled", "balanced", "shrunk"}:
        p.error(f"--ways: comma-separated names among pooled, balanced, shrunk, not {args.ways!r}")
    from mie_core.scoring import fusion, sources
    from mie_core.scoring.condition import mixed_llr, trial_weight

    path = Path(args.system)
    h = _common.held_out_system(path, args.draws, args.inputs, args.c)
    ver, real, draws, src, p_by, inputs, c = (h[k] for k in ("ver", "real", "draws", "src", "p_by", "inputs", "c"))
    feats = [fusion.trial_features(h["backends"], ver.fusion, h["members"], d) for d in draws]
    own = ver.fusion.fusion
    # label -> (fit(x, target[, groups]) -> (w, b), whether each source counts alike): the module docstring's ways
    shrunk = {f"shrunk {l2:g}": (partial(fit_shrunk, l2=l2, toward=own.weights), False) for l2 in (0.01, 0.1)}
    every = {"pooled": {"pooled (shipped)": (sources.fit_linear, False)},
             "balanced": {"balanced": (sources.fit_linear, True)}, "shrunk": shrunk}
    ways = {label: way for name in names for label, way in every[name].items()}
    print(f"{path}: automatic verdicts, condition model on {inputs} (C {c:g}), each real source held out from "
          f"every fit; EER % (genuine accepted / impostors rejected %), means over {args.draws} draws")
    for label, (fit, balanced) in ways.items():
        for with_margin in (False, True):
            recs, scored = [], []
            for x, d in zip(feats, draws):
                es, ts = sources.trial_sources(src, d.enroll, d.model, d.test)
                studio, _ = sources.leave_one_source_out(x, d.target, es, ts, fit, balanced)
                llr_own = x @ own.weights + own.offset
                s = np.full(len(es), np.nan)
                for held, pw in p_by.items():
                    w = trial_weight(pw, d)
                    m = es == held
                    s[m] = w[m]
                    if with_margin:  # chosen on the other sources, each held out in turn, as the mix scores them
                        on = (es != held) & (ts != held)
                        studio[m] -= sources.unseen_margin(x[on], d.target[on], es[on], ts[on],
                                                           mix=(llr_own[on], w[on]), fit=fit, balanced=balanced)
                llr = mixed_llr(llr_own, studio, s)
                recs.append(sources.rates_with_pooled(llr, d.target, es))
                if label == next(iter(ways)) and not with_margin:
                    scored.append((llr, d))
            if scored:
                kinds, first = accepted_kinds(scored, real.rows), scored
            r = {k: {v: float(np.mean([q[k][v] for q in recs])) for v in recs[0][k]} for k in recs[0]}
            if scored:
                first_rates = r
            worst = min(min(v["genuine_accepted"], v["impostors_rejected"]) for k, v in r.items() if k != "pooled")
            print(f"| {label}{' + margin' if with_margin else ''} | " + " | ".join(
                f"{k} {100 * v['eer']:.2f} ({100 * v['genuine_accepted']:.1f} / {100 * v['impostors_rejected']:.1f})"
                for k, v in r.items()) + f" | worst {100 * worst:.1f} |", flush=True)
    print(f"{next(iter(ways))}: of the impostor trials it accepts, {100 * kinds['family'][0]:.0f} % are of the "
          f"enrolled instrument's family and {100 * kinds['program'][0]:.0f} % of its GM program (of all impostor "
          f"trials: {100 * kinds['family'][1]:.0f} % and {100 * kinds['program'][1]:.0f} %; "
          f"{kinds['n']:.0f} accepted over the draws)")
    for source, pairs in confusions(first, real.rows, args.confusions).items():
        # every draw gives a source as many impostor trials, so the mean rate is the pooled one
        listed, accepted = sum(q[2] for q in pairs), sum(q[2] * q[3] for q in pairs)
        rest = 1.0 - (1.0 - first_rates[source]["impostors_rejected"] - accepted) / max(1.0 - listed, 1e-12)
        print(f"  {source}: " + "; ".join(f"{e} <- {t}: {100 * share:.0f} % of its impostor trials, "
                                           f"{100 * rate:.0f} % of them accepted" for e, t, share, rate in pairs)
              + f"; every other impostor: {100 * rest:.0f} % rejected")
    return 0


def fit_shrunk(x: np.ndarray, target: np.ndarray, l2: float, toward: np.ndarray) -> tuple[np.ndarray, float]:
    """The studio map pulled towards the system's own weights ``toward`` by a ridge ``l2``."""
    from mie_core.scoring.backend import fit_linear_fusion

    return fit_linear_fusion(x[target], x[~target], 0.5, l2=l2, toward=toward)


def accepted_kinds(scored: list, rows) -> dict:
    """{"family" | "program": (share of the accepted impostor trials whose test clip shares the
    enrolled instrument's family or GM program, the same share among all impostor trials),
    "n": accepted impostor trials}, pooled over ``scored``: (LLRs (n_trials,), their trial draw)."""
    fam, prog = rows["instrument_family_str"].to_numpy(), rows["program"].to_numpy()
    acc, imp = {"family": [], "program": []}, {"family": [], "program": []}
    for llr, d in scored:
        enrol_clip = d.enroll[d.model, 0]
        for key, lab in (("family", fam), ("program", prog)):
            same = lab[enrol_clip] == lab[d.test]
            imp[key].append(same[~d.target])
            acc[key].append(same[~d.target & (llr >= 0)])
    out = {k: (float(np.concatenate(acc[k]).mean()), float(np.concatenate(imp[k]).mean())) for k in acc}
    return out | {"n": float(sum(len(a) for a in acc["family"]))}


def confusions(scored: list, rows, top: int) -> dict:
    """{source: [(enrolled, impostor, share, rate), ...]}: per source of the enrolled
    instrument, the ``top`` (enrolled, impostor instrument) pairs with the most accepted
    impostor trials over ``scored`` (LLRs (n_trials,), their trial draw), each with its share
    of the source's impostor trials and the share of its own trials accepted."""
    from collections import Counter

    from mie_core.scoring.sources import trial_sources

    inst, src = rows["instrument_str"].to_numpy(), rows["source"].to_numpy()
    trials, accepted, per_source = Counter(), Counter(), Counter()
    for llr, d in scored:
        es, _ = trial_sources(src, d.enroll, d.model, d.test)
        for i in np.flatnonzero(~d.target):
            key = (es[i], inst[d.enroll[d.model[i], 0]], inst[d.test[i]])
            trials[key] += 1
            per_source[es[i]] += 1
            accepted[key] += bool(llr[i] >= 0)
    out: dict = {}
    for key, n in accepted.most_common():
        if n and len(out.setdefault(key[0], [])) < top:
            out[key[0]].append((key[1], key[2], trials[key] / per_source[key[0]], n / trials[key]))
    return {k: v for k, v in sorted(out.items()) if v}


if __name__ == "__main__":
    sys.exit(main())
