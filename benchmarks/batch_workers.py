"""Training batches per second with the recording chain: one thread against worker processes, in one run.

    python benchmarks/batch_workers.py [--workers 2] [--batch 64] [--batches 8] [--json PATH]

Both sides make the trainer's batches (ClipSampler: crops, trim-and-concatenate, the
recording chain with the shipped probabilities) from the same notes in memory: one side
through the Prefetcher (one background thread, ``data.batch_workers: 0``, what the CPU
recipes use), the other through ParallelBatches with ``--workers`` processes
(``data.batch_workers``, what a GPU needs: the shipped gpu_cqt122 config uses 14 of 16
cores). Each side first hands out the batches it made ahead while starting, then is
timed over ``--batches`` more (production-bound: sustained clips/s); the sides run one
after the other. Prints clips/s of both and their ratio.
Nothing trains: this is the most batches the data side can feed a model.
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd

import _common
from mie_core.augment import chain
from training.data import ClipSampler, NoteSet, ParallelBatches, Prefetcher


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=8, help="batches per timed round, per side")
    p.add_argument("--crop-s", type=float, default=1.0)
    p.add_argument("--json", default="", help="also write the figures to this file")
    args = p.parse_args()
    audio, labels = _common.real_notes()
    notes = NoteSet(audio, pd.DataFrame({"i": labels}), labels, labels % 11, [str(i) for i in range(labels.max() + 1)],
                    [str(i) for i in range(11)])
    rec = chain.RecordingChain(chain.TRAIN_PARAMS, chain.room_bank(seed=0))

    def sustained(feed, buffered: int) -> float:
        """Clips/s once the batches made ahead (while the feed started) are used up."""
        try:
            for _ in range(buffered):
                feed.next()
            t = time.perf_counter()
            for _ in range(args.batches):
                feed.next()
            return args.batch * args.batches / (time.perf_counter() - t)
        finally:
            feed.close()

    rates = {"thread": sustained(Prefetcher(ClipSampler(notes, crop_s=args.crop_s, seed=0, chain=rec), args.batch,
                                            depth=1), 2),
             "workers": sustained(ParallelBatches(ClipSampler(notes, crop_s=args.crop_s, seed=0, chain=rec),
                                                  args.batch, args.workers, seed=0, depth=1), 2 * args.workers)}
    print(f"batches of {args.batch} x {args.crop_s} s clips with the recording chain")
    print(f"one thread (data.batch_workers 0):        {rates['thread']:.0f} clips/s")
    print(f"{args.workers} processes (data.batch_workers {args.workers}): {rates['workers']:.0f} clips/s")
    print(f"ratio processes / thread: {rates['workers'] / rates['thread']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "batch": args.batch, "crop_s": args.crop_s,
                       "thread_clips_per_s": rates["thread"], "workers_clips_per_s": rates["workers"]}, f)


if __name__ == "__main__":
    main()
