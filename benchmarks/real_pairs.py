"""How each member of a fused system, alone, tells apart the real instruments its verdicts
confuse, and how its genuine scores fall with the pitch gap to the enrolment.

    python benchmarks/real_pairs.py [--system cache/models/mel+cqt] [--draws 20] [--score asnorm]
    python benchmarks/real_pairs.py --alone clean=cache/models/cqt122/clean --alone NAME=CHECKPOINT

The held-out verdicts (``benchmarks/held_out_verdicts.py --confusions``) accept mostly
impostors of the enrolled instrument's own kind: the other real piano, the other real
guitars. For each such (enrolled <- impostor) pair and each member, the paper's enrolment
(5 notes of the enrolled instrument, the same draws as every real figure) is scored against
every other note of it (genuine) and every note of the impostor instrument, by the member's
own back-end (``--score``: ``centred`` cosine or ``asnorm`` under its enrolment rule); the
table gives the pair's EER %. The second table splits the genuine and impostor trials of each
enrolled instrument by the test note's gap (semitones) to its nearest enrolment note and gives
each member's EER per band, and the correlation of score and gap among genuine and among
impostor trials: register the embedding keeps shows as genuine scores that fall with the
gap while the impostors' do not move. Nothing is fitted; seconds from the embedding store.

``--alone NAME=PATH`` (repeatable) scores model checkpoints without a back-end instead (a run
that no system holds yet): the cosine to the enrolment's mean, both centred on the real notes'
mean; one table, each pair's EER % with the correlation of genuine score and gap beside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _common  # puts the repository on the path; held_out_system

PAIRS = (("salamander_piano", "tonejs_piano"), ("tonejs_piano", "salamander_piano"),
         ("tonejs_guitar_acoustic", "tonejs_guitar_nylon"), ("tonejs_guitar_acoustic", "tonejs_guitar_electric"),
         ("tonejs_guitar_electric", "tonejs_guitar_acoustic"), ("tonejs_guitar_nylon", "tonejs_guitar_acoustic"),
         ("tonejs_guitar_acoustic", "tonejs_piano"), ("tonejs_saxophone", "tonejs_harmonium"),
         ("tonejs_trumpet", "tonejs_trombone"))
BANDS = ((0, 2), (2, 6), (6, 128))  # semitones from the test note to its nearest enrolment note: [lo, hi)


def pair_trials(labels, enroll: np.ndarray, enrolled: str, impostors) -> tuple[np.ndarray, np.ndarray]:
    """Test clips for one enrolment: every other clip of ``enrolled`` then every clip whose
    label is in ``impostors``; returns (test indices, target mask)."""
    labels = np.asarray(labels)
    genuine = np.setdiff1d(np.flatnonzero(labels == enrolled), enroll)
    impostor = np.flatnonzero(np.isin(labels, list(impostors)))
    return np.r_[genuine, impostor], np.r_[np.ones(genuine.size, bool), np.zeros(impostor.size, bool)]


def gap_to_enrolment(pitch: np.ndarray, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Semitones from each test clip's pitch to the nearest enrolment clip's, (n_test,)."""
    pitch = np.asarray(pitch, float)
    return np.abs(pitch[test][:, None] - pitch[enroll][None, :]).min(axis=1)


