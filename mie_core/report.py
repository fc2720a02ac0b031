"""``python -m mie_core evaluate``: the paper's tables and figures for trained models.

    python -m mie_core evaluate --model runs/cqt122/best --model runs/mel122/best \\
        --corpus data/corpus --split program_disjoint --out reports/test

Embeds the evaluation notes of the split once per model (cached under
``data/embeddings`` by checkpoint hash and corpus fingerprint), adds the MFCC
statistics baseline, scores every model on the same trials
(:func:`mie_core.evaluation.compare_models`), runs the probing classifiers, and
writes into ``--out``:

* ``results.json``: every number behind every table and figure;
* ``tables.md``: Tables II-III (EER per condition, mean +- std), per-model detail,
  Table IV (probing F1 and relative improvement over majority);
* ``det.png``, ``significance.png``, ``tsne_family.png``, ``probing.png``;
* ``trials.txt`` / ``enroll.txt`` (Kaldi style) and ``scores_<model>.txt`` of the
  first draw, so another tool can re-score the same trials.

This module does the file I/O; the computations are the pure functions of
:mod:`mie_core.evaluation`, :mod:`mie_core.probing` and :mod:`mie_core.maps`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import baseline, evaluation, maps, probing, trials
from .corpus import Corpus, default_corpus_dir, select_notes
from .model import InstrumentEncoder, cpu_has_bf16
from .soundfonts import data_dir

BASELINE = "mfcc_baseline"


def evaluation_notes(corpus: Corpus, split: str = "program_disjoint", part: str = "test") -> pd.DataFrame:
    """The notes every evaluation uses: all instruments of the part, pitches C and F# of
    every octave, all velocities (about 70 notes per instrument)."""
    return select_notes(corpus.split_notes(split, part), pitch_step=evaluation.EVAL_PITCH_STEP, pitch_offset=0)


def model_hash(path: str | Path) -> str:
    path = Path(path)
    weights = path / "model.safetensors" if path.is_dir() else path
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def rows_hash(rows: pd.DataFrame) -> str:
    return hashlib.sha256("\n".join(rows["note_str"]).encode()).hexdigest()[:12]


def parse_model_arg(arg: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named after its run: config run.name, or the folder)."""
    if "=" in arg:
        name, path = arg.split("=", 1)
        return name, Path(path)
    path = Path(arg)
    folder = path if path.is_dir() else path.parent
    try:
        meta = json.loads((folder / "model.json").read_text())
        run = meta["provenance"]["config"]["run"]
        return f"{run['name']}_s{run['seed']}", path
    except (OSError, KeyError, ValueError):
        return folder.name, path


def condition_of(path: Path) -> str:
    folder = path if path.is_dir() else path.parent
    try:
        return json.loads((folder / "model.json").read_text())["provenance"]["config"]["run"]["name"]
    except (OSError, KeyError, ValueError):
        return folder.name


def embed_notes(model_path: str | Path, corpus: Corpus, rows: pd.DataFrame, audio_fn: Callable[[], np.ndarray],
                cache_dir: Path | None = None, progress=None, bf16: bool = False) -> np.ndarray:
    """Embeddings of ``rows`` by a model, cached by (model hash, corpus fingerprint, rows, precision)."""
    cache_dir = Path(cache_dir) if cache_dir else data_dir() / "embeddings"
    key = f"{model_hash(model_path)}_{corpus.fingerprint}_{rows_hash(rows)}_{'bf16' if bf16 else 'fp32'}.npy"
    path = cache_dir / key
    if path.exists():
        return np.load(path)
    enc = InstrumentEncoder.from_checkpoint(model_path)
    emb = enc.embed(audio_fn(), batch_size=16, progress=progress, bf16=bf16)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb


