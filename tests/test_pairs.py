"""Register pairs (issue 29; training.pairs, ClipSampler's pair_count, config section pairs)."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training.config import ConfigError, from_dict, load_config
from training.data import ClipSampler, NoteSet
from training.pairs import pair_loss

REPO = Path(__file__).resolve().parents[1]


def _notes(pitches, instruments):
    rng = np.random.default_rng(0)
    n = len(pitches)
    audio = (8000 * np.sin(2 * np.pi * rng.uniform(100, 800, (n, 1)) * np.arange(16000) / 16000)).astype(np.int16)
    inst = np.asarray(instruments)
    k = int(inst.max()) + 1
    return NoteSet(audio, pd.DataFrame({"pitch": pitches}), inst, inst % 2, [f"i{j}" for j in range(k)],
                   ["a", "b"], np.asarray(pitches))


def test_pairs_are_one_instrument_an_octave_apart_and_the_rest_of_the_batch_is_unchanged_in_kind():
    # 4 instruments x 25 notes, pitches 40..64 each: every note has partners >= 12 semitones away
    pitches = np.tile(np.arange(40, 65), 4)
    inst = np.repeat(np.arange(4), 25)
    notes = _notes(pitches, inst)
    s = ClipSampler(notes, crop_s=0.5, seed=3, concat_prob=0.5, concat_min_s=1.0, concat_max_s=1.5,
                    keep_pitch=True, pair_count=6, pair_min_semitones=12)
    for _ in range(5):
        x, yi, yf, yp = s.batch(16)
        assert x.shape == (16, 8000)
        a, b = slice(0, 12, 2), slice(1, 12, 2)
        assert np.array_equal(yi[a], yi[b]) and np.array_equal(yf[a], yf[b])
        assert (np.abs(yp[a] - yp[b]) >= 12).all() and (yp[:12] >= 0).all()  # single notes, far apart
    # the same seed gives the same batches; pair_count 0 gives the batches of a sampler without pairs
    again = ClipSampler(notes, crop_s=0.5, seed=3, concat_prob=0.5, concat_min_s=1.0, concat_max_s=1.5,
                        keep_pitch=True, pair_count=6, pair_min_semitones=12)
    first = ClipSampler(notes, crop_s=0.5, seed=3, concat_prob=0.5, concat_min_s=1.0, concat_max_s=1.5,
                        keep_pitch=True, pair_count=6, pair_min_semitones=12)
    np.testing.assert_array_equal(again.batch(16)[0], first.batch(16)[0])
    off = ClipSampler(notes, crop_s=0.5, seed=3, pair_count=0)
    plain = ClipSampler(notes, crop_s=0.5, seed=3)
    np.testing.assert_array_equal(off.batch(16)[0], plain.batch(16)[0])


def test_a_pair_falls_back_to_the_farthest_note_and_to_any_note_without_pitches():
    # instrument 0 spans 5 semitones: its partner is the farthest note, never one nearer
    notes = _notes([60, 61, 62, 63, 65, 30, 80], [0, 0, 0, 0, 0, 1, 1])
    s = ClipSampler(notes, crop_s=0.5, seed=1, pair_min_semitones=12)
    for _ in range(50):
        i, j = s.pair()
        assert notes.instrument[i] == notes.instrument[j]
        gaps = np.abs(notes.pitch[notes.instrument == notes.instrument[i]] - notes.pitch[i])
        assert abs(notes.pitch[j] - notes.pitch[i]) == gaps.max()
    unknown = _notes([-1, -1, -1, -1], [0, 0, 1, 1])
    s = ClipSampler(unknown, crop_s=0.5, seed=1)
    for _ in range(20):
        i, j = s.pair()
        assert i != j and unknown.instrument[i] == unknown.instrument[j]


def test_sibling_pairs_come_in_twos_of_one_kind_and_leave_the_batch_as_it_was_without():
    """With ``pair_siblings`` every second pair is an instrument of the previous pair's GM
    program (another one), where the program has one; without, the batches are unchanged."""
    pitches = np.tile(np.arange(40, 65), 6)
    inst = np.repeat(np.arange(6), 25)
    notes = _notes(pitches, inst)
    program = np.array([0, 0, 40, 40, 40, 73])  # instruments 0-1 pianos, 2-4 violins, 5 alone
    notes.table["bank"], notes.table["program"] = 0, program[inst]
    s = ClipSampler(notes, crop_s=0.5, seed=5, pair_count=6, pair_min_semitones=12, pair_siblings="program")
    kinds_met = 0
    for _ in range(30):
        _, yi, _ = s.batch(16)
        first, second = yi[0:12:4], yi[2:12:4]  # pairs 0, 2, 4 and their siblings 1, 3, 5
        has = program[first] != 73
        assert (program[first][has] == program[second][has]).all() and (first[has] != second[has]).all()
        kinds_met += int(has.sum())
    assert kinds_met > 60  # most first pairs have a sibling (5 of 6 instruments do)
    plain = ClipSampler(notes, crop_s=0.5, seed=5, pair_count=6, pair_min_semitones=12)
    again = ClipSampler(notes, crop_s=0.5, seed=5, pair_count=6, pair_min_semitones=12, pair_siblings=None)
    np.testing.assert_array_equal(plain.batch(16)[0], again.batch(16)[0])
    # by family: every second pair of the previous one's family (_notes: family = instrument % 2)
    fam = ClipSampler(notes, crop_s=0.5, seed=5, pair_count=6, pair_min_semitones=12, pair_siblings="family")
    for _ in range(10):
        _, yi, yf = fam.batch(16)
        assert (yf[0:12:4] == yf[2:12:4]).all() and (yi[0:12:4] != yi[2:12:4]).all()
    with pytest.raises(ConfigError, match="siblings"):
        load_config(REPO / "training" / "configs" / "tiny.yaml", overrides=["pairs.siblings=3"])
    with pytest.raises(ConfigError, match="sibling_kind"):
        load_config(REPO / "training" / "configs" / "tiny.yaml", overrides=["pairs.sibling_kind=brand"])


def test_pair_loss_is_log_p_at_random_and_falls_as_partners_meet():
    torch.manual_seed(0)
    p, d = 8, 64
    labels = torch.arange(p).repeat_interleave(2)
    # all embeddings equal: every impostor as near as the partner, loss = log P exactly
    flat = torch.ones(2 * p, d)
    assert pair_loss(flat, labels, 0.1).item() == pytest.approx(math.log(p), rel=1e-5)
    # partners identical, impostors orthogonal: loss = log(1 + (P - 1) e^(-1/T)); T = 0.5 keeps
    # the terms far above float32's rounding of logits near 1/T
    t = 0.5
    x = math.exp(-1 / t)
    basis = torch.eye(d)[:p].repeat_interleave(2, dim=0)
    assert pair_loss(basis, labels, t).item() == pytest.approx(math.log(1 + (p - 1) * x), rel=1e-5)
    # a second pair of the same instrument is masked, not an impostor: with pairs 0 and 1 one
    # instrument and all four clips one point, only the other pairs count against them
    twin = basis.clone()
    twin[2:4] = twin[0]
    same_inst = labels.clone()
    same_inst[2:4] = 0
    masked = pair_loss(twin, same_inst, t).item()
    # pairs 0 and 1 keep P - 2 impostors each, the others P - 1
    assert masked == pytest.approx((2 * math.log(1 + (p - 2) * x) + (p - 2) * math.log(1 + (p - 1) * x)) / p, rel=1e-5)
    # counted as an impostor, the twin is as near as the partner: rows 0-3 pay log(2 + ...)
    assert pair_loss(twin, labels, t).item() > masked + 0.1
    # gradients pull partners together: one step of descent lowers the loss
    e = torch.randn(2 * p, d, requires_grad=True)
    before = pair_loss(e, labels, 0.1)
    before.backward()
    with torch.no_grad():
        after = pair_loss(e - 0.5 * e.grad, labels, 0.1)
    assert after < before
    with pytest.raises(ValueError, match="one instrument"):
        pair_loss(torch.randn(4, d), torch.tensor([0, 1, 2, 2]), 0.1)
    with pytest.raises(ValueError, match="P >= 2"):
        pair_loss(torch.randn(2, d), torch.tensor([0, 0]), 0.1)


def test_pair_settings_are_checked_at_load_time():
    tiny = str(REPO / "training" / "configs" / "tiny.yaml")
    for setting, why in [("pairs.weight=-1", "pairs.weight must be"), ("pairs.share=0", "pairs.share must be"),
                         ("pairs.share=1.5", "pairs.share must be"), ("pairs.min_semitones=0", "min_semitones"),
                         ("pairs.temperature=0", "pairs.temperature")]:
        with pytest.raises(ConfigError, match=why):
            load_config(tiny, [setting])
    with pytest.raises(ConfigError, match="at least 2 pairs"):
        load_config(tiny, ["pairs.weight=1", "optim.batch_size=4", "pairs.share=0.5"])
    cfg = load_config(tiny, ["pairs.weight=1", "optim.batch_size=32"])
    assert cfg.pairs.count(32) == 8 and load_config(tiny).pairs.count(32) == 0


def test_the_register_pairs_recipe_differs_from_lmft_in_its_pairs_alone():
    lmft = load_config(REPO / "recipes" / "lmft" / "cqt122_lmft.yaml")
    pairs = load_config(REPO / "recipes" / "register_pairs" / "cqt122_pairs.yaml")
    assert (pairs.data, pairs.optim, pairs.head, pairs.chain, pairs.model) == \
        (lmft.data, lmft.optim, lmft.head, lmft.chain, lmft.model)
    assert not lmft.pairs.enabled and pairs.pairs.count(pairs.optim.batch_size) == 8
    assert pairs.pairs.min_semitones == 12


def test_a_fine_tuning_run_with_pairs_adds_their_loss_and_resumes(reference_run, tiny_corpus, tmp_path):
    """The trainer draws the pairs, adds weight x pair_loss to the heads' loss (logged beside
    it), and a run stopped and resumed carries the setting on."""
    import json
    import sys

    from conftest import run_train, train_cmd

    common = ["--init-from", str(reference_run / "last"), "--set", "optim.steps=20", "--set", "optim.warmup_steps=3",
              "--set", "run.ckpt_every=10", "--set", "pairs.weight=0.5", "--set", "pairs.share=0.5"]
    res = run_train(train_cmd(tiny_corpus.root, tmp_path, *common, "--stop-at-step", "10"))
    assert res.returncode == 0, res.stderr
    assert "register pairs: 4 a batch, >= 12 semitones apart, weight 0.5" in res.stderr
    res = run_train([sys.executable, "-m", "training.train", "--resume", str(tmp_path / "tiny" / "state.pt")])
    assert res.returncode == 0, res.stderr
    log = [json.loads(l) for l in (tmp_path / "tiny" / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if r["event"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    for r in train:
        # tiny: A-softmax instrument + family (weight 1); 4 pairs: a random space pays about log 4
        whole = r["loss_instrument"] + r["loss_family"] + 0.5 * r["loss_pair"]
        assert abs(r["loss"] - whole) <= 1e-4 * max(1.0, abs(r["loss"])), r
        assert 0 <= r["loss_pair"] < 3 * np.log(4)
    meta = json.loads((tmp_path / "tiny" / "last" / "model.json").read_text())
    assert meta["provenance"]["config"]["pairs"]["weight"] == 0.5


def test_the_committed_register_pairs_model_is_the_recipes_run():
    """recipes/register_pairs/model (the run's last/, carried to later sessions) loads with its
    hash checked and was trained by the recipe's config, to its last step."""
    from mie_core.nnet.checkpoint import load_encoder, load_metadata

    folder = REPO / "recipes" / "register_pairs" / "model"
    enc = load_encoder(folder)  # raises on a hash mismatch
    prov = load_metadata(folder)["provenance"]
    want = load_config(REPO / "recipes" / "register_pairs" / "cqt122_pairs.yaml").to_dict()
    got = from_dict(prov["config"]).to_dict()  # as a resume reads it: a field added since takes its default
    for section in ("model", "data", "optim", "head", "chain", "pairs"):
        assert got[section] == want[section], section
    assert prov["step"] == want["optim"]["steps"] and prov["clips_seen"] == 800 * 32
    x = torch.zeros(1, 16000)
    with torch.no_grad():
        assert enc.eval()(x).shape == (1, want["model"]["embed_dim"])