def over_draws(score, draws, labels, pitch, enrolled: str, impostors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, target, gaps) of ``enrolled`` against itself and ``impostors`` over every draw's
    enrolment; ``score(trials)`` scores one :class:`mie_core.scoring.trials.Trials` list."""
    from mie_core.scoring.trials import Trials

    out = [], [], []
    for d in draws:
        enroll = d.enroll[list(d.model_label).index(enrolled)]
        test, target = pair_trials(labels, enroll, enrolled, impostors)
        tr = Trials(enroll[None], np.array([enrolled]), np.zeros(test.size, int), test, target)
        for acc, x in zip(out, (score(tr), target, gap_to_enrolment(pitch, enroll, test))):
            acc.append(x)
    return tuple(np.concatenate(x) for x in out)


def short(label: str) -> str:
    """An instrument label without the tonejs prefix."""
    return label.replace("tonejs_", "")


def banded_eers(scores, target, gaps, bands=BANDS) -> list[float]:
    """EER (fraction) of the trials whose gap lies in each band [lo, hi); nan where a band lacks
    either class."""
    from mie_core.scoring import metrics

    scores, target, gaps = map(np.asarray, (scores, target, gaps))
    out = []
    for lo, hi in bands:
        m = (gaps >= lo) & (gaps < hi)
        t, n = scores[m & target], scores[m & ~target]
        out.append(metrics.eer(t, n) if t.size and n.size else float("nan"))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", default="cache/models/mel+cqt", help="a fused system's folder")
    p.add_argument("--draws", type=int, default=20, help="enrolment draws (default 20, as the shipped real figures)")
    p.add_argument("--score", default="asnorm", choices=("centred", "asnorm"), help="each member's score")
    p.add_argument("--alone", action="append", metavar="NAME=PATH",
                   help="a model checkpoint scored alone, centred cosine to the enrolment mean (repeatable)")
    args = p.parse_args()
    if args.alone:
        return alone(args.alone, args.draws)
    from mie_core.scoring import metrics
    from mie_core.scoring.backend import trial_scores

    h = _common.held_out_system(Path(args.system), args.draws)
    rows, names = h["real"].rows, list(h["ver"].fusion.members)
    labels, pitch = rows["instrument_str"].to_numpy(), rows["pitch"].to_numpy()
    pairs = [(a, b) for a, b in PAIRS if (labels == a).sum() > 5 and (labels == b).any()]

    def scored(member: int, enrolled: str, impostors):
        be, emb = h["backends"][member], h["members"][member]
        return over_draws(lambda tr: trial_scores(be, emb, tr)[args.score], h["draws"], labels, pitch, enrolled, impostors)

    print(f"{args.system}: each member alone ({args.score}), EER % of the enrolled instrument's genuine notes "
          f"against every note of one impostor instrument, {args.draws} enrolment draws\n")
    print("| member | " + " | ".join(f"{short(a)} <- {short(b)}" for a, b in pairs) + " |")
    print("|---|" + "---:|" * len(pairs))
    for m, name in enumerate(names):
        cells = []
        for a, b in pairs:
            s, t, _ = scored(m, a, [b])
            cells.append(f"{100 * metrics.eer(s[t], s[~t]):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    enrolled = sorted({a for a, _ in pairs})
    print(f"\nBy the gap (semitones) from the test note to its nearest enrolment note: EER % per band "
          f"({', '.join(f'{lo}-{hi}' for lo, hi in BANDS[:-1])}, {BANDS[-1][0]}+), against the impostor "
          "instruments above; then the correlation of score and gap among genuine / impostor trials\n")
    print("| enrolled | member | " + " | ".join(f"gap {lo}-{hi}" if hi < 128 else f"gap {lo}+" for lo, hi in BANDS)
          + " | corr genuine | corr impostor |")
    print("|---|---|" + "---:|" * (len(BANDS) + 2))
    for a in enrolled:
        imps = [b for x, b in pairs if x == a]
        for m, name in enumerate(names):
            s, t, g = scored(m, a, imps)
            bands = " | ".join("-" if np.isnan(e) else f"{100 * e:.1f}" for e in banded_eers(s, t, g))
            print(f"| {short(a)} | {name} | {bands} | {np.corrcoef(s[t], g[t])[0, 1]:+.2f} | "
                  f"{np.corrcoef(s[~t], g[~t])[0, 1]:+.2f} |")
    return 0


def alone(specs, n_draws: int) -> int:
    """``--alone``: each checkpoint's centred cosine on the pairs, with the genuine score-gap correlation."""
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models
    from mie_core.evaluation.parts import real_sources_part
    from mie_core.evaluation.report import parse_model_arg
    from mie_core.scoring import metrics
    from mie_core.scoring.trials import score_trials

    real = real_sources_part()
    if real is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    labels, pitch = real.rows["instrument_str"].to_numpy(), real.rows["pitch"].to_numpy()
    draws = protocol.protocol_draws(labels, 0, n_draws)
    pairs = [(a, b) for a, b in PAIRS if (labels == a).sum() > 5 and (labels == b).any()]
    embs = embed_models(dict(parse_model_arg(s) for s in specs), real, EmbeddingStore(), "fp32")
    print(f"each model alone, cosine to the enrolment mean centred on the real notes' mean, {n_draws} draws: "
          "EER % (correlation of genuine score and gap)\n")
    print("| model | " + " | ".join(f"{short(a)} <- {short(b)}" for a, b in pairs) + " |")
    print("|---|" + "---:|" * len(pairs))
    for name, e in embs.items():
        v = e - e.mean(axis=0)
        cells = []
        for a, b in pairs:
            s, t, g = over_draws(lambda tr: score_trials(v, tr), draws, labels, pitch, a, [b])
            cells.append(f"{100 * metrics.eer(s[t], s[~t]):.1f} ({np.corrcoef(s[t], g[t])[0, 1]:+.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
