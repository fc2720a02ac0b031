"""What the Streamlit workbench needs, without Streamlit: the shipped cache, model
discovery, enrolment and scoring, nearest instruments, note playback, spectrograms.

The cache folder (``$MIE_CACHE`` or ``<repo>/cache``, written by
``python -m training.build_cache``) holds per model the embeddings of the test and
valid evaluation notes, their metadata, 2-D maps and benchmark results. Models a
user trained (``runs/<name>/best``) are listed too; their embeddings are computed on
demand (:func:`embed_part`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.evaluation.embeddings import unit
from mie_core.data.soundfonts import MissingSoundfont, note_specs, play_note, soundfont_paths  # noqa: F401  (re-exported)
from mie_core.paths import REPO_ROOT, cache_dir, runs_dir  # noqa: F401  (the app and the tests ask the workbench for them)

REPO = REPO_ROOT




@dataclass
class ModelEntry:
    name: str
    path: Path  # checkpoint folder
    shipped: bool
    meta: dict = field(default_factory=dict)

    @property
    def system(self) -> dict | None:
        """For a system of several models (:func:`find_systems`): its ``members`` and ``main``."""
        return self.meta.get("system")

    @property
    def main(self) -> str:
        """The model whose embeddings stand for this entry on maps (itself, or a system's main member)."""
        return self.system["main"] if self.system else self.name

    @property
    def label(self) -> str:
        if self.system:
            return f"{self.name} (shipped: {len(self.system['members'])} models fused)"
        return f"{self.name} ({'shipped' if self.shipped else 'trained here'})"

    @property
    def init(self) -> str:
        return self.meta.get("model_args", {}).get("init", "?")


def find_models(cache: Path | None = None, runs: Path | None = None, broken: list | None = None) -> list[ModelEntry]:
    """Shipped models (cache/models/*) first, then trained runs (runs/*/best).

    A folder whose ``model.json`` cannot be read is left out and, when ``broken`` is a list,
    appended to it as ``(path, one-line reason)``: one broken run never hides the others.
    """
    from mie_core.nnet.checkpoint import CheckpointError, load_metadata

    cache = cache or cache_dir()
    runs = runs or runs_dir()
    out = []

    def meta_of(folder: Path) -> dict | None:
        if not ((folder / "model.json").exists() and (folder / "model.safetensors").exists()):
            return None
        try:
            return load_metadata(folder)
        except CheckpointError as err:
            if broken is not None:
                broken.append((str(folder), str(err)))
            return None

    for folder in sorted((cache / "models").glob("*")):
        meta = meta_of(folder)
        if meta is not None:
            out.append(ModelEntry(folder.name, folder, True, meta))
    shipped = {m.name for m in out}
    for folder in sorted(runs.glob("*/best")):
        meta = meta_of(folder)
        if meta is not None:
            name = folder.parent.name if folder.parent.name not in shipped else f"{folder.parent.name} (run)"
            out.append(ModelEntry(name, folder, False, meta))
    return out


def find_systems(cache: Path | None = None) -> list[ModelEntry]:
    """Shipped systems of several models: folders of ``cache/models`` without a checkpoint of
    their own whose ``fusion.json`` names the model folders they fuse (:mod:`mie_core.scoring.fusion`).
    Only what verifies and identifies clips offers them (Verify, My instruments, the
    command line); maps and the other pages show models."""
    from mie_core.scoring.fusion import folder_kind

    out = []
    for folder in sorted(((cache or cache_dir()) / "models").glob("*")):
        if folder_kind(folder) != "system":
            continue
        try:
            meta = json.loads((folder / "fusion.json").read_text())
            system = {"members": [str(m) for m in meta["members"]], "main": str(meta["main"])}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a system (load_verifier says why when asked to load it)
        out.append(ModelEntry(folder.name, folder, True, {"system": system}))
    return out


def verify_cache(root: Path, hashes: bool = True) -> list[str]:
    """One line per file of a cache that does not match its ``manifest.json`` (missing,
    another size, another sha256, or not listed); an empty list when all is well.
    ``hashes=False`` checks sizes only (what the app does at start-up: milliseconds)."""
    from mie_core.evaluation.embeddings import file_sha256

    root = Path(root)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"{root / 'manifest.json'}: not a readable manifest ({err})"]
    problems = []
    for name, info in files.items():
        p = root / name
        if not p.is_file():
            problems.append(f"{p}: missing")
        elif p.stat().st_size != info.get("bytes"):
            problems.append(f"{p}: {p.stat().st_size} bytes, the manifest says {info.get('bytes')} (truncated or replaced)")
        elif hashes and file_sha256(p) != info.get("sha256"):
            problems.append(f"{p}: its sha256 differs from the manifest's (corrupt or replaced)")
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and rel != "manifest.json" and rel not in files and not p.name.startswith("."):
            problems.append(f"{p}: not in the manifest")
    return problems


