"""Models side by side as embeddings on the study's parts: clean, wet and real notes by source.

    python benchmarks/member_parts.py --model lmft=cache/models/cqt122/lmft --model pairs=runs/cqt122_pairs/last

The study's three parts of ``--split`` (``training.study_eval.study_parts``: 30 seeded notes
of every test instrument clean, the same notes each through its own unseen room, and the
real notes of every source fetched), each model embedded through the one store and scored by
cosine with the paper's protocol (5 enrolment notes, 20 + 20 trials per instrument, 5 seeded
draws, identical trials for every model; no back-end), as every study run is judged. Prints
EER % per part (mean +- std over draws) and per real source, then paper Eq. 1 (z, p) of each
model against the first on each part's first draw. Cheaper than a system's evaluation (a
third of the clean notes, no back-end parts), for a run's first reading against what ships.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="NAME=PATH of a checkpoint folder (repeatable)")
    p.add_argument("--split", default="program_disjoint", choices=("program_disjoint", "soundfont_disjoint"))
    args = p.parse_args()
    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision
    from mie_core.scoring.metrics import z_test
    from training.study_eval import part_metrics, study_parts

    models = []
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--model {spec!r}: give NAME=PATH")
        models.append((name, path))
    store, precision = EmbeddingStore(), resolve_precision("auto")
    parts = [part for part in study_parts(args.split) if part is not None]
    res = {}
    for part in parts:
        groups = part.rows["source"].to_numpy() if "source" in part.rows else None
        for name, path in models:
            print(f"{part.name}: {name} ({len(part.rows)} notes)", file=sys.stderr, flush=True)
            emb = store.get(path, part.key, part.audio, precision)
            res[part.name, name] = part_metrics(emb, part.rows["instrument_str"].to_numpy(), groups=groups)
    print(f"EER % on the study's parts ({args.split}, {precision}; mean +- std over 5 draws)")
    sources = sorted({g for r in res.values() for g in r.get("by_group", {})})
    print("| model | " + " | ".join(part.name for part in parts) + "".join(f" | {s}" for s in sources) + " |")
    print("|---|" + "---:|" * (len(parts) + len(sources)))
    for name, _ in models:
        cells = [f"{100 * res[part.name, name]['eer']:.2f} +- {100 * res[part.name, name]['eer_std']:.2f}"
                 for part in parts]
        real = next((res[part.name, name] for part in parts if "by_group" in res[part.name, name]), {})
        cells += [f"{100 * real.get('by_group', {}).get(s, float('nan')):.2f}" for s in sources]
        print(f"| {name} | " + " | ".join(cells) + " |")
    base = models[0][0]
    for name, _ in models[1:]:
        for part in parts:
            a, b = res[part.name, base], res[part.name, name]
            z, pv = z_test(a["eer_draws"][0], b["eer_draws"][0], a["n_target"], a["n_nontarget"])
            print(f"{part.name}: {name} vs {base}: z = {z:.2f}, p = {pv:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
