"""Verify and identify clips with a model and its scoring back-end: what the Verify page,
``python -m mie_core verify`` and ``python -m mie_core identify`` all call.

A shipped model folder (``cache/models/<name>``) holds, beside the checkpoint:

* ``backend.json``, ``backend_mean.npy``, ``backend_cohort.npy`` (and
  ``backend_projection.npy`` for a back-end with an LDA): the calibrated scoring back-end
  (:class:`mie_core.scoring.backend.Backend`);
* ``centroids.npy`` (float16, one unit vector per corpus instrument in the back-end's
  scoring space) and
  ``instruments.json`` (their labels): every instrument of the corpus, for identification;
* for a fused system (:mod:`mie_core.scoring.fusion`), ``fusion.json`` and the clean partner in
  ``clean/`` (its checkpoint and back-end). Such a system embeds a clip with both models:
  :meth:`Verifier.embed` gives the main model's embedding and the partner's side by side,
  ``(n, d_main + d_partner)``, and everything here takes that width;
  :meth:`Verifier.own` is the main model's part (maps, identification, exports).

A *system* folder (``cache/models/mel+cqt``) holds no checkpoint: its ``fusion.json``
names the model folders it fuses (``cqt122``, ``cqt122/clean``, ...; the first is the main
one), and its ``centroids.npy`` every corpus instrument in all members' scoring spaces side
by side (:meth:`Verifier.identify_vectors`). :func:`load_verifier` loads it as the fused
system of those members; everything below takes its width.

:func:`verify` gives per clip the AS-norm score, the calibrated probability that the
clip comes from the enrolled instrument (at a stated prior), the verdict, and whether
the clip is typical of what the model was trained on. :func:`identify` ranks corpus
instruments, one per General MIDI program (the same preset from four soundfonts does not
fill the list), naming family and instrument type.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.data import gm
from mie_core.evaluation.embeddings import model_hash, resolve_precision, unit
from mie_core.fileio import atomic_write_text
from mie_core.scoring.fusion import (FUSION_FILE, PAIR_FILE_ORDER, PAIR_TO_FILE, PARTNER_DIR, Fusion, QualityFusion,
                                     block_index, feature_index, folder_kind, member_vectors, pair_widths, system_llr)
from mie_core.scoring.backend import Backend, logit, sigmoid
from mie_core.scoring.condition import CONDITIONS, N_RECORDING, STUDIO, ConditionModel, describe, mixed_llr

DEFAULT_PRIOR = 0.5
REAL_CALIBRATION_FILE = "real_calibration.json"


@dataclass(frozen=True)
class RealCalibration:
    """What a system's verdicts use on real recordings: fitted on real notes of every source
    the project can reach, for recordings of sources it has never seen.

    ``kind`` "fusion": the fused system's weights refitted on real trials (``weights``
    (2m + 1,) over :func:`mie_core.scoring.fusion.fusion_features` and ``offset``; the
    condition detector and every member's back-end are the model's own); "affine": ``a llr +
    b`` on the model's own LLR (``weights`` (a,), ``offset`` b). With the figures it was
    measured at: ``held_out`` {source: EER and verdict rates with it fitted without that
    source} and ``as_shipped`` (the same trials with the model's own calibration), from
    :func:`mie_core.scoring.sources.measure_sources` (``training.build_cache --real-calibration-only``).

    ``condition``: where shipped, the recording-condition model (:mod:`mie_core.scoring.condition`:
    P(render, room, studio) of a clip) that lets :func:`verify` choose per trial between these
    weights and the system's own (``conditions="auto"``), with ``auto`` its figures per
    held-out source (the condition model and the weights both fitted without it) and
    ``renders`` the three modes' figures on the clean test and wet parts. ``auto_margin``:
    subtracted from the refitted weights' LLR in the automatic mix, so that its verdict holds
    on a source none of the fits saw (:func:`mie_core.scoring.sources.unseen_margin`; 0 in a
    file written before it).
    """

    kind: str
    weights: tuple[float, ...]
    offset: float
    held_out: dict
    as_shipped: dict
    fitted_on: dict
    condition: ConditionModel | None = None
    auto: dict | None = None
    renders: dict | None = None
    auto_margin: float = 0.0

    def figures(self, conditions: str) -> dict:
        """{source: figures} (and "pooled") of a mode: "auto", "studio" or "own"."""
        return {"auto": self.auto or self.held_out, "studio": self.held_out, "own": self.as_shipped}[conditions]

    def worst(self, conditions: str = "studio") -> tuple[float, float]:
        """The lowest genuine-accepted and impostors-rejected rates over the held-out sources."""
        per = [v for k, v in self.figures(conditions).items() if k != "pooled"]
        return min(v["genuine_accepted"] for v in per), min(v["impostors_rejected"] for v in per)

    def applied(self, v: "Verifier") -> "Verifier":
        """``v`` scoring with this calibration (a copy; the embeddings are the same).

        >>> from mie_core.scoring.fusion import Fusion, QualityFusion
        >>> v = Verifier("m", None, None, None, None, fusion=QualityFusion(None, Fusion(np.ones(5), 0.0)))
        >>> rc = RealCalibration("affine", (2.0,), -1.0, {}, {}, {})
        >>> f = rc.applied(v).fusion.fusion; f.weights.tolist(), f.offset
        ([2.0, 2.0, 2.0, 2.0, 2.0], -1.0)
        """
        w = np.asarray(self.weights, np.float64)
        if v.fusion is not None:
            own = v.fusion.fusion
            if self.kind == "fusion":
                if w.shape != own.weights.shape:
                    raise ValueError(f"{v.path}: its real-notes fusion has {w.size} weights, the system "
                                     f"{own.weights.size}")
                new = Fusion(w, float(self.offset))
            else:
                new = Fusion(w[0] * own.weights, float(w[0] * own.offset + self.offset))
            return dataclasses.replace(v, fusion=dataclasses.replace(v.fusion, fusion=new))
        if self.kind != "affine" or v.backend is None or v.backend.calibration is None:
            raise ValueError(f"{v.path}: a real-notes {self.kind} needs a calibrated model")
        a0, b0 = v.backend.calibration
        be = dataclasses.replace(v.backend, calibration=(float(w[0] * a0), float(w[0] * b0 + self.offset)))
        return dataclasses.replace(v, backend=be)

    def permuted(self, perm) -> "RealCalibration":
        """The same calibration over the members reordered by ``perm`` (as
        :meth:`mie_core.scoring.fusion.QualityFusion.permuted`; an affine one is unchanged). The
        members' widths are a pair's (halves), the only system whose files need it."""
        if self.kind != "fusion":
            return self
        weights = tuple(np.asarray(self.weights)[feature_index(perm)].tolist())
        cond = self.condition
        if cond is not None and cond.inputs != "recording":  # recording features do not depend on the members
            k = N_RECORDING if cond.inputs == "recording+members" else 0  # the member vectors follow them
            cols = np.concatenate([np.arange(k), k + block_index(perm, pair_widths(cond.coef.shape[1] - k,
                                                                                  "a condition model"))])
            cond = ConditionModel(cond.coef[:, cols], cond.intercept, cond.inputs)
        return dataclasses.replace(self, weights=weights, condition=cond)

    def save(self, folder: Path) -> None:
        """``real_calibration.json`` in ``folder`` (whole or not at all); a pair's folder in its
        file order (:data:`mie_core.scoring.fusion.PAIR_FILE_ORDER`): save a pair's only after
        its ``fusion.json`` and ``clean/``, which say that it is one."""
        rc = self
        if folder_kind(folder) == "pair":
            rc = self.permuted(PAIR_TO_FILE)
        d = {"kind": rc.kind, "weights": list(rc.weights), "offset": rc.offset, "held_out": rc.held_out,
             "as_shipped": rc.as_shipped, "fitted_on": rc.fitted_on}
        if rc.condition is not None:
            d.update(condition=rc.condition.to_dict(), auto=rc.auto, renders=rc.renders,
                     auto_margin=rc.auto_margin)
        atomic_write_text(Path(folder) / REAL_CALIBRATION_FILE, json.dumps(d, indent=1))

    @classmethod
    def load(cls, folder: Path) -> "RealCalibration | None":
        path = Path(folder) / REAL_CALIBRATION_FILE
        if not path.exists():
            return None
        try:
            d = json.loads(path.read_text())
            if "kind" in d:
                kind, weights, offset = str(d["kind"]), tuple(float(x) for x in d["weights"]), float(d["offset"])
            else:  # the first format: an affine recalibration
                kind, weights, offset = "affine", (float(d["a"]),), float(d["b"])
            cond = ConditionModel.from_dict(d["condition"]) if d.get("condition") else None
            rc = cls(kind, weights, offset, dict(d["held_out"]), dict(d["as_shipped"]), dict(d["fitted_on"]), cond,
                     dict(d["auto"]) if d.get("auto") else None, dict(d["renders"]) if d.get("renders") else None,
                     float(d.get("auto_margin", 0.0)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a real-notes calibration ({err})") from None
        if rc.kind not in ("fusion", "affine") or not (np.isfinite(rc.weights).all() and np.isfinite(rc.offset)
                                                       and np.isfinite(rc.auto_margin)):
            raise ValueError(f"{path}: {rc.kind!r} with weights {rc.weights} and offset {rc.offset} is not a "
                             "finite fusion or affine calibration")
        if rc.kind == "affine" and not (len(rc.weights) == 1 and rc.weights[0] > 0):
            raise ValueError(f"{path}: an affine calibration needs one positive slope, not {rc.weights}")
        if folder_kind(folder) == "pair":  # its file holds the clean partner first; main first here
            if rc.kind == "fusion" and len(rc.weights) != 5:
                raise ValueError(f"{path}: a pair's real-notes fusion has 5 weights, not {len(rc.weights)}")
            try:
                rc = rc.permuted(PAIR_FILE_ORDER)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        return rc


@dataclass
class Verifier:
    """A model, or a fused system of models, ready to embed, verify and identify clips.

    A fused system's embedding of a clip is its members' raw embeddings side by side, the
    main model first (``(n, width)``; :meth:`split`): for a model with a clean partner,
    ``[main, partner]``; for a system of shipped models (:func:`load_verifier` on a folder
    whose ``fusion.json`` names them), the main model, then the others as the file lists
    them. That is the fusion's member order too (:mod:`mie_core.scoring.fusion`): one order
    for embeddings, back-ends, LLRs and weights. ``encoder`` and ``backend`` are the main
    model's; ``others`` the other members (each a single-model Verifier).
    """

    path: Path
    encoder: object
    backend: Backend | None
    centroids: np.ndarray | None  # (n_instruments, k) unit vectors (identify_vectors' space)
    instruments: pd.DataFrame | None  # one row per centroid: instrument_str, family, program, ...
    precision: str = "fp32"
    others: tuple["Verifier", ...] = ()
    fusion: QualityFusion | None = None
    weights: Path | None = None  # the main model's checkpoint folder where it is not ``path`` (a system)
    real_calibration: RealCalibration | None = None  # fitted on real notes (``real_calibration.json``)

    @property
    def fused(self) -> bool:
        return bool(self.others) and self.fusion is not None

    @property
    def layout(self) -> list["Verifier"]:
        """The members in the order of :meth:`embed`'s columns and of the fusion (the main model first)."""
        return [self, *self.others] if self.fused else [self]

    @property
    def member_paths(self) -> list[Path]:
        """The checkpoint folder of each member, in :meth:`layout` order."""
        return [Path(self.weights or self.path)] + [Path(m.path) for m in self.layout[1:]]

    @property
    def dim(self) -> int:
        """The main model's embedding width."""
        return int(self.encoder.args.embed_dim)

    @property
    def width(self) -> int:
        """The width of what :meth:`embed` returns (every member's for a fused system)."""
        return sum(m.dim for m in self.layout)

    def embed(self, clips) -> np.ndarray:
        """(n, width) raw embeddings of clips (16-kHz mono arrays)."""
        clips = list(clips)
        e = [self.encoder.embed(clips, bf16=self.precision == "bf16")] + [m.embed(clips) for m in self.layout[1:]]
        return np.concatenate(e, axis=1)

    def join(self, *parts: np.ndarray) -> np.ndarray:
        """Embeddings by each member (main first, as :meth:`layout`) side by side, as :meth:`embed` gives them."""
        if len(parts) != len(self.layout):
            raise ValueError(f"{Path(self.path).name} joins {len(self.layout)} models' embeddings, not {len(parts)}")
        return np.concatenate(parts, axis=1)

    def split(self, emb: np.ndarray) -> list[np.ndarray]:
        """Each member's part of :meth:`embed`'s output, in :meth:`layout` order; a width that
        is not this system's is refused (e.g. a library enrolled with another model)."""
        emb = np.atleast_2d(emb)
        if self.encoder is not None and emb.shape[1] != self.width:
            raise ValueError(f"embeddings of width {emb.shape[1]} do not come from {Path(self.path).name} "
                             f"(it embeds {self.width} values per clip); embed the clips again with it")
        if not self.fused:
            return [emb]
        cuts = np.cumsum([m.dim for m in self.layout])[:-1]
        return np.split(emb, cuts, axis=1)

    def own(self, emb: np.ndarray) -> np.ndarray:
        """(n, dim): the main model's part of :meth:`embed`'s output."""
        return self.split(emb)[0]

    def fusion_members(self, emb: np.ndarray) -> tuple[list[Backend], list[np.ndarray]]:
        """The members' back-ends and parts of ``emb`` (:meth:`layout` order, the fusion's)."""
        return [m.backend for m in self.layout], self.split(emb)

    def identify_vectors(self, emb: np.ndarray) -> np.ndarray:
        """(n, k) the vectors :attr:`centroids` live in: the main model's back-end vectors, or for
        centroids over every member, each member's vectors side by side over sqrt(m) (unit length)."""
        parts = self.split(emb)
        if self.centroids is not None and self.fused and self.centroids.shape[1] != self.backend.width:
            return np.concatenate([m.backend.vectors(e) for m, e in zip(self.layout, parts)], axis=1) / np.sqrt(len(parts))
        return self.backend.vectors(parts[0])

    @cached_property
    def hash(self) -> str:
        """16 hex digits naming what the embeddings come from (every member's weights for a
        fused system, in :meth:`layout` order; the pair's is that of its two models)."""
        h = model_hash(self.weights or self.path)
        if not self.fused:
            return h
        return hashlib.sha256("+".join([h] + [model_hash(m.path) for m in self.others]).encode()).hexdigest()[:16]

    @property
    def can_calibrate(self) -> bool:
        return self.backend is not None and self.backend.calibration is not None


def load_verifier(model_dir: str | Path, precision: str = "auto", single: bool = False) -> Verifier:
    """The checkpoint, and its back-end, centroids and fused clean partner where the folder
    has them; or, for a system folder (a ``fusion.json`` naming members), the fused system of
    those model folders. ``single``: the folder's model alone (a member of a system)."""
    folder = Path(model_dir)
    ver = _load_verifier(folder, precision, single)
    if not single:
        ver.real_calibration = RealCalibration.load(folder)
    return ver


def _load_verifier(folder: Path, precision: str, single: bool) -> Verifier:
    from mie_core.nnet.checkpoint import load_encoder  # torch: off the import path of the pages that only read results

    kind = "model" if single else folder_kind(folder)
    if kind == "system":
        qf = QualityFusion.load(folder)
        if not qf.members:
            raise ValueError(f"{folder}: its {FUSION_FILE} names no member folders and there is no checkpoint here")
        return _load_system(folder, qf, precision)
    if kind == "model" and not single and QualityFusion.exists(folder):
        raise ValueError(f"{folder}: a {FUSION_FILE} without its clean partner's folder ({PARTNER_DIR}/)")
    qf = QualityFusion.load(folder) if kind == "pair" else None
    enc = load_encoder(folder)
    backend = Backend.load(folder) if Backend.exists(folder) else None
    cents, info = load_centroids(folder) if not single else (None, None)
    if qf is None:
        return Verifier(folder, enc, backend, cents, info, resolve_precision(precision))
    if backend is None or backend.calibration is None:
        raise ValueError(f"{folder}: a fusion needs the model's calibrated back-end (backend.json)")
    partner = load_verifier(folder / PARTNER_DIR, precision, single=True)
    if not partner.can_calibrate:
        raise ValueError(f"{folder / PARTNER_DIR}: the fused partner must be one calibrated model")
    if partner.backend.width != backend.width or qf.detector.coef.shape != (2 * backend.width,):
        raise ValueError(f"{folder}: the fusion's detector takes {qf.detector.coef.shape[0]} values, "
                         f"the two back-ends give {backend.width} + {partner.backend.width}")
    return Verifier(folder, enc, backend, cents, info, resolve_precision(precision), (partner,), qf)


def _load_system(folder: Path, qf: QualityFusion, precision: str) -> Verifier:
    """A system folder: each member (a shipped model folder, or its clean partner) alone, fused by ``qf``."""
    root = folder.parent
    members = {}
    for rel in qf.members:
        if not (root / rel / "model.json").exists():
            raise ValueError(f"{folder}: its member {rel} is not a model folder in {root}")
        members[rel] = load_verifier(root / rel, precision, single=True)
        if not members[rel].can_calibrate:
            raise ValueError(f"{root / rel}: a member of a system needs its calibrated back-end")
    want = sum(members[m].backend.width for m in qf.members)
    if qf.detector.coef.shape != (want,):
        raise ValueError(f"{folder}: the fusion's detector takes {qf.detector.coef.shape[0]} values, "
                         f"its members' back-ends give {want}")
    main = members[qf.main]
    cents, info = load_centroids(folder)
    if cents is not None and cents.shape[1] not in (main.backend.width, want):
        raise ValueError(f"{folder}: centroids of width {cents.shape[1]} are neither the main model's nor every member's")
    return Verifier(folder, main.encoder, main.backend, cents, info, resolve_precision(precision),
                    tuple(members[m] for m in qf.members[1:]), qf, main.path)


def load_centroids(folder: Path) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """A model folder's shipped instrument centroids (n, k) and their labels (``instruments.json``),
    or (None, None) where it has none."""
    if not ((folder / "centroids.npy").exists() and (folder / "instruments.json").exists()):
        return None, None
    cents = np.load(folder / "centroids.npy", allow_pickle=False).astype(np.float32)
    info = pd.DataFrame(json.loads((folder / "instruments.json").read_text()))
    if len(info) != len(cents):
        raise ValueError(f"{folder}: centroids.npy and instruments.json do not match ({len(cents)} vs {len(info)})")
    return cents, info


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


def identification_rates(q: np.ndarray, centroids: np.ndarray, info: pd.DataFrame, rows: pd.DataFrame) -> dict:
    """How often the nearest corpus instrument (one per GM program, as :func:`identify` lists
    them) has the clip's family, and its program at rank 1 and within the top 5; ``q``: (n, k)
    the clips' vectors in the centroids' space (:meth:`Verifier.identify_vectors`)."""
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


CONDITION_MODES = ("auto", "studio", "own")


def studio_weights(model: ConditionModel, backends, enrols, tests, enrol_recording=None, test_recording=None):
    """(P(render, room, studio) of each test clip (n, 3), each trial's studio weight (n,)):
    the smaller of the enrolment's mean P(studio) and the test clip's
    (:func:`mie_core.scoring.condition.trial_weight`), from what ``model`` reads: the members'
    back-end vectors of the embeddings, or the clips' recording features. Without the test
    clips' features, (None, None); without the enrolment's, the test clip's P(studio) alone.

    >>> m = ConditionModel(np.array([[0, 0.0], [0, 0], [1, 0]]), np.zeros(3), "recording")
    >>> p, s = studio_weights(m, None, None, None, np.array([[0.0, 0]]), np.array([[9.0, 0], [-9, 0]]))
    >>> p.argmax(1).tolist(), s.round(2).tolist()
    ([2, 0], [0.33, 0.0])
    """
    if model.inputs == "members":
        enrol_x, test_x = member_vectors(backends, enrols), member_vectors(backends, tests)
    elif model.inputs == "recording":
        enrol_x, test_x = enrol_recording, test_recording
    else:  # the recording features, then the member vectors
        test_x = None if test_recording is None else np.hstack([test_recording, member_vectors(backends, tests)])
        enrol_x = None if enrol_recording is None else np.hstack([enrol_recording, member_vectors(backends, enrols)])
    if test_x is None:
        return None, None
    p_test = model.proba(test_x)
    if enrol_x is None or len(np.atleast_2d(enrol_x)) == 0:
        return p_test, p_test[:, STUDIO]
    return p_test, np.minimum(float(model.proba(enrol_x)[:, STUDIO].mean()), p_test[:, STUDIO])


def verify(v: Verifier, enrol_emb: np.ndarray, test_emb: np.ndarray, prior: float = DEFAULT_PRIOR,
           recalibration: tuple[float, float] | None = None, conditions: str = "own",
           enrol_recording: np.ndarray | None = None, test_recording: np.ndarray | None = None) -> pd.DataFrame:
    """One row per test clip: ``score`` (the main model's AS-norm score; raw cosine without
    a back-end), ``llr`` (the calibrated log-likelihood ratio: the fused one of a fused
    system; NaN without calibration), ``probability`` (at ``prior``), ``accept``
    (probability >= 0.5, i.e. LLR >= -logit(prior)), ``typical`` (the clip is as close to
    training instruments as 99 % of held-out notes; None without a back-end) and, for a
    fused system, ``quality`` (the trial's P(clean), :mod:`mie_core.scoring.fusion`).

    enrol_emb (k, width) and test_emb (n, width) are :meth:`Verifier.embed`'s output.
    ``recalibration`` (a, b) maps the LLR to ``a llr + b`` (the user's own calibration,
    :meth:`mie_core.service.library.InstrumentLibrary.calibrate`).

    ``conditions``, for a fused system with a real-notes calibration (:class:`RealCalibration`):
    "own" scores with the system's own fusion, "studio" with the weights refitted on real
    studio notes, "auto" with both mixed per trial by the clips' studio weight
    (:mod:`mie_core.scoring.condition`; column ``studio_weight``). Where the condition model
    ships, every row also gets ``condition``: the test clip in words ("sounds like a studio
    recording"), and ``p_render``, ``p_room``, ``p_studio``. The shipped condition model reads
    the clips' recording features (:func:`mie_core.data.recording.recording_features` of the
    same clips: ``enrol_recording`` (k, 6), ``test_recording`` (n, 6)) beside the members'
    back-end vectors of the embeddings; "auto" needs the test clips' features. An enrolment without them (one kept before they were) is weighed by the test
    clip's P(studio) alone (:func:`studio_weights`).

    Without a back-end the score is the raw cosine to the enrolment's mean direction:

    >>> v = Verifier("m", None, None, None, None)
    >>> verify(v, np.array([[1.0, 0.0], [0.8, 0.2]]), np.array([[1.0, 0.1], [0.0, 1.0]]))["score"].round(3).tolist()
    [1.0, 0.122]
    """
    if not 0.0 < prior < 1.0:
        raise ValueError(f"the prior must lie strictly between 0 and 1, not {prior}")
    enrol_main, test_main = v.own(enrol_emb), v.own(test_emb)
    if v.backend is None:
        e = unit(unit(enrol_main).mean(0))
        s = unit(test_main) @ e
        return pd.DataFrame({"score": s.astype(float), "llr": np.nan, "probability": np.nan, "accept": None,
                             "typical": None})
    be = v.backend
    out = pd.DataFrame({"score": be.score(enrol_main, test_main)})
    if conditions not in CONDITION_MODES:
        raise ValueError(f"conditions must be one of {CONDITION_MODES}, not {conditions!r}")
    rc = v.real_calibration
    if conditions != "own" and not (v.fused and rc is not None and rc.kind == "fusion"):
        raise ValueError(f"{Path(v.path).name}: conditions={conditions!r} needs a fused system with weights refitted "
                         "on real notes (real_calibration.json)")
    if conditions == "auto" and rc.condition is None:
        raise ValueError(f"{Path(v.path).name}: conditions='auto' needs the recording-condition model in "
                         "real_calibration.json (python -m training.build_cache --real-calibration-only)")
    if v.fused:
        backends, enrols = v.fusion_members(enrol_emb)
        tests = v.fusion_members(test_emb)[1]
        llr, w = system_llr(backends, v.fusion, enrols, tests)
        if conditions != "own":
            llr_studio = system_llr(backends, rc.applied(v).fusion, enrols, tests)[0]  # the studio weights
        if rc is not None and rc.condition is not None:
            p_test, s = studio_weights(rc.condition, backends, enrols, tests, enrol_recording, test_recording)
            if p_test is None and conditions == "auto":
                raise ValueError(f"{Path(v.path).name}: conditions='auto' reads the test clips' recording features "
                                 "(test_recording: mie_core.data.recording.recording_features of the clips)")
            if p_test is not None:
                for k, name in enumerate(CONDITIONS):
                    out[f"p_{name}"] = p_test[:, k]
                out["condition"] = [describe(p) for p in p_test]
        if conditions == "studio":
            llr = llr_studio
        elif conditions == "auto":
            llr = mixed_llr(llr, llr_studio - rc.auto_margin, s)
            out["studio_weight"] = s
        out["llr"] = llr
        out["quality"] = w
    elif be.calibration is not None:
        out["llr"] = be.llr(out["score"].to_numpy())
    else:
        out["llr"] = np.nan
    if recalibration is not None:
        a, b = recalibration
        out["llr"] = a * out["llr"] + b
    if out["llr"].notna().all() and len(out):
        out["probability"] = sigmoid(out["llr"].to_numpy() + logit(prior))
        out["accept"] = out["probability"] >= 0.5
    else:
        out["probability"] = np.nan
        out["accept"] = None
    out["typical"] = (be.typicality(test_main) >= be.typical_min) if be.typical_min is not None else None
    cols = ("score", "llr", "probability", "accept", "typical", "quality", "studio_weight", "condition",
            *[f"p_{c}" for c in CONDITIONS])
    return out[[c for c in cols if c in out]]


def identify(v: Verifier, emb: np.ndarray, top: int = 5, group_by: str = "program") -> list[pd.DataFrame]:
    """Per clip, the ``top`` nearest corpus instruments, best one per ``group_by`` value
    (``program``: one per General MIDI instrument type), with score, family and type."""
    if v.centroids is None or v.backend is None:
        raise ValueError(f"{v.path} has no instrument centroids; they come with the shipped cache "
                         "(python -m training.build_cache)")
    scores = v.identify_vectors(emb) @ v.centroids.T
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
                      prior: float = DEFAULT_PRIOR, recalibration: tuple[float, float] | None = None,
                      test_midi=None, enrolled_midi: dict[str, np.ndarray] | None = None,
                      conditions: str = "own", recording: np.ndarray | None = None,
                      enrolled_recording: dict[str, np.ndarray | None] | None = None) -> pd.DataFrame:
    """1:N identification against the user's enrolled instruments: one row per clip and
    enrolled instrument, with score, LLR and calibrated probability, most likely first per clip.
    With the clips' pitches ``test_midi`` (n,) and the enrolments' ``enrolled_midi`` (name ->
    (k,), :meth:`mie_core.service.library.InstrumentLibrary.pitches`), a ``pitch_gap`` column: semitones
    from the clip to that instrument's nearest enrolment note (:func:`mie_core.data.pitch.pitch_gaps`).
    ``conditions``, ``recording`` (the clips' (n, 6) recording features) and
    ``enrolled_recording`` (name -> (k, 6) or None, :meth:`mie_core.service.library.InstrumentLibrary.recordings`):
    as :func:`verify`. Ranked by the calibrated LLR (the verdict's own figure)
    where there is one, else by the score."""
    from mie_core.data.pitch import pitch_gaps

    rows = []
    for name, enrol_emb in enrolled.items():
        r = verify(v, enrol_emb, emb, prior, recalibration, conditions,
                   (enrolled_recording or {}).get(name), recording)
        r.insert(0, "clip", np.arange(len(r)))
        r.insert(1, "instrument", name)
        if test_midi is not None and enrolled_midi is not None:
            r["pitch_gap"] = pitch_gaps(test_midi, enrolled_midi.get(name, np.full(1, np.nan)))
        rows.append(r)
    if not rows:
        return pd.DataFrame(columns=["clip", "instrument", "score", "llr", "probability", "accept", "typical"])
    by = "llr" if rows[0]["llr"].notna().all() else "score"
    return pd.concat(rows).sort_values(["clip", by], ascending=[True, False]).reset_index(drop=True)


