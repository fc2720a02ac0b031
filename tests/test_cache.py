"""The shipped cache: its manifest matches its files, and its embeddings are the
checkpoints' output. Also the builder itself, on the tiny corpus."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mie_core import workbench
from mie_core.model import InstrumentEncoder
from mie_core.render import render_many

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "cache"
needs_cache = pytest.mark.skipif(not (SHIPPED / "manifest.json").exists(), reason="no shipped cache in this checkout")


def check_manifest(root: Path) -> dict:
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == set(manifest["files"])
    for name, info in manifest["files"].items():
        data = (root / name).read_bytes()
        assert len(data) == info["bytes"] and hashlib.sha256(data).hexdigest() == info["sha256"], name
    assert manifest["command"].startswith("python -m training.build_cache")
    return manifest


def check_embeddings_match_the_checkpoint(root: Path, n: int = 3) -> None:
    bench = json.loads((root / "results" / "benchmark.json").read_text())
    notes = pd.read_parquet(root / "embeddings" / "notes_test.parquet")
    present = notes[notes["soundfont"].isin(workbench.soundfont_paths())]  # make data fetches them; one may be absent
    assert len(present), "none of the cache's soundfonts is on this machine"
    rows = present.iloc[np.linspace(0, len(present) - 1, n).round().astype(int)]
    audio = render_many(workbench.note_specs(rows), workers=1)
    for folder in sorted((root / "models").iterdir()):
        enc = InstrumentEncoder.from_checkpoint(folder)
        want = np.load(root / "embeddings" / f"{folder.name}_test.npy")[rows.index.to_numpy()].astype(np.float32)
        got = enc.embed(audio, bf16=bench["embed_bf16"])
        cos = (want * got).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
        # float16 storage (and bf16 kernels that differ between CPUs) leave cosine > 0.999
        assert cos.min() > 0.999, (folder.name, cos)
        np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05 * np.abs(want).max())


@needs_cache
def test_shipped_manifest_matches_the_files():
    manifest = check_manifest(SHIPPED)
    # the budget of what the repository ships: two models with their embeddings, maps and
    # results (56.5 MB) and the room bank, which cannot be rebuilt (4.6 MB, mie_core.chain.SHIPPED_ROOMS)
    assert manifest["total_bytes"] < 65e6


@needs_cache
def test_shipped_embeddings_are_the_checkpoints_output():
    check_embeddings_match_the_checkpoint(SHIPPED)


@needs_cache
def test_shipped_cache_has_everything_the_app_reads():
    bench = json.loads((SHIPPED / "results" / "benchmark.json").read_text())
    models = sorted(p.name for p in (SHIPPED / "models").iterdir())
    assert {"mel122", "cqt122"} <= set(models)
    for m in models:
        for part in ("test", "valid"):
            e = np.load(SHIPPED / "embeddings" / f"{m}_{part}.npy")
            assert e.dtype == np.float16 and len(e) == len(pd.read_parquet(SHIPPED / "embeddings" / f"notes_{part}.parquet"))
        for method in ("tsne", "umap"):
            assert (SHIPPED / "maps" / f"{m}_test_{method}.npy").exists()
        r = bench["parts"]["test"]["models"][m]
        assert {"eer", "eer_ci", "min_dcf", "threshold", "det", "family_eer"} <= set(r)
        meta = json.loads((SHIPPED / "models" / m / "model.json").read_text())
        prov = meta["provenance"]
        assert meta["label_maps"]["instrument"] and prov["machine"] and prov["config"] and prov["corpus"]
        assert prov["commit"] or prov["commit_note"]  # a run started before the first commit says so
    assert "significance" in bench["parts"]["test"] and "mfcc_baseline" in bench["parts"]["test"]["models"]
    assert {r["label"] for r in bench["probing"]} >= {"family", "source", "pitch_octave", "velocity"}


def check_backends(root: Path) -> None:
    """Each model's scoring back-end: calibrated, with a cohort of training instruments and
    centroids of every corpus instrument in its space (no LDA: the shipped choice)."""
    from mie_core.scoring import Backend
    from mie_core.verify import load_verifier

    for folder in sorted((root / "models").iterdir()):
        be = Backend.load(folder)
        assert be.projection is None and not (folder / "backend_projection.npy").exists()
        assert be.cohort.shape[1] == be.mean.size and be.calibration is not None and be.calibration[0] > 0
        ver = load_verifier(folder)
        assert ver.centroids.shape[1] == be.mean.size
        assert np.allclose(np.linalg.norm(ver.centroids, axis=1), 1.0, atol=2e-3)  # float16 unit vectors
        assert be.info["n_train_notes"] == 6 * (ver.instruments["part"] == "train").sum()  # the bank's notes


@needs_cache
def test_shipped_backends():
    check_backends(SHIPPED)


def test_builder_on_the_tiny_corpus(tiny_cache):
    root = tiny_cache["cache"]
    check_manifest(root)
    check_embeddings_match_the_checkpoint(root)
    bench = json.loads((root / "results" / "benchmark.json").read_text())
    assert set(bench["parts"]) == {"test", "valid", "wet"}
    # the wet part is the test notes through the test rooms' chain: same notes, harder trials
    test, wet = (pd.read_parquet(root / "embeddings" / f"notes_{p}.parquet") for p in ("test", "wet"))
    assert test["note_str"].tolist() == wet["note_str"].tolist()
    assert bench["probing"] and set(bench["models"]) == {"cqt_tiny", "mel_tiny"}
    check_backends(root)


def test_verify_cache_names_a_corrupt_file(tiny_cache, tmp_path):
    import shutil
    import subprocess
    import sys

    assert workbench.verify_cache(tiny_cache["cache"]) == []
    copy = tmp_path / "cache"
    shutil.copytree(tiny_cache["cache"], copy)
    target = copy / "embeddings" / "mel_tiny_test.npy"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0x40  # one flipped bit, same size: only the hash sees it
    target.write_bytes(bytes(data))
    problems = workbench.verify_cache(copy)
    assert len(problems) == 1 and "mel_tiny_test.npy" in problems[0] and "sha256" in problems[0]
    assert workbench.verify_cache(copy, hashes=False) == []
    res = subprocess.run([sys.executable, "-m", "mie_core", "verify-cache", "--cache", str(copy)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 1 and "mel_tiny_test.npy" in res.stderr
