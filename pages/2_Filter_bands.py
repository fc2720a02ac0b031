"""Filter bands: the learned sinc filters against their initialisation."""
import numpy as np
import pandas as pd
import streamlit as st

from mie_core.nnet.sincconv import hz_to_midi
from mie_core.service import workbench
from pages.common import ui

with ui.guard():
    ui.page_setup("Filter bands")
    st.markdown("Each SincNet filter is a band-pass defined by two learnable numbers, its low cut-off and its "
                "bandwidth. Dotted: the initialisation (Mel or one filter per MIDI note); solid: after training.")
    models = ui.models()
    if not models:
        st.error("No model found.")
        st.stop()
    names = [m.label for m in models]
    defaults = [m.label for m in models if m.name in ("mel122", "cqt122")] or names[:2]
    chosen = st.multiselect("Models (two to compare, e.g. Mel vs CQT)", names, default=defaults[:2], max_selections=2,
                            key=ui.kept("bands_models"))
    entries = [models[names.index(c)] for c in chosen]
    if not entries:
        st.info("Choose a model.")
        st.stop()
    show = st.segmented_control("Show", ["initial", "learned"], selection_mode="multi", default=["initial", "learned"],
                                key=ui.kept("bands_show")) or ["initial", "learned"]
    fig = ui.bands_figure(entries, tuple("init" if s_ == "initial" else s_ for s_ in show))
    st.plotly_chart(fig, key="bands")
    for e in entries:
        if (note := workbench.nyquist_note(ui.encoder(str(e.path)).frontend)) is not None:
            st.caption(f"{e.name}: {note}")
    ui.download_figure(fig, "filter_bands.html", key="dl_bands")
    rows = []
    for e in entries:
        s = ui.encoder(str(e.path)).frontend
        learned, init = s.bands(), s.init_bands.cpu().numpy()
        shift = np.abs(hz_to_midi(np.sqrt(learned.prod(1))) - hz_to_midi(np.sqrt(init.prod(1))))
        rows.append({"model": e.name, "filters": s.n_filters, "init": s.init, "learnable": s.learnable,
                     "median centre shift (semitones)": round(float(np.median(shift)), 3),
                     "max centre shift (semitones)": round(float(shift.max()), 3)})
    st.dataframe(rows, hide_index=True)
    cols = st.columns(len(entries))
    for col, e in zip(cols, entries):
        with col:
            n = ui.encoder(str(e.path)).frontend.n_filters
            pick = st.multiselect(f"{e.name}: filters to inspect", list(range(n)),
                                  default=[n // 4, n // 2, 3 * n // 4], key=f"resp_{e.name}")
            if pick:
                st.plotly_chart(ui.response_figure(e, pick), key=f"respfig_{e.name}")
            learned = ui.encoder(str(e.path)).frontend.bands()
            ui.download_csv(
                pd.DataFrame({"filter": np.arange(n), "low_hz": learned[:, 0], "high_hz": learned[:, 1]}),
                f"bands_{e.name}.csv", "Download bands (CSV)", key=f"dlb_{e.name}")
