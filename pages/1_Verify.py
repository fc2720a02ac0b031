"""Verify: enrol an instrument (uploads or corpus notes), then accept or reject a test clip."""
import time

import numpy as np
import streamlit as st

from mie_core.data import pitch
from mie_core.explore import maps
from mie_core.service import verify, workbench
from mie_core.service.library import InstrumentLibrary
from pages.common import ui

FORMATS = ui.AUDIO_FORMATS


def show_clip(name: str, x: np.ndarray, key: str) -> None:
    with st.expander(f"{name}: {len(x) / 16000:.2f} s", expanded=False):
        st.audio(ui.mie_audio.to_wav_bytes(x), format="audio/wav")
        c1, c2 = st.columns(2)
        c1.plotly_chart(ui.waveform_figure(x), key=f"wave_{key}")
        c2.plotly_chart(ui.spectrogram_figure(x), key=f"spec_{key}")


@st.fragment
def test_section(entry, ver, state: dict, default_thr: float, cents, cent_info, coords, emb_test, test_notes,
                 all_notes) -> None:
    """Step 2, as a fragment: a new clip, the prior or the threshold reruns this section alone
    (not the enrolment above it), so a verdict comes without redrawing the whole page."""
    with ui.guard():
        st.subheader("2. Test a clip")
        c1, c2 = st.columns(2)
        test_file = c1.file_uploader(f"A clip to test (wav, flac, ogg, mp3; up to {ui.MAX_UPLOAD_S:g} s)", type=FORMATS,
                                     key="test_file", help=ui.UPLOAD_HELP)
        recorded = c2.audio_input("... or record one", key="test_rec")
        recal = None  # the user's own calibration (My instruments), where they fitted one for this system
        scorer = ver  # what scores: the model as shipped, or with its weights refitted on real notes
        if ver.can_calibrate:
            prior = st.select_slider(
                "Prior: how likely a test clip is to be the enrolled instrument, before listening", ui.PRIORS, 0.5,
                key=f"prior_{entry.name}", format_func=lambda p: f"{100 * p:g} %",
                help="The verdict accepts when the calibrated probability is at least 50 %. A lower prior asks for "
                     "stronger evidence (fewer false accepts, more misses).")
            mine = InstrumentLibrary(ver.hash)
            recal = mine.calibration
            if recal is not None:
                done = mine.calibration_info
                use = st.checkbox(
                    f"Use my calibration (My instruments: fitted on {done.get('n_target', '?')} genuine and "
                    f"{done.get('n_nontarget', '?')} impostor trials of my recordings)", True, key=f"mycal_{entry.name}",
                    help="The model's calibration comes from held-out corpus instruments, clean and through simulated "
                         "rooms. On real recordings it accepts too many impostors; a calibration fitted on your own "
                         "instruments (a few labelled notes, or your enrolments alone) fixes most of that (README, "
                         "'your own calibration').")
                recal = recal if use else None
            if recal is None and (line := ui.real_calibration_line(ver)) is not None:
                use_real = st.checkbox(
                    "Studio recordings (close microphone, quiet room): use the weights refitted on real studio notes",
                    True, key=f"realcal_{entry.name}",
                    help="On: the system's fusion weights refitted on real studio recordings of several collections; "
                         "measured on each collection with the weights fitted without it. Off: the model's own "
                         "fusion, fitted on renders clean and through simulated rooms, microphones, noise and "
                         "codecs: choose it for notes recorded in a room or on a phone, where the refitted weights "
                         "let through about a third of impostors (docs/results.md, 'real notes, source by source'). A "
                         "clip recorded here on the microphone is always scored with the model's own fusion.")
                if use_real:
                    scorer = ver.real_calibration.applied(ver)  # the fusion's weights refitted on real notes
                    st.caption(line)
            if mine.calibration is None:
                st.caption("Enrol two or more of your instruments in **My instruments**: the verdicts are then "
                           "calibrated on your own enrolments (or on a few labelled notes, if you label them there), "
                           "and this page uses that calibration.")
        else:
            lo, hi = ui.threshold_range(default_thr)
            thr = st.slider("Decision threshold (cosine)", lo, hi, round(default_thr, 3), 0.001,
                            key=f"thr_{entry.name}", help="Default: this model's threshold at the EER point on the "
                                                          f"test trials ({default_thr:.3f}).")
        source = test_file or recorded
        if source is not None and test_file is None and scorer is not ver:
            # recorded here, on this device's microphone in a room: the studio weights do not hold there
            scorer = ver
            st.caption("Recorded on this device's microphone: scored with the model's own fusion (fitted on renders "
                       "through simulated rooms and microphones), not the weights refitted on studio recordings.")
        if source is not None:
            clip = ui.read_uploads([source])
            if clip:
                name, x = clip[0]
                t0 = time.perf_counter()
                e = ver.embed([x])[0]
                own = ver.own(e)  # the model's own embedding (the map and the nearest instruments)
                st.session_state["uploaded_points"] = {name: (entry.main, own[0], x)}
                elapsed = time.perf_counter() - t0
                if state.get("enrol") is not None:
                    r = verify.verify(scorer, state["enrol"], e[None], prior if ver.can_calibrate else 0.5,
                                      recalibration=recal).iloc[0]
                    if ver.can_calibrate:
                        cal_name = ("; your calibration" if recal is not None else
                                    "; calibrated on real recordings" if scorer is not ver else "")
                        shown = f"{100 * r['probability']:.1f}"
                        accept = float(shown) >= 50.0  # decided on what is shown
                        how = (f"fused LLR {r['llr']:+.2f}, clip quality {100 * r['quality']:.0f} % clean"
                               if ver.fused else f"AS-norm score {r['score']:.2f}")
                        (st.success if accept else st.error)(
                            f"**{'ACCEPT' if accept else 'REJECT'}**: probability {shown} % that {name} is "
                            f"{state['enrol_name']} (prior {100 * prior:g} %; {how}"
                            f"{cal_name})")
                    else:
                        shown, thr_shown = f"{r['score']:.3f}", f"{thr:.3f}"
                        accept = float(shown) >= float(thr_shown)
                        (st.success if accept else st.error)(
                            f"**{'ACCEPT' if accept else 'REJECT'}**: {name} scores {shown} against "
                            f"{state['enrol_name']} (threshold {thr_shown})")
                    if r["typical"] is False:
                        st.warning("This clip is unlike anything the model was trained on: its best match among the "
                                   "training instruments is weaker than for 99 % of held-out notes. Treat the verdict "
                                   "with care (is it one note of one instrument, and not mostly noise or silence?).",
                                   icon=":material/warning:")
                    if state.get("enrol_pitch") is not None:  # how far the clip lies from the enrolment's range
                        line, warn = pitch.describe_gap(pitch.note_midi(x), state["enrol_pitch"],
                                                        ui.pitch_gap_rates(entry.name), entry.name)
                        st.caption(line)
                        if warn:
                            st.warning(warn, icon=":material/straighten:")
                    rates = ui.verdict_rates(entry.name)
                    if scorer is not ver:
                        with st.expander("How often is this verdict right? (real recordings at prior 50 %, each "
                                         "collection scored with the calibration fitted without it)"):
                            st.dataframe(ui.real_calibration_table(ver), hide_index=True)
                    elif rates is not None:
                        with st.expander("How often is this verdict right? (measured at prior 50 %, with the "
                                         "model's own calibration)"):
                            st.dataframe(rates, hide_index=True)
                else:
                    st.info("Enrol an instrument above to get a verdict.")
                st.caption(f"embedded in {1000 * elapsed:.0f} ms")
                show_clip(name, x, "test")  # after the verdict, which is what people wait for
                if ver.centroids is not None:
                    st.markdown(f"**Nearest instruments** among all {len(ver.centroids)} of the corpus, the best of "
                                "each instrument type (General MIDI program), score against each instrument's "
                                "centroid")
                    near = verify.identify(ver, e[None], top=5)[0]
                    lines = [f"**{r['type']}** · {r['instrument_family_str']} · {r['preset_name']} "
                             f"({r['soundfont']}, {r['part']})" for _, r in near.iterrows()]
                    notes_ = [ui.instrument_note(r) for _, r in near.iterrows()]
                else:
                    st.markdown("**Nearest corpus instruments** (cosine to each instrument's enrolment vector)")
                    near = workbench.nearest_instruments(e, cents, cent_info, k=5)
                    lines = [f"**{r['instrument_str']}** {r['preset_name']} · {r['instrument_family_str']} · "
                             f"{r['playing_style']}" for _, r in near.iterrows()]
                    notes_ = []
                    for _, r in near.iterrows():
                        rows = all_notes[all_notes["instrument_str"] == r["instrument_str"]]
                        notes_.append(rows.iloc[(rows["pitch"] - 60).abs().argsort().iloc[0]])
                for i, (line, score, note) in enumerate(zip(lines, near["score"], notes_)):
                    a, b, c = st.columns([5, 1, 2])
                    a.write(line)
                    b.write(f"{score:.3f}")
                    with c:
                        ui.play_button(note, key=f"near{i}", label=f"MIDI {int(note['pitch'])}")
                pos = maps.knn_place(emb_test, coords, own)
                fig = ui.scatter_map(coords, test_notes, "family", np.arange(len(test_notes)),
                                     title="Where the clip falls (t-SNE of the unseen test instruments)",
                                     extra=[(name, pos)])
                st.plotly_chart(fig, key="verify_map", config=ui.MAP_CONFIG)


