"""The recording chain (mie_core.augment.chain): each stage against a reference or a property."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mie_core.augment import chain

SR = 16000
OFF = chain.ChainParams(p_room=0, p_eq=0, p_highpass=0, p_bandlimit=0, p_noise=0, p_bleed=0, gain_db=(0.0, 0.0),
                        p_clip=0, p_codec=0, p_delay=0, p_cut=0)


@pytest.fixture(scope="module")
def bank():
    return chain.build_room_bank(n_train=6, n_test=3, seed=5)


def tone(f=440.0, s=1.0, amp=0.3):
    t = np.arange(int(s * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_everything_off_is_the_identity(bank):
    x = np.stack([tone(), tone(220.0)])
    assert np.array_equal(chain.RecordingChain(OFF, bank)(x, np.random.default_rng(0)), x)


def test_same_generator_state_same_output_and_input_untouched(bank):
    x = np.stack([tone(), tone(330.0, amp=0.6)] * 4)
    keep = x.copy()
    c = chain.RecordingChain(replace(chain.TRAIN_PARAMS, p_codec=0.5), bank)
    a = c(x, np.random.default_rng(3), bleed=x[::-1])
    b = c(x, np.random.default_rng(3), bleed=x[::-1])
    assert np.array_equal(a, b) and np.array_equal(x, keep)
    assert not np.array_equal(a, c(x, np.random.default_rng(4), bleed=x[::-1]))
    assert np.isfinite(a).all() and np.abs(a).max() <= 1.0


def test_room_bank_parts_are_disjoint_and_start_at_the_direct_path(bank):
    train, test = bank.indices("train"), bank.indices("test")
    assert len(train) == 6 and len(test) == 3 and not set(train) & set(test)
    for i in train:
        for j in test:
            assert not np.allclose(bank.irs[i], bank.irs[j])
    assert (0.1 <= bank.rt60_s).all() and (bank.rt60_s <= 1.2).all()
    assert (np.argmax(np.abs(bank.irs), axis=1) < 16).all()
    # a longer RT60 leaves more energy after 50 ms
    late = (bank.irs[:, 800:] ** 2).sum(1) / (bank.irs ** 2).sum(1)
    assert np.corrcoef(bank.rt60_s, late)[0, 1] > 0.5


def test_room_stage_is_a_convolution_with_the_impulse_response(bank):
    p = replace(OFF, p_room=1.0)
    c = chain.RecordingChain(p, bank, part="test")
    x = np.zeros((1, 8000), np.float32)
    x[0, 100] = 0.5
    x[0, 3000:3400] = tone(s=0.025)
    rng = np.random.default_rng(0)
    y = c(x, rng)[0]
    # which room was drawn: the same draw order as the chain's
    rng = np.random.default_rng(0)
    rng.random((1, 10)), rng.uniform(0, 1, 1), rng.uniform(0, 1, 1), rng.uniform(0, 1, 1)
    room = c.room_idx[rng.integers(0, c.room_idx.size, 1)[0]]
    ref = np.convolve(x[0], bank.irs[room])[: x.shape[1]]
    ref *= np.sqrt(np.mean(x[0].astype(np.float64) ** 2) / np.mean(ref.astype(np.float64) ** 2))
    np.testing.assert_allclose(y, ref, atol=2e-4 * np.abs(ref).max())


def test_biquads_meet_their_design():
    w = 2 * np.pi * np.array([1000.0]) / SR
    h = chain._biquad_response("peak", np.array([1000.0]), np.array([1.0]), np.array([6.0]), w)
    assert 20 * np.log10(abs(h[0, 0])) == pytest.approx(6.0, abs=1e-9)
    w = 2 * np.pi * np.array([300.0, 20.0, 7000.0]) / SR
    hp = chain._biquad_response("highpass", np.array([300.0]), np.array([0.7071]), np.zeros(1), w)
    db = 20 * np.log10(np.abs(hp[0]))
    assert db[0] == pytest.approx(-3.01, abs=0.02) and db[1] < -40 and abs(db[2]) < 0.5


def test_noise_is_added_at_the_drawn_snr(bank):
    p = replace(OFF, p_noise=1.0, snr_db=(20.0, 20.0), noise_slope=(1.0, 1.0))
    x = np.stack([tone(amp=0.5)] * 4)
    y = chain.RecordingChain(p, bank)(x, np.random.default_rng(1))
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2, 1) / np.mean((y - x).astype(np.float64) ** 2, 1))
    np.testing.assert_allclose(snr, 20.0, atol=0.1)


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
@pytest.mark.parametrize("quality", [0.0, 0.5, 0.9999, 1.0])
def test_codec_round_trip_keeps_length_and_alignment(fmt, quality):
    x = tone(523.25, s=0.8)
    y = chain.codec_roundtrip(x, fmt, quality)
    assert y.shape == x.shape
    assert np.corrcoef(x[2000:-2000], y[2000:-2000])[0, 1] > 0.95


def test_cut_notes_decay_and_delayed_onsets_start_silent(bank):
    p = replace(OFF, p_delay=1.0, delay_s=(0.1, 0.1), p_cut=1.0, cut_after_s=(0.3, 0.3), cut_release_s=(0.05, 0.05))
    x = np.stack([np.full(SR, 0.5, np.float32)])
    y = chain.RecordingChain(p, bank)(x, np.random.default_rng(0))[0]
    assert np.all(y[: int(0.1 * SR)] == 0) and y[int(0.2 * SR)] == pytest.approx(0.5)
    assert abs(y[int(0.5 * SR)]) < 0.5 * 1e-3  # 0.1 s after the 50 ms release: below -60 dB


def test_wet_part_depends_on_the_note_not_on_its_neighbours(bank):
    audio = (np.stack([tone(220.0 * (k + 1), s=0.5) for k in range(4)]) * 32767).astype(np.int16)
    keys = ["a", "b", "c", "d"]
    whole = chain.wet_part(audio, bank, chain.TEST_PARAMS, 7, keys)
    some = chain.wet_part(audio[[2, 0]], bank, chain.TEST_PARAMS, 7, ["c", "a"])
    assert np.array_equal(some, whole[[2, 0]])
    assert not np.array_equal(chain.wet_part(audio, bank, chain.TEST_PARAMS, 8, keys), whole)


def test_params_are_validated():
    with pytest.raises(ValueError, match="p_room"):
        chain.ChainParams(p_room=1.5)
    with pytest.raises(ValueError, match="snr_db"):
        chain.ChainParams(snr_db=(30.0, 10.0))
    with pytest.raises(ValueError, match="codec"):
        chain.ChainParams(codec_formats=("aac",))


def test_chain_share_leaves_the_rest_of_a_batch_clean(bank):
    """``chain.share``: that share of a training batch goes through the chain, the other
    clips are the clean clips exactly; share 1 is the chain on every clip."""
    import pandas as pd

    from training.data import ClipSampler, NoteSet

    rng = np.random.default_rng(0)
    audio = (8000 * np.sin(2 * np.pi * rng.uniform(100, 800, (12, 1)) * np.arange(32000) / 16000)).astype(np.int16)
    notes = NoteSet(audio, pd.DataFrame({"i": range(12)}), np.arange(12) % 4, np.arange(12) % 2,
                    [f"i{k}" for k in range(4)], ["a", "b"])
    params = replace(chain.TRAIN_PARAMS, p_room=1.0, p_noise=1.0)

    def batch(share, chained=True):
        s = ClipSampler(notes, crop_s=1.0, augment_on=False, seed=3,
                        chain=chain.RecordingChain(params, bank) if chained else None, chain_share=share)
        return s.batch(400)[0]

    clean = batch(1.0, chained=False)
    half = batch(0.5)
    same = np.all(half == clean, axis=1)
    assert 0.4 < same.mean() < 0.6  # about half the clips untouched
    assert not np.all(batch(1.0) == clean, axis=1).any()  # share 1: every clip recorded
    # keep_clean (distillation) hands out the clips before the chain too, and draws nothing
    # more: the wet batch is the one a sampler without it makes
    s = ClipSampler(notes, crop_s=1.0, augment_on=False, seed=3, chain=chain.RecordingChain(params, bank),
                    chain_share=0.5, keep_clean=True)
    wet, _, _, before = s.batch(400)
    np.testing.assert_array_equal(wet, half)
    np.testing.assert_array_equal(before, clean)


def test_the_same_seed_builds_the_same_rooms():
    """The randomized image-source jitter is seeded from the bank's seed: two builds in one
    process (pyroomacoustics' own generator has moved on between them) are identical, and
    another seed gives other rooms."""
    a = chain.build_room_bank(n_train=2, n_test=1, seed=11)
    b = chain.build_room_bank(n_train=2, n_test=1, seed=11)
    np.testing.assert_array_equal(a.irs, b.irs)
    assert not np.array_equal(a.irs, chain.build_room_bank(n_train=2, n_test=1, seed=12).irs)


def test_the_shipped_room_bank_is_used_and_never_rebuilt(tmp_path, monkeypatch):
    """Every wet and calib result was made with the shipped bank, which no machine can build
    again: it is loaded wherever it exists, and a checkout without it is told so."""
    name = f"rooms_v{chain.ROOM_BANK_VERSION}_seed0.npz"
    shipped = chain.SHIPPED_ROOMS / name
    assert shipped.exists(), "the room bank is shipped in cache/rooms"
    bank = chain.room_bank(data_root=tmp_path)
    assert bank.irs.shape == (200, 12800) and (bank.part == "train").sum() == 160 and bank.seed == 0
    np.testing.assert_array_equal(bank.irs, chain.RoomBank.load(shipped).irs)
    assert not (tmp_path / "rooms").exists()
    monkeypatch.setattr(chain, "SHIPPED_ROOMS", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="git checkout cache/rooms"):
        chain.room_bank(data_root=tmp_path)


def _sampler(bank, seed=3, **kw):
    import pandas as pd

    from training.data import ClipSampler, NoteSet

    rng = np.random.default_rng(0)
    audio = (8000 * np.sin(2 * np.pi * rng.uniform(100, 800, (12, 1)) * np.arange(32000) / 16000)).astype(np.int16)
    notes = NoteSet(audio, pd.DataFrame({"i": range(12)}), np.arange(12) % 4, np.arange(12) % 2,
                    [f"i{k}" for k in range(4)], ["a", "b"])
    return ClipSampler(notes, crop_s=0.5, seed=seed, chain=chain.RecordingChain(chain.TRAIN_PARAMS, bank), **kw)


def test_parallel_batches_are_a_fixed_stream_that_resumes_exactly(bank):
    """``data.batch_workers``: worker j of n makes batches j, j+n, ... from its own generator,
    so two runs give the same stream whatever the timing, the stream is not n copies of one
    generator, and a stream rebuilt from a mid-stream state goes on exactly as the
    unbroken one (odd position: worker 1's turn)."""
    from training.data import ParallelBatches

    def take(stream, k):
        try:
            return [stream.next() for _ in range(k)], stream.state
        finally:
            stream.close()

    whole, _ = take(ParallelBatches(_sampler(bank), 6, workers=2, seed=7), 5)
    again, _ = take(ParallelBatches(_sampler(bank), 6, workers=2, seed=7), 5)
    for a, b in zip(whole, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(whole[0][0], whole[1][0])  # the two workers draw differently
    assert whole[0][0].shape == (6, 8000) and whole[0][0].dtype == np.float32
    first, state = take(ParallelBatches(_sampler(bank), 6, workers=2, seed=7), 3)
    assert state["turn"] == 1 and len(state["workers"]) == 2
    rest, _ = take(ParallelBatches(_sampler(bank, seed=99), 6, workers=2, state=state), 2)
    for a, b in zip(first + rest, whole):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="made by 2 workers, not 3"):
        ParallelBatches(_sampler(bank), 6, workers=3, state=state)


def test_a_failing_batch_worker_raises_with_its_traceback(bank):
    from training.data import ParallelBatches

    sampler = _sampler(bank)
    sampler.bounds = None  # every clip fails inside the worker (TypeError)
    stream = ParallelBatches(sampler, 4, workers=2)
    try:
        with pytest.raises(RuntimeError, match="batch worker 0 failed:(.|\\n)*TypeError"):
            stream.next()
    finally:
        stream.close()



def test_note_bounds_over_processes_equal_one_process():
    """Many notes' non-silent bounds are found over several processes (a GPU run renders
    90,000): the same bounds as one process, in order."""
    from training.data import _bounds

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((4500, 4000)) * 3000).astype(np.int16)
    audio[:, : int(rng.integers(1, 1000))] = 0
    audio[::3, 2500:] = 0
    one = _bounds(audio, 40.0, workers=1)
    np.testing.assert_array_equal(_bounds(audio, 40.0, workers=2), one)
    assert (one[::3, 1] < 3000).all() and (one[1::3, 1] > 3500).all()


def test_closing_the_batch_workers_is_prompt_with_batches_unread(bank):
    """A stopped run must not wait on its workers: each holds batches nobody will read
    (2 MB, more than a pipe buffers), which would keep it from exiting on its own."""
    import time

    from training.data import ParallelBatches

    stream = ParallelBatches(_sampler(bank), 64, workers=2)
    stream.next()
    time.sleep(1.0)  # the workers fill their queues
    t = time.perf_counter()
    stream.close()
    assert time.perf_counter() - t < 2.0
    assert not any(p.is_alive() for p in stream._procs)


def test_batch_workers_exit_when_the_trainer_is_killed(tmp_path):
    """A trainer killed with SIGKILL leaves no batch workers behind, though each still holds
    a batch nobody will read (before: they waited for ever to flush it)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import os, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from mie_core.augment import chain\n"
        "from test_chain import _sampler\n"
        "from training.data import ParallelBatches\n"
        "s = ParallelBatches(_sampler(chain.room_bank(seed=0)), 64, workers=2)\n"
        "s.next()\n"
        "print(*[p.pid for p in s._procs], flush=True)\n"
        "import time; time.sleep(1.0)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    repo = Path(__file__).resolve().parent.parent
    with open(tmp_path / "pids.txt", "w") as out:
        subprocess.run([sys.executable, "-c", script], cwd=repo, stdout=out, timeout=120)
    pids = [int(p) for p in (tmp_path / "pids.txt").read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}")]
    for p in alive:
        os.kill(p, 9)
    assert not alive


def test_pitch_labels_ride_along_without_changing_the_batches(bank):
    """``keep_pitch``: each clip's MIDI pitch comes last, -1 for a clip of concatenated notes;
    the clips themselves are those of a sampler without it (same seed, same stream)."""
    import pandas as pd

    from training.data import ClipSampler, NoteSet

    rng = np.random.default_rng(0)
    audio = (8000 * np.sin(2 * np.pi * rng.uniform(100, 800, (12, 1)) * np.arange(32000) / 16000)).astype(np.int16)
    pitches = np.arange(48, 60)
    notes = NoteSet(audio, pd.DataFrame({"pitch": pitches}), np.arange(12) % 4, np.arange(12) % 2,
                    [f"i{k}" for k in range(4)], ["a", "b"], pitches)
    with_p = ClipSampler(notes, crop_s=0.5, seed=5, concat_prob=0.5, concat_min_s=1.0, concat_max_s=1.5,
                         keep_pitch=True)
    without = ClipSampler(notes, crop_s=0.5, seed=5, concat_prob=0.5, concat_min_s=1.0, concat_max_s=1.5)
    x, yi, yf, yp = with_p.batch(64)
    x0, yi0, yf0 = without.batch(64)
    assert np.array_equal(x, x0) and np.array_equal(yi, yi0)
    single = yp >= 0
    assert 10 < single.sum() < 54  # about half the clips are concatenations (concat_prob 0.5)
    # a single note's pitch is its note's: the note's instrument index is pitch - 48 mod 4
    assert np.array_equal((yp[single] - 48) % 4, yi[single])
    assert set(yp[~single]) == {-1}
