"""Does searching more instruments name the family of real notes better? Shipped centroids vs with an extra corpus's.

    python benchmarks/extra_instruments.py [--extra data/corpus_freepats] [--model NAME=PATH ...] [--centred]

The app names a clip's family and type from its nearest corpus instrument (the shipped
``centroids.npy`` of every instrument of the default corpus, :func:`mie_core.service.verify.identify`).
This adds the centroids of another corpus's instruments that the shipped ones lack
(default: the freepats instruments of ``corpus --with-freepats``; 6 seeded notes each,
as the shipped bank), with the model's own shipped back-end, and prints on the real part
(tonejs recordings) the family of the nearest instrument (top-1) and the right General
MIDI program in the top 5, shipped centroids against shipped + extra, and the extra
ones alone, on identical notes, with their ratio.

A model folder without a back-end (a run's ``best/``), or any model with ``--centred``, is
scored by the back-end's first step alone: embeddings centred on the mean unit embedding
of the training instruments' bank notes, no AS-norm and no calibration, and centroids of
every default-corpus instrument from the same bank (6 notes each), embedded here. Two
runs that differ in their training data alone are then compared on the same search.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.data.corpus import Corpus, default_corpus_dir, select_notes  # noqa: E402
from mie_core.evaluation.parts import BANK_NOTES_PER_INSTRUMENT, Part, bank_part, render_rows  # noqa: E402
from mie_core.evaluation.report import parse_model_arg  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402
from mie_core.scoring.backend import Backend, fit_backend  # noqa: E402
from mie_core.service.verify import identification_rates, instrument_centroids, load_centroids  # noqa: E402


def centred_search(name: str, path: str, store, precision) -> tuple[Backend, np.ndarray, pd.DataFrame]:
    """(back-end, centroids (n, d), their labels) of a model scored by centring alone: the mean
    unit embedding of the training instruments' bank notes, and every corpus instrument's
    centred unit centroid from the same bank (:func:`mie_core.evaluation.parts.bank_part`)."""
    bank = bank_part(Corpus.load(default_corpus_dir()))
    emb = embed_models({name: path}, bank, store, precision, log=print)[name]
    train = (bank.rows["part"] == "train").to_numpy()
    be = fit_backend(emb[train], bank.rows["instrument_str"].to_numpy()[train])  # its mean is all that is used
    cents, info = instrument_centroids(be, emb, bank.rows)
    return be, cents, info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--extra", default="data/corpus_freepats", help="corpus folder whose new instruments are added")
    p.add_argument("--model", action="append", help="NAME=PATH of a model folder (default: cqt122, mel122)")
    p.add_argument("--centred", action="store_true",
                   help="score every model by centring alone, its own back-end unused (as a model without one)")
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(("real",))
    if "real" not in parts:
        print("no real recordings fetched (python -m mie_core fetch)")
        return 1
    real = parts["real"]
    extra = Corpus.load(args.extra)
    models = [parse_model_arg(m) for m in (args.model or ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122"))]
    for name, path in models:
        own = (Path(path) / "backend.json").exists() and not args.centred
        if own:
            be = Backend.load(Path(path))
            cents, info = load_centroids(Path(path))
        else:
            be, cents, info = centred_search(name, path, store, precision)
        new = extra.notes[~extra.notes["instrument_str"].isin(set(info["instrument_str"]))]
        rows = select_notes(new, max_per_instrument=BANK_NOTES_PER_INSTRUMENT, seed=0).reset_index(drop=True)
        bank = Part("extrabank", rows, f"bank:{extra.fingerprint}:new", lambda r=rows: render_rows(r, corpus=extra))
        add_c, add_i = instrument_centroids(be, embed_models({name: path}, bank, store, precision, log=print)[name], rows)
        q = be.vectors(embed_models({name: path}, real, store, precision, log=print)[name])
        both = (np.concatenate([cents, add_c]), pd.concat([info, add_i], ignore_index=True))
        corpus = "shipped" if own else "corpus"  # the shipped centroids, or the same instruments' from its bank
        rates = {corpus: identification_rates(q, cents, info, real.rows),
                 f"{corpus} + {add_i['instrument_str'].nunique()} extra": identification_rates(q, *both, real.rows),
                 "extra alone": identification_rates(q, add_c, add_i, real.rows)}
        base = rates[corpus]
        how = "its own back-end" if own else "centring alone"
        print(f"\n{name} ({path}), {precision}, {how}: {len(real.rows)} real notes")
        print(f"{'centroids':22s} {'family top-1':>12s} {'ratio':>6s} {'program top-5':>13s} {'ratio':>6s}")
        for label, r in rates.items():
            print(f"{label:22s} {100 * r['family_top1']:11.1f}% {r['family_top1'] / base['family_top1']:6.2f} "
                  f"{100 * r['program_top5']:12.1f}% {r['program_top5'] / base['program_top5']:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
