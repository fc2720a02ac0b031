"""A note's pitch from its audio: YIN (de Cheveigné & Kawahara, JASA 2002), no labels needed.

Verification scores fall with the pitch distance between a test note and the instrument's
enrolment notes (an instrument's timbre changes over its range): on real recordings the
shipped models accept far fewer genuine notes an octave or more away from every enrolment
note than notes within a few semitones (``cache/results/pitch_gaps.json``, made by ``python -m
training.build_cache --pitch-gaps-only``; README, "How far the test note lies from the
enrolment"). An uploaded clip carries
no pitch label, so the Verify page estimates it here to say how far a test note lies from the
enrolment, and to tell the user to enrol across the range they will test.

:func:`yin` gives per-frame fundamental frequency (Hz) and aperiodicity (the cumulative-mean-
normalised difference at the chosen lag, YIN's step 3; 0 for a perfectly periodic frame);
:func:`note_midi` the MIDI pitch of one note: the median over the frames of its loud,
periodic part, or NaN where too few frames are periodic (noise, drums, silence).
"""
from __future__ import annotations

import math

import numpy as np

from mie_core.data.gm import hz_to_midi, note_name

SAMPLE_RATE = 16000
#: lowest and highest fundamentals searched (Hz): A0 and about C8, the piano's range
FMIN_HZ = 27.5
FMAX_HZ = 4200.0
#: YIN's absolute threshold on the normalised difference (step 4; the paper's 0.1)
THRESHOLD = 0.10
#: mean power per sample (about -100 dBFS) below which a frame is silence
SILENT_ENERGY = 1e-10
#: YIN's analysis frames (ms): each compared with itself shifted by up to 1 / FMIN_HZ
WINDOW_MS = 64.0
HOP_MS = 20.0
#: frames more aperiodic than this are left out of a note's pitch
MAX_APERIODICITY = 0.3


