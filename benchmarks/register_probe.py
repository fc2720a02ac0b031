"""How much register a model's embedding still carries: the octave of a note read from its
embedding by a linear classifier, the instruments held out (what a pitch adversary should lower).

    python benchmarks/register_probe.py MODEL [MODEL ...] [--split program_disjoint]

Each MODEL is a checkpoint folder; the notes are the study's clean part of the split (30
seeded notes of every test instrument, ``training.study_eval.study_parts``), embedded through
the one store. Logistic regression on the unit embeddings, 5 folds grouped by instrument (no
instrument both fitted and scored); prints the mean accuracy and the majority class's share.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import _common  # noqa: F401  (puts the repository on the path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="checkpoint folders")
    p.add_argument("--split", default="program_disjoint", choices=("program_disjoint", "soundfont_disjoint"))
    args = p.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision, unit
    from training.study_eval import study_parts

    clean, _, _ = study_parts(args.split, None)
    octave = (clean.rows["pitch"].to_numpy() // 12).astype(int)
    groups = clean.rows["instrument_str"].to_numpy()
    store = EmbeddingStore()
    print(f"majority octave: {np.bincount(octave).max() / len(octave):.3f} of {len(octave)} notes")
    for model in args.models:
        e = store.get(model, clean.key, clean.audio, resolve_precision("auto"))
        e = unit(e)
        acc = cross_val_score(LogisticRegression(max_iter=2000), e, octave, groups=groups, cv=GroupKFold(5))
        print(f"{model}: octave read from the embedding {acc.mean():.3f} +- {acc.std():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
