"""Which real-recording trials the shipped systems get wrong at their own calibration.

    python benchmarks/real_errors.py [--model NAME=PATH ...] [--top 12]

For each shipped fused system (default ``cqt122`` and ``mel122``, with their clean partners),
the paper's protocol on the ``real`` part (tonejs recordings, 5 draws, the same trials as
``evaluate``), scored by the fused LLR (:func:`mie_core.scoring.fusion.trial_llrs`) and decided at
prior 0.5: the impostor pairs accepted most often (enrolled instrument <- test
instrument, summed over draws) and the instruments whose genuine trials are missed most.
Nothing is fitted here; embeddings come from the one store (``data/embeddings``).
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import fusion, trials  # noqa: E402
from mie_core.evaluation.report import parse_model_arg, partner_of  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402
from mie_core.scoring.backend import Backend  # noqa: E402

DEFAULT_MODELS = ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH of a fused model folder (default: both shipped)")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(("real",))
    if "real" not in parts:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    labels = parts["real"].rows["instrument_str"].str.replace("tonejs_", "").to_numpy()
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        partner = partner_of(path)
        if partner is None:
            raise SystemExit(f"{path} is not a fused model folder")
        em, ep = (embed_models({name: x}, parts["real"], store, precision, log=print)[name] for x in (path, partner))
        main_be, partner_be, qf = Backend.load(path), Backend.load(partner), fusion.QualityFusion.load(path)
        accepted, impostors, missed = Counter(), 0, Counter()
        for rng in protocol.draw_rngs(0, 5):
            tr = trials.make_trials(labels, rng)
            ok = fusion.trial_llrs([main_be, partner_be], qf, [em, ep], tr) >= 0
            enrolled, tested = tr.model_label[tr.model], labels[tr.test]
            accepted.update(zip(enrolled[~tr.target & ok], tested[~tr.target & ok]))
            missed.update(enrolled[tr.target & ~ok])
            impostors += int((~tr.target).sum())
        print(f"\n{name}: {sum(accepted.values())} of {impostors} impostor trials accepted; most often "
              "(enrolled <- tested):")
        for (a, b), k in accepted.most_common(args.top):
            print(f"  {a} <- {b}: {k}")
        print("genuine trials missed, by instrument: " + ", ".join(f"{a} {k}" for a, k in missed.most_common(args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
