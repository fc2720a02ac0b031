"""Does removing the directions that carry pitch help on real notes? A nuisance attribute
projection (NAP, Solomonoff et al. 2005; speaker verification's channel removal) with pitch
as the nuisance, fitted on rendered notes of the valid instruments only.

    python benchmarks/pitch_nap.py [--model NAME=PATH ...] [--draws 5]

Per model, three ways to find the pitch subspace on the valid part (its notes at every
6th MIDI pitch, 5 velocities; each instrument's mean removed): ``reg``, the regression of the
residuals on (pitch, pitch^2) per instrument (k = 1, 2 directions); ``bin``, the principal
directions of the instrument's octave means (k = 1, 2, 4, 8); ``within``, the principal
directions of all within-instrument variation (k = 4, 16, 64: classic NAP). The subspace is
projected out of every unit embedding, which is then centred on the valid part's mean and
scored by the cosine to the enrolment mean (the paper's protocol, 5 draws, identical trials):
EER % on clean test renders, the wet part, and the real notes per source. Nothing of the
test instruments or the real notes is fitted. Results: docs/experiments/pitch-nap.md.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)
from mie_core.evaluation.embeddings import unit  # noqa: E402

DEFAULT = ("cqt122=cache/models/cqt122", "cqt122/clean=cache/models/cqt122/clean",
           "mel122=cache/models/mel122", "mel122/clean=cache/models/mel122/clean")
GRID = (("none", (0,)), ("reg", (1, 2)), ("bin", (1, 2, 4, 8)), ("within", (4, 16, 64)))


def pitch_subspace(emb: np.ndarray, inst: np.ndarray, pitch: np.ndarray, kind: str, k: int) -> np.ndarray:
    """(dim, k) orthonormal directions of the nuisance (see the module docstring)."""
    e = unit(emb)
    res, feats, octaves = [], [], []
    for i in np.unique(inst):
        m = inst == i
        r = e[m] - e[m].mean(0)
        res.append(r)
        p = (pitch[m] - pitch[m].mean()) / 12.0
        feats.append(np.stack([p, p ** 2 - (p ** 2).mean()], 1))
        octave = pitch[m] // 12
        for v in np.unique(octave):
            sel = octave == v
            octaves.append(r[sel].mean(0) * np.sqrt(sel.sum()))
    r = np.concatenate(res)
    if kind == "reg":
        coef, *_ = np.linalg.lstsq(np.concatenate(feats)[:, :k], r, rcond=None)
        return np.linalg.qr(coef.T)[0]
    spread = np.array(octaves) if kind == "bin" else r
    return np.linalg.svd(spread, full_matrices=False)[2][:k].T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="NAME=PATH of a checkpoint folder (repeatable)")
    p.add_argument("--draws", type=int, default=5)
    args = p.parse_args()
    from mie_core.data.corpus import Corpus
    from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
    from mie_core.evaluation.parts import load_parts, real_sources_part
    from mie_core.evaluation.report import parse_model_arg
    from mie_core.paths import corpus_dir
    from training.study_eval import part_metrics

    models = dict(parse_model_arg(m) for m in args.model or DEFAULT)
    parts = load_parts(Corpus.load(corpus_dir()), ("test", "valid", "wet"))
    real = real_sources_part()
    if real is None:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    parts["real"] = real
    store = EmbeddingStore()
    emb = {name: embed_models(models, part, store, resolve_precision("auto")) for name, part in parts.items()}
    rows = {name: part.rows for name, part in parts.items()}
    src = rows["real"]["source"].to_numpy()
    names = ["test", "wet", "real"] + sorted(set(src))
    v_inst = rows["valid"]["instrument_str"].to_numpy()
    v_pitch = rows["valid"]["pitch"].to_numpy().astype(float)

    print("| model | subspace | k | clean | wet | real, pooled | " + " | ".join(names[3:]) + " |")
    print("|---|---|---:|" + "---:|" * len(names))
    for model in models:
        for kind, ks in GRID:
            for k in ks:
                q = None if kind == "none" else pitch_subspace(emb["valid"][model], v_inst, v_pitch, kind, k)
                proj = {p_: unit(emb[p_][model]) if q is None else unit(emb[p_][model]) - unit(emb[p_][model]) @ q @ q.T
                        for p_ in emb}
                mean = unit(proj["valid"]).mean(0)
                res = {p_: part_metrics(unit(proj[p_]) - mean, rows[p_]["instrument_str"].to_numpy(), 0, args.draws,
                                        groups=src if p_ == "real" else None) for p_ in ("test", "wet", "real")}
                per = {**{p_: r["eer"] for p_, r in res.items()}, **res["real"]["by_group"]}
                cells = " | ".join(f"{100 * per[n]:.2f}" for n in names)
                print(f"| {model} | {kind} | {k} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
