"""Are two notes the same recording? A check for sources that share samples.

Two SoundFonts (or a SoundFont and a real recording) may hold the same sampled note:
MuseScore General grew out of FluidR3, and freepats shares samples with Merlin. Such
pairs must never be split between training and test. Raw waveform correlation cannot
tell: two different recordings of one steady pitch correlate almost perfectly at some
lag. What stays the same only in the same recording is the fine detail of the spectrum
over time (partial amplitudes, noise, inharmonicity): :func:`similarity` is the Pearson
correlation of two notes' log-magnitude spectrograms over their first 0.6 s after the
onset, best over small time shifts. On our SoundFonts (``benchmarks/shared_recordings.py``)
shared samples score 0.98-1.00; different recordings of one instrument at one pitch score
0.66-0.80 in the median and at most 0.92.
"""
from __future__ import annotations

import numpy as np

from mie_core.data.audio import SAMPLE_RATE, trim_bounds

N_FFT = 1024
HOP = 256
FLOOR_DB = 80.0
BINS = slice(2, 400)  # 31 Hz to 6.2 kHz at 16 kHz


def log_spectrogram(x: np.ndarray, sr: int = SAMPLE_RATE, seconds: float = 0.6) -> np.ndarray:
    """(frames, 398) dB magnitudes of the first ``seconds`` after the onset (40 dB trim),
    floored ``FLOOR_DB`` below the loudest bin."""
    start, _ = trim_bounds(np.asarray(x, np.float32), sr, top_db=40.0)
    x = np.asarray(x[start:start + int(seconds * sr)], np.float64)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP] * np.hanning(N_FFT)
    s = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) + 1e-9)
    return np.maximum(s, s.max() - FLOOR_DB)[:, BINS]


def similarity(a: np.ndarray, b: np.ndarray, sr: int = SAMPLE_RATE, max_shift_frames: int = 8) -> float:
    """Correlation in [-1, 1] of two notes' log spectrograms (:func:`log_spectrogram`), best
    over shifts of up to ``max_shift_frames`` hops (128 ms); 1 for the same audio."""
    A, B = log_spectrogram(a, sr), log_spectrogram(b, sr)
    best = -1.0
    for lag in range(-max_shift_frames, max_shift_frames + 1):
        x, y = (A[lag:], B) if lag >= 0 else (A, B[-lag:])
        n = min(len(x), len(y))
        if n < 5:
            continue
        u, v = x[:n].ravel(), y[:n].ravel()
        if u.std() == 0 or v.std() == 0:
            continue
        best = max(best, float(np.corrcoef(u, v)[0, 1]))
    return best
