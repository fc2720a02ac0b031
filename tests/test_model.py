"""The encoder: SincNet filters, ResNet shapes, LDE, heads, checkpoints, embedding policy."""
from __future__ import annotations

import json

import math

import numpy as np
import pytest
import torch

from mie_core.nnet.heads import AAMSoftmax, ASoftmax, DualHead, LinearSoftmax, PitchAdversary
from mie_core.nnet.checkpoint import load_encoder, save_checkpoint
from mie_core.nnet.model import InstrumentEncoder, ModelArgs, SincConv
from mie_core.nnet.pooling import LDE, AttentiveStatsPool, StatsPool
from mie_core.nnet.resnet import ResNetEncoder
from mie_core.nnet.sincconv import band_response, cqt_bands, hz_to_mel, mel_bands, note_name

SMALL = ModelArgs(n_filters=24, base_width=4, blocks=(1, 1, 1, 1), lde_clusters=4, embed_dim=32)


@pytest.mark.parametrize("kernel_ms", [50.0, 25.0, 10.0, 50.0625])
def test_kernel_length_is_odd(kernel_ms):
    s = SincConv(n_filters=8, kernel_ms=kernel_ms)
    assert s.kernel_size % 2 == 1
    assert s.filters().shape == (16, 1, s.kernel_size)


def test_paper_sizes():
    s = SincConv()
    assert s.kernel_size == 801 and s.hop == 192 and s.n_filters == 122


def test_cqt_init_is_one_filter_per_midi_note():
    b = cqt_bands(122)
    k = np.arange(1, 123)
    np.testing.assert_allclose(b[:, 0], 440 * 2 ** ((k - 1 - 69) / 12))
    np.testing.assert_allclose(b[:, 1], 440 * 2 ** ((k + 1 - 69) / 12))
    s = SincConv(122, "cqt")
    bands = s.bands()
    assert bands.shape == (122, 2)
    # A4 (filter 70 spans MIDI 69..71) is kept exactly; floors and Nyquist are respected
    np.testing.assert_allclose(bands[69], [440.0, 440 * 2 ** (2 / 12)], rtol=1e-6)
    assert (bands[:, 0] >= 5).all() and (bands[:, 1] - bands[:, 0] >= 5 - 1e-4).all()
    assert (bands[:, 1] <= 8000).all()


def test_cqt_init_with_fewer_filters_keeps_the_musical_range():
    b = cqt_bands(61)  # two semitones apart
    np.testing.assert_allclose(b[0], [440 * 2 ** (-69 / 12), 440 * 2 ** ((4 - 69) / 12)])
    np.testing.assert_allclose(b[-1, 0], cqt_bands(122)[-2, 0])
    ratios = b[1:, 0] / b[:-1, 0]
    np.testing.assert_allclose(ratios, ratios[0])


def test_mel_init_is_equally_spaced_on_the_mel_scale():
    b = mel_bands(80, 16000)
    m = hz_to_mel(np.concatenate([b[:, 0], b[-1:, 1]]))
    np.testing.assert_allclose(np.diff(m), np.diff(m)[0], rtol=1e-9)
    assert b[0, 0] == pytest.approx(30.0) and b[-1, 1] < 8000
    s = SincConv(80, "mel")
    np.testing.assert_allclose(s.bands(), b, rtol=1e-5)


def test_cutoffs_stay_physical_whatever_the_parameters():
    s = SincConv(16, "mel", min_low_hz=5, min_band_hz=5)
    with torch.no_grad():
        s.low_hz_.fill_(-1e6)  # |.| keeps it positive
        s.band_hz_.fill_(1e6)  # clamped at Nyquist
    b = s.bands()
    assert (b[:, 0] >= 5).all() and (b[:, 1] <= 8000).all()


def test_frequency_response_passes_its_band_and_stops_far_away():
    s = SincConv(122, "cqt")
    idx = [60, 90]  # bands around 277-311 Hz and 1568-1760 Hz
    freqs, db = band_response(s, idx, n_fft=16384)
    for row, k in zip(db, idx):
        lo, hi = s.bands()[k]
        centre = np.argmin(np.abs(freqs - (lo + hi) / 2))
        far = np.abs(freqs - 4 * hi) < 50
        assert lo <= freqs[np.argmax(row)] <= hi  # the response peaks inside the band
        # SincNet's normalisation: pass-band gain sample_rate / (2 (f2 - f1))
        # (the Hamming window smooths narrow bands: a few dB below the ideal)
        assert -4 < row[centre] - 20 * np.log10(16000 / (2 * (hi - lo))) < 0.5
        assert row[far].max() < row[centre] - 40


