"""Register pairs: a contrastive term that asks two notes of one instrument, far apart in
pitch, to find each other (issue 29; config section ``pairs``, :class:`training.config.PairConfig`).

The batch's first ``2 P`` clips are P pairs ``(a_0, b_0, a_1, b_1, ...)``, each two single
notes of one training instrument at least ``pairs.min_semitones`` apart
(:meth:`training.data.ClipSampler.batch` with ``pair_count``). :func:`pair_loss` is the
symmetric InfoNCE of those pairs (as in SimCLR / CLIP, here with the speaker-verification
reading: the partner is the enrolment, the other pairs' notes the impostors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pair_loss(emb: torch.Tensor, instrument: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE over the register pairs at the head of a batch.

    emb: (2 P, D) embeddings of the pairs' clips, ``a_k = emb[2k]``, ``b_k = emb[2k + 1]``;
    instrument: (2 P,) their instrument labels (a pair shares one); temperature: the cosine's
    divisor. Logits ``cos(a_i, b_j) / temperature``; each ``a_i`` is classified to ``b_i``
    and each ``b_i`` to ``a_i``; another pair of the same instrument is masked out, not
    counted as an impostor. Returns the mean cross-entropy, a scalar (float32): ``log P``
    for random embeddings, 0 when every partner is nearer than every impostor by far.

    >>> import torch
    >>> torch.manual_seed(0) and None
    >>> e = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    >>> same = torch.stack([e[0], e[0], e[1], e[1]])  # each pair one point
    >>> bool(pair_loss(same, torch.tensor([0, 0, 1, 1]), 0.05) < pair_loss(e, torch.tensor([0, 0, 1, 1]), 0.05))
    True
    """
    if emb.ndim != 2 or emb.shape[0] % 2 or emb.shape[0] < 4:
        raise ValueError(f"pair_loss needs (2 P, D) embeddings with P >= 2 pairs, not {tuple(emb.shape)}")
    z = F.normalize(emb.float(), dim=1)
    a, b = z[0::2], z[1::2]
    ya, yb = instrument[0::2], instrument[1::2]
    if not bool((ya == yb).all()):
        raise ValueError("pair_loss: each pair's two clips must be of one instrument")
    logits = a @ b.T / temperature
    p = a.shape[0]
    eye = torch.eye(p, dtype=torch.bool, device=emb.device)
    other_same = (ya[:, None] == yb[None, :]) & ~eye  # a second pair of the same instrument: no impostor
    logits = logits.masked_fill(other_same, float("-inf"))
    target = torch.arange(p, device=emb.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