class Cache:
    """Read access to a built cache folder; everything is loaded lazily."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or cache_dir())
        self._notes: dict[str, pd.DataFrame] = {}

    @property
    def exists(self) -> bool:
        return (self.root / "manifest.json").exists()

    def manifest(self) -> dict:
        return json.loads((self.root / "manifest.json").read_text())

    def benchmark(self) -> dict:
        p = self.root / "results" / "benchmark.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def pitch_gaps(self) -> dict:
        """``results/pitch_gaps.json`` (verdicts on real notes by pitch distance to the
        enrolment: ``training.build_cache.add_pitch_gaps``), or {} where the cache has none."""
        p = self.root / "results" / "pitch_gaps.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def notes(self, part: str = "test") -> pd.DataFrame:
        if part not in self._notes:
            self._notes[part] = pd.read_parquet(self.root / "embeddings" / f"notes_{part}.parquet")
        return self._notes[part]

    def has_notes(self, part: str) -> bool:
        return (self.root / "embeddings" / f"notes_{part}.parquet").exists()

    def has_embeddings(self, model: str, part: str = "test") -> bool:
        return (self.root / "embeddings" / f"{model}_{part}.npy").exists()

    def embeddings(self, model: str, part: str = "test") -> np.ndarray:
        """(n, d) float32 (stored as float16); a file with NaN or Inf is refused by name."""
        path = self.root / "embeddings" / f"{model}_{part}.npy"
        e = np.load(path, allow_pickle=False).astype(np.float32)
        if not np.isfinite(e).all():
            raise ValueError(f"{path}: holds NaN or infinite values (corrupt); rebuild the cache or "
                             "`git checkout cache/`")
        return e

    def recording(self, part: str = "test") -> np.ndarray | None:
        """(n, 6) float32 recording features of a part's notes (:mod:`mie_core.data.recording`;
        ``embeddings/recording_<part>.npy``, by ``training.build_cache --real-calibration-only``),
        or None where the cache has none."""
        path = self.root / "embeddings" / recording_file(part)
        if not path.exists():
            return None
        r = np.load(path, allow_pickle=False).astype(np.float32)
        from mie_core.data.recording import NAMES

        if r.ndim != 2 or r.shape[1] != len(NAMES) or len(r) != len(self.notes(part)) or not np.isfinite(r).all():
            raise ValueError(f"{path}: not the six recording features of the {len(self.notes(part))} {part} notes "
                             f"(shape {r.shape}); rebuild the cache or `git checkout cache/`")
        return r

    def problems(self) -> list[str]:
        """What :func:`verify_cache` finds wrong with this cache, sizes only (fast)."""
        return verify_cache(self.root, hashes=False) if self.exists else []

    def map_coords(self, model: str, method: str, part: str = "test") -> np.ndarray | None:
        p = self.root / "maps" / f"{model}_{part}_{method}.npy"
        return np.load(p) if p.exists() else None


def recording_file(part: str) -> str:
    """The cache's file of a part's recording features, under ``embeddings/``."""
    return f"recording_{part}.npy"


# embedding a note takes about 8x as long as rendering it in one process (measured in the app on
# this CPU: 7,090 test notes rendered in 14 s, embedded in bf16 in about 115 s)
EMBED_WEIGHT = 8


def embed_part(entry: ModelEntry, notes: pd.DataFrame, progress=None, precision: str = "auto",
               store=None, part: str = "test") -> np.ndarray:
    """(n, d) float32 embeddings of a cache part's ``notes`` by a model that has none in the cache.

    Through the one embedding store (:mod:`mie_core.evaluation.embeddings`) under the same key as the
    cache builder and ``python -m mie_core evaluate``: what either embedded is read, not
    computed again, and the arrays are identical. Otherwise every note is rendered from its
    soundfont (``wet`` notes then go through their recording chain), then embedded;
    ``progress(done, total, message)`` is told both (one unit per note rendered,
    ``EMBED_WEIGHT`` per note embedded, so the fraction tracks time).
    """
    from mie_core.evaluation import parts as parts_mod
    from mie_core.evaluation.embeddings import EmbeddingStore

    store = store or EmbeddingStore()
    tell = progress or (lambda done, total, message=None: None)
    n = len(notes)
    total = n * (1 + EMBED_WEIGHT)
    # one process: worker processes would be spawned from a thread of the Streamlit server, and
    # spawn re-imports the page script that is running; rendering is about a tenth of the time
    render_progress = (lambda d, t: tell(d, total, f"rendering {d}/{n} notes"))
    if part == "real":
        p = parts_mod.real_part()
        if p is None or p.rows["note_str"].tolist() != notes["note_str"].tolist():
            raise ValueError("the real recordings on this machine are not the ones the cache was built from; "
                             "`python -m mie_core fetch` gets them")
    else:
        p = parts_mod.clean_part("test" if part == "wet" else part, notes, render_progress, workers=1)
        if part == "wet":
            p = parts_mod.wet_part(p, per_instrument=None)  # the cache's wet notes are already the subset
    tell(0, total, f"rendering {n} notes")
    return store.get(entry.path, p.key, p.audio, precision,
                     lambda d, t: tell(n + d * EMBED_WEIGHT, total, f"embedding {d}/{n} notes"))


def enrol(embeddings: np.ndarray) -> np.ndarray:
    """The enrolment vector: the mean of the unit embeddings (paper Sec. V-B-3), unit length."""
    return unit(unit(np.atleast_2d(embeddings)).mean(0))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return unit(np.atleast_2d(b)) @ unit(a).ravel()


def instrument_centroids(embeddings: np.ndarray, notes: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """One enrolment vector per instrument of ``notes`` (all its notes), with its labels."""
    groups = notes.groupby("instrument_str", sort=True).indices
    names = list(groups)
    cents = np.stack([enrol(embeddings[groups[n]]) for n in names])
    info = notes.groupby("instrument_str", sort=True)[["instrument_family_str", "instrument_source_str",
                                                       "playing_style", "soundfont", "preset_name"]].first()
    return cents, info.loc[names].reset_index()


def nearest_instruments(query: np.ndarray, centroids: np.ndarray, info: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    s = centroids @ unit(query).ravel()
    top = np.argsort(-s)[:k]
    out = info.iloc[top].copy()
    out.insert(1, "score", s[top])
    return out.reset_index(drop=True)


def spectrogram(x: np.ndarray, sr: int = 16000, n_fft: int = 1024, hop: int = 160) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times s, freqs Hz, dB (freqs, frames)) of a log-magnitude STFT, Hann window."""
    from scipy.signal import stft

    f, t, z = stft(np.asarray(x, dtype=np.float64), fs=sr, nperseg=n_fft, noverlap=n_fft - hop, boundary=None)
    db = 20 * np.log10(np.abs(z) + 1e-8)
    return t, f, np.maximum(db, db.max() - 90)


