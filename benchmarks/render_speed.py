"""SoundFont rendering throughput: 4-s notes per second, on one core and on all, and where
spreading the notes over processes starts to pay.

    python benchmarks/render_speed.py [--notes 2000] [--sizes 337,1024,4096]

Renders the same notes (every 10th preset of each available default soundfont,
pitches 36-84, velocity 100) once in this process and once over all usable cores
with mie_core.render.render_many, and prints notes/s per core for both. Then, for each
of ``--sizes`` notes, the time in this process against the time over all cores, process
start included, side by side: ``render_many(workers=None)`` uses the processes from
``MIN_POOL_NOTES`` notes on (337 is the tiny test corpus's training set, which every
trainer in the tests renders).
"""
from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from mie_core.corpus import list_instruments
from mie_core.render import MIN_POOL_NOTES, NoteSpec, default_workers, render_many
from mie_core.soundfonts import find_soundfonts


def timed(specs, workers) -> float:
    t = time.perf_counter()
    render_many(specs, workers=workers)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--notes", type=int, default=2000)
    p.add_argument("--sizes", default="337,1024,4096", help="comma-separated note counts for the crossover")
    args = p.parse_args()
    paths, _ = find_soundfonts(fetch=True)
    insts = list_instruments(paths)[::10]
    pool = [NoteSpec(i.path, i.bank, i.program, pitch, 100) for i in insts for pitch in range(36, 85)]
    specs = pool[: args.notes]
    render_many(specs[:64], workers=1)  # load the soundfonts once
    w = default_workers()
    one = len(specs) / timed(specs, 1)
    many = len(specs) / timed(specs, w)
    print(f"{len(specs)} notes of {len(insts)} presets from {len(paths)} soundfonts, 4 s at 16 kHz")
    print(f"1 process:   {one:.0f} notes/s")
    print(f"{w} processes: {many:.0f} notes/s ({many / w:.0f} per core, including process start and soundfont loading)")
    if w < 2:
        print("one usable core: no crossover to measure")
        return
    print(f"\nwhere {w} processes pay (render_many(workers=None) starts them from {MIN_POOL_NOTES} notes on):")
    for n in (int(s) for s in args.sizes.split(",")):
        batch = (pool * (n // len(pool) + 1))[:n]
        a, b = timed(batch, 1), timed(batch, w)
        print(f"{n:6d} notes: 1 process {a:6.2f} s, {w} processes {b:6.2f} s: processes take {b / a:.2f}x the time")


if __name__ == "__main__":
    main()
