"""The chain-trained model alone against its quality-aware fusion with the clean model, on identical trials.

    python benchmarks/quality_fusion.py [--pair NAME=CLEAN_MODEL,CHAIN_MODEL ...]

For each pair (default: the shipped ``mel122`` and ``cqt122``, each with the clean-trained
partner it is fused with, ``cache/models/<name>/clean``): both models' calibrated back-ends
(:func:`mie_core.scoring.fitting.fit_backends`), the condition detector and the fusion of
:mod:`mie_core.scoring.fusion` as the cache builder fits them (detector fitted on the
training instruments' ``bank`` notes clean and through the training rooms; fusion on
held-out trials of the valid instruments, ``valid`` + ``calib``), then per part (clean
test, wet test, real) the EER (ROCCH %), the verdict at prior 0.5 (genuine accepted /
impostors rejected, %) and Cllr of the clean model, the chain-trained model, the fusion
with equal weights and the quality-aware fusion, means over the 5 draws of the paper's
protocol, all on identical trials. The last column is each system's EER over the
chain-trained model's, measured in one run, and the z-test of Eq. 1 between the two on
the first draw's trials. ``--played`` fits the fusion's weights on the played parts too
(measured and not shipped: README). Embeddings come from the one store
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

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import fusion, metrics, trials  # noqa: E402
from mie_core.scoring.fitting import CALIBRATION_PARTS, FUSION_PARTS, PLAYED_PARTS, fit_backends, fit_fusions
from mie_core.evaluation.embeddings import embed_models

DEFAULT_PAIRS = ("mel122=cache/models/mel122/clean,cache/models/mel122",
                 "cqt122=cache/models/cqt122/clean,cache/models/cqt122")
SCORED = ("test", "wet", "real")


def parse_pair(arg: str) -> tuple[str, Path, Path]:
    name, rest = arg.split("=", 1)
    clean, chain = rest.split(",", 1)
    for p in (clean, chain):
        if not Path(p).is_dir():
            raise SystemExit(f"no model folder {p}")
    return name, Path(clean), Path(chain)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pair", action="append", help="NAME=CLEAN_MODEL,CHAIN_MODEL (default: the shipped pairs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--played", action="store_true",
                   help="fit the fusion's weights on the played parts too (valid instruments played as musicians play)")
    args = p.parse_args()
    pool = CALIBRATION_PARTS + (PLAYED_PARTS if args.played else ())
    parts, precision, store = _common.evaluation_parts(FUSION_PARTS + pool + SCORED)
    scored = [n for n in SCORED if n in parts]
    needed = FUSION_PARTS + tuple(scored)
    for name, clean_path, chain_path in (parse_pair(a) for a in (args.pair or DEFAULT_PAIRS)):
        models = {"clean": clean_path, "chain": chain_path}
        backends, _ = fit_backends(models, parts, store, precision, args.seed, log=print)
        # the fusion as the cache builder fits it (mie_core.scoring.fitting.fit_fusions)
        qf = fit_fusions({name: (chain_path, clean_path)}, parts, {name: backends["chain"]}, {name: backends["clean"]},
                         store, precision, args.seed, log=print, calibration_parts=pool)[name]
        print(f"fusion weights fitted on the held-out trials of {', '.join(pool)}")
        emb = {m: {n: embed_models({m: path}, parts[n], store, precision, log=print)[m] for n in needed}
               for m, path in models.items()}
        q = {n: qf.detector.prob_clean(fusion.member_vectors([backends["chain"], backends["clean"]],
                                                            [emb["chain"][n], emb["clean"][n]])) for n in needed}
        print(f"\n{name}: clean {clean_path}, chain-trained {chain_path}")
        print("P(clean) by the detector, mean per part: " + ", ".join(f"{n} {q[n].mean():.2f}" for n in needed))
        print("fusion weights (l_chain, l_clean, w l_chain, w l_clean, w; offset): "
              + " ".join(f"{v:+.3f}" for v in qf.fusion.weights) + f"; {qf.fusion.offset:+.3f}")
        print(f"{'part':5s} {'system':15s} {'EER %':>6s} {'genuine':>8s} {'impost.':>8s} {'Cllr':>6s} {'ratio':>6s}"
              f"  z (first draw, Eq. 1, against chain-trained)")
        for pname in scored:
            labels = parts[pname].rows["instrument_str"].to_numpy()
            acc: dict[str, list] = {}
            for d in (trials.make_trials(labels, r) for r in protocol.draw_rngs(args.seed, 5)):
                lc, lr = (fusion.scoring_llr(backends[m], emb[m][pname], d) for m in models)
                systems = {"clean": lc, "chain-trained": lr, "equal fusion": 0.5 * (lc + lr),
                           "quality fusion": fusion.trial_llrs([backends["chain"], backends["clean"]], qf,
                                                               [emb["chain"][pname], emb["clean"][pname]], d)}
                for s_name, s in systems.items():
                    acc.setdefault(s_name, []).append(_common.verdict_rates(s, d.target))
            base = np.mean([a[0] for a in acc["chain-trained"]])
            first = trials.make_trials(labels, protocol.draw_rngs(args.seed, 5)[0])
            for s_name, rows in acc.items():
                e, g, i, c = np.mean(rows, axis=0)
                z, pv = metrics.z_test(rows[0][0], acc["chain-trained"][0][0], first.n_target, first.n_nontarget)
                print(f"{pname:5s} {s_name:15s} {100 * e:6.2f} {100 * g:7.1f}% {100 * i:7.1f}% {c:6.3f} {e / base:6.2f}"
                      f"  z {z:5.2f} (p {pv:.2g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
