"""Unseen-instrument splits of the SoundFont corpus (see ``../shared/notes/data.md``).

``program_disjoint`` (NSynth-like): a share of the General MIDI programs, drawn per
family, goes wholly to valid or test: *every* soundfont's version of a held-out
program leaves training. Several soundfonts share samples (MuseScore General grew out
of FluidR3), so a split by preset alone would put near-copies of a test instrument
in training; holding out the program closes that leak.

``soundfont_disjoint`` (RWC-like variations): every instrument of one soundfont is
test; its programs are seen in training through the other soundfonts, so the test
instruments are unseen *variations* of known instrument types. Valid is a seeded
share of the remaining instruments. The default held-out soundfont is Merlin, the
one whose samples no other source shares.

Both are deterministic functions of the note table and the seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TEST_FRACTION = 0.15
VALID_FRACTION = 0.10
HELD_OUT_SOUNDFONT = "merlin"


def program_disjoint(
    notes: pd.DataFrame, seed: int = 0, test_fraction: float = TEST_FRACTION, valid_fraction: float = VALID_FRACTION
) -> dict[str, list[str]]:
    """Split instruments by General MIDI program, stratified by family.

    Per family, its programs are shuffled (seeded) and ``round(n * fraction)`` go to
    test and to valid, at least one each when the family has three or more programs.
    Returns {"train"|"valid"|"test": sorted instrument_str list, "programs": {...}}.
    """
    rng = np.random.default_rng(seed)
    inst = notes.groupby("instrument_str", sort=True)[["program", "instrument_family_str"]].first()
    fam_programs = inst.groupby("instrument_family_str")["program"].unique()
    test_p: set[int] = set()
    valid_p: set[int] = set()
    for fam in sorted(fam_programs.index):
        progs = np.sort(fam_programs[fam])
        n = len(progs)
        progs = progs[rng.permutation(n)]
        n_test = int(round(n * test_fraction))
        n_valid = int(round(n * valid_fraction))
        if n >= 3:
            n_test, n_valid = max(1, n_test), max(1, n_valid)
        test_p.update(int(p) for p in progs[:n_test])
        valid_p.update(int(p) for p in progs[n_test : n_test + n_valid])
    part = np.where(inst["program"].isin(test_p), "test", np.where(inst["program"].isin(valid_p), "valid", "train"))
    out = {k: sorted(inst.index[part == k]) for k in ("train", "valid", "test")}
    out["programs"] = {
        "valid": sorted(valid_p),
        "test": sorted(test_p),
        "train": sorted(int(p) for p in set(inst["program"]) - test_p - valid_p),
    }
    return out


def soundfont_disjoint(
    notes: pd.DataFrame, held_out: str = HELD_OUT_SOUNDFONT, seed: int = 0, valid_fraction: float = VALID_FRACTION
) -> dict[str, list[str]] | None:
    """Hold out one soundfont as test; None when the corpus has fewer than two soundfonts.

    Test instruments whose program no training instrument has are dropped from test
    (they would be unseen programs, not unseen variations).
    """
    inst = notes.groupby("instrument_str", sort=True)[["program", "soundfont"]].first()
    fonts = sorted(inst["soundfont"].unique())
    if len(fonts) < 2:
        return None
    if held_out not in fonts:
        held_out = fonts[-1]
    rng = np.random.default_rng(seed)
    rest = inst[inst["soundfont"] != held_out]
    n_valid = int(round(len(rest) * valid_fraction))
    valid = set(rest.index[rng.permutation(len(rest))[:n_valid]])
    train = [i for i in rest.index if i not in valid]
    train_programs = set(inst.loc[train, "program"])
    test = [i for i in inst.index[inst["soundfont"] == held_out] if inst.loc[i, "program"] in train_programs]
    return {"train": sorted(train), "valid": sorted(valid), "test": sorted(test), "held_out_soundfont": held_out}


def make_splits(notes: pd.DataFrame, seed: int = 0) -> dict:
    """Both splits of a corpus, as written to ``splits.json``."""
    out = {"_seed": seed, "program_disjoint": program_disjoint(notes, seed)}
    sd = soundfont_disjoint(notes, seed=seed)
    if sd is not None:
        out["soundfont_disjoint"] = sd
    return out
