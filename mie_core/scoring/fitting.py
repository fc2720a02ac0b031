"""Fitting what scores trials, from embedded parts: each model's calibrated back-end
(:func:`fit_backends`) and the quality-aware fusion of a pair or a system of models
(:func:`fit_fusions`, :func:`fit_system`), as the cache builder, ``evaluate`` and the
benchmarks fit them.

The data: the ``bank`` notes of training instruments (mean, cohort, the condition
detector's clean class), ``bankwet`` (the same notes through the training rooms: its wet
class) and the calibration's held-out trials (:data:`CALIBRATION_PARTS`: the valid
instruments' notes, clean and through the training rooms). Nothing of the test
instruments, test rooms or real recordings is used. Embeddings come from the one store
(:func:`mie_core.evaluation.embeddings.embed_models`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mie_core.evaluation.embeddings import EmbeddingStore, embed_models
from mie_core.scoring import backend, fusion, trials

if TYPE_CHECKING:  # annotations only: the parts are evaluation's
    from mie_core.evaluation.parts import Part

# the held-out trials the shipped calibration is fitted on: the valid instruments' notes,
# clean and through the training rooms' chain
CALIBRATION_PARTS = ("valid", "calib")
# the same notes played as musicians play, clean and through the training rooms: adding them
# to the pool was measured and left off (README, "Calibrated on played notes too";
# benchmarks/calibration_pool.py): it costs clean and wet verdicts more than it gives real ones
PLAYED_PARTS = ("played", "playedwet")
BACKEND_PARTS = ("bank",) + CALIBRATION_PARTS
# The multi-condition LDA (``lda_dims``) also needs ``bankwet``. It is off in the shipped
# back-end: it lowers clean and wet EER by 2-4 points but lets more impostors through on
# real recordings at the calibrated threshold (README, "A multi-condition LDA";
# benchmarks/backend_lda.py).
LDA_PARTS = ("bankwet",)


def held_out_trials(part: Part, seed: int, k: int):
    """The trials of the ``k``-th calibration part that :func:`fit_backends` calibrates on."""
    return trials.make_trials(part.rows["instrument_str"].to_numpy(), np.random.default_rng([seed, k]))


def fit_backends(models: dict[str, Path], parts: dict, store: EmbeddingStore | None = None,
                 precision: str = "auto", seed: int = 0, log=None, lda_dims: int | None = None,
                 calibration_parts: tuple[str, ...] = CALIBRATION_PARTS, rule: str = "softmax",
                 temperature: float = 0.5) -> tuple[dict, dict]:
    """A calibrated scoring back-end per model (:mod:`mie_core.scoring.backend`) and the embeddings
    of the ``bank`` part (for the identification centroids).

    Mean and cohort come from the ``bank`` notes of training instruments (with
    ``lda_dims``, also an LDA, fitted with the same notes through the training chain:
    ``bankwet``, which must then be in ``parts``); the calibration
    is fitted on trials of the ``calibration_parts`` (default: ``valid`` and ``calib``, the
    valid instruments' notes clean and through the training rooms' chain; ``PLAYED_PARTS``
    add them played as musicians play), which must be in ``parts``; ``typical_min`` is the
    1st percentile of those held-out notes' best cohort score. Nothing of the test
    instruments or test rooms is used. ``rule`` and ``temperature``: the enrolment rule
    (:func:`mie_core.scoring.backend.pooled_asnorm`).
    """
    missing = [n for n in ("bank",) + tuple(calibration_parts) if n not in parts]
    if missing:
        raise ValueError(f"fit_backends needs the part(s) {', '.join(missing)}")
    bank, held = parts["bank"], [parts[n] for n in calibration_parts]
    train = (bank.rows["part"] == "train").to_numpy()
    backends, bank_emb = {}, {}
    for name, path in models.items():
        eb = embed_models({name: path}, bank, store, precision, log=log)[name]
        fit_emb, fit_lab = eb[train], bank.rows["instrument_str"].to_numpy()[train]
        if lda_dims:
            wet = parts["bankwet"]
            fit_emb = np.concatenate([fit_emb, embed_models({name: path}, wet, store, precision, log=log)[name]])
            fit_lab = np.concatenate([fit_lab, wet.rows["instrument_str"].to_numpy()])
        be = backend.fit_backend(fit_emb, fit_lab, lda_dims=lda_dims, rule=rule, temperature=temperature)
        tar, non, typ = [], [], []
        for k, part in enumerate(held):
            e = embed_models({name: path}, part, store, precision, log=log)[name]
            tr = held_out_trials(part, seed, k)
            sc = backend.trial_scores(be, e, tr)["asnorm"]
            tar.append(sc[tr.target])
            non.append(sc[~tr.target])
            typ.append(be.typicality(e))
        be = be.calibrated(backend.fit_calibration(np.concatenate(tar), np.concatenate(non)),
                           typical_min=float(np.percentile(np.concatenate(typ), 1)),
                           calibrated_on=[p.name for p in held],
                           n_calibration_trials=int(sum(map(len, tar)) + sum(map(len, non))), prior=0.5)
        backends[name] = be
        bank_emb[name] = eb
    return backends, bank_emb


# what the quality-aware fusion is fitted on (mie_core.scoring.fusion): the detector on the training
# instruments' bank notes clean and through the training rooms, the weights on the calibration's trials
FUSION_PARTS = BACKEND_PARTS + ("bankwet",)


def _fit_members(paths: list[Path], backends: list, parts: dict, store: EmbeddingStore | None, precision: str,
                 seed: int, log, calibration_parts: tuple[str, ...]) -> fusion.QualityFusion:
    """The fusion of members (checkpoints ``paths`` with their calibrated ``backends``, in the
    member order, main first): the detector on the training instruments' bank notes clean against
    ``bankwet``, the weights on the calibration's held-out trials."""
    missing = [n for n in FUSION_PARTS + tuple(calibration_parts) if n not in parts]
    if missing:
        raise ValueError(f"fitting a fusion needs the part(s) {', '.join(missing)}")
    train = (parts["bank"].rows["part"] == "train").to_numpy()
    named = {str(p): p for p in paths}

    def emb(pname):
        e = embed_models(named, parts[pname], store, precision, log=log)
        return [e[str(p)] for p in paths]

    clean = [e[train] for e in emb("bank")]
    held = [(emb(p), held_out_trials(parts[p], seed, k)) for k, p in enumerate(calibration_parts)]
    qf = fusion.fit_fusion(list(backends), clean, emb("bankwet"), held)
    qf.info.update({"detector_parts": ["bank (training instruments)", "bankwet"],
                    "fusion_parts": list(calibration_parts), "seed": seed})
    return qf


