"""AS-norm with real instruments of other sources in the cohort, member by member (issue 29).

    python benchmarks/real_cohort.py [--model NAME=PATH ...] [--draws 20] [--top-n 50]

Each member's back-end normalises a trial's score by the top-N scores of its enrolment and of
its test clip against a cohort of training instruments' centroids (AS-norm, step 2 of
:class:`mie_core.scoring.backend.Backend`). On real notes the cohort holds no real
instrument. Here the centroids (in the member's scoring space) of the real instruments join
the cohort, with every source a trial touches left out: for a trial enrolled in source B whose
test clip is of source T, those of sources other than B and T (a user's impostor clip never
has its own instrument in the cohort). ``--keep-test-source`` leaves T's in: the leak that
measured a gain where there is none (docs/experiments/real-cohort.md). Same trials for both
(the paper's protocol on the fetched real notes, 5 enrolment notes, 20 + 20 trials per
instrument, ``--draws`` draws; a trial belongs to its enrolled instrument's source). Prints AS-norm EER % per source and
pooled (pooled: each trial scored with its own source's cohort), means over draws.
Default: the members of the shipped mel+cqt system.

``--system PATH``: the same for a fused system's automatic verdicts (as
``benchmarks/held_out_verdicts.py`` scores them, each source held out from every fit), with
the cohort kept strictly out of the source scored: for a held-out source S, a trial enrolled
in source B with its test clip of source T (the studio weights are fitted on B, T other than S,
and scored on B = S) has the real instruments of sources other than S, B and T in its cohort.
The ``training`` row reproduces the README's per-source table.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import _common  # puts the repository on the path; held_out_system

DEFAULT = ("cqt122=cache/models/cqt122", "cqt122/pairs=cache/models/cqt122/pairs",
           "cqt122/clean=cache/models/cqt122/clean", "mel122/clean=cache/models/mel122/clean")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="NAME=PATH of a checkpoint folder with a back-end (repeatable)")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--top-n", type=int, nargs="+", default=None,
                   help="AS-norm cohort sizes to try (default: each back-end's own)")
    p.add_argument("--system", default=None, help="a fused system's folder: its automatic verdicts instead")
    p.add_argument("--keep-test-source", action="store_true",
                   help="leave the test clip's source in the cohort (the leak, for the record)")
    args = p.parse_args()
    if args.system:
        return system(args.system, args.draws, args.keep_test_source)
    from dataclasses import replace

    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import real_sources_part
    from mie_core.evaluation.report import parse_model_arg
    from mie_core.scoring import metrics, sources
    from mie_core.scoring.backend import Backend, trial_scores

    part = real_sources_part()
    if part is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    rows = part.rows
    models = dict(parse_model_arg(m) for m in args.model or DEFAULT)
    lacking = [f"{n}={p}" for n, p in models.items() if not Backend.exists(p)]
    if lacking:
        raise SystemExit(f"{', '.join(lacking)}: no back-end (backend.json) to take the cohort from; "
                         "build one with python -m training.build_cache")
    emb = embed_models(models, part, EmbeddingStore(), resolve_precision("auto"))
    src = rows["source"].to_numpy()
    inst = rows["instrument_str"].to_numpy()
    draws = protocol.protocol_draws(inst, 0, args.draws)
    names = sorted(set(src))
    print(f"AS-norm EER %, {args.draws} draws; cohort: the training instruments' centroids, "
          "+ real: with the real instruments of the other sources")
    print("| model | cohort | top N | " + " | ".join(names + ["pooled"]) + " |")
    print("|---|---|---:|" + "---:|" * (len(names) + 1))
    for name, e in emb.items():
        backend = Backend.load(models[name])
        centroids, src_of = real_centroids(backend.vectors(e), inst, src)
        for top_n in args.top_n or [backend.top_n]:
            sized = replace(backend, top_n=top_n)
            for label in ("training", "+ real"):
                per = {k: [] for k in names + ["pooled"]}
                for d in draws:
                    es, ts = sources.trial_sources(src, d.enroll, d.model, d.test)
                    cache: dict = {}  # the sources left out of the cohort -> AS-norm scores of every trial
                    s = np.zeros(len(d.test))
                    for k in names:
                        for t in names:  # a test clip's own source is out of the cohort too
                            m = (es == k) & (ts == t)
                            if m.any():
                                out = frozenset(names if label == "training" else
                                                {k} if args.keep_test_source else {k, t})
                                if out not in cache:
                                    cached = with_real_cohort(sized, centroids, ~np.isin(src_of, list(out)))
                                    cache[out] = trial_scores(cached, e, d)["asnorm"]
                                s[m] = cache[out][m]
                    for k in names:
                        m = es == k
                        per[k].append(metrics.eer(s[m & d.target], s[m & ~d.target]))
                    per["pooled"].append(metrics.eer(s[d.target], s[~d.target]))
                print(f"| {name} | {label} | {top_n} | " + " | ".join(f"{100 * np.mean(per[k]):.2f}" for k in per)
                      + " |", flush=True)
    return 0


def real_centroids(vectors: np.ndarray, instrument: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (r, k) unit, source of each (r,)): the real instruments' mean vectors in a
    member's scoring space (``vectors`` (n, k), each note's ``instrument`` and ``source``)."""
    from mie_core.evaluation.embeddings import unit

    names = sorted(set(instrument))
    return (unit(np.stack([vectors[instrument == i].mean(0) for i in names])),
            np.array([source[instrument == i][0] for i in names]))


