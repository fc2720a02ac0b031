"""Consistency with a frozen teacher while training through the recording chain.

Fine-tuning a clean model on clips that went through rooms, microphones, noise and
codecs teaches it invariance to them, but also lets its embedding drift away from the
geometry that served clean studio recordings (README, the ablations: the chain costs real
notes 1.6-3.6 EER points). Here the clean model is kept as a frozen teacher; every
training clip goes to the teacher as rendered and to the student through the chain, and
the student is asked to put the wet clip where the teacher puts the clean one, beside its
classification losses (``distill`` section of the config, :class:`training.config.DistillConfig`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from mie_core.nnet.checkpoint import load_encoder
from mie_core.nnet.model import InstrumentEncoder


def relative_mse(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean squared distance between paired embeddings over the teacher's own spread.

    student, teacher: (batch, dim), batch >= 2. Returns a scalar:
    ``mean_b ||s_b - t_b||^2 / mean_b ||t_b - mean(t)||^2``. It is 0 when the student
    reproduces the teacher, 1 when its error is as large as the spread of the teacher's
    embeddings within the batch; it does not change when both are scaled or shifted
    together, so the weight means the same whatever the embeddings' scale or offset (ours
    are far from centred: the mean of their unit vectors has norm 0.94). The teacher
    gets no gradient.
    """
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(f"need two (batch, dim) tensors of one shape, not {tuple(student.shape)} and "
                         f"{tuple(teacher.shape)}")
    if student.shape[0] < 2:
        raise ValueError("the teacher's spread needs a batch of at least two clips")
    t = teacher.detach().float()
    s = student.float()
    spread = (t - t.mean(0, keepdim=True)).pow(2).sum(1).mean()
    return (s - t).pow(2).sum(1).mean() / (spread + eps)


def load_teacher(path: str | Path, model_args, device: torch.device) -> InstrumentEncoder:
    """The frozen teacher encoder (eval mode, no gradients) from a checkpoint folder whose
    model arguments are ``model_args``."""
    teacher = load_encoder(path)
    if teacher.args != model_args:
        raise ValueError(f"the teacher {path} has other model arguments than the student: "
                         f"{teacher.args} vs {model_args}")
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