MODE_LABELS = {"auto": "automatic, by how the clips sound (recommended)", "studio": "studio recordings",
               "own": "rooms, phones or renders (the model's own fusion)"}


def calibration_name(conditions: str, user: bool = False, studio_weight: float | None = None) -> str:
    """The calibration a verdict used, in words (the pages' and the command line's).

    >>> calibration_name("auto", studio_weight=0.83), calibration_name("own", user=True)
    ('automatic (studio weight 0.83)', 'your calibration (My instruments)')
    """
    if user:
        return "your calibration (My instruments)"
    if conditions == "auto":
        return "automatic" + (f" (studio weight {studio_weight:.2f})" if studio_weight is not None else "")
    return {"studio": "weights refitted on studio recordings", "own": "the model's own calibration"}[conditions]


def clip_sound(row) -> str | None:
    """What a verdict row says the test clip sounds like, in a musician's words: the
    condition model's where it ships, else from the trial's P(clean) (None without either).

    >>> clip_sound({"quality": 0.9}), clip_sound({"quality": 0.1}), clip_sound({"condition": "sounds like a studio recording"})
    ('sounds like a clean synthesized note', 'sounds like a room or phone recording', 'sounds like a studio recording')
    """
    row = dict(row)
    if isinstance(row.get("condition"), str):
        return row["condition"]
    q = row.get("quality")
    if q is None or not np.isfinite(q):
        return None
    if q >= 0.7:
        return "sounds like a clean synthesized note"
    if q <= 0.3:
        return "sounds like a room or phone recording"
    return "sounds between a clean synthesized note and a room or phone recording"


