"""SoundFont rendering throughput: 4-s notes per second, on one core and on all, and where
spreading the notes over processes starts to pay.

    python benchmarks/render_speed.py [--notes 2000] [--sizes 337,1024,4096]

Renders the same notes (every 10th preset of each available default soundfont,
pitches 36-84, velocity 100) once in this process and once over all usable cores
with mie_core.data.render.render_many, and prints notes/s per core for both. Then, for each
of ``--sizes`` notes, the time in this process against the time over all cores, process
start included, timed in alternation (best of two each): ``render_many(workers=None)`` uses the processes from
``MIN_POOL_NOTES`` notes on (337 is the tiny test corpus's training set, which every
trainer in the tests renders).
"""
from __future__ import annotations

import argparse

import _common
from mie_core.data.corpus import list_instruments
from mie_core.data.render import MIN_POOL_NOTES, NoteSpec, default_workers, render_many
from mie_core.data.soundfonts import find_soundfonts


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
    rate = _common.side_by_side({"one": lambda: render_many(specs, workers=1),
                                 "many": lambda: render_many(specs, workers=w)}, {"one": len(specs), "many": len(specs)},
                                repeats=2, warmup=0)
    one, many = rate["one"], rate["many"]
    print(f"{len(specs)} notes of {len(insts)} presets from {len(paths)} soundfonts, 4 s at 16 kHz")
    print(f"1 process:   {one:.0f} notes/s")
    print(f"{w} processes: {many:.0f} notes/s ({many / w:.0f} per core, including process start and soundfont loading)")
    if w < 2:
        print("one usable core: no crossover to measure")
        return
    print(f"\nwhere {w} processes pay (render_many(workers=None) starts them from {MIN_POOL_NOTES} notes on):")
    for n in (int(s) for s in args.sizes.split(",")):
        batch = (pool * (n // len(pool) + 1))[:n]
        rate = _common.side_by_side({"one": lambda: render_many(batch, workers=1),
                                     "many": lambda: render_many(batch, workers=w)}, {"one": n, "many": n},
                                    repeats=2, warmup=0)
        a, b = n / rate["one"], n / rate["many"]
        print(f"{n:6d} notes: 1 process {a:6.2f} s, {w} processes {b:6.2f} s: processes take {b / a:.2f}x the time")


if __name__ == "__main__":
    main()
