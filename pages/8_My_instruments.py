"""My instruments: your own enrolled instruments, kept across restarts; score many clips against them."""
import io
import json

import numpy as np
import pandas as pd
import streamlit as st

from mie_core.data import pitch
from mie_core.data.recording import recording_features
from mie_core.service import verify
from mie_core.evaluation.embeddings import unit
from mie_core.service.library import ENROLMENT_SOURCE, InstrumentLibrary
from pages.common import ui

FORMATS = ui.AUDIO_FORMATS


with ui.guard():
    ui.page_setup("My instruments")
    entry = ui.pick_model(default=ui.DEFAULT_SYSTEM, with_systems=True)
    if entry is None:
        st.stop()
    ver = ui.verifier(str(entry.path))
    if not ver.can_calibrate:
        st.warning(f"{entry.name} has no calibrated scoring back-end (a run trained here); choose a shipped model.")
        st.stop()
    mhash = ver.hash  # both models' weights for a fused system
    lib = InstrumentLibrary(mhash)
    st.markdown(f"Instruments you enrol here are kept on this machine (`{lib.folder}`) for **{entry.name}** "
                f"(model {mhash}) and survive a restart of the app. Clips up to {ui.MAX_UPLOAD_S:g} s each.")

    st.subheader("Enrolled instruments")
    info = lib.info()
    if info:
        spans = lib.pitches()
        table = pd.DataFrame([{"instrument": n, "clips": r["n"], "range": pitch.span_label(spans[n]),
                               "added": r["added"], "files": ", ".join(r["files"])} for n, r in sorted(info.items())])
        st.dataframe(table, hide_index=True)
        gone = st.selectbox("Remove an instrument", ["(none)"] + sorted(info), key="lib_remove")
        if gone != "(none)" and st.button(f"Remove {gone}", key="lib_remove_btn"):
            lib.remove(gone)
            lib.refresh_calibration(ver)
            st.rerun()
    else:
        st.info("None yet: enrol one below from a few of its notes (five is the paper's number).")

    with st.form("enrol_form", clear_on_submit=True):
        st.markdown("**Enrol an instrument**")
        name = st.text_input("Name (e.g. 'my violin')", key="lib_name")
        files = st.file_uploader(f"Its notes (wav, flac, ogg, mp3; up to {ui.MAX_UPLOAD_S:g} s each)", type=FORMATS,
                                 accept_multiple_files=True, key="lib_files", help=ui.UPLOAD_HELP)
        if st.form_submit_button("Enrol", type="primary"):
            clips = ui.read_uploads(files)
            if not name.strip():
                st.warning("Give the instrument a name.")
            elif not clips:
                st.warning("Upload at least one readable note.")
            else:
                xs = [x for _, x in clips]
                lib.add(name.strip(), ver.embed(xs), [n for n, _ in clips], pitches=[pitch.note_midi(x) for x in xs],
                        recording=recording_features(xs))
                said = f"Enrolled {name.strip()} from {len(clips)} clip(s)."
                if done := lib.refresh_calibration(ver):
                    said += (f" Verdicts are now calibrated on your enrolments ({done['n_target']} genuine and "
                             f"{done['n_nontarget']} impostor trials).")
                # said after the rerun that lists it (a message written before st.rerun is never seen)
                st.session_state["lib_said"] = said
                st.rerun()
    if said := st.session_state.pop("lib_said", None):
        st.success(said)

    lib.refresh_calibration(ver)  # a library from before, or enrolled elsewhere: follows its enrolments
    enrolled = lib.embeddings()
    st.subheader("Score clips against every enrolled instrument")
    cal, cinfo = lib.calibration, lib.calibration_info
    mode = "own"  # how the batch is scored (verify.CONDITION_MODES): automatic where the system ships it
    from_enrolments = cinfo.get("from") == ENROLMENT_SOURCE
    if cal:
        source = ("your enrolment clips, each against the rest of its instrument and your other instruments "
                  "(refitted whenever you enrol or remove one)" if from_enrolments else "your labelled clips")
        st.caption(f"Verdicts use a calibration fitted on {source}: {cinfo.get('n_target', '?')} genuine and "
                   f"{cinfo.get('n_nontarget', '?')} impostor trials. How often it is right depends on your "
                   "recordings and how many instruments you enrol: in an outside check on studio notes of six "
                   "instruments enrolled from five notes each, 83 % of genuine and 82 % of impostor trials came out "
                   "right (the model's own calibration: 95 / 62 %).")
        if st.button("Go back to the shipped calibration", key="lib_cal_clear"):
            lib.clear_calibration()
            st.rerun()
    else:
        rc = ver.real_calibration
        if rc is not None and rc.kind == "fusion" and ver.fused:
            mode = "auto" if rc.condition is not None else "studio"  # no calibration of the user's
            st.caption(ui.real_calibration_line(ver, mode) + " For recordings of your own room or phone, calibrate "
                                                             "on your own enrolments below.")
        if len(enrolled) < 2:
            st.caption("With a second instrument enrolled, the verdicts are calibrated on your own enrolments.")
    if len(enrolled) >= 2 and not (cal and from_enrolments) and st.button(
            "Calibrate from my enrolments", key="lib_cal_enrol_btn",
            help="No labelling needed: each enrolment clip is tried against the rest of its own instrument and "
                 "against your other instruments, and the verdicts are calibrated on those trials; it is then "
                 "refitted whenever you enrol or remove an instrument."):
        try:
            done = lib.calibrate_from_enrolments(ver)
            st.session_state["lib_said"] = (f"Calibrated on {done['n_target']} genuine and {done['n_nontarget']} "
                                            "impostor trials of your enrolment clips.")
            st.rerun()
        except ValueError as err:
            st.warning(str(err))
    prior = st.select_slider("Prior that a clip is a given enrolled instrument", ui.PRIORS, 0.5,
                             key=f"lib_prior_{entry.name}", format_func=lambda p: f"{100 * p:g} %")
    batch = st.file_uploader("Clips to score", type=FORMATS, accept_multiple_files=True, key="lib_batch")
    clips = ui.read_uploads(batch)
    if clips and not enrolled:
        st.info("Enrol at least one instrument first.")
    elif clips:
        with st.spinner(f"Embedding {len(clips)} clip(s) ...", show_time=True):
            emb = ver.embed([x for _, x in clips])
        res = verify.identify_enrolled(ver, emb, enrolled, prior, recalibration=cal,
                                       test_midi=[pitch.note_midi(x) for _, x in clips], enrolled_midi=lib.pitches(),
                                       conditions=mode if cal is None else "own",
                                       recording=recording_features([x for _, x in clips]),
                                       enrolled_recording=lib.recordings())
        res.insert(0, "file", [clips[i][0] for i in res["clip"]])
        table = verify.export_table(res)
        best = table[res.groupby("clip").cumcount().to_numpy() == 0]
        st.markdown("**Best match per clip** (ranked by the calibrated LLR, the verdict's own figure)")
        st.dataframe(best.round(4), hide_index=True)
        with st.expander("Every clip against every instrument"):
            st.dataframe(table.round(4), hide_index=True)
        ui.download_csv(table, "my_instruments_scores.csv", "Download scores (CSV)", key="dl_lib_scores")
        with st.expander("What each column holds"):  # a table that wraps its sentences (a grid would cut them)
            st.table(pd.DataFrame([{"column": n, "what it holds": w} for c, (n, w) in verify.EXPORT_COLUMNS.items()
                                   if c in res]).set_index("column"))
        # the clips and the enrolments on the Embedding map (stars, labelled)
        # each clip in the colour of the instrument it matched best, each enrolment a star in its own
        matched = res.groupby("clip")["instrument"].first()
        points = {n: (entry.main, e, x, matched[i]) for i, ((n, x), e) in enumerate(zip(clips, ver.own(emb)))}
        points.update({f"★ {n}": (entry.main, ver.own(e).mean(0), None, n) for n, e in enrolled.items()})
        st.session_state["uploaded_points"] = points
        st.page_link("pages/3_Embedding_map.py", label="See them on the Embedding map", icon=":material/scatter_plot:")

        with st.expander("Calibrate on these clips (label each with the instrument it is)"):
            st.caption("Each labelled clip is scored against every enrolled instrument: its own is a genuine trial, "
                       "the others impostor trials. A calibration fitted on your recordings suits your room and "
                       "microphone better than the model's own (fitted on held-out corpus instruments).")
            labels = []
            options = ["(not enrolled)"] + sorted(enrolled)
            for i, (n, _) in enumerate(clips):
                guess = next((o for o in sorted(enrolled) if o.lower() in n.lower()), "(not enrolled)")
                labels.append(st.selectbox(n, options, index=options.index(guess), key=f"lib_label_{i}"))
            if st.button("Fit the calibration on my clips", key="lib_cal_btn"):
                keep = [i for i, lab in enumerate(labels) if lab != "(not enrolled)"]
                try:
                    done = lib.calibrate(ver, emb[keep], [labels[i] for i in keep])
                    st.success(f"Calibrated on {done['n_target']} genuine and {done['n_nontarget']} impostor trials.")
                except ValueError as err:
                    st.warning(str(err))

    if enrolled:
        st.subheader("Export")
        names = sorted(enrolled)
        vecs = unit(np.stack([ver.backend.enrol(ver.own(enrolled[n])) for n in names]))

        def npz() -> bytes:
            buf = io.BytesIO()
            np.savez(buf, names=np.array(names), enrolment=vecs, model_hash=np.array(mhash),
                     note=np.array("unit-length enrolment vectors in the model's scoring space (centred: scoring.Backend)"))
            return buf.getvalue()

        st.download_button("Download enrolment vectors (NPZ, unit length)", npz, "my_instruments.npz",
                           key="dl_lib_npz", on_click="ignore")
        st.download_button("Download the library's description (JSON)", lambda: json.dumps(
            {"model": entry.name, "model_hash": mhash, "instruments": lib.info()}, indent=1).encode(),
            "my_instruments.json", key="dl_lib_json", on_click="ignore")