def verdict_text(test_name: str, enrol_name: str, row, prior: float, calibration: str) -> tuple[bool, str]:
    """(accept, the sentence a page shows) for one :func:`verify` row: the verdict, the
    probability as shown (the decision is made on the shown figure), the enrolment's name,
    the prior, the fused LLR, what the clip sounds like, and the calibration used.

    >>> verdict_text("a.wav", "my viola", {"probability": 0.8123, "llr": 1.466, "quality": 0.1}, 0.5,
    ...              "the model's own calibration")[1]
    "**ACCEPT**: probability 81.2 % that a.wav is my viola (prior 50 %; fused LLR +1.47; the clip sounds like a room or phone recording; calibration: the model's own calibration)"
    """
    row = dict(row)
    shown = f"{100 * row['probability']:.1f}"
    accept = float(shown) >= 50.0
    parts = [f"prior {100 * prior:g} %", f"fused LLR {row['llr']:+.2f}" if "quality" in row else
             f"AS-norm score {row['score']:.2f}"]
    if (sound := clip_sound(row)) is not None:
        parts.append(f"the clip {sound}")
    parts.append(f"calibration: {calibration}")
    return accept, (f"**{'ACCEPT' if accept else 'REJECT'}**: probability {shown} % that {test_name} is "
                    f"{enrol_name} ({'; '.join(parts)})")


