"""Rendering SoundFont notes: one code path for every note the project ever plays.

A note is (soundfont file, bank, program, MIDI pitch, MIDI velocity). It is rendered
with ``tinysoundfont`` straight at 16 kHz mono: note-on at t = 0, held for
``held_s`` (3 s, as NSynth), note-off, then ``release_s`` (1 s) of release. The
synthesiser is reset before every note and the quick fade-out of any earlier voice is rendered
away, so a note never depends on what was rendered before it: the same note gives
the same bytes in any process, in any order (tested).

Levels: SoundFont presets differ by tens of dB. Each instrument carries a gain (dB)
chosen when the corpus is built (its loudest note peaks at -1 dBFS); velocity still
changes the level within an instrument, as it does in NSynth.

:func:`render_many` renders a list of notes over worker processes into one int16
array (n, samples): 128 kB per 4-s note.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

SAMPLE_RATE = 16000
HELD_S = 3.0
RELEASE_S = 1.0


@dataclass(frozen=True)
class Performance:
    """How a musician plays one note, instead of a held note at constant pitch and level.

    held_s: time from note-on to note-off (the release follows naturally).
    vibrato_hz / vibrato_cents: periodic pitch modulation (peak deviation), fading in over
        vibrato_onset_s as players do.
    drift_cents: slow pitch drift, a random walk smoothed over about 0.3 s, peak deviation.
    expression: CC11 (expression) at the onset, at its peak time (fraction of held_s) and
        at note-off, each 0..1: (1, 0.5, 1) is flat, (0.3, 0.6, 1) a swell, (1, 0.1, 0.3) a
        decaying note. Swells also soften the onset.
    seed: the drift's random walk.
    """

    held_s: float = HELD_S
    vibrato_hz: float = 0.0
    vibrato_cents: float = 0.0
    vibrato_onset_s: float = 0.3
    drift_cents: float = 0.0
    expression: tuple = (1.0, 0.5, 1.0)
    seed: int = 0


@dataclass(frozen=True)
class NoteSpec:
    """One note to render. ``gain_db`` is the instrument's level correction; ``performance``
    (None: held ``HELD_S`` at constant pitch and level, as NSynth) how it is played."""

    soundfont: str  # path to an .sf2/.sf3 file
    bank: int
    program: int
    pitch: int
    velocity: int
    gain_db: float = 0.0
    performance: Performance | None = None


_LOADED: dict[str, object] = {}
_FLUSH_SAMPLES = 4096


def _soundfont(path: str):
    """The process-local loaded SoundFont for ``path`` (loading takes up to 2.5 s).

    The file's structure is checked first (:func:`mie_core.data.sf2check.checked`): a truncated
    or crafted file raises :class:`mie_core.data.sf2check.SoundFontError` naming it, instead of
    crashing the process inside the C renderer.
    """
    sf = _LOADED.get(path)
    if sf is None:
        import tinysoundfont._tinysoundfont as tsf

        from mie_core.data.sf2check import checked

        checked(path)
        sf = tsf.SoundFont(str(path))
        sf.set_output(tsf.OutputMode.Mono, SAMPLE_RATE, 0.0)
        sf.set_max_voices(64)
        _LOADED[path] = sf
    return sf


def list_presets(path: str) -> list[tuple[int, int, str]]:
    """(bank, program, name) of every preset in a soundfont, sorted."""
    from mie_core.data.sf2check import checked

    sf = _soundfont(str(path))
    names = checked(str(path))["preset_names"]  # decoded by us: the renderer reads names as UTF-8 only
    out = []
    for bank in range(129):
        for program in range(128):
            if sf.get_preset_index(bank, program) >= 0:
                out.append((bank, program, names.get((bank, program)) or f"bank {bank} program {program}"))
    return out


def render_raw(
    path: str, bank: int, program: int, pitch: int, velocity: int,
    held_s: float = HELD_S, release_s: float = RELEASE_S,
) -> np.ndarray:
    """The synthesiser's output for one note, float32 (n,) at 16 kHz, no gain applied."""
    sf = _soundfont(str(path))
    held = int(round(held_s * SAMPLE_RATE))
    rel = int(round(release_s * SAMPLE_RATE))
    buf = bytearray(4 * (held + rel))
    view = memoryview(buf)
    if sf.get_preset_index(bank, program) < 0:
        raise KeyError(f"{os.path.basename(path)} has no preset bank {bank} program {program}")
    # tsf's reset() only fades voices out quickly; render them to silence so no tail of an
    # earlier note is mixed in and voice slots are allocated from the first again
    sf.reset()
    sf.render(memoryview(bytearray(4 * _FLUSH_SAMPLES)))
    sf.channel_set_bank(0, bank)
    sf.channel_set_preset_number(0, program, False)
    sf.channel_note_on(0, int(pitch), float(velocity) / 127.0)
    sf.render(view[: 4 * held])
    sf.channel_note_off(0, int(pitch))
    sf.render(view[4 * held :])
    sf.reset()
    return np.frombuffer(buf, dtype=np.float32).copy()


