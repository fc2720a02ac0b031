"""Check a SoundFont's structure in Python before the C renderer reads it.

``tinysoundfont`` trusts the indices inside a file: a preset whose bag index points past
the bag list, a generator naming an instrument or sample that does not exist, or a
sample whose end lies beyond the sample data makes it read out of bounds and the process
dies (segfault, rc 139): the corpus builder, the trainer and the app server alike. This
module reads only the RIFF chunk headers and the small ``pdta`` ("hydra") tables of an
``.sf2``/``.sf3`` file (SoundFont 2.04 spec, sec. 4-7) and checks every index the
renderer follows, so that a truncated or crafted file is refused with one line that
names it (:class:`SoundFontError`) and nothing unsafe reaches C.

Checked: the RIFF/``sfbk`` header and that the file holds as many bytes as it declares;
every chunk inside its parent; the nine hydra tables present, each a whole number of
records with its terminal record; bag, generator and modulator indices non-decreasing
and in range (presets -> preset bags -> generators; instruments -> instrument bags ->
generators); the instrument (generator 41) and sample (generator 53) each generator
names exists; every sample's start <= end within the sample data (16-bit words for
SF2, bytes of compressed data for SF3's Ogg samples).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

# record size of each hydra table (spec 7.2-7.10), in the order they must appear
HYDRA = {"phdr": 38, "pbag": 4, "pmod": 10, "pgen": 4, "inst": 22, "ibag": 4, "imod": 10, "igen": 4, "shdr": 46}
GEN_INSTRUMENT = 41
GEN_SAMPLE_ID = 53
SAMPLE_COMPRESSED = 0x10  # sfSampleType bit of SF3's Ogg Vorbis samples


class SoundFontError(ValueError):
    """A SoundFont file that cannot be used; the message names the file."""


def _chunks(f, start: int, end: int, name: str, what: str):
    """(id, data offset, size) of the chunks between byte offsets ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise SoundFontError(f"{name}: truncated inside {what} (at byte {pos})")
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if pos + 8 + size > end:
            raise SoundFontError(f"{name}: chunk {cid.decode('latin-1')!r} in {what} runs past its end "
                                 f"({pos + 8 + size} > {end} bytes): truncated or corrupt")
        yield cid, pos + 8, size
        pos += 8 + size
        if size & 1:  # RIFF pads odd chunks to even length; some SF3 writers do not
            f.seek(pos)
            nxt = f.read(4)
            if not (len(nxt) == 4 and all(32 <= c < 127 for c in nxt)):
                pos += 1


def _table(data: bytes, fmt: str, size: int) -> list[tuple]:
    return [struct.unpack_from(fmt, data, i) for i in range(0, len(data), size)]


def _monotone(name: str, what: str, idx: list[int], limit: int, target: str) -> None:
    for a, b in zip(idx, idx[1:]):
        if b < a:
            raise SoundFontError(f"{name}: {what} indices decrease ({a} then {b}): corrupt file")
    if idx and idx[-1] > limit:
        raise SoundFontError(f"{name}: {what} index {idx[-1]} points past the {limit + 1} records of {target}")


