"""Verify and identify clips with a model and its scoring back-end: what the Verify page,
``python -m mie_core verify`` and ``python -m mie_core identify`` all call.

A shipped model folder (``cache/models/<name>``) holds, beside the checkpoint:

* ``backend.json``, ``backend_mean.npy``, ``backend_cohort.npy`` (and
  ``backend_projection.npy`` for a back-end with an LDA): the calibrated scoring back-end
  (:class:`mie_core.scoring.Backend`);
* ``centroids.npy`` (float16, one unit vector per corpus instrument in the back-end's
  scoring space) and
  ``instruments.json`` (their labels): every instrument of the corpus, for identification.

:func:`verify` gives per clip the AS-norm score, the calibrated probability that the
clip comes from the enrolled instrument (at a stated prior), the verdict, and whether
the clip is typical of what the model was trained on. :func:`identify` ranks corpus
instruments, one per General MIDI program (the same preset from four soundfonts does not
fill the list), naming family and instrument type.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import gm
from .embeddings import resolve_precision, unit
from .scoring import Backend

DEFAULT_PRIOR = 0.5


@dataclass
class Verifier:
    """A model ready to embed, verify and identify clips."""

    path: Path
    encoder: object
    backend: Backend | None
    centroids: np.ndarray | None  # (n_instruments, k) unit vectors of the back-end's scoring space
    instruments: pd.DataFrame | None  # one row per centroid: instrument_str, family, program, ...
    precision: str = "fp32"

    def embed(self, clips) -> np.ndarray:
        return self.encoder.embed(list(clips), bf16=self.precision == "bf16")

    @property
    def can_calibrate(self) -> bool:
        return self.backend is not None and self.backend.calibration is not None


def load_verifier(model_dir: str | Path, precision: str = "auto") -> Verifier:
    """The checkpoint, and its back-end and centroids where the folder has them."""
    from .model import InstrumentEncoder

    folder = Path(model_dir)
    enc = InstrumentEncoder.from_checkpoint(folder)
    backend = Backend.load(folder) if Backend.exists(folder) else None
    cents = info = None
    if (folder / "centroids.npy").exists() and (folder / "instruments.json").exists():
        cents = np.load(folder / "centroids.npy", allow_pickle=False).astype(np.float32)
        info = pd.DataFrame(json.loads((folder / "instruments.json").read_text()))
        if len(info) != len(cents):
            raise ValueError(f"{folder}: centroids.npy and instruments.json do not match ({len(cents)} vs {len(info)})")
    return Verifier(folder, enc, backend, cents, info, resolve_precision(precision))


INFO_COLUMNS = ["instrument_family_str", "instrument_source_str", "playing_style", "soundfont", "bank", "program",
                "preset_name", "gain_db", "part"]


def instrument_centroids(backend: Backend, bank_emb: np.ndarray, bank_rows: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """One centred unit centroid per instrument of the ``bank`` part, with its labels (sorted by id)."""
    groups = bank_rows.groupby("instrument_str", sort=True)
    info = groups[[c for c in INFO_COLUMNS if c in bank_rows]].first().reset_index()
    v = backend.vectors(bank_emb)
    idx = groups.indices
    cents = unit(np.stack([v[idx[i]].mean(0) for i in info["instrument_str"]]))
    return cents.astype(np.float32), info


def identification_rates(backend: Backend, centroids: np.ndarray, info: pd.DataFrame, emb: np.ndarray,
                         rows: pd.DataFrame) -> dict:
    """How often the nearest corpus instrument (one per GM program, as :func:`identify` lists
    them) has the clip's family, and its program at rank 1 and within the top 5."""
    q = backend.vectors(emb)
    scores = q @ centroids.T
    prog = info["program"].to_numpy()
    fam = info["instrument_family_str"].to_numpy()
    top1_fam, top1_prog, top5_prog = [], [], []
    for row, f, p in zip(scores, rows["instrument_family_str"], rows["program"]):
        order = np.argsort(-row)
        _, first = np.unique(prog[order], return_index=True)
        ranked = order[np.sort(first)]  # best instrument of each program, best program first
        top1_fam.append(fam[ranked[0]] == f)
        top1_prog.append(prog[ranked[0]] == p)
        top5_prog.append(p in prog[ranked[:5]])
    return {"family_top1": float(np.mean(top1_fam)), "program_top1": float(np.mean(top1_prog)),
            "program_top5": float(np.mean(top5_prog)), "n_clips": int(len(rows))}