BLOCK = 160  # 10 ms: pitch wheel and expression are updated once per block
PITCH_RANGE_SEMITONES = 2


def render_performed(path: str, bank: int, program: int, pitch: int, velocity: int, perf: Performance,
                     total_s: float = HELD_S + RELEASE_S) -> np.ndarray:
    """One note played as ``perf`` says, float32 (total_s * 16000,) at 16 kHz, no gain applied.

    Pitch (wheel, +-2 semitones) and expression (CC11) change every 10 ms; note-off at
    ``perf.held_s`` (at most ``total_s`` - 0.05 s), then the preset's own release.
    """
    sf = _soundfont(str(path))
    n = int(round(total_s * SAMPLE_RATE))
    n_blocks = -(-n // BLOCK)
    buf = bytearray(4 * n_blocks * BLOCK)
    view = memoryview(buf)
    if sf.get_preset_index(bank, program) < 0:
        raise KeyError(f"{os.path.basename(path)} has no preset bank {bank} program {program}")
    held = min(max(perf.held_s, 0.05), total_s - 0.05)
    t = np.arange(n_blocks) * BLOCK / SAMPLE_RATE
    rng = np.random.default_rng(perf.seed)
    cents = np.zeros(n_blocks)
    if perf.vibrato_cents > 0 and perf.vibrato_hz > 0:
        fade = np.clip(t / max(perf.vibrato_onset_s, 1e-3), 0, 1)
        cents += perf.vibrato_cents * fade * np.sin(2 * np.pi * perf.vibrato_hz * t + rng.uniform(0, 2 * np.pi))
    if perf.drift_cents > 0:
        walk = np.cumsum(rng.standard_normal(n_blocks))
        k = 30  # smoothed over 0.3 s
        walk = np.convolve(walk, np.ones(k) / k, mode="same")
        walk -= walk[0]
        cents += perf.drift_cents * walk / (np.abs(walk).max() + 1e-9)
    wheel = np.clip(np.rint(8192 + 8192 * cents / (100 * PITCH_RANGE_SEMITONES)), 0, 16383).astype(int)
    e0, peak, e1 = perf.expression
    tp = max(peak * held, 1e-3)
    expr = np.where(t < tp, e0 + (1 - e0) * t / tp, 1 + (e1 - 1) * np.clip((t - tp) / max(held - tp, 1e-3), 0, 1))
    cc11 = np.clip(np.rint(127 * expr), 0, 127).astype(int)
    sf.reset()
    sf.render(memoryview(bytearray(4 * _FLUSH_SAMPLES)))
    sf.channel_set_bank(0, bank)
    sf.channel_set_preset_number(0, program, False)
    sf.channel_set_pitch_range(0, float(PITCH_RANGE_SEMITONES))
    sf.channel_set_pitch_wheel(0, int(wheel[0]))
    sf.channel_midi_control(0, 11, int(cc11[0]))
    sf.channel_note_on(0, int(pitch), float(velocity) / 127.0)
    off_block = int(round(held * SAMPLE_RATE / BLOCK))
    last_w, last_e = wheel[0], cc11[0]
    for b in range(n_blocks):
        if b == off_block:
            sf.channel_note_off(0, int(pitch))
        if wheel[b] != last_w:
            sf.channel_set_pitch_wheel(0, int(wheel[b]))
            last_w = wheel[b]
        if b < off_block and cc11[b] != last_e:
            sf.channel_midi_control(0, 11, int(cc11[b]))
            last_e = cc11[b]
        sf.render(view[4 * b * BLOCK : 4 * (b + 1) * BLOCK])
    sf.reset()
    sf.channel_set_pitch_wheel(0, 8192)
    sf.channel_midi_control(0, 11, 127)
    return np.frombuffer(buf, dtype=np.float32)[:n].copy()


def draw_performance(rng: np.random.Generator, held_s: tuple = (0.2, 3.0), p_vibrato: float = 0.5,
                     vibrato_hz: tuple = (4.0, 7.0), vibrato_cents: tuple = (5.0, 40.0), p_drift: float = 0.5,
                     drift_cents: tuple = (2.0, 15.0), p_swell: float = 0.25, p_decay: float = 0.25) -> Performance:
    """A random way of playing a note; every draw from ``rng``. Note lengths are log-uniform
    in ``held_s`` (many short notes, as in real playing)."""
    h = float(np.exp(rng.uniform(np.log(held_s[0]), np.log(held_s[1]))))
    u = rng.random(4)
    vib = (float(rng.uniform(*vibrato_hz)), float(rng.uniform(*vibrato_cents))) if u[0] < p_vibrato else (0.0, 0.0)
    drift = float(rng.uniform(*drift_cents)) if u[1] < p_drift else 0.0
    if u[2] < p_swell:
        expr = (float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.7, 1.0)))
    elif u[2] < p_swell + p_decay:
        expr = (1.0, float(rng.uniform(0.02, 0.2)), float(rng.uniform(0.2, 0.6)))
    else:
        expr = (1.0, 0.5, 1.0)
    return Performance(h, vib[0], vib[1], float(rng.uniform(0.1, 0.5)), drift, expr, int(rng.integers(2**31)))


