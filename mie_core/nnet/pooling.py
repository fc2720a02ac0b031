"""Temporal pooling: a sequence of frame vectors to one fixed-size vector (Sec. IV-B).

* :class:`LDE`, learnable dictionary encoding (Cai et al. 2018), the paper's choice.
* :class:`StatsPool`, mean and standard deviation over time (x-vector).
* :class:`AttentiveStatsPool`, attention-weighted mean and standard deviation.

All take (batch, dim, frames) and return (batch, out_dim).
"""
from __future__ import annotations

import torch
from torch import nn


class LDE(nn.Module):
    """Learnable dictionary encoding with C clusters.

    For frame x_t and centre mu_c, with r_tc = x_t - mu_c:
        w_tc = softmax_c(-s_c^2 ||r_tc||^2),
        e_c  = sum_t w_tc r_tc / sum_t w_tc,
    output = concat_c e_c, (batch, C * dim). The residual sums are computed without
    materialising (batch, T, C, dim): sum_t w r = sum_t w x - (sum_t w) mu.
    """

    def __init__(self, dim: int, n_clusters: int = 32):
        super().__init__()
        self.dim = int(dim)
        self.n_clusters = int(n_clusters)
        self.mu = nn.Parameter(torch.empty(n_clusters, dim).uniform_(-1.0, 1.0))
        # s_c^2 ||r||^2 starts around 1 for residuals of unit variance per dimension
        self.s = nn.Parameter(torch.full((n_clusters,), dim**-0.5))
        self.out_dim = self.dim * self.n_clusters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).float()  # (B, T, D)
        mu = self.mu.float()
        # ||x - mu||^2 = ||x||^2 - 2 x.mu + ||mu||^2  -> (B, T, C)
        d2 = (x * x).sum(-1, keepdim=True) - 2 * x @ mu.t() + (mu * mu).sum(-1)[None, None, :]
        w = torch.softmax(-(self.s.float() ** 2)[None, None, :] * d2.clamp_min(0), dim=-1)
        wsum = w.sum(1)  # (B, C)
        e = (w.transpose(1, 2) @ x - wsum[:, :, None] * mu[None]) / (wsum[:, :, None] + 1e-9)
        return e.reshape(x.shape[0], -1)


class StatsPool(nn.Module):
    """Mean and standard deviation over time: (B, D, T) -> (B, 2D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = 2 * int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = x.mean(-1)
        std = torch.sqrt(x.var(-1, unbiased=False).clamp_min(1e-6))
        return torch.cat([mean, std], -1)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): (B, D, T) -> (B, 2D)."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(dim, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, dim, 1))
        self.out_dim = 2 * int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        w = torch.softmax(self.attention(x), dim=-1)
        mean = (w * x).sum(-1)
        var = (w * x * x).sum(-1) - mean * mean
        return torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], -1)


def make_pooling(kind: str, dim: int, n_clusters: int = 32) -> nn.Module:
    if kind == "lde":
        return LDE(dim, n_clusters)
    if kind == "stats":
        return StatsPool(dim)
    if kind == "attentive":
        return AttentiveStatsPool(dim)
    raise ValueError(f"pooling must be 'lde', 'stats' or 'attentive', not {kind!r}")
