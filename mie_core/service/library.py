"""The user's own instrument library: named instruments enrolled from their recordings.

Kept across app restarts in a folder (``data/my_instruments`` or ``$MIE_LIBRARY``), one
subfolder per model (its weights' hash), plain files only, nothing pickled::

    <system hash>/library.json       {"instruments": {name: {"files": [...], "added": ..., "n": k,
                                                              "pitch": [...], "recording": [[6 numbers], ...]}},
                                      "calibration": [a, b] or null, "calibration_on": "llr",
                                      "calibration_auto": bool, "calibration_info": {...}}
    <system hash>/<id>.npy           float16 (k, width) raw embeddings of the enrolment clips
    <system hash>/.lock              held while one process writes (mie_core.fileio.FileLock)

The folder is named by :attr:`mie_core.service.verify.Verifier.hash` (both models' weights for a
fused system, whose embeddings are both models' side by side). An instrument's
enrolment is made by the back-end from those embeddings at scoring time, so re-enrolling
is never needed when a calibration changes. Scoring many clips against every enrolled
instrument is :func:`mie_core.service.verify.identify_enrolled`; :meth:`InstrumentLibrary.calibrate`
fits the user's own calibration on their labelled recordings, and
:meth:`InstrumentLibrary.refresh_calibration` one on the enrolments themselves, kept current
as instruments are enrolled: ``a llr + b`` over the system's calibrated LLR (a calibration from before this form, fitted on AS-norm scores,
has no ``calibration_on`` and is not used).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import uuid
from pathlib import Path

import numpy as np

from mie_core.fileio import FileLock, atomic_save_npy, atomic_write_text
from mie_core.paths import library_dir


# how hard the user's calibration's slope is pulled towards 1 (the system's own scale), in
# trials of each kind (scoring.fit_calibration): measured with benchmarks/user_calibration.py
# (README, "your own calibration")
USER_SHRINK = 10.0
ENROLMENT_SOURCE = "enrolment clips, leave one out"
MAX_NAME_CHARS = 200
# the embedding files a library names: its own ids (``<32 hex>.npy``), or a slug of an older
# library; never a path (a shared library's JSON is not trusted to name files outside it)
SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.npy$")


def name_key(name: str) -> str:
    """What two instrument names are compared by: Unicode NFC, case folded, spaces collapsed.

    >>> name_key("  Violin  1 ") == name_key("violin 1")
    True
    >>> name_key("小提琴 1") == name_key("大提琴 1")
    False
    """
    return " ".join(unicodedata.normalize("NFC", str(name)).casefold().split())


def check_name(name: str) -> str:
    """The name as stored (NFC, outer spaces stripped), or ValueError saying the rule broken.
    Any script is allowed, and symbols (``🎻``); control characters and names over 200
    characters are not.

    >>> check_name("  小提琴   1 ")
    '小提琴 1'
    """
    if not isinstance(name, str):
        raise ValueError(f"an instrument's name is text, not {type(name).__name__}")
    n = " ".join(unicodedata.normalize("NFC", name).split())
    if not any(unicodedata.category(ch)[0] in "LNS" for ch in n):
        raise ValueError("an instrument needs a name with at least one letter, digit or symbol")
    if any(unicodedata.category(ch).startswith("C") for ch in n):
        raise ValueError(f"the instrument name {name!r} holds control characters")
    if len(n) > MAX_NAME_CHARS:
        raise ValueError(f"an instrument name may have at most {MAX_NAME_CHARS} characters, not {len(n)}")
    return n


class InstrumentLibrary:
    """The enrolled instruments of one model (``model_hash``) in ``root``.

    Every change is one locked read-modify-write (:class:`mie_core.fileio.FileLock` on
    ``.lock``: two tabs, or the page and the ``verify`` command, wait for each other), and
    every file is written whole then renamed into place. An enrolment's embeddings are
    written to a new file named by an id before the index names it, and an old file is
    deleted only after the index no longer names it, so a process killed at any moment
    leaves a library that loads with every completed enrolment.
    """

    def __init__(self, model_hash: str, root: Path | None = None, lock_timeout_s: float = 30.0):
        if not re.fullmatch(r"[A-Za-z0-9._+-]{1,128}", str(model_hash)) or str(model_hash) in (".", ".."):
            raise ValueError(f"not a model hash: {model_hash!r}")
        self.folder = Path(root or library_dir()) / model_hash
        self.index_path = self.folder / "library.json"
        self.lock = FileLock(self.folder / ".lock", timeout_s=lock_timeout_s, what=f"the instrument library {self.folder}")

    def _index(self) -> dict:
        if not self.index_path.exists():
            return {"instruments": {}, "calibration": None, "calibration_info": {}}
        try:
            idx = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{self.index_path}: the instrument library cannot be read ({err})") from None
        if not isinstance(idx, dict) or not isinstance(idx.get("instruments"), dict) or not all(
                isinstance(r, dict) for r in idx["instruments"].values()):
            raise ValueError(f"{self.index_path}: not an instrument library")
        return idx

    def _write(self, idx: dict) -> None:
        atomic_write_text(self.index_path, json.dumps(idx, indent=1, ensure_ascii=False))

    def _file(self, rec: dict) -> Path:
        """The embeddings file an index entry names, refused unless it is a plain file name
        inside the library folder."""
        name = rec.get("file")
        if not isinstance(name, str) or not SAFE_FILE.match(name):
            raise ValueError(f"{self.index_path}: an entry names the file {name!r}, which is not one of this "
                             "library's own (a plain .npy name inside its folder)")
        return self.folder / name

    def names(self) -> list[str]:
        return sorted(self._index()["instruments"])

    def add(self, name: str, embeddings: np.ndarray, files: list[str], pitches=None, recording=None) -> None:
        """Enrol (or replace) ``name`` from raw embeddings (k, d) of its clips; ``pitches``: their
        estimated MIDI pitches (k,) (:func:`mie_core.data.pitch.note_midi`; NaN where none), kept so a
        scored clip's distance to the enrolment's range can be given; ``recording``: their (k, 6)
        recording features (:func:`mie_core.data.recording.recording_features`), kept so the
        automatic choice of calibration can weigh the enrolment as it sounds.

        Names are compared by :func:`name_key`: ``name`` replaces an instrument of exactly that
        name, and is refused (ValueError) where another spelling of it is enrolled."""
        name = check_name(name)
        emb = np.atleast_2d(np.asarray(embeddings, np.float32))
        if emb.ndim != 2 or emb.shape[0] == 0 or not np.isfinite(emb).all():
            raise ValueError("an enrolment needs at least one clip with finite embeddings")
        rec = {"file": f"{uuid.uuid4().hex}.npy", "files": list(map(str, files)), "n": int(len(emb)),
               "added": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if pitches is not None:
            p = np.asarray(pitches, np.float64).reshape(-1)
            if p.size != len(emb):
                raise ValueError(f"{p.size} pitches for {len(emb)} enrolment clips")
            rec["pitch"] = [None if not np.isfinite(v) else round(float(v), 3) for v in p]
        if recording is not None:
            r = np.asarray(recording, np.float64)
            if r.ndim != 2 or len(r) != len(emb) or not np.isfinite(r).all():
                raise ValueError(f"recording features of shape {r.shape} for {len(emb)} enrolment clips")
            rec["recording"] = [[round(float(v), 5) for v in row] for row in r]
        with self.lock:
            idx = self._index()
            same = [n for n in idx["instruments"] if name_key(n) == name_key(name) and n != name]
            if same:
                raise ValueError(f"{name!r} is already enrolled as {same[0]!r} (names are compared ignoring case "
                                 "and spacing); enrol under that name to replace it, or choose another")
            old = idx["instruments"].get(name)
            atomic_save_npy(self._file(rec), emb.astype(np.float16))
            idx["instruments"][name] = rec
            self._write(idx)
            if old is not None:
                self._unlink(old)

    def _unlink(self, rec: dict) -> None:
        """Delete an entry's file once no entry names it (never a file the library does not own)."""
        try:
            path = self._file(rec)
        except ValueError:
            return
        if path.name not in {r.get("file") for r in self._index()["instruments"].values()}:
            path.unlink(missing_ok=True)

    def pitches(self) -> dict[str, np.ndarray]:
        """Each instrument's enrolment pitches (MIDI; NaN where a clip had none, or for an
        instrument enrolled before pitches were kept)."""
        return {n: np.array([np.nan if v is None else v for v in r.get("pitch", [None] * r["n"])], np.float64)
                for n, r in sorted(self._index()["instruments"].items())}

    def recordings(self) -> dict[str, np.ndarray | None]:
        """Each instrument's (k, 6) enrolment recording features, or None for an instrument
        enrolled before they were kept (:func:`mie_core.service.verify.verify` then weighs the
        trial by the test clip alone)."""
        return {n: (np.asarray(r["recording"], np.float32) if r.get("recording") else None)
                for n, r in sorted(self._index()["instruments"].items())}

    def remove(self, name: str) -> None:
        """Forget ``name``: the index first, then its file (a kill between leaves an unused file)."""
        with self.lock:
            idx = self._index()
            rec = idx["instruments"].pop(name, None)
            if rec:
                self._write(idx)
                self._unlink(rec)

    def embeddings(self) -> dict[str, np.ndarray]:
        idx = self._index()
        out = {}
        for n, r in sorted(idx["instruments"].items()):
            path = self._file(r)
            try:
                out[n] = np.load(path, allow_pickle=False).astype(np.float32)
            except (OSError, ValueError) as err:
                raise ValueError(f"{path}: the enrolment of {n!r} cannot be read ({err}); remove it and enrol again") from None
        return out

    def info(self) -> dict:
        return self._index()["instruments"]

    @property
    def calibration(self) -> tuple[float, float] | None:
        """(a, b) of the user's recalibration ``a llr + b``, or None."""
        idx = self._index()
        c = idx.get("calibration")
        return tuple(c) if c and idx.get("calibration_on") == "llr" else None

    def calibrate(self, verifier, clips_emb: np.ndarray, labels: list[str], shrink: float = USER_SHRINK) -> dict:
        """Fit the user's calibration on their labelled clips (each labelled with an enrolled
        instrument): every clip against every enrolled instrument is a trial, scored by the
        system's own LLR (:func:`mie_core.service.verify.verify`). Needs at least two instruments
        and both kinds of trial; stores (a, b) of ``a llr + b`` and what it was fitted on.
        ``shrink``: the pull of the slope towards 1 (:func:`mie_core.scoring.backend.fit_calibration`),
        so that a few separable clips move the threshold without making every verdict certain."""
        enrolled = self.embeddings()
        labels = list(labels)
        unknown = sorted(set(labels) - set(enrolled))
        if unknown:
            raise ValueError(f"labels that are not enrolled instruments: {', '.join(unknown)}")
        if len(enrolled) < 2:
            raise ValueError("calibration needs at least two enrolled instruments")
        tar, non = [], []
        for name, emb in enrolled.items():
            s = _llrs(verifier, emb, clips_emb)
            is_t = np.asarray([lab == name for lab in labels])
            tar.append(s[is_t])
            non.append(s[~is_t])
        return self._fit(np.concatenate(tar), np.concatenate(non), shrink, "labelled clips")

    def calibrate_from_enrolments(self, verifier, shrink: float = USER_SHRINK) -> dict:
        """Fit the user's calibration without labelling anything: every enrolment clip is a
        trial, genuine against the rest of its own instrument's enrolment (leave one out) and
        impostor against every other enrolled instrument. Needs two instruments, one of them
        with at least two clips; otherwise as :meth:`calibrate`."""
        with self.lock:  # the enrolments it is fitted on are those it is stamped with
            return self._calibrate_from_enrolments(verifier, shrink)

    def _calibrate_from_enrolments(self, verifier, shrink: float) -> dict:
        enrolled = self.embeddings()
        if len(enrolled) < 2:
            raise ValueError("calibration needs at least two enrolled instruments")
        tar, non = [], []
        for name, emb in enrolled.items():
            for i in range(len(emb)) if len(emb) >= 2 else ():
                tar.append(_llrs(verifier, np.delete(emb, i, axis=0), emb[i:i + 1]))
            others = np.concatenate([e for n, e in enrolled.items() if n != name])
            non.append(_llrs(verifier, emb, others))
        if not tar:
            raise ValueError("calibration from enrolments needs an instrument enrolled from at least two clips")
        return self._fit(np.concatenate(tar), np.concatenate(non), shrink, ENROLMENT_SOURCE)

    def refresh_calibration(self, verifier, shrink: float = USER_SHRINK) -> dict | None:
        """Keep the calibration from enrolments current as instruments come and go.

        Unless the user fitted one on labelled clips or went back to the model's own, the
        library calibrates itself from its enrolments (:meth:`calibrate_from_enrolments`)
        as soon as they allow it (two instruments, one with two clips), refits when the
        enrolments change, and drops it when they no longer allow it. On real recordings a
        user's own instruments are then judged right for 88.9-95.9 % of genuine and
        85.9-92.5 % of impostor clips with 2 to 10 enrolled instruments, against 74-88 % of
        impostors with the model's own calibration (README, "your own calibration";
        ``benchmarks/user_calibration.py --from-enrolments --instruments N``). Returns the
        new calibration's info when it refitted, else None."""
        idx = self._index()
        if not idx.get("calibration_auto", True):
            return None
        info = idx.get("calibration_info") or {}
        if idx.get("calibration") and info.get("from") != ENROLMENT_SOURCE:
            return None  # fitted on labelled clips: the user's word stands
        stamp = self._enrolment_stamp(idx)
        if idx.get("calibration") and info.get("enrolments") == stamp:
            return None
        try:
            return self.calibrate_from_enrolments(verifier, shrink)
        except ValueError:
            if idx.get("calibration"):
                self.clear_calibration(auto=True)
            return None

    @staticmethod
    def _enrolment_stamp(idx: dict) -> str:
        return json.dumps(sorted((n, r.get("n"), r.get("added")) for n, r in idx["instruments"].items()))

    def _fit(self, t: np.ndarray, n: np.ndarray, shrink: float, source: str) -> dict:
        from mie_core.scoring import backend

        if t.size < 2 or n.size < 2:
            raise ValueError("calibration needs at least two clips of enrolled instruments and two of others")
        a, b = backend.fit_calibration(t, n, shrink=shrink)
        with self.lock:
            return self._store_calibration(a, b, t, n, shrink, source)

    def _store_calibration(self, a, b, t, n, shrink, source) -> dict:
        idx = self._index()
        idx["calibration"], idx["calibration_on"] = [a, b], "llr"
        # fitted on enrolments, it follows them (refresh_calibration); on labelled clips, it stays
        idx["calibration_auto"] = source == ENROLMENT_SOURCE
        idx["calibration_info"] = {"n_target": int(t.size), "n_nontarget": int(n.size), "shrink": shrink,
                                   "from": source, "enrolments": self._enrolment_stamp(idx),
                                   "fitted": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self._write(idx)
        return idx["calibration_info"]

    @property
    def calibration_info(self) -> dict:
        return self._index().get("calibration_info", {})

    def clear_calibration(self, auto: bool = False) -> None:
        """Back to the model's own calibration; ``auto``: let :meth:`refresh_calibration`
        calibrate from the enrolments again when they change (the user's "go back" says no)."""
        with self.lock:
            idx = self._index()
            idx["calibration"], idx["calibration_info"], idx["calibration_auto"] = None, {}, auto
            idx.pop("calibration_on", None)
            self._write(idx)


def _llrs(verifier, enrol_emb: np.ndarray, clips_emb: np.ndarray) -> np.ndarray:
    """(n,) the system's calibrated LLRs of clips against one enrolment (:func:`mie_core.service.verify.verify`)."""
    from mie_core.service.verify import verify

    s = verify(verifier, enrol_emb, clips_emb)["llr"].to_numpy()
    if not np.isfinite(s).all():
        raise ValueError("this model has no calibrated back-end to recalibrate")
    return s
