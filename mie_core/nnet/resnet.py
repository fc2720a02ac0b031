"""ResNet34 encoder over the sinc filterbank "image" (paper Sec. IV-B).

BasicBlock residual network, blocks [3, 4, 6, 3], widths w, 2w, 4w, 8w (authors'
release: w = 16, about 1.3 M parameters; current speaker-verification practice:
w = 32). The first convolution is 7x7 with stride 1 and there is no max-pool; stage
k >= 2 halves both axes in its first block. The frequency axis is averaged away at
the end, so the output is a sequence of 8w-dimensional frame vectors.

Shapes: (batch, n_filters, frames) -> (batch, 8w, ceil(frames / 8)).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """ResNet over (batch, freq, time); see the module docstring.

    Args:
        base_width: channels of the first stage (16 paper release, 32 modern).
        blocks: residual blocks per stage ([3, 4, 6, 3] is ResNet34).
    """

    def __init__(self, base_width: int = 16, blocks: Sequence[int] = (3, 4, 6, 3)):
        super().__init__()
        w = int(base_width)
        self.stem = nn.Sequential(nn.Conv2d(1, w, 7, 1, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        layers = []
        c_in = w
        for i, n in enumerate(blocks):
            c_out = w * 2**i
            for j in range(n):
                layers.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x[:, None])
        x = self.layers(x)
        return x.mean(dim=2)  # average over frequency: (batch, channels, frames)