# the columns of the scores a user downloads (My instruments), named to say what they hold
EXPORT_COLUMNS = {
    "file": ("file", "the uploaded clip"),
    "instrument": ("enrolled_instrument", "the enrolled instrument the clip is scored against"),
    "probability": ("probability_same_instrument", "calibrated probability (0-1) that the clip is this instrument, "
                                                   "at the prior chosen on the page"),
    "accept": ("verdict_accept", "True where the probability is at least 0.5"),
    "llr": ("llr", "the calibrated log-likelihood ratio behind the probability (natural log; > 0 favours the "
                   "instrument); the clips are ranked by it"),
    "score": ("main_model_score", "the main model's AS-norm score alone (before the fusion and calibration: "
                                  "can rank clips differently from the probability)"),
    "quality": ("p_clean_render", "how much the trial's clips sound like clean renders (0-1): weighs the clean "
                                  "model against the chain-trained one in the fusion"),
    "studio_weight": ("studio_weight", "how far the weights fitted on studio recordings scored the trial (0-1, "
                                       "automatic mode)"),
    "condition": ("clip_sounds_like", "what the clip sounds like it was recorded as"),
    "typical": ("typical_of_training", "False where the clip is unlike 99 % of held-out notes (noise, silence, "
                                       "several instruments?)"),
    "pitch_gap": ("pitch_gap_semitones", "semitones from the clip's pitch to the instrument's nearest enrolment "
                                         "note (blank: no clear pitch)"),
}


def export_table(res: pd.DataFrame) -> pd.DataFrame:
    """:func:`identify_enrolled`'s rows with the download's column names (:data:`EXPORT_COLUMNS`),
    in that order, the per-condition probabilities left out.

    >>> export_table(pd.DataFrame({"clip": [0], "instrument": ["viola"], "llr": [1.0], "score": [0.3]})).columns.tolist()
    ['enrolled_instrument', 'llr', 'main_model_score']
    """
    cols = [c for c in EXPORT_COLUMNS if c in res]
    return res[cols].rename(columns={c: EXPORT_COLUMNS[c][0] for c in cols})
