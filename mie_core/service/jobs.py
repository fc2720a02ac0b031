"""Background jobs: long computations that outlive the page run that asked for them.

Streamlit stops a page's script run when the user leaves the page, and whatever that run
was computing is lost. A :class:`JobRunner` runs each job in a thread of its own, keyed
so that asking again (from a later run, another page or another browser tab) joins the
job instead of starting a second one; it keeps the result for later runs and holds the
job's progress for a page to poll. A failed job keeps its error until it is asked for
again, which retries it. No Streamlit in here; ``pages/common/ui.py`` draws the progress.

The embeddings of a trained run's evaluation notes (minutes: every note is rendered and
embedded) and maps with other parameters (t-SNE on 7,090 notes: about a minute) run here.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable


@dataclass
class Job:
    """One computation and what is known of it. ``progress`` is what the job's function calls."""

    key: Hashable
    label: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    message: str = ""
    result: Any = None
    error: BaseException | None = None
    finished: float | None = None
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def state(self) -> str:
        """``"running"``, ``"done"`` or ``"failed"``."""
        if not self._event.is_set():
            return "running"
        return "failed" if self.error is not None else "done"

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1], or None while the job has not said how much there is."""
        return min(1.0, self.done / self.total) if self.total > 0 else None

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        """Called by the job's function, from its thread, as it goes."""
        self.done, self.total = int(done), int(total)
        if message is not None:
            self.message = message

    def wait(self, timeout_s: float | None = None) -> Any:
        """Block until the job ends; its result, or its error raised again."""
        if not self._event.wait(timeout_s):
            raise TimeoutError(f"{self.label} still running after {timeout_s} s")
        if self.error is not None:
            raise self.error
        return self.result


class JobRunner:
    """Runs keyed jobs in background threads and keeps their results (see module docstring).

    ``keep`` bounds how many finished jobs are remembered (the oldest are forgotten first).
    """

    def __init__(self, keep: int = 64):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.keep = keep
        self._jobs: dict[Hashable, Job] = {}
        self._lock = threading.Lock()

    def submit(self, key: Hashable, fn: Callable[..., Any], *args, label: str = "", **kwargs) -> Job:
        """The job for ``key``: the running or finished one, else a new one running
        ``fn(*args, progress=job.progress, **kwargs)``. A failed job is started again."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state != "failed":
                return job
            job = Job(key, label or str(key))
            self._jobs[key] = job
            self._trim()
        threading.Thread(target=self._run, args=(job, fn, args, kwargs), name=f"job {job.label}",
                         daemon=True).start()
        return job

    def get(self, key: Hashable) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    @staticmethod
    def _run(job: Job, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            job.result = fn(*args, progress=job.progress, **kwargs)
        except BaseException as err:  # noqa: BLE001 - kept for the page that asks, not lost in a thread
            job.error = err
        finally:
            job.finished = time.monotonic()
            job._event.set()

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state != "running"]
        for k in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[k]
