"""SoundFont rendering throughput: 4-s notes per second, on one core and on all.

    python benchmarks/render_speed.py [--notes 2000]

Renders the same notes (every 10th preset of each available default soundfont,
pitches 36-84, velocity 100) once in this process and once over all usable cores
with mie_core.render.render_many, and prints notes/s per core for both.
"""
from __future__ import annotations

import argparse
import time

import _common  # noqa: F401
from mie_core.corpus import list_instruments
from mie_core.render import NoteSpec, default_workers, render_many
from mie_core.soundfonts import find_soundfonts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--notes", type=int, default=2000)
    args = p.parse_args()
    paths, _ = find_soundfonts(fetch=True)
    insts = list_instruments(paths)[::10]
    specs = [NoteSpec(i.path, i.bank, i.program, pitch, 100) for i in insts for pitch in range(36, 85)][: args.notes]
    render_many(specs[:64], workers=1)  # load the soundfonts once
    t = time.perf_counter()
    render_many(specs, workers=1)
    one = len(specs) / (time.perf_counter() - t)
    w = default_workers()
    t = time.perf_counter()
    render_many(specs, workers=w)
    many = len(specs) / (time.perf_counter() - t)
    print(f"{len(specs)} notes of {len(insts)} presets from {len(paths)} soundfonts, 4 s at 16 kHz")
    print(f"1 process:   {one:.0f} notes/s")
    print(f"{w} processes: {many:.0f} notes/s ({many / w:.0f} per core, including process start and soundfont loading)")


if __name__ == "__main__":
    main()
