"""Embedding throughput of 4-s notes by batch size, side by side in one run, at this CPU's precision.

    python benchmarks/embed_batch.py [--model cache/models/cqt122] [--clips 32] [--batches 16,4]
                                     [--precision auto|fp32|bf16]

Times ``InstrumentEncoder.embed`` on the same rendered notes with each batch size in
alternation (``_common.side_by_side``, best of 3), checks that every batch size gives the same
embeddings to float32 rounding, and prints notes/s of each and the ratio of each to the first.
What it settled: ``mie_core.nnet.model.EMBED_BATCH`` (fp32: 4, about 2x the notes/s of 16 on a
2-core AVX2 CPU, where a batch of 16 4-s clips' feature maps no longer stays in cache).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import _common
from mie_core.evaluation.embeddings import resolve_precision
from mie_core.nnet.checkpoint import load_encoder


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cache/models/cqt122")
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--batches", default="16,4")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    args = p.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    bf16 = resolve_precision(args.precision) == "bf16"
    audio, _ = _common.real_notes()
    audio = audio[np.linspace(0, len(audio) - 1, args.clips).round().astype(int)]
    enc = load_encoder(args.model)
    out = {}

    def run(b):
        def fn():
            out[b] = enc.embed(audio, batch_size=b, bf16=bf16)
        return fn

    rates = _common.side_by_side({b: run(b) for b in sizes}, {b: len(audio) for b in sizes}, repeats=3)
    tol = 1e-2 if bf16 else 1e-4  # bf16 keeps 8 bits of mantissa; fp32 sums in another order per batch shape
    for b in sizes[1:]:
        np.testing.assert_allclose(out[b], out[sizes[0]], rtol=tol, atol=tol)
    print(f"{'bf16 autocast' if bf16 else 'fp32'}, threads {torch.get_num_threads()}, {len(audio)} 4-s notes, "
          f"{args.model}")
    for b in sizes:
        print(f"batch {b:3d}: {rates[b]:6.1f} notes/s   ratio to batch {sizes[0]}: {rates[b] / rates[sizes[0]]:.2f}")


if __name__ == "__main__":
    main()
