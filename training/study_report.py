"""The study's report: ``docs/study/results.json`` and ``docs/study/tables.md`` from the runs present.

    python -m training.study report [--out docs/study]

Every planned run with its record at the budget (``eval_at1000.json``, :mod:`training.study_eval`), and every
run whose record already ships in ``results.json`` (study checkpoints do not ship; their
records do), becomes one record; a run still missing is named. The tables follow the paper's
shape: mean +- std over the seeds present (EER %, clean / wet / real notes), Table III for
both splits, Table II with ours, the real notes by source, Table IV's probing, and one line
per claim: the Eq. 1 z-test of the two conditions' mean EERs on the trials they share,
Holm-Bonferroni over every claim and part, and the verdict. The functions from
:func:`claim_tests` down are pure.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.study import Study, eval_path, load_study, shipped_records

from mie_core.evaluation.study import ALPHA, PARTS, condition_stats  # noqa: F401  (the report's names)
from mie_core.evaluation.study import claim_tests as _claim_tests


def collect(study: Study, results_dir: Path) -> tuple[list[dict], list[str]]:
    """(records in plan order, names of the planned runs without one). A record on disk
    replaces the shipped one of the same run; a record of another budget is left out."""
    shipped = shipped_records(results_dir)
    records, missing = [], []
    for run in study.runs():
        path = eval_path(study, run)
        rec = json.loads(path.read_text()) if path.exists() else shipped.get(run.name)
        if rec is None or rec.get("steps") != study.steps:
            missing.append(run.name)
            continue
        c = study.condition(run.condition)
        records.append({**rec, "run": run.name, "condition": run.condition, "table": c.table, "what": c.what,
                        "split": run.split, "seed": run.seed})
    return records, missing


def claim_tests(study: Study, records: list[dict], alpha: float = ALPHA) -> list[dict]:
    """:func:`mie_core.evaluation.study.claim_tests` over the study's claims."""
    claims = [{"id": c.id, "claim": c.claim, "better": c.better, "worse": c.worse, "split": c.split,
               "paper": list(c.paper) if c.paper else None} for c in study.claims]
    return _claim_tests(claims, records, alpha)


def _pm(p: dict | None) -> str:
    if not p:
        return "not run yet"
    s = f"{100 * p['mean']:.2f} +- {100 * p['std']:.2f}"
    return s if p["n"] >= 3 else f"{s} ({p['n']} seed{'s' if p['n'] > 1 else ''})"


PAPER_TABLE_III = {  # method.md: EER % (NSynth / RWC)
    "mel80_fixed": (3.19, 1.89), "mel80": (3.42, 2.26), "mel122_fixed": (3.44, 2.18), "mel122": (3.54, 1.98),
    "cqt122_fixed": (4.19, 0.96), "cqt122": (3.74, 1.03),
}
PAPER_TABLE_II = {"cqt122": 3.74, "no_augment": 7.58, "no_family": 3.14, "softmax": 4.60}


