"""2-D maps of embeddings (paper Sec. VI-A, Fig. 4): PCA, t-SNE and UMAP.

All take (n, d) embeddings and return (n, 2) float32 coordinates; randomness comes
from an explicit seed. Embeddings are L2-normalised first (the verification score is
a cosine), and t-SNE/UMAP use the cosine metric.

Placing new points on an existing map (an uploaded clip on the map page):

* UMAP: ``umap.UMAP.transform`` of the fitted model (:class:`MapModel`).
* t-SNE has no out-of-sample mapping. We place a new point at the similarity-weighted
  mean of the map positions of its ``k`` nearest neighbours (cosine) in the mapped
  set, weights softmax(cos / 0.05): the point lands among the clips it most resembles.
* PCA: the fitted projection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mie_core.evaluation.embeddings import unit as _unit

METHODS = ("pca", "tsne", "umap")


def unit(x: np.ndarray) -> np.ndarray:
    return _unit(x, np.float64)


@dataclass
class MapModel:
    method: str
    coords: np.ndarray  # (n, 2) float32
    reference: np.ndarray  # (n, d) unit embeddings that were mapped
    fitted: Any = None  # the PCA/UMAP estimator

    def place(self, new: np.ndarray, k: int = 10) -> np.ndarray:
        """(m, 2) positions of new embeddings on this map (module docstring)."""
        new = unit(np.atleast_2d(new))
        if self.method in ("pca", "umap") and self.fitted is not None:
            return np.asarray(self.fitted.transform(new), dtype=np.float32)
        return knn_place(self.reference, self.coords, new, k)


def knn_place(reference: np.ndarray, coords: np.ndarray, new: np.ndarray, k: int = 10, temperature: float = 0.05) -> np.ndarray:
    """Similarity-weighted mean position of the k nearest (cosine) mapped points."""
    sims = unit(new) @ unit(reference).T  # (m, n)
    k = min(k, reference.shape[0])
    nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(sims, nn, axis=1)
    w = np.exp((s - s.max(1, keepdims=True)) / temperature)
    w /= w.sum(1, keepdims=True)
    return np.einsum("mk,mkc->mc", w, np.asarray(coords)[nn]).astype(np.float32)


def fit_map(embeddings: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
            n_neighbors: int = 15, min_dist: float = 0.1) -> MapModel:
    """Fit a 2-D map. ``perplexity`` is t-SNE's; ``n_neighbors``/``min_dist`` UMAP's."""
    x = unit(embeddings)
    n = x.shape[0]
    if n < 3:
        raise ValueError("a map needs at least three points")
    if method == "pca":
        from sklearn.decomposition import PCA

        est = PCA(n_components=2, random_state=seed).fit(x)
        return MapModel(method, est.transform(x).astype(np.float32), x, est)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perp = float(min(perplexity, max(2.0, (n - 1) / 3.0)))
        coords = TSNE(n_components=2, perplexity=perp, metric="cosine", init="pca", random_state=seed).fit_transform(x)
        return MapModel(method, coords.astype(np.float32), x, None)
    if method == "umap":
        import umap

        est = umap.UMAP(n_components=2, n_neighbors=int(min(n_neighbors, n - 1)), min_dist=min_dist, metric="cosine",
                        random_state=seed, n_jobs=1)
        coords = est.fit_transform(x)
        return MapModel(method, np.asarray(coords, dtype=np.float32), x, est)
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def one_pitch(meta: pd.DataFrame, pitch: int | None = None) -> np.ndarray:
    """Fig. 4's view: indices of the notes at one pitch (default: the pitch most
    instruments have, ties to the one nearest MIDI 60), one note per instrument (the
    loudest velocity present)."""
    if pitch is None:
        per = meta.groupby("pitch")["instrument_str"].nunique()
        best = per[per == per.max()].index.to_numpy()
        pitch = int(best[np.argmin(np.abs(best - 60))])
    sub = meta[meta["pitch"] == pitch]
    idx = sub.sort_values("velocity").groupby("instrument_str").tail(1).index.to_numpy()
    return np.sort(idx)
