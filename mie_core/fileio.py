"""Files written for a user: whole or not at all, one writer at a time.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_save_npy`: the
  content goes to a temporary file in the target's own folder, is flushed to disk, then
  renamed over the target (``os.replace``, atomic on POSIX): a reader, or a process
  killed at any instant, sees the old file or the new one, never a part of either.
  Nothing is deleted first.
* :class:`FileLock`: an OS lock (``flock``) on a lock file, released by the kernel when
  its holder dies; a second writer waits up to ``timeout_s`` and is then told who holds
  it (:class:`LockedError`, naming the pid the holder wrote into the lock file).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
>>> with FileLock(d / ".lock"):
...     atomic_write_text(d / "a.txt", "again")
>>> sorted(p.name for p in d.iterdir())  # no temporary file is left behind
['.lock', 'a.txt']
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import weakref

import numpy as np

_HELD: "weakref.WeakSet[FileLock]" = weakref.WeakSet()


def _close_held_in_child() -> None:
    for lock in list(_HELD):
        lock._drop_in_child()


os.register_at_fork(after_in_child=_close_held_in_child)

def file_sha256(path: str | Path) -> str:
    """Full sha256 hex digest of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class LockedError(RuntimeError):
    """Another process holds the lock; the message names the file and the holder."""


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def _write_whole(path: str | Path, write, suffix: str = ".tmp") -> None:
    """``write(f)`` into a temporary file in ``path``'s folder, fsync, then rename over ``path``;
    on any failure the temporary file goes and ``path`` is as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path).with_suffix(suffix)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` as ``path`` whole (temporary file in the same folder, fsync, rename)."""
    _write_whole(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` of ``array`` as ``path`` whole (no pickles)."""
    _write_whole(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False), ".tmp.npy")


class FileLock:
    """Exclusive lock on ``path`` (created if missing) for a block of writes.

    ``timeout_s``: how long a second writer waits before :class:`LockedError` (0: at once).
    Re-entrant within one object (nested ``with`` blocks of the same lock are one hold).
    A forked child closes its copy, so a helper process never keeps a dead holder's lock.
    """

    def __init__(self, path: str | Path, timeout_s: float = 30.0, what: str = "this folder"):
        self.path = Path(path)
        self.timeout_s = float(timeout_s)
        self.what = what
        self.fd: int | None = None
        self.depth = 0

    def acquire(self) -> "FileLock":
        import fcntl

        if self.fd is not None:
            self.depth += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise LockedError(f"{self.what} is being written by another process (pid {holder}, lock "
                                      f"{self.path}); try again when it has finished") from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd, self.depth = fd, 1
        _HELD.add(self)
        return self

    def _drop_in_child(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        import fcntl

        if self.fd is None:
            return
        self.depth -= 1
        if self.depth > 0:
            return
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
        _HELD.discard(self)

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# a cell a spreadsheet would evaluate as a formula starts with one of these (OWASP's list)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_bytes(df) -> bytes:
    """A table as UTF-8 CSV that a spreadsheet opens as data: a text cell that starts like
    a formula (``=1+1.wav``, ``=HYPERLINK(...)``) is written with a leading ``'``; numbers
    are left as they are.

    >>> import pandas as pd
    >>> csv_bytes(pd.DataFrame({"file": ["=1+1.wav", "violin.wav"], "score": [-1.5, 2.0]})).decode()
    "file,score\\n'=1+1.wav,-1.5\\nviolin.wav,2.0\\n"
    """
    out = df.copy()
    for col in out.columns:
        if getattr(out[col].dtype, "kind", "O") not in "biufcmM":  # text columns (object or str dtype)
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return out.to_csv(index=False).encode("utf-8")
