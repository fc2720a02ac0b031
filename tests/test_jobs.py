"""Background jobs (mie_core.service.jobs) and the app's on-demand embeddings of a trained run."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from mie_core.data import render
from mie_core.service import workbench
from mie_core.evaluation.embeddings import EmbeddingStore
from mie_core.service.jobs import JobRunner


def test_the_same_key_joins_the_running_job():
    calls, gate = [], threading.Event()

    def work(x, progress):
        calls.append(x)
        progress(1, 4, "a quarter")
        gate.wait(10)
        return x * 2

    runner = JobRunner()
    a = runner.submit("k", work, 21, label="double")
    b = runner.submit("k", work, 99)  # asked again (another page run): joins, does not start another
    assert a is b and a.state == "running"
    deadline = time.monotonic() + 5
    while a.fraction is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert a.fraction == 0.25 and a.message == "a quarter"
    gate.set()
    assert a.wait(5) == 42 and a.state == "done" and calls == [21]
    assert runner.submit("k", work, 7).result == 42  # a finished job is kept, not rerun
    assert calls == [21]


def test_a_failed_job_keeps_its_error_and_is_retried_when_asked_again():
    attempts = []

    def flaky(progress):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk full")
        return "ok"

    runner = JobRunner()
    job = runner.submit("f", flaky)
    with pytest.raises(OSError, match="disk full"):
        job.wait(5)
    assert job.state == "failed" and runner.get("f") is job
    again = runner.submit("f", flaky)
    assert again is not job and again.wait(5) == "ok" and len(attempts) == 2


def test_finished_jobs_beyond_keep_are_forgotten_oldest_first():
    runner = JobRunner(keep=2)
    for k in range(4):
        runner.submit(k, lambda k, progress: k, k).wait(5)
    assert [j.key for j in runner.jobs()] == [2, 3]
    assert runner.get(0) is None and runner.get(3).result == 3
    with pytest.raises(ValueError):
        JobRunner(keep=0)


def test_wait_times_out_while_running():
    gate = threading.Event()
    job = JobRunner().submit("slow", lambda progress: gate.wait(10))
    with pytest.raises(TimeoutError):
        job.wait(0.05)
    gate.set()
    assert job.wait(5) is True


def test_embed_part_reports_progress_and_saves_its_work(tiny_cache, tmp_path, monkeypatch):
    """A trained run's evaluation notes are rendered and embedded once; the second time they come from disk."""
    cache = workbench.Cache(tiny_cache["cache"])
    notes = cache.notes("test").iloc[:40]
    entry = next(m for m in workbench.find_models(tiny_cache["cache"], tiny_cache["runs"]) if not m.shipped)
    seen = []
    store = EmbeddingStore(tmp_path)
    emb = workbench.embed_part(entry, notes, progress=lambda d, t, m=None: seen.append((d, t, m)), store=store)
    assert emb.shape[0] == 40 and np.isfinite(emb).all()
    done, total = seen[-1][0], seen[-1][1]
    assert done == total == 40 * (1 + workbench.EMBED_WEIGHT)
    assert any(m.startswith("rendering") for *_, m in seen) and any(m.startswith("embedding") for *_, m in seen)
    assert [d for d, *_ in seen] == sorted(d for d, *_ in seen)  # never goes back
    # the same model and notes again: from disk, nothing rendered
    monkeypatch.setattr(render, "render_many", lambda *a, **k: pytest.fail("rendered again"))
    again = workbench.embed_part(entry, notes, store=store)
    assert np.array_equal(again, emb)
    # the run is the checkpoint the tiny cache shipped as mel_tiny: the same embeddings (the cache keeps float16)
    shipped = cache.embeddings("mel_tiny", "test")[:40].astype(np.float32)
    cos = np.sum(unit(emb) * unit(shipped), axis=1)
    assert entry.name == "mel_tiny (run)" and cos.min() > 0.999, cos.min()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_the_app_and_the_cache_builder_give_identical_embeddings(tiny_cache):
    """Same checkpoint through both entry points (the app's background job for a run, and
    ``python -m training.build_cache``): one store, one key, identical arrays."""
    import json

    from mie_core.evaluation import parts

    cache = workbench.Cache(tiny_cache["cache"])
    precision = json.loads((tiny_cache["cache"] / "results" / "benchmark.json").read_text())["precision"]
    entry = next(m for m in workbench.find_models(tiny_cache["cache"], tiny_cache["runs"]) if not m.shipped)
    for part in ("test", "valid"):
        app = workbench.embed_part(entry, cache.notes(part), part=part, precision=precision)
        builder = cache.embeddings("mel_tiny", part)
        assert app.dtype == builder.dtype == np.float32
        assert np.array_equal(app, builder), part
    # the wet part's embeddings are not shipped, but the builder left them in the store: the
    # app finds them under the same key instead of computing its own
    wet_key = parts.wet_part(parts.clean_part("test", cache.notes("wet")), per_instrument=None).key
    store = EmbeddingStore()
    assert store.has(entry.path, wet_key, precision)
    wet = workbench.embed_part(entry, cache.notes("wet"), part="wet", precision=precision)
    assert np.array_equal(wet, np.load(store.path(entry.path, wet_key, precision)).astype(np.float32))
    assert not np.allclose(wet, cache.embeddings("mel_tiny", "test"), atol=1e-2)  # the chain did something
