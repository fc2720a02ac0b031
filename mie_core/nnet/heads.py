"""Classification heads on the embedding (Sec. IV-C, Table II).

* :class:`ASoftmax`: SphereFace angular softmax with integer margin m (paper: 2) and
  the usual annealing, f_y = (lambda |x| cos t + |x| psi(t)) / (1 + lambda),
  psi(t) = (-1)^k cos(m t) - 2k for t in [k pi/m, (k+1) pi/m],
  lambda = max(lambda_min, lambda_base / (1 + gamma * iteration)).
* :class:`AAMSoftmax`: additive angular margin (ArcFace), s cos(t + m): current
  speaker-verification practice, an option beyond the paper.
* :class:`LinearSoftmax`: plain softmax cross-entropy ("w/o A-softmax").

Each head maps (batch, dim) embeddings and integer labels to (logits, loss).
:class:`DualHead` puts an instrument head and a family head on the batch-normalised
embedding, loss = CE_instrument + family_weight * CE_family, and optionally a
:class:`PitchAdversary` (beyond the paper): a MIDI-pitch classifier behind a gradient
reversal (Ganin & Lempitsky, 2015), whose loss is added whole while the encoder receives
its gradient reversed and scaled by ``pitch_weight``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class LinearSoftmax(nn.Module):
    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x, labels=None, iteration: int = 0):
        logits = self.fc(x)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return logits, loss


class ASoftmax(nn.Module):
    def __init__(self, dim: int, n_classes: int, margin: int = 2, lambda_base: float = 1500.0,
                 lambda_gamma: float = 0.01, lambda_min: float = 5.0):
        super().__init__()
        if int(margin) != margin or margin < 1:
            raise ValueError("A-softmax margin must be a positive integer")
        self.m = int(margin)
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.lambda_base, self.lambda_gamma, self.lambda_min = lambda_base, lambda_gamma, lambda_min

    def lam(self, iteration: int) -> float:
        return max(self.lambda_min, self.lambda_base / (1.0 + self.lambda_gamma * iteration))

    def forward(self, x, labels=None, iteration: int = 0):
        x = x.float()
        norm = x.norm(dim=1, keepdim=True).clamp_min(1e-6)
        cos = (F.normalize(x, dim=1) @ F.normalize(self.weight.float(), dim=1).t()).clamp(-1, 1)
        logits = norm * cos
        if labels is None:
            return logits, None
        c = cos.gather(1, labels[:, None])
        theta = torch.acos(c.clamp(-1 + 1e-7, 1 - 1e-7))
        k = torch.floor(theta * self.m / math.pi).detach()
        cos_m = torch.cos(self.m * theta)
        psi = (1.0 - 2.0 * torch.remainder(k, 2)) * cos_m - 2.0 * k
        lam = self.lam(iteration)
        target = norm * (lam * c + psi) / (1.0 + lam)
        logits_m = logits.scatter(1, labels[:, None], target)
        return logits, F.cross_entropy(logits_m, labels)


class AAMSoftmax(nn.Module):
    def __init__(self, dim: int, n_classes: int, margin: float = 0.2, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.m, self.s = float(margin), float(scale)

    def forward(self, x, labels=None, iteration: int = 0):
        cos = (F.normalize(x.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).t()).clamp(-1, 1)
        logits = self.s * cos
        if labels is None:
            return logits, None
        c = cos.gather(1, labels[:, None])
        target = torch.cos(torch.acos(c.clamp(-1 + 1e-7, 1 - 1e-7)) + self.m)
        # keep the target logit monotone past theta = pi - m (ArcFace's "easy margin" fallback)
        target = torch.where(c > math.cos(math.pi - self.m), target, c - math.sin(math.pi - self.m) * self.m)
        return logits, F.cross_entropy(logits.scatter(1, labels[:, None], self.s * target), labels)


def make_head(kind: str, dim: int, n_classes: int, **kw) -> nn.Module:
    if kind == "asoftmax":
        return ASoftmax(dim, n_classes, margin=int(kw.get("margin", 2)), lambda_base=kw.get("lambda_base", 1500.0),
                        lambda_gamma=kw.get("lambda_gamma", 0.01), lambda_min=kw.get("lambda_min", 5.0))
    if kind == "aam":
        return AAMSoftmax(dim, n_classes, margin=kw.get("margin", 0.2), scale=kw.get("scale", 30.0))
    if kind == "softmax":
        return LinearSoftmax(dim, n_classes)
    raise ValueError(f"head must be 'asoftmax', 'aam' or 'softmax', not {kind!r}")


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def reverse_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the gradient times ``-scale`` backward.

    >>> x = torch.ones(2, requires_grad=True)
    >>> reverse_grad(x, 0.5).sum().backward(); x.grad.tolist()
    [-0.5, -0.5]
    """
    return _ReverseGrad.apply(x, float(scale))


class PitchAdversary(nn.Module):
    """MIDI pitch (128 classes) from the embedding, through :func:`reverse_grad`.

    forward(z (batch, dim), pitch (batch,) int, -1 where a clip has no one pitch) ->
    (logits (batch, 128), mean CE over the labelled clips; 0 where none is labelled).
    The adversary's own weights learn from the plain CE; whatever feeds ``z`` receives the
    CE's gradient times ``-weight``: it learns to hide the pitch.
    """

    def __init__(self, dim: int, weight: float, hidden: int = 256, n_pitches: int = 128):
        super().__init__()
        self.weight = float(weight)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_pitches))

    def forward(self, z, pitch=None):
        logits = self.net(reverse_grad(z, self.weight))
        if pitch is None:
            return logits, None
        known = pitch >= 0
        if not bool(known.any()):
            return logits, logits.sum() * 0.0
        return logits, F.cross_entropy(logits[known], pitch[known])


class DualHead(nn.Module):
    """Instrument and family heads on BN(embedding); see the module docstring."""

    def __init__(self, dim: int, n_instruments: int, n_families: int, kind: str = "asoftmax",
                 family_weight: float = 1.0, pitch_weight: float = 0.0, **head_kw):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.instrument = make_head(kind, dim, n_instruments, **head_kw)
        self.family = make_head(kind, dim, n_families, **head_kw)
        self.family_weight = float(family_weight)
        # only where asked: a checkpoint without the adversary keeps its old set of weights
        self.pitch = PitchAdversary(dim, pitch_weight) if pitch_weight > 0 else None

    def forward(self, emb, instrument=None, family=None, iteration: int = 0, pitch=None):
        z = self.bn(emb.float())
        logits_i, loss_i = self.instrument(z, instrument, iteration)
        logits_f, loss_f = self.family(z, family, iteration)
        loss = None
        if loss_i is not None:
            loss = loss_i + (self.family_weight * loss_f if self.family_weight > 0 else 0.0 * loss_f)
        out = {"logits_instrument": logits_i, "logits_family": logits_f, "loss": loss,
               "loss_instrument": loss_i, "loss_family": loss_f}
        if self.pitch is not None:
            out["logits_pitch"], out["loss_pitch"] = self.pitch(z, pitch)
            if loss is not None and out["loss_pitch"] is not None:
                out["loss"] = loss + out["loss_pitch"]
        return out
