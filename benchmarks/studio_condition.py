"""A recording-condition detector that chooses the fusion per trial: studio weights where a
trial's clips sound like studio recordings, the system's own where they sound like renders or
rooms, measured on every real source held out and on clean and wet renders.

    python benchmarks/studio_condition.py [--system mel+cqt] [--draws 5]

The detector (:mod:`mie_core.scoring.condition`) is a three-class logistic regression over
the members' back-end vectors: ``render`` (the ``valid`` notes, clean renders of the held-out
valid instruments), ``room`` (``calib``: their notes through the training rooms) and
``studio`` (real notes). A trial's studio weight is ``s = min(mean P(studio) of the enrolment, P(studio) of the
test clip)`` and its LLR ``s llr_studio + (1 - s) llr_own``: ``llr_studio`` the fusion's
weights refitted on real trials, ``llr_own`` the system's fusion as shipped.

For each real source S, the detector's studio class and the studio weights are fitted on
the real notes and trials of the other sources only, and S's trials are scored; the clean
test and wet parts (test instruments, test rooms: never fitted on) are scored with both
fitted on every source. Prints EER % and the verdict at prior 0.5 (genuine accepted /
impostors rejected %) for the own fusion, the studio weights alone (what the Verify page's
"Studio recordings" box does today) and the detector's choice, and P(studio) per part.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="mel+cqt", help="a shipped system under cache/models (default mel+cqt)")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--rule", choices=("studio", "not-room"), default="studio",
                   help="a clip's studio weight: P(studio) (default, shipped), or 1 - P(room) (renders and studio "
                        "notes alike take the studio weights, rooms the system's own)")
    p.add_argument("--c", type=float, default=0.1, help="the detector's inverse L2 strength")
    p.add_argument("--no-margin", dest="margin", action="store_false",
                   help="without the margin (shipped: the refitted weights' LLR lowered in the mix by the margin "
                        "that holds on a source none of the fits saw, mie_core.scoring.sources.unseen_margin)")
    args = p.parse_args()
    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import load_parts, real_sources_part
    from mie_core.evaluation.report import mode_rates
    from mie_core.scoring import condition, fusion, sources
    from mie_core.service.verify import load_verifier

    prec, store = resolve_precision("auto"), EmbeddingStore()
    ver = load_verifier(Path("cache/models") / args.system, prec)
    parts = load_parts(Corpus.load(default_corpus_dir()), ("test", "wet", "valid", "calib"), "program_disjoint")
    parts["real"] = real_sources_part()
    vec, feats = {}, {}
    for name, part in parts.items():
        emb = ver.join(*[embed_models({m.name: m}, part, store, prec, log=print)[m.name] for m in ver.member_paths])
        backends, members = ver.fusion_members(emb)
        vec[name] = fusion.member_vectors(backends, members)
        if name in ("test", "wet", "real"):
            draws = protocol.protocol_draws(part.rows["instrument_str"].to_numpy(), 0, args.draws)
            feats[name] = [(fusion.trial_features(backends, ver.fusion, members, d), d) for d in draws]
    render, room = vec["valid"], vec["calib"]
    src = parts["real"].rows["source"].to_numpy()
    own = ver.fusion.fusion
    f_real, d_real = zip(*feats["real"])
    base = sources.measure_sources([x @ own.weights + own.offset for x in f_real], list(d_real), src,
                                   feature_draws=list(f_real))
    held = {"own": base["before"], "studio": base["fusion"],
            "auto": sources.measure_auto(list(f_real), list(d_real), src, vec["real"], render, room, own.weights,
                                         own.offset, c=args.c, rule=args.rule, margin=args.margin)}
    table = {(s, m): held[m][s] for m in ("own", "studio", "auto") for s in held["auto"]}
    rc = ver.real_calibration
    studio = fusion.Fusion(np.asarray(rc.weights), rc.offset)
    det = condition.fit_condition_model(render, room, vec["real"], args.c)
    if args.margin:
        m = sources.auto_margin(list(f_real), list(d_real), src, condition.clip_weight(det, vec["real"], args.rule),
                                own.weights, own.offset)
        print(f"margin fitted on every source: {m:.2f}")
        studio = fusion.Fusion(studio.weights, studio.offset - m)
    for name in ("test", "wet"):
        f, d = zip(*feats[name])
        res = mode_rates(list(f), list(d), own, studio, condition.clip_weight(det, vec[name], args.rule))
        table.update({(name, m): res[m] for m in res})
    print(f"\n{args.system}, studio weight {args.rule}, C {args.c:g}{', margin' if args.margin else ''}: EER % (genuine accepted / impostors rejected %), means over {args.draws} draws; "
          "real sources held out from every fit\n")
    print("| part | own fusion | studio weights | detector's choice | mean studio weight |")
    print("|---|---:|---:|---:|---:|")
    for key in dict.fromkeys(k for k, _ in table):
        cells = [f"{100 * r['eer']:.2f} ({100 * r['genuine_accepted']:.1f} / {100 * r['impostors_rejected']:.1f})"
                 for r in (table[(key, m)] for m in ("own", "studio", "auto"))]
        w = table[(key, "auto")].get("studio_weight")
        print(f"| {key} | " + " | ".join(cells) + f" | {'' if w is None else f'{w:.2f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
