"""Embeddings of fixed test signals by the shipped models, on this machine, for comparing CPUs.

    python benchmarks/cross_cpu.py --out emb_here.npz            # on one machine
    python benchmarks/cross_cpu.py --compare emb_here.npz emb_there.npz

The signals are synthetic (harmonic tones with vibrato and noise, seeded), so the script
needs nothing but torch, numpy and safetensors: it runs on a bare machine of another
vendor. Each model embeds them in fp32 and in bf16 autocast, with 1 thread and with all
cores. ``--compare`` prints, per model and precision, the worst cosine between the two
machines' embeddings of the same signal and the largest relative difference: what
:mod:`mie_core.evaluation.embeddings` states (fp32 agrees to about 1e-5, bf16 to a cosine of 0.99 or
more) is checked against two real CPUs here.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mie_core.nnet.checkpoint import load_encoder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def signals(n: int = 12, seconds: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    out = []
    for k in range(n):
        f0 = 55.0 * 2 ** (rng.uniform(0, 5))
        vib = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
        x = sum(rng.uniform(0.1, 1) / h * np.sin(2 * np.pi * f0 * h * vib * t) for h in range(1, 9))
        x *= np.exp(-t * rng.uniform(0.3, 3)) * np.minimum(1, t / 0.02)
        x += 0.003 * rng.standard_normal(t.size)
        out.append((0.5 * x / np.abs(x).max()).astype(np.float32))
    return np.stack(out)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out")
    p.add_argument("--compare", nargs=2)
    args = p.parse_args()
    if args.compare:
        a, b = (np.load(f) for f in args.compare)
        print(f"{str(a['cpu'])}  vs  {str(b['cpu'])}")
        for k in sorted(k for k in a.files if k.startswith("emb_")):
            if k not in b.files:
                continue
            x, y = a[k].astype(np.float64), b[k].astype(np.float64)
            cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
            rel = np.abs(x - y).max() / np.abs(x).max()
            print(f"{k[4:]:28s} worst cosine {cos.min():.7f}   max relative difference {rel:.2e}")
        return
    x = signals()
    res = {"cpu": np.array(cpu_name()), "torch": np.array(torch.__version__)}
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    res["bf16_native"] = np.array((" avx512_bf16" in flags) or (" amx_bf16" in flags))
    for name in ("cqt122", "mel122"):
        enc = load_encoder(REPO / "cache" / "models" / name)
        for threads in (1, torch.get_num_threads()):
            torch.set_num_threads(threads)
            for bf16 in (False, True):
                res[f"emb_{name}_{'bf16' if bf16 else 'fp32'}_t{threads if threads == 1 else 'all'}"] = \
                    enc.embed(list(x), bf16=bf16)
        torch.set_num_threads(max(1, torch.get_num_threads()))
    np.savez(args.out, **res)
    print(f"wrote {args.out}: {res['cpu']} (native bf16: {bool(res['bf16_native'])}), torch {torch.__version__}")


if __name__ == "__main__":
    main()
