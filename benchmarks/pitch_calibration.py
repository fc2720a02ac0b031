"""Does the pitch gap, used in the score itself, lower the EER? Side by side on identical trials.

    python benchmarks/pitch_calibration.py [--models cqt122,mel122]

Genuine scores fall with the pitch distance between a test note and its enrolment notes
(README, "How far the test note lies from the enrolment"). Speaker verification answers
a mismatch it can measure (duration, say) with a quality measure in the calibration; here
the quality is the gap (semitones / 12) from the test note to the nearest enrolment note.
Per shipped model alone (its own back-end, soft-max AS-norm as shipped): a logistic
regression on (score, gap, score x gap) fitted on the valid instruments' trials, then the
EER of its output against the score's on the clean test part and the real part (the same
5 draws of the paper's protocol for both readers; pitches from the notes' labels, an upper
bound for what estimated ones give). Reads only the shipped cache (seconds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import metrics  # noqa: E402
from mie_core.data.pitch import pitch_gaps  # noqa: E402
from mie_core.scoring.backend import Backend, pooled_asnorm  # noqa: E402

CACHE = Path(__file__).resolve().parent.parent / "cache"


def trial_features(be: Backend, emb: np.ndarray, midi: np.ndarray, tr) -> np.ndarray:
    """(n_trials, 3): the shipped score, the gap in octaves, their product."""
    v = be.vectors(emb)
    s = pooled_asnorm(v[tr.enroll], v, tr.model, tr.test, be.cohort, be.top_n, be.rule, be.temperature)
    gap = np.array([pitch_gaps(midi[[t]], midi[tr.enroll[m]])[0] for m, t in zip(tr.model, tr.test)]) / 12.0
    return np.stack([s, gap, s * gap], axis=1)


def main() -> int:
    from sklearn.linear_model import LogisticRegression

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="cqt122,mel122", help="shipped model folders in cache/models")
    args = p.parse_args()
    print(f"{'model':8s} {'part':5s} {'score EER %':>11s} {'+ pitch gap':>11s} {'ratio':>6s}")
    for name in args.models.split(","):
        be = Backend.load(CACHE / "models" / name)
        data = {}
        for part in ("valid", "test", "real"):
            rows = pd.read_parquet(CACHE / "embeddings" / f"notes_{part}.parquet")
            emb = np.load(CACHE / "embeddings" / f"{name}_{part}.npy").astype(np.float32)
            draws = protocol.protocol_draws(rows["instrument_str"].to_numpy(), 0, 5)
            data[part] = [(trial_features(be, emb, rows["pitch"].to_numpy(float), tr), tr.target) for tr in draws]
        x = np.concatenate([f for f, _ in data["valid"]])
        y = np.concatenate([t for _, t in data["valid"]])
        qmf = LogisticRegression(C=10.0).fit(x, y)
        for part in ("test", "real"):
            base = np.mean([metrics.eer(f[t, 0], f[~t, 0]) for f, t in data[part]])
            llr = [(qmf.decision_function(f), t) for f, t in data[part]]
            new = np.mean([metrics.eer(s[t], s[~t]) for s, t in llr])
            print(f"{name:8s} {part:5s} {100 * base:11.2f} {100 * new:11.2f} {new / base:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