def training_summary(provenance: dict | None) -> str:
    """One short cell for a model's training, from its checkpoint's provenance: the clips it
    saw and where (a GPU's name shortened to its model).

    >>> training_summary({"step": 9000, "clips_seen": 1152000, "machine": {"gpu": "NVIDIA H100 80GB HBM3"}})
    '1,152 k clips, 9,000 steps, H100'
    >>> training_summary({"step": 500, "clips_seen": 32000, "machine": {"cpu": "x86_64"}})
    '32 k clips, 500 steps, CPU'
    >>> training_summary(None)
    'not recorded'
    """
    prov = provenance or {}
    if prov.get("clips_seen") is None and prov.get("step") is None:
        return "not recorded"
    gpu = (prov.get("machine") or {}).get("gpu")
    where = next((w for w in str(gpu).split() if any(c.isdigit() for c in w)), str(gpu)) if gpu else "CPU"
    clips = f"{prov['clips_seen'] / 1000:,.0f} k clips" if prov.get("clips_seen") is not None else "clips not recorded"
    return f"{clips}, {prov.get('step') or 0:,} steps, {where}"


def verdict(score: float, threshold: float) -> str:
    return "accept" if score >= threshold else "reject"


def playable_pitch(midi: float, low: int = 21, high: int = 108) -> int:
    """The MIDI note to play for a clip's (fractional) pitch: rounded, within the piano's range
    ``low``..``high``; 60 (middle C) where the clip has no clear pitch.

    >>> playable_pitch(66.6), playable_pitch(float("nan")), playable_pitch(130.0)
    (67, 60, 108)
    """
    import math

    if midi is None or not math.isfinite(midi):
        return 60
    return int(min(high, max(low, round(midi))))


def nyquist_note(sinc) -> str | None:
    """A sentence on the filters whose initial band reaches half the sample rate, where the
    band is cut off (the top CQT filters: the notes near and above B8 have no room left, so
    their bandwidth falls to the minimum), or None where no filter does. ``sinc``: a SincConv."""
    from mie_core.data.gm import note_name

    init = sinc.init_bands.cpu().numpy()
    nyq = sinc.sample_rate / 2
    cut = np.flatnonzero(init[:, 1] >= nyq - 1e-3)
    if not cut.size:
        return None
    widths = init[cut, 1] - init[cut, 0]
    top = int(np.floor(69 + 12 * np.log2(nyq / 440)))
    return (f"the top {cut.size} filters ({', '.join(str(int(k)) for k in cut)}) start with a band that reaches "
            f"{nyq / 1000:g} kHz, half the {sinc.sample_rate / 1000:g}-kHz sample rate, and are cut off there, from "
            f"{widths.max():.0f} Hz down to {widths.min():.0f} Hz wide (the minimum bandwidth): notes above "
            f"{note_name(top)} cannot be resolved at this sample rate, which is why the curve drops at its right end.")
