"""The scoring back-end with and without its multi-condition LDA, on identical trials.

    python benchmarks/backend_lda.py [--model NAME=PATH ...] [--dims 32 64 128]

For each model: the back-end of :mod:`mie_core.scoring.backend` fitted three ways on the same
training notes (the ``bank`` notes of training instruments, and ``bankwet``: the same
notes through the training rooms' recording chain) -- centring alone on clean notes (the
back-end before LDA), centring on clean + wet notes, and centring + LDA of each ``--dims``
on clean + wet notes -- then AS-norm EER (%, ROCCH, mean of 5 draws of the paper's
protocol) on the clean test, wet test and real parts, every variant on identical trials
(:func:`mie_core.evaluation.protocol.backend_results`). Embeddings come from the one store
(``data/embeddings``): a second run embeds nothing. Nothing of the test instruments, the
test rooms or the real recordings is used to fit anything.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mie_core.evaluation import protocol  # noqa: E402
from mie_core.scoring import backend, trials  # noqa: E402
from mie_core.data.corpus import Corpus, default_corpus_dir  # noqa: E402
from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision  # noqa: E402
from mie_core.evaluation.parts import load_parts  # noqa: E402
from mie_core.evaluation.report import parse_model_arg  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402

DEFAULT_MODELS = ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH (default: the two shipped models)")
    p.add_argument("--dims", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    corpus = Corpus.load(default_corpus_dir())
    parts = load_parts(corpus, ("bank", "bankwet", "test", "wet", "real"))
    bank, wet = parts["bank"], parts["bankwet"]
    train = (bank.rows["part"] == "train").to_numpy()
    precision = resolve_precision("auto")
    store = EmbeddingStore()
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        emb = {k: embed_models({name: path}, part, store, precision, log=print)[name] for k, part in parts.items()}
        clean, lab = emb["bank"][train], bank.rows["instrument_str"].to_numpy()[train]
        both = np.concatenate([clean, emb["bankwet"]])
        both_lab = np.concatenate([lab, wet.rows["instrument_str"].to_numpy()])
        variants = {"centred, clean notes": backend.fit_backend(clean, lab),
                    "centred, clean + wet notes": backend.fit_backend(both, both_lab)}
        for k in args.dims:
            variants[f"LDA {k}, clean + wet notes"] = backend.fit_backend(both, both_lab, lda_dims=k)
        print(f"\n{name} ({path}): AS-norm EER %, 5 draws, identical trials")
        print(f"{'back-end':32s}" + "".join(f"{p:>8s}" for p in ("test", "wet", "real") if p in parts))
        for label, be in variants.items():
            row = []
            for pname in ("test", "wet", "real"):
                if pname not in parts:
                    continue
                labels = parts[pname].rows["instrument_str"].to_numpy()
                draws = [trials.make_trials(labels, r) for r in protocol.draw_rngs(args.seed, 5)]
                row.append(100 * protocol.backend_results(be, emb[pname], draws)["asnorm"]["eer"])
            print(f"{label:32s}" + "".join(f"{v:8.2f}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
