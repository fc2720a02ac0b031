"""Quality-aware fusion of more than two models: the shipped pairs against Mel + CQT ensembles, on identical trials.

    python benchmarks/ensemble_fusion.py

Each shipped system fuses two models, a chain-trained one and its clean-trained partner
(:mod:`mie_core.scoring.fusion`). This measures whether the other front-end adds to it: the same
recipe for m members (:func:`mie_core.scoring.fusion.fit_fusion`, of which the shipped pair
is the two-member case: condition detector on the training instruments' ``bank`` notes clean against
``bankwet``, over all members' back-end vectors; the trial quality ``w``; a prior-weighted
linear fusion of every member's calibrated LLR, each also times ``w``, and ``w``, fitted on
the calibration's held-out trials of the valid instruments) over these member sets of the
four shipped models (``cqt122``, ``mel122`` and their partners in ``cache/models/<name>/clean``):

* ``cqt122 pair``, ``mel122 pair``: what ships (the same numbers as ``evaluate``);
* ``clean mel + cqt``: the two clean-trained models;
* ``cqt122 pair + mel clean``, ``mel122 pair + cqt clean``: three members;
* ``all four``.

Per part (clean test, wet test, real): EER (ROCCH, %), the verdict at prior 0.5 (genuine
accepted / impostors rejected, %) and Cllr, means over the 5 draws of the paper's
protocol; the last column is each system's EER over the shipped ``cqt122 pair``'s,
measured in one run. Back-ends are fitted as the cache builder fits them (the shipped
enrolment rule). Embeddings come from the one store (``data/embeddings``): about a
minute once it holds them. Nothing of the test instruments, test rooms or real
recordings is used to fit anything.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import fusion, trials  # noqa: E402
from mie_core.scoring.fitting import CALIBRATION_PARTS, FUSION_PARTS, fit_backends, held_out_trials  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402

MODELS = {"cqt_clean": "cache/models/cqt122/clean", "cqt": "cache/models/cqt122",
          "mel_clean": "cache/models/mel122/clean", "mel": "cache/models/mel122"}
# members in the member order (mie_core.scoring.fusion): the main model first
SYSTEMS = {"cqt122 pair (shipped)": ("cqt", "cqt_clean"), "mel122 pair (shipped)": ("mel", "mel_clean"),
           "clean mel + cqt": ("cqt_clean", "mel_clean"), "cqt122 pair + mel clean": ("cqt", "cqt_clean", "mel_clean"),
           "mel122 pair + cqt clean": ("mel", "mel_clean", "cqt_clean"), "all four": tuple(MODELS)}
SCORED = ("test", "wet", "real")


def main() -> int:
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    parts, precision, store = _common.evaluation_parts(FUSION_PARTS + SCORED)
    scored = [n for n in SCORED if n in parts]
    backends, _ = fit_backends(MODELS, parts, store, precision)
    emb = {p: embed_models(MODELS, parts[p], store, precision, log=print) for p in FUSION_PARTS + tuple(scored)}
    train = (parts["bank"].rows["part"] == "train").to_numpy()
    held = [(p, held_out_trials(parts[p], 0, k)) for k, p in enumerate(CALIBRATION_PARTS)]
    draws = {p: [trials.make_trials(parts[p].rows["instrument_str"].to_numpy(), r) for r in protocol.draw_rngs(0, 5)]
             for p in scored}
    table = {}
    for name, members in SYSTEMS.items():
        bes = [backends[m] for m in members]
        qf = fusion.fit_fusion(bes, [emb["bank"][m][train] for m in members], [emb["bankwet"][m] for m in members],
                                      [([emb[p][m] for m in members], tr) for p, tr in held])
        table[name] = {p: np.mean([_common.verdict_rates(fusion.trial_llrs(bes, qf, [emb[p][m] for m in members],
                                                                                   tr), tr.target)
                                   for tr in draws[p]], axis=0) for p in scored}
    base = table["cqt122 pair (shipped)"]
    print("\nEER % (genuine accepted / impostors rejected at prior 0.5, %; Cllr), means over 5 draws, identical "
          "trials; last column: EER over the shipped cqt122 pair's, per part\n")
    print("| system | members | " + " | ".join(scored) + " | EER / cqt122 pair |")
    print("|---|---|" + "---|" * (len(scored) + 1))
    for name, r in table.items():
        cells = [f"{100 * r[p][0]:.2f} ({100 * r[p][1]:.1f} / {100 * r[p][2]:.1f}; {r[p][3]:.2f})" for p in scored]
        ratio = " / ".join(f"{r[p][0] / base[p][0]:.2f}" for p in scored)
        print(f"| {name} | {', '.join(SYSTEMS[name])} | " + " | ".join(cells) + f" | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
