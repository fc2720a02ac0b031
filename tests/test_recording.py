"""The six recording features (mie_core.data.recording): each moves the way the recording
it describes moves, on one synthetic note changed one way at a time."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from mie_core.data.recording import NAMES, signal_features

SR = 16000


def note(seconds: float = 2.0) -> np.ndarray:
    """A plucked-like harmonic note (220 Hz, ten partials up to 2.2 kHz) decaying to silence."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 11)) * np.exp(-4 * t)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def feature(x: np.ndarray, name: str) -> float:
    return signal_features(x, SR)[NAMES.index(name)]


def test_noise_raises_the_floor_and_flattens_the_quiet_frames():
    x = note()
    noisy = x + 0.003 * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    assert feature(noisy, "noise floor") > feature(x, "noise floor") + 20  # dB
    assert feature(noisy, "quiet flatness") > feature(x, "quiet flatness")
    assert feature(noisy, "energy > 6 kHz") > feature(x, "energy > 6 kHz")


def test_a_low_pass_codec_lowers_the_roll_off():
    x = note() + 0.002 * np.random.default_rng(1).standard_normal(2 * SR).astype(np.float32)
    low = sosfilt(butter(8, 1000, fs=SR, output="sos"), x).astype(np.float32)
    assert feature(low, "roll-off") < feature(x, "roll-off")
    assert feature(low, "energy > 6 kHz") < feature(x, "energy > 6 kHz") - 20


def test_a_room_s_tail_slows_the_decay_and_hum_fills_the_low_band():
    x = note()
    rng = np.random.default_rng(2)
    # a reverberation tail as long as the clip, decaying slower than the note (tau 0.4 s against 0.25 s)
    ir = rng.standard_normal(x.size) * np.exp(-np.arange(x.size) / (0.4 * SR))
    wet = np.convolve(x, ir)[: x.size]
    wet = (0.5 * wet / np.abs(wet).max()).astype(np.float32)
    assert feature(wet, "tail slope") > feature(x, "tail slope") + 0.1  # dB per frame: -0.35 against -0.56
    t = np.arange(x.size) / SR
    hum = x + 0.01 * np.sin(2 * np.pi * 50 * t).astype(np.float32)
    assert feature(hum, "quiet < 200 Hz") > feature(x, "quiet < 200 Hz") + 10


def test_int16_renders_and_floats_give_the_same_numbers_and_a_short_clip_is_refused():
    q = (note() * 32767).astype(np.int16)
    np.testing.assert_allclose(signal_features(q), signal_features(q.astype(np.float32) / 32768), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="at least 512 samples"):
        signal_features(np.zeros(100, np.float32))


def test_the_store_computes_a_part_s_recording_features_once(tmp_path):
    """EmbeddingStore.recording: the first call computes and writes, every later one reads the
    same array without asking for the audio again; a clip shorter than a frame is padded."""
    from mie_core.data.recording import recording_features
    from mie_core.evaluation.embeddings import EmbeddingStore

    clips = [note(1.0), note(0.5), note(0.01)]  # the last: 160 samples, under one 512-sample frame
    store = EmbeddingStore(tmp_path)
    first = store.recording("k1", lambda: clips)
    assert first.shape == (3, len(NAMES)) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, recording_features(clips))

    def no_audio():
        raise AssertionError("read back, not computed again")

    np.testing.assert_array_equal(store.recording("k1", no_audio), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recording_k1.npy"]


def test_a_cache_s_recording_features_must_match_its_notes(tmp_path):
    import pandas as pd

    from mie_core.service import workbench

    (tmp_path / "embeddings").mkdir()
    pd.DataFrame({"note_str": ["a", "b"]}).to_parquet(tmp_path / "embeddings" / "notes_test.parquet")
    cache = workbench.Cache(tmp_path)
    assert cache.recording("test") is None  # a cache built before them
    np.save(tmp_path / "embeddings" / workbench.recording_file("test"), np.zeros((2, 6), np.float32))
    assert workbench.Cache(tmp_path).recording("test").shape == (2, 6)
    np.save(tmp_path / "embeddings" / workbench.recording_file("test"), np.zeros((3, 6), np.float32))
    with pytest.raises(ValueError, match="not the six recording features of the 2 test notes"):
        workbench.Cache(tmp_path).recording("test")
