"""Checkpoints: an encoder saved as a folder and rebuilt from it alone.

A checkpoint folder holds ``model.safetensors`` (weights; the training heads' under
``heads.``, optional) and ``model.json`` (``model_args``, ``label_maps``, ``provenance``,
``metrics``, ``versions``, and ``weights_sha256``: the sha256 of ``model.safetensors``,
checked on every load, so one flipped bit in the weights is refused where they are
loaded). Nothing is unpickled. Every way a checkpoint can be unusable (missing,
truncated, corrupt, altered, another architecture or format, weights that are not
finite) is a :class:`CheckpointError` whose message names the file.

A folder is written whole: a new folder is renamed into place, and a folder that holds
anything but a checkpoint's own two files is refused rather than replaced.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from mie_core.nnet.model import InstrumentEncoder, ModelArgs


def load_encoder(path: str | Path, map_location: str = "cpu", cls=None):
    """Rebuild from a folder or its ``model.safetensors`` (with ``model.json`` beside it).

    Raises :class:`CheckpointError` (a ValueError) with one line naming the file for a
    missing, truncated or corrupt checkpoint, one of another architecture, or weights
    that are not all finite.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    cls = cls or InstrumentEncoder
    path = Path(path)
    if not path.exists():  # named as given, not by its parent folder
        raise MissingCheckpoint(f"{path} does not exist: no checkpoint there")
    folder = path if path.is_dir() else path.parent
    weights = folder / "model.safetensors" if path.is_dir() else path
    meta_path = folder / "model.json"
    if not weights.exists() or not meta_path.exists():
        raise MissingCheckpoint(f"{folder} holds no model.safetensors + model.json checkpoint")
    meta = load_metadata(folder)
    try:
        model = cls(ModelArgs.from_dict(meta["model_args"]))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{meta_path}: model_args do not describe an InstrumentEncoder ({err})") from None
    try:
        blob = weights.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{weights}: cannot be read ({err})") from None
    want = meta.get("weights_sha256")
    if want is not None and hashlib.sha256(blob).hexdigest() != want:
        raise CheckpointError(f"{weights}: its sha256 is not the one model.json records: the weights were altered "
                              "or corrupted; restore the folder (the shipped cache: git checkout cache/)")
    try:
        state = {k: v.to(map_location) for k, v in load_bytes(blob).items()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err})") from None
    enc_state = {k: v for k, v in state.items() if not k.startswith("heads.")}
    try:
        model.load_state_dict(enc_state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{weights}: its weights do not fit the architecture in model.json "
                              f"({str(err).splitlines()[0][:200]})") from None
    bad = [k for k, v in enc_state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{weights}: {len(bad)} weight tensor(s) hold NaN or Inf ({bad[0]}, ...); "
                              "the file is corrupt")
    model.label_maps = meta.get("label_maps", {})
    model.metadata = meta
    model.source = str(folder)
    model.eval()
    return model


def save_checkpoint(folder: str | Path, encoder, heads=None,
                    label_maps: dict | None = None, provenance: dict | None = None,
                    metrics: dict | None = None) -> Path:
    """Write ``model.safetensors`` + ``model.json`` as the folder ``folder`` (swapped in whole).

    ``folder`` must be new, empty, or a checkpoint folder holding only those two files:
    a folder that holds anything else (a model's back-end, someone's files) is refused
    with a :class:`CheckpointError`, never emptied."""
    from safetensors.torch import save as save_bytes

    final = Path(folder).resolve()
    if final.exists():
        if not final.is_dir():
            raise CheckpointError(f"{final} is a file, not a folder; give a folder to write the model into")
        others = sorted(p.name for p in final.iterdir() if p.name not in CHECKPOINT_FILES)
        if others:
            shown = ", ".join(others[:4]) + (", ..." if len(others) > 4 else "")
            raise CheckpointError(f"{final} holds other files ({shown}); a model is written into a new or empty "
                                  "folder, or over a checkpoint folder holding only model.json and model.safetensors")
    final.parent.mkdir(parents=True, exist_ok=True)
    # written into a folder of its own, then swapped in by rename: a reader sees the old
    # checkpoint or the new one (or, for an instant, none), never new weights with old JSON
    folder = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if heads is not None:
        state.update({f"heads.{k}": v.detach().cpu().contiguous() for k, v in heads.state_dict().items()})
    blob = save_bytes(state, metadata={"format": "mie-encoder-1"})
    (folder / "model.safetensors").write_bytes(blob)
    args = asdict(encoder.args)
    args["blocks"] = list(args["blocks"])
    meta = {
        "format": 1,
        "model_args": args,
        "label_maps": label_maps if label_maps is not None else encoder.label_maps,
        "provenance": provenance or {},
        "metrics": metrics or {},
        "versions": library_versions(),
        "n_parameters": encoder.n_parameters(),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=1))
    if final.exists():  # holds only an older checkpoint's two files (checked above)
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(folder, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(folder, final)
    return final


CHECKPOINT_FILES = ("model.safetensors", "model.json")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


class MissingCheckpoint(CheckpointError, FileNotFoundError):
    """No checkpoint where one was named."""


def load_metadata(path: str | Path) -> dict:
    """``model.json`` of a checkpoint folder, checked to be a mapping with ``model_args``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    meta_path = folder / "model.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path}: not readable JSON ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model_args"), dict):
        raise CheckpointError(f"{meta_path}: not a model description (no model_args mapping)")
    if meta.get("format", 1) != 1:
        raise CheckpointError(f"{meta_path}: format {meta.get('format')!r} is not one this version reads (1)")
    if "weights_sha256" in meta and not (isinstance(meta["weights_sha256"], str) and len(meta["weights_sha256"]) == 64):
        raise CheckpointError(f"{meta_path}: weights_sha256 is not a sha256 digest")
    try:
        ModelArgs.from_dict(meta["model_args"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{meta_path}: model_args do not describe an InstrumentEncoder ({err})") from None
    return meta


def library_versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "torch": str(torch.__version__)}
    for pkg in ("numpy", "safetensors", "tinysoundfont", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