def test_envelope_of_a_steady_tone_is_steady_and_selective():
    sr = 16000
    t = np.arange(sr) / sr
    x = torch.tensor(0.5 * np.sin(2 * np.pi * 1000 * t), dtype=torch.float32)[None]
    s = SincConv(122, "cqt")
    y = s(x)[0].detach().numpy()  # (122, frames), log magnitude
    k_in = int(np.argmin(np.abs(s.bands().mean(1) - 1000)))
    mid = y[:, 10:-10]
    assert mid[k_in].std() < 0.05  # the analytic envelope does not flicker with the phase
    assert mid[k_in].mean() > mid[k_in - 24].mean() + 3  # two octaves down is far quieter (log units)
    assert y.shape[1] == math.ceil(sr / s.hop)


def test_filters_are_computed_once_in_eval_mode(monkeypatch):
    s = SincConv(8, "cqt").eval()
    calls = []
    orig = SincConv.filters
    monkeypatch.setattr(SincConv, "filters", lambda self: calls.append(1) or orig(self))
    x = torch.randn(2, 4000)
    with torch.no_grad():
        a = s(x)
        b = s(x)
    assert len(calls) == 1 and torch.equal(a, b)
    s.train()
    s(x)
    assert len(calls) == 2


def test_note_names():
    assert note_name(69) == "A4" and note_name(60) == "C4" and note_name(21) == "A0"


def test_resnet34_shapes_and_size():
    enc = ResNetEncoder(16, (3, 4, 6, 3))
    y = enc(torch.randn(2, 122, 84))
    assert y.shape == (2, 128, 11)
    n = sum(p.numel() for p in enc.parameters())
    assert 1.2e6 < n < 1.45e6  # "about 1.3 M parameters"


def test_lde_matches_the_materialised_definition():
    torch.manual_seed(0)
    lde = LDE(8, 3)
    x = torch.randn(2, 8, 7)
    got = lde(x)
    xt = x.transpose(1, 2)  # (B, T, D)
    r = xt[:, :, None, :] - lde.mu[None, None]  # (B, T, C, D)
    w = torch.softmax(-(lde.s**2)[None, None] * (r**2).sum(-1), dim=-1)
    e = (w[..., None] * r).sum(1) / w.sum(1)[..., None]
    torch.testing.assert_close(got, e.reshape(2, -1), rtol=1e-4, atol=1e-5)
    assert StatsPool(8)(x).shape == (2, 16) and AttentiveStatsPool(8)(x).shape == (2, 16)


def test_asoftmax_target_logit_and_annealing():
    head = ASoftmax(4, 3, margin=2, lambda_base=1500, lambda_gamma=0.01, lambda_min=5)
    assert head.lam(0) == 1500 and head.lam(29900) == pytest.approx(5.0) and head.lam(10**6) == 5
    with torch.no_grad():
        head.weight.copy_(torch.eye(3, 4))
    theta = 2.0  # radians, in [pi/2, pi): k = 1
    x = torch.tensor([[math.cos(theta), math.sin(theta), 0.0, 0.0]]) * 3.0
    y = torch.tensor([0])
    lam = head.lam(10**6)
    psi = -math.cos(2 * theta) - 2
    expect = 3.0 * (lam * math.cos(theta) + psi) / (1 + lam)
    logits, loss = head(x, y, iteration=10**6)
    modified = logits.clone()
    modified[0, 0] = expect
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(modified, y).item(), rel=1e-5)
    # with a huge lambda the margin vanishes: plain softmax on |x| cos
    _, loss0 = head(x, y, iteration=0)
    lam0 = 1500
    modified[0, 0] = 3.0 * (lam0 * math.cos(theta) + psi) / (1 + lam0)
    assert loss0.item() == pytest.approx(torch.nn.functional.cross_entropy(modified, y).item(), rel=1e-5)


def test_margin_heads_are_harder_than_softmax():
    torch.manual_seed(0)
    x = torch.randn(16, 8)
    y = torch.randint(0, 5, (16,))
    a, s = ASoftmax(8, 5, lambda_base=0, lambda_min=0), AAMSoftmax(8, 5)
    logits_a, loss_a = a(x, y)
    assert loss_a > torch.nn.functional.cross_entropy(logits_a, y)
    logits_s, loss_s = s(x, y)
    assert loss_s > torch.nn.functional.cross_entropy(logits_s, y)
    assert LinearSoftmax(8, 5)(x, y)[1] > 0


