"""Our corpus of real sampled instruments, rendered from SoundFonts.

Every melodic preset (soundfont, bank, program) is one instrument. A corpus folder
holds a *recipe*, never gigabytes of audio (unless ``--write-audio``):

* ``examples.json``: one record per note in NSynth's published schema (``note``,
  ``note_str``, ``instrument``, ``instrument_str``, ``instrument_source(_str)``,
  ``instrument_family(_str)``, ``pitch``, ``velocity``, ``sample_rate``,
  ``qualities(_str)``) plus our fields ``soundfont``, ``bank``, ``program``,
  ``preset_name``, ``playing_style``, ``gain_db``. NSynth's ``qualities`` are not
  known for our notes and are all zero. ``note_str`` is
  ``<instrument_str>-<pitch:03d>-<velocity:03d>`` as in NSynth.
* ``notes.parquet``: the same table, fast to load.
* ``corpus.json``: the recipe: soundfonts (file name, sha256, key), note range,
  silence threshold, counts, library versions.
* ``splits.json``: the two unseen-instrument splits (:mod:`mie_core.data.splits`).
* ``audio/<note_str>.wav`` only with ``write_audio``: then the folder is also an
  NSynth split folder that :func:`mie_core.data.nsynth.load_nsynth` reads.

Silent notes are dropped at build time as NSynth did: a note is silent when its
peak is more than ``silence_db`` (60 dB) below the loudest note of its instrument.
Each instrument's gain puts its loudest note at -1 dBFS.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import platform
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from mie_core.data import gm, render, soundfonts, splits as splits_mod
from mie_core.paths import corpus_dir

NSYNTH_VELOCITIES = (25, 50, 75, 100, 127)
NSYNTH_PITCHES = tuple(range(21, 109))
SILENCE_DB = 60.0
TARGET_PEAK_DBFS = -1.0
NSYNTH_QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)


@dataclass(frozen=True)
class Instrument:
    """One preset of one soundfont, with its NSynth-style labels."""

    soundfont: str  # soundfont key (e.g. "fluidr3mono")
    path: str  # soundfont file path used for rendering
    bank: int
    program: int
    preset_name: str
    labels: dict = field(hash=False, compare=False, default_factory=dict)

    @property
    def instrument_str(self) -> str:
        return f"{self.soundfont}_{self.bank:03d}_{self.program:03d}"


def list_instruments(paths: Sequence[str | Path], programs: Sequence[int] | None = None) -> list[Instrument]:
    """Every melodic preset of every soundfont in ``paths`` (drum kits and effects out)."""
    out: list[Instrument] = []
    keep = set(programs) if programs is not None else None
    for path in paths:
        key = soundfonts.key_for(path)
        for bank, program, name in render.list_presets(str(path)):
            if not gm.is_instrument(bank, program):
                continue
            if keep is not None and program not in keep:
                continue
            out.append(Instrument(key, str(path), bank, program, name or "", gm.labels_for(program, name or "")))
    return out


def _survey(args) -> tuple[list[tuple[int, int, float]], float]:
    """Peak (dBFS) of every (pitch, velocity) of one instrument; returns (rows, max)."""
    path, bank, program, pitches, velocities = args
    rows = []
    for p in pitches:
        for v in velocities:
            x = render.render_raw(path, bank, program, p, v)
            peak = float(np.max(np.abs(x))) if x.size else 0.0
            rows.append((p, v, 20 * np.log10(peak) if peak > 0 else -np.inf))
    finite = [r[2] for r in rows if np.isfinite(r[2])]
    return rows, (max(finite) if finite else -np.inf)


def build_corpus(
    out: str | Path,
    soundfont_paths: Sequence[str | Path],
    programs: Sequence[int] | None = None,
    pitches: Sequence[int] = NSYNTH_PITCHES,
    velocities: Sequence[int] = NSYNTH_VELOCITIES,
    write_audio: bool = False,
    workers: int | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> "Corpus":
    """Build a corpus folder at ``out`` (see the module docstring) and return it.

    Args:
        soundfont_paths: .sf2/.sf3 files; each melodic preset is an instrument.
        programs, pitches, velocities: restrict the corpus (tests, quick looks).
        write_audio: also write ``audio/<note_str>.wav`` (16-bit, 16 kHz, 4 s).
        workers: processes for rendering (default: all usable CPUs).
        seed: seed of the splits.
        progress: ``progress(stage, done, total)``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not soundfont_paths:
        raise ValueError("no soundfont given")
    instruments = list_instruments(soundfont_paths, programs)
    if not instruments:
        raise ValueError("the soundfonts hold no melodic preset for the programs asked")
    pitches = [int(p) for p in pitches]
    velocities = [int(v) for v in velocities]
    for p in pitches:
        if not 0 <= p <= 127:
            raise ValueError(f"pitch {p} is not a MIDI note (0-127)")
    for v in velocities:
        if not 1 <= v <= 127:
            raise ValueError(f"velocity {v} is not a MIDI velocity (1-127)")
    workers = render.default_workers() if workers is None else max(1, workers)
    jobs = [(i.path, i.bank, i.program, pitches, velocities) for i in instruments]
    surveys = []
    if workers == 1:
        for k, job in enumerate(jobs):
            surveys.append(_survey(job))
            if progress:
                progress("survey", k + 1, len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            for k, res in enumerate(pool.map(_survey, jobs, chunksize=2)):
                surveys.append(res)
                if progress:
                    progress("survey", k + 1, len(jobs))

    records = []
    note_id = 0
    inst_index = 0
    for inst, (rows, top) in zip(instruments, surveys):
        if not np.isfinite(top):
            continue  # renders nothing at all
        gain_db = round(TARGET_PEAK_DBFS - top, 3)
        kept = [(p, v) for p, v, db in rows if np.isfinite(db) and db >= top - SILENCE_DB]
        if not kept:
            continue
        labels = inst.labels
        for p, v in kept:
            records.append({
                "note": note_id,
                "note_str": f"{inst.instrument_str}-{p:03d}-{v:03d}",
                "instrument": inst_index,
                "instrument_str": inst.instrument_str,
                "instrument_source": labels["instrument_source"],
                "instrument_source_str": labels["instrument_source_str"],
                "instrument_family": labels["instrument_family"],
                "instrument_family_str": labels["instrument_family_str"],
                "pitch": p,
                "velocity": v,
                "sample_rate": render.SAMPLE_RATE,
                "qualities": [0] * len(NSYNTH_QUALITIES),
                "qualities_str": [],
                "soundfont": inst.soundfont,
                "bank": inst.bank,
                "program": inst.program,
                "preset_name": inst.preset_name,
                "playing_style": labels["playing_style"],
                "gain_db": gain_db,
            })
            note_id += 1
        inst_index += 1
    notes = pd.DataFrame.from_records(records)
    sf_table = {}
    for path in soundfont_paths:
        sf_table[soundfonts.key_for(path)] = {
            "filename": Path(path).name,
            "sha256": soundfonts.sha256_of(path),
            "path": str(Path(path).resolve()),
        }
    recipe = {
        "format": 1,
        "soundfonts": sf_table,
        "programs": sorted(set(programs)) if programs is not None else None,
        "pitches": pitches,
        "velocities": velocities,
        "held_s": render.HELD_S,
        "release_s": render.RELEASE_S,
        "sample_rate": render.SAMPLE_RATE,
        "silence_db": SILENCE_DB,
        "target_peak_dbfs": TARGET_PEAK_DBFS,
        "split_seed": seed,
        "counts": summarize(notes),
        "versions": _versions(),
    }
    with open(out / "examples.json", "w") as f:
        json.dump({r["note_str"]: r for r in records}, f)
    notes.to_parquet(out / "notes.parquet", index=False)
    with open(out / "corpus.json", "w") as f:
        json.dump(recipe, f, indent=1)
    split_table = splits_mod.make_splits(notes, seed=seed)
    with open(out / "splits.json", "w") as f:
        json.dump(split_table, f, indent=1)
    corpus = Corpus(out, notes, recipe, split_table)
    if write_audio:
        corpus.write_audio(workers=workers, progress=progress)
    return corpus


def summarize(notes: pd.DataFrame) -> dict:
    """Counts a README or the app shows: instruments, notes, families, styles."""
    if notes.empty:
        return {"instruments": 0, "notes": 0, "families": 0, "playing_styles": 0}
    styles = notes.groupby("instrument_family_str")["playing_style"].nunique()
    return {
        "instruments": int(notes["instrument_str"].nunique()),
        "notes": int(len(notes)),
        "families": int(notes["instrument_family_str"].nunique()),
        "programs": int(notes["program"].nunique()),
        "playing_styles": int(notes["playing_style"].nunique()),
        "styles_per_family": {k: int(v) for k, v in styles.items()},
        "soundfonts": {k: int(v) for k, v in notes.groupby("soundfont")["instrument_str"].nunique().items()},
    }


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("tinysoundfont", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover
            out[pkg] = None
    return out


class CorpusError(ValueError):
    """A corpus folder that cannot be used; the message says why."""


class Corpus:
    """A built corpus: its note table, recipe and splits; audio rendered on demand."""

    def __init__(self, root: str | Path, notes: pd.DataFrame, recipe: dict, split_table: dict):
        self.root = Path(root)
        self.notes = notes
        self.recipe = recipe
        self.splits = split_table
        self._paths: dict[str, str] | None = None

    @classmethod
    def load(cls, root: str | Path) -> "Corpus":
        root = Path(root)
        if not (root / "corpus.json").exists():
            raise CorpusError(
                f"{root} is not a corpus folder (no corpus.json); build one with "
                f"`python -m mie_core corpus --out {root}`"
            )
        recipe = json.loads((root / "corpus.json").read_text())
        if (root / "notes.parquet").exists():
            notes = pd.read_parquet(root / "notes.parquet")
        else:
            notes = pd.DataFrame.from_records(list(json.loads((root / "examples.json").read_text()).values()))
        split_table = json.loads((root / "splits.json").read_text())
        return cls(root, notes, recipe, split_table)

    @property
    def fingerprint(self) -> str:
        """A short hash of what defines the audio: soundfont hashes, notes, gains."""
        import hashlib

        h = hashlib.sha256()
        h.update(json.dumps({k: v["sha256"] for k, v in sorted(self.recipe["soundfonts"].items())}).encode())
        h.update(pd.util.hash_pandas_object(self.notes[["note_str", "gain_db"]], index=False).values.tobytes())
        return h.hexdigest()[:16]

    def soundfont_paths(self) -> dict[str, str]:
        """key -> path of each soundfont, found where the recipe says or in the data folder."""
        if self._paths is None:
            paths, missing = {}, []
            for key, info in self.recipe["soundfonts"].items():
                candidates = [Path(info.get("path", "")), soundfonts.data_dir() / "soundfonts" / info["filename"],
                              soundfonts.SYSTEM_SF3 / info["filename"]]
                hit = next((c for c in candidates if c.name and c.is_file()), None)
                if hit is None:
                    missing.append(info["filename"])
                else:
                    paths[key] = str(hit)
            self._paths = paths
            self.missing_soundfonts = missing
        return self._paths

    def instruments(self) -> pd.DataFrame:
        """One row per instrument with its labels."""
        cols = ["instrument", "instrument_str", "soundfont", "bank", "program", "preset_name",
                "instrument_family_str", "instrument_source_str", "playing_style", "gain_db"]
        return self.notes.groupby("instrument_str", sort=True)[cols[:1] + cols[2:]].first().reset_index()

    def split_notes(self, split: str = "program_disjoint", part: str = "test") -> pd.DataFrame:
        """The notes of one part ("train", "valid", "test") of a split."""
        if split not in self.splits:
            raise CorpusError(f"unknown split {split!r}; this corpus has {sorted(k for k in self.splits if not k.startswith('_'))}")
        if part not in self.splits[split]:
            raise CorpusError(f"split {split!r} has no part {part!r}")
        keep = set(self.splits[split][part])
        return self.notes[self.notes["instrument_str"].isin(keep)].reset_index(drop=True)

    def specs(self, rows: pd.DataFrame) -> list[render.NoteSpec]:
        paths = self.soundfont_paths()
        absent = sorted(set(rows["soundfont"]) - set(paths))
        if absent:
            raise CorpusError(
                "cannot render notes of soundfont(s) " + ", ".join(absent) +
                ": the file is not on this machine (run `make data` or `python -m mie_core fetch`)"
            )
        return [
            render.NoteSpec(paths[r.soundfont], int(r.bank), int(r.program), int(r.pitch), int(r.velocity), float(r.gain_db))
            for r in rows.itertuples(index=False)
        ]

    def render(self, rows: pd.DataFrame, workers: int | None = None, progress=None) -> np.ndarray:
        """int16 (len(rows), 64000) audio of ``rows``: from ``audio/`` if written, else rendered."""
        audio_dir = self.root / "audio"
        if audio_dir.is_dir() and all((audio_dir / f"{s}.wav").exists() for s in rows["note_str"]):
            import soundfile as sf

            n = int(round((self.recipe["held_s"] + self.recipe["release_s"]) * self.recipe["sample_rate"]))
            out = np.zeros((len(rows), n), dtype=np.int16)
            for i, s in enumerate(rows["note_str"]):
                x, _ = sf.read(audio_dir / f"{s}.wav", dtype="int16")
                out[i, : min(n, len(x))] = x[:n]
            return out
        return render.render_many(self.specs(rows), workers=workers, progress=progress)

    def audio(self, note_str: str) -> np.ndarray:
        """One note as float32 (64000,) in [-1, 1)."""
        rows = self.notes[self.notes["note_str"] == note_str]
        if rows.empty:
            raise CorpusError(f"no note {note_str!r} in this corpus")
        return self.render(rows, workers=1)[0].astype(np.float32) / 32768.0

    def write_audio(self, workers: int | None = None, progress=None, batch: int = 4096) -> None:
        """Write ``audio/<note_str>.wav`` for every note (16-bit PCM, 16 kHz, mono)."""
        import soundfile as sf

        audio_dir = self.root / "audio"
        audio_dir.mkdir(exist_ok=True)
        total = len(self.notes)
        for start in range(0, total, batch):
            rows = self.notes.iloc[start : start + batch]
            pcm = render.render_many(self.specs(rows), workers=workers)
            for s, x in zip(rows["note_str"], pcm):
                sf.write(audio_dir / f"{s}.wav", x, self.recipe["sample_rate"], subtype="PCM_16")
            if progress:
                progress("audio", min(total, start + batch), total)


def select_notes(
    notes: pd.DataFrame,
    pitches: Sequence[int] | None = None,
    velocities: Sequence[int] | None = None,
    pitch_step: int | None = None,
    pitch_offset: int = 0,
    max_per_instrument: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A deterministic subset of a note table.

    ``pitches``/``velocities`` keep those values; ``pitch_step`` keeps pitches with
    ``(pitch - pitch_offset) % pitch_step == 0`` (e.g. step 6 from 24 keeps C and F#,
    so MIDI 60 is in); ``max_per_instrument`` then samples that many notes per
    instrument without replacement (seeded), keeping the table's order.
    """
    keep = np.ones(len(notes), dtype=bool)
    if pitches is not None:
        keep &= notes["pitch"].isin(list(pitches)).to_numpy()
    if velocities is not None:
        keep &= notes["velocity"].isin(list(velocities)).to_numpy()
    if pitch_step:
        keep &= ((notes["pitch"].to_numpy() - pitch_offset) % pitch_step) == 0
    sub = notes[keep]
    if max_per_instrument is not None:
        rng = np.random.default_rng(seed)
        picked = []
        for _, idx in sub.groupby("instrument_str", sort=True).indices.items():
            if len(idx) > max_per_instrument:
                idx = np.sort(rng.choice(idx, size=max_per_instrument, replace=False))
            picked.append(idx)
        sub = sub.iloc[np.sort(np.concatenate(picked))] if picked else sub.iloc[:0]
    return sub.reset_index(drop=True)


def default_corpus_dir() -> Path:
    """``$MIE_CORPUS`` or ``<data>/corpus``: the corpus the app and trainer use by default."""
    return corpus_dir()
