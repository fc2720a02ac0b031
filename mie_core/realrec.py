"""Real recordings the project can always reach: the tonejs-instruments samples.

The npm registry holds ``tonejs-instrument-<name>-mp3``: 20 real instruments, single
notes recorded by musicians (originally for VSCO-2 CE, Karoryfer, the University of Iowa
MIS and Freesound packs; CC-BY 3.0). They are a **test set only**: never training data.

:func:`fetch_tonejs` gets them with ``npm pack`` (where ``npm`` exists; it says so where
it does not) into ``data/real/tonejs/<name>/``; :func:`load_tonejs` reads them into our
corpus layout: a table in NSynth's schema (family and source from the General MIDI
program each instrument is, pitch from the file name ``A4.mp3``/``Cs4.mp3``; velocity
is not known and is 0) and the notes as float32 at 16 kHz (:func:`mie_core.audio.load_audio`).
Each package is one instrument, so the verification protocol runs on them as on
unseen corpus instruments.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import gm
from .audio import NOTE_SECONDS
from .soundfonts import data_dir

# package name -> General MIDI program of the instrument it records
TONEJS: dict[str, int] = {
    "bass-electric": 33, "bassoon": 70, "cello": 42, "clarinet": 71, "contrabass": 43, "flute": 73,
    "french-horn": 60, "guitar-acoustic": 25, "guitar-electric": 27, "guitar-nylon": 24, "harmonium": 20,
    "harp": 46, "organ": 19, "piano": 0, "saxophone": 65, "trombone": 57, "trumpet": 56, "tuba": 58,
    "violin": 40, "xylophone": 13,
}
NOTE_RE = re.compile(r"^([A-G])(s|b|#)?(-?\d)$")
SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def tonejs_dir(root: Path | None = None) -> Path:
    return (Path(root) if root else data_dir()) / "real" / "tonejs"


def note_to_midi(stem: str) -> int | None:
    """'A4' -> 69, 'Cs4' (C sharp) -> 61, 'Bb3' -> 58; None when the name is not a note."""
    m = NOTE_RE.match(stem)
    if not m:
        return None
    letter, acc, octave = m.groups()
    return 12 * (int(octave) + 1) + SEMITONE[letter] + {"s": 1, "#": 1, "b": -1}.get(acc or "", 0)


def fetch_tonejs(root: Path | None = None, names=None, log=None) -> tuple[list[str], dict[str, str]]:
    """``npm pack`` each package into ``data/real/tonejs/<name>/`` (skipping those present).

    Returns (names present, {name: why missing}). Needs ``npm`` on the PATH and the npm
    registry; says so otherwise. Writes ``manifest.json`` (package versions and sha256).
    """
    log = log or (lambda m: None)
    dest = tonejs_dir(root)
    names = list(names or TONEJS)
    present, missing = [], {}
    npm = shutil.which("npm")
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in names:
        folder = dest / name
        if folder.is_dir() and any(folder.glob("*.mp3")):
            present.append(name)
            continue
        if npm is None:
            missing[name] = "npm is not installed (Debian: apt-get install npm), so the real recordings cannot be fetched"
            continue
        pkg = f"tonejs-instrument-{name}-mp3"
        with tempfile.TemporaryDirectory() as tmp:
            res = subprocess.run([npm, "pack", pkg, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300)
            tgz = sorted(Path(tmp).glob("*.tgz"))
            if res.returncode != 0 or not tgz:
                missing[name] = f"npm pack {pkg} failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
                continue
            part = folder.with_name(name + ".part")
            shutil.rmtree(part, ignore_errors=True)
            part.mkdir(parents=True)
            with tarfile.open(tgz[0]) as tf:
                for m in tf.getmembers():
                    base = Path(m.name).name
                    if m.isfile() and base.endswith(".mp3") and note_to_midi(base[:-4]) is not None:
                        with tf.extractfile(m) as src:
                            (part / base).write_bytes(src.read())
            shutil.rmtree(folder, ignore_errors=True)
            part.rename(folder)
            manifest[name] = {"package": pkg, "file": tgz[0].name,
                              "sha256": hashlib.sha256(tgz[0].read_bytes()).hexdigest()}
            log(f"fetched {pkg} ({len(list(folder.glob('*.mp3')))} notes)")
            present.append(name)
    if manifest:
        dest.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, indent=1))
    return present, missing


def tonejs_table(root: Path | None = None) -> pd.DataFrame:
    """One row per real note present, in NSynth's schema plus our fields, sorted."""
    rows = []
    for name, program in TONEJS.items():
        folder = tonejs_dir(root) / name
        if not folder.is_dir():
            continue
        lab = gm.labels_for(program, name)
        for f in sorted(folder.glob("*.mp3")):
            pitch = note_to_midi(f.stem)
            if pitch is None:
                continue
            inst = f"tonejs_{name.replace('-', '_')}"
            rows.append({
                "note_str": f"{inst}-{pitch:03d}-000", "instrument_str": inst, "pitch": pitch, "velocity": 0,
                "instrument_family_str": lab["instrument_family_str"], "instrument_source_str": lab["instrument_source_str"],
                "playing_style": lab["playing_style"], "soundfont": "tonejs", "bank": 0, "program": program,
                "preset_name": name, "gain_db": 0.0, "path": str(f),
            })
    cols = ["note_str", "instrument_str", "pitch", "velocity", "instrument_family_str", "instrument_source_str",
            "playing_style", "soundfont", "bank", "program", "preset_name", "gain_db", "path"]
    df = pd.DataFrame(rows, columns=cols)
    return df.drop_duplicates("note_str").sort_values("note_str").reset_index(drop=True)


def load_tonejs_audio(table: pd.DataFrame, max_seconds: float = NOTE_SECONDS) -> list[np.ndarray]:
    """The notes of ``table`` as float32 at 16 kHz, each as every embedding path cuts a note
    (:func:`mie_core.audio.note_excerpt`: from its onset, at most ``max_seconds``; every
    tonejs file starts within 50 ms of its onset, so this is its first ``max_seconds``)."""
    from .audio import load_audio, note_excerpt

    return [note_excerpt(load_audio(p), max_seconds=max_seconds) for p in table["path"]]
