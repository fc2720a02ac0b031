"""Gravis UltraSound (GUS) patches, read and written out as one SoundFont 2 file.

Debian's ``freepats`` package holds about 70 melodic instruments as GUS ``.pat`` files
(the format of TiMidity and WildMidi), sampled from other recordings than any of our
SoundFonts. ``tinysoundfont`` reads only SoundFont 2, so :func:`patches_to_sf2` converts
a folder of patches into one ``.sf2`` with one preset per patch (bank 0, the General MIDI
program from the file name, ``040_Violin.pat`` -> 40). The corpus, the trainer's played
notes (pitch wheel, CC11) and the app's players then treat it as any other SoundFont.

The patch format (GF1PATCH110; offsets in bytes, little-endian): a 129-byte header
(``GF1PATCH110``, ``ID#000002``, description, instrument/voice/channel counts, the number
of waves), a 63-byte instrument header, a 47-byte layer header, then per wave a 96-byte
header followed by its sample data:

====== ==== ===================================================================
offset size field
====== ==== ===================================================================
0      7    wave name
8      4    data size (bytes)
12     4    loop start (bytes)
16     4    loop end (bytes)
20     2    sample rate (Hz)
22     4    low frequency (mHz): lowest note the wave plays
26     4    high frequency (mHz)
30     4    root frequency (mHz): the pitch as recorded
37     6    envelope rates (bits 6-7 a range, bits 0-5 an increment)
43     6    envelope offsets (levels 0-255)
55     1    modes: 1 16-bit, 2 unsigned, 4 looping, 8 ping-pong, 16 reverse,
            32 sustain at envelope point 3, 64 envelope on
58     2    scale factor (1024: the pitch follows the key; 0: fixed pitch)
====== ==== ===================================================================

What is converted, and how (TiMidity's reading of the same fields):

* each wave becomes one instrument zone; every key 0-127 goes to the wave whose
  [low, high] frequency holds its pitch, else to the wave with the nearest root;
* the root frequency gives the zone's root key and fine tune (cents);
* ping-pong loops are unrolled into forward loops (SoundFont has none), reversed waves
  reversed, 8-bit and unsigned data made signed 16-bit;
* the GUS envelope ramps its offset, a logarithmic level (255 = full, one step about
  0.375 dB, so 0-255 spans 96 dB, as SoundFont's attenuation does), by
  ``increment << 3 * (3 - range)`` units per 8,192 / 44,100 s: a full sweep of 255 takes
  ``255 * 8192 / (r * 44100)`` s. Attack is stage 1, decay stage 2 towards the sustain
  level (offset 3 when the sustain mode is set, else silence: the note dies away as a
  plucked or struck one does), release stage 4;
* tremolo, vibrato and balance are dropped (mono, and the trainer draws its own vibrato).
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mie_core.data.gm import hz_to_midi, midi_to_hz

HEADER_BYTES = 129 + 63 + 47  # file, instrument and layer headers before the first wave
WAVE_HEADER_BYTES = 96
MAGIC = (b"GF1PATCH110", b"GF1PATCH100")
MODE_16BIT, MODE_UNSIGNED, MODE_LOOP, MODE_PINGPONG, MODE_REVERSE, MODE_SUSTAIN, MODE_ENVELOPE = 1, 2, 4, 8, 16, 32, 64
DB_PER_OFFSET = 96.0 / 256.0


class PatchError(ValueError):
    """A file that is not a GUS patch we can read; the message names it."""


@dataclass(frozen=True)
class Wave:
    """One sample of a patch, as int16 audio with its loop and pitch range.

    data: (n,) int16 at ``sample_rate`` Hz; loop_start/loop_end: samples (end exclusive),
    or None when the wave does not loop; low_hz/high_hz: the pitch range it plays;
    root_hz: its recorded pitch; rates/offsets: the 6-point GUS envelope; sustain and
    envelope: the mode bits; scale_factor: 1024 when pitch follows the key.
    """

    name: str
    data: np.ndarray
    sample_rate: int
    loop_start: int | None
    loop_end: int | None
    low_hz: float
    high_hz: float
    root_hz: float
    rates: tuple[int, ...]
    offsets: tuple[int, ...]
    sustain: bool
    envelope: bool
    scale_factor: int


@dataclass(frozen=True)
class Patch:
    """One GUS patch: its General MIDI program (from the file name), name and waves."""

    program: int
    name: str
    waves: tuple[Wave, ...]


def _unrolled(x: np.ndarray, start: int, end: int) -> tuple[np.ndarray, int, int]:
    """A ping-pong loop [start, end) as a forward loop: the segment, then it backwards."""
    seg = x[start:end]
    back = seg[::-1][1:-1]
    return np.concatenate([x[:end], back, x[end:]]), start, end + len(back)


def read_patch(path: str | Path) -> Patch:
    """Parse a GUS ``.pat`` file (see the module docstring); raises :class:`PatchError`."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < HEADER_BYTES or raw[:11] not in MAGIC:
        raise PatchError(f"{path.name}: not a GUS patch (no GF1PATCH header)")
    n_waves = struct.unpack_from("<H", raw, 85)[0]
    m = re.match(r"(\d{1,3})_(.+)\.pat$", path.name, re.IGNORECASE)
    if m is None or not 0 <= int(m.group(1)) <= 127:
        raise PatchError(f"{path.name}: the file name does not start with a General MIDI program (000-127)")
    program, name = int(m.group(1)), m.group(2).replace("_", " ")
    pos = HEADER_BYTES
    waves = []
    for k in range(n_waves):
        if pos + WAVE_HEADER_BYTES > len(raw):
            raise PatchError(f"{path.name}: wave {k + 1} of {n_waves} is cut off")
        h = raw[pos:pos + WAVE_HEADER_BYTES]
        wname = h[:7].split(b"\0")[0].decode("latin-1")
        size, lstart, lend = struct.unpack_from("<III", h, 8)
        rate = struct.unpack_from("<H", h, 20)[0]
        low, high, root = struct.unpack_from("<III", h, 22)
        rates, offsets = tuple(h[37:43]), tuple(h[43:49])
        modes = h[55]
        scale_factor = struct.unpack_from("<H", h, 58)[0]
        pos += WAVE_HEADER_BYTES
        if pos + size > len(raw) or rate == 0 or root == 0:
            raise PatchError(f"{path.name}: wave {k + 1} has {size} bytes at {pos} of {len(raw)}, "
                             f"rate {rate} Hz, root {root / 1000:.1f} Hz")
        buf = raw[pos:pos + size]
        pos += size
        width = 2 if modes & MODE_16BIT else 1
        if modes & MODE_16BIT:
            x = np.frombuffer(buf[: size // 2 * 2], "<u2" if modes & MODE_UNSIGNED else "<i2").astype(np.int32)
            if modes & MODE_UNSIGNED:
                x -= 32768
        else:
            x = np.frombuffer(buf, np.uint8 if modes & MODE_UNSIGNED else np.int8).astype(np.int32)
            if modes & MODE_UNSIGNED:
                x -= 128
            x *= 256
        ls, le = lstart // width, lend // width
        looping = bool(modes & MODE_LOOP) and 0 <= ls < le <= len(x) and le - ls >= 2
        if modes & MODE_REVERSE:
            x = x[::-1]
            ls, le = len(x) - le, len(x) - ls
        if looping and modes & MODE_PINGPONG:
            x, ls, le = _unrolled(x, ls, le)
        waves.append(Wave(wname, np.ascontiguousarray(x, dtype=np.int16), int(rate),
                          ls if looping else None, le if looping else None,
                          low / 1000.0, high / 1000.0, root / 1000.0, rates, offsets,
                          bool(modes & MODE_SUSTAIN), bool(modes & MODE_ENVELOPE), int(scale_factor)))
    if not waves:
        raise PatchError(f"{path.name}: no waves")
    return Patch(program, name, tuple(waves))


def sweep_seconds(rate: int) -> float:
    """Seconds a GUS envelope stage with this rate byte takes to sweep all 255 levels."""
    r = (rate & 0x3F) << (3 * (3 - ((rate >> 6) & 3)))
    return math.inf if r == 0 else 255 * 8192 / (r * 44100.0)


def _timecents(seconds: float) -> int:
    """SoundFont time (1200 log2 s), clamped to the range players accept (1 ms to 100 s)."""
    if not math.isfinite(seconds):
        return 8000
    return int(np.clip(round(1200 * math.log2(max(seconds, 1e-3))), -12000, 8000))


def envelope_generators(w: Wave) -> dict[int, int]:
    """SoundFont volume-envelope generators (34 attack, 36 decay, 37 sustain, 38 release)
    of one wave, from its GUS envelope (module docstring)."""
    if not w.envelope:  # no envelope: full level while held, a short release
        return {34: _timecents(0.001), 36: _timecents(0.001), 37: 0, 38: _timecents(0.05)}
    off = w.offsets
    attack = sweep_seconds(w.rates[0]) * off[0] / 255.0
    sustain_level = off[2] if w.sustain else 0
    sustain_cb = int(min(1440, round((255 - sustain_level) * DB_PER_OFFSET * 10)))
    decay_rate = w.rates[1] if w.sustain else w.rates[3]
    return {34: _timecents(attack), 36: _timecents(sweep_seconds(decay_rate)), 37: sustain_cb,
            38: _timecents(sweep_seconds(w.rates[3]))}


def key_map(waves: tuple[Wave, ...]) -> list[tuple[int, int, int]]:
    """(low key, high key, wave index) zones covering keys 0-127: each key goes to the first
    wave whose frequency range holds its pitch, else to the wave with the nearest root."""
    roots = hz_to_midi([w.root_hz for w in waves])
    owner = []
    for key in range(128):
        hz = midi_to_hz(key)
        inside = [i for i, w in enumerate(waves) if w.low_hz <= hz <= w.high_hz]
        owner.append(inside[0] if inside else int(np.argmin(np.abs(roots - key))))
    zones, start = [], 0
    for key in range(1, 129):
        if key == 128 or owner[key] != owner[start]:
            zones.append((start, key - 1, owner[start]))
            start = key
    return zones


# -- SoundFont 2 writing (RIFF 'sfbk'; SoundFont 2.01 specification, sections 5-8) ---------

_PAD_SAMPLES = 46  # zero samples after each sample, as the specification requires


def _chunk(tag: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body)) + body + pad


def _list(tag: bytes, chunks: list[bytes]) -> bytes:
    return _chunk(b"LIST", tag + b"".join(chunks))


def _name20(s: str) -> bytes:
    return s.encode("ascii", "replace")[:19].ljust(20, b"\0")


def patches_to_sf2(patches: list[Patch], out: str | Path, bank_name: str = "freepats (GUS patches)") -> Path:
    """Write one SoundFont 2 file holding every patch as a preset (bank 0, its program).

    Returns ``out``. Deterministic: the same patches give the same bytes.
    """
    if not patches:
        raise ValueError("no patches to write")
    programs = [p.program for p in patches]
    if len(set(programs)) != len(programs):
        raise ValueError(f"two patches share a program: {sorted(programs)}")
    smpl = bytearray()
    shdr, inst, ibag, igen, phdr, pbag, pgen = [], [], [], [], [], [], []
    sample_id = 0
    for pi, patch in enumerate(sorted(patches, key=lambda p: p.program)):
        inst.append(_name20(patch.name) + struct.pack("<H", len(ibag)))
        first_sample = sample_id
        for wi, w in enumerate(patch.waves):
            start = len(smpl) // 2
            smpl += w.data.astype("<i2").tobytes() + b"\0\0" * _PAD_SAMPLES
            n = len(w.data)
            midi = float(hz_to_midi(w.root_hz))
            root = int(np.clip(round(midi), 0, 127))
            cents = int(np.clip(round((midi - root) * 100), -99, 99))
            ls, le = (w.loop_start, w.loop_end) if w.loop_start is not None else (0, n)
            shdr.append(_name20(f"{patch.name[:14]} {wi}") + struct.pack(
                "<IIIIIBbHH", start, start + n, start + ls, start + le, w.sample_rate, root, cents, 0, 1))
            sample_id += 1
        for lo, hi, wi in key_map(patch.waves):
            w = patch.waves[wi]
            ibag.append(struct.pack("<HH", len(igen), 0))
            gens = [(43, lo | (hi << 8))]
            gens += sorted(envelope_generators(w).items())
            if w.scale_factor != 1024:
                gens.append((56, int(np.clip(round(w.scale_factor * 100 / 1024), 0, 1200))))
            gens.append((54, 1 if w.loop_start is not None else 0))
            gens.append((53, first_sample + wi))
            igen += [struct.pack("<Hh" if op != 43 else "<HH", op, amount) for op, amount in gens]
        phdr.append(_name20(patch.name) + struct.pack("<HHHIII", patch.program, 0, len(pbag), 0, 0, 0))
        pbag.append(struct.pack("<HH", len(pgen), 0))
        pgen.append(struct.pack("<HH", 41, pi))
    # terminal records
    shdr.append(_name20("EOS") + struct.pack("<IIIIIBbHH", 0, 0, 0, 0, 0, 0, 0, 0, 0))
    inst.append(_name20("EOI") + struct.pack("<H", len(ibag)))
    ibag.append(struct.pack("<HH", len(igen), 0))
    igen.append(struct.pack("<HH", 0, 0))
    phdr.append(_name20("EOP") + struct.pack("<HHHIII", 0, 0, len(pbag), 0, 0, 0))
    pbag.append(struct.pack("<HH", len(pgen), 0))
    pgen.append(struct.pack("<HH", 0, 0))
    mod = struct.pack("<HHhHH", 0, 0, 0, 0, 0)
    info = _list(b"INFO", [_chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", b"EMU8000\0"),
                           _chunk(b"INAM", bank_name.encode("ascii", "replace") + b"\0")])
    sdta = _list(b"sdta", [_chunk(b"smpl", bytes(smpl))])
    pdta = _list(b"pdta", [_chunk(b"phdr", b"".join(phdr)), _chunk(b"pbag", b"".join(pbag)), _chunk(b"pmod", mod),
                           _chunk(b"pgen", b"".join(pgen)), _chunk(b"inst", b"".join(inst)),
                           _chunk(b"ibag", b"".join(ibag)), _chunk(b"imod", mod), _chunk(b"igen", b"".join(igen)),
                           _chunk(b"shdr", b"".join(shdr))])
    body = b"sfbk" + info + sdta + pdta
    out = Path(out)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    tmp.replace(out)
    return out


def convert_folder(folder: str | Path, out: str | Path, programs=range(128)) -> tuple[Path, dict[str, str]]:
    """Every readable ``NNN_Name.pat`` of ``folder`` with NNN in ``programs`` into one SF2.

    Returns (out, {file name: why it was skipped}).
    """
    patches, skipped = [], {}
    keep = set(programs)
    for f in sorted(Path(folder).glob("*.pat")):
        try:
            p = read_patch(f)
        except PatchError as err:
            skipped[f.name] = str(err)
            continue
        if p.program in keep:
            patches.append(p)
        else:
            skipped[f.name] = f"program {p.program} left out"
    return patches_to_sf2(patches, out), skipped
