"""NSynth and RWC loaders on fixtures that copy the published layouts."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mie_core.data.nsynth import NSynthError, load_nsynth, read_note, read_notes
from mie_core.data.rwc import cut_notes, load_rwc_notes, parse_name, scan_rwc, variation_split


def nsynth_record(note_str, note_id, inst_id):
    inst_str, pitch, vel = note_str.rsplit("-", 2)
    fam_str, src_str, _ = inst_str.split("_")
    fams = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal"]
    return {"note": note_id, "note_str": note_str, "instrument": inst_id, "instrument_str": inst_str,
            "instrument_source": ["acoustic", "electronic", "synthetic"].index(src_str),
            "instrument_source_str": src_str, "instrument_family": fams.index(fam_str),
            "instrument_family_str": fam_str, "pitch": int(pitch), "velocity": int(vel), "sample_rate": 16000,
            "qualities": [0, 1, 0, 0, 0, 0, 0, 0, 1, 0], "qualities_str": ["dark", "reverb"]}


@pytest.fixture
def nsynth_dir(tmp_path):
    root = tmp_path / "nsynth-test"
    (root / "audio").mkdir(parents=True)
    names = ["keyboard_acoustic_004-060-025", "keyboard_acoustic_004-062-050", "guitar_electronic_001-040-127",
             "string_acoustic_012-055-075"]
    recs = {}
    for i, n in enumerate(names):
        recs[n] = nsynth_record(n, 1000 + i, 300 + i // 2)
        t = np.arange(64000) / 16000
        sf.write(root / "audio" / f"{n}.wav", 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) * np.exp(-t), 16000,
                 subtype="PCM_16")
    (root / "examples.json").write_text(json.dumps(recs))
    return root


def test_nsynth_reads_every_schema_field(nsynth_dir):
    split = load_nsynth(nsynth_dir)
    assert split.problems == {}
    assert len(split.notes) == 4
    row = split.notes.set_index("note_str").loc["keyboard_acoustic_004-060-025"]
    assert row["instrument_family_str"] == "keyboard" and row["pitch"] == 60 and row["velocity"] == 25
    assert row["qualities_str"] == ["dark", "reverb"] and row["instrument"] == 300
    x = read_note(split, "keyboard_acoustic_004-060-025")
    assert x.shape == (64000,) and x.dtype == np.float32
    pcm = read_notes(split, split.notes)
    assert pcm.shape == (4, 64000) and pcm.dtype == np.int16


def test_nsynth_reports_problems_with_counts_and_examples(nsynth_dir):
    recs = json.loads((nsynth_dir / "examples.json").read_text())
    del recs["guitar_electronic_001-040-127"]["pitch"]  # missing field
    recs["string_acoustic_012-055-075"]["velocity"] = "loud"  # malformed
    recs["brass_acoustic_001-050-100"] = nsynth_record("brass_acoustic_001-050-100", 9, 9)  # no audio
    (nsynth_dir / "examples.json").write_text(json.dumps(recs))
    split = load_nsynth(nsynth_dir)
    assert len(split.notes) == 2
    assert split.problems["records with missing fields"] == ["guitar_electronic_001-040-127 (pitch)"]
    assert split.problems["records with malformed fields"] == ["string_acoustic_012-055-075 (velocity)"]
    assert split.problems["missing audio files"] == ["audio/brass_acoustic_001-050-100.wav"]
    report = split.report()
    assert "1 missing audio files: audio/brass_acoustic_001-050-100.wav" in report


def test_nsynth_rejects_a_folder_that_is_not_a_split(tmp_path):
    with pytest.raises(NSynthError, match="no examples.json"):
        load_nsynth(tmp_path)
    (tmp_path / "examples.json").write_text("{not json")
    with pytest.raises(NSynthError, match="not valid JSON"):
        load_nsynth(tmp_path)


def test_rwc_name_parsing():
    d = parse_name("151VNNOF.WAV")
    assert (d["instrument_number"], d["variation"], d["instrument_code"], d["playing_style"], d["dynamics"]) == \
        (15, 1, "VN", "NO", "forte")
    assert d["instrument_family_str"] == "string" and d["instrument_str"] == "151VN"
    assert parse_name("012PFC2M.wav")["playing_style"] == "C2"
    with pytest.raises(ValueError, match="not an RWC-MDB-I file name"):
        parse_name("violin.wav")


def synth_performance(sr, onsets_s, note_s=0.6, gap_s=None, total_s=None, seed=0):
    """Decaying harmonic notes at ``onsets_s`` (seconds) with silence between."""
    rng = np.random.default_rng(seed)
    total = int(sr * (total_s or onsets_s[-1] + note_s + 0.5))
    x = np.zeros(total)
    for k, on in enumerate(onsets_s):
        n = int(sr * note_s)
        t = np.arange(n) / sr
        f0 = 220 * 2 ** (k / 12)
        note = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in (1, 2, 3)) * np.exp(-4 * t) * 0.3
        s = int(sr * on)
        x[s : s + n] += note
    return x + 1e-5 * rng.standard_normal(total)


def test_rwc_notes_are_cut_at_onsets():
    sr = 16000
    onsets = [0.3, 1.3, 2.3, 3.3, 4.3]
    x = synth_performance(sr, onsets)
    notes = cut_notes(x.astype(np.float32), sr)
    assert len(notes) == len(onsets)
    for (s, e), on in zip(notes, onsets):
        assert abs(s / sr - (on - 0.02)) <= 0.03  # 20 ms pad before the onset, within a 25 ms frame
        assert e > s


def test_rwc_loader_and_variation_split(tmp_path):
    sr = 44100
    names = ["151VNNOF.WAV", "152VNNOF.WAV", "153VNPZM.WAV", "011PFNOP.WAV", "012PFNOF.WAV"]
    for i, n in enumerate(names):
        sf.write(tmp_path / n, synth_performance(sr, [0.2, 1.0, 1.8], seed=i), sr, subtype="PCM_16")
    (tmp_path / "readme.txt").write_text("not audio")
    files, skipped = scan_rwc(tmp_path)
    assert len(files) == 5 and skipped == []
    table, audio = load_rwc_notes(tmp_path)
    assert len(table) == 15 and len(audio) == 15
    assert set(table["playing_style"]) == {"NO", "PZ"}
    assert all(a.dtype == np.float32 and 0.5 * 16000 < len(a) < 1.0 * 16000 for a in audio)
    split = variation_split(files, seed=0)
    # violin (15) has three variations: one each to test and valid; piano (01) stays in training
    assert len(split["test"]) == 1 and len(split["valid"]) == 1 and split["test"][0].startswith("15")
    assert {"011PF", "012PF"} <= set(split["train"])
    # every instrument number of test is seen in training
    assert {s[:2] for s in split["test"]} <= {s[:2] for s in split["train"]}
