"""Weight-space interpolation (training/interpolate.py): the written checkpoint is the average
the formula says, loads alone, names its parents, and refuses models that are not related."""
from __future__ import annotations

import pytest
import torch

from mie_core.nnet.checkpoint import CheckpointError, load_encoder, load_metadata, save_checkpoint
from mie_core.nnet.model import InstrumentEncoder, ModelArgs
from training.interpolate import interpolate

ARGS = ModelArgs(n_filters=8, base_width=4, blocks=(1, 1, 1, 1), lde_clusters=4, embed_dim=16)


def _pair(tmp_path):
    torch.manual_seed(0)
    a = InstrumentEncoder(ARGS)
    b = InstrumentEncoder(ARGS)
    b.train()
    b(torch.randn(2, 16000))  # batch-norm running statistics move: they are averaged too
    save_checkpoint(tmp_path / "a", a, label_maps={"instrument": ["x"]})
    save_checkpoint(tmp_path / "b", b, label_maps={"instrument": ["x"]},
                    provenance={"corpus": {"init_from": str(tmp_path / "a")}})
    return load_encoder(tmp_path / "a").state_dict(), load_encoder(tmp_path / "b").state_dict()


def test_the_average_is_the_formula_and_the_ends_are_the_parents(tmp_path):
    sa, sb = _pair(tmp_path)
    for alpha in (0.0, 0.3, 1.0):
        out = interpolate(tmp_path / "a", tmp_path / "b", alpha, tmp_path / f"m{alpha}")
        got = load_encoder(out).state_dict()  # loads alone: the hash in model.json matches
        for k, v in got.items():
            if v.is_floating_point():
                want = (1 - alpha) * sa[k].double() + alpha * sb[k].double()
                # float32 storage: a few ulps of the larger parent
                tol = 4 * torch.finfo(torch.float32).eps * max(1.0, float(sa[k].abs().max()), float(sb[k].abs().max()))
                assert torch.allclose(v.double(), want, atol=tol, rtol=0), k
            else:
                assert torch.equal(v, sb[k]), k
    moved = [k for k in sa if "running_mean" in k and not torch.equal(sa[k], sb[k])]
    assert moved  # the check above covered statistics that differ
    meta = load_metadata(tmp_path / "m0.3")
    assert meta["provenance"]["interpolation"]["alpha"] == 0.3
    assert meta["provenance"]["interpolation"]["b_sha256"] == load_metadata(tmp_path / "b")["weights_sha256"]


def test_unrelated_models_and_bad_alphas_are_refused(tmp_path):
    _pair(tmp_path)
    with pytest.raises(CheckpointError, match="not fine-tuned from"):
        interpolate(tmp_path / "b", tmp_path / "a", 0.5, tmp_path / "x")
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        interpolate(tmp_path / "a", tmp_path / "b", 1.5, tmp_path / "y")
    other = InstrumentEncoder(ModelArgs(n_filters=8, base_width=4, blocks=(1, 1, 1, 1), lde_clusters=4, embed_dim=8))
    save_checkpoint(tmp_path / "c", other)
    with pytest.raises(CheckpointError, match="different architectures"):
        interpolate(tmp_path / "a", tmp_path / "c", 0.5, tmp_path / "z", require_descendant=False)