def fit_fusions(pairs: dict[str, tuple[Path, Path]], parts: dict, backends: dict, partner_backends: dict,
                store: EmbeddingStore | None = None, precision: str = "auto", seed: int = 0, log=None,
                calibration_parts: tuple[str, ...] = CALIBRATION_PARTS) -> dict:
    """name -> :class:`mie_core.scoring.fusion.QualityFusion` for each (main, clean partner) pair of
    checkpoints, both models' back-ends fitted and calibrated already (:func:`fit_backends`):
    a system of two members, the main model first (the member order, :mod:`mie_core.scoring.fusion`). ``parts`` must hold
    :data:`FUSION_PARTS` and the ``calibration_parts`` whose held-out trials fit the weights
    (default: the calibration's own; ``PLAYED_PARTS`` add them played as musicians play:
    measured, not shipped)."""
    return {name: _fit_members([main, partner], [backends[name], partner_backends[name]], parts, store, precision,
                               seed, log, calibration_parts)
            for name, (main, partner) in pairs.items()}


def fit_system(members: dict[str, Path], backends: dict, parts: dict, main: str,
               store: EmbeddingStore | None = None, precision: str = "auto", seed: int = 0, log=None):
    """The :class:`mie_core.scoring.fusion.QualityFusion` of a system of several models (``members``:
    name -> checkpoint; each back-end calibrated already, as shipped), fitted as
    :func:`fit_fusions` fits a pair. ``main``: the member the system shows on maps, first in
    the member order (:mod:`mie_core.scoring.fusion`), the others as given."""
    if main not in members or len(members) < 2:
        raise ValueError(f"a system needs two or more members, {main!r} among them")
    names = [main] + [m for m in members if m != main]
    qf = _fit_members([members[m] for m in names], [backends[m] for m in names], parts, store, precision, seed, log,
                      CALIBRATION_PARTS)
    return dataclasses.replace(qf, members=tuple(names), main=main)
