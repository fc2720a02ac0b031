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


def rates(s, tgt):
    from mie_core.scoring import metrics

    return metrics.eer(s[tgt], s[~tgt]), float(np.mean(s[tgt] >= 0)), float(np.mean(s[~tgt] < 0))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="mel+cqt", help="a shipped system under cache/models (default mel+cqt)")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--rule", choices=("studio", "not-room"), default="not-room",
                   help="a clip's studio weight: P(studio), or 1 - P(room) (default: renders and studio notes alike "
                        "take the studio weights, rooms the system's own)")
    p.add_argument("--c", type=float, default=1.0, help="the detector's inverse L2 strength")
    args = p.parse_args()
    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import load_parts, real_sources_part
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

    def own_llr(f):
        return f @ own.weights + own.offset

    table = {}
    sources_ = sorted(set(src))
    def weight(model, v):
        p = model.proba(v)
        return p[:, condition.STUDIO] if args.rule == "studio" else 1.0 - p[:, condition.ROOM]

    dets = {h: weight(condition.fit_condition_model(render, room, vec["real"][src != h], args.c), vec["real"])
            for h in sources_}
    for f, d in feats["real"]:
        enrol_src, test_src = sources.trial_sources(src, d.enroll, d.model, d.test)
        out = {k: np.full(len(d.target), np.nan) for k in ("own", "studio", "detector", "p_studio")}
        for held in sources_:
            fit_on = (enrol_src != held) & (test_src != held)
            w, b = sources.fit_linear(f[fit_on], d.target[fit_on])
            m = enrol_src == held
            studio_llr = f[m] @ np.asarray(w).ravel() + b
            s = condition.trial_weight(dets[held], d)[m]
            out["own"][m], out["studio"][m] = own_llr(f[m]), studio_llr
            out["detector"][m], out["p_studio"][m] = condition.mixed_llr(own_llr(f[m]), studio_llr, s), s
        for held in [*sources_, "pooled"]:
            m = np.ones(len(d.target), bool) if held == "pooled" else enrol_src == held
            for label in ("own", "studio", "detector"):
                table.setdefault((held, label), []).append(rates(out[label][m], d.target[m]))
            table.setdefault((held, "p_studio"), []).append((float(np.mean(out["p_studio"][m])), 0, 0))
    det = condition.fit_condition_model(render, room, vec["real"], args.c)
    rc = ver.real_calibration
    studio = fusion.Fusion(np.asarray(rc.weights), rc.offset)
    for name in ("test", "wet"):
        p_studio = weight(det, vec[name])
        for f, d in feats[name]:
            s = condition.trial_weight(p_studio, d)
            studio_llr = f @ studio.weights + studio.offset
            for label, llr in (("own", own_llr(f)), ("studio", studio_llr),
                               ("detector", condition.mixed_llr(own_llr(f), studio_llr, s))):
                table.setdefault((name, label), []).append(rates(llr, d.target))
            table.setdefault((name, "p_studio"), []).append((float(np.mean(s)), 0, 0))
    print(f"\n{args.system}, studio weight {args.rule}, C {args.c:g}: EER % (genuine accepted / impostors rejected %), means over {args.draws} draws; "
          "real sources held out from every fit\n")
    print("| part | own fusion | studio weights | detector's choice | mean studio weight |")
    print("|---|---:|---:|---:|---:|")
    for key in [k for k in dict.fromkeys(h for h, _ in table)]:
        cells = []
        for label in ("own", "studio", "detector"):
            e, g, i = np.mean(table[(key, label)], axis=0)
            cells.append(f"{100 * e:.2f} ({100 * g:.1f} / {100 * i:.1f})")
        print(f"| {key} | " + " | ".join(cells) + f" | {np.mean(table[(key, 'p_studio')], axis=0)[0]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
