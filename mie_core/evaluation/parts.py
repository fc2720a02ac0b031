"""Evaluation parts: which notes a model is scored on, and how their audio is made.

* ``test`` / ``valid``: the evaluation notes of the unseen test (valid) instruments of a
  split, clean renders (:func:`evaluation_notes`: C and F# of every octave, all velocities);
* ``wet``: 30 seeded notes of each ``test`` instrument, each through its own recording
  chain drawn from the *test* rooms and ranges (:func:`mie_core.augment.chain.wet_part`), seeded
  per note, so every model is scored on identical wet audio;
* ``real``: real recordings of single notes by musicians (:mod:`mie_core.data.realrec`, the
  tonejs-instruments samples), where they have been fetched;
* ``bank``: 6 notes (``BANK_NOTES_PER_INSTRUMENT``) of every corpus instrument (train,
  valid and test), clean: the training instruments give the scoring back-end its mean and cohort
  (:mod:`mie_core.scoring.backend`), all of them the centroids the app identifies clips against;
* ``bankwet``: the ``bank`` notes of the *training* instruments through the recording
  chain of the *training* rooms (seeded per note): with the clean ones, the notes the
  back-end's multi-condition LDA is fitted on;
* ``calib``: 25 notes of each *valid* instrument through the recording chain of the
  *training* rooms: with ``valid`` the held-out trials the calibration is fitted on
  (test instruments and test rooms never are);
* ``played`` / ``playedwet``: the ``calib`` notes played as a musician would
  (:func:`mie_core.data.render.draw_performance`, seeded per note: short notes, vibrato, drift,
  swells), clean and through the training rooms' chain: a calibration pool closer to real
  playing, measured beside the shipped one (``benchmarks/calibration_pool.py``) and not
  used by default.

A :class:`Part` carries its note table, a key naming notes and audio recipe (the
embedding store's key, :func:`mie_core.evaluation.embeddings.notes_key`), and a lazy ``audio()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from mie_core.evaluation.embeddings import notes_key

from mie_core.evaluation.protocol import EVAL_PITCH_STEP
WET_SEED = 20261126
CALIB_SEED = 20261127
BANK_WET_SEED = 20261128
PLAYED_SEED = 20261129
PLAYED_WET_SEED = 20261130
BANK_NOTES_PER_INSTRUMENT = 6
CALIB_NOTES_PER_INSTRUMENT = 25
WET_NOTES_PER_INSTRUMENT = 30
ALL_PARTS = ("test", "valid", "wet", "real", "bank", "bankwet", "calib", "played", "playedwet")


@dataclass
class Part:
    """name; rows: one row per note (NSynth schema + ours); key: store key; audio(): the notes."""

    name: str
    rows: pd.DataFrame
    recipe: str
    make_audio: Callable[[], object] = field(repr=False)
    _audio: object = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return notes_key(self.rows["note_str"].tolist(), self.recipe)

    def audio(self):
        if self._audio is None:
            self._audio = self.make_audio()
        return self._audio


def evaluation_notes(corpus, split: str = "program_disjoint", part: str = "test") -> pd.DataFrame:
    """The notes every evaluation uses: all instruments of the part, pitches C and F# of
    every octave, all velocities (about 70 notes per instrument)."""
    from mie_core.data.corpus import select_notes

    return select_notes(corpus.split_notes(split, part), pitch_step=EVAL_PITCH_STEP, pitch_offset=0)


CLEAN_RECIPE = "clean-render"


def render_rows(rows: pd.DataFrame, progress=None, workers: int | None = None, corpus=None) -> np.ndarray:
    """int16 (n, 64000) renders of corpus note rows (their metadata names soundfont, preset
    and gain), with the corpus's own soundfont files where it is given, else those in
    ``data/soundfonts``."""
    from mie_core.data import render, soundfonts

    if corpus is not None:
        return corpus.render(rows, workers=workers, progress=progress)
    return render.render_many(soundfonts.note_specs(rows), workers=workers, progress=progress)


def clean_part(name: str, rows: pd.DataFrame, progress=None, workers: int | None = None, corpus=None) -> Part:
    """A part of clean corpus renders of ``rows`` (``test`` or ``valid``)."""
    return Part(name, rows.reset_index(drop=True), CLEAN_RECIPE,
                lambda: render_rows(rows, progress, workers, corpus))


def wet_recipe(seed: int = WET_SEED) -> str:
    from mie_core.augment import chain

    return f"wet:{chain.TEST_PARAMS.digest()}:rooms-v{chain.ROOM_BANK_VERSION}-seed0:seed{seed}"


def wet_part(test: Part, seed: int = WET_SEED, progress=None, per_instrument: int | None = WET_NOTES_PER_INSTRUMENT
             ) -> Part:
    """A seeded ``per_instrument`` notes of each ``test`` instrument (all with None) through
    the test rooms' recording chain; shares the clean part's audio."""
    from mie_core.augment import chain
    from mie_core.data.corpus import select_notes

    rows = test.rows
    if per_instrument:
        rows = select_notes(rows, max_per_instrument=per_instrument, seed=seed)
    pos = pd.Series(np.arange(len(test.rows)), index=test.rows["note_str"]).loc[rows["note_str"]].to_numpy()
    rows = rows.reset_index(drop=True)

    def make():
        bank = chain.room_bank(seed=0)
        clean = np.asarray(test.audio())[pos]
        return chain.wet_part(clean, bank, chain.TEST_PARAMS, seed, rows["note_str"].tolist(), progress)

    return Part("wet", rows, wet_recipe(seed), make)


def real_part(root=None) -> Part | None:
    """The real recordings present under ``data/real`` (None when none were fetched)."""
    from mie_core.data import realrec

    rows = realrec.tonejs_table(root)
    if rows.empty:
        return None
    return Part("real", rows.drop(columns=["path"]), f"real:tonejs:max{realrec.NOTE_SECONDS}s",
                lambda: realrec.load_tonejs_audio(rows))


def real_sources_part(root=None) -> Part | None:
    """The real notes of every source fetched (tonejs by collection, Salamander), pooled,
    with each note's ``source`` (:func:`mie_core.data.realrec.real_sources_table`); None when none."""
    from mie_core.data import realrec

    rows = realrec.real_sources_table(root)
    if rows.empty:
        return None
    return Part("realsrc", rows.drop(columns=["path"]), f"real:sources:max{realrec.NOTE_SECONDS}s",
                lambda: realrec.load_tonejs_audio(rows))


