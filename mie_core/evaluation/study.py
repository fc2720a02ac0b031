"""The paper's study read back: its runs' records aggregated by condition, and its claims tested.

A study (``recipes/study/study.yaml``, run by ``python -m training.study``) evaluates every run
on shared trials and ships one record per run in ``docs/study/results.json``. These pure
functions turn records into what the report and the pages show: per condition and part, the
mean and spread of EER over seeds (:func:`condition_stats`), and per claim the paper's Eq. 1
z-test of two conditions' mean EERs with Holm-Bonferroni over every claim and part
(:func:`claim_tests`).

>>> recs = [{"condition": c, "split": "program_disjoint", "parts": {"clean": {"eer": e, "n_target": 500,
...          "n_nontarget": 500}}} for c, e in (("a", 0.05), ("a", 0.07), ("b", 0.20))]
>>> st = condition_stats(recs, "program_disjoint")
>>> round(st["a"]["clean"]["mean"], 3), st["a"]["clean"]["n"]
(0.06, 2)
>>> claim_tests([{"id": "x", "claim": "a beats b", "better": "a", "worse": "b", "split": "program_disjoint"}],
...             recs)[0]["verdict"]
'reproduced'
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PARTS = ("clean", "wet", "real")
SPLITS = ("program_disjoint", "soundfont_disjoint")
ALPHA = 0.05


def load_results(path: str | Path) -> dict | None:
    """``docs/study/results.json`` (None where the study has shipped nothing yet)."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def condition_stats(records: list[dict], split: str) -> dict:
    """condition -> part -> {"mean", "std", "n", "values"} of EER (fractions) over the seeds
    present, with ``by_source`` (source -> EERs) for the real part and the trial counts of
    one draw (``n_target``, ``n_nontarget``)."""
    out: dict = {}
    for r in records:
        if r["split"] != split:
            continue
        c = out.setdefault(r["condition"], {})
        for part, m in r["parts"].items():
            p = c.setdefault(part, {"values": [], "by_source": {}})
            p["values"].append(m["eer"])
            p["n_target"], p["n_nontarget"] = m["n_target"], m["n_nontarget"]
            for g, e in (m.get("by_group") or {}).items():
                p["by_source"].setdefault(g, []).append(e)
    for c in out.values():
        for p in c.values():
            v = np.asarray(p["values"])
            p.update(mean=float(v.mean()), std=float(v.std()), n=int(v.size))
    return out


def claim_tests(claims: list[dict], records: list[dict], alpha: float = ALPHA) -> list[dict]:
    """One row per (claim, part) with both conditions present: their mean EERs over seeds, Eq.
    1's z and p on one draw's trial counts (the trials every run shares), the Holm-adjusted p
    over all rows, and the verdict: "reproduced" (the paper's better condition significantly
    better), "reversed" (significantly worse) or "not significant". ``claims``: dicts with
    ``id``, ``claim``, ``better``, ``worse``, ``split`` and optionally ``paper`` (its EERs, %)."""
    from mie_core.scoring.metrics import holm_bonferroni, z_test

    stats = {s: condition_stats(records, s) for s in SPLITS}
    rows = []
    for cl in claims:
        st = stats[cl["split"]]
        for part in PARTS:
            b, w = st.get(cl["better"], {}).get(part), st.get(cl["worse"], {}).get(part)
            if not b or not w:
                continue
            z, p = z_test(b["mean"], w["mean"], b["n_target"], b["n_nontarget"])
            rows.append({"id": cl["id"], "claim": cl["claim"], "part": part, "split": cl["split"],
                         "better": cl["better"], "worse": cl["worse"], "eer_better": b["mean"], "eer_worse": w["mean"],
                         "seeds": [b["n"], w["n"]], "z": z, "p": p, "paper": cl.get("paper")})
    if rows:
        reject, adj = holm_bonferroni([r["p"] for r in rows], alpha)
        for r, rej, a in zip(rows, reject, adj):
            r["p_holm"] = float(a)
            r["verdict"] = ("reproduced" if r["eer_better"] < r["eer_worse"] else "reversed") if rej else "not significant"
    return rows
