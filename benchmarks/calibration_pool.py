"""The shipped calibration against one fitted on played notes too, on identical trials.

    python benchmarks/calibration_pool.py [--model NAME=PATH ...]

For each model: the scoring back-end of :mod:`mie_core.scoring.backend` (mean and cohort from the
``bank`` notes of training instruments) calibrated two ways -- on the shipped pool (the
valid instruments' notes, clean and through the training rooms' chain: ``valid`` +
``calib``) and on that pool with the same notes played as musicians play, clean and
through the training rooms (+ ``played`` + ``playedwet``) -- then, per part (clean test,
wet test, real), the verdict at prior 0.5 (genuine accepted / impostors rejected, %), Cllr
and actual DCF, means over 5 draws of the paper's protocol, both pools on identical trials
(:func:`mie_core.evaluation.protocol.backend_results`). The last column is the ratio of the played
pool's actual DCF to the shipped pool's (below 1: the played pool's verdicts err less).
Embeddings come from the one store (``data/embeddings``): a second run embeds nothing.
Nothing of the test instruments, the test rooms or the real recordings is used to fit anything.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import trials  # noqa: E402
from mie_core.evaluation.report import parse_model_arg
from mie_core.scoring.fitting import BACKEND_PARTS, CALIBRATION_PARTS, PLAYED_PARTS, fit_backends
from mie_core.evaluation.embeddings import embed_models

DEFAULT_MODELS = ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122")
POOLS = {"shipped (valid + calib)": CALIBRATION_PARTS, "+ played notes": CALIBRATION_PARTS + PLAYED_PARTS}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH (default: the two shipped models)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(BACKEND_PARTS + PLAYED_PARTS + ("test", "wet", "real"))
    scored = [n for n in ("test", "wet", "real") if n in parts]
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        backends = {label: fit_backends({name: path}, parts, store, precision, args.seed, log=print,
                                        calibration_parts=pool)[0][name] for label, pool in POOLS.items()}
        print(f"\n{name} ({path}): calibrated verdicts at prior 0.5, 5 draws, identical trials")
        print(f"{'part':6s} {'calibrated on':24s} {'genuine acc.':>12s} {'impost. rej.':>12s} {'Cllr':>6s} "
              f"{'actDCF':>7s} {'ratio':>6s}")
        for pname in scored:
            emb = embed_models({name: path}, parts[pname], store, precision, log=print)[name]
            labels = parts[pname].rows["instrument_str"].to_numpy()
            draws = [trials.make_trials(labels, r) for r in protocol.draw_rngs(args.seed, 5)]
            first = None
            for label, be in backends.items():
                c = protocol.backend_results(be, emb, draws)["calibrated"]
                first = c["act_dcf"] if first is None else first
                print(f"{pname:6s} {label:24s} {100 * (1 - c['p_miss']):11.1f}% {100 * (1 - c['p_fa']):11.1f}% "
                      f"{c['cllr']:6.3f} {c['act_dcf']:7.3f} {c['act_dcf'] / first:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
