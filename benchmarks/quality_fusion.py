"""The chain-trained model alone against its quality-aware fusion with the clean model, on identical trials.

    git archive d1e3e31 cache/models | tar -x -C data/old       # the clean-trained models
    python benchmarks/quality_fusion.py [--pair NAME=CLEAN_MODEL,CHAIN_MODEL ...]

For each pair (default: ``mel122`` and ``cqt122``, the clean models of commit d1e3e31
against the shipped ones): both models' calibrated back-ends (:func:`mie_core.report.fit_backends`),
the condition detector and the fusion of :mod:`mie_core.fusion` (detector fitted on the
training instruments' ``bank`` notes clean and through the training rooms; fusion on
held-out trials of the valid instruments, ``valid`` + ``calib``), then per part (clean
test, wet test, real) the EER (ROCCH %), the verdict at prior 0.5 (genuine accepted /
impostors rejected, %) and Cllr of the clean model, the chain-trained model, the fusion
with equal weights and the quality-aware fusion, means over the 5 draws of the paper's
protocol, all on identical trials. The last column is each system's EER over the
chain-trained model's, measured in one run. Embeddings come from the one store
(``data/embeddings``): a second run embeds nothing. Nothing of the test instruments, the
test rooms or the real recordings is used to fit anything.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core import evaluation, fusion, metrics, scoring, trials  # noqa: E402
from mie_core.report import (BACKEND_PARTS, CALIBRATION_PARTS, embed_models, fit_backends,  # noqa: E402
                             held_out_trials)

DEFAULT_PAIRS = ("mel122=data/old/cache/models/mel122,cache/models/mel122",
                 "cqt122=data/old/cache/models/cqt122,cache/models/cqt122")
SCORED = ("test", "wet", "real")


def parse_pair(arg: str) -> tuple[str, Path, Path]:
    name, rest = arg.split("=", 1)
    clean, chain = rest.split(",", 1)
    for p in (clean, chain):
        if not Path(p).is_dir():
            raise SystemExit(f"no model folder {p} (the clean models: git archive d1e3e31 cache/models | tar -x -C data/old)")
    return name, Path(clean), Path(chain)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pair", action="append", help="NAME=CLEAN_MODEL,CHAIN_MODEL (default: the shipped pairs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(BACKEND_PARTS + ("bankwet",) + SCORED)
    scored = [n for n in SCORED if n in parts]
    needed = ("bank", "bankwet") + CALIBRATION_PARTS + tuple(scored)
    for name, clean_path, chain_path in (parse_pair(a) for a in (args.pair or DEFAULT_PAIRS)):
        models = {"clean": clean_path, "chain": chain_path}
        backends, _ = fit_backends(models, parts, store, precision, args.seed, log=print)
        emb = {m: {n: embed_models({m: path}, parts[n], store, precision, log=print)[m] for n in needed}
               for m, path in models.items()}
        both = {n: np.concatenate([backends[m].vectors(emb[m][n]) for m in models], axis=1) for n in needed}
        train = (parts["bank"].rows["part"] == "train").to_numpy()
        detector = fusion.fit_condition_detector(both["bank"][train], both["bankwet"])
        q = {n: detector.prob_clean(both[n]) for n in needed}

        def trial_inputs(pname, d):
            llr = [scoring.trial_scores(backends[m], emb[m][pname], d)["llr"] for m in models]
            return llr[0], llr[1], fusion.trial_quality(q[pname], d)

        held = []  # the calibration's own held-out trials
        for k, pname in enumerate(CALIBRATION_PARTS):
            d = held_out_trials(parts[pname], args.seed, k)
            held.append((*trial_inputs(pname, d), d.target))
        fused = fusion.fit_fusion(*(np.concatenate(c) for c in zip(*held)))
        print(f"\n{name}: clean {clean_path}, chain-trained {chain_path}")
        print("P(clean) by the detector, mean per part: " + ", ".join(f"{n} {q[n].mean():.2f}" for n in needed))
        print("fusion weights (l_clean, l_chain, w l_clean, w l_chain, w; offset): "
              + " ".join(f"{v:+.3f}" for v in fused.weights) + f"; {fused.offset:+.3f}")
        print(f"{'part':5s} {'system':15s} {'EER %':>6s} {'genuine':>8s} {'impost.':>8s} {'Cllr':>6s} {'ratio':>6s}")
        for pname in scored:
            labels = parts[pname].rows["instrument_str"].to_numpy()
            acc: dict[str, list] = {}
            for d in (trials.make_trials(labels, r) for r in evaluation.draw_rngs(args.seed, 5)):
                lc, lr, w = trial_inputs(pname, d)
                systems = {"clean": lc, "chain-trained": lr, "equal fusion": 0.5 * (lc + lr),
                           "quality fusion": fused.llr(lc, lr, w)}
                for s_name, s in systems.items():
                    t, n = s[d.target], s[~d.target]
                    acc.setdefault(s_name, []).append((metrics.eer(t, n), np.mean(t >= 0), np.mean(n < 0),
                                                       scoring.cllr(t, n)))
            base = np.mean([a[0] for a in acc["chain-trained"]])
            for s_name, rows in acc.items():
                e, g, i, c = np.mean(rows, axis=0)
                print(f"{pname:5s} {s_name:15s} {100 * e:6.2f} {100 * g:7.1f}% {100 * i:7.1f}% {c:6.3f} {e / base:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
