"""The recording-condition model on six signal features instead of the members' back-end
vectors: does it tell a studio recording from a room one on a source unlike the others?

    python benchmarks/studio_signal.py [--c 0.1]

Per clip (16 kHz, 512-sample frames): the noise floor (5th-percentile frame energy re. the
loudest, dB), the spectral flatness of the quietest fifth of frames, the 99 % roll-off of the
loudest fifth (kHz), their energy above 6 kHz (dB), the energy slope over the last 30 % of
frames (dB per frame) and the quiet frames' energy below 200 Hz (dB). Standardised on the
renders, the model's classes and the studio weights are those of
``benchmarks/studio_condition.py`` (the same rule, P(studio); each real source held out from
both fits). Prints mel+cqt's pooled real EER and each source's studio weight. The wet and
clean parts' cost is not measured here (their features need their audio: minutes).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)


def signal_features(x: np.ndarray, sr: int = 16000) -> list[float]:
    """The six numbers of one clip (module docstring)."""
    x = np.asarray(x, np.float32)
    if np.abs(x).max() > 2:  # int16 renders
        x = x / 32768.0
    n, hop = 512, 256
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    e = 10 * np.log10(spec.sum(1))
    quiet, loud = spec[e <= np.percentile(e, 20)], spec[e >= np.percentile(e, 80)]
    f = np.fft.rfftfreq(n, 1 / sr)
    cum = np.cumsum(loud.mean(0))
    tail = e[int(0.7 * len(e)):]
    return [float(np.percentile(e, 5) - e.max()),
            float(np.log(np.exp(np.mean(np.log(quiet), 1)).mean() / quiet.mean())),
            float(f[np.searchsorted(cum, 0.99 * cum[-1])] / 1000),
            float(10 * np.log10(loud.mean(0)[f > 6000].sum() / loud.mean(0).sum())),
            float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 2 else 0.0,
            float(10 * np.log10(quiet.mean(0)[f < 200].sum() / quiet.mean(0).sum()))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--c", type=float, default=0.1, help="the model's inverse L2 strength")
    args = p.parse_args()
    from sklearn.preprocessing import StandardScaler

    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import load_parts, real_sources_part
    from mie_core.scoring import fusion, sources
    from mie_core.service.verify import load_verifier

    prec, store = resolve_precision("auto"), EmbeddingStore()
    ver = load_verifier(Path("cache/models/mel+cqt"), prec)
    parts = load_parts(Corpus.load(default_corpus_dir()), ("valid", "calib"), "program_disjoint")
    parts["real"] = real_sources_part()
    feats = {n: np.array([signal_features(x) for x in part.audio()]) for n, part in parts.items()}
    real = parts["real"]
    emb = ver.join(*[embed_models({m.name: m}, real, store, prec)[m.name] for m in ver.member_paths])
    backends, members = ver.fusion_members(emb)
    draws = protocol.protocol_draws(real.rows["instrument_str"].to_numpy(), 0, 5)
    trial_feats = [fusion.trial_features(backends, ver.fusion, members, d) for d in draws]
    scaler = StandardScaler().fit(np.concatenate([feats["valid"], feats["calib"]]))
    z = {n: scaler.transform(v) for n, v in feats.items()}
    own = ver.fusion.fusion
    res = sources.measure_auto(trial_feats, draws, real.rows["source"].to_numpy(), z["real"], z["valid"], z["calib"],
                               own.weights, own.offset, c=args.c)
    print(f"mel+cqt, condition model on signal features (C {args.c:g}); each source held out:")
    for s, r in res.items():
        print(f"  {s:11s} EER {100 * r['eer']:5.2f} %  verdicts {100 * r['genuine_accepted']:.1f} / "
              f"{100 * r['impostors_rejected']:.1f}  studio weight {r['studio_weight']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