with ui.guard():
    ui.page_setup("Verify an instrument")
    entry = ui.pick_model(default="mel+cqt", with_systems=True)  # the best system the cache ships
    if entry is None:
        st.stop()
    ui.require_cache()
    ver = ui.verifier(str(entry.path))
    base = ui.main_entry(entry)  # the model whose map and embeddings stand for it (a system's main member)
    # what a verdict needs besides the clip, prepared when the page opens (cached afterwards)
    # the old per-instrument centroids only for a model without the corpus-wide ones (a run trained here)
    cents, cent_info = ui.centroids(base.name, str(base.path), base.shipped) if ver.centroids is None else (None, None)
    coords = ui.map_coords(base.name, str(base.path), base.shipped, "tsne")
    emb_test = ui.embeddings(base, "test")
    all_notes = ui.all_notes()
    bench = ui.benchmark().get("parts", {}).get("test", {}).get("models", {}).get(base.name)
    if bench is None:  # a run trained here: its EER threshold on the paper's protocol, as for the shipped ones
        bench = ui.verification((base.name,), (str(base.path),), (base.shipped,))["models"][base.name]
    default_thr = float(bench["threshold"])
    state = st.session_state.setdefault("verify", {})

    if ver.can_calibrate:
        fused = (" Two models score every trial: this one, trained through simulated rooms, microphones and noise, "
                 "and its partner trained on clean renders; their calibrated scores are fused with weights that "
                 "follow how clean the clips sound." if ver.fused else "")
        if entry.system:
            fused = (f" {len(ver.layout)} models score every trial ({', '.join(entry.system['members'])}: both "
                     "front-ends, each trained through simulated rooms, microphones and noise and on clean renders); "
                     "their calibrated scores are fused with weights that follow how clean the clips sound. The map "
                     f"and the clip's place on it are {base.name}'s.")
        st.markdown("**1. Enrol** an instrument from a few of its notes (the paper uses five), "
                    "**2. test** a clip against it: the page gives the probability that the clip comes from the "
                    "enrolled instrument, from the model's calibrated scoring back-end (centred embeddings, "
                    "the test clip scored against each enrolment note and the best matches weighted most, since "
                    "an instrument sounds different across its range; AS-norm against training instruments, "
                    "scores calibrated on held-out instruments, clean and "
                    "through simulated rooms, microphones and noise)." + fused)
    else:
        st.markdown("**1. Enrol** an instrument from a few of its notes, **2. test** a clip against it: this model "
                    "has no calibrated back-end (a run trained here), so the verdict is the raw cosine score "
                    "against its EER threshold on clean renders of unseen instruments.")
    st.subheader("1. Enrol")
    src = st.radio("Enrol from", ["a corpus instrument", "my own notes"], horizontal=True, key=ui.kept("enrol_src"))
    test_notes = ui.notes("test")
    if src == "my own notes":
        files = st.file_uploader(f"Notes of one instrument (wav, flac, ogg, mp3; up to {ui.MAX_UPLOAD_S:g} s each)",
                                 type=FORMATS,
                                 accept_multiple_files=True, key="enrol_files", help=ui.UPLOAD_HELP)
        clips = ui.read_uploads(files)
        for i, (n, x) in enumerate(clips):
            show_clip(n, x, f"enrol{i}")
        enrol_name = "my instrument"
    else:
        insts = sorted(test_notes["instrument_str"].unique())
        info = test_notes.groupby("instrument_str")[["preset_name", "instrument_family_str"]].first()
        inst = st.selectbox("Unseen test instrument", insts,
                            format_func=lambda s: f"{s}: {info.loc[s, 'preset_name']} ({info.loc[s, 'instrument_family_str']})",
                            key=ui.kept("enrol_inst"))
        n_clips = st.slider("Enrolment clips", 1, 20, 5, key=ui.kept("enrol_n"))
        rows = test_notes[test_notes["instrument_str"] == inst]
        pick = rows.sample(n=min(n_clips, len(rows)), random_state=0)
        st.dataframe(pick[["note_str", "pitch", "velocity"]], hide_index=True, height=150)
        clips = None
        enrol_name = inst
    if st.button("Enrol", type="primary", key="enrol_btn"):
        if src == "my own notes":
            if not clips:
                st.warning("Upload at least one readable note first.")
            else:
                state["enrol"] = ver.embed([x for _, x in clips])
                state["enrol_name"], state["enrol_model"] = enrol_name, entry.name
                state["enrol_pitch"] = np.array([pitch.note_midi(x) for _, x in clips])
        else:
            emb = ui.system_embeddings(entry, ver, "test")
            state["enrol"] = emb[pick.index.to_numpy()]
            state["enrol_name"], state["enrol_model"] = enrol_name, entry.name
            state["enrol_rows"] = pick.index.to_numpy()
            state["enrol_pitch"] = pick["pitch"].to_numpy(dtype=float)
    if state.get("enrol") is not None and state.get("enrol_model") != entry.name:
        st.info("The enrolment was made with another model; enrol again with this one.")
        state["enrol"] = None
    if state.get("enrol") is not None:
        span = state.get("enrol_pitch")
        span = span[np.isfinite(span)] if span is not None else np.zeros(0)
        where = (f", notes from {pitch.note_label(span.min())} to {pitch.note_label(span.max())}" if span.size
                 else ", no note with a clear pitch")
        st.success(f"Enrolled: **{state['enrol_name']}** with {entry.name}{where}. Test notes far outside this range "
                   "are verified less reliably: enrol across the range you will test.")

    test_section(entry, ver, state, default_thr, cents, cent_info, coords, emb_test, test_notes, all_notes)