def test_family_weight_zero_drops_the_family_loss():
    torch.manual_seed(0)
    h = DualHead(8, 5, 3, kind="softmax", family_weight=0.0)
    out = h(torch.randn(4, 8), torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0]))
    assert out["loss"].item() == pytest.approx(out["loss_instrument"].item())


def test_the_pitch_adversary_learns_the_pitch_while_its_input_unlearns_it():
    """Gradient reversal: the adversary's weights descend its CE, what feeds it ascends it,
    scaled by the weight; clips without one pitch (-1) count for nothing."""
    torch.manual_seed(0)
    adv = PitchAdversary(8, weight=0.5, hidden=16)
    z = torch.randn(6, 8, requires_grad=True)
    pitch = torch.tensor([60, 62, -1, 64, 60, -1])
    _, loss = adv(z, pitch)
    loss.backward()
    reversed_grad, w_grad = z.grad.clone(), adv.net[0].weight.grad.clone()
    # the same CE without the reversal: its input gradient is -1/0.5 times the reversed one
    z2 = z.detach().clone().requires_grad_(True)
    plain = torch.nn.functional.cross_entropy(adv.net(z2)[pitch >= 0], pitch[pitch >= 0])
    plain.backward()
    assert torch.allclose(reversed_grad, -0.5 * z2.grad, atol=1e-6)
    assert loss.item() == pytest.approx(plain.item(), rel=1e-6)
    assert w_grad.abs().sum() > 0
    # the unlabelled clips' rows get no gradient at all
    assert reversed_grad[pitch < 0].abs().sum() == 0
    _, none = adv(z, torch.full((6,), -1))
    assert none.item() == 0.0


def test_the_pitch_adversary_adds_its_loss_only_where_asked():
    torch.manual_seed(0)
    x, yi, yf = torch.randn(4, 8), torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0])
    plain = DualHead(8, 5, 3, kind="softmax")
    assert plain.pitch is None and not any(k.startswith("pitch") for k in plain.state_dict())
    h = DualHead(8, 5, 3, kind="softmax", pitch_weight=0.3)
    h.load_state_dict({**h.state_dict(), **plain.state_dict()})
    out = h(x, yi, yf, pitch=torch.tensor([60, -1, 72, 48]))
    ref = plain(x, yi, yf)
    assert out["loss"].item() == pytest.approx(ref["loss"].item() + out["loss_pitch"].item(), rel=1e-6)
    assert out["logits_pitch"].shape == (4, 128)


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path):
    torch.manual_seed(0)
    enc = InstrumentEncoder(SMALL)
    heads = DualHead(32, 7, 11)
    folder = save_checkpoint(tmp_path / "m", enc, heads, {"instrument": list("abcdefg")}, {"note": "test"})
    x = torch.randn(3, 8000)
    enc.eval()
    with torch.no_grad():
        want = enc(x)
    back = load_encoder(folder)
    back2 = load_encoder(folder / "model.safetensors")
    with torch.no_grad():
        assert torch.equal(back(x), want) and torch.equal(back2(x), want)
    assert back.args == SMALL and back.label_maps["instrument"] == list("abcdefg")
    assert back.metadata["provenance"]["note"] == "test"
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path)


def test_embed_policy_for_any_length():
    torch.manual_seed(0)
    enc = InstrumentEncoder(SMALL).eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 64000, 100000, 1000, 16000)]
    e = enc.embed(clips, batch_size=2, bf16=False)
    assert e.shape == (5, 32) and e.dtype == np.float32
    # one at a time gives the same rows: order kept, batching does not matter
    single = np.concatenate([enc.embed([c], bf16=False) for c in clips])
    np.testing.assert_allclose(e, single, rtol=1e-4, atol=1e-5)
    # a long clip is the mean of its 4-s windows at 50 % overlap, the last aligned to the end
    long = clips[2]
    starts = [0, 32000, 100000 - 64000]
    wins = enc.embed([long[s : s + 64000] for s in starts], bf16=False)
    np.testing.assert_allclose(e[2], wins.mean(0), rtol=1e-4, atol=1e-5)
    # int16 input is scaled to [-1, 1)
    pcm = (clips[0] * 32768).astype(np.int16)
    np.testing.assert_allclose(enc.embed([pcm], bf16=False)[0], e[0], rtol=1e-3, atol=1e-3)