def run_evaluation(models: list[str], corpus_dir: str | Path | None, split: str = "program_disjoint",
                   part: str = "test", out: str | Path = "reports/eval", seed: int = 0, n_draws: int = 5,
                   probing_on: bool = True, classifiers=probing.CLASSIFIERS, progress=None, log=None,
                   cache_dir: Path | None = None, probe_notes: int | None = 2000) -> dict:
    """Run the whole evaluation and write the report (module docstring). Returns results."""
    log = log or (lambda m: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus.load(corpus_dir or default_corpus_dir())
    rows = evaluation_notes(corpus, split, part)
    if rows.empty:
        raise ValueError(f"the {split} split has no {part} notes")
    log(f"{len(rows)} evaluation notes of {rows['instrument_str'].nunique()} {part} instruments")
    audio_cache: dict[str, np.ndarray] = {}

    def audio() -> np.ndarray:
        if "a" not in audio_cache:
            log("rendering the evaluation notes")
            audio_cache["a"] = corpus.render(rows, progress=(lambda d, t: progress("render", d, t)) if progress else None)
        return audio_cache["a"]

    bf16 = cpu_has_bf16()  # as the cache builder: bf16 autocast where the CPU has it
    named = [parse_model_arg(m) for m in models]
    if len({n for n, _ in named}) != len(named):
        raise ValueError("two models have the same name; name them with NAME=PATH")
    embeddings: dict[str, np.ndarray] = {}
    for name, path in named:
        log(f"embedding with {name} ({path})")
        embeddings[name] = embed_notes(path, corpus, rows, audio, cache_dir,
                                       (lambda d, t, n=name: progress(f"embed {n}", d, t)) if progress else None, bf16)
    embeddings[BASELINE] = baseline.mfcc_stats(audio())
    conditions = {name: condition_of(path) for name, path in named}
    conditions[BASELINE] = BASELINE
    log("scoring trials")
    res = evaluation.compare_models(embeddings, rows["instrument_str"].to_numpy(),
                                    rows["instrument_family_str"].to_numpy(), seed=seed, n_draws=n_draws)
    first: trials.Trials = res.pop("_trials")
    scores = res.pop("_scores")
    table = evaluation.condition_table(res, conditions)

    probe_rows, skipped = [], {}
    if probing_on:
        pidx = probing.subsample(len(rows), probe_notes, np.random.default_rng(seed))
        labels = probing.probe_labels(rows.iloc[pidx].reset_index(drop=True))
        for name, emb in embeddings.items():
            log(f"probing {name} on {len(pidx)} notes")
            rs, sk = probing.run_probes(emb[pidx], labels, np.random.default_rng(seed), classifiers,
                                        progress=(lambda d, t, msg, n=name: progress(f"probe {n}", d, t)) if progress else None)
            probe_rows += [{"model": name, **r.as_dict()} for r in rs]
            skipped.update(sk)
    probe_table = pd.DataFrame(probe_rows)

    log("t-SNE at one pitch")
    idx = maps.one_pitch(rows)
    tsne = {}
    for name, emb in embeddings.items():
        if len(idx) >= 5:
            tsne[name] = maps.fit_map(emb[idx], "tsne", seed=seed).coords
    res["embed_bf16"] = bf16
    _write(out, res, table, probe_table, skipped, first, scores, rows, idx, tsne, conditions, split, part)
    return res


def _write(out: Path, res, table, probe_table, skipped, first, scores, rows, idx, tsne, conditions, split, part):
    from . import plots

    ids = rows["note_str"].to_numpy()
    trial_text, enroll_text = trials.trials_to_text(first, ids)
    (out / "trials.txt").write_text(trial_text)
    (out / "enroll.txt").write_text(enroll_text)
    for name, s in scores.items():
        lines = [f"{l} {sc:.6f}" for l, sc in zip(trial_text.splitlines(), s)]
        (out / f"scores_{name}.txt").write_text("\n".join(lines) + "\n")
    full = {
        "split": split, "part": part, "n_notes": int(len(rows)), "verification": res, "conditions": conditions,
        "table": table.to_dict(orient="records"), "probing": probe_table.to_dict(orient="records"),
        "probing_skipped": skipped,
        "tsne_family": {n: {"coords": c.tolist(), "note_str": ids[idx].tolist(),
                            "family": rows["instrument_family_str"].to_numpy()[idx].tolist(),
                            "pitch": int(rows["pitch"].iloc[idx[0]]) if len(idx) else None} for n, c in tsne.items()},
    }
    (out / "results.json").write_text(json.dumps(full, indent=1, default=json_default))
    (out / "tables.md").write_text(markdown_tables(full))
    figs = {"det.png": plots.det_figure(res)}
    if "significance" in res:
        figs["significance.png"] = plots.significance_figure(res)
    for name, c in tsne.items():
        figs[f"tsne_family_{name}.png"] = plots.map_figure(
            c, rows["instrument_family_str"].to_numpy()[idx],
            f"{name}: t-SNE of unseen instruments at MIDI {full['tsne_family'][name]['pitch']}")
    if not probe_table.empty:
        figs["probing.png"] = plots.probing_figure(probe_table)
    for fname, fig in figs.items():
        fig.savefig(out / fname, dpi=110)
        plots.plt.close(fig)


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(type(o))


def markdown_tables(full: dict) -> str:
    """Tables II-IV in Markdown from a results.json dictionary."""
    v = full["verification"]
    lines = [f"# Evaluation on the {full['split']} split ({full['part']}): {v['n_instruments']} unseen instruments, "
             f"{full['n_notes']} notes", "",
             f"Protocol: {v['protocol']['n_enroll']} enrolment clips averaged, {v['protocol']['n_target']} target and "
             f"{v['protocol']['n_nontarget']} non-target trials per instrument, cosine scores, drawn without "
             f"replacement; {v['n_target']} target / {v['n_nontarget']} non-target trials per draw, "
             f"{v['n_draws']} draws (seed {v['seed']}).", "",
             "## EER per condition (Tables II-III shape)", "",
             "| condition | models | EER (%) | std over | minDCF(0.01) |", "|---|---:|---:|---|---:|"]
    for r in full["table"]:
        lines.append(f"| {r['condition']} | {r['models']} | {r['eer_percent']:.2f} +- {r['std_percent']:.2f} | "
                     f"{r['std_over']} | {r['min_dcf']:.3f} |")
    lines += ["", "## Per model", "",
              "| model | EER ROCCH (%) | 95 % interval (instruments) | EER interp (%) | minDCF | threshold |",
              "|---|---:|---|---:|---:|---:|"]
    for name, m in v["models"].items():
        lines.append(f"| {name} | {100 * m['eer']:.2f} +- {100 * m['eer_std']:.2f} | "
                     f"{100 * m['eer_ci'][0]:.2f}-{100 * m['eer_ci'][1]:.2f} | {100 * m['eer_interp']:.2f} | "
                     f"{m['min_dcf']:.3f} | {m['threshold']:.3f} |")
    if "significance" in v:
        s = v["significance"]
        lines += ["", "## Significance (Eq. 1, Holm-Bonferroni over all pairs, alpha 0.05, first draw)", "",
                  "| A | B | z | p (Holm) | significant |", "|---|---|---:|---:|---|"]
        for i, a in enumerate(s["names"]):
            for j in range(i + 1, len(s["names"])):
                lines.append(f"| {a} | {s['names'][j]} | {s['z'][i][j]:.2f} | {s['p_holm'][i][j]:.2g} | "
                             f"{'yes' if s['significant'][i][j] else 'no'} |")
    if full["probing"]:
        lines += ["", "## Probing (Table IV shape): F1 on probe-test and relative improvement over majority", "",
                  "| model | label | classifier | classes | micro F1 | macro F1 | I micro | I macro |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in full["probing"]:
            lines.append(f"| {r['model']} | {r['label']} | {r['classifier']} | {r['n_classes']} | {r['micro_f1']:.3f} | "
                         f"{r['macro_f1']:.3f} | {r['improvement_micro']:+.2f} | {r['improvement_macro']:+.2f} |")
    if full.get("probing_skipped"):
        lines += ["", "Labels not probed: " + "; ".join(f"{k}: {v}" for k, v in full["probing_skipped"].items())]
    return "\n".join(lines) + "\n"