def yin(x: np.ndarray, sr: int = SAMPLE_RATE, fmin_hz: float = FMIN_HZ, fmax_hz: float = FMAX_HZ,
        window_ms: float = WINDOW_MS, hop_ms: float = HOP_MS, threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame f0 (Hz) and aperiodicity of a mono signal, YIN steps 2-5.

    x: (n,) float samples at ``sr``; frames of ``window_ms`` every ``hop_ms``, each compared
    with itself shifted by up to ``sr / fmin_hz`` samples (the signal must hold a window plus
    that lag: shorter signals give empty arrays). Returns two (n_frames,) float64 arrays: f0
    by parabolic interpolation of the chosen lag, and the normalised difference there.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 1:
        raise ValueError(f"yin takes one channel, not an array of shape {x.shape}")
    if not 0 < fmin_hz < fmax_hz < sr / 2:
        raise ValueError(f"need 0 < fmin_hz < fmax_hz < sr/2, not {fmin_hz}, {fmax_hz} at {sr} Hz")
    w = int(round(window_ms * sr / 1000))
    tau_max = int(math.ceil(sr / fmin_hz))
    tau_min = max(2, int(math.floor(sr / fmax_hz)))
    hop = max(1, int(round(hop_ms * sr / 1000)))
    span = w + tau_max
    if len(x) < span:
        return np.zeros(0), np.zeros(0)
    starts = np.arange(0, len(x) - span + 1, hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, span)[starts]  # (f, span)
    nfft = 1 << int(math.ceil(math.log2(span + w)))
    # r(tau) = sum_{j<w} x[j] x[j + tau], by FFT (step 2's cross term)
    spec = np.fft.rfft(frames, nfft) * np.conj(np.fft.rfft(frames[:, :w], nfft))
    r = np.fft.irfft(spec, nfft)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames ** 2, axis=1)], axis=1)
    e0 = sq[:, w]
    e_tau = sq[:, w : w + tau_max + 1] - sq[:, : tau_max + 1]  # energy of x[tau : tau + w]
    d = np.maximum(e0[:, None] + e_tau - 2.0 * r, 0.0)  # the difference function
    # step 3: cumulative mean normalised difference, d'(0) = 1
    cum = np.cumsum(d[:, 1:], axis=1)
    taus = np.arange(1, tau_max + 1)
    dn = np.ones_like(d)
    dn[:, 1:] = d[:, 1:] * taus / np.maximum(cum, 1e-12)
    f0 = np.full(len(frames), np.nan)
    ap = np.ones(len(frames))
    for i, row in enumerate(dn):
        below = np.flatnonzero(row[tau_min : tau_max] < threshold)
        if below.size:  # step 4: the first dip under the threshold, followed to its minimum
            t = tau_min + below[0]
            while t + 1 < tau_max and row[t + 1] < row[t]:
                t += 1
        else:  # no dip: the global minimum, reported with its (high) aperiodicity
            t = tau_min + int(np.argmin(row[tau_min:tau_max]))
        if e0[i] <= SILENT_ENERGY * w:  # a silent frame has no period (d is 0 at every lag)
            continue
        ap[i] = row[t]
        # step 5: parabolic interpolation of the difference function around t
        a, b, c = d[i, t - 1], d[i, t], d[i, t + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den > 0 else 0.0
        f0[i] = sr / (t + float(np.clip(shift, -0.5, 0.5)))
    return f0, ap


def note_midi(x: np.ndarray, sr: int = SAMPLE_RATE, top_db: float = 20.0, max_aperiodicity: float = MAX_APERIODICITY,
              min_frames: int = 3) -> float:
    """The MIDI pitch (fractional) of one note, or NaN where it has no clear pitch.

    The median f0 over frames within ``top_db`` of the loudest frame whose aperiodicity is
    below ``max_aperiodicity``; NaN with fewer than ``min_frames`` such frames (noise, a
    drum, silence, a clip shorter than about 0.1 s).
    """
    x = np.asarray(x, np.float64)
    f0, ap = yin(x, sr)
    if f0.size == 0:
        return float("nan")
    w = int(round(WINDOW_MS * sr / 1000))
    hop = max(1, int(round(HOP_MS * sr / 1000)))
    level = np.array([np.sqrt(np.mean(x[i * hop : i * hop + w] ** 2)) + 1e-12 for i in range(len(f0))])
    loud = 20 * np.log10(level / level.max()) > -top_db
    keep = loud & (ap < max_aperiodicity) & np.isfinite(f0)
    if keep.sum() < min_frames:
        return float("nan")
    return float(np.median(hz_to_midi(f0[keep])))


def pitch_gaps(test_midi, enrol_midi) -> np.ndarray:
    """(n,) semitones from each test note to the nearest enrolment note (NaN where either side
    has no pitch: a test note without one, or no enrolment note with one)."""
    t = np.asarray(test_midi, np.float64).reshape(-1)
    e = np.asarray(enrol_midi, np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return np.full(t.shape, np.nan)
    return np.abs(t[:, None] - e[None, :]).min(axis=1)


#: the pitch gaps' bins (semitones) of :func:`rates_by_gap`: within 2, 3-11, 12-23, 24 or more
GAP_EDGES = (3, 12, 24)


def _in_bin(gaps, lo: float, hi: float | None):
    """Whether gaps (semitones, rounded to whole ones) lie in the bin [lo, hi) (NaN: in none)."""
    gaps = np.asarray(gaps, np.float64)
    return np.isfinite(gaps) & (gaps >= lo - 0.5) & ((gaps < hi - 0.5) if hi is not None else True)


def gap_label(lo: float, hi: float | None) -> str:
    return f"{int(lo)}-{int(hi) - 1}" if hi is not None else f"{int(lo)}+"


def rates_by_gap(gaps: np.ndarray, target: np.ndarray, accept: np.ndarray, edges=GAP_EDGES) -> list[dict]:
    """How often verdicts were right, by the test note's pitch gap to its enrolment.

    gaps: (n,) semitones (:func:`pitch_gaps`; trials with NaN are left out), target: (n,) bool
    (a genuine trial), accept: (n,) bool (the verdict). One dict per bin ``[0, e1), [e1, e2),
    ..., [ek, inf)``: ``gap`` (its label, e.g. ``"12-23"``), ``lo``, ``hi`` (None for the last),
    ``genuine_accepted`` and ``impostors_rejected`` (shares, NaN for a bin without such
    trials) and ``n_genuine``, ``n_impostor``.
    """
    gaps, target, accept = (np.asarray(a).reshape(-1) for a in (gaps, target, accept))
    if not (gaps.shape == target.shape == accept.shape):
        raise ValueError(f"gaps, target and accept differ in length: {gaps.shape}, {target.shape}, {accept.shape}")
    target, accept = target.astype(bool), accept.astype(bool)
    bounds = [0.0, *map(float, edges)]
    out = []
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        k = _in_bin(gaps, lo, hi)
        g, n = k & target, k & ~target
        out.append({"gap": gap_label(lo, hi), "lo": lo, "hi": hi,
                    "genuine_accepted": float(accept[g].mean()) if g.any() else float("nan"),
                    "impostors_rejected": float(1 - accept[n].mean()) if n.any() else float("nan"),
                    "n_genuine": int(g.sum()), "n_impostor": int(n.sum())})
    return out


def gap_bin(rows: list[dict], gap: float) -> dict | None:
    """The row of :func:`rates_by_gap`'s output that holds a gap (None for NaN)."""
    return next((r for r in rows if _in_bin(np.float64(gap), r["lo"], r["hi"])), None)


#: from this gap (semitones) on, the Verify page warns that the verdict is less reliable
FAR_GAP = 12


def note_label(midi: float) -> str:
    """'G4 (MIDI 67.1)' for a pitch, 'no clear pitch' for NaN."""
    return f"{note_name(midi)} (MIDI {midi:.1f})" if np.isfinite(midi) else "no clear pitch"


def span_label(midis) -> str:
    """'A3-C6': the lowest and highest of some notes' pitches ('' where none has one)."""
    m = np.asarray(midis, np.float64).reshape(-1)
    m = m[np.isfinite(m)]
    return f"{note_name(m.min())}-{note_name(m.max())}" if m.size else ""


def semitones(gap: float) -> str:
    """A distance in whole semitones, in words.

    >>> semitones(0.2), semitones(1.4), semitones(12.0)
    ('0 semitones', '1 semitone', '12 semitones')
    """
    n = int(round(gap))
    return f"{n} semitone{'' if n == 1 else 's'}"


def describe_gap(test_midi: float, enrol_midi, rows: list[dict] | None, model: str) -> tuple[str, str | None]:
    """What the Verify page says of a test note's pitch: (a line on its pitch and its gap to the
    enrolment, a warning or None). The warning comes from a gap of :data:`FAR_GAP` semitones on,
    with the genuine acceptance measured for ``model`` in that gap's bin and within 2 semitones
    (``rows``: :func:`rates_by_gap`'s output as ``results/pitch_gaps.json`` ships it; None: no
    measurement to cite)."""
    enrol = np.asarray(enrol_midi, np.float64).reshape(-1)
    gap = float(pitch_gaps([test_midi], enrol)[0])
    if not np.isfinite(test_midi):
        return "Pitch: none found in this clip (noise, a drum, or several notes?), so its distance to the " \
               "enrolment notes is unknown.", None
    if not np.isfinite(gap):
        return f"Pitch: {note_label(test_midi)}; none of the enrolment notes has a clear pitch.", None
    line = f"Pitch: {note_label(test_midi)}; the nearest enrolment note is {semitones(gap)} away."
    if gap < FAR_GAP - 0.5:
        return line, None
    here, near = (gap_bin(rows, gap), gap_bin(rows, 0.0)) if rows else (None, None)
    measured = ""
    if here is not None and near is not None and here["n_genuine"] and near["n_genuine"]:
        measured = (f" On real recordings (prior 50 %, the model's own calibration), {model} accepted {100 * here['genuine_accepted']:.0f} % of genuine notes "
                    f"{here['gap']} semitones from every enrolment note ({here['n_genuine']} trials), against "
                    f"{100 * near['genuine_accepted']:.0f} % of those within 2 semitones.")
    return line, (f"This note is {semitones(gap)} from every enrolment note, and an instrument sounds different "
                  f"across its range: a rejection here may be the distance, not another instrument.{measured} "
                  "Enrol notes across the range you will test.")
