"""CPU embedding throughput for 4-s clips, end to end from files, beside the bare ResNet34.

    python benchmarks/embed_cpu.py [--clips 64] [--batch 16] [--bf16]

End to end: read WAV files with mie_core.data.audio.load_audio and embed them with
InstrumentEncoder.embed (fp32, or bf16 autocast with --bf16 as the cache builder uses
where the CPU has it). Bare: the ResNet34 forward alone on random tensors of the
feature shape, same batch and precision. Prints
clips/s of both and the ratio (the issue asks for at least 0.8).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import soundfile as sf
import torch

import _common
from mie_core.data.audio import load_audio
from mie_core.nnet.model import InstrumentEncoder, ModelArgs
from mie_core.nnet.resnet import ResNetEncoder


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    audio, _ = _common.real_notes()
    audio = audio[: args.clips]
    torch.manual_seed(0)
    enc = InstrumentEncoder(ModelArgs()).eval()
    bare = ResNetEncoder(16).eval()
    if args.bf16:  # as InstrumentEncoder.embed does with bf16
        bare.to(memory_format=torch.channels_last)
    frames = enc.frontend.n_frames(64000)
    feats = torch.randn(args.batch, 122, frames)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, x in enumerate(audio):
            f = Path(tmp) / f"{i}.wav"
            sf.write(f, x, 16000, subtype="PCM_16")
            files.append(f)

        def e2e():
            enc.embed([load_audio(f) for f in files], batch_size=args.batch, bf16=args.bf16)

        def bare_fwd():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                for _ in range(len(files) // args.batch):
                    bare(feats)

        rates = _common.side_by_side({"bare": bare_fwd, "e2e": e2e},
                                     {"bare": (len(files) // args.batch) * args.batch, "e2e": len(files)}, repeats=3)
        r_bare, r_e2e = rates["bare"], rates["e2e"]
    print(f"{'bf16 autocast' if args.bf16 else 'fp32'}, threads {torch.get_num_threads()}, batch {args.batch}, 4-s clips")
    print(f"bare ResNet34 forward:            {r_bare:.1f} clips/s")
    print(f"end to end (read file + embed):   {r_e2e:.1f} clips/s")
    print(f"ratio end-to-end / bare: {r_e2e / r_bare:.2f}")


if __name__ == "__main__":
    main()
