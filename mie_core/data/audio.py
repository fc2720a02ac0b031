"""Audio input: any common file (or bytes, or an uploaded file) to a mono float32 array.

`load_audio` is the single entry point every other part of the project uses to read
audio a person gives us. It never lets a library traceback through: anything wrong
with the input becomes an :class:`AudioError` whose message can be shown as is.

Silence trimming (:func:`trim_bounds`, :func:`trim_silence`) follows the paper's
augmentation (Sec. V-B-2): a note's leading and trailing silence is cut before notes
are concatenated. Silence is defined on 25 ms frames (10 ms hop): a frame is silent
when its RMS is more than ``top_db`` dB (default 40) below the loudest frame's RMS.
"""
from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1
DEFAULT_MAX_SECONDS = 60.0
#: a file whose peak is below this (dBFS) is treated as all silent
SILENCE_DBFS = -80.0

Source = Union[str, os.PathLike, bytes, bytearray, BinaryIO]


MAX_PEAK = 16.0  # +24 dB over full scale: float files a little hot are fine, a factor of 10^6 is not


class AudioError(ValueError):
    """Input that cannot be used as audio; ``str(err)`` is a message for a person."""


def _name_of(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return getattr(source, "name", None) or "the upload"


MAX_FILE_BYTES = 512 * 2**20  # no audio file we accept comes near this; refused before reading


def _open(source: Source):
    """A seekable binary file object for ``source``, never reading a whole file first.

    Paths are opened where they are (streamed by libsndfile); a path that is missing, a
    folder, not a regular file (``/dev/zero``, a pipe), unreadable, or larger than
    ``MAX_FILE_BYTES`` is an AudioError naming it.
    """
    import stat as st

    name = _name_of(source)
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise AudioError(f"{name}: no such file.") from None
        except OSError as err:
            raise AudioError(f"{name}: cannot be read ({err.strerror or err}).") from None
        if st.S_ISDIR(info.st_mode):
            raise AudioError(f"{name}: is a folder, not an audio file.")
        if not st.S_ISREG(info.st_mode):
            raise AudioError(f"{name}: not a regular file (a device or a pipe), so not an audio file.")
        if info.st_size > MAX_FILE_BYTES:
            raise AudioError(f"{name}: {info.st_size / 2**20:.0f} MiB is too large for one note or clip.")
        try:
            return open(path, "rb")
        except OSError as err:
            raise AudioError(f"{name}: cannot be read ({err.strerror or err}).") from None
    if hasattr(source, "getvalue"):  # Streamlit UploadedFile, BytesIO
        return io.BytesIO(bytes(source.getvalue()))
    if hasattr(source, "read"):
        try:
            return io.BytesIO(source.read(MAX_FILE_BYTES + 1))
        except OSError as err:
            raise AudioError(f"{name}: cannot be read ({err.strerror or err}).") from None
    raise AudioError(f"Cannot read audio from a {type(source).__name__}.")


def _clean(err: Exception, name: str) -> str:
    """libsndfile's message without the repr of our in-memory file object."""
    import re

    return re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>|<_io\.BufferedReader name=[^>]*>", name, str(err))


_PCM_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _wav_declared_frames(fobj, channels: int, subtype: str) -> int | None:
    """The frames a WAV's ``data`` chunk header declares, or None where it declares none
    (a streaming writer's 0 or 0xFFFFFFFF) or the sample format is not plain PCM/float."""
    width = _PCM_BYTES.get(subtype)
    if width is None:
        return None
    pos = fobj.tell()
    try:
        fobj.seek(0)
        head = fobj.read(1 << 16)
    finally:
        fobj.seek(pos)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        cid, size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if cid == b"data":
            return None if size in (0, 0xFFFFFFFF) else size // (width * max(1, channels))
        at += 8 + size + (size & 1)
    return None


def load_audio(
    source: Source,
    sr: int = SAMPLE_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    min_seconds: float = MIN_SECONDS,
) -> np.ndarray:
    """Read ``source`` as mono float32 at ``sr`` Hz.

    Args:
        source: a path, raw file bytes, or a file-like object (an uploaded file).
            WAV, FLAC, OGG/Vorbis and MP3; any sample rate from 8 to 192 kHz; any
            channel count (channels are averaged); 8/16/24/32-bit integer or float.
        sr: output sample rate in Hz (polyphase resampling, scipy ``resample_poly``).
        max_seconds: longer inputs are refused (the app's guard against huge uploads).
        min_seconds: shorter inputs are refused.

    Returns:
        (n_samples,) float32, values as decoded (full scale is 1.0).

    Raises:
        AudioError: empty, not audio or corrupt, no samples, too short, too long,
            all silent, or containing NaN/Inf samples.
    """
    name = _name_of(source)
    fobj = _open(source)
    try:
        fobj.seek(0, io.SEEK_END)
        if fobj.tell() == 0:
            raise AudioError(f"{name}: the file is empty (0 bytes).")
        fobj.seek(0)
        with sf.SoundFile(fobj) as f:
            file_sr = int(f.samplerate)
            n_frames = f.frames
            if f.format == "WAV":
                declared = _wav_declared_frames(fobj, f.channels, f.subtype)
                if declared is not None and declared > n_frames + 1:
                    raise AudioError(f"{name}: the file is truncated: its header declares {declared / file_sr:.2f} s "
                                     f"of audio and it holds {n_frames / file_sr:.2f} s.")
                fobj.seek(0)
                f.seek(0)
            if file_sr <= 0:
                raise AudioError(f"{name}: the file declares no sample rate.")
            if n_frames > 0 and n_frames / file_sr > max_seconds:
                raise AudioError(
                    f"{name}: {n_frames / file_sr:.1f} s is longer than the {max_seconds:g} s limit."
                )
            # read in blocks, so a file that does not declare its length still stops at the limit
            blocks, total, limit = [], 0, int(max_seconds * file_sr) + 1
            while total <= limit:
                b = f.read(min(file_sr * 10, limit + 1 - total), dtype="float32", always_2d=True)
                if b.shape[0] == 0:
                    break
                blocks.append(b)
                total += b.shape[0]
            x = np.concatenate(blocks) if blocks else np.zeros((0, max(1, f.channels)), np.float32)
    except AudioError:
        raise
    except OSError as err:
        raise AudioError(f"{name}: cannot be read ({_clean(err, name)}).") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(
            f"{name}: not a readable audio file (WAV, FLAC, OGG or MP3 expected; {_clean(err, name)})."
        ) from None
    finally:
        fobj.close()
    if x.shape[0] == 0:
        raise AudioError(f"{name}: the file holds no audio samples.")
    seconds = x.shape[0] / file_sr
    if seconds > max_seconds:
        raise AudioError(f"{name}: {seconds:.1f} s is longer than the {max_seconds:g} s limit.")
    if seconds < min_seconds:
        raise AudioError(
            f"{name}: {seconds * 1000:.0f} ms is too short (at least {min_seconds * 1000:.0f} ms needed)."
        )
    if not np.isfinite(x).all():
        raise AudioError(f"{name}: the file contains NaN or infinite sample values.")
    if not 8000 <= file_sr <= 192000:
        raise AudioError(f"{name}: sample rate {file_sr} Hz is outside 8-192 kHz.")
    mono = x.mean(axis=1)
    peak = float(np.max(np.abs(mono)))
    if peak == 0.0 or 20 * math.log10(peak) < SILENCE_DBFS:
        raise AudioError(f"{name}: the audio is silent.")
    if peak > MAX_PEAK:
        raise AudioError(f"{name}: samples reach {peak:.3g}, {20 * math.log10(peak):.0f} dB above full scale (1.0); "
                         "the file is mis-scaled (a float file written without normalising?).")
    return resample(mono, file_sr, sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of a 1-D signal; returns float32. Identity when rates match."""
    if sr_in == sr_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    ratio = Fraction(sr_out, sr_in)
    from scipy.signal import resample_poly  # here: scipy.signal takes 1.4 s to import, and most callers never resample

    y = resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
    return y.astype(np.float32)


def frame_rms_db(x: np.ndarray, sr: int = SAMPLE_RATE, frame_ms: float = 25.0, hop_ms: float = 10.0) -> np.ndarray:
    """RMS level in dB of each frame; (n_frames,) float64. Frame k starts at k*hop."""
    frame = max(1, int(round(sr * frame_ms / 1000)))
    hop = max(1, int(round(sr * hop_ms / 1000)))
    x = np.asarray(x, dtype=np.float64)
    if x.size < frame:
        x = np.pad(x, (0, frame - x.size))
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, x.size - frame + 1, hop)
    power = (c[starts + frame] - c[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def trim_bounds(
    x: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 40.0, frame_ms: float = 25.0, hop_ms: float = 10.0
) -> tuple[int, int]:
    """Sample range [start, end) of ``x`` that is not leading/trailing silence.

    A frame is silent when its RMS is more than ``top_db`` dB below the loudest frame.
    Returns (0, 0) for an all-zero signal.
    """
    db = frame_rms_db(x, sr, frame_ms, hop_ms)
    if not np.isfinite(db).any() or db.max() <= -199.0:
        return 0, 0
    loud = np.flatnonzero(db >= db.max() - top_db)
    hop = max(1, int(round(sr * hop_ms / 1000)))
    frame = max(1, int(round(sr * frame_ms / 1000)))
    start = int(loud[0] * hop)
    end = int(min(len(x), loud[-1] * hop + frame))
    return start, end


def trim_silence(x: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 40.0) -> np.ndarray:
    """``x`` without leading and trailing silence (see :func:`trim_bounds`)."""
    start, end = trim_bounds(x, sr, top_db)
    return x[start:end]


#: a note is embedded from its onset for at most this long (the ``real`` test part's notes
#: were measured so: :mod:`mie_core.data.realrec`; a 6-s excerpt is two of the encoder's 4-s windows)
NOTE_SECONDS = 6.0
#: kept before the onset, so an attack is never cut (every real test note starts within 50 ms)
ONSET_MARGIN_S = 0.1


def note_bounds(x: np.ndarray, sr: int = SAMPLE_RATE, max_seconds: float = NOTE_SECONDS, top_db: float = 60.0,
                margin_s: float = ONSET_MARGIN_S) -> tuple[int, int]:
    """Sample range [start, end) of the note in ``x`` that is embedded: from ``margin_s``
    before the onset (the first 25-ms frame within ``top_db`` dB of the loudest, as
    :func:`trim_bounds`) for at most ``max_seconds``. Leading silence (a recording started
    before the player) is skipped; a clip that starts at its onset keeps its first sample,
    so for it this is ``x[:max_seconds * sr]``. An all-silent clip gives (0, min(len, max)).
    """
    n = int(round(max_seconds * sr))
    onset, end = trim_bounds(x, sr, top_db)
    start = max(0, onset - int(round(margin_s * sr))) if end > onset else 0
    return start, min(len(x), start + n)


def note_excerpt(x: np.ndarray, sr: int = SAMPLE_RATE, max_seconds: float = NOTE_SECONDS) -> np.ndarray:
    """The part of a recorded note that every embedding path uses (:func:`note_bounds`):
    the app's uploads, ``python -m mie_core verify/identify`` and the ``real`` test part."""
    start, end = note_bounds(x, sr, max_seconds)
    return x[start:end]


def to_wav_bytes(x: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of a float signal (for playback in the app and downloads)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()
