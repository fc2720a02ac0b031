"""Command line: ``python -m mie_core {fetch,corpus,embed,evaluate} ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _int_list(text: str) -> list[int]:
    """'21-108', '60,64,67', '21-108:3' (every third) or a mix: '24-48,60'."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        step = 1
        if ":" in part:
            part, s = part.split(":")
            step = int(s)
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1, step))
        else:
            out.append(int(part))
    return out


def _bar(desc: str):
    from tqdm import tqdm

    bars = {}

    def update(stage, done, total=None):
        if total is None:  # (done, total) callers
            stage, done, total = desc, stage, done
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="it", file=sys.stderr, mininterval=1.0)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def cmd_fetch(args) -> int:
    from .soundfonts import find_soundfonts

    found, missing = find_soundfonts(fetch=True, log=lambda m: print(m, file=sys.stderr))
    for p in found:
        print(f"ok       {p}")
    for name, why in missing.items():
        print(f"missing  {name}: {why}")
    return 0


def cmd_corpus(args) -> int:
    import time

    from .corpus import NSYNTH_PITCHES, NSYNTH_VELOCITIES, build_corpus
    from .soundfonts import find_soundfonts

    if args.soundfont:
        paths = [Path(p) for p in args.soundfont]
        bad = [str(p) for p in paths if not p.is_file()]
        if bad:
            print("error: no such soundfont file: " + ", ".join(bad), file=sys.stderr)
            return 2
    else:
        paths, missing = find_soundfonts(fetch=not args.no_fetch, log=lambda m: print(m, file=sys.stderr))
        for name, why in missing.items():
            print(f"note: {name} is not used: {why}", file=sys.stderr)
        if not paths:
            print("error: no soundfont found or fetched; pass --soundfont PATH", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    corpus = build_corpus(
        args.out, paths,
        programs=_int_list(args.programs) if args.programs else None,
        pitches=_int_list(args.pitches) if args.pitches else NSYNTH_PITCHES,
        velocities=_int_list(args.velocities) if args.velocities else NSYNTH_VELOCITIES,
        write_audio=args.write_audio, workers=args.workers, seed=args.seed,
        progress=_bar("corpus"),
    )
    c = corpus.recipe["counts"]
    dt = time.perf_counter() - t0
    print(f"{args.out}: {c['instruments']} instruments, {c['notes']} notes, {c['families']} families, "
          f"{c['playing_styles']} playing styles, from {', '.join(c['soundfonts'])} ({dt:.1f} s)")
    return 0


def cmd_embed(args) -> int:
    import numpy as np

    from .audio import AudioError, load_audio
    from .model import InstrumentEncoder

    enc = InstrumentEncoder.from_checkpoint(args.model)
    waves, bad = [], []
    for f in args.files:
        try:
            waves.append(load_audio(f, max_seconds=args.max_seconds))
        except AudioError as err:
            bad.append(str(err))
    if bad:
        for b in bad:
            print(f"error: {b}", file=sys.stderr)
        return 2
    emb = enc.embed(waves, batch_size=args.batch_size)
    np.save(args.out, emb)
    print(f"{args.out}: {emb.shape[0]} x {emb.shape[1]} embeddings")
    return 0


def cmd_evaluate(args) -> int:
    from .report import run_evaluation

    run_evaluation(
        models=args.model, corpus_dir=args.corpus, split=args.split, part=args.part, out=args.out,
        seed=args.seed, n_draws=args.draws, probing_on=not args.no_probing, probe_notes=args.probe_notes or None, progress=_bar("evaluate"),
        log=lambda m: print(m, file=sys.stderr),
    )
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mie_core", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fetch", help="fetch the four default soundfonts into the data folder")
    f.set_defaults(func=cmd_fetch)

    c = sub.add_parser("corpus", help="build a SoundFont instrument corpus")
    c.add_argument("--out", required=True, help="corpus folder to write")
    c.add_argument("--soundfont", action="append", help="a .sf2/.sf3 file (repeatable); default: the four known sources")
    c.add_argument("--programs", help="General MIDI programs to keep, e.g. '0-7,40-47'")
    c.add_argument("--pitches", help="MIDI pitches, e.g. '21-108' or '48-72:6' (default 21-108)")
    c.add_argument("--velocities", help="MIDI velocities (default 25,50,75,100,127)")
    c.add_argument("--write-audio", action="store_true", help="also write audio/<note_str>.wav (NSynth layout)")
    c.add_argument("--workers", type=int, default=None, help="render processes (default: all CPUs)")
    c.add_argument("--seed", type=int, default=0, help="seed of the splits")
    c.add_argument("--no-fetch", action="store_true", help="do not download missing soundfonts")
    c.set_defaults(func=cmd_corpus)

    e = sub.add_parser("embed", help="embed audio files with a trained model")
    e.add_argument("--model", required=True, help="checkpoint folder or .safetensors file")
    e.add_argument("--out", required=True, help="output .npy, one row per file in order")
    e.add_argument("--batch-size", type=int, default=16)
    e.add_argument("--max-seconds", type=float, default=600.0)
    e.add_argument("files", nargs="+")
    e.set_defaults(func=cmd_embed)

    v = sub.add_parser("evaluate", help="the paper's evaluation of one or more models")
    v.add_argument("--model", action="append", required=True, help="checkpoint (repeatable); NAME=PATH to name it")
    v.add_argument("--corpus", default=None, help="corpus folder (default: data/corpus)")
    v.add_argument("--split", default="program_disjoint")
    v.add_argument("--part", default="test")
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--draws", type=int, default=5, help="trial draws to average EER over")
    v.add_argument("--no-probing", action="store_true")
    v.add_argument("--probe-notes", type=int, default=2000,
                   help="probe a seeded subset of this many notes (0: all, the paper's setting; slow on a CPU)")
    v.set_defaults(func=cmd_evaluate)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
