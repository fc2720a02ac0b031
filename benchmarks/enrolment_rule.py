"""How several enrolment clips are scored: their mean vector against the soft maximum of clip-wise scores.

    python benchmarks/enrolment_rule.py [--model NAME=PATH ...] [--temperature 0.5 ...]

For each model (default: the four shipped ones, ``cqt122`` and ``mel122`` with their clean
partners in ``cache/models/<name>/clean``) and each fused system (a model folder with a
``fusion.json``), the back-end (:func:`mie_core.scoring.fitting.fit_backends`) and the fusion
(:func:`mie_core.scoring.fitting.fit_fusions`) are fitted as the cache builder fits them, once
under each enrolment rule of :func:`mie_core.scoring.backend.pooled_asnorm`: ``centroid`` (the
unit mean of the enrolment clips' vectors, the paper's protocol) and ``softmax`` at each
temperature (``T log mean exp(s_k / T)`` over the clip-wise AS-norm scores; T = 0.02 is
all but the best clip). Per part (clean test, wet test, real): the EER (ROCCH, %), the
calibrated verdict at prior 0.5 (genuine accepted / impostors rejected, %) and Cllr, means
over the 5 draws of the paper's protocol, identical trials for every rule; the last column
is each rule's EER over the centroid's, measured in one run, and the z-test of Eq. 1
against it on the first draw's trials. Embeddings come from the one
store (``data/embeddings``): once it holds them, about a minute. Nothing of the test
instruments, test rooms or real recordings is used to fit anything.
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
from mie_core.evaluation.report import parse_model_arg, partner_of
from mie_core.scoring.fitting import FUSION_PARTS, fit_backends, fit_fusions
from mie_core.evaluation.embeddings import embed_models

DEFAULT_MODELS = ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122")
SCORED = ("test", "wet", "real")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH (default: the shipped models; a fused folder "
                   "brings its clean partner as NAME_clean and the fused system as NAME fused)")
    p.add_argument("--temperature", type=float, action="append", help="softmax temperatures (default 0.02, 0.5, 2)")
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(FUSION_PARTS + SCORED)
    scored = [n for n in SCORED if n in parts]
    models, pairs = {}, {}
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        models[name] = path
        if (partner := partner_of(path)) is not None:
            models[f"{name}_clean"] = partner
            pairs[name] = (path, partner)
    rules = [("centroid", 0.5)] + [("softmax", t) for t in (args.temperature or (0.02, 0.5, 2.0))]
    emb = {n: embed_models(models, parts[n], store, precision, log=print) for n in scored}
    draws = {n: [trials.make_trials(parts[n].rows["instrument_str"].to_numpy(), rng)
                 for rng in protocol.draw_rngs(0, 5)] for n in scored}
    table: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for rule, temp in rules:
        label = rule if rule == "centroid" else f"softmax T={temp:g}"
        backends, _ = fit_backends(models, parts, store, precision, rule=rule, temperature=temp)
        fused = fit_fusions({n: (m, c) for n, (m, c) in pairs.items()}, parts,
                            {n: backends[n] for n in pairs}, {n: backends[f"{n}_clean"] for n in pairs},
                            store, precision) if pairs else {}
        systems = {n: (lambda d, pn, n=n: fusion.scoring_llr(backends[n], emb[pn][n], d))
                   for n in models}
        for n, qf in fused.items():
            systems[f"{n} fused"] = (lambda d, pn, n=n, qf=qf: fusion.trial_llrs(
                [backends[n], backends[f"{n}_clean"]], qf, [emb[pn][n], emb[pn][f"{n}_clean"]], d))
        for sname, llr_of in systems.items():
            # per part: the means over draws, then the first draw's EER (for the z-test)
            table[(sname, label)] = {pn: np.r_[np.mean(r, axis=0), r[0][0]] for pn in scored
                                     for r in [[_common.verdict_rates(llr_of(d, pn), d.target) for d in draws[pn]]]}
        print(f"{label}: fitted and scored", flush=True)
    print("\nEER % (genuine accepted / impostors rejected at prior 0.5, %; Cllr), means over 5 draws, "
          "identical trials; last columns: EER over the centroid rule's, and the z of Eq. 1 against it on "
          "the first draw's trials (|z| > 1.96: p < 0.05), per part\n")
    print("| system | rule | " + " | ".join(scored) + " | EER / centroid | z |")
    print("|---|---|" + "---|" * (len(scored) + 2))
    for (sname, label), r in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1] != "centroid", kv[0][1])):
        base = table[(sname, "centroid")]
        cells = [f"{100 * r[pn][0]:.2f} ({100 * r[pn][1]:.1f} / {100 * r[pn][2]:.1f}; {r[pn][3]:.2f})" for pn in scored]
        ratio = " / ".join(f"{r[pn][0] / base[pn][0]:.2f}" for pn in scored)
        z = " / ".join(f"{metrics.z_test(base[pn][4], r[pn][4], draws[pn][0].n_target, draws[pn][0].n_nontarget)[0]:.2f}"
                       for pn in scored)
        print(f"| {sname} | {label} | " + " | ".join(cells) + f" | {ratio} | {z} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
