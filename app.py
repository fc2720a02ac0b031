"""The instrument-embedding workbench: `streamlit run app.py` (or `make run`).

This is the Home page: what the workbench is, the models present with their EER, the
corpus behind them. The other pages are the files of pages/ (Streamlit's pages
directory, in the order of their number); their shared code is pages/common/ui.py.
"""
import pandas as pd
import streamlit as st

from mie_core.service import workbench
from pages.common import ui

# the EER columns, short so that the table fits the page (the caption says what each part is)
HOME_PARTS = (("test", "clean"), ("wet", "wet"), ("real", "real"))

with ui.guard():
    ui.page_setup("Instrument embedding workbench", "Home")
    st.markdown(
        "An embedding space for musical instrument sounds learned with speaker-verification methods "
        "(Shi, Cooper & Yamagishi, *IEEE/ACM TASLP* 2022): a **SincNet** front-end initialised on the Mel or the "
        "musical (CQT) scale, a **ResNet34** encoder, **learnable dictionary encoding** pooling and "
        "**angular-softmax** heads for instrument and family. It is evaluated as the paper does, by verifying "
        "*unseen* instruments: enrol an instrument from five notes, then score new notes against it; the equal "
        "error rate (EER) summarises how well unseen instruments are told apart. The Verify page decides with a "
        "calibrated probability: each shipped model fused with its clean-trained partner (mel+cqt adds the clean Mel "
        "model), the fusion's weights refitted on real studio recordings for uploads.")
    models = ui.models()
    bench = ui.benchmark()
    rows = []
    parts = bench.get("parts", {})
    for m in models:
        prov = m.meta.get("provenance", {})
        a = m.meta.get("model_args", {})
        row = {"model": m.name, "front-end": f"{a.get('init', '?').upper()}-{a.get('n_filters', '?')}"
                                            f"{' updated' if a.get('learnable') else ' fixed'}"}
        for part, label in HOME_PARTS:
            cited = ui.verify_scoring_eer(part).get(m.name) if m.shipped else None  # what the Verify page scores with
            row[f"EER {label} (%)"] = round(100 * cited[0], 2) if cited else "not measured"
        row.update({"training": workbench.training_summary(prov), "source": "shipped" if m.shipped else "trained here"})
        rows.append(row)
    for m in ui.systems():  # systems of several shipped models, one fusion (the Verify page's default)
        row = {"model": m.name, "front-end": f"{len(m.system['members'])} models fused"}  # named in the caption
        for part, label in HOME_PARTS:
            r = parts.get(part, {}).get("systems", {}).get(m.name, {}).get("fused")
            row[f"EER {label} (%)"] = round(100 * r["eer"], 2) if r else "not measured"
        rows.append({**row, "training": "its members' (below)", "source": "shipped"})
    st.subheader("Models")
    if rows:
        table = pd.DataFrame(rows)
        # a column holding a reason beside numbers is shown as text (one type per column)
        st.dataframe(table.astype({c: str for c in table.columns if c.startswith("EER")
                                   and table[c].map(type).eq(str).any()}), hide_index=True)
        st.caption("EER on unseen instruments with the calibrated scoring the Verify page uses (each shipped model "
                   "fused with its clean-trained partner, weighted by how clean the clip sounds; mel+cqt adds the "
                   "clean-trained Mel model to the cqt122 pair), measured "
                   "three ways on identical trials: clean SoundFont renders (clean); the same notes through simulated rooms, "
                   "microphones, noise and codecs never used in training (wet); and real recordings of single notes "
                   "(real: tonejs-instruments). The Benchmark page has the raw-cosine figures beside them; a run trained here "
                   "is not measured until `python -m mie_core evaluate` scores it. "
                   + " ".join(f"{m.name} fuses {', '.join(m.system['members'])}." for m in ui.systems()))
    else:
        st.warning("No model yet: train one (`python -m training.train --config training/configs/cqt122.yaml`) "
                   "or build the cache.")
    base = bench.get("parts", {}).get("test", {}).get("models", {}).get("mfcc_baseline")
    if base:
        st.caption(f"For scale: an MFCC-statistics baseline scores {100 * base['eer']:.2f} % EER on the same clean trials. "
                   "The paper reports 3.74 % (NSynth) and 1.03 % (RWC) for its Base system on *its* data; ours is a "
                   "different corpus, so the numbers are not comparable one to one.")
    corpus = next((m.meta.get("provenance", {}).get("corpus") for m in models if m.meta.get("provenance")), None)
    if corpus:
        st.subheader("Corpus")
        n_test = len(ui.notes("test")) if ui.cache().exists else 0
        counts = {m.name: (m.meta.get("provenance") or {}).get("corpus", {}).get("n_train_notes")
                  for m in ([m for m in models if m.shipped] or models)}
        train_notes = ", ".join(f"{n:,} ({name})" for name, n in counts.items() if isinstance(n, int)) or "?"
        st.markdown(
            f"Real sampled instruments rendered from SoundFonts ({', '.join(corpus.get('soundfonts', {}))}); "
            f"split **{corpus.get('split')}**: no General MIDI program of a test instrument is seen in training. "
            f"Training notes rendered: {train_notes}; the maps and benchmarks use {n_test} notes of "
            f"{ui.notes('test')['instrument_str'].nunique() if n_test else 0} unseen test instruments.")
    missing = [s for s in ("timgm6mb", "merlin", "fluidr3mono", "msgeneral")
               if s not in workbench.soundfont_paths()]
    if missing:
        st.info("Soundfonts not on this machine (their notes cannot be played, everything else works): "
                + ", ".join(missing) + ". `make data` fetches them.")
    st.subheader("Pages")
    cols = st.columns(2)
    for k, (script, label, icon, what) in enumerate(ui.PAGES[1:]):
        cols[k * 2 // len(ui.PAGES[1:])].page_link(script, label=f"{label}: {what}", icon=icon)