def with_real_cohort(backend, centroids: np.ndarray, keep: np.ndarray):
    """A copy of ``backend`` whose AS-norm cohort also holds the real instruments' centroids
    ``centroids[keep]`` ((r, k) unit vectors in its scoring space)."""
    from dataclasses import replace

    return replace(backend, cohort=np.concatenate([backend.cohort, centroids[keep]]).astype(np.float32))


def system(path: str, n_draws: int, keep_test_source: bool = False) -> int:
    """The automatic verdicts of a fused system per held-out source, training cohort against
    training + real instruments of sources other than the held-out one and the trial's own."""
    from mie_core.scoring import fusion, sources
    from mie_core.scoring.condition import mixed_llr, trial_weight

    h = _common.held_out_system(path, n_draws)
    ver, backends, members, draws, src, p_by = (h[k] for k in ("ver", "backends", "members", "draws", "src", "p_by"))
    inst = h["real"].rows["instrument_str"].to_numpy()
    names = sorted(set(src))
    centroids, src_of = zip(*[real_centroids(b.vectors(e), inst, src) for b, e in zip(backends, members)])
    src_of = src_of[0]  # the same instruments, in the same order, for every member
    qualities = [fusion.trial_quality(ver.fusion.detector.prob_clean(fusion.member_vectors(backends, members)), d)
                 for d in draws]
    own = ver.fusion.fusion
    llr_cache: dict = {}

    def member_llrs(excluded: frozenset, i: int) -> list:
        """Each member's LLRs of draw ``i`` with the real instruments of ``excluded`` out of the cohort."""
        if (excluded, i) not in llr_cache:
            keep = ~np.isin(src_of, list(excluded))
            llr_cache[excluded, i] = [fusion.scoring_llr(with_real_cohort(b, c, keep), e, draws[i])
                                      for b, c, e in zip(backends, centroids, members)]
        return llr_cache[excluded, i]

    print(f"{path}: automatic verdicts, each real source held out from every fit and from the cohort; "
          f"EER % (genuine accepted / impostors rejected %), means over {n_draws} draws")
    for label in ("training", "+ real"):
        recs = []
        for i, d in enumerate(draws):
            es, ts = sources.trial_sources(src, d.enroll, d.model, d.test)
            llr = np.full(len(es), np.nan)
            for held in names:
                x = np.zeros((len(es), 2 * len(backends) + 1))
                for b in names:  # trials enrolled in b, test clip of t: the cohort without b, t and the held-out source
                    for t in names:
                        m = (es == b) & (ts == t)
                        if m.any():
                            out = (frozenset(names) if label == "training" else
                                   frozenset({held, b} if keep_test_source else {held, b, t}))
                            x[m] = fusion.fusion_features(member_llrs(out, i), qualities[i])[m]
                fit_on = (es != held) & (ts != held)
                w, c = sources.fit_linear(x[fit_on], d.target[fit_on])
                m = es == held
                mixed = mixed_llr(x @ own.weights + own.offset, x @ w + c, trial_weight(p_by[held], d))
                llr[m] = mixed[m]
            recs.append(sources.rates_with_pooled(llr, d.target, es))
        r = {k: {v: float(np.mean([q[k][v] for q in recs])) for v in recs[0][k]} for k in recs[0]}
        worst = min(min(v["genuine_accepted"], v["impostors_rejected"]) for k, v in r.items() if k != "pooled")
        print(f"| {label} | " + " | ".join(
            f"{k} {100 * v['eer']:.2f} ({100 * v['genuine_accepted']:.1f} / {100 * v['impostors_rejected']:.1f})"
            for k, v in r.items()) + f" | worst {100 * worst:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