def bank_part(corpus, split: str = "program_disjoint", progress=None, workers: int | None = None) -> Part:
    """``BANK_NOTES_PER_INSTRUMENT`` seeded notes of every instrument; column ``part`` says
    which part of ``split`` the instrument is in."""
    from mie_core.data.corpus import select_notes

    rows = select_notes(corpus.notes, max_per_instrument=BANK_NOTES_PER_INSTRUMENT, seed=0).reset_index(drop=True)
    where = {i: name for name in ("train", "valid", "test") for i in corpus.splits[split].get(name, [])}
    rows["part"] = rows["instrument_str"].map(where).fillna("none")
    return Part("bank", rows, f"bank:{split}", lambda: render_rows(rows, progress, workers, corpus))


def bank_wet_part(bank: Part, seed: int = BANK_WET_SEED) -> Part:
    """The training instruments' ``bank`` notes through the training rooms' chain (shares
    the bank's renders)."""
    keep = (bank.rows["part"] == "train").to_numpy()
    rows = bank.rows[keep].reset_index(drop=True)
    return _through_training_rooms("bankwet", rows, f"{bank.recipe}:wet", lambda: np.asarray(bank.audio())[keep], seed)


def _calib_rows(corpus, split: str) -> pd.DataFrame:
    from mie_core.data.corpus import select_notes

    return select_notes(evaluation_notes(corpus, split, "valid"), max_per_instrument=CALIB_NOTES_PER_INSTRUMENT,
                        seed=0).reset_index(drop=True)