def verify(v: Verifier, enrol_emb: np.ndarray, test_emb: np.ndarray, prior: float = DEFAULT_PRIOR) -> pd.DataFrame:
    """One row per test clip: ``score`` (AS-norm; raw cosine without a back-end),
    ``probability`` (calibrated, at ``prior``; NaN without calibration), ``accept``
    (probability >= 0.5, i.e. LLR >= -logit(prior)) and ``typical`` (the clip is as close
    to training instruments as 99 % of held-out notes; None without a back-end)."""
    if not 0.0 < prior < 1.0:
        raise ValueError(f"the prior must lie strictly between 0 and 1, not {prior}")
    test_emb = np.atleast_2d(test_emb)
    if v.backend is None:
        e = unit(unit(np.atleast_2d(enrol_emb)).mean(0))
        s = unit(test_emb) @ e
        return pd.DataFrame({"score": s.astype(float), "probability": np.nan, "accept": None, "typical": None})
    be = v.backend
    enrol = be.enrol(enrol_emb)
    s = be.score(enrol, test_emb)
    out = pd.DataFrame({"score": s})
    if be.calibration is not None:
        p = be.posterior(s, prior)
        out["probability"] = p
        out["accept"] = p >= 0.5
    else:
        out["probability"] = np.nan
        out["accept"] = None
    out["typical"] = (be.typicality(test_emb) >= be.typical_min) if be.typical_min is not None else None
    return out


def identify(v: Verifier, emb: np.ndarray, top: int = 5, group_by: str = "program") -> list[pd.DataFrame]:
    """Per clip, the ``top`` nearest corpus instruments, best one per ``group_by`` value
    (``program``: one per General MIDI instrument type), with score, family and type."""
    if v.centroids is None or v.backend is None:
        raise ValueError(f"{v.path} has no instrument centroids; they come with the shipped cache "
                         "(python -m training.build_cache)")
    q = v.backend.vectors(np.atleast_2d(emb))
    scores = q @ v.centroids.T
    out = []
    info = v.instruments
    for row in scores:
        order = np.argsort(-row)
        seen, picks = set(), []
        for i in order:
            g = info[group_by].iat[i]
            if g in seen:
                continue
            seen.add(g)
            picks.append(i)
            if len(picks) == top:
                break
        t = info.iloc[picks].copy().reset_index(drop=True)
        t.insert(0, "score", row[picks].astype(float))
        if "program" in t:
            t.insert(1, "type", [gm.program_name(p) for p in t["program"]])
        out.append(t)
    return out


def identify_enrolled(v: Verifier, emb: np.ndarray, enrolled: dict[str, np.ndarray],
                      prior: float = DEFAULT_PRIOR) -> pd.DataFrame:
    """1:N identification against the user's enrolled instruments: one row per clip and
    enrolled instrument, with score and calibrated probability, best first per clip."""
    rows = []
    for name, enrol_emb in enrolled.items():
        r = verify(v, enrol_emb, emb, prior)
        r.insert(0, "clip", np.arange(len(r)))
        r.insert(1, "instrument", name)
        rows.append(r)
    if not rows:
        return pd.DataFrame(columns=["clip", "instrument", "score", "probability", "accept", "typical"])
    return pd.concat(rows).sort_values(["clip", "score"], ascending=[True, False]).reset_index(drop=True)