def to_int16(x: np.ndarray, gain_db: float = 0.0) -> np.ndarray:
    """Apply ``gain_db``, clip to full scale and quantise to int16 (round half to even)."""
    y = np.asarray(x, dtype=np.float64) * (10.0 ** (gain_db / 20.0))
    return np.rint(np.clip(y, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def render_note(spec: NoteSpec, held_s: float = HELD_S, release_s: float = RELEASE_S) -> np.ndarray:
    """One note as int16 (held_s + release_s) * 16000 samples, with the instrument gain."""
    if spec.performance is not None:
        raw = render_performed(spec.soundfont, spec.bank, spec.program, spec.pitch, spec.velocity, spec.performance,
                               held_s + release_s)
    else:
        raw = render_raw(spec.soundfont, spec.bank, spec.program, spec.pitch, spec.velocity, held_s, release_s)
    return to_int16(raw, spec.gain_db)


def _render_chunk(args: tuple[list[NoteSpec], float, float]) -> np.ndarray:
    specs, held_s, release_s = args
    n = int(round((held_s + release_s) * SAMPLE_RATE))
    out = np.empty((len(specs), n), dtype=np.int16)
    for i, s in enumerate(specs):
        out[i] = render_note(s, held_s, release_s)
    return out


def default_workers() -> int:
    """Worker processes for rendering: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


# Below this many notes, ``workers=None`` renders in this process: a spawned worker first
# imports numpy, tinysoundfont and its parent's main module (the trainer's imports torch)
# and loads each soundfont it needs anew, while one core renders 400-1,000 notes a second.
# In a trainer, the tiny test corpus's 337 training notes took 0.8 s in this process and
# 9.4 s over two spawned ones; `python benchmarks/render_speed.py` on 2 cores: two processes
# take 6.3x, 2.2x and 3.3x the time of one at 337, 1,024 and 4,096 notes (2026-11-27).
MIN_POOL_NOTES = 4096


def render_many(
    specs: Sequence[NoteSpec],
    workers: int | None = None,
    held_s: float = HELD_S,
    release_s: float = RELEASE_S,
    chunk: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Render ``specs`` into an int16 array (len(specs), samples), in order.

    Notes are grouped by soundfont so a worker loads each soundfont once; chunks of
    ``chunk`` notes go to ``workers`` processes (``spawn``, safe beside threads and
    torch). ``workers=None`` uses every usable core for :data:`MIN_POOL_NOTES` notes or more
    and this process alone below that, where starting the processes would take longer than
    the rendering. ``progress(done, total)`` is called as chunks finish.
    """
    n = len(specs)
    if workers is None:
        workers = default_workers() if n >= MIN_POOL_NOTES else 1
    workers = max(1, int(workers))
    n_samples = int(round((held_s + release_s) * SAMPLE_RATE))
    out = np.empty((n, n_samples), dtype=np.int16)
    if n == 0:
        return out
    order = sorted(range(n), key=lambda i: (specs[i].soundfont, specs[i].bank, specs[i].program))
    chunks = [order[i : i + chunk] for i in range(0, n, chunk)]
    jobs = [([specs[i] for i in idx], held_s, release_s) for idx in chunks]
    done = 0
    if workers == 1 or len(chunks) == 1:
        results: Iterable[np.ndarray] = map(_render_chunk, jobs)
        for idx, arr in zip(chunks, results):
            out[idx] = arr
            done += len(idx)
            if progress:
                progress(done, n)
        return out
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        for idx, arr in zip(chunks, pool.map(_render_chunk, jobs)):
            out[idx] = arr
            done += len(idx)
            if progress:
                progress(done, n)
    return out
