"""Training throughput with the recording chain on against off (and with a distillation teacher), in one run.

    python benchmarks/train_chain.py [--steps 6] [--batch 64] [--threads 1]

Both sides are the trainer's own path: batches from the ClipSampler through the
Prefetcher (the next batch is made in a background thread while the model trains on
this one), the whole model (SincNet, ResNet34, LDE, projection, A-softmax heads),
backward and an Adam step, bf16 autocast and channels_last where the CPU has bf16. The
only difference: the chain (mie_core.augment.chain: room, microphone, noise, level, codec,
timing; the shipped configs' probabilities) on the sampler. The two are timed in
alternation, best of 3 each, so a change in the machine's load hits both alike. The
issue asks for a ratio of at least 0.9. A third side adds what ``distill.weight > 0``
adds (training/distill.py): the sampler keeps each clip's clean copy, a frozen teacher of
the same architecture embeds it (no gradient), and the relative MSE joins the loss.

``--threads 1`` is how the shipped models trained (two runs side by side, one torch
thread each); the chain's thread then has the rest of the machine.
"""
from __future__ import annotations

import argparse

import pandas as pd
import torch

import _common
from mie_core.augment import chain
from mie_core.hardware import cpu_has_bf16
from mie_core.nnet.model import ModelArgs
from training.config import Config
from training.data import ClipSampler, NoteSet, Prefetcher
from training.distill import relative_mse
from training.train import build


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = cpu_has_bf16()
    audio, labels = _common.real_notes()
    notes = NoteSet(audio, pd.DataFrame({"i": labels}), labels, labels % 11, [str(i) for i in range(labels.max() + 1)],
                    [str(i) for i in range(11)])
    bank = chain.room_bank(seed=0)
    rec = chain.RecordingChain(chain.TRAIN_PARAMS, bank)
    feeds = {"chain off": Prefetcher(ClipSampler(notes, crop_s=1.0, seed=0), args.batch),
             "chain on": Prefetcher(ClipSampler(notes, crop_s=1.0, seed=0, chain=rec), args.batch),
             "+ teacher": Prefetcher(ClipSampler(notes, crop_s=1.0, seed=0, chain=rec, keep_clean=True), args.batch)}
    torch.manual_seed(0)
    model = build(Config(model=ModelArgs()), 500, 11)
    teacher = build(Config(model=ModelArgs()), 500, 11).encoder.eval().requires_grad_(False)
    for m in (model.encoder, teacher):
        m.encoder.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def steps(feed):
        def go():
            for _ in range(args.steps):
                x, yi, yf, *clean = feed.next()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = model(torch.from_numpy(x), torch.from_numpy(yi), torch.from_numpy(yf), 100)
                    if clean:
                        with torch.no_grad():
                            target = teacher(torch.from_numpy(clean[0]))
                loss = out["loss"] + (relative_mse(out["embedding"], target) if clean else 0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return go

    n = args.batch * args.steps
    rates = _common.side_by_side({k: steps(f) for k, f in feeds.items()}, {k: n for k in feeds}, repeats=3)
    for f in feeds.values():
        f.close()
    print(f"cpu: {'bf16 autocast + channels_last' if bf16 else 'fp32'}; {args.threads} torch thread(s); "
          f"batch {args.batch} x 1 s; {args.steps} steps per timing")
    for k, r in rates.items():
        print(f"{k:10s}: {r:.1f} clips/s")
    print(f"ratio chain on / off: {rates['chain on'] / rates['chain off']:.2f}")
    print(f"ratio chain on + teacher / chain off: {rates['+ teacher'] / rates['chain off']:.2f}")


if __name__ == "__main__":
    main()
