"""The paper's note-concatenation augmentation (Sec. V-B-2) and training crops.

Half of the training examples are plain notes; the other half are made by trimming
the silence off randomly chosen notes of the *same instrument* and concatenating them
up to a random segment length of 3-5 s. Every random choice comes from the
``numpy.random.Generator`` passed in, so a training run is reproducible.

What we do differently from the authors' release, on purpose:
  * the segment length is drawn per example (uniform in [min_s, max_s]) and the
    concatenation is cut to exactly that length, never zero-padded at the end;
  * the notes of one concatenation are drawn without replacement while the
    instrument has enough notes, so one clip does not repeat a note;
  * plain notes are not trimmed (their onset and release stay as recorded), and the
    label of a concatenation is the instrument whose notes it holds.
"""
from __future__ import annotations

import numpy as np


def concat_notes(
    notes: list[np.ndarray], length: int, rng: np.random.Generator
) -> np.ndarray:
    """Concatenate trimmed notes (drawn from ``notes``) to exactly ``length`` samples.

    Args:
        notes: trimmed notes of one instrument, each (n_i,) float32, n_i > 0.
        length: output length in samples.
        rng: random generator (order of the notes).

    Returns:
        (length,) float32.
    """
    if not notes:
        raise ValueError("concat_notes needs at least one note")
    out = np.empty(length, dtype=np.float32)
    pos = 0
    order = rng.permutation(len(notes))
    k = 0
    while pos < length:
        if k == len(order):  # all used once: start a new permutation
            order = rng.permutation(len(notes))
            k = 0
        note = notes[order[k]]
        k += 1
        if len(note) == 0:
            continue
        take = min(len(note), length - pos)
        out[pos : pos + take] = note[:take]
        pos += take
    return out


def random_crop(x: np.ndarray, length: int, rng: np.random.Generator, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """A ``length``-sample window of ``x`` starting uniformly in [lo, hi - length].

    ``lo``/``hi`` bound the window (e.g. a note's non-silent region); when the region is
    shorter than ``length`` the window starts at ``lo`` and is zero-padded at the end.
    """
    hi = len(x) if hi is None else hi
    span = hi - lo
    if span <= length:
        seg = x[lo : lo + length]
        if len(seg) < length:
            seg = np.pad(seg, (0, length - len(seg)))
        return seg
    start = lo + int(rng.integers(0, span - length + 1))
    return x[start : start + length]
