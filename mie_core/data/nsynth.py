"""NSynth (Engel et al. 2017), read as it is published.

A split folder (``nsynth-train``, ``nsynth-valid``, ``nsynth-test``) holds
``examples.json``, mapping each ``note_str`` to its record, and
``audio/<note_str>.wav`` (16-bit PCM, 16 kHz, mono, 4 s). :func:`load_nsynth` turns
it into a table with every field of the schema; audio is read when needed
(:func:`read_notes`). Problems are collected, not raised one KeyError at a time:
the returned :class:`NSynthSplit` lists records with missing or malformed fields and
missing audio files, with counts and examples.

A corpus built with ``python -m mie_core corpus --write-audio`` is also an NSynth
split folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS: dict[str, type] = {
    "note": int, "note_str": str, "instrument": int, "instrument_str": str,
    "instrument_source": int, "instrument_source_str": str, "instrument_family": int,
    "instrument_family_str": str, "pitch": int, "velocity": int, "sample_rate": int,
    "qualities": list, "qualities_str": list,
}
NOTE_SAMPLES = 64000


class NSynthError(ValueError):
    """A folder that is not an NSynth split at all."""


@dataclass
class NSynthSplit:
    root: Path
    notes: pd.DataFrame
    problems: dict[str, list[str]] = field(default_factory=dict)

    def report(self, examples: int = 3) -> str:
        """Human summary of what was dropped and why ("" when nothing was)."""
        lines = []
        for kind, items in self.problems.items():
            if items:
                shown = ", ".join(items[:examples]) + (", ..." if len(items) > examples else "")
                lines.append(f"{len(items)} {kind}: {shown}")
        return "\n".join(lines)


def load_nsynth(root: str | Path, check_audio: bool = True) -> NSynthSplit:
    """Read an NSynth split folder into a table (one row per note, schema fields as columns).

    Records with a missing or wrongly typed field, whose key differs from their
    ``note_str``, or (``check_audio``) whose wav file is absent are dropped and listed
    in ``problems``. Raises :class:`NSynthError` when ``examples.json`` is missing or is
    not a JSON object.
    """
    root = Path(root)
    meta = root / "examples.json"
    if not meta.is_file():
        raise NSynthError(f"{root} is not an NSynth split folder: no examples.json")
    try:
        raw = json.loads(meta.read_text())
    except json.JSONDecodeError as err:
        raise NSynthError(f"{meta} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(raw, dict):
        raise NSynthError(f"{meta} must map note names to records")
    problems: dict[str, list[str]] = {"records with missing fields": [], "records with malformed fields": [],
                                      "records whose key is not their note_str": [], "missing audio files": []}
    audio_dir = root / "audio"
    present = {p.stem for p in audio_dir.glob("*.wav")} if check_audio and audio_dir.is_dir() else set()
    rows = []
    for key, rec in raw.items():
        if not isinstance(rec, dict):
            problems["records with malformed fields"].append(key)
            continue
        missing = [f for f in FIELDS if f not in rec]
        if missing:
            problems["records with missing fields"].append(f"{key} ({', '.join(missing)})")
            continue
        bad = [f for f, t in FIELDS.items()
               if not (isinstance(rec[f], t) and not (t is int and isinstance(rec[f], bool)))]
        if bad:
            problems["records with malformed fields"].append(f"{key} ({', '.join(bad)})")
            continue
        if rec["note_str"] != key:
            problems["records whose key is not their note_str"].append(key)
            continue
        if check_audio and key not in present:
            problems["missing audio files"].append(f"audio/{key}.wav")
            continue
        rows.append(rec)
    notes = pd.DataFrame.from_records(rows, columns=list(dict.fromkeys(list(FIELDS) + [k for r in rows[:1] for k in r])))
    if "playing_style" not in notes.columns:
        notes["playing_style"] = "normal"
    return NSynthSplit(root, notes.reset_index(drop=True), {k: v for k, v in problems.items() if v})


def read_note(split: NSynthSplit, note_str: str) -> np.ndarray:
    """One note as float32 at 16 kHz (through :func:`mie_core.data.audio.load_audio`)."""
    from mie_core.data.audio import load_audio

    return load_audio(split.root / "audio" / f"{note_str}.wav")


def read_notes(split: NSynthSplit, rows: pd.DataFrame, progress=None) -> np.ndarray:
    """int16 (len(rows), 64000) audio of ``rows`` (shorter files zero-padded, longer cut)."""
    import soundfile as sf

    from mie_core.data.audio import resample

    out = np.zeros((len(rows), NOTE_SAMPLES), dtype=np.int16)
    for i, s in enumerate(rows["note_str"]):
        x, sr = sf.read(split.root / "audio" / f"{s}.wav", dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        if sr != 16000:
            x = resample(x, sr, 16000)
        n = min(NOTE_SAMPLES, len(x))
        out[i, :n] = np.rint(np.clip(x[:n], -1.0, 32767 / 32768) * 32768).astype(np.int16)
        if progress and (i + 1) % 512 == 0:
            progress(i + 1, len(rows))
    return out
