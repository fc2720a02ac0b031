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
class NoteSpec:
    """One note to render. ``gain_db`` is the instrument's level correction."""

    soundfont: str  # path to an .sf2/.sf3 file
    bank: int
    program: int
    pitch: int
    velocity: int
    gain_db: float = 0.0


_LOADED: dict[str, object] = {}
_FLUSH_SAMPLES = 4096


def _soundfont(path: str):
    """The process-local loaded SoundFont for ``path`` (loading takes up to 2.5 s)."""
    sf = _LOADED.get(path)
    if sf is None:
        import tinysoundfont._tinysoundfont as tsf

        sf = tsf.SoundFont(str(path))
        sf.set_output(tsf.OutputMode.Mono, SAMPLE_RATE, 0.0)
        sf.set_max_voices(64)
        _LOADED[path] = sf
    return sf


def list_presets(path: str) -> list[tuple[int, int, str]]:
    """(bank, program, name) of every preset in a soundfont, sorted."""
    sf = _soundfont(str(path))
    out = []
    for bank in range(129):
        for program in range(128):
            if sf.get_preset_index(bank, program) >= 0:
                out.append((bank, program, sf.get_preset_name(bank, program)))
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


def to_int16(x: np.ndarray, gain_db: float = 0.0) -> np.ndarray:
    """Apply ``gain_db``, clip to full scale and quantise to int16 (round half to even)."""
    y = np.asarray(x, dtype=np.float64) * (10.0 ** (gain_db / 20.0))
    return np.rint(np.clip(y, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def render_note(spec: NoteSpec, held_s: float = HELD_S, release_s: float = RELEASE_S) -> np.ndarray:
    """One note as int16 (held_s + release_s) * 16000 samples, with the instrument gain."""
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
    torch). ``progress(done, total)`` is called as chunks finish.
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    n = len(specs)
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
