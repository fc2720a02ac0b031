"""Checkpoints (mie_core.nnet.checkpoint): weights checked where they are loaded, folders written
whole and never emptied, model descriptions bounded (issue 31)."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mie_core.nnet.checkpoint import CheckpointError, load_encoder, save_checkpoint
from mie_core.nnet.model import InstrumentEncoder, ModelArgs, check_embeddings

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "cache" / "models" / "cqt122"


def small() -> InstrumentEncoder:
    return InstrumentEncoder(ModelArgs(n_filters=8, base_width=4, blocks=(1, 1, 1, 1), lde_clusters=4, embed_dim=16))


def flip_projection_bit(folder: Path) -> None:
    """Flip bit 0x40 of byte 3 of one ``projection.weight`` value (an exponent bit of a float32)."""
    path = folder / "model.safetensors"
    blob = bytearray(path.read_bytes())
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    start = 8 + n + header["projection.weight"]["data_offsets"][0]
    blob[start + 4 * 10 + 3] ^= 0x40
    path.write_bytes(bytes(blob))


def test_a_flipped_bit_in_the_weights_is_refused_at_load(tmp_path):
    copy = tmp_path / "cqt122"
    shutil.copytree(SHIPPED, copy)
    load_encoder(copy)  # the shipped folder records its weights' hash and loads
    flip_projection_bit(copy)
    with pytest.raises(CheckpointError, match="sha256 is not the one model.json records"):
        load_encoder(copy)
    # the commands say so in one line, exit 2
    note = tmp_path / "n.wav"
    import soundfile as sf

    sf.write(note, 0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    for cmd in (["embed", "--model", str(copy), "--out", str(tmp_path / "e.npy"), str(note)],
                ["identify", "--model", str(copy), str(note)],
                ["verify", "--model", str(copy), "--enrol", str(note), "--test", str(note)]):
        res = subprocess.run([sys.executable, "-m", "mie_core", *cmd], cwd=REPO, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 2 and "sha256" in res.stderr and "Traceback" not in res.stderr, (cmd, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e.npy").exists()


def test_implausible_embeddings_are_refused_before_any_score():
    check_embeddings(np.full((2, 4), 25.0, np.float32))
    for bad in (np.array([[4e36, 0.0]]), np.array([[np.nan, 1.0]]), np.array([[np.inf, 1.0]])):
        with pytest.raises(ValueError, match="weights are corrupt"):
            check_embeddings(bad, "m")


def test_a_folder_holding_other_files_is_refused_never_emptied(tmp_path):
    enc = small()
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "thesis.tex").write_text("a")
    (d / "sub" / "data.csv").write_text("b")
    with pytest.raises(CheckpointError, match="holds other files"):
        save_checkpoint(d, enc)
    assert (d / "thesis.tex").read_text() == "a" and (d / "sub" / "data.csv").read_text() == "b"
    assert sorted(p.name for p in d.iterdir()) == ["sub", "thesis.tex"]
    # a new folder, then over its own two files: written whole, loads, hash recorded
    m = save_checkpoint(tmp_path / "m", enc)
    save_checkpoint(m, enc)
    assert sorted(p.name for p in m.iterdir()) == ["model.json", "model.safetensors"]
    assert len(json.loads((m / "model.json").read_text())["weights_sha256"]) == 64
    load_encoder(m)


@pytest.mark.parametrize("change, why", [
    ({"model_args": {"n_filters": 1e9}}, "n_filters must be from 1 to 1024"),
    ({"model_args": {"embed_dim": 10**7}}, "embed_dim must be from 1 to 8192"),
    ({"model_args": {"blocks": [3, 4, 6, 1000]}}, "model.blocks"),
    ({"model_args": {"kernel_ms": float("nan")}}, "finite number"),
    ({"format": "other/99"}, "format 'other/99'"),
    ({"weights_sha256": 5}, "not a sha256"),
])
def test_a_crafted_model_description_is_refused_before_anything_is_allocated(tmp_path, change, why):
    m = save_checkpoint(tmp_path / "m", small())
    meta = json.loads((m / "model.json").read_text())
    for k, v in change.items():
        meta[k] = {**meta[k], **v} if isinstance(v, dict) else v
    (m / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=why):
        load_encoder(m)
