"""Two runs judged as the study judges them, side by side: EER per part and per real source,
with Eq. 1's z-test on the trials both share.

    python benchmarks/study_pair.py runs/study/cqt122_pd_s100/eval_at1000.json \\
        runs/pitch_adversary/cqt122_pitch03_pd_s100/eval_at1000.json

Each file is a record of ``python -m training.study_eval`` (same split, so identical trials).
The z-test uses one draw's trial counts, as the study's tables do; a real source's row has
no z (the records keep each source's EER, not its trial counts). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the reference run's eval record (JSON)")
    p.add_argument("b", help="the run measured against it")
    args = p.parse_args()
    from mie_core.scoring.metrics import z_test

    a, b = (json.loads(Path(f).read_text()) for f in (args.a, args.b))
    if a.get("split") != b.get("split"):
        raise SystemExit(f"the runs' splits differ ({a.get('split')} vs {b.get('split')}): their trials are not identical")
    def name(r):  # a run's weights at a step, or their average over the steps before it
        avg = r.get("averaged")
        when = f"averaged over steps {avg['from_step'] + 1}-{r['steps']}" if avg else f"step {r['steps']}"
        return f"{r['run']} ({when})"

    print(f"| part | {name(a)} | {name(b)} | z | p |")
    print("|---|---:|---:|---:|---:|")
    for part in ("clean", "wet", "real"):
        pa, pb = a["parts"].get(part), b["parts"].get(part)
        if not pa or not pb:
            continue
        z, pv = z_test(pa["eer"], pb["eer"], pa["n_target"], pa["n_nontarget"])
        print(f"| {part} | {100 * pa['eer']:.2f} +- {100 * pa['eer_std']:.2f} | {100 * pb['eer']:.2f} +- "
              f"{100 * pb['eer_std']:.2f} | {z:.2f} | {pv:.3f} |")
        ga, gb = pa.get("by_group") or {}, pb.get("by_group") or {}
        for g in sorted(set(ga) & set(gb)):
            print(f"| {part}: {g} | {100 * ga[g]:.2f} | {100 * gb[g]:.2f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
