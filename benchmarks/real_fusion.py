"""What the fusion's weights refitted on real notes do to clean and wet renders.

    python benchmarks/real_fusion.py [--system NAME ...]

The pages score uploads with each shipped system's fusion weights refitted on the real notes
of every source (``real_calibration.json``, :class:`mie_core.service.verify.RealCalibration`).
Here those shipped weights are applied to the clean test and wet parts' trials (5 draws, the benchmark's seed, identical
trials), beside the system's own fusion (fitted on renders). Prints each part's EER (mean +-
std over draws) and the verdict at prior 50 % (genuine accepted / impostors rejected %).
Embeds the test and wet parts with every member once (minutes per member on a CPU; the one
store keeps them).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", action="append", help="a shipped system's folder name under cache/models "
                                                     "(default: mel+cqt and cqt122)")
    args = p.parse_args()
    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import load_parts
    from mie_core.scoring import fusion, metrics
    from mie_core.service.verify import load_verifier

    prec, store = resolve_precision("auto"), EmbeddingStore()
    parts = load_parts(Corpus.load(default_corpus_dir()), ("test", "wet"), "program_disjoint")
    for name in args.system or ["mel+cqt", "cqt122"]:
        ver = load_verifier(Path("cache/models") / name, prec)
        if ver.real_calibration is None or ver.real_calibration.kind != "fusion":
            raise SystemExit(f"cache/models/{name} has no fusion refitted on real notes (real_calibration.json)")
        refit = fusion.Fusion(np.asarray(ver.real_calibration.weights), ver.real_calibration.offset)
        data = {}
        for pname, part in parts.items():
            emb = ver.join(*[embed_models({m.name: m}, part, store, prec, log=print)[m.name] for m in ver.member_paths])
            backends, members = ver.fusion_members(emb)
            draws = protocol.protocol_draws(part.rows["instrument_str"].to_numpy(), 0, 5)
            data[pname] = [(fusion.trial_features(backends, ver.fusion, members, d), d.target) for d in draws]
        print(f"\n{name}: own weights {np.round(ver.fusion.fusion.weights, 2).tolist()} "
              f"{ver.fusion.fusion.offset:+.2f}; refitted on real notes {np.round(refit.weights, 2).tolist()} "
              f"{refit.offset:+.2f}")
        for pname in ("test", "wet"):
            for label, f in (("own fusion", ver.fusion.fusion), ("refitted on real", refit)):
                e, g, i = [], [], []
                for feats, tgt in data[pname]:
                    s = feats @ f.weights + f.offset
                    e.append(metrics.eer(s[tgt], s[~tgt]))
                    g.append(np.mean(s[tgt] >= 0))
                    i.append(np.mean(s[~tgt] < 0))
                print(f"  {pname:5s} {label:17s} EER {100 * np.mean(e):5.2f} +- {100 * np.std(e):.2f}   "
                      f"verdicts {100 * np.mean(g):.1f} / {100 * np.mean(i):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
