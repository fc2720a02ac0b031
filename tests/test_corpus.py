"""The SoundFont corpus: schema, determinism, silence, splits, and the CLI round trip."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import soundfile as sf

from mie_core.data import gm, render
from mie_core.data.corpus import NSYNTH_QUALITIES, Corpus, select_notes
from mie_core.data.nsynth import FIELDS, load_nsynth
from mie_core.data.splits import program_disjoint, soundfont_disjoint


def test_manifest_has_nsynth_schema_and_our_fields(tiny_corpus):
    recs = json.loads((tiny_corpus.root / "examples.json").read_text())
    assert len(recs) == len(tiny_corpus.notes) > 0
    key, rec = next(iter(recs.items()))
    for f, t in FIELDS.items():
        assert isinstance(rec[f], t), f
    for f in ("soundfont", "bank", "program", "preset_name", "playing_style"):
        assert f in rec
    assert rec["note_str"] == key == f"{rec['instrument_str']}-{rec['pitch']:03d}-{rec['velocity']:03d}"
    assert len(rec["qualities"]) == len(NSYNTH_QUALITIES)
    assert rec["sample_rate"] == 16000
    # one instrument per (soundfont, bank, program); no drum kit
    inst = tiny_corpus.instruments()
    assert not (inst["bank"] == gm.DRUM_BANK).any()
    assert inst.groupby(["soundfont", "bank", "program"]).size().max() == 1
    assert set(tiny_corpus.notes["program"]) <= set(range(120))


def test_family_and_source_labels_follow_the_gm_table(tiny_corpus):
    n = tiny_corpus.notes
    for prog, fam, src in [(0, "keyboard", "acoustic"), (26, "guitar", "electronic"), (40, "string", "acoustic"),
                           (56, "brass", "acoustic"), (64, "reed", "acoustic")]:
        rows = n[n["program"] == prog]
        assert set(rows["instrument_family_str"]) == {fam}
        assert set(rows["instrument_source_str"]) == {src}
        assert (rows["instrument_family"] == gm.FAMILIES.index(fam)).all()


def test_at_least_three_families_have_three_playing_styles():
    styles = defaultdict(set)
    for prog, (fam, _, style) in gm.GM_TABLE.items():
        styles[fam].add(style)
    rich = [f for f, s in styles.items() if len(s) >= 3]
    assert len(rich) >= 3, styles
    assert gm.labels_for(40, "Violin Pizzicato")["playing_style"] == "pizzicato"
    assert gm.labels_for(33, "Fretless Bass")["playing_style"] == "fretless"


def test_rendering_is_deterministic_and_has_the_right_shape(tiny_corpus):
    rows = tiny_corpus.notes.iloc[[0, 5, 17, 40]]
    a = tiny_corpus.render(rows, workers=1)
    b = tiny_corpus.render(rows.iloc[::-1], workers=1)[::-1]  # another order
    c = tiny_corpus.render(rows, workers=2)  # other processes
    assert a.shape == (4, 64000) and a.dtype == np.int16
    assert a.tobytes() == b.tobytes() == c.tobytes()
    # the instrument gain puts each instrument's loudest note near -1 dBFS: no clipping
    assert np.abs(a).max() < 32767


def test_few_notes_render_in_this_process_unless_workers_are_asked_for(tiny_corpus, monkeypatch):
    """Starting spawned workers takes seconds; ``workers=None`` below MIN_POOL_NOTES notes never does."""
    started = []

    class Recording(render.ProcessPoolExecutor):
        def __init__(self, *a, **k):
            started.append(k.get("max_workers"))
            super().__init__(*a, **k)

    monkeypatch.setattr(render, "ProcessPoolExecutor", Recording)
    monkeypatch.setattr(render, "default_workers", lambda: 2)
    specs = tiny_corpus.specs(tiny_corpus.notes.iloc[:300])
    one = render.render_many(specs, chunk=64)
    assert started == []
    monkeypatch.setattr(render, "MIN_POOL_NOTES", 300)  # at the threshold: all usable cores
    assert render.render_many(specs, chunk=64).tobytes() == one.tobytes() and started == [2]
    assert render.render_many(specs[:10], workers=2, chunk=4).tobytes() == one[:10].tobytes() and started == [2, 2]


def test_silent_notes_are_dropped(wheel_soundfonts, tmp_path):
    from mie_core.data.corpus import build_corpus

    # the top of the MIDI range renders silent for many presets; a silent note is never kept
    c = build_corpus(tmp_path / "c", wheel_soundfonts[:1], programs=[0, 73], pitches=[60, 127],
                     velocities=[1, 100], workers=1)
    audio = c.render(c.notes, workers=1).astype(np.float64) / 32768
    peaks_db = 20 * np.log10(np.maximum(np.abs(audio).max(axis=1), 1e-12))
    assert (peaks_db > -61 - 1).all()  # within the 60 dB window of the loudest (-1 dBFS)
    assert len(c.notes) <= 2 * 2 * 2


def test_program_disjoint_split_never_leaks_a_program(tiny_corpus):
    s = tiny_corpus.splits["program_disjoint"]
    inst = tiny_corpus.instruments().set_index("instrument_str")
    progs = {part: set(inst.loc[s[part], "program"]) for part in ("train", "valid", "test")}
    assert progs["test"] and progs["valid"] and progs["train"]
    assert not progs["test"] & progs["train"]
    assert not progs["valid"] & progs["train"]
    assert not progs["valid"] & progs["test"]
    # every soundfont's version of a test program is in test
    for p in progs["test"]:
        assert set(inst.index[inst["program"] == p]) <= set(s["test"])
    # every family with >= 3 programs has a test program
    fams_test = set(inst.loc[s["test"], "instrument_family_str"])
    assert fams_test == set(inst["instrument_family_str"])


def test_program_disjoint_on_the_default_corpus_table():
    """Same property on a synthetic full-size table (all 120 programs, 4 soundfonts)."""
    import pandas as pd

    rows = []
    for sfk in ("a", "b", "c", "d"):
        for prog, (fam, _, _) in gm.GM_TABLE.items():
            rows.append({"instrument_str": f"{sfk}_000_{prog:03d}", "program": prog, "soundfont": sfk,
                         "instrument_family_str": fam})
    table = pd.DataFrame(rows)
    for seed in range(5):
        s = program_disjoint(table, seed=seed)
        train = set(table.set_index("instrument_str").loc[s["train"], "program"])
        test = set(table.set_index("instrument_str").loc[s["test"], "program"])
        assert not train & test and len(test) >= 11
        assert s == program_disjoint(table, seed=seed)  # deterministic
    sd = soundfont_disjoint(table, held_out="b")
    assert all(i.startswith("b_") for i in sd["test"])
    assert not any(i.startswith("b_") for i in sd["train"] + sd["valid"])


def test_select_notes_is_deterministic_and_bounded(tiny_corpus):
    a = select_notes(tiny_corpus.notes, pitch_step=6, pitch_offset=0, max_per_instrument=3, seed=1)
    b = select_notes(tiny_corpus.notes, pitch_step=6, pitch_offset=0, max_per_instrument=3, seed=1)
    assert a.equals(b)
    assert (a["pitch"] % 6 == 0).all()
    assert a.groupby("instrument_str").size().max() <= 3


def test_cli_builds_a_corpus_that_the_nsynth_loader_reads(wheel_soundfonts, tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "mie_core", "corpus", "--out", str(out), "--soundfont", str(wheel_soundfonts[0]),
           "--programs", "0,40", "--pitches", "60-64:4", "--velocities", "100", "--write-audio", "--workers", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "2 instruments" in res.stdout
    split = load_nsynth(out)
    assert split.problems == {}
    assert len(split.notes) == 4
    # the written audio is the rendered audio, byte for byte
    c = Corpus.load(out)
    wav = np.stack([sf.read(out / "audio" / f"{s}.wav", dtype="int16")[0] for s in c.notes["note_str"]])
    assert wav.tobytes() == render.render_many(c.specs(c.notes), workers=1).tobytes()


def test_cli_rejects_a_missing_soundfont(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mie_core", "corpus", "--out", str(tmp_path / "x"),
                          "--soundfont", str(tmp_path / "none.sf2")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no such soundfont file" in res.stderr
