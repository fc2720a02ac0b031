"""A classical baseline embedding: statistics of MFCCs.

Each clip becomes the mean and standard deviation over time of 20 MFCCs (40 mel
bands, 25 ms Hann frames, 10 ms hop, 16 kHz, DCT-II orthonormal), a 40-d vector
scored by cosine like the learned embeddings. Coefficients are standardised per
dimension over the set before scoring, so no dimension dominates the cosine.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import dct

from mie_core.nnet.sincconv import hz_to_mel, mel_to_hz


def mel_filterbank(n_mels: int = 40, n_fft: int = 512, sr: int = 16000, fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular mel filters (HTK mel scale)."""
    fmax = fmax or sr / 2
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        fb[m] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb


_FB = mel_filterbank()


def mfcc(x: np.ndarray, sr: int = 16000, n_mfcc: int = 20) -> np.ndarray:
    """(frames, n_mfcc) MFCCs of a 1-D float signal at 16 kHz."""
    win, hop, n_fft = 400, 160, 512
    x = np.asarray(x, dtype=np.float64)
    if x.size < win:
        x = np.pad(x, (0, win - x.size))
    n = 1 + (x.size - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (n, win), (x.strides[0] * hop, x.strides[0])) * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    logmel = np.log(power @ _FB.T + 1e-10)
    return dct(logmel, type=2, axis=1, norm="ortho")[:, :n_mfcc]


def mfcc_stats(clips, n_mfcc: int = 20) -> np.ndarray:
    """(n, 2 * n_mfcc) mean and std of MFCCs per clip, standardised over the set."""
    feats = []
    for c in clips:
        c = np.asarray(c)
        c = c.astype(np.float64) / 32768.0 if c.dtype == np.int16 else c
        m = mfcc(c, n_mfcc=n_mfcc)
        feats.append(np.concatenate([m.mean(0), m.std(0)]))
    f = np.asarray(feats)
    return ((f - f.mean(0)) / (f.std(0) + 1e-9)).astype(np.float32)
