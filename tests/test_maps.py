"""mie_core.explore.maps: seeded 2-D maps that keep clusters apart."""
from __future__ import annotations

import numpy as np
import pytest

from mie_core.explore import maps


# ------------------------------------------------------------------ maps
@pytest.mark.parametrize("method", maps.METHODS)
def test_maps_are_seeded_and_keep_clusters_apart(method):
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(size=(40, 16)) + 8 * np.eye(16)[0], rng.normal(size=(40, 16)) + 8 * np.eye(16)[1]])
    a = maps.fit_map(emb, method, seed=3)
    b = maps.fit_map(emb, method, seed=3)
    np.testing.assert_allclose(a.coords, b.coords, rtol=1e-4, atol=1e-4)
    c0, c1 = a.coords[:40].mean(0), a.coords[40:].mean(0)
    spread = max(a.coords[:40].std(0).max(), a.coords[40:].std(0).max())
    assert np.linalg.norm(c0 - c1) > 2 * spread
    # a new point like the first cluster lands nearer the first cluster
    p = a.place(emb[:1] + 0.01)[0]
    assert np.linalg.norm(p - c0) < np.linalg.norm(p - c1)


def test_one_pitch_view(tiny_corpus):
    idx = maps.one_pitch(tiny_corpus.notes, 60)
    sub = tiny_corpus.notes.iloc[idx]
    assert (sub["pitch"] == 60).all() and sub["instrument_str"].is_unique
    auto = tiny_corpus.notes.iloc[maps.one_pitch(tiny_corpus.notes)]
    assert auto["pitch"].nunique() == 1
