"""The recording-condition model on six signal features instead of the members' back-end
vectors: does it tell a studio recording from a room one on a source unlike the others?

    python benchmarks/studio_signal.py [--c 0.1] [--margin] [--features both]

The default is what ships (``mie_core.evaluation.report.CONDITION_INPUTS``: the model on the
recording features beside the member vectors, no margin; docs/experiments/studio-condition.md#both); the
features come from the one store (``EmbeddingStore.recording``: minutes the first time for
the rendered parts, then seconds).

Per clip (16 kHz, 512-sample frames): the noise floor (5th-percentile frame energy re. the
loudest, dB), the spectral flatness of the quietest fifth of frames, the 99 % roll-off of the
loudest fifth (kHz), their energy above 6 kHz (dB), the energy slope over the last 30 % of
frames (dB per frame) and the quiet frames' energy below 200 Hz (dB). Standardised on the
renders, the model's classes and the studio weights are those of
``benchmarks/studio_condition.py`` (the same rule, P(studio); each real source held out from
both fits). Prints mel+cqt's pooled real EER and each source's studio weight, then, with the
model fitted on every source (what would ship), the three scoring modes on the clean ``test``
and ``wet`` renders (``--no-renders`` skips them: their features need their audio, minutes).

``--qmf``: instead, the features as *quality measures* inside the studio weights (WeSpeaker's
QMF, BOSARIS' quality fusion): each feature ``q`` (standardised; a trial's the smaller of its
enrolment's mean and its test clip's) adds ``q l_i`` for every member's LLR and ``q`` to the
fusion's features, fitted on real trials without the source scored; last, each member's
enrolment consistency (the mean cosine among the enrolment's clips, as that member sees them)
times its own LLR. Prints each source's EER and verdicts beside the shipped studio weights
(real notes only).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)
from mie_core.data.recording import NAMES

SYSTEM = Path("cache/models/mel+cqt")


def enrolment_consistency(vectors: np.ndarray, enroll: np.ndarray) -> np.ndarray:
    """(n_models,) the mean pairwise cosine of each enrolment's clips ``vectors[enroll]``
    ((n_models, k) indices into (n, d) unit vectors): how tight a member sees the enrolment."""
    e = vectors[enroll]
    k = e.shape[1]
    return (np.einsum("mid,mjd->m", e, e) - k) / (k * (k - 1))


def quality_measures(trial_feats: list, draws: list, source: np.ndarray, z: np.ndarray, m: int,
                     member_vectors: list) -> int:
    """``--qmf``: the studio weights with each feature (then two, then all) as a quality
    measure; last, each member's :func:`enrolment_consistency` (standardised) times its own LLR."""
    from mie_core.scoring import sources

    def signal(cols):  # (trial draw, its fusion features) -> q l_i and q for each feature column
        def extra(d, x):
            qs = [np.minimum(z[d.enroll, c].mean(1)[d.model], z[d.test, c])[:, None] for c in cols]
            return [a for q in qs for a in (q * x[:, :m], q)]
        return extra

    def consistency(d, x):
        c = np.stack([enrolment_consistency(v, d.enroll)[d.model] for v in member_vectors], axis=1)
        c = (c - c.mean(0)) / c.std(0)
        return [c * x[:, :m], c]

    def rates(extra):
        recs = []
        for d, x in zip(draws, trial_feats):
            es, ts = sources.trial_sources(source, d.enroll, d.model, d.test)
            llr = sources.leave_one_source_out(np.hstack([x] + extra(d, x)), d.target, es, ts)[0]
            recs.append(sources.rates_with_pooled(llr, d.target, es))
        return {k: {v: np.mean([r[k][v] for r in recs]) for v in recs[0][k]} for k in recs[0]}

    rows = {"studio weights (shipped)": signal([])} | {f"+ {n}": signal([c]) for c, n in enumerate(NAMES)}
    rows |= {"+ noise floor, tail slope": signal([0, 4]), "+ all six": signal(range(len(NAMES))),
             "+ enrolment consistency": consistency}
    print("EER % (genuine accepted / impostors rejected %), each source held out, means over 5 draws")
    for label, extra in rows.items():
        r = rates(extra)
        print(f"| {label} | " + " | ".join(f"{k} {100 * v['eer']:.2f} ({100 * v['genuine_accepted']:.1f} / "
                                           f"{100 * v['impostors_rejected']:.1f})" for k, v in r.items()) + " |", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--c", type=float, default=0.1, help="the model's inverse L2 strength")
    p.add_argument("--no-renders", action="store_true", help="skip the clean and wet renders' cost")
    p.add_argument("--features", choices=("signal", "both"), default="both",
                   help="both (shipped): the six signal features beside the members' back-end vectors; "
                        "signal: the features alone")
    p.add_argument("--margin", action="store_true", help="the studio map lowered by sources.unseen_margin")
    p.add_argument("--qmf", action="store_true", help="the features as quality measures in the studio weights")
    args = p.parse_args()
    from sklearn.preprocessing import StandardScaler

    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision
    from mie_core.evaluation.parts import load_parts, real_sources_part
    from mie_core.evaluation.report import mode_rates, system_members
    from mie_core.scoring import fusion, sources
    from mie_core.service.verify import load_verifier

    prec, store = resolve_precision("auto"), EmbeddingStore()
    ver = load_verifier(SYSTEM, prec)
    names = ("valid", "calib") + (() if args.no_renders or args.qmf else ("test", "wet"))
    parts = load_parts(Corpus.load(default_corpus_dir()), names, "program_disjoint")
    parts["real"] = real_sources_part()
    # through the one store (computed once, as the cache build and evaluate read them)
    feats = {n: store.recording(part.key, part.audio) for n, part in parts.items()}
    real = parts["real"]

    def members_of(part):  # (back-ends, members' embeddings), through the one store
        return system_members(SYSTEM, part, store, prec)[1:]

    backends, members = members_of(real)
    draws = protocol.protocol_draws(real.rows["instrument_str"].to_numpy(), 0, 5)
    trial_feats = [fusion.trial_features(backends, ver.fusion, members, d) for d in draws]
    scaler = StandardScaler().fit(np.concatenate([feats["valid"], feats["calib"]]))
    z = {n: scaler.transform(v) for n, v in feats.items()}
    if args.qmf:
        return quality_measures(trial_feats, draws, real.rows["source"].to_numpy(), z["real"], len(backends),
                                [b.vectors(e) for b, e in zip(backends, members)])
    # raw features, standardised on the renders inside the fit (as the shipped model)
    if args.features == "both":
        x = {n: np.hstack([v, fusion.member_vectors(*members_of(parts[n]))]) for n, v in feats.items()}
        inputs = "recording+members"
    else:
        x, inputs = feats, "recording"
    own = ver.fusion.fusion
    res = sources.measure_auto(trial_feats, draws, real.rows["source"].to_numpy(), x["real"], x["valid"], x["calib"],
                               own.weights, own.offset, c=args.c, margin=args.margin, inputs=inputs)
    print(f"mel+cqt, condition model on {args.features} features (C {args.c:g}"
          f"{', margin' if args.margin else ''}); each source held out:")
    for s, r in res.items():
        print(f"  {s:11s} EER {100 * r['eer']:5.2f} %  verdicts {100 * r['genuine_accepted']:.1f} / "
              f"{100 * r['impostors_rejected']:.1f}  studio weight {r['studio_weight']:.2f}")
    if args.no_renders:
        return 0
    from mie_core.scoring.condition import STUDIO, fit_condition_model
    from mie_core.scoring.sources import fit_real_fusion

    model = fit_condition_model(x["valid"], x["calib"], x["real"], c=args.c, inputs=inputs)
    studio = fusion.Fusion(*fit_real_fusion(trial_feats, draws))
    if args.margin:
        m = sources.auto_margin(trial_feats, draws, real.rows["source"].to_numpy(), model.proba(x["real"])[:, STUDIO],
                                own.weights, own.offset)
        studio = fusion.Fusion(studio.weights, studio.offset - m)
        print(f"margin fitted on every source: {m:.2f}")
    print("renders, the model fitted on every real source (EER %; genuine accepted / impostors rejected %):")
    for name in ("test", "wet"):
        part = parts[name]
        b, mem = members_of(part)
        d = protocol.protocol_draws(part.rows["instrument_str"].to_numpy(), 0, 5)
        f = [fusion.trial_features(b, ver.fusion, mem, x) for x in d]
        p_studio = model.proba(x[name])[:, STUDIO]
        rates = mode_rates(f, d, own, studio, p_studio)
        print(f"  {name:5s} mean P(studio) {p_studio.mean():.2f}  " + "  ".join(
            f"{m} {100 * r['eer']:.2f} ({100 * r['genuine_accepted']:.1f} / {100 * r['impostors_rejected']:.1f})"
            for m, r in rates.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