def validate(path: str | Path) -> dict:
    """Check ``path``'s structure; return counts {presets, instruments, samples}.

    Raises :class:`SoundFontError` (one line, naming the file) for anything the renderer
    could follow out of bounds. Reads chunk headers and the hydra only (a few hundred kB
    for the largest General MIDI fonts), never the sample data.
    """
    path = Path(path)
    name = path.name
    try:
        file_size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError as err:
        raise SoundFontError(f"{name}: cannot be read ({err.strerror or err})") from None
    with f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise SoundFontError(f"{name}: not a SoundFont (no RIFF 'sfbk' header)")
        declared = struct.unpack("<I", head[4:8])[0] + 8
        if declared > file_size:
            raise SoundFontError(f"{name}: truncated: the header declares {declared} bytes, the file has {file_size}")
        lists = {}
        for cid, off, size in _chunks(f, 12, declared, name, "the file"):
            if cid == b"LIST":
                f.seek(off)
                lists[f.read(4)] = (off + 4, off + size)
        for need in (b"sdta", b"pdta"):
            if need not in lists:
                raise SoundFontError(f"{name}: no '{need.decode()}' list: not a complete SoundFont")
        smpl_bytes = None
        for cid, off, size in _chunks(f, *lists[b"sdta"], name, "sdta"):
            if cid == b"smpl":
                smpl_bytes = size
        if smpl_bytes is None:
            raise SoundFontError(f"{name}: no sample data ('smpl' chunk)")
        hydra: dict[str, bytes] = {}
        for cid, off, size in _chunks(f, *lists[b"pdta"], name, "pdta"):
            key = cid.decode("latin-1")
            if key in HYDRA:
                f.seek(off)
                hydra[key] = f.read(size)
    for key, rec in HYDRA.items():
        data = hydra.get(key)
        if data is None:
            raise SoundFontError(f"{name}: the '{key}' table is missing: not a complete SoundFont")
        if len(data) % rec or len(data) < 2 * rec and key not in ("pmod", "imod"):
            raise SoundFontError(f"{name}: the '{key}' table is {len(data)} bytes, not whole {rec}-byte records "
                                 f"with a terminal record: corrupt file")
    phdr = _table(hydra["phdr"], "<20sHHHIII", 38)
    pbag = _table(hydra["pbag"], "<HH", 4)
    pgen = _table(hydra["pgen"], "<HH", 4)
    inst = _table(hydra["inst"], "<20sH", 22)
    ibag = _table(hydra["ibag"], "<HH", 4)
    igen = _table(hydra["igen"], "<HH", 4)
    shdr = _table(hydra["shdr"], "<20sIIIIIBbHH", 46)
    n_pmod, n_imod = len(hydra["pmod"]) // 10, len(hydra["imod"]) // 10
    _monotone(name, "preset bag", [p[3] for p in phdr], len(pbag) - 1, "the preset bags")
    _monotone(name, "preset generator", [b[0] for b in pbag], len(pgen) - 1, "the preset generators")
    _monotone(name, "preset modulator", [b[1] for b in pbag], max(n_pmod - 1, 0), "the preset modulators")
    _monotone(name, "instrument bag", [i[1] for i in inst], len(ibag) - 1, "the instrument bags")
    _monotone(name, "instrument generator", [b[0] for b in ibag], len(igen) - 1, "the instrument generators")
    _monotone(name, "instrument modulator", [b[1] for b in ibag], max(n_imod - 1, 0), "the instrument modulators")
    for oper, amount in pgen:
        if oper == GEN_INSTRUMENT and amount >= len(inst) - 1:
            raise SoundFontError(f"{name}: a preset names instrument {amount}, the file has {len(inst) - 1}")
    for oper, amount in igen:
        if oper == GEN_SAMPLE_ID and amount >= len(shdr) - 1:
            raise SoundFontError(f"{name}: an instrument names sample {amount}, the file has {len(shdr) - 1}")
    for k, s in enumerate(shdr[:-1]):
        start, end, kind = s[1], s[2], s[9]
        limit = smpl_bytes if kind & SAMPLE_COMPRESSED else smpl_bytes // 2
        if start > end or end > limit:
            raise SoundFontError(f"{name}: sample {k} spans {start}-{end}, outside the {limit} "
                                 f"{'bytes' if kind & SAMPLE_COMPRESSED else 'samples'} of sample data")
    return {"presets": len(phdr) - 1, "instruments": len(inst) - 1, "samples": len(shdr) - 1,
            "preset_names": {(p[2], p[1]): preset_name(p[0]) for p in phdr[:-1]}}


def preset_name(raw: bytes) -> str:
    r"""A 20-byte name field as text: UTF-8 where it is, else Latin-1 (older editors wrote
    names such as ``Glockenspiel Über`` in a Windows code page).

    >>> preset_name(b"Gl\xfcck\x00\x00")
    'Glück'
    """
    raw = raw[:19].split(b"\0", 1)[0]  # 19 bytes and a terminator, as the renderer reads it
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_CHECKED: dict[tuple, dict] = {}


def checked(path: str | Path) -> dict:
    """:func:`validate`, once per (path, size, mtime) in a process."""
    try:
        st = os.stat(path)
    except OSError:
        return validate(path)  # raises, naming the file
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = validate(path)
    return _CHECKED[key]
