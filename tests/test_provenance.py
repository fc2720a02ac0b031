"""Same recording or not (mie_core.data.provenance): the property the shared-recordings check relies on."""
from __future__ import annotations

import numpy as np

from mie_core.data import audio, provenance

SR = 16000


def _tone(partials: list[float], noise_seed: int, hz: float = 220.0, seconds: float = 1.5) -> np.ndarray:
    """A note: harmonic partials with these amplitudes, a decaying envelope and its own breath noise."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(a * np.sin(2 * np.pi * hz * (k + 1) * t + k) for k, a in enumerate(partials))
    x = x * np.exp(-t * 1.5) + 0.01 * np.random.default_rng(noise_seed).standard_normal(len(t))
    onset = np.zeros(SR // 10)
    return np.concatenate([onset, x]).astype(np.float32) * 0.3


def test_the_same_audio_is_one_and_a_resampled_copy_stays_near_it():
    a = _tone([1.0, 0.5, 0.3, 0.2, 0.1], noise_seed=1)
    assert abs(provenance.similarity(a, a) - 1.0) < 1e-9
    copy = audio.resample(audio.resample(a, SR, 31571), 31571, SR)  # a SoundFont's sample rate and back
    assert provenance.similarity(a, copy[: len(a)]) > 0.98
    shifted = np.concatenate([np.zeros(700, np.float32), a])  # another onset, off the hop grid
    assert provenance.similarity(a, shifted) > 0.95


def test_another_recording_of_the_same_pitch_scores_lower_than_any_copy():
    a = _tone([1.0, 0.5, 0.3, 0.2, 0.1], noise_seed=1)
    same_partials_other_take = _tone([1.0, 0.5, 0.3, 0.2, 0.1], noise_seed=2)
    other_instrument = _tone([1.0, 0.05, 0.6, 0.02, 0.4], noise_seed=3)
    copy = audio.resample(audio.resample(a, SR, 31571), 31571, SR)[: len(a)]
    take, other = provenance.similarity(a, same_partials_other_take), provenance.similarity(a, other_instrument)
    assert other < take < provenance.similarity(a, copy)
    assert other < 0.9