def _through_training_rooms(name: str, rows: pd.DataFrame, recipe: str, clean: Callable[[], np.ndarray],
                            seed: int) -> Part:
    """A part of ``rows`` whose audio is ``clean()`` through the training rooms' chain, seeded per note."""
    from mie_core.augment import chain

    def make():
        return chain.wet_part(clean(), chain.room_bank(seed=0), chain.TRAIN_PARAMS, seed, rows["note_str"].tolist(),
                              room_part="train")

    return Part(name, rows, f"{recipe}:{chain.TRAIN_PARAMS.digest()}:rooms-v{chain.ROOM_BANK_VERSION}-seed0:seed{seed}",
                make)


def calib_part(corpus, split: str = "program_disjoint", seed: int = CALIB_SEED, progress=None,
               workers: int | None = None) -> Part:
    """Valid notes through the training rooms' chain, seeded per note (held-out calibration trials)."""
    rows = _calib_rows(corpus, split)
    return _through_training_rooms("calib", rows, "calib", lambda: render_rows(rows, progress, workers, corpus), seed)


def played_part(corpus, split: str = "program_disjoint", seed: int = PLAYED_SEED, progress=None,
                workers: int | None = None) -> Part:
    """The ``calib`` notes played as a musician would, clean: note ``i`` played as
    ``draw_performance(default_rng([seed, crc32(note_str)]))`` (so a note's rendering does
    not depend on the other notes of the part); int16 (n, 64000)."""
    import zlib
    from dataclasses import replace

    from mie_core.data import render

    rows = _calib_rows(corpus, split)

    def make():
        specs = [replace(s, performance=render.draw_performance(np.random.default_rng([seed, zlib.crc32(k.encode())])))
                 for s, k in zip(corpus.specs(rows), rows["note_str"])]
        return render.render_many(specs, workers=workers, progress=progress)

    return Part("played", rows, f"played:seed{seed}", make)


def played_wet_part(played: Part, seed: int = PLAYED_WET_SEED) -> Part:
    """The ``played`` notes through the training rooms' chain (shares their renders)."""
    return _through_training_rooms("playedwet", played.rows, played.recipe, played.audio, seed)


def load_parts(corpus, names=("test",), split: str = "program_disjoint", progress=None,
               workers: int | None = None) -> dict[str, Part]:
    """The named parts (``real`` is left out, silently, where nothing was fetched)."""
    out: dict[str, Part] = {}
    need_test = "test" in names or "wet" in names
    if need_test:
        test = clean_part("test", evaluation_notes(corpus, split, "test"), progress, workers, corpus)
        if "test" in names:
            out["test"] = test
    for name in names:
        if name == "valid":
            out["valid"] = clean_part("valid", evaluation_notes(corpus, split, "valid"), progress, workers, corpus)
        elif name == "wet":
            out["wet"] = wet_part(test)
        elif name == "real":
            r = real_part()
            if r is not None:
                out["real"] = r
        elif name in ("bank", "bankwet"):
            if "bank" not in out:
                out["bank"] = bank_part(corpus, split, progress, workers)
            if name == "bankwet":
                out["bankwet"] = bank_wet_part(out["bank"])
        elif name == "calib":
            out["calib"] = calib_part(corpus, split, progress=progress, workers=workers)
        elif name in ("played", "playedwet"):
            if "played" not in out:
                out["played"] = played_part(corpus, split, progress=progress, workers=workers)
            if name == "playedwet":
                out["playedwet"] = played_wet_part(out["played"])
        elif name not in ("test",):
            raise ValueError(f"unknown evaluation part {name!r}; known: {', '.join(ALL_PARTS)}")
    return {n: out[n] for n in names if n in out}
