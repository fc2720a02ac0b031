"""One study run, evaluated on the trials every run of the study shares.

    python -m training.study_eval runs/study/cqt122_pd_s100 --at 1000   # its at1000/ model: eval_at1000.json
    python -m training.study_eval runs/cqt122_lmft                      # a run's last/ model: eval.json

The run's model at the study's budget (every run is judged at the same step) embeds
three parts through the one embedding store, each scored by cosine similarity with the
paper's protocol (5 enrolment notes, 20 + 20 trials per instrument, ``N_DRAWS`` seeded draws,
identical for every run of a split):

* ``clean``: 30 seeded notes of every test instrument of the run's split, clean renders;
* ``wet``: the same notes, each through its own recording chain of the test rooms
  (:func:`mie_core.evaluation.parts.wet_part`), so clean and wet differ only in the chain;
* ``real``: the real notes of every source fetched (:func:`mie_core.evaluation.parts.real_sources_part`),
  pooled, with each source's own figure (a trial belongs to its enrolled instrument's source).

Per part: EER (ROCCH, mean and std over draws, and each draw's), minDCF (P_target 0.01), min
Cllr (:func:`mie_core.scoring.metrics.min_cllr`) and the trial counts. Beside them: Table IV's
probing of the clean notes (family and playing style, an RBF SVM, micro / macro F1 and the
improvement over the majority class), the validation curve from the run's log, and the
learned filter bands. Pure functions over arrays below :func:`evaluate_run`, which does the I/O.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

N_DRAWS = 5
EVAL_SEED = 0
PROBE_LABELS = ("family", "playing_style")
PROBE_SEED = 0


def part_metrics(emb: np.ndarray, labels, seed: int = EVAL_SEED, n_draws: int = N_DRAWS, groups=None) -> dict:
    """EER, minDCF and min Cllr of cosine scores over the protocol's draws.

    Args:
        emb: (n, d) embeddings; labels: (n,) instrument of each clip.
        groups: (n,) optional group of each clip (a real note's source): the record gets
            ``by_group``, each group's EER over the trials whose enrolled instrument is in it.

    >>> rng = np.random.default_rng(0)
    >>> lab = np.repeat(np.arange(8), 30); emb = rng.normal(size=(8, 16))[lab] * 3 + rng.normal(size=(240, 16))
    >>> part_metrics(emb, lab, n_draws=2)["eer"] < 0.05
    True
    """
    from mie_core.evaluation.protocol import protocol_draws
    from mie_core.scoring import metrics
    from mie_core.scoring.trials import score_trials

    labels = np.asarray(labels)
    draws = protocol_draws(labels, seed, n_draws)
    per, by_group = [], {}
    g_of_model = pd.Series(np.asarray(groups)).groupby(labels).first() if groups is not None else None
    for d in draws:
        s = score_trials(emb, d)
        t, n = s[d.target], s[~d.target]
        per.append((metrics.eer(t, n), metrics.min_dcf(t, n), metrics.min_cllr(t, n)))
        if g_of_model is not None:
            trial_group = g_of_model.loc[d.model_label[d.model]].to_numpy()
            for g in np.unique(trial_group):
                m = trial_group == g
                by_group.setdefault(str(g), []).append(metrics.eer(s[m & d.target], s[m & ~d.target]))
    per = np.asarray(per)
    out = {"eer": float(per[:, 0].mean()), "eer_std": float(per[:, 0].std()), "eer_draws": per[:, 0].tolist(),
           "min_dcf": float(per[:, 1].mean()), "min_cllr": float(per[:, 2].mean()),
           "n_target": int(draws[0].target.sum()), "n_nontarget": int((~draws[0].target).sum()),
           "n_instruments": int(len(draws[0].model_label))}
    if groups is not None:
        out["by_group"] = {g: float(np.mean(v)) for g, v in sorted(by_group.items())}
    return out


def valid_curve(log_path: Path) -> list[list]:
    """[[step, valid EER], ...] from a run's log.jsonl."""
    out = []
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "valid":
                out.append([int(rec["step"]), float(rec["eer"])])
    return out


def study_parts(split: str, corpus_root: str | Path | None = None):
    """(clean, wet, real) parts of the study for ``split`` of the corpus at ``corpus_root``
    (default: the app's), real None where none were fetched."""
    from mie_core.data.corpus import Corpus, select_notes
    from mie_core.evaluation import parts as P
    from mie_core.paths import corpus_dir

    corpus = Corpus.load(corpus_root or corpus_dir())
    rows = select_notes(P.evaluation_notes(corpus, split, "test"), max_per_instrument=P.WET_NOTES_PER_INSTRUMENT,
                        seed=P.WET_SEED)
    clean = P.clean_part("clean30", rows, corpus=corpus)
    wet = P.wet_part(clean, per_instrument=None)
    return clean, wet, P.real_sources_part()


def evaluate_run(run_dir: str | Path, store=None, precision: str = "auto", probing: bool = True,
                 model: str | Path | None = None) -> dict:
    """The record of a run's model (``model``, default its ``last/``; module docstring)."""
    import yaml

    from mie_core.evaluation.embeddings import EmbeddingStore, resolve_precision
    from mie_core.explore.probing import probe, job_rng, probe_labels
    from mie_core.fileio import file_sha256
    from mie_core.nnet.checkpoint import load_encoder, load_metadata

    run_dir = Path(run_dir)
    model = Path(model) if model else run_dir / "last"
    if not (model / "model.safetensors").exists():
        raise FileNotFoundError(f"{run_dir}: no model in {model} to evaluate")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    meta = load_metadata(model)
    prov = meta.get("provenance", {})
    store = store or EmbeddingStore()
    precision = resolve_precision(precision)
    clean, wet, real = study_parts(cfg["data"]["split"], cfg["data"].get("corpus") or None)
    rec = {"run": run_dir.name, "split": cfg["data"]["split"], "seed": cfg["run"]["seed"],
           "steps": prov.get("step"), "clips": prov.get("clips_seen"), "trained_minutes": prov.get("trained_minutes"),
           "clips_per_s": prov.get("clips_per_s"), "machine": prov.get("machine"), "commit": prov.get("commit"),
           "checkpoint_sha256": file_sha256(model / "model.safetensors"), "precision": precision,
           "curve": [p for p in valid_curve(run_dir / "log.jsonl") if p[0] <= (prov.get("step") or 0)], "parts": {}}
    embs = {}
    for part in (clean, wet, real):
        if part is None:
            continue
        emb = store.get(model, part.key, part.audio, precision)
        embs[part.name] = emb
        groups = part.rows["source"].to_numpy() if "source" in part.rows else None
        name = {"clean30": "clean"}.get(part.name, "real" if part.name == "realsrc" else part.name)
        rec["parts"][name] = part_metrics(emb, part.rows["instrument_str"].to_numpy(), groups=groups)
    if probing:
        labels = probe_labels(clean.rows)
        rec["probing"] = {}
        for label in PROBE_LABELS:
            if label in labels:
                try:
                    r = probe(embs["clean30"], labels[label], label, "svm", job_rng(PROBE_SEED, label, "svm"))
                    rec["probing"][label] = {k: r.as_dict()[k] for k in (
                        "micro_f1", "macro_f1", "majority_micro_f1", "majority_macro_f1", "improvement_micro",
                        "improvement_macro", "n_classes")}
                except ValueError as err:
                    rec["probing"][label] = {"skipped": str(err)}
    enc = load_encoder(model)
    rec["bands_hz"] = np.round(enc.frontend.bands(), 2).tolist()
    return rec


def main(argv: list[str] | None = None) -> int:
    import argparse

    from mie_core.fileio import atomic_write_text

    p = argparse.ArgumentParser(prog="python -m training.study_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder")
    p.add_argument("--at", type=int, help="evaluate its model at this step (atSTEP/, written by the study)")
    p.add_argument("--averaged", action="store_true",
                   help="with --at: its averaged weights instead (avgSTEP/: training.train --export --averaged), "
                        "written to eval_avgSTEP.json")
    args = p.parse_args(argv)
    if args.averaged and not args.at:
        p.error("--averaged needs --at STEP")
    run_dir = Path(args.run_dir)
    kind = "avg" if args.averaged else "at"
    model, out = (run_dir / f"{kind}{args.at}", run_dir / f"eval_{kind}{args.at}.json") if args.at \
        else (None, run_dir / "eval.json")
    try:
        rec = evaluate_run(run_dir, model=model)
    except FileNotFoundError as err:
        print(f"study_eval: {err}", file=sys.stderr)
        return 2
    if args.at and rec["steps"] != args.at:
        print(f"study_eval: {model} holds step {rec['steps']}, not {args.at}", file=sys.stderr)
        return 2
    if args.averaged:  # the steps the weights average (training.train --export --averaged)
        rec["averaged"] = json.loads((model / "model.json").read_text())["provenance"].get("averaged")
    atomic_write_text(out, json.dumps(rec, indent=1))
    print(f"wrote {out}: clean {100 * rec['parts']['clean']['eer']:.2f} %, wet {100 * rec['parts']['wet']['eer']:.2f} %"
          + (f", real {100 * rec['parts']['real']['eer']:.2f} %" if "real" in rec["parts"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
