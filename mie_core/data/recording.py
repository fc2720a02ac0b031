"""How a clip was recorded, in six numbers that describe the recording rather than the
instrument: the inputs of the shipped recording-condition model
(:mod:`mie_core.scoring.condition`, ``inputs="recording"``), which tells a render, a room or
phone recording and a studio recording apart without seeing the instrument (the members'
back-end vectors, its first inputs, carry both; docs/experiments/studio-condition.md,
"signal features"). :func:`recording_features` gives them for many clips at once, as the
pages and the library keep them beside each clip's embedding.

Per clip (16 kHz mono, 512-sample Hann frames, hop 256): the noise floor (the 5th-percentile
frame energy relative to the loudest frame, dB), the spectral flatness of the quietest fifth
of frames (log ratio of geometric to arithmetic mean power, <= 0), the 99 % roll-off of the
loudest fifth (kHz), their energy above 6 kHz (dB relative to all), the energy slope over the
last 30 % of frames (dB per frame: a release, a room's tail) and the quiet frames' energy
below 200 Hz (dB relative to all: hum, rumble).

>>> rng = np.random.default_rng(0)
>>> t = np.arange(16000) / 16000
>>> note = np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)          # a decaying tone, silence-free
>>> hiss = note + 0.01 * rng.standard_normal(t.size)            # the same through a noisy chain
>>> f, g = signal_features(note), signal_features(hiss)
>>> len(f), round(f[NAMES.index("roll-off")], 1)          # kHz: the tone's energy ends at 440 Hz
(6, 0.5)
>>> g[NAMES.index("quiet flatness")] > f[NAMES.index("quiet flatness")]  # noise is flat
True
"""
from __future__ import annotations

import numpy as np

NAMES = ("noise floor", "quiet flatness", "roll-off", "energy > 6 kHz", "tail slope", "quiet < 200 Hz")
FRAME, HOP = 512, 256


def signal_features(x: np.ndarray, sr: int = 16000) -> list[float]:
    """The six numbers of one clip (module docstring), in the order of :data:`NAMES`.

    ``x``: (n,) samples, float in [-1, 1] or int16-scaled (a render); at least one frame.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 1 or x.size < FRAME:
        raise ValueError(f"signal_features needs a mono clip of at least {FRAME} samples, not shape {x.shape}")
    if np.abs(x).max() > 2:  # int16 renders
        x = x / 32768.0
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP] * np.hanning(FRAME)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    e = 10 * np.log10(spec.sum(1))
    quiet, loud = spec[e <= np.percentile(e, 20)], spec[e >= np.percentile(e, 80)]
    f = np.fft.rfftfreq(FRAME, 1 / sr)
    cum = np.cumsum(loud.mean(0))
    tail = e[int(0.7 * len(e)):]
    return [float(np.percentile(e, 5) - e.max()),
            float(np.log(np.exp(np.mean(np.log(quiet), 1)).mean() / quiet.mean())),
            float(f[np.searchsorted(cum, 0.99 * cum[-1])] / 1000),
            float(10 * np.log10(loud.mean(0)[f > 6000].sum() / loud.mean(0).sum())),
            float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 2 else 0.0,
            float(10 * np.log10(quiet.mean(0)[f < 200].sum() / quiet.mean(0).sum()))]


def recording_features(clips) -> np.ndarray:
    """(n, 6) float32: :func:`signal_features` of each 16-kHz mono clip, in the order of :data:`NAMES`
    (a clip shorter than one frame, 32 ms, padded with silence to one).

    >>> t = np.arange(8000) / 16000
    >>> recording_features([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)]).shape
    (2, 6)
    """
    rows = [signal_features(np.pad(x, (0, max(0, FRAME - len(x))))) for x in clips]
    return np.asarray(rows, np.float32).reshape(len(rows), len(NAMES))
