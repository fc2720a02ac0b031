"""The instrument-embedding workbench: `streamlit run app.py` (or `make run`).

The pages live in pages/ and are listed here in the order people meet them.
"""
import streamlit as st

st.set_page_config(page_title="Instrument embedding workbench", page_icon=":material/music_note:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/verify.py", title="Verify", icon=":material/mic:"),
    st.Page("pages/filter_bands.py", title="Filter bands", icon=":material/graphic_eq:"),
    st.Page("pages/embedding_map.py", title="Embedding map", icon=":material/scatter_plot:"),
    st.Page("pages/benchmark.py", title="Benchmark", icon=":material/monitoring:"),
    st.Page("pages/probing.py", title="Probing", icon=":material/biotech:"),
    st.Page("pages/compare.py", title="Mel vs CQT", icon=":material/compare:"),
    st.Page("pages/training_runs.py", title="Training runs", icon=":material/show_chart:"),
]
st.navigation(PAGES).run()