def test_embed_default_batch_follows_precision_and_gives_the_same_rows():
    from mie_core.nnet.model import EMBED_BATCH

    torch.manual_seed(0)
    enc = InstrumentEncoder(SMALL).eval()
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(7)]
    seen = []
    real_forward = enc.forward
    enc.forward = lambda x: (seen.append(len(x)), real_forward(x))[1]
    default = enc.embed(clips, bf16=False)
    assert max(seen) == EMBED_BATCH["fp32"] < len(clips)  # batched by the fp32 default, not one pass
    seen.clear()
    wide = enc.embed(clips, batch_size=16, bf16=False)
    assert seen == [7]
    # fp32 sums in another order per batch shape: equal to float32 rounding of unit-scale rows
    np.testing.assert_allclose(default, wide, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        enc.embed(clips, batch_size=0)


def test_model_args_are_validated():
    with pytest.raises(ValueError, match="init"):
        ModelArgs(init="erb")
    with pytest.raises(ValueError, match="pooling"):
        ModelArgs(pooling="max")
    with pytest.raises(ValueError, match="unknown model argument"):
        ModelArgs.from_dict({"n_filters": 8, "colour": "red"})


def test_embed_command_writes_one_row_per_file_in_order(tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    torch.manual_seed(0)
    enc = InstrumentEncoder(SMALL)
    save_checkpoint(tmp_path / "m", enc)
    rng = np.random.default_rng(0)
    files = []
    for i, n in enumerate((16000, 40000, 8000)):
        f = tmp_path / f"c{i}.wav"
        sf.write(f, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000, subtype="FLOAT")
        files.append(f)
    out = tmp_path / "e.npy"
    res = subprocess.run([sys.executable, "-m", "mie_core", "embed", "--model", str(tmp_path / "m"), "--out", str(out),
                          *map(str, files)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    e = np.load(out)
    want = load_encoder(tmp_path / "m").embed([sf.read(f, dtype="float32")[0] for f in files])
    np.testing.assert_allclose(e, want, rtol=1e-5, atol=1e-6)
    bad = tmp_path / "bad.wav"
    bad.write_text("no")
    res = subprocess.run([sys.executable, "-m", "mie_core", "embed", "--model", str(tmp_path / "m"), "--out", str(out),
                          str(bad)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "bad.wav: not a readable audio file" in res.stderr


def test_a_broken_checkpoint_is_one_line_naming_its_file(tmp_path):
    from mie_core.service import workbench
    from mie_core.nnet.checkpoint import CheckpointError

    torch.manual_seed(0)
    good = save_checkpoint(tmp_path / "cache" / "models" / "good", InstrumentEncoder(SMALL))
    # NaN in a weight (a flipped exponent bit does this): refused, never NaN embeddings
    state = {k: v.clone() for k, v in InstrumentEncoder(SMALL).state_dict().items()}
    state["projection.weight"][0, 0] = float("nan")
    nan = tmp_path / "nan"
    save_checkpoint(nan, InstrumentEncoder(SMALL))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(nan / "model.safetensors"))
    # the recorded hash refuses the changed file first; a checkpoint from before hashes
    # were recorded is refused by the finite check
    with pytest.raises(CheckpointError, match="sha256 is not the one model.json records"):
        load_encoder(nan)
    meta = json.loads((nan / "model.json").read_text())
    del meta["weights_sha256"]
    (nan / "model.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        load_encoder(nan)
    # truncated weights: named
    trunc = tmp_path / "trunc"
    save_checkpoint(trunc, InstrumentEncoder(SMALL))
    data = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_encoder(trunc)
    # model.json: not JSON, another type, no model_args, another architecture
    for text, why in (("{not json", "not readable JSON"), ("[1, 2]", "no model_args"), ('{"a": 1}', "no model_args"),
                      ('{"model_args": {"layers": 50}}', "do not describe")):
        bad = tmp_path / "runs" / f"r{len(why)}{len(text)}" / "best"
        save_checkpoint(bad, InstrumentEncoder(SMALL))
        (bad / "model.json").write_text(text)
        with pytest.raises(CheckpointError, match=why):
            load_encoder(bad)
    # the app lists broken runs by path and every good model still
    broken: list = []
    found = workbench.find_models(tmp_path / "cache", tmp_path / "runs", broken)
    assert [m.path for m in found] == [good]
    assert len(broken) == 4 and all("model.json" in why for _, why in broken)
