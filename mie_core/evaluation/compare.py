"""Models from several ``evaluate`` reports, side by side on identical trials (paper Eq. 1).

An ablation trained in one session and its control in another are each evaluated with
``python -m mie_core evaluate ... --out reports/NAME``; with the same corpus, parts, seed
and draws, their trial lists are identical (``trials.txt``), so their EERs can be tested
against each other as if they had been scored in one run:

    python -m mie_core compare recipes/freepats-source/results/freepats recipes/freepats-source/results/ctrl [--parts test,wet,real]

:func:`compare_reports` is pure: loaded ``results.json`` dicts in, tables out.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mie_core.scoring.metrics import significance_matrix


def load_report(folder: str | Path) -> tuple[dict, str]:
    """(results.json, sha256 of trials.txt) of an ``evaluate`` report folder."""
    folder = Path(folder)
    for name in ("results.json", "trials.txt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name} (is it a folder written by `python -m mie_core evaluate`?)")
    return json.loads((folder / "results.json").read_text()), hashlib.sha256((folder / "trials.txt").read_bytes()).hexdigest()


def compare_reports(reports: dict[str, tuple[dict, str]], parts: list[str] | None = None,
                    alpha: float = 0.05) -> dict[str, dict]:
    """Every model of ``reports`` ({label: (results, trials sha256)}), per part.

    Returns {part: {"models": {name: {"eer", "eer_std", "eer_first_draw", "eer_draws",
    "report"}}, "n_target", "n_nontarget", "significance": {"names", "z", "p", "p_holm",
    "significant"}}}: EER (ROCCH, mean and std over the draws), and Eq. 1 between every pair
    on the first draw, Holm-corrected over the pairs, as ``evaluate`` does within one run.
    Parts default to those every report has. A model in several reports is kept once when
    its EERs agree draw for draw (the MFCC baseline), else named ``name@label`` and said in
    the part's ``notes`` (where the MFCC baseline differs, the part's audio does). Raises
    ValueError where the reports' trial lists or a part's trial counts differ.
    """
    if len(reports) < 2:
        raise ValueError("compare needs at least two reports")
    shas = {label: sha for label, (_, sha) in reports.items()}
    if len(set(shas.values())) != 1:
        raise ValueError("the reports were not scored on identical trials (trials.txt differs: "
                         + ", ".join(f"{k} {v[:12]}" for k, v in shas.items()) + "); evaluate them with the same "
                         "corpus, parts, seed and draws")
    have = [set(res.get("parts", {})) for res, _ in reports.values()]
    common = sorted(set.intersection(*have))
    parts = common if parts is None else list(parts)
    missing = [p for p in parts if p not in common]
    if missing:
        raise ValueError(f"part(s) {', '.join(missing)} not in every report (common: {', '.join(common) or 'none'})")
    out = {}
    for part in parts:
        models, counts, notes = {}, set(), []
        for label, (res, _) in reports.items():
            pr = res["parts"][part]
            counts.add((int(pr["n_target"]), int(pr["n_nontarget"])))
            for name, m in pr["models"].items():
                row = {"eer": float(m["eer"]), "eer_std": float(m.get("eer_std", 0.0)),
                       "eer_first_draw": float(m["eer_first_draw"]), "eer_draws": [float(e) for e in m["eer_draws"]],
                       "report": label}
                if name in models:
                    if np.allclose(models[name]["eer_draws"], row["eer_draws"], rtol=0, atol=1e-12):
                        continue
                    notes.append(f"{part}: {name} scores differently in {models[name]['report']} and {label}"
                                 + (" (the MFCC baseline has no weights: the part's audio differs between the "
                                    "reports, if only in low bits from another CPU's arithmetic)"
                                    if name == "mfcc_baseline" else " (another precision, or another part version)"))
                    name = f"{name}@{label}"
                models[name] = row
        if len(counts) != 1:
            raise ValueError(f"{part}: the reports' trial counts differ {sorted(counts)}")
        n_t, n_n = counts.pop()
        names = list(models)
        sig = significance_matrix([models[n]["eer_first_draw"] for n in names], n_t, n_n, alpha)
        out[part] = {"models": models, "n_target": n_t, "n_nontarget": n_n, "notes": notes,
                     "significance": {"names": names, **{k: v.tolist() for k, v in sig.items()}}}
    return out


def markdown(comparison: dict[str, dict]) -> str:
    """The comparison as Markdown: one EER table over the parts, then each part's pairs."""
    parts = list(comparison)
    names = list(dict.fromkeys(n for c in comparison.values() for n in c["models"]))
    lines = ["| model | report | " + " | ".join(parts) + " |", "|---|---|" + "---:|" * len(parts)]
    for n in names:
        cells = []
        for p in parts:
            m = comparison[p]["models"].get(n)
            cells.append(f"{100 * m['eer']:.2f} +- {100 * m['eer_std']:.2f}" if m else "")
        report = next(c["models"][n]["report"] for c in comparison.values() if n in c["models"])
        lines.append(f"| {n} | {report} | " + " | ".join(cells) + " |")
    lines += ["", "EER (ROCCH %, mean +- std over draws). Eq. 1 on the first draw, Holm-corrected within each part:", "",
              "| part | A | B | z | p (Holm) | significant |", "|---|---|---|---:|---:|---|"]
    for p, c in comparison.items():
        s = c["significance"]
        k = len(s["names"])
        for i in range(k):
            for j in range(i + 1, k):
                lines.append(f"| {p} | {s['names'][i]} | {s['names'][j]} | {s['z'][i][j]:.2f} | "
                             f"{s['p_holm'][i][j]:.2g} | {'yes' if s['significant'][i][j] else 'no'} |")
    notes = [n for c in comparison.values() for n in c.get("notes", [])]
    if notes:
        lines += ["", "Not the same scores in every report:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
