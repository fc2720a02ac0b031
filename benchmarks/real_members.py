"""Each model alone on the real notes, source by source: raw centred cosine, no back-end.

    python benchmarks/real_members.py [--model NAME=PATH ...] [--draws 5]

The real notes of every source fetched, pooled into the paper's protocol (5 enrolment notes,
20 + 20 trials per instrument, ``--draws`` draws, identical trials for every model; a trial
belongs to the source of its enrolled instrument). Each model's embeddings are centred on
the real notes themselves and scored by the cosine to the enrolment mean (the paper's
scoring; no back-end, no calibration), so the members of a system, or a run against what
ships, compare as embeddings. Prints EER % per source and pooled, means over draws.
Default: the members of the shipped systems.

``--centre``: what the embeddings are centred on: ``real`` (the real notes themselves, every
source: the default above), ``renders`` (the model's back-end mean, the training notes'
unit mean, as the pages score) or ``others`` (the real notes of the other sources only, for
each source scored: a back-end mean fitted on real notes without the source, leave one
source out); ``renders others`` prints both, and their average, one row each.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)

DEFAULT = ("cqt122=cache/models/cqt122", "cqt122/clean=cache/models/cqt122/clean",
           "mel122=cache/models/mel122", "mel122/clean=cache/models/mel122/clean")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="NAME=PATH of a checkpoint folder (repeatable)")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--centre", nargs="+", choices=("real", "renders", "others", "half"), default=["real"],
                   help="the mean(s) to centre on (half: renders and others averaged)")
    args = p.parse_args()
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import real_sources_part
    from mie_core.evaluation.report import parse_model_arg
    from mie_core.scoring import metrics, sources, trials
    from mie_core.scoring.backend import Backend

    part = real_sources_part()
    if part is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    rows = part.rows
    models = dict(parse_model_arg(m) for m in args.model or DEFAULT)
    if {"renders", "half"} & set(args.centre):
        lacking = [f"{n}={p}" for n, p in models.items() if not Backend.exists(p)]
        if lacking:
            raise SystemExit(f"--centre renders/half needs each model's back-end (backend.json: the "
                             f"training renders' mean), which {', '.join(lacking)} lacks; a training run's "
                             "export has none: score it with --centre real others, or build its back-end "
                             "with python -m training.build_cache")
    emb = embed_models(models, part, EmbeddingStore(), resolve_precision("auto"))
    src = rows["source"].to_numpy()
    draws = protocol.protocol_draws(rows["instrument_str"].to_numpy(), 0, args.draws)
    names = sorted(set(src)) + ["pooled"]
    print("| model | centred on | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for name, e in emb.items():
        for how in args.centre:
            # each source scored with its own centring (the same one for "real" and "renders")
            centred = {k: _centred(how, e, src != k, models[name]) for k in names[:-1]}
            per = {k: [] for k in names}
            for d in draws:
                es, _ = sources.trial_sources(src, d.enroll, d.model, d.test)
                pooled = np.zeros(len(d.test))
                for k in names[:-1]:
                    s = trials.score_trials(centred[k], d)
                    m = es == k
                    pooled[m] = s[m]
                    per[k].append(metrics.eer(s[m & d.target], s[m & ~d.target]))
                per["pooled"].append(metrics.eer(pooled[d.target], pooled[~d.target]))
            print(f"| {name} | {how} | " + " | ".join(f"{100 * np.mean(per[k]):.2f}" for k in names) + " |", flush=True)
    return 0


def _centred(how: str, e: np.ndarray, others: np.ndarray, path) -> np.ndarray:
    """(n, d) the real notes' embeddings ``e`` centred as ``--centre`` says: ``real``, the raw
    embeddings less their mean (as this script has always scored); else the back-end's step 1
    (:func:`mie_core.scoring.backend.centre`) on a mean of unit embeddings: the model's
    training renders' (``renders``), the real notes' of other sources than the one scored
    (``others``: which they are), or the two averaged (``half``)."""
    from mie_core.evaluation.embeddings import unit
    from mie_core.scoring.backend import Backend, centre

    if how == "real":
        return e - e.mean(0)
    real = unit(e[others]).mean(0)
    renders = Backend.load(path).mean if how != "others" else real
    return centre(e, {"others": real, "renders": renders, "half": 0.5 * (renders + real)}[how])


if __name__ == "__main__":
    sys.exit(main())
