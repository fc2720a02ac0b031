"""The one embedding store: every embedding of many notes goes through :class:`EmbeddingStore`.

The cache builder, ``python -m mie_core evaluate`` and the app all ask the store for
"the embeddings of these notes by this model at this precision"; the first asker
computes and writes them, every later one reads the same file. So the same checkpoint
gives *identical* arrays through every entry point on a machine, by construction.

Key: ``<model hash>_<notes key>_<precision>.npy`` under ``data/embeddings`` (or
``$MIE_EMBEDDINGS``):

* model hash: sha256 of ``model.safetensors`` (first 16 hex digits);
* notes key: what the notes are and how their audio was made (:func:`notes_key`: the
  note ids plus a recipe string, e.g. the wet part's chain digest and seed);
* precision: ``fp32`` or ``bf16`` (autocast); ``auto`` resolves to bf16 where the CPU
  runs it natively (AVX-512 BF16 or AMX) and fp32 elsewhere (:func:`resolve_precision`).

The same store keeps each part's recording features (:meth:`EmbeddingStore.recording`: six
numbers per note that no model makes, :mod:`mie_core.data.recording`) as
``recording_<notes key>.npy``, float32.

Embedding files are float16 on disk (written to a temporary name, then renamed), and
:meth:`EmbeddingStore.get` always returns what is on disk, also right after computing
it, so the first caller sees the same numbers as every later one.

Precision and CPUs: bf16 autocast keeps 8 bits of mantissa, so two CPUs (or two thread
counts, whose convolution kernels sum in different orders) agree on an embedding only
to about 2^-8 relative per layer; over the network that is a cosine of 0.99 or more
between the two versions of a note, not bit equality. fp32 agrees to about 1e-5.
The tests assert those bounds, never one machine's digits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mie_core.fileio import atomic_save_npy, file_sha256  # noqa: F401  (file_sha256: callers import it from here)
from mie_core.paths import embeddings_dir

PRECISIONS = ("fp32", "bf16")


def resolve_precision(precision: str | bool = "auto") -> str:
    """"auto" -> "bf16" where the CPU has native bf16, else "fp32"; True/False -> bf16/fp32."""
    if isinstance(precision, bool):
        return "bf16" if precision else "fp32"
    if precision == "auto":
        from mie_core.hardware import cpu_has_bf16

        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    return precision


def model_hash(path: str | Path) -> str:
    """The checkpoint's identity: sha256 of its weights file (16 hex digits)."""
    path = Path(path)
    return file_sha256(path / "model.safetensors" if path.is_dir() else path)[:16]


def notes_key(ids: Sequence[str], recipe: str = "") -> str:
    """12 hex digits naming a list of notes (in order) and how their audio was made."""
    text = "\n".join(map(str, ids)) + "\n#" + recipe
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def unit(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), in ``dtype``."""
    x = np.asarray(x, dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embed_audio(model_path: str | Path, audio, precision: str = "auto", progress=None,
                batch_size: int | None = None) -> np.ndarray:
    """(n, d) float32 embeddings of ``audio`` (int16/float rows or a list of clips) by a checkpoint
    (``batch_size`` None: the precision's default, :data:`mie_core.nnet.model.EMBED_BATCH`)."""
    from mie_core.nnet.checkpoint import load_encoder

    enc = load_encoder(model_path)
    return enc.embed(audio, batch_size=batch_size, bf16=resolve_precision(precision) == "bf16", progress=progress)


class EmbeddingStore:
    """Embeddings of notes by models, computed once per (model, notes, precision)."""

    def __init__(self, root: str | Path | None = None):
        if root is None:
            root = embeddings_dir()
        self.root = Path(root)

    def path(self, model_path: str | Path, key: str, precision: str = "auto") -> Path:
        return self.root / f"{model_hash(model_path)}_{key}_{resolve_precision(precision)}.npy"

    def has(self, model_path: str | Path, key: str, precision: str = "auto") -> bool:
        return self.path(model_path, key, precision).exists()

    def get(self, model_path: str | Path, key: str, audio: Callable[[], object], precision: str = "auto",
            progress=None) -> np.ndarray:
        """(n, d) float32: the stored embeddings, or ``audio()`` embedded, stored, and read back."""
        path = self.path(model_path, key, precision)
        if not path.exists():
            emb = embed_audio(model_path, audio(), precision, progress)
            if not np.isfinite(emb).all():
                raise ValueError(f"the model {model_path} gave non-finite embeddings; its weights may be corrupt")
            atomic_save_npy(path, emb.astype(np.float16))
        return np.load(path).astype(np.float32)

    def recording_path(self, key: str) -> Path:
        return self.root / f"recording_{key}.npy"

    def recording(self, key: str, audio: Callable[[], object]) -> np.ndarray:
        """(n, 6) float32 recording features of the notes ``key`` names
        (:func:`mie_core.data.recording.recording_features` of ``audio()``), computed once and
        read back from then on, as :meth:`get` does embeddings."""
        from mie_core.data.recording import recording_features

        path = self.recording_path(key)
        if not path.exists():
            atomic_save_npy(path, recording_features(audio()))
        return np.load(path).astype(np.float32)


def embed_models(models: dict[str, Path], part, store: EmbeddingStore | None = None, precision: str = "auto",
                 progress=None, log=None) -> dict[str, np.ndarray]:
    """name -> (n, d) embeddings of a part's notes by each model, through the one store
    (``part``: a :class:`mie_core.evaluation.parts.Part`)."""
    store = store or EmbeddingStore()
    out = {}
    for name, path in models.items():
        if log and not store.has(path, part.key, precision):
            log(f"embedding the {part.name} part ({len(part.rows)} notes) with {name}")
        out[name] = store.get(path, part.key, part.audio, precision,
                              (lambda d, t, n=name: progress(f"embed {n} ({part.name})", d, t)) if progress else None)
    return out
