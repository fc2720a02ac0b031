"""Embedding map: t-SNE or UMAP of the unseen test instruments, coloured, filtered, selectable."""
import numpy as np
import streamlit as st

from mie_core.explore import maps
from pages.common import ui

with ui.guard():
    ui.page_setup("Embedding map")
    ui.require_cache()
    meta = ui.notes("test")
    side = st.sidebar
    method = side.radio("Map", ["tsne", "umap"], format_func=str.upper, horizontal=True, key=ui.kept("map_method"))
    params = {}
    with side.expander("Map parameters"):
        if method == "tsne":
            params["perplexity"] = float(st.slider("perplexity", 5, 100, 30, key=ui.kept("perp")))
        else:
            params["n_neighbors"] = int(st.slider("neighbours", 5, 100, 15, key=ui.kept("nn")))
            params["min_dist"] = float(st.slider("min. distance", 0.0, 0.99, 0.1, 0.01, key=ui.kept("md")))
    colour = side.selectbox("Colour by", list(ui.COLOUR_BY), key=ui.kept("map_colour"))
    view = side.radio("Show", ["all notes", "one pitch (Fig. 4)", "some families"], key=ui.kept("map_view"))
    idx = np.arange(len(meta))
    if view == "one pitch (Fig. 4)":
        pitches = sorted(meta["pitch"].unique())
        pitch = side.select_slider("MIDI pitch", pitches, value=60 if 60 in pitches else pitches[len(pitches) // 2],
                                   key=ui.kept("map_pitch"))
        idx = maps.one_pitch(meta, int(pitch))
    elif view == "some families":
        fams = sorted(meta["instrument_family_str"].unique())
        chosen = side.multiselect("Families", fams, default=fams[:3], key=ui.kept("map_fams"))
        idx = np.flatnonzero(meta["instrument_family_str"].isin(chosen).to_numpy())
    two = side.checkbox("Second model side by side", key=ui.kept("map_two"))
    uploaded = st.session_state.get("uploaded_points", {})
    # open on the model the last uploaded clip was embedded with, so the clip is on the map
    first = ui.pick_model("Model", key="map_model_a", default=next(iter(uploaded.values()))[0] if uploaded else "cqt122")
    if first is None:
        st.stop()
    others = [m.name for m in ui.models() if m.name != first.name]
    second = None
    if two and others:
        second = ui.pick_model("Second model", key="map_model_b",
                               default="cqt122" if "cqt122" in others else others[0])
        if second.name == first.name:
            st.sidebar.info("Choose a different second model.")
            second = None
    st.caption(f"{len(idx)} notes of {meta.iloc[idx]['instrument_str'].nunique()} unseen instruments. "
               "Select points (click, box or lasso) to list and play them.")
    entries = [first] + ([second] if second else [])
    cols = st.columns(len(entries))
    selections = []
    for k, (col, entry) in enumerate(zip(cols, entries)):
        with col:
            coords = ui.map_coords(entry.name, str(entry.path), entry.shipped, method, **params)
            extra = []
            for name, (model_name, e, x, *group) in uploaded.items():
                if model_name != entry.name:  # uploaded with another model: embedded again with this one
                    if x is None:  # an enrolment (no single clip to embed again)
                        continue
                    v = ui.verifier(str(entry.path))
                    e = v.own(v.embed([x]))[0]  # the model's own part (a fused model embeds with its partner too)
                extra.append((name, maps.knn_place(ui.embeddings(entry, "test"), coords, e[None]), *group))
            # the notes selected on this model's map, kept across colourings and views and ringed
            chart_key = f"map_{k}_{entry.name}_{method}_{ui.chart_epoch('map')}"
            rows = ui.kept_selection(f"map_sel_{entry.name}", chart_key)
            fig = ui.scatter_map(coords, meta, colour, idx, title=f"{entry.name}: {method.upper()}",
                                 highlight=np.intersect1d(np.asarray(rows, dtype=int), idx), extra=extra,
                                 legend=k == len(entries) - 1)  # side by side: one legend, on the right
            st.plotly_chart(fig, key=chart_key, on_select="rerun", selection_mode=("points", "box", "lasso"),
                            config=ui.MAP_CONFIG)
            selections.append((entry, rows, coords))
            c1, c2, c3 = st.columns(3)
            with c1:
                table = meta.iloc[idx].assign(x=coords[idx, 0], y=coords[idx, 1])
                ui.download_csv(table, f"map_{entry.name}_{method}.csv", "Map (CSV)",
                                key=f"dl_csv_{entry.name}")
            with c2:
                ui.download_figure(fig, f"map_{entry.name}_{method}.html", key=f"dl_html_{entry.name}")
            with c3:
                st.download_button("Embeddings (Parquet)", data=lambda e=entry: ui.embeddings_parquet(e),
                                   file_name=f"embeddings_{entry.name}_test.parquet", key=f"dl_emb_{entry.name}",
                                   on_click="ignore", help="metadata, the 512-d embedding of every test note as the "
                                   "model gives it (column embedding, not unit length) and the same scaled to unit "
                                   "length (embedding_unit), with the model's hash")
    for entry, rows, _ in selections:
        if rows:
            st.subheader(f"Selected on {entry.name}: {len(rows)} notes")
            sel = meta.iloc[rows][["note_str", "instrument_family_str", "playing_style", "pitch", "velocity",
                                   "preset_name", "soundfont"]]
            st.dataframe(sel, hide_index=True, height=min(300, 40 + 35 * len(rows)))
            # every selected note can be played: pick one, then play it
            pick = st.selectbox(f"Play a selected note ({len(rows)})", rows, key=f"play_pick_{entry.name}",
                                format_func=lambda r: f"{meta.iloc[r]['note_str']} ({meta.iloc[r]['preset_name']})")
            ui.play_button(meta.iloc[pick], key=f"play_sel_{entry.name}", label=meta.iloc[pick]["note_str"])
            ui.clear_selection_button(f"map_sel_{entry.name}", "map", key=f"clear_sel_{entry.name}")
