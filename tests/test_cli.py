"""The command line (python -m mie_core): one line and exit 2 for every bad input, and
nothing of an earlier result lost (issue 31)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mie_core.data.audio import AudioError, load_audio
from mie_core.fileio import csv_bytes

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "cache" / "models" / "cqt122"


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mie_core", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def note(tmp_path_factory):
    path = tmp_path_factory.mktemp("notes") / "a4.wav"
    t = np.arange(32000) / 16000
    sf.write(path, 0.2 * np.sin(2 * np.pi * 440 * t) * np.exp(-t), 16000)
    return path


def test_counts_below_one_are_refused(note):
    for args in (["identify", "--model", MODEL, "--top", "0", note], ["identify", "--model", MODEL, "--top", "-1", note],
                 ["embed", "--model", MODEL, "--out", "x.npy", "--batch-size", "0", note],
                 ["embed", "--model", MODEL, "--out", "x.npy", "--batch-size", "-1", note]):
        res = cli(*args)
        assert res.returncode == 2 and "must be at least 1" in res.stderr, res.stderr


def test_a_closed_pipe_ends_quietly(note):
    res = subprocess.run(f"{sys.executable} -m mie_core identify --model {MODEL} --json {note} {note} | head -1",
                         shell=True, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.stdout.count("\n") == 1 and res.stdout.startswith("{")
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr


def test_a_failing_embed_leaves_the_earlier_result_whole(note, tmp_path):
    out = tmp_path / "e.npy"
    assert cli("embed", "--model", MODEL, "--out", out, note).returncode == 0
    before, listed = out.read_bytes(), out.with_suffix(".files.txt").read_text()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not audio")
    res = cli("embed", "--model", MODEL, "--out", out, bad)
    assert res.returncode == 2 and "left as it was" in res.stderr
    assert out.read_bytes() == before and out.with_suffix(".files.txt").read_text() == listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav", "e.files.txt", "e.npy"]


def test_a_truncated_wav_is_refused_in_one_line(note, tmp_path):
    data = note.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioError, match=r"truncated: its header declares 2.00 s of audio and it holds 0.6"):
        load_audio(cut)
    assert load_audio(note).shape == (32000,)


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted():
    df = pd.DataFrame({"file": ["=HYPERLINK(\"http://x\")", "=1+1.wav", "+a", "-b", "@c", "cello.wav"],
                       "score": [-1.0, 2.0, 0.5, -0.5, 1.0, 3.0]})
    back = pd.read_csv(__import__("io").BytesIO(csv_bytes(df)))
    assert list(back["file"]) == ["'=HYPERLINK(\"http://x\")", "'=1+1.wav", "'+a", "'-b", "'@c", "cello.wav"]
    assert list(back["score"]) == [-1.0, 2.0, 0.5, -0.5, 1.0, 3.0]  # numbers stay numbers, signs included


def test_evaluate_averages_the_real_figures_over_their_own_draws(monkeypatch, tmp_path):
    """``evaluate`` scores the real notes' per-source figures over REAL_DRAWS trial draws (20: a
    source of one instrument has 20 + 20 trials per draw) whatever ``--draws`` the renders get,
    and ``--real-draws`` sets them."""
    import inspect

    from mie_core import __main__ as cli_main
    from mie_core.evaluation import report

    assert report.REAL_DRAWS == 20
    assert inspect.signature(report.run_evaluation).parameters["real_draws"].default == report.REAL_DRAWS
    seen = []
    monkeypatch.setattr(report, "run_evaluation", lambda **kw: seen.append(kw) or {})
    for extra in ([], ["--real-draws", "7"]):
        assert cli_main.main(["evaluate", "--model", "x", "--out", str(tmp_path), "--draws", "3", *extra]) == 0
    assert seen[0]["n_draws"] == seen[1]["n_draws"] == 3
    assert "real_draws" not in seen[0] and seen[1]["real_draws"] == 7
