"""Weight-space interpolation of a model and its fine-tuned descendant (WiSE-FT).

    python -m training.interpolate --a cache/models/cqt122 --b runs/cqt122_lmft/last \\
        --alpha 0.5 --out runs/wise/cqt122_lmft_a50

Wortsman et al. (CVPR 2022, "Robust fine-tuning of zero-shot models") found that averaging
the weights of a pre-trained model and the same model fine-tuned keeps most of the
fine-tuned model's gain on shifted data and most of the original's accuracy on its own
distribution. Here ``a`` is the shipped encoder (trained on renders, 1-s crops) and ``b`` a
fine-tuned descendant (e.g. large-margin fine-tuning on 3-s crops, ``recipes/lmft``): the
weights written are ``(1 - alpha) a + alpha b``, every floating tensor (batch-norm running
statistics included), the integer counters taken from ``b``. The two must share an
architecture (``model_args``); a descendant of ``a`` (fine-tuned from it) is what makes the
average meaningful, which the provenance's ``init_from`` records and this tool checks.

The result is a plain checkpoint (``mie_core.nnet.checkpoint``) whose provenance names both
parents, their weight hashes and ``alpha``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mie_core.nnet.checkpoint import CheckpointError, load_encoder, load_metadata, save_checkpoint


def interpolate_state(a: dict, b: dict, alpha: float) -> dict:
    """``(1 - alpha) a + alpha b`` for floating tensors, ``b``'s value for the others.

    >>> a = {"w": torch.zeros(2), "n": torch.tensor(3)}
    >>> b = {"w": torch.ones(2), "n": torch.tensor(7)}
    >>> s = interpolate_state(a, b, 0.25)
    >>> s["w"].tolist(), int(s["n"])
    ([0.25, 0.25], 7)
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha}")
    if a.keys() != b.keys():
        missing = sorted(a.keys() ^ b.keys())
        raise ValueError(f"the two models' weights differ in names ({missing[:3]}, ...)")
    out = {}
    for k, va in a.items():
        vb = b[k]
        if va.shape != vb.shape:
            raise ValueError(f"{k}: shapes {tuple(va.shape)} and {tuple(vb.shape)} differ")
        out[k] = torch.lerp(va.float(), vb.float(), alpha).to(va.dtype) if va.is_floating_point() else vb.clone()
    return out


def interpolate(a_path: str | Path, b_path: str | Path, alpha: float, out: str | Path,
                require_descendant: bool = True) -> Path:
    """Write the interpolated checkpoint to ``out``; returns its folder."""
    ma, mb = load_metadata(a_path), load_metadata(b_path)
    if ma["model_args"] != mb["model_args"]:
        raise CheckpointError(f"{a_path} and {b_path} are different architectures")
    init = (mb.get("provenance") or {}).get("corpus", {}).get("init_from") or ""
    if require_descendant and Path(init).name != Path(a_path).name:
        raise CheckpointError(f"{b_path} was not fine-tuned from {a_path} (its init_from: {init or 'none'}); "
                              "averaging unrelated models is meaningless (--any to do it anyway)")
    enc_a, enc_b = load_encoder(a_path), load_encoder(b_path)
    enc_b.load_state_dict(interpolate_state(enc_a.state_dict(), enc_b.state_dict(), alpha))
    prov = {"interpolation": {"alpha": alpha, "a": str(a_path), "b": str(b_path),
                              "a_sha256": ma.get("weights_sha256"), "b_sha256": mb.get("weights_sha256"),
                              "method": "WiSE-FT: (1 - alpha) a + alpha b"},
            "b_provenance": mb.get("provenance", {})}
    return save_checkpoint(out, enc_b, label_maps=mb.get("label_maps", {}), provenance=prov)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="the original checkpoint folder")
    p.add_argument("--b", required=True, help="its fine-tuned descendant")
    p.add_argument("--alpha", type=float, required=True, action="append",
                   help="weight of b in [0, 1] (repeatable: one checkpoint each, OUT_a<100 alpha>)")
    p.add_argument("--out", required=True, help="output folder (with several --alpha: a prefix)")
    p.add_argument("--any", action="store_true", help="allow b not fine-tuned from a")
    args = p.parse_args(argv)
    for alpha in args.alpha:
        out = args.out if len(args.alpha) == 1 else f"{args.out}_a{round(100 * alpha):d}"
        print(interpolate(args.a, args.b, alpha, out, require_descendant=not args.any))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
