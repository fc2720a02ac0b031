"""SoundFont structure checks: a truncated or crafted file is refused in one line, never a segfault.

The fixture builds a minimal valid SoundFont (one 16-bit sine sample, one instrument, one
preset) byte by byte after the SF2 2.04 spec, so the checks run without any fetched font;
each corruption changes one index the C renderer would follow.
"""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mie_core.data import render, sf2check
from mie_core.data.sf2check import SoundFontError

REPO = Path(__file__).resolve().parent.parent


def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def make_sf2(preset_bag=0, instrument=0, sample_id=0, sample_end=None, n_samples=8000) -> bytes:
    """A one-preset SoundFont; the keyword arguments let a test corrupt one index."""
    t = np.arange(n_samples) / 16000
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes() + b"\0\0" * 46
    end = n_samples if sample_end is None else sample_end
    info = _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 4)), _chunk(b"isng", b"EMU8000\0"),
                 _chunk(b"INAM", b"test font\0\0"))
    sdta = _list(b"sdta", _chunk(b"smpl", pcm))
    phdr = (struct.pack("<20sHHHIII", b"Sine", 0, 0, preset_bag, 0, 0, 0)
            + struct.pack("<20sHHHIII", b"EOP", 0, 0, 1, 0, 0, 0))
    pbag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 1, 0)
    pgen = struct.pack("<HH", 41, instrument) + struct.pack("<HH", 0, 0)
    inst = struct.pack("<20sH", b"SineInst", 0) + struct.pack("<20sH", b"EOI", 1)
    ibag = struct.pack("<HH", 0, 0) + struct.pack("<HH", 2, 0)
    igen = (struct.pack("<HH", 54, 1) + struct.pack("<HH", 53, sample_id)  # sampleModes: loop, then sampleID
            + struct.pack("<HH", 0, 0))
    shdr = (struct.pack("<20sIIIIIBbHH", b"sine", 0, end, 100, n_samples - 100, 16000, 69, 0, 0, 1)
            + struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0))
    empty_mod = b"\0" * 10
    pdta = _list(b"pdta", _chunk(b"phdr", phdr), _chunk(b"pbag", pbag), _chunk(b"pmod", empty_mod),
                 _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", ibag), _chunk(b"imod", empty_mod),
                 _chunk(b"igen", igen), _chunk(b"shdr", shdr))
    body = b"sfbk" + info + sdta + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_a_valid_font_passes_and_renders(tmp_path):
    p = tmp_path / "sine.sf2"
    p.write_bytes(make_sf2())
    assert sf2check.validate(p) == {"presets": 1, "instruments": 1, "samples": 1, "preset_names": {(0, 0): "Sine"}}
    x = render.render_raw(str(p), 0, 0, 69, 100, held_s=0.5, release_s=0.1)
    assert np.max(np.abs(x)) > 0.05  # the fixture is a real, playable SoundFont


@pytest.mark.parametrize("corrupt,expect", [
    ({"preset_bag": 7}, "preset bag ind"),
    ({"instrument": 5}, "names instrument 5"),
    ({"sample_id": 9}, "names sample 9"),
    ({"sample_end": 10**6}, "outside the"),
])
def test_a_crafted_index_is_refused(tmp_path, corrupt, expect):
    p = tmp_path / "crafted.sf2"
    p.write_bytes(make_sf2(**corrupt))
    with pytest.raises(SoundFontError, match=expect) as err:
        sf2check.validate(p)
    assert "crafted.sf2" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("cut", [0.999, 0.6, 0.3, 0.0005])
def test_a_truncated_font_is_refused(tmp_path, cut):
    data = make_sf2()
    p = tmp_path / "cut.sf2"
    p.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(SoundFontError, match="cut.sf2") as err:
        sf2check.validate(p)
    assert "\n" not in str(err.value)


def test_not_a_soundfont_and_a_missing_file(tmp_path):
    p = tmp_path / "notes.sf2"
    p.write_text("hello")
    with pytest.raises(SoundFontError, match="notes.sf2: not a SoundFont"):
        sf2check.validate(p)
    with pytest.raises(SoundFontError, match="gone.sf2: cannot be read"):
        sf2check.checked(tmp_path / "gone.sf2")


def test_renderer_refuses_before_reaching_c(tmp_path):
    p = tmp_path / "crafted.sf2"
    p.write_bytes(make_sf2(preset_bag=300))
    with pytest.raises(SoundFontError, match="crafted.sf2"):
        render.render_raw(str(p), 0, 0, 60, 100)


def test_corpus_command_gives_one_line_for_a_crafted_font(tmp_path):
    """Before the check this process died inside tinysoundfont (rc -11/139) with no message."""
    p = tmp_path / "crafted.sf2"
    p.write_bytes(make_sf2(preset_bag=300))
    r = subprocess.run([sys.executable, "-m", "mie_core", "corpus", "--soundfont", str(p), "--out",
                        str(tmp_path / "corpus")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: crafted.sf2") and "Traceback" not in r.stderr, r.stderr[-500:]


def test_the_fetched_fonts_pass(tmp_path):
    from mie_core.data import soundfonts

    found = [p for p in (soundfonts.local_path(s) for s in soundfonts.SOURCES) if p is not None]
    if not found:
        pytest.skip("no soundfont fetched here (`python -m mie_core fetch`)")
    for p in found:
        counts = sf2check.validate(p)
        assert counts["presets"] >= 100 and counts["samples"] >= 500, (p, counts)
