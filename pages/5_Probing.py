"""Probing: what the embeddings of unseen instruments know (Table IV, Fig. 5)."""
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mie_core.explore import probing
from mie_core.service import workbench
from pages.common import ui


@st.cache_data(show_spinner=False)
def probe_one(name: str, path: str, shipped: bool, label: str, classifier: str, hidden: int, seed: int,
              max_notes: int) -> dict:
    entry = workbench.ModelEntry(name, Path(path), shipped)
    meta = ui.notes("test")
    idx = probing.subsample(len(meta), max_notes, np.random.default_rng(seed))  # the cache builder's subset
    labels = probing.probe_labels(meta.iloc[idx].reset_index(drop=True))
    # the job's own generator, as the cache builder's: unchanged defaults give the shipped numbers
    r = probing.probe(ui.embeddings(entry, "test")[idx], labels[label], label, classifier,
                      probing.job_rng(seed, label, classifier), hidden=hidden)
    return {"model": name, "n_notes": int(len(idx)), **r.as_dict()}


def bars(table: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure()
    for (model, clf), grp in table.groupby(["model", "classifier"], sort=False):
        fig.add_trace(go.Bar(x=grp["label"], y=grp[metric], name=f"{model} / {clf}"))
    maj = table.groupby("label", sort=False)[f"majority_{metric}"].mean()
    fig.add_trace(go.Scatter(x=maj.index, y=maj.values, mode="markers", name="majority vote",
                             marker=dict(symbol="line-ew-open", size=28, color="black", line=dict(width=2))))
    fig.update_layout(barmode="group", height=420, yaxis=dict(range=[0, 1], title=metric.replace("_", " ")),
                      margin=dict(l=10, r=10, t=30, b=10), title="Probing unseen-instrument embeddings (Fig. 5)")
    return fig


with ui.guard():
    ui.page_setup("Probing classifiers")
    st.markdown("Shallow classifiers trained on the embeddings of *unseen* instruments (probe-train / probe-valid / "
                "probe-test = 8:1:1) show what the embedding space carries that it was never trained on. "
                "I = (F1 - F1 of majority vote) / F1 of majority vote, as in Table IV.")
    ui.require_cache()
    models = ui.models()
    names = [m.label for m in models]
    all_labels = list(probing.probe_labels(ui.notes("test")))
    c1, c2, c3 = st.columns(3)
    chosen = c1.multiselect("Models", names, default=[m.label for m in models if m.shipped][:2] or names[:1],
                            key=ui.kept("probe_models"))
    labels = c2.multiselect("Labels", all_labels, default=[l for l in ("family", "source", "pitch_octave", "velocity")
                                                           if l in all_labels], key=ui.kept("probe_labels"))
    clfs = c3.multiselect("Classifiers", list(probing.CLASSIFIERS), default=["svm"], key=ui.kept("probe_clfs"))
    c4, c5 = st.columns(2)
    hidden = 300  # the MLP's size matters only where an MLP is chosen
    if "mlp" in clfs:
        hidden = c4.radio("MLP hidden size", [300, 100], horizontal=True, key=ui.kept("probe_hidden"),
                          help="300 as the paper on NSynth, 100 as on RWC")
    n_all = len(ui.notes("test"))
    if n_all > 400:
        max_notes = c5.slider("Test notes used", 200, n_all, min(2000, n_all), step=100, key=ui.kept("probe_notes"),
                              help="a seeded subset (split 8:1:1); the whole set is the paper's setting but an RBF "
                                   "SVM on thousands of 512-d embeddings takes minutes on a CPU")
    else:
        max_notes = n_all
    entries = [models[names.index(x)] for x in chosen]
    jobs = [(e, l, c) for e in entries for l in labels for c in clfs]
    shipped = {(r["model"], r["label"], r["classifier"]): r for r in ui.benchmark().get("probing", [])}
    results = st.session_state.setdefault("probe_results", {})
    if st.button(f"Run {len(jobs)} probing job(s)", type="primary", disabled=not jobs, key="probe_run"):
        st.session_state["probe_pending"] = True
    if st.session_state.get("probe_pending") and jobs:
        for e in entries:
            ui.embeddings(e, "test")  # a run trained here is embedded first (in the background, with progress)
        # finished jobs are cached: a run cut short by leaving the page resumes where it was on return
        bar = st.progress(0.0, text="probing ...")
        try:
            for k, (e, l, c) in enumerate(jobs):
                bar.progress(k / len(jobs), text=f"{e.name}: {l} / {c} (job {k + 1} of {len(jobs)})")
                key = (e.name, l, c, int(hidden), int(max_notes))
                try:
                    results[key] = probe_one(e.name, str(e.path), e.shipped, l, c, int(hidden), 0, int(max_notes))
                except ValueError as err:
                    st.warning(str(err))
        except Exception:
            st.session_state["probe_pending"] = False  # an error is reported once, not on every visit
            raise
        bar.progress(1.0, text="done")
        st.session_state["probe_pending"] = False
    rows = []
    for e, l, c in jobs:
        r = results.get((e.name, l, c, int(hidden), int(max_notes)))
        if r is None and e.shipped and int(hidden) == 300:
            r = shipped.get((e.name, l, c))
            if r is not None and r.get("n_notes", n_all) != int(max_notes):
                r = None  # the shipped results used another number of notes
        if r is not None:
            rows.append(r)
    if not rows:
        st.info("No results for this choice yet: press Run (results are kept while you browse other pages).")
        st.stop()
    table = pd.DataFrame(rows)
    missing = len(jobs) - len(rows)
    if missing:
        st.caption(f"{missing} of the chosen jobs have no result yet; press Run.")
    show = table[["model", "label", "classifier", "n_classes", "micro_f1", "macro_f1", "majority_micro_f1",
                  "improvement_micro", "improvement_macro"]]
    st.dataframe(show.round(3), hide_index=True)
    ui.download_csv(table, "probing.csv", "Download results (CSV)", key="dl_probe")
    metric = st.radio("Bars", ["macro_f1", "micro_f1"], horizontal=True, key=ui.kept("probe_metric"))
    fig = bars(table, metric)
    st.plotly_chart(fig, key="probe_bars")
    ui.download_figure(fig, "probing.html", key="dl_probe_fig")
    dropped = {r["label"]: r["dropped_classes"] for r in rows if r.get("dropped_classes")}
    if dropped:
        st.caption("Classes with fewer than 10 examples were left out: "
                   + "; ".join(f"{k}: {', '.join(v)}" for k, v in dropped.items()))
