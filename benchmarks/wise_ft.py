"""Weight-space interpolation (WiSE-FT) between a shipped encoder and its fine-tuned descendant:
clean, wet and real EER side by side on identical trials, one row per alpha.

    python benchmarks/wise_ft.py --a cache/models/cqt122 --b runs/cqt122_lmft/last \\
        --run runs/cqt122_lmft --alpha 0 0.3 0.5 0.7 1

alpha 0 is ``a`` itself and 1 is ``b``; between, ``training.interpolate`` writes the average
to ``runs/wise/<b's run>_a<100 alpha>``. Each model is scored as the study scores a run
(``training.study_eval``: 30 seeded notes per test instrument clean, the same notes through
the test rooms' chains, and every fetched real source; raw cosine, 5 draws) and the table
gives EER % per part and per real source. Embeddings go through the embedding store, so a
rerun with one more alpha embeds only that model. Results: docs/experiments/lmft.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", default="cache/models/cqt122")
    p.add_argument("--b", default="runs/cqt122_lmft/last")
    p.add_argument("--run", default="runs/cqt122_lmft", help="b's run folder (its config names the split)")
    p.add_argument("--alpha", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 1.0])
    p.add_argument("--json", help="also write the records here")
    args = p.parse_args()
    from training.interpolate import interpolate
    from training.study_eval import evaluate_run

    rows, recs = [], {}
    for alpha in args.alpha:
        if alpha == 0:
            model = Path(args.a)
        elif alpha == 1:
            model = Path(args.b)
        else:
            model = Path("runs/wise") / f"{Path(args.run).name}_a{round(100 * alpha):d}"
            if not (model / "model.json").exists():
                interpolate(args.a, args.b, alpha, model)
        rec = evaluate_run(args.run, probing=False, model=model)
        recs[f"{alpha:g}"] = rec["parts"]
        parts = rec["parts"]
        by = parts.get("real", {}).get("by_group", {})
        rows.append((alpha, parts["clean"]["eer"], parts["wet"]["eer"], parts.get("real", {}).get("eer"), by))
        print(f"alpha {alpha:g}: clean {100 * rows[-1][1]:.2f}  wet {100 * rows[-1][2]:.2f}  "
              f"real {100 * (rows[-1][3] or float('nan')):.2f}", flush=True)
    groups = sorted({g for r in rows for g in r[4]})
    print("\n| alpha | clean | wet | real pooled | " + " | ".join(groups) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * len(groups))
    for alpha, c, w, r, by in rows:
        cells = [f"{100 * by[g]:.2f}" if g in by else "n/a" for g in groups]
        print(f"| {alpha:g} | {100 * c:.2f} | {100 * w:.2f} | {100 * (r or float('nan')):.2f} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(recs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
