"""RWC Musical Instrument Sound Database (RWC-MDB-I, Goto et al.).

File names are ``NNVCCSSD.WAV``: instrument number ``NN``, variation ``V`` (a maker
or player), instrument code ``CC``, playing-style code ``SS`` (two letters or digits)
and dynamics ``D`` (F, M or P). Each file is a whole performance, one note after
another over the instrument's range, separated by short silences; :func:`cut_notes`
cuts it into notes.

Note cutting: frame levels (25 ms frames, 10 ms hop) above ``peak - top_db`` are
"sounding"; sounding runs separated by less than ``min_gap_ms`` are merged, runs
shorter than ``min_note_ms`` dropped, and a run is also split where the level jumps
by ``onset_db`` within 30 ms (a new attack without a silence before it). Each note
keeps ``pad_ms`` of context on both sides and at most ``max_note_s``.

Split (the paper's, Sec. V-A): instrument *variations* are held out. For every
instrument number with three or more variations one variation goes to test and one
to valid (seeded); all instrument numbers are seen in training.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.data.audio import frame_rms_db, load_audio

NAME_RE = re.compile(r"^(\d{2})(\d)([A-Z]{2})([A-Z0-9]{2})([FMP])$", re.IGNORECASE)
DYNAMICS = {"F": "forte", "M": "mezzo", "P": "piano"}

#: instrument code -> (name, NSynth family); codes not listed get family "unknown"
CODES: dict[str, tuple[str, str]] = {
    "PF": ("pianoforte", "keyboard"), "EP": ("electric piano", "keyboard"), "HC": ("harpsichord", "keyboard"),
    "GL": ("glockenspiel", "mallet"), "XY": ("xylophone", "mallet"), "VI": ("vibraphone", "mallet"),
    "MA": ("marimba", "mallet"), "PO": ("pipe organ", "organ"), "EO": ("electric organ", "organ"),
    "AC": ("accordion", "reed"), "HM": ("harmonica", "reed"), "CG": ("classic guitar", "guitar"),
    "UK": ("ukulele", "guitar"), "AG": ("acoustic guitar", "guitar"), "EG": ("electric guitar", "guitar"),
    "EB": ("electric bass", "bass"), "VN": ("violin", "string"), "VL": ("viola", "string"),
    "VC": ("cello", "string"), "CB": ("contrabass", "string"), "HP": ("harp", "string"),
    "TR": ("trumpet", "brass"), "TB": ("trombone", "brass"), "TU": ("tuba", "brass"), "HR": ("horn", "brass"),
    "SS": ("soprano sax", "reed"), "AS": ("alto sax", "reed"), "TS": ("tenor sax", "reed"),
    "BS": ("baritone sax", "reed"), "OB": ("oboe", "reed"), "EH": ("english horn", "reed"),
    "FG": ("fagotto", "reed"), "CL": ("clarinet", "reed"), "PC": ("piccolo", "flute"), "FL": ("flute", "flute"),
    "RC": ("recorder", "flute"), "PN": ("pan flute", "flute"), "SH": ("shakuhachi", "flute"),
}


def parse_name(name: str) -> dict:
    """Labels from an RWC file name; raises ValueError for names that do not follow NNVCCSSD."""
    stem = Path(name).stem
    m = NAME_RE.match(stem)
    if not m:
        raise ValueError(f"{name!r} is not an RWC-MDB-I file name (NNVCCSSD.WAV)")
    nn, v, cc, ss, d = m.groups()
    cc, ss, d = cc.upper(), ss.upper(), d.upper()
    inst_name, family = CODES.get(cc, (cc.lower(), "unknown"))
    return {
        "file": Path(name).name, "instrument_number": int(nn), "variation": int(v), "instrument_code": cc,
        "instrument_name": inst_name, "instrument_family_str": family, "playing_style": ss,
        "dynamics": DYNAMICS[d], "instrument_str": f"{nn}{v}{cc}",
    }


def cut_notes(x: np.ndarray, sr: int = 16000, top_db: float = 50.0, min_gap_ms: float = 60.0,
              min_note_ms: float = 100.0, onset_db: float = 15.0, pad_ms: float = 20.0,
              max_note_s: float = 4.0) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of the notes in a performance (module docstring)."""
    hop = int(round(sr * 0.010))
    frame = int(round(sr * 0.025))
    db = frame_rms_db(x, sr, 25.0, 10.0)
    if db.size == 0 or db.max() <= -199:
        return []
    on = db >= db.max() - top_db
    runs = []
    i = 0
    while i < on.size:
        if on[i]:
            j = i
            while j < on.size and on[j]:
                j += 1
            runs.append([i, j])
            i = j
        else:
            i += 1
    merged: list[list[int]] = []
    gap = int(round(min_gap_ms / 10.0))
    for r in runs:
        if merged and r[0] - merged[-1][1] < gap:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    # split at sharp rises inside a run (legato re-attacks)
    rise = int(round(30 / 10.0))
    notes: list[tuple[int, int]] = []
    for a, b in merged:
        cuts = [a]
        for k in range(a + rise, b):
            if db[k] - db[k - rise] >= onset_db and k - cuts[-1] >= int(min_note_ms / 10):
                cuts.append(k)
        cuts.append(b)
        for s, e in zip(cuts[:-1], cuts[1:]):
            if (e - s) * 10 >= min_note_ms:
                notes.append((s, e))
    pad = int(round(sr * pad_ms / 1000))
    limit = int(round(max_note_s * sr))
    out = []
    for s, e in notes:
        start = max(0, s * hop - pad)
        end = min(len(x), (e - 1) * hop + frame + pad, start + limit)
        out.append((start, end))
    return out


def scan_rwc(root: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per RWC file under ``root`` (recursively); returns (files, names that do not parse)."""
    rows, skipped = [], []
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() not in (".wav", ".flac") or not p.is_file():
            continue
        try:
            rows.append({**parse_name(p.name), "path": str(p)})
        except ValueError:
            skipped.append(p.name)
    return pd.DataFrame(rows), skipped


def load_rwc_notes(root: str | Path, sr: int = 16000, progress=None, **cut_kw) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Cut every performance under ``root`` into notes: (table, list of float32 notes).

    The table has the file's labels plus ``note_index``, ``start_s``, ``end_s`` and a
    ``note_str`` of ``<stem>-<index:03d>``.
    """
    files, _ = scan_rwc(root)
    rows, audio = [], []
    for k, f in enumerate(files.itertuples(index=False)):
        x = load_audio(f.path, sr=sr, max_seconds=3600)
        for i, (s, e) in enumerate(cut_notes(x, sr, **cut_kw)):
            rows.append({**f._asdict(), "note_index": i, "start_s": s / sr, "end_s": e / sr,
                         "note_str": f"{Path(f.file).stem}-{i:03d}"})
            audio.append(x[s:e])
        if progress:
            progress(k + 1, len(files))
    return pd.DataFrame(rows), audio


def variation_split(files: pd.DataFrame, seed: int = 0) -> dict[str, list[str]]:
    """Hold out variations: per instrument number with >= 3 variations, one to test, one to valid."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    inst = files.drop_duplicates("instrument_str")
    for nn, grp in inst.groupby("instrument_number", sort=True):
        names = sorted(grp["instrument_str"])
        if len(names) >= 3:
            perm = [names[i] for i in rng.permutation(len(names))]
            out["test"].append(perm[0])
            out["valid"].append(perm[1])
            out["train"].extend(perm[2:])
        else:
            out["train"].extend(names)
    return {k: sorted(v) for k, v in out.items()}
