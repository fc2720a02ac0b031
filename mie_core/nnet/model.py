"""The instrument encoder of the paper (Fig. 1): SincNet -> ResNet34 -> pooling -> E.

``InstrumentEncoder`` maps waveforms to N = 512-d embeddings E (the linear output
after pooling, Sec. IV-B); training heads live in :mod:`mie_core.nnet.heads` and are not
part of it. A shipped model is a folder::

    model.safetensors   encoder weights (and the heads' under "heads.", optional)
    model.json          {"model_args": ..., "label_maps": ..., "provenance": ...,
                         "versions": ..., "metrics": ...}

``mie_core.nnet.checkpoint.load_encoder(path)`` rebuilds it from those two files alone;
nothing is unpickled.

Long clips: clips up to ``window_s`` (default 4 s, NSynth's note length) are
embedded whole. Longer clips are cut into ``window_s`` windows with 50 % overlap (the
last window aligned to the end) and the window embeddings are averaged. Clips
shorter than 0.25 s are zero-padded to 0.25 s so the ResNet sees at least a few frames.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch
from torch import nn

from mie_core.nnet.pooling import make_pooling
from mie_core.nnet.resnet import ResNetEncoder
from mie_core.nnet.sincconv import SincConv

__all__ = ["ModelArgs", "InstrumentEncoder", "SincConv"]

MIN_SECONDS = 0.25
# clips per forward pass of :meth:`InstrumentEncoder.embed` by precision: fp32 4-s clips go 1.7-2.1x
# faster in batches of 4 than of 16 on a 2-core AVX2 CPU (the feature maps stay in cache;
# `python benchmarks/embed_batch.py`); bf16 convolutions keep 16 (measured with channels_last)
EMBED_BATCH = {"fp32": 4, "bf16": 16}


@dataclass(frozen=True)
class ModelArgs:
    """Everything needed to rebuild an :class:`InstrumentEncoder` (plain numbers)."""

    n_filters: int = 122
    init: str = "cqt"
    learnable: bool = True
    sample_rate: int = 16000
    kernel_ms: float = 50.0
    hop_ms: float = 12.0
    min_low_hz: float = 5.0
    min_band_hz: float = 5.0
    mel_min_hz: float = 30.0
    quadrature: bool = True
    base_width: int = 16
    blocks: tuple = (3, 4, 6, 3)
    pooling: str = "lde"
    lde_clusters: int = 32
    embed_dim: int = 512

    # what a model description may ask for: bounds that keep a crafted model.json or config
    # from allocating more than a machine holds (the shipped models are far inside them)
    LIMITS = {"n_filters": (1, 1024), "sample_rate": (8000, 96000), "base_width": (1, 256), "lde_clusters": (1, 512),
              "embed_dim": (1, 8192), "kernel_ms": (1.0, 500.0), "hop_ms": (1.0, 500.0)}

    def __post_init__(self):
        for name in ("n_filters", "sample_rate", "base_width", "lde_clusters", "embed_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
                raise ValueError(f"model.{name} must be a whole number, not {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("kernel_ms", "hop_ms", "min_low_hz", "min_band_hz", "mel_min_hz"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"model.{name} must be a finite number, not {v!r}")
        if not isinstance(self.blocks, (list, tuple)) or not 1 <= len(self.blocks) <= 8 or not all(
                isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 64 for b in self.blocks):
            raise ValueError(f"model.blocks must be 1 to 8 whole numbers from 1 to 64, not {self.blocks!r}")
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        for name, (lo, hi) in self.LIMITS.items():
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"model.{name} must be from {lo} to {hi}, not {getattr(self, name)!r}")
        if self.init not in ("cqt", "mel"):
            raise ValueError(f"model.init must be 'cqt' or 'mel', not {self.init!r}")
        if self.pooling not in ("lde", "stats", "attentive"):
            raise ValueError(f"model.pooling must be 'lde', 'stats' or 'attentive', not {self.pooling!r}")
        for name in ("n_filters", "base_width", "lde_clusters", "embed_dim", "sample_rate"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"model.{name} must be positive")
        if self.kernel_ms <= 0 or self.hop_ms <= 0:
            raise ValueError("model.kernel_ms and model.hop_ms must be positive")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelArgs":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model argument(s): {sorted(unknown)}")
        return cls(**d)


# the largest value an embedding of a sound model may hold: the shipped models' are below
# 30 (norms 100-300), and the caches keep them as float16 (at most 65,504)
MAX_ABS_EMBEDDING = 1e4


def check_embeddings(emb: np.ndarray, model: str = "this model") -> None:
    """Refuse embeddings no sound model gives (NaN, Inf, or values above
    :data:`MAX_ABS_EMBEDDING`) before any score is computed from them: ValueError naming
    the model, whose weights are then corrupt."""
    emb = np.asarray(emb)
    if emb.size and (not np.isfinite(emb).all() or np.abs(emb).max() > MAX_ABS_EMBEDDING):
        worst = np.nanmax(np.abs(np.where(np.isfinite(emb), emb, np.inf)))
        raise ValueError(f"{model} gave embeddings no sound model gives (values up to {worst:.3g}; plausible: below "
                         f"{MAX_ABS_EMBEDDING:.0e}); its weights are corrupt: restore the model folder")


class InstrumentEncoder(nn.Module):
    """Waveform (batch, samples) at 16 kHz -> embedding (batch, embed_dim)."""

    def __init__(self, args: ModelArgs | None = None, **kw):
        super().__init__()
        self.args = args if args is not None else ModelArgs(**kw)
        a = self.args
        self.frontend = SincConv(a.n_filters, a.init, a.sample_rate, a.kernel_ms, a.hop_ms, a.min_low_hz,
                                 a.min_band_hz, a.learnable, a.mel_min_hz, a.quadrature)
        self.encoder = ResNetEncoder(a.base_width, a.blocks)
        self.pooling = make_pooling(a.pooling, self.encoder.out_dim, a.lde_clusters)
        self.projection = nn.Linear(self.pooling.out_dim, a.embed_dim)
        self.label_maps: dict[str, list[str]] = {}
        self.metadata: dict = {}

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, embed_dim) float32. The front-end always runs in fp32."""
        with torch.autocast(device_type=wave.device.type, enabled=False):
            feats = self.frontend(wave.float())
        frames = self.pooling(self.encoder(feats))
        return self.projection(frames.float()).float()

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def embed(self, waveforms: Sequence[np.ndarray] | np.ndarray, batch_size: int | None = None, window_s: float = 4.0,
              device: str | torch.device | None = None, bf16: bool = False, progress=None) -> np.ndarray:
        """Embeddings of clips of any length: (n, embed_dim) float32, in input order.

        Args:
            waveforms: a list of 1-D float arrays at 16 kHz (int16 is scaled by 1/32768),
                or a 2-D array of equal-length clips.
            batch_size: clips (or windows) per forward pass (default: ``EMBED_BATCH`` for
                the precision; any size gives the same embeddings up to float rounding).
            window_s: long-clip policy (module docstring).
            bf16: bf16 autocast (default False: fp32, so embeddings are the same on every
                CPU; the trainer's validation turns it on where the CPU has bf16).
            progress: ``progress(done, total)``.
        """
        was_training = self.training
        self.eval()
        device = torch.device(device) if device is not None else next(self.parameters()).device
        use_bf16 = bool(bf16)
        if batch_size is None:
            batch_size = EMBED_BATCH["bf16" if use_bf16 else "fp32"]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if use_bf16:  # bf16 convolutions are fast in channels_last (1.7x measured on this CPU)
            self.encoder.to(memory_format=torch.channels_last)
        sr = self.args.sample_rate
        win = int(round(window_s * sr))
        min_len = int(round(MIN_SECONDS * sr))
        # windows of every clip, grouped by length so a batch is one tensor
        pieces: list[tuple[int, np.ndarray]] = []
        for i, w in enumerate(waveforms):
            w = np.asarray(w)
            w = w.astype(np.float32) / 32768.0 if w.dtype == np.int16 else w.astype(np.float32, copy=False)
            if w.ndim != 1:
                raise ValueError(f"clip {i} is not one-dimensional (shape {w.shape})")
            if len(w) < min_len:
                w = np.pad(w, (0, min_len - len(w)))
            if len(w) <= win:
                pieces.append((i, w))
            else:
                starts = list(range(0, len(w) - win + 1, win // 2))
                if starts[-1] != len(w) - win:
                    starts.append(len(w) - win)
                pieces.extend((i, w[s : s + win]) for s in starts)
        n = len(waveforms)
        out = np.zeros((n, self.args.embed_dim), dtype=np.float64)
        counts = np.zeros(n)
        by_len: dict[int, list[int]] = {}
        for k, (_, w) in enumerate(pieces):
            by_len.setdefault(len(w), []).append(k)
        done = 0
        for length, ks in by_len.items():
            for s in range(0, len(ks), batch_size):
                chunk = ks[s : s + batch_size]
                x = torch.from_numpy(np.stack([pieces[k][1] for k in chunk])).to(device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    e = self(x).float().cpu().numpy()
                for k, row in zip(chunk, e):
                    out[pieces[k][0]] += row
                    counts[pieces[k][0]] += 1
                done += len(chunk)
                if progress:
                    progress(done, len(pieces))
        if was_training:
            self.train()
        emb = (out / np.maximum(counts, 1)[:, None]).astype(np.float32)
        check_embeddings(emb, getattr(self, "source", "this model"))
        return emb

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


