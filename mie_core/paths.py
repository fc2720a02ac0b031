"""Every folder the project reads or writes, and the ``MIE_*`` variables that move them.

=================  ===================  ==========================================
function           variable             default
=================  ===================  ==========================================
:func:`data_dir`   ``MIE_DATA``         ``<repo>/data`` (soundfonts, real notes)
:func:`corpus_dir` ``MIE_CORPUS``       ``<data>/corpus``
:func:`embeddings_dir` ``MIE_EMBEDDINGS`` ``<data>/embeddings`` (the one store)
:func:`library_dir` ``MIE_LIBRARY``     ``<data>/my_instruments``
:func:`cache_dir`  ``MIE_CACHE``        ``<repo>/cache`` (shipped models, results)
:func:`runs_dir`   ``MIE_RUNS``         ``<repo>/runs`` (training runs)
=================  ===================  ==========================================

Read at each call, so a test or a process that sets a variable sees it at once.

>>> import os
>>> os.environ["MIE_DATA"] = "/tmp/d"; str(corpus_dir())
'/tmp/d/corpus'
>>> del os.environ["MIE_DATA"]
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default)


def data_dir() -> Path:
    """The git-ignored data folder (``$MIE_DATA`` or ``<repo>/data``)."""
    return _env("MIE_DATA", REPO_ROOT / "data")


def corpus_dir() -> Path:
    """The corpus the app and trainer use by default (``$MIE_CORPUS`` or ``<data>/corpus``)."""
    return _env("MIE_CORPUS", data_dir() / "corpus")


def embeddings_dir() -> Path:
    """The one embedding store (``$MIE_EMBEDDINGS`` or ``<data>/embeddings``)."""
    return _env("MIE_EMBEDDINGS", data_dir() / "embeddings")


def library_dir() -> Path:
    """The user's instrument libraries (``$MIE_LIBRARY`` or ``<data>/my_instruments``)."""
    return _env("MIE_LIBRARY", data_dir() / "my_instruments")


def cache_dir() -> Path:
    """The shipped cache (``$MIE_CACHE`` or ``<repo>/cache``)."""
    return _env("MIE_CACHE", REPO_ROOT / "cache")


def runs_dir() -> Path:
    """Training runs (``$MIE_RUNS`` or ``<repo>/runs``)."""
    return _env("MIE_RUNS", REPO_ROOT / "runs")


def study_dir() -> Path:
    """The paper's study's shipped results (``$MIE_STUDY`` or ``<repo>/docs/study``)."""
    return _env("MIE_STUDY", REPO_ROOT / "docs" / "study")
