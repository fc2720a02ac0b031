"""Benchmark: the paper's verification protocol on cached embeddings, for several models at once."""
import pandas as pd
import streamlit as st

from pages.common import ui


with ui.guard():
    ui.page_setup("Benchmark")
    ui.require_cache()
    summary = ui.parts_summary()
    if summary is not None:
        table, members = summary
        st.markdown("**As the cache builder measured it**, on identical trials per part: EER with raw cosine (the "
                    "paper's scoring: the enrolment notes' mean), with AS-norm (centred embeddings, each enrolment "
                    "note scored and the soft maximum kept, adaptive score normalisation against training "
                    "instruments) and fused with the clean-trained partner, and the calibrated verdict (prior 50 %). "
                    "These are the figures every page cites.")
        st.dataframe(table, hide_index=True, column_config={c: st.column_config.Column(c, help=h)
                                                            for c, h in ui.SUMMARY_HELP.items()})
        st.caption("n/a: a system of several models is scored fused only; a model without a clean partner has no "
                   "fused figure. " + " ".join(f"{n} fuses {', '.join(m)}." for n, m in members.items()))
        st.divider()
    models = ui.models()
    names = [m.label for m in models]
    default = [m.label for m in models if m.shipped] or names[:1]
    chosen = st.multiselect("Models", names, default=default, key=ui.kept("bench_models"))
    c = st.columns(6)
    parts = [p for p in ("test", "valid", "real") if ui.cache().has_notes(p)]
    part = c[0].selectbox("Notes", parts, key=ui.kept("bench_part"),
                          format_func=lambda p: {"test": "test (clean renders)", "valid": "valid (clean renders)",
                                                 "real": "real recordings"}[p])
    n_enroll = c[1].number_input("enrolment clips per instrument", 1, 20, 5, key=ui.kept("bench_enroll"))
    n_target = c[2].number_input("target trials per instrument", 1, 60, 20, key=ui.kept("bench_target"))
    n_non = c[3].number_input("non-target trials per instrument", 1, 200, 20, key=ui.kept("bench_non"))
    draws = c[4].number_input("draws", 1, 20, 5, key=ui.kept("bench_draws"))
    seed = c[5].number_input("seed", 0, 10**6, 0, key=ui.kept("bench_seed"))
    entries = [models[names.index(x)] for x in chosen]
    if not entries:
        st.info("Choose at least one model.")
        st.stop()
    res = ui.verification(tuple(e.name for e in entries), tuple(str(e.path) for e in entries),
                          tuple(e.shipped for e in entries), part, n_enroll=int(n_enroll), n_target=int(n_target),
                          n_nontarget=int(n_non), n_draws=int(draws), seed=int(seed))
    rows = [{"model": n, "EER ROCCH (%)": 100 * m["eer"], "+- (draws)": 100 * m["eer_std"],
             "95 % interval, instruments (%)": f"{100 * m['eer_ci'][0]:.2f}-{100 * m['eer_ci'][1]:.2f}",
             "EER interp. (%)": 100 * m["eer_interp"], "minDCF (0.01)": m["min_dcf"], "EER threshold": m["threshold"],
             "EER AS-norm (%)": 100 * m["asnorm"]["eer"] if "asnorm" in m else None,
             "Cllr (calibrated)": m["calibrated"]["cllr"] if "calibrated" in m else None,
             "actDCF (prior 0.5)": m["calibrated"]["act_dcf"] if "calibrated" in m else None}
            for n, m in res["models"].items()]
    table = pd.DataFrame(rows)
    st.dataframe(table.round(3), hide_index=True)
    st.caption(f"{res['n_instruments']} unseen instruments; {res['n_target']} target and {res['n_nontarget']} "
               f"non-target trials per draw, drawn without replacement; enrolment clips are never trials. "
               "ROCCH is the BOSARIS convex-hull EER the paper used; 'interp.' is the NIST/WeSpeaker one.")
    d1, d2, d3 = st.columns(3)
    with d1:
        ui.download_csv(table, "benchmark.csv", "Download table (CSV)", key="dl_bench")
    # the files are made when the button is pressed, not on every run of the page
    d2.download_button("Download trial list (Kaldi)", lambda: res["_trial_text"].encode(), "trials.txt", key="dl_trials",
                       on_click="ignore")

    def scores_text() -> bytes:
        lines = (f"{line} " + " ".join(f"{res['_scores'][n][i]:.6f}" for n in res["models"])
                 for i, line in enumerate(res["_trial_text"].splitlines()))
        return ("# enrol test label " + " ".join(res["models"]) + "\n" + "\n".join(lines) + "\n").encode()

    d3.download_button("Download scores", scores_text, "scores.txt", key="dl_scores", on_click="ignore")
    fig = ui.figures.det_figure(res)
    st.plotly_chart(fig, key="det")
    ui.download_figure(fig, "det.html", key="dl_det")
    cols = st.columns(min(3, len(res["models"])))
    for i, n in enumerate(res["models"]):
        cols[i % len(cols)].plotly_chart(ui.figures.histogram_figure(res, n), key=f"hist_{n}")
    if "significance" in res:
        st.plotly_chart(ui.figures.significance_figure(res), key="sig")
