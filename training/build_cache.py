"""Build the shipped ``cache/`` from trained checkpoints and the corpus, deterministically.

    python -m training.build_cache [--model mel122=runs/mel122/best --model cqt122=runs/cqt122/best]
                                   [--corpus data/corpus] [--out cache] [--no-probing]

Writes (all of it made by our own code, at most 60 MB):

* ``models/<name>/model.safetensors`` + ``model.json``: the encoder (training heads
  dropped), model arguments, label maps, corpus recipe, provenance.
* ``embeddings/<name>_<part>.npy`` (float16, one row per note) and
  ``embeddings/notes_<part>.parquet`` (the notes' metadata, the rows' order), for the
  test and valid parts of the program-disjoint split: the evaluation notes of
  :func:`mie_core.report.evaluation_notes`, embedded with bf16 autocast where the CPU
  has it (``--precision``; recorded as ``embed_bf16`` in the results).
* ``maps/<name>_test_<tsne|umap>.npy``: 2-D coordinates of the test embeddings.
* ``results/benchmark.json``: verification on identical trials for every model and
  the MFCC baseline (EER, bootstrap interval, minDCF, threshold at the EER point, DET
  points, per-family EER, significance), and probing results for every label.
* ``manifest.json``: every file with its size, sha256 and the command that made it.

The app reads only this folder (and renders notes on demand from the soundfonts).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core import baseline, evaluation, maps, probing
from mie_core.corpus import Corpus, default_corpus_dir
from mie_core.model import InstrumentEncoder, cpu_has_bf16, save_checkpoint
from mie_core.report import embed_notes, evaluation_notes, json_default

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("mel122=runs/mel122/best", "cqt122=runs/cqt122/best")
PARTS = ("test", "valid")
META_COLUMNS = ["note_str", "instrument_str", "instrument_family_str", "instrument_source_str", "playing_style",
                "pitch", "velocity", "soundfont", "bank", "program", "preset_name", "gain_db"]
SPLIT = "program_disjoint"
SEED = 0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(out: Path, command: str) -> dict:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            files[str(p.relative_to(out))] = {"bytes": p.stat().st_size, "sha256": sha256(p)}
    manifest = {"command": command, "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "total_bytes": sum(f["bytes"] for f in files.values()), "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.build_cache", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="NAME=CHECKPOINT (repeatable)")
    p.add_argument("--corpus", default=None)
    p.add_argument("--out", default=str(REPO / "cache"))
    p.add_argument("--no-probing", action="store_true")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="embedding precision (auto: bf16 autocast where the CPU has native bf16)")
    p.add_argument("--probing-only", action="store_true",
                   help="add the probing results to an existing cache from its embeddings (one process per model)")
    args = p.parse_args(argv)
    models = [m.split("=", 1) for m in (args.model or DEFAULT_MODELS)]
    out = Path(args.out)
    if args.probing_only:
        return add_probing(out, [n for n, _ in models])
    corpus = Corpus.load(args.corpus or default_corpus_dir())
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("models", "embeddings", "maps", "results"):
        (tmp / sub).mkdir(parents=True)

    # bf16 autocast where the CPU has it natively (3x faster on 4-s notes); recorded in the
    # results so the app embeds uploads the same way
    bf16 = cpu_has_bf16() if args.precision == "auto" else args.precision == "bf16"
    rows = {part: evaluation_notes(corpus, SPLIT, part) for part in PARTS}
    for part, r in rows.items():
        r[META_COLUMNS].to_parquet(tmp / "embeddings" / f"notes_{part}.parquet", index=False)
    audio = {}
    for part in PARTS:
        say(f"rendering {len(rows[part])} {part} notes")
        audio[part] = corpus.render(rows[part])

    emb: dict[str, dict[str, np.ndarray]] = {}
    for name, path in models:
        enc = InstrumentEncoder.from_checkpoint(path)
        save_checkpoint(tmp / "models" / name, enc, None, enc.label_maps, enc.metadata.get("provenance"),
                        enc.metadata.get("metrics"))
        emb[name] = {}
        for part in PARTS:
            t0 = time.monotonic()
            # through the evaluate command's embedding cache (data/embeddings): a rebuild, or a
            # model embedded earlier by `python -m mie_core evaluate`, is not embedded again
            e = embed_notes(path, corpus, rows[part], lambda p=part: audio[p], bf16=bf16)
            emb[name][part] = e
            np.save(tmp / "embeddings" / f"{name}_{part}.npy", e.astype(np.float16))
            say(f"{name}: embedded {len(e)} {part} notes in {time.monotonic() - t0:.0f} s")
        for method in ("tsne", "umap"):
            t0 = time.monotonic()
            m = maps.fit_map(emb[name]["test"], method, seed=SEED)
            np.save(tmp / "maps" / f"{name}_test_{method}.npy", m.coords.astype(np.float32))
            say(f"{name}: {method} map in {time.monotonic() - t0:.0f} s")

    results = {"split": SPLIT, "seed": SEED, "embed_bf16": bf16, "parts": {}}
    test_rows = rows["test"]
    for part in PARTS:
        r = rows[part]
        e = {name: emb[name][part] for name, _ in models}
        e["mfcc_baseline"] = baseline.mfcc_stats(audio[part])
        res = evaluation.compare_models(e, r["instrument_str"].to_numpy(), r["instrument_family_str"].to_numpy(),
                                        seed=SEED, n_draws=args.draws)
        res.pop("_trials")
        res.pop("_scores")
        results["parts"][part] = res
        say(f"{part}: " + ", ".join(f"{n} EER {100 * m['eer']:.2f} %" for n, m in res["models"].items()))
    if not args.no_probing:
        results["probing"], results["probing_skipped"] = [], {}
        for name, _ in models:
            rs, skipped = probe_model(emb[name]["test"], test_rows, name)
            results["probing"] += rs
            results["probing_skipped"].update(skipped)
    results["models"] = {name: InstrumentEncoder.from_checkpoint(tmp / "models" / name).metadata for name, _ in models}
    (tmp / "results" / "benchmark.json").write_text(json.dumps(results, indent=1, default=json_default))
    cmd = "python -m training.build_cache " + " ".join(f"--model {n}={p}" for n, p in models) + \
        f" --precision {'bf16' if bf16 else 'fp32'}" + (" --no-probing" if args.no_probing else "")
    manifest = write_manifest(tmp, cmd)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    say(f"wrote {out}: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB")
    return 0


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


PROBE_NOTES = 2000  # a seeded subset of the test notes (probing.subsample); None = all


def probe_model(emb: np.ndarray, rows: pd.DataFrame, name: str, max_notes: int | None = PROBE_NOTES) -> tuple[list[dict], dict]:
    """Every probing label and classifier on one model's test embeddings (the same notes for every model)."""
    t0 = time.monotonic()
    idx = probing.subsample(len(rows), max_notes, np.random.default_rng(SEED))
    labels = probing.probe_labels(rows.iloc[idx].reset_index(drop=True))
    rs, skipped = probing.run_probes(emb[idx], labels, np.random.default_rng(SEED))
    say(f"{name}: probing {len(idx)} notes in {time.monotonic() - t0:.0f} s")
    return [{"model": name, "n_notes": int(len(idx)), **x.as_dict()} for x in rs], skipped


def _probe_from_cache(args: tuple[str, str]) -> tuple[list[dict], dict]:
    root, name = args
    emb = np.load(Path(root) / "embeddings" / f"{name}_test.npy").astype(np.float32)
    return probe_model(emb, pd.read_parquet(Path(root) / "embeddings" / "notes_test.parquet"), name)


def add_probing(out: Path, names: list[str]) -> int:
    """--probing-only: probe each model in its own process and update the results and manifest."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    path = out / "results" / "benchmark.json"
    results = json.loads(path.read_text())
    with ProcessPoolExecutor(max_workers=len(names), mp_context=mp.get_context("spawn")) as pool:
        done = list(pool.map(_probe_from_cache, [(str(out), n) for n in names]))
    results["probing"] = [r for rs, _ in done for r in rs]
    results["probing_skipped"] = {k: v for _, sk in done for k, v in sk.items()}
    path.write_text(json.dumps(results, indent=1, default=json_default))
    old = json.loads((out / "manifest.json").read_text())["command"]
    write_manifest(out, old.replace(" --no-probing", "") + " (probing added by --probing-only)")
    say(f"probing results of {', '.join(names)} added to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
