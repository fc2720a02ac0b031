"""Static figures of the report (matplotlib, PNG): DET curves, the significance
matrix (Figs. 2-3), a family-coloured map (Fig. 4) and probing bars (Fig. 5).

Each function returns a matplotlib Figure; the caller saves it. The app draws the
same data interactively with plotly (:mod:`pages`).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.special import ndtri  # noqa: E402

DET_TICKS = [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def det_figure(results: dict):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, rec in results["models"].items():
        d = rec["det"]
        ax.plot(d["probit_fa"], d["probit_miss"], label=f"{name} (EER {100 * rec['eer']:.2f} %)")
    ticks = ndtri(DET_TICKS)
    ax.set_xticks(ticks, [f"{100 * t:g}" for t in DET_TICKS])
    ax.set_yticks(ticks, [f"{100 * t:g}" for t in DET_TICKS])
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.plot([ticks[0], ticks[-1]], [ticks[0], ticks[-1]], color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title("DET, unseen instruments")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def significance_figure(results: dict):
    sig = results["significance"]
    names = sig["names"]
    s = np.asarray(sig["significant"], dtype=float)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * k, 1.0 + 0.6 * k))
    ax.imshow(s, cmap="Greys", vmin=0, vmax=1.6)
    for i in range(k):
        for j in range(k):
            if i != j:
                ax.text(j, i, f"{sig['z'][i][j]:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if s[i, j] else "black")
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_title("z (shaded: significant, Holm alpha=0.05)", fontsize=9)
    fig.tight_layout()
    return fig


def map_figure(coords: np.ndarray, labels, title: str = ""):
    fig, ax = plt.subplots(figsize=(6, 5))
    labels = np.asarray(labels).astype(str)
    cmap = plt.get_cmap("tab20")
    for i, lab in enumerate(sorted(set(labels))):
        m = labels == lab
        ax.scatter(coords[m, 0], coords[m, 1], s=14, color=cmap(i % 20), label=lab)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, markerscale=1.2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def probing_figure(table: pd.DataFrame, metric: str = "macro_f1"):
    """Fig. 5: grouped bars of F1 per label, one bar per (model, classifier), majority dashed."""
    labels = list(dict.fromkeys(table["label"]))
    groups = list(dict.fromkeys(zip(table["model"], table["classifier"])))
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels), 4))
    width = 0.8 / max(1, len(groups))
    for g, (model, clf) in enumerate(groups):
        sub = table[(table["model"] == model) & (table["classifier"] == clf)].set_index("label")
        vals = [sub[metric].get(l, np.nan) for l in labels]
        ax.bar(np.arange(len(labels)) + g * width, vals, width, label=f"{model} / {clf}")
    maj = table.groupby("label")[f"majority_{metric}"].mean()
    for i, l in enumerate(labels):
        ax.hlines(maj.get(l, np.nan), i - 0.05, i + 0.85, colors="k", linestyles="dashed", lw=1)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("probing unseen-instrument embeddings (dashed: majority vote)", fontsize=9)
    fig.tight_layout()
    return fig