def markdown(study: Study, records: list[dict], missing: list[str], tests: list[dict]) -> str:
    n_runs = len(records) + len(missing)
    lines = [
        "# The paper's study, re-tested",
        "",
        "Written by `python -m training.study report` from the runs present; the study is declared in "
        "`recipes/study/study.yaml`. EER % on unseen instruments (ROCCH, cosine scoring, 5 enrolment notes, "
        "20 + 20 trials per instrument, 5 draws), mean +- std over the seeds present; every run "
        f"trained {study.steps:,} steps of {_batch(study)} one-second clips along the base recipe's schedule and "
        "judged there.",
        "",
        f"**{len(records)} of {n_runs} runs finished.**" + (f" Missing: {', '.join(missing)}." if missing else ""),
        "",
    ]
    for split, paper_col, title in (("program_disjoint", 0, "unseen instruments (program-disjoint split; paper: NSynth)"),
                                    ("soundfont_disjoint", 1, "unseen variations of known types (soundfont-disjoint "
                                     "split; paper: RWC)")):
        st = condition_stats(records, split)
        lines += [f"## Table III: front-ends, {title}", "",
                  "| front-end | clean | wet | real | paper |", "|---|---:|---:|---:|---:|"]
        for c in study.conditions:
            if c.table == "III" and split in c.splits:
                s = st.get(c.name, {})
                lines.append(f"| {c.what} | {_pm(s.get('clean'))} | {_pm(s.get('wet'))} | {_pm(s.get('real'))} | "
                             f"{PAPER_TABLE_III.get(c.name, ('', ''))[paper_col]} |")
        lines.append("")
    st = condition_stats(records, "program_disjoint")
    lines += ["## Table II: the system's parts (program-disjoint split), with ours", "",
              "| system | clean | wet | real | paper (NSynth) |", "|---|---:|---:|---:|---:|"]
    for c in study.conditions:
        if c.name == "cqt122" or c.table in ("II", "ours"):
            s = st.get(c.name, {})
            lines.append(f"| {c.what} | {_pm(s.get('clean'))} | {_pm(s.get('wet'))} | {_pm(s.get('real'))} | "
                         f"{PAPER_TABLE_II.get(c.name, 'not in the paper')} |")
    lines.append("")
    sources = sorted({g for s in st.values() for g in s.get("real", {}).get("by_source", {})})
    if sources:
        lines += ["## Real notes by source (program-disjoint split; EER %, mean over seeds)", "",
                  "| condition | " + " | ".join(sources) + " |", "|---|" + "---:|" * len(sources)]
        for c in study.conditions:
            bs = st.get(c.name, {}).get("real", {}).get("by_source")
            if bs:
                lines.append(f"| {c.name} | " + " | ".join(f"{100 * np.mean(bs[g]):.2f}" if g in bs else "" for g in sources)
                             + " |")
        lines.append("")
    lines += ["## The claims", "",
              "Eq. 1 z-test of the two conditions' mean EERs on one draw's trial counts, Holm-Bonferroni over "
              f"every row (alpha {ALPHA}).", "",
              "| claim | part | split | better / worse (EER %) | paper | z | p (Holm) | verdict |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for t in tests:
        seeds = "" if min(t["seeds"]) >= 3 else f" ({t['seeds'][0]} / {t['seeds'][1]} seeds)"
        paper = f"{t['paper'][0]} / {t['paper'][1]}" if t["paper"] else "not in the paper"
        lines.append(f"| {t['id']}: {t['claim']} | {t['part']} | {'SF' if t['split'] == 'soundfont_disjoint' else 'PD'} "
                     f"| {100 * t['eer_better']:.2f} / {100 * t['eer_worse']:.2f}{seeds} | {paper} | {t['z']:.2f} "
                     f"| {t['p_holm']:.3g} | {t['verdict']} |")
    if not tests:
        lines.append("| no claim has both its conditions yet | | | | | | | |")
    lines += ["", "## Table IV: probing the clean notes (RBF SVM; micro / macro F1, improvement over the majority class)",
              "", "| condition | split | family micro / macro F1 | family I (macro) | playing style micro / macro F1 | "
              "playing style I (macro) |", "|---|---|---:|---:|---:|---:|"]
    groups: dict = {}
    for r in records:
        groups.setdefault((r["condition"], r["split"]), []).append(r.get("probing") or {})
    for (cond, split), probes in groups.items():
        cells = []
        for label in ("family", "playing_style"):
            vals = [p[label] for p in probes if label in p and "micro_f1" in p[label]]
            if not vals:
                cells += ["not measured", ""]
                continue
            cells.append(f"{np.mean([v['micro_f1'] for v in vals]):.3f} / {np.mean([v['macro_f1'] for v in vals]):.3f}")
            cells.append(f"{100 * np.mean([v['improvement_macro'] for v in vals]):+.0f} %")
        lines.append(f"| {cond} | {'SF' if split == 'soundfont_disjoint' else 'PD'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _batch(study: Study) -> int:
    from training.study import run_config

    return run_config(study, study.runs()[0]).optim.batch_size


def cmd_report(args) -> int:
    from mie_core.fileio import atomic_write_text

    study = load_study(args.study, args.out_dir)
    out = Path(args.out)
    records, missing = collect(study, out)
    tests = claim_tests(study, records)
    doc = {"study": {"file": "recipes/study/study.yaml", "steps": study.steps, "seeds": list(study.seeds),
                     "recipe": list(study.recipe)},
           "runs": records, "missing": missing, "claims": tests}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out / "tables.md", markdown(study, records, missing, tests))
    print(f"{len(records)} of {len(records) + len(missing)} runs in {out / 'results.json'} and {out / 'tables.md'}")
    return 0
