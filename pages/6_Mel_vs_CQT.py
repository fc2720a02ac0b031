"""Mel vs CQT: the paper's comparison of two front-ends, on one page, for any two models."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mie_core.scoring import metrics
from pages.common import ui


with ui.guard():
    ui.page_setup("Mel vs CQT")
    ui.require_cache()
    models = ui.models()
    if len(models) < 2:
        st.warning("This page compares two models; only one is present.")
        st.stop()
    names = [m.label for m in models]
    c1, c2 = st.columns(2)
    ia = next((i for i, m in enumerate(models) if m.name == "mel122"), 0)
    ib = next((i for i, m in enumerate(models) if m.name == "cqt122"), 1)
    a = models[names.index(c1.selectbox("Model A", names, index=ia, key=ui.kept("cmp_a")))]
    b = models[names.index(c2.selectbox("Model B", names, index=ib, key=ui.kept("cmp_b")))]
    if a.name == b.name:
        st.info("Choose two different models.")
        st.stop()

    st.subheader("Verification on identical trials")
    res = ui.verification((a.name, b.name), (str(a.path), str(b.path)), (a.shipped, b.shipped))
    ma, mb = res["models"][a.name], res["models"][b.name]
    z, p = metrics.z_test(ma["eer_first_draw"], mb["eer_first_draw"], res["n_target"], res["n_nontarget"])
    k = st.columns(5)
    k[0].metric(f"{a.name} EER, raw cosine", f"{100 * ma['eer']:.2f} %",
                help="clean renders of unseen instruments, the paper's scoring; ROCCH, mean of 5 trial draws")
    k[1].metric(f"{b.name} EER, raw cosine", f"{100 * mb['eer']:.2f} %", delta=f"{100 * (mb['eer'] - ma['eer']):+.2f} pts",
                delta_color="inverse")
    k[2].metric(f"{a.name} minDCF", f"{ma['min_dcf']:.3f}")
    k[3].metric(f"{b.name} minDCF", f"{mb['min_dcf']:.3f}")
    k[4].metric("z (Eq. 1)", f"{z:.2f}", help=f"two-sided p = {p:.2g}")
    cited = ui.verify_scoring_eer("test")  # what Home and Verify cite for the same part
    if any(n in cited for n in (a.name, b.name)):
        st.caption("Raw cosine on clean renders, as the paper compares front-ends. Home and Verify cite the calibrated "
                   "scoring the Verify page uses on the same notes: " + ", ".join(
                       f"{n} {100 * cited[n][0]:.2f} % ({cited[n][1]})" for n in (a.name, b.name) if n in cited)
                   + " (Benchmark page).")
    better = a.name if ma["eer_first_draw"] < mb["eer_first_draw"] else b.name
    if p < 0.05:
        st.success(f"The difference is significant (z = {z:.2f} >= 1.96, p = {p:.2g}): {better} verifies unseen "
                   f"instruments better on these {res['n_target'] + res['n_nontarget']} trials.")
    else:
        st.info(f"The difference is not significant (z = {z:.2f}, p = {p:.2g}).")

    # one section at a time, in the paper's order (Fig. 3 bands, Fig. 4 maps, Fig. 5 probing):
    # lazy tabs run and draw only the open one, so the page opens in about half a second;
    # the two maps alone (2 x 7,090 WebGL points) take as long as the rest of the page
    t_bands, t_maps, t_probe, t_fam, t_study = st.tabs(["Filter bands", "Maps, linked selection", "Probing F1 per label",
                                                        "Per-family EER", "Over seeds (the study)"], key="cmp_tab",
                                                       on_change="rerun")
    if t_bands.open:
        with t_bands:
            st.plotly_chart(ui.bands_figure([a, b]), key="cmp_bands")

    if t_maps.open:
        with t_maps:
            st.caption("Select notes on either map (click, box or lasso): they are picked out on both, "
                       f"and ringed when there are at most {ui.RING_AT_MOST}.")
            method = st.radio("Map", ["tsne", "umap"], format_func=str.upper, horizontal=True, key=ui.kept("cmp_method"))
            colour = st.selectbox("Colour by", list(ui.COLOUR_BY), key=ui.kept("cmp_colour"))
            meta = ui.notes("test")
            idx = np.arange(len(meta))
            chart_key = f"cmp_maps_{a.name}_{b.name}_{method}_{ui.chart_epoch('cmp')}"
            linked = ui.kept_selection("cmp_linked", chart_key)
            coords = [ui.map_coords(e.name, str(e.path), e.shipped, method) for e in (a, b)]
            fig = ui.paired_maps(coords, [a.name, b.name], meta, colour, idx, highlight=np.asarray(linked, dtype=int))
            st.plotly_chart(fig, key=chart_key, on_select="rerun", selection_mode=("points", "box", "lasso"),
                            config=ui.MAP_CONFIG)
            if linked:
                st.dataframe(meta.iloc[linked][["note_str", "instrument_family_str", "playing_style", "pitch",
                                                "velocity"]], hide_index=True, height=200)
                ui.clear_selection_button("cmp_linked", "cmp", key="cmp_clear")

    if t_probe.open:
        with t_probe:
            shipped = pd.DataFrame(ui.benchmark().get("probing", []))
            if not shipped.empty and {a.name, b.name} <= set(shipped["model"]):
                clf = st.selectbox("Classifier", sorted(shipped["classifier"].unique()), key=ui.kept("cmp_clf"))
                sub = shipped[(shipped["classifier"] == clf) & shipped["model"].isin([a.name, b.name])]
                fig = go.Figure([go.Bar(x=g["label"], y=g["macro_f1"], name=m, marker_color=ui.model_colour(m)) for m, g in sub.groupby("model")])
                fig.update_layout(barmode="group", height=360, yaxis=dict(range=[0, 1], title="macro F1"),
                                  margin=dict(l=10, r=10, t=30, b=10))
                st.plotly_chart(fig, key="cmp_probe")
            else:
                st.info("Probing results for this pair are not in the cache; run them on the Probing page.")

    if t_fam.open:
        with t_fam:
            st.caption("Sorted by where the two models differ most.")
            fa, fb = ma.get("family_eer", {}), mb.get("family_eer", {})
            fam = pd.DataFrame({"family": list(fa), a.name: [100 * fa[f] for f in fa],
                                b.name: [100 * fb.get(f, np.nan) for f in fa]})
            fam["difference"] = fam[b.name] - fam[a.name]
            fam = fam.reindex(fam["difference"].abs().sort_values(ascending=False).index)
            fig = go.Figure([go.Bar(x=fam["family"], y=fam[m], name=m, marker_color=ui.model_colour(m)) for m in (a.name, b.name)])
            fig.update_layout(barmode="group", height=360, yaxis_title="EER (%)",
                              margin=dict(l=10, r=10, t=30, b=10))
            st.plotly_chart(fig, key="cmp_family")
            ui.download_csv(fam.round(3), "family_eer.csv", "Download per-family EER (CSV)", key="dl_cmp_fam")

    if t_study.open:
        with t_study:
            study = ui.study_results()
            if not study or not study.get("runs"):
                st.info("The paper's study (Table III's six front-ends, three seeds each, on identical trials) has no "
                        "finished run shipped yet: `python -m training.study run` trains it over several sessions, "
                        "`python -m training.study report` writes docs/study/results.json, which this tab reads.")
            else:
                runs = study["runs"]
                st.caption(f"{len(runs)} of {len(runs) + len(study.get('missing', []))} study runs finished; every run "
                           f"trained {study['study']['steps']:,} steps of the same recipe and judged there (raw cosine, "
                           "the paper's protocol, identical trials per split). Each point is one seed.")
                c1, c2 = st.columns(2)
                split = c1.radio("Split", ["program_disjoint", "soundfont_disjoint"], horizontal=True,
                                 key=ui.kept("study_split"), format_func={"program_disjoint": "unseen instruments",
                                                                          "soundfont_disjoint": "unseen variations"}.get)
                part = c2.radio("Notes", ["clean", "wet", "real"], horizontal=True, key=ui.kept("study_part"))
                table, fig = ui.study_front_ends(runs, split, part)
                if table.empty:
                    st.info("No finished run on this split yet.")
                else:
                    st.dataframe(table, hide_index=True)
                    st.plotly_chart(fig, key="study_points")
                claims = [c for c in study.get("claims", []) if c["split"] == split and c["part"] == part
                          and c["id"].startswith("d")]
                if claims:
                    st.dataframe(pd.DataFrame([{"claim": c["claim"], "better / worse EER (%)":
                                                f"{100 * c['eer_better']:.2f} / {100 * c['eer_worse']:.2f}",
                                                "seeds": f"{c['seeds'][0]} / {c['seeds'][1]}", "z": round(c["z"], 2),
                                                "p (Holm)": f"{c['p_holm']:.3g}", "verdict": c["verdict"]}
                                               for c in claims]), hide_index=True)
