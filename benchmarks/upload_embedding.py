"""What an upload costs to embed: whole files against the note excerpt, bf16 autocast against fp32.

    python benchmarks/upload_embedding.py [--model cache/models/mel+cqt] [--instrument violin] [--against-cache]

Five real notes of one instrument (the tonejs recordings, ``python -m mie_core fetch``),
embedded as the app enrols them (:meth:`mie_core.service.verify.Verifier.embed`, every member of a
system) four ways, timed side by side in one run (best of 2, after a warm-up of the
encoder's 4-s window shape): the whole files or their note excerpts
(:func:`mie_core.data.audio.note_excerpt`, what the app, ``verify`` and ``identify`` embed since
2026-11-27), each in fp32 and in bf16 autocast (native where the CPU has AVX-512 BF16 or
AMX, emulated elsewhere). Prints the seconds, the ratios, and the worst cosine between the
fp32 and bf16 embeddings of the excerpts.

``--against-cache`` also embeds the whole ``real`` part with the main model in fp32 and
prints the worst cosine to the cache's embeddings of it (made in the cache's precision).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)
from mie_core.data import audio, realrec
from mie_core.evaluation.embeddings import unit
from mie_core.hardware import cpu_has_bf16
from mie_core.service.verify import load_verifier


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="cache/models/mel+cqt")
    p.add_argument("--instrument", default="violin", help="a tonejs instrument (data/real/tonejs/NAME)")
    p.add_argument("--against-cache", action="store_true")
    args = p.parse_args()
    files = sorted((realrec.tonejs_dir() / args.instrument).glob("*.mp3"))[:10:2]
    if len(files) < 5:
        raise SystemExit(f"fewer than five {args.instrument} notes under {realrec.tonejs_dir()}: "
                         "python -m mie_core fetch")
    whole = [audio.load_audio(f) for f in files]
    excerpt = [audio.note_excerpt(x) for x in whole]
    vers = {prec: load_verifier(args.model, precision=prec) for prec in ("fp32", "bf16")}
    for v in vers.values():
        v.embed([np.zeros(64000, np.float32)])  # the 4-s window's kernels, as the app does on load
    seconds, emb = {}, {}
    for _ in range(2):
        for prec, v in vers.items():
            for name, clips in (("whole files", whole), ("note excerpts", excerpt)):
                t = time.perf_counter()
                emb[prec, name] = v.embed(clips)
                seconds[prec, name] = min(seconds.get((prec, name), np.inf), time.perf_counter() - t)
    lens = ", ".join(f"{len(x) / 16000:.1f}" for x in whole)
    print(f"{Path(args.model).name}, five {args.instrument} notes of {lens} s; "
          f"this CPU {'has' if cpu_has_bf16() else 'has no'} native bf16")
    for (prec, name), s in seconds.items():
        print(f"  {prec:5s} {name:14s} {s:6.2f} s")
    for prec in vers:
        print(f"whole files / note excerpts, {prec}: {seconds[prec, 'whole files'] / seconds[prec, 'note excerpts']:.2f}x")
    for name in ("whole files", "note excerpts"):
        print(f"bf16 / fp32, {name}: {seconds['bf16', name] / seconds['fp32', name]:.2f}x")
    cos = (unit(emb["fp32", "note excerpts"]) * unit(emb["bf16", "note excerpts"])).sum(1)
    print(f"fp32 vs bf16 embeddings of the excerpts: worst cosine {cos.min():.6f}")
    if args.against_cache:
        from mie_core.evaluation.parts import real_part
        from mie_core.service.workbench import Cache

        cache, name = Cache(), Path(vers["fp32"].path).name
        if not cache.has_embeddings(name, "real"):
            raise SystemExit(f"the cache has no {name} embeddings of the real part: --against-cache needs a "
                             "single shipped model, e.g. --model cache/models/cqt122")
        part = real_part()
        if part is None or part.rows["note_str"].tolist() != cache.notes("real")["note_str"].tolist():
            raise SystemExit("the real recordings here are not the notes the cache embedded: python -m mie_core fetch")
        mine = vers["fp32"].encoder.embed(part.audio())
        cos = (unit(mine) * unit(cache.embeddings(name, "real"))).sum(1)
        print(f"{name}, the real part ({len(mine)} notes) in fp32 here vs the cache's: worst cosine {cos.min():.6f}, "
              f"median {np.median(cos):.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
