"""Real notes source by source: the shipped systems' EER and verdicts per held-out source,
before and after a calibration fitted on real notes of the *other* sources only.

    python benchmarks/real_sources.py [--system NAME=PATH ...] [--draws 5] [--json OUT]

The real notes of every source fetched (:func:`mie_core.data.realrec.real_sources_table`: the
tonejs samples by collection, the Salamander piano), pooled into one protocol (5 enrolment
notes, 20 + 20 trials per instrument, ``--draws`` draws; a trial belongs to the source of
its enrolled instrument). Each system scores the trials as the Verify page does (its
members' back-ends and fusion as shipped). Then, for each source S, ``a llr + b`` is
fitted on the trials whose enrolled and test instruments are both of other sources and
applied to S's trials (:func:`mie_core.scoring.sources.leave_one_source_out`), so every figure
after is measured on a source the calibration never saw; ``quality``: the same with the
pitch distance from the test note to the enrolment (YIN, as the Verify page estimates it)
as a quality measure beside the LLR (features ``llr``, ``gap / 12``, ``llr * gap / 12``). Prints a Markdown table per
system (EER %, genuine accepted / impostors rejected % at prior 0.5, means over draws).
Embeddings come from the one store (``data/embeddings``; minutes the first time).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)

DEFAULT_SYSTEMS = ("mel+cqt=cache/models/mel+cqt", "cqt122=cache/models/cqt122", "mel122=cache/models/mel122")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", action="append", help="NAME=PATH of a shipped model or system folder (default: all three)")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision
    from mie_core.evaluation.parts import real_sources_part
    from mie_core.data.pitch import note_midi
    from mie_core.evaluation.report import markdown_sources, parse_model_arg, source_results

    part = real_sources_part()
    if part is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    clip_midi = np.array([note_midi(x) for x in part.audio()])
    precision = resolve_precision("auto")
    systems = dict(parse_model_arg(s) for s in args.system or DEFAULT_SYSTEMS)
    res = source_results(systems, EmbeddingStore(), precision, args.seed, args.draws, clip_midi=clip_midi)
    print(markdown_sources(res))
    if args.json:
        from mie_core.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps({**res, "precision": precision}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
