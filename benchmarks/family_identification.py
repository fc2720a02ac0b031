"""Which family is this note? The nearest corpus instrument against classifiers, on identical notes.

    python benchmarks/family_identification.py [--model NAME=PATH ...]

The app names a clip's family from its nearest corpus instrument (:func:`mie_core.service.verify.identify`,
best per General MIDI program). Issue 14 asks for the right family on 70 % of real notes;
it is right on about 40 %. This measures whether another reader of the same embeddings
does better: per model, the share of notes whose family is named right (top-1) on the
``real`` part (tonejs recordings), the ``wet`` and the clean ``test`` parts, by

* ``nearest instrument``: the shipped rule (centroids of all corpus instruments; for the
  wet and test parts, the test instruments' own centroids are left out, since their notes
  would otherwise find themselves);
* ``family centroid``: the nearest of the 11 family centroids;
* ``kNN 30``: a cosine 30-nearest-neighbour vote over the ``bank`` notes (and their
  ``bankwet`` copies through the training rooms' chain);
* ``logistic``: a class-balanced logistic regression on the same notes;
* ``family head``: the model's own angular-softmax family head (Sec. IV-C), where the
  checkpoint keeps its heads (``runs/<name>/best`` does; the shipped ``cache/models`` do not).

All readers use the back-end's centred, length-normalised vectors (:mod:`mie_core.scoring.backend`)
and nothing of the test instruments, test rooms or real recordings to fit. The last column
is each reader's rate over the nearest instrument's on that part, measured in one run.
Embeddings come from the one store (``data/embeddings``): once it holds them, seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.evaluation.embeddings import unit  # noqa: E402
from mie_core.evaluation.report import parse_model_arg  # noqa: E402
from mie_core.scoring.fitting import BACKEND_PARTS, fit_backends  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402

# the shipped runs' checkpoints keep the heads; a clone without runs/ has the shipped models
DEFAULT_MODELS = tuple(f"{m}=runs/{m}_rec/best" if Path(f"runs/{m}_rec/best").is_dir() else f"{m}=cache/models/{m}"
                       for m in ("cqt122", "mel122"))
SCORED = ("real", "wet", "test")


def family_head(path: Path):
    """A function (n, d) raw embeddings -> family names, or None where the checkpoint has no heads."""
    from safetensors.numpy import load_file

    w = load_file(str(path / "model.safetensors"))
    if "heads.family.weight" not in w:
        return None
    fams = np.array(json.loads((path / "model.json").read_text())["label_maps"]["family"])
    mean, var = w["heads.bn.running_mean"], w["heads.bn.running_var"]

    def predict(emb):
        z = (emb - mean) / np.sqrt(var + 1e-5) * w["heads.bn.weight"] + w["heads.bn.bias"]
        return fams[(unit(z) @ unit(w["heads.family.weight"]).T).argmax(1)]
    return predict


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH (default: the two shipped runs' best checkpoints, "
                   "or the shipped models where runs/ is absent)")
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(BACKEND_PARTS + ("bankwet",) + SCORED)
    scored = [n for n in SCORED if n in parts]
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        be = fit_backends({name: path}, parts, store, precision)[0][name]
        raw = {n: embed_models({name: path}, parts[n], store, precision, log=print)[name]
               for n in ("bank", "bankwet") + tuple(scored)}
        vec = {n: be.vectors(e) for n, e in raw.items()}
        rows = {n: parts[n].rows.reset_index(drop=True) for n in raw}
        fam = {n: rows[n]["instrument_family_str"].to_numpy() for n in raw}
        head = family_head(Path(path))
        print(f"\n{name} ({path}): family top-1 (%), and over the nearest instrument's")
        print(f"{'part':6s} {'reader':20s} {'top-1':>7s} {'ratio':>6s}")
        for pname in scored:
            # the fitting pool: every corpus instrument for real notes, none of the test ones otherwise
            keep = {n: np.ones(len(rows[n]), bool) if pname == "real" else (rows[n]["part"] != "test").to_numpy()
                    for n in ("bank", "bankwet")}
            bank_rows = rows["bank"][keep["bank"]]
            insts = bank_rows.groupby("instrument_str", sort=True).indices
            inst_ids = sorted(insts)
            bank_v = vec["bank"][keep["bank"]]
            cents = unit(np.stack([bank_v[insts[i]].mean(0) for i in inst_ids]))
            inst_fam = bank_rows.groupby("instrument_str", sort=True)["instrument_family_str"].first().to_numpy()
            x = np.concatenate([bank_v, vec["bankwet"][keep["bankwet"]]])
            y = np.concatenate([fam["bank"][keep["bank"]], fam["bankwet"][keep["bankwet"]]])
            classes = np.unique(y)
            fam_cents = unit(np.stack([x[y == c].mean(0) for c in classes]))
            q = vec[pname]
            preds = {
                "nearest instrument": inst_fam[(q @ cents.T).argmax(1)],
                "family centroid": classes[(q @ fam_cents.T).argmax(1)],
                "kNN 30": KNeighborsClassifier(30, metric="cosine", weights="distance").fit(x, y).predict(q),
                "logistic": LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(x, y).predict(q),
            }
            if head is not None:
                preds["family head"] = head(raw[pname])
            base = None
            for reader, pred in preds.items():
                rate = float(np.mean(pred == fam[pname]))
                base = rate if base is None else base
                print(f"{pname:6s} {reader:20s} {100 * rate:6.1f}% {rate / base:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
