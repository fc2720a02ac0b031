"""The library never loses or touches what it should not (issue 31): crafted indexes, two
writers at once, a writer killed at any moment, names in any script."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from mie_core.service.library import InstrumentLibrary, name_key


def emb(seed: int, k: int = 3, d: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, d)).astype(np.float32)


def test_a_crafted_index_cannot_touch_a_file_outside_the_library(tmp_path):
    precious = tmp_path / "x" / "precious.txt"
    precious.parent.mkdir()
    precious.write_text("thesis")
    lib = InstrumentLibrary("h", tmp_path / "lib" / "a")
    lib.add("violin", emb(0), [])
    idx = json.loads(lib.index_path.read_text())
    idx["instruments"]["violin"]["file"] = "../../../x/precious.txt"
    lib.index_path.write_text(json.dumps(idx))
    with pytest.raises(ValueError, match="not one of this library's own"):
        lib.embeddings()
    lib.remove("violin")  # the entry goes; the file it named stays
    assert precious.read_text() == "thesis"
    assert lib.names() == []


def test_names_are_compared_after_normalisation_and_never_collide_on_disk(tmp_path):
    lib = InstrumentLibrary("h", tmp_path)
    lib.add("Violin!", emb(1), [])
    lib.add("Violin?", emb(2), [])
    lib.add("小提琴 1", emb(3), [])
    lib.add("大提琴 1", emb(4), [])
    lib.add("🎻", emb(5), [])
    long_a, long_b = "a" * 80 + "x", "a" * 80 + "y"
    lib.add(long_a, emb(6), [])
    lib.add(long_b, emb(7), [])
    got = lib.embeddings()
    for name, seed in [("Violin!", 1), ("Violin?", 2), ("小提琴 1", 3), ("大提琴 1", 4), ("🎻", 5), (long_a, 6), (long_b, 7)]:
        np.testing.assert_allclose(got[name], emb(seed), atol=1e-2)  # float16 on disk
    with pytest.raises(ValueError, match="already enrolled as 'Violin!'"):
        lib.add("violin!", emb(8), [])
    lib.add("Violin!", emb(9), [])  # the same name replaces
    np.testing.assert_allclose(lib.embeddings()["Violin!"], emb(9), atol=1e-2)
    assert len(list(lib.folder.glob("*.npy"))) == 7  # the replaced enrolment's file is gone
    lib.remove("Violin?")
    assert sorted(lib.embeddings()) == sorted(["Violin!", "小提琴 1", "大提琴 1", "🎻", long_a, long_b])
    assert name_key("Ｖｉｏｌｉｎ") != name_key("violin")  # NFC keeps full-width letters apart
    for bad, why in [("", "letter, digit or symbol"), ("!!", "letter, digit or symbol"), ("a\x00b", "control"),
                     ("v" * 201, "at most 200")]:
        with pytest.raises(ValueError, match=why):
            lib.add(bad, emb(0), [])


def _enrol_many(root, tag, n, start_at):
    lib = InstrumentLibrary("h", root)
    while time.time() < start_at:
        pass
    for i in range(n):
        lib.add(f"{tag}{i}", emb(i), [])


def test_two_processes_enrolling_at_once_keep_every_enrolment(tmp_path):
    ctx = mp.get_context("fork")
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=_enrol_many, args=(tmp_path, tag, 25, start_at)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lib = InstrumentLibrary("h", tmp_path)
    assert sorted(lib.embeddings()) == sorted(f"{t}{i}" for t in "ab" for i in range(25))


def _churn(root, log_path):
    lib = InstrumentLibrary("h", root)
    with open(log_path, "a", buffering=1) as log:
        for i in range(10**6):
            lib.add(f"i{i}", emb(i % 50), [f"{i}.wav"])
            log.write(f"+{i}\n")
            if i % 3 == 2:
                lib.remove(f"i{i - 1}")
                log.write(f"-{i - 1}\n")


def test_a_writer_killed_at_random_moments_leaves_a_library_with_every_completed_enrolment(tmp_path):
    ctx = mp.get_context("fork")
    rng = np.random.default_rng(0)
    log_path = tmp_path / "log.txt"
    for _ in range(10):
        p = ctx.Process(target=_churn, args=(tmp_path, log_path))
        p.start()
        # the kill lands at a random moment after a random number of completed operations: counted
        # in operations, not seconds, so a slow or busy machine tests the same thing as a fast one
        wait_for = int(rng.integers(1, 20))
        deadline = time.time() + 60
        while time.time() < deadline and (not log_path.exists() or len(log_path.read_text().split()) < wait_for):
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0.0, 0.03)))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        # the library is what the log says is done, but for the one operation in flight when killed
        done = set()
        for line in log_path.read_text().split():
            (done.add if line[0] == "+" else done.discard)(f"i{line[1:]}")
        got = InstrumentLibrary("h", tmp_path).embeddings()  # loads: no dangling entry
        assert len(done ^ set(got)) <= 1, (sorted(done ^ set(got)), len(done))
        assert len(done) >= 1  # the writer got somewhere before the kill
        log_path.write_text("")
        for name in got:  # the next round starts from an empty library with the same names
            InstrumentLibrary("h", tmp_path).remove(name)
