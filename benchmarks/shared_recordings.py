"""Which sources share recordings? Same-note similarity between SoundFonts, and against the real part.

    python benchmarks/shared_recordings.py [--programs 0,24,40,56,73] [--pitches 55,67]

For every pair of soundfonts in ``data/soundfonts`` (the default four and freepats) it
renders the same notes (General MIDI program, pitch, velocity 100) and prints the
median and largest :func:`mie_core.data.provenance.similarity` (1: the same samples). Then
each real note (tonejs, ``data/real``) against every soundfont's preset of its own
program at its own pitch: the largest and the 99th percentile per soundfont. A source
that held a real recording would stand out near 1 against it, as MuseScore General does
against FluidR3, whose samples it took over.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402,F401

from mie_core.data import provenance, realrec, render  # noqa: E402
from mie_core.data.soundfonts import EXTRA_SOURCES, SOURCES, data_dir  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--programs", default="0,6,24,25,33,40,42,56,57,60,65,68,71,73", help="GM programs of the pairs")
    p.add_argument("--pitches", default="48,55,62,67,74", help="MIDI pitches of the pairs")
    args = p.parse_args()
    fonts = {s.key: data_dir() / "soundfonts" / s.filename for s in SOURCES + EXTRA_SOURCES
             if (data_dir() / "soundfonts" / s.filename).exists()}
    presets = {k: {prog for b, prog, _ in render.list_presets(str(f)) if b == 0} for k, f in fonts.items()}
    programs = [int(x) for x in args.programs.split(",")]
    pitches = [int(x) for x in args.pitches.split(",")]
    print(f"same notes, two soundfonts ({len(programs)} programs x {len(pitches)} pitches where both have them)")
    print(f"{'pair':26s} {'notes':>5s} {'median':>7s} {'max':>6s}")
    notes = {(k, prog, pitch): render.render_raw(str(f), 0, prog, pitch, 100)  # each note rendered once
             for k, f in fonts.items() for prog in programs if prog in presets[k] for pitch in pitches}
    for a, b in itertools.combinations(fonts, 2):
        sims = [provenance.similarity(notes[a, prog, pitch], notes[b, prog, pitch])
                for prog in programs if prog in presets[a] and prog in presets[b] for pitch in pitches]
        if sims:
            print(f"{a + ' - ' + b:26s} {len(sims):5d} {np.median(sims):7.3f} {max(sims):6.3f}")
    table = realrec.tonejs_table()
    if table.empty:
        print("no real recordings fetched (python -m mie_core fetch): the real check is skipped")
        return 0
    clips = realrec.load_tonejs_audio(table, max_seconds=2.0)
    print(f"\n{len(clips)} real notes against each soundfont's preset of their program, at their pitch")
    print(f"{'soundfont':12s} {'notes':>5s} {'p99':>6s} {'max':>6s}  most similar")
    for key, f in fonts.items():
        sims = [(provenance.similarity(c, render.render_raw(str(f), 0, int(prog), int(pitch), 100)), name)
                for c, prog, pitch, name in zip(clips, table["program"], table["pitch"], table["note_str"])
                if int(prog) in presets[key]]
        if sims:
            v = np.array([s for s, _ in sims])
            top = max(sims)
            print(f"{key:12s} {len(v):5d} {np.percentile(v, 99):6.3f} {v.max():6.3f}  {top[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
