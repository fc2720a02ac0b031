"""The Streamlit pages' logic with streamlit.testing (AppTest) on a tiny cache."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
PAGES = ["1_Verify", "2_Filter_bands", "3_Embedding_map", "4_Benchmark", "5_Probing", "6_Mel_vs_CQT", "7_Training_runs"]


@pytest.fixture
def app(tiny_cache, monkeypatch):
    monkeypatch.setenv("MIE_CACHE", str(tiny_cache["cache"]))
    monkeypatch.setenv("MIE_RUNS", str(tiny_cache["runs"]))
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page("app.py" if page == "home" else f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e.value for e in at.error], [e.value for e in at.error]
    return at


def decode(values) -> np.ndarray:
    """A Plotly array as sent to the browser (a list, or Plotly's base64 typed array with its shape)."""
    if isinstance(values, dict):
        import base64

        out = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
        return out.reshape([int(n) for n in str(values["shape"]).split(",")]) if "shape" in values else out
    return np.asarray(values)


def n_points(values) -> int:
    return len(decode(values))


def selected_per_panel(spec: dict) -> dict:
    """Points shown as selected (Plotly's ``selectedpoints``), summed over the traces of each panel."""
    out = {}
    for t in spec["data"]:
        if t["name"] != "selected" and "selectedpoints" in t:
            out[t.get("xaxis", "x")] = out.get(t.get("xaxis", "x"), 0) + n_points(t["selectedpoints"])
    return out


@pytest.mark.parametrize("page", ["home"] + PAGES)
def test_every_page_renders_without_error(app, page):
    at = goto(app, page)
    assert at.title and at.title[0].value


def test_home_lists_the_models_with_their_eer(app, tiny_cache):
    at = goto(app, "home")
    df = at.dataframe[0].value
    bench = json.loads((tiny_cache["cache"] / "results" / "benchmark.json").read_text())
    # the EER of the scoring the Verify page uses, said per part: clean renders and the wet part;
    # cqt_tiny is fused with a partner (the fused system's EER), mel_tiny is not (AS-norm)
    for name, kind in (("cqt_tiny", "fused"), ("mel_tiny", "asnorm")):
        row = df[df["model"] == name].iloc[0]
        for part, column in (("test", "EER clean (%)"), ("wet", "EER wet (%)")):
            eer = bench["parts"][part]["models"][name][kind]["eer"]
            assert float(row[column]) == pytest.approx(100 * eer, abs=0.01)  # text where a run trained here says why
    runs_here = df[df["source"] == "trained here"]
    assert (runs_here["EER clean (%)"] == "not measured").all()
    assert not df.isna().any().any() and not df.astype(str).isin(["None", "nan", "<NA>"]).any().any()
    assert len(df.columns) <= 7  # fits the page: no column behind a horizontal scroll
    assert "mfcc" in " ".join(c.value for c in at.caption).lower()
    intro = " ".join(m.value for m in at.markdown)  # how Verify decides, as it does: no bare cosine
    assert "calibrated" in intro and "by cosine score" not in intro
    assert df[df["model"] != "tiny_sys"]["training"].str.endswith("steps, CPU").all()  # trained here, on no GPU
    text = " ".join(m.value for m in at.markdown)  # the training notes each model rendered, by name
    for name in ("cqt_tiny", "mel_tiny"):
        meta = json.loads((tiny_cache["cache"] / "models" / name / "model.json").read_text())
        assert f"{meta['provenance']['corpus']['n_train_notes']:,} ({name})" in text
    row = df[df["model"] == "tiny_sys"].iloc[0]  # the system of three models, from its own results
    assert float(row["EER clean (%)"]) == pytest.approx(
        100 * bench["parts"]["test"]["systems"]["tiny_sys"]["fused"]["eer"], abs=0.01)


def test_verify_enrols_a_corpus_instrument(app, tiny_cache):
    at = goto(app, "1_Verify")
    at.slider(key="enrol_n").set_value(3).run()
    at.button(key="enrol_btn").click().run()
    assert any("Enrolled" in s.value for s in at.success)
    state = at.session_state["verify"]
    # the enrolment keeps its clips' raw embeddings (the fused cqt_tiny's and its partner's side
    # by side); the model's back-end makes the vector
    assert state["enrol"].ndim == 2 and state["enrol"].shape[0] == 3 and np.isfinite(state["enrol"]).all()
    width = sum(np.load(tiny_cache["cache"] / "embeddings" / f"{m}_test.npy", mmap_mode="r").shape[1]
                for m in ("cqt_tiny", "cqt_tiny_clean"))
    assert state["enrol_model"] == "cqt_tiny" and state["enrol"].shape[1] == width


def test_verify_offers_a_system_of_several_models(app, tiny_cache):
    """The cache's system (tiny_sys: cqt_tiny, a member of its own, cqt_tiny's partner and mel_tiny) is offered on the
    Verify page, not on the map; a corpus enrolment keeps every member's embeddings side by
    side (main first), and the page names the members and the map's model."""
    at = goto(app, "1_Verify")
    label = "tiny_sys (shipped: 4 models fused)"
    assert label in at.selectbox(key="model").options
    at.selectbox(key="model").set_value(label).run()
    assert not at.exception and not at.error
    assert any("cqt_tiny, cqt_tiny/extra, cqt_tiny/clean, mel_tiny" in m.value and "cqt_tiny's" in m.value for m in at.markdown)
    at.slider(key="enrol_n").set_value(3).run()
    at.button(key="enrol_btn").click().run()
    state = at.session_state["verify"]
    emb = {m: np.load(tiny_cache["cache"] / "embeddings" / f"{m}_test.npy").astype(np.float32)
           for m in ("cqt_tiny", "cqt_tiny_extra", "cqt_tiny_clean", "mel_tiny")}
    assert state["enrol_model"] == "tiny_sys" and state["enrol"].shape == (3, sum(e.shape[1] for e in emb.values()))
    rows = state["enrol_rows"]
    np.testing.assert_array_equal(state["enrol"], np.concatenate([emb[m][rows] for m in emb], axis=1))
    at = goto(app, "3_Embedding_map")
    assert label not in at.selectbox(key="map_model_a").options  # maps show models


def test_verify_prior_belongs_to_the_model(app):
    """The decision setting follows a model switch instead of keeping the old model's value."""
    at = goto(app, "1_Verify")
    at.selectbox(key="model").set_value("cqt_tiny (shipped)").run()
    at.select_slider(key="prior_cqt_tiny").set_value(0.2).run()
    at.selectbox(key="model").set_value("mel_tiny (shipped)").run()
    assert at.select_slider(key="prior_mel_tiny").value == 0.5
    assert not at.exception and not at.error


def test_map_colourings_and_views(app):
    at = goto(app, "3_Embedding_map")
    for colour in ("source", "playing style", "pitch", "soundfont"):
        at.selectbox(key="map_colour").set_value(colour).run()
        assert not at.exception
    at.radio(key="map_view").set_value("one pitch (Fig. 4)").run()
    assert not at.exception and "notes of" in at.caption[0].value
    at.radio(key="map_method").set_value("tsne").run()
    at.checkbox(key="map_two").check().run()
    assert not at.exception and not at.error


def test_map_selection_is_kept_across_colourings_until_cleared(app):
    at = goto(app, "3_Embedding_map")
    name = at.selectbox(key="map_model_a").value.split(" ")[0]
    # what a lasso around notes 3 and 8 sends back (Streamlit's plotly selection state; a real
    # browser serialises the binary customdata of a point as an object keyed "0", "1", "2")
    at.session_state[f"map_0_{name}_tsne_0"] = {"selection": {"points": [{"customdata": {"0": 3, "1": 60, "2": 25}},
                                                                         {"customdata": [8, 60, 50]}],
                                                              "point_indices": [], "box": [], "lasso": []}}
    for colour in ("family", "pitch"):
        # a new colouring is a new figure, whose selection Streamlit resets: the page keeps its own
        at.selectbox(key="map_colour").set_value(colour).run()
        assert [s.value for s in at.subheader] == [f"Selected on {name}: 2 notes"], colour
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        ringed = [t for t in spec["data"] if t["name"] == "selected"]
        assert len(ringed) == 1 and n_points(ringed[0]["x"]) == 2, colour
        assert selected_per_panel(spec) == {"x": 2}, colour
    at.button(key=f"clear_sel_{name}").click().run()
    assert not at.subheader and at.session_state[f"map_sel_{name}"] == []
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [t for t in spec["data"] if t["name"] == "selected"] and selected_per_panel(spec) == {}


def test_a_run_trained_here_is_embedded_and_mapped_in_the_background(app, tiny_cache, tmp_path, monkeypatch):
    from pages.common import ui

    # from scratch: no job in this process, an empty embedding store (the cache builder's
    # embeddings of this checkpoint stay where they are, for the other tests)
    ui.jobs.clear()
    monkeypatch.setenv("MIE_EMBEDDINGS", str(tmp_path))
    at = goto(app, "3_Embedding_map")
    at.selectbox(key="map_model_a").set_value("mel_tiny (run) (trained here)").run()
    assert not at.exception

    def shown():  # what the page says of the job: a progress bar, or a note while it has no total yet
        return [p.proto.text for p in at.get("progress")] + [i.value for i in at.info]

    first = shown()
    assert first and first[0].startswith("Embedding the test notes with mel_tiny (run)")  # shown, not blocking
    deadline = time.monotonic() + 300
    while not at.get("plotly_chart") and time.monotonic() < deadline:  # the page's own poll, done by hand
        time.sleep(0.5)
        at.run()
        assert not at.exception and not at.error
    assert at.get("plotly_chart"), shown()  # then its t-SNE map (a run has no shipped map), also in a job
    from mie_core.service import workbench

    assert at.caption[0].value.startswith(f"{len(workbench.Cache().notes('test'))} notes")


def test_verify_with_a_run_trained_here_uses_its_own_eer_threshold(app, tiny_cache):
    import streamlit as st

    from pages.common import ui

    ui.jobs.clear()  # nothing left from a test that embedded into a store of its own
    st.cache_data.clear()
    at = goto(app, "1_Verify")
    at.selectbox(key="model").set_value("mel_tiny (run) (trained here)").run()
    deadline = time.monotonic() + 300
    while (at.get("progress") or at.info) and time.monotonic() < deadline:  # embeddings and map, in the background
        time.sleep(0.5)
        at.run()
    assert not at.exception and not at.error
    # the run is the checkpoint shipped as mel_tiny: the same threshold as the cache's (same trials, seed, draws)
    bench = json.loads((tiny_cache["cache"] / "results" / "benchmark.json").read_text())
    shipped = bench["parts"]["test"]["models"]["mel_tiny"]["threshold"]
    # the app reads the embeddings the cache builder stored (one store, one key): identical
    # arrays, so the same threshold to the digit, on any CPU and any thread count
    assert at.slider(key="thr_mel_tiny (run)").value == round(shipped, 3)


def test_choices_survive_a_visit_to_another_page(app):
    at = goto(app, "3_Embedding_map")
    at.selectbox(key="map_colour").set_value("pitch").run()
    at.radio(key="map_view").set_value("one pitch (Fig. 4)").run()
    goto(at, "4_Benchmark")
    at.number_input(key="bench_draws").set_value(2).run()
    goto(at, "3_Embedding_map")
    assert at.selectbox(key="map_colour").value == "pitch"
    assert at.radio(key="map_view").value == "one pitch (Fig. 4)"
    goto(at, "4_Benchmark")
    assert at.number_input(key="bench_draws").value == 2


def test_benchmark_matches_the_cache_on_the_same_trials(app, tiny_cache):
    at = goto(app, "4_Benchmark")
    at.number_input(key="bench_draws").set_value(2).run()
    # the first table is the cache's clean / wet / real summary; then the protocol's own
    df = next(d.value for d in at.dataframe if "EER ROCCH (%)" in d.value.columns).set_index("model")
    bench = json.loads((tiny_cache["cache"] / "results" / "benchmark.json").read_text())
    for name in ("cqt_tiny", "mel_tiny"):
        # same protocol, seed and draws as the cache builder: the same EER
        assert df.loc[name, "EER ROCCH (%)"] == pytest.approx(100 * bench["parts"]["test"]["models"][name]["eer"], abs=1e-3)  # shown to 3 decimals


def test_probing_runs_and_shows_results(app):
    at = goto(app, "5_Probing")
    at.multiselect(key="probe_clfs").set_value(["tree"]).run()
    at.multiselect(key="probe_labels").set_value(["family"]).run()
    at.button(key="probe_run").click().run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(df["classifier"]) == {"tree"} and (df["micro_f1"] > 0).all()


@pytest.mark.parametrize("colour", ["family", "playing style", "pitch"])
def test_every_map_point_names_its_note(tiny_cache, colour):
    """What the browser gets for each point: the note's coordinates, its row, pitch and velocity
    (binary customdata) and its instrument (hover strings); every note of ``idx`` exactly once."""
    import pandas as pd

    from pages.common import figures

    meta = pd.read_parquet(tiny_cache["cache"] / "embeddings" / "notes_test.parquet")
    coords = np.random.default_rng(0).normal(size=(len(meta), 2)).astype(np.float32)
    idx = np.arange(1, len(meta), 2)
    spec = json.loads(figures.scatter_map(coords, meta, colour, idx).to_json())
    seen = []
    for t in spec["data"]:
        cd = decode(t["customdata"])
        rows = cd[:, 0]
        seen += rows.tolist()
        np.testing.assert_array_equal(decode(t["x"]), coords[rows, 0])
        np.testing.assert_array_equal(decode(t["y"]), coords[rows, 1])
        np.testing.assert_array_equal(cd[:, 1:], meta[["pitch", "velocity"]].to_numpy()[rows])
        assert list(t["text"]) == [f"{p} ({s})" for p, s in meta[["preset_name", "soundfont"]].to_numpy()[rows]]
        fam = meta["instrument_family_str"].to_numpy()[rows]
        assert [h.split(", ")[0] for h in t["hovertext"]] == fam.tolist()
    assert sorted(seen) == idx.tolist()
    # and a selection of every third point of each trace, as the browser sends it, names the same rows
    picked = [row for t in spec["data"] for row in decode(t["customdata"])[::3]]
    event = {"selection": {"points": [{"customdata": {str(k): int(v) for k, v in enumerate(row)}} for row in picked]}}
    assert figures.selected_rows(event) == sorted(int(row[0]) for row in picked)


def test_mel_vs_cqt_tabs_and_linked_selection(app):
    at = goto(app, "6_Mel_vs_CQT")
    assert [t.label for t in at.tabs] == ["Filter bands", "Maps, linked selection", "Probing F1 per label",
                                          "Per-family EER", "Over seeds (the study)"]
    # lazy tabs: only the open one is drawn (the bands figure), the maps are not sent
    assert len(at.get("plotly_chart")) == 1
    for tab in ("Probing F1 per label", "Per-family EER", "Maps, linked selection"):
        at.session_state["cmp_tab"] = tab
        at.run()
        assert not at.exception and not at.error, tab
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    n = len(at.session_state["cmp_linked"]) if "cmp_linked" in at.session_state else 0
    assert n == 0 and {t.get("xaxis") for t in spec["data"]} == {"x", "x2"}  # two panels in one figure
    # notes chosen on either panel are ringed on both and listed
    at.session_state["cmp_linked"] = [0, 3, 7]
    at.run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    ringed = [t for t in spec["data"] if t["name"] == "selected"]
    assert len(ringed) == 2 and all(n_points(t["x"]) == 3 for t in ringed)
    assert selected_per_panel(spec) == {"x": 3, "x2": 3}
    assert at.dataframe[0].value.shape[0] == 3
    at.button(key="cmp_clear").click().run()
    assert at.session_state["cmp_linked"] == [] and len(at.dataframe) == 0


def test_training_runs_page_reads_the_logs(app):
    at = goto(app, "7_Training_runs")
    assert any("mel_tiny" in m.value and "step 200" in m.value for m in at.markdown)


def test_pages_say_what_is_missing_without_a_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIE_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setenv("MIE_RUNS", str(tmp_path / "noruns"))
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
        assert not [e.value for e in at.error if "Something went wrong" in e.value], page


def test_my_instruments_lists_the_library_kept_on_disk(app, tiny_cache, tmp_path, monkeypatch):
    from mie_core.service import workbench
    from mie_core.service.library import InstrumentLibrary
    from mie_core.service.verify import load_verifier

    monkeypatch.setenv("MIE_LIBRARY", str(tmp_path))
    cache = workbench.Cache(tiny_cache["cache"])
    emb = cache.embeddings("cqt_tiny", "test")
    ver = load_verifier(tiny_cache["cache"] / "models" / "cqt_tiny")  # fused: its library is named by both models
    emb = ver.join(emb, cache.embeddings("cqt_tiny_clean", "test"))
    InstrumentLibrary(ver.hash, tmp_path).add("my guitar", emb[:5], ["a.wav", "b.wav"])
    at = goto(app, "8_My_instruments")
    at.selectbox(key="model").set_value("cqt_tiny (shipped)").run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["instrument"].tolist() == ["my guitar"] and table["clips"].tolist() == [5]
    # one instrument: nothing to calibrate on; two: calibrated on the enrolments alone, unasked
    assert not [b for b in at.button if b.key == "lib_cal_enrol_btn"]
    assert InstrumentLibrary(ver.hash, tmp_path).calibration is None
    InstrumentLibrary(ver.hash, tmp_path).add("my cello", emb[-5:], ["c.wav"])
    at.run()
    assert not at.exception
    assert InstrumentLibrary(ver.hash, tmp_path).calibration is not None
    assert any("fitted on your enrolment clips" in c.value and "10 genuine and 10 impostor" in c.value
               for c in at.caption)
    # going back to the model's own calibration sticks; the button calibrates from the enrolments again
    at.button(key="lib_cal_clear").click().run()
    at.run()
    assert InstrumentLibrary(ver.hash, tmp_path).calibration is None
    at.button(key="lib_cal_enrol_btn").click().run()
    assert not at.exception
    assert any("Calibrated on 10 genuine and 10 impostor trials" in m.value for m in at.success)
    assert InstrumentLibrary(ver.hash, tmp_path).calibration is not None


def test_verify_offers_the_users_own_calibration(app, tiny_cache, tmp_path, monkeypatch):
    """A calibration fitted in My instruments for this system is offered on the Verify page
    (on by default, naming its trials); without one, nothing is offered."""
    from mie_core.service import workbench
    from mie_core.service.library import InstrumentLibrary
    from mie_core.service.verify import load_verifier

    monkeypatch.setenv("MIE_LIBRARY", str(tmp_path))
    at = goto(app, "1_Verify")
    at.selectbox(key="model").set_value("cqt_tiny (shipped)").run()
    assert not [c for c in at.checkbox if c.key == "mycal_cqt_tiny"]
    assert any("My instruments" in c.value for c in at.caption)  # where to fit one
    cache = workbench.Cache(tiny_cache["cache"])
    ver = load_verifier(tiny_cache["cache"] / "models" / "cqt_tiny")
    emb = ver.join(cache.embeddings("cqt_tiny", "test"), cache.embeddings("cqt_tiny_clean", "test"))
    labels = cache.notes("test")["instrument_str"].to_numpy()
    lib = InstrumentLibrary(ver.hash, tmp_path)
    names = list(dict.fromkeys(labels))[:3]
    clips, clip_labels = [], []
    for n in names:
        idx = np.flatnonzero(labels == n)
        lib.add(n, emb[idx[:3]], ["x.wav"] * 3)
        clips.extend(idx[3:6])
        clip_labels.extend([n] * len(idx[3:6]))
    done = lib.calibrate(ver, emb[clips], clip_labels)
    at = goto(app, "1_Verify")
    at.selectbox(key="model").set_value("cqt_tiny (shipped)").run()
    box = [c for c in at.checkbox if c.key == "mycal_cqt_tiny"]
    assert box and box[0].value is True
    assert f"{done['n_target']} genuine and {done['n_nontarget']} impostor" in box[0].label


@pytest.mark.parametrize("native, cached, want", [(True, "bf16", "bf16"), (False, "bf16", "fp32"),
                                                  (True, "fp32", "fp32"), (False, "fp32", "fp32")])
def test_uploads_are_embedded_in_fp32_where_bf16_would_be_emulated(monkeypatch, native, cached, want):
    """The cache's precision where this CPU runs bf16 natively; fp32 elsewhere (emulated bf16
    autocast made enrolling five notes 6x slower on a CPU without AVX-512, 2026-11-27)."""
    from mie_core import hardware
    from pages.common import ui

    monkeypatch.setattr(hardware, "_BF16", native)
    monkeypatch.setattr(ui, "benchmark", lambda: {"precision": cached})
    assert ui.embed_precision() == want


# ---------------------------------------------------------------- the pages' one truth (issue 32)
def test_benchmark_summary_says_why_a_figure_is_missing_and_fits(app):
    """No "None" cell: a figure that does not exist says why; short headers (explained on hover)."""
    at = goto(app, "4_Benchmark")
    df = at.dataframe[0].value
    assert "raw %" in df.columns and all(len(c) <= 12 for c in df.columns)
    cells = df.astype(str).to_numpy().ravel()
    assert not [c for c in cells if c in ("None", "nan", "NaN", "")]
    text = [c for c in cells if c.startswith("n/a")]
    assert text and set(text) <= {"n/a: fused only", "n/a: no partner", "n/a: not calibrated"}
    sys_row = df[df["model"] == "tiny_sys"].iloc[0]  # a system: fused only, its members said in the caption
    assert sys_row["raw %"] == "n/a: fused only"
    assert any("tiny_sys fuses cqt_tiny, cqt_tiny/extra, cqt_tiny/clean, mel_tiny" in c.value for c in at.caption)


def test_mel_vs_cqt_names_its_scoring_and_cites_the_verify_figure(app, tiny_cache):
    at = goto(app, "6_Mel_vs_CQT")
    assert any(m.label.endswith("EER, raw cosine") for m in at.metric)
    bench = json.loads((tiny_cache["cache"] / "results" / "benchmark.json").read_text())
    fused = 100 * bench["parts"]["test"]["models"]["cqt_tiny"]["fused"]["eer"]
    assert any("Home and Verify cite" in c.value and f"cqt_tiny {fused:.2f} % (fused)" in c.value for c in at.caption)


def test_probing_shows_the_mlp_size_only_for_an_mlp(app):
    at = goto(app, "5_Probing")
    at.multiselect(key="probe_clfs").set_value(["svm"]).run()
    assert not [r for r in at.radio if r.label == "MLP hidden size"]
    at.multiselect(key="probe_clfs").set_value(["svm", "mlp"]).run()
    assert [r for r in at.radio if r.label == "MLP hidden size"]


def test_training_runs_get_distinct_colours_by_front_end():
    from pages.common.figures import BLUES, REDS, run_colours

    c = run_colours(["mel122 (shipped)", "cqt122 (shipped)", "mel122_pd_s100", "cqt122_pd_s100", "other"])
    assert len(set(c.values())) == 5
    assert c["mel122 (shipped)"] in BLUES and c["mel122_pd_s100"] in BLUES
    assert c["cqt122 (shipped)"] in REDS and c["cqt122_pd_s100"] in REDS


def test_filter_bands_explain_the_filters_cut_off_at_half_the_sample_rate(app):
    from mie_core.nnet.sincconv import SincConv
    from mie_core.service.workbench import nyquist_note

    note = nyquist_note(SincConv(122, "cqt"))
    assert note.startswith("the top 4 filters (118, 119, 120, 121)") and "5 Hz wide" in note
    assert nyquist_note(SincConv(122, "mel")) is None
    at = goto(app, "2_Filter_bands")  # both the initial and the learned bands, either alone on demand
    names = {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert {n.split()[-1] for n in names} == {"init", "learned"}


def test_batch_clips_on_the_map_are_coloured_by_instrument_and_named_on_hover():
    from pages.common.figures import extra_traces

    pts = lambda k: np.full((1, 2), float(k))  # noqa: E731
    extra = [("a.wav", pts(0), "viola"), ("b.wav", pts(1), "viola"), ("c.wav", pts(2), "flute"),
             ("★ viola", pts(3), "viola"), ("★ flute", pts(4), "flute")]
    traces = extra_traces(extra)
    assert [t.name for t in traces] == ["flute", "viola"]  # one legend entry per instrument
    assert all(t.mode == "markers" for t in traces)  # no labels piled on the map: names on hover
    viola = traces[1]
    assert list(viola.hovertext) == ["a.wav", "b.wav", "★ viola"] and list(viola.marker.symbol)[-1] == "star"
    assert len({t.marker.color for t in traces}) == 2
    single = extra_traces([("clip.wav", pts(0))])[0]  # the Verify page's one clip: a labelled gold star
    assert single.mode == "markers+text" and single.marker.color == "gold"


@pytest.fixture
def cache_with_real_calibration(tiny_cache, tmp_path, monkeypatch):
    """A copy of the tiny cache whose fused cqt_tiny has a real-notes calibration with the
    recording-condition model over recording features, and the test notes' features beside
    their embeddings, as the shipped systems and cache have."""
    import shutil

    from mie_core.scoring import condition
    from mie_core.service import workbench
    from mie_core.service.verify import RealCalibration, load_verifier

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache["cache"], cache)
    ver = load_verifier(cache / "models" / "cqt_tiny")
    rng = np.random.default_rng(0)
    model = condition.fit_condition_model(*[rng.normal(3 * k, 1, (30, 6)) for k in range(3)], c=0.1, inputs="recording")
    n_test = len(workbench.Cache(cache).notes("test"))
    np.save(cache / "embeddings" / workbench.recording_file("test"), rng.normal(0, 1, (n_test, 6)).astype(np.float32))
    fig = {"eer": 0.05, "genuine_accepted": 0.95, "impostors_rejected": 0.92}
    figs = {"vsco2": fig, "iowa": {**fig, "impostors_rejected": 0.9}, "pooled": fig}
    RealCalibration("fusion", tuple(ver.fusion.fusion.weights), ver.fusion.fusion.offset, figs, figs,
                    {"sources": ["iowa", "vsco2"], "notes": 100, "instruments": {"vsco2": ["a"], "iowa": ["b"]}},
                    model, figs, {"wet": {"auto": {**fig, "eer": 0.12}}}).save(cache / "models" / "cqt_tiny")
    from training.build_cache import rewrite_manifest

    rewrite_manifest(cache, "--real-calibration-only")  # as the build step does: the new files hashed
    monkeypatch.setenv("MIE_CACHE", str(cache))
    monkeypatch.setenv("MIE_RUNS", str(tiny_cache["runs"]))
    monkeypatch.chdir(REPO)
    return cache


def test_verify_chooses_the_calibration_by_how_the_clips_sound_by_default(cache_with_real_calibration, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("MIE_LIBRARY", str(tmp_path / "lib"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at = goto(at, "1_Verify")
    at.selectbox(key="model").set_value("cqt_tiny (shipped)").run()
    radio = at.radio(key="conditions_cqt_tiny")
    assert radio.options == ["automatic, by how the clips sound (recommended)", "studio recordings",
                             "rooms, phones or renders (the model's own fusion)"]
    assert radio.value == "auto"
    line = " ".join(c.value for c in at.caption)
    assert "by how much its clips sound like studio recordings" in line and "impostors rejected 90 % or more" in line
    assert "On renders through unseen rooms, microphones and noise: EER 12.0 %" in line
    radio.set_value("own").run()
    assert "model's own calibration" in " ".join(c.value for c in at.caption)
    # a corpus enrolment takes its notes' recording features from the cache, row for row
    at.slider(key="enrol_n").set_value(3).run()
    at.button(key="enrol_btn").click().run()
    state = at.session_state["verify"]
    shipped = np.load(cache_with_real_calibration / "embeddings" / "recording_test.npy")
    np.testing.assert_array_equal(state["enrol_recording"], shipped[state["enrol_rows"]])
    assert state["enrol_recording"].shape == (3, 6)


def test_the_real_collections_table_says_each_collection_s_trials_and_interval():
    """The Verify page's "How often is this verdict right?" table: a collection of one
    instrument (20 + 20 trials per draw) gets the Wilson interval of its rates, so 90 % on 20
    trials reads 70-97 %; a record without counts (an older cache) says n/a, not a number."""
    from mie_core.service.verify import RealCalibration
    from pages.common import ui

    fig = {"eer": 0.05, "genuine_accepted": 0.9, "impostors_rejected": 0.95, "n_target": 20.0, "n_nontarget": 20.0}
    old = {k: v for k, v in fig.items() if not k.startswith("n_")}
    figs = {"iowa": fig, "vsco2": old, "pooled": fig}
    rc = RealCalibration("fusion", (1.0,), 0.0, figs, figs, {"sources": ["iowa", "vsco2"], "instruments": {"iowa": ["b"]}})
    table = ui.real_calibration_table(type("V", (), {"real_calibration": rc})(), "studio").set_index("recordings")
    assert table.loc["iowa", "trials per draw"] == "20 / 20"
    assert table.loc["iowa", "95 % interval (%)"] == "70-97 / 76-99"
    assert table.loc["vsco2", "trials per draw"] == table.loc["vsco2", "95 % interval (%)"] == "n/a"


def test_mel_vs_cqt_reads_the_study_over_seeds(app, tmp_path, monkeypatch):
    """The study's shipped records (docs/study/results.json): each front-end's mean +- std over
    the seeds present and each seed's point; the front-end claims with their verdicts."""
    from mie_core.evaluation.study import claim_tests

    part = lambda e: {"eer": e, "n_target": 1960, "n_nontarget": 1960}  # noqa: E731
    runs = [{"run": f"{c}_pd_s{s}", "condition": c, "split": "program_disjoint", "seed": s,
             "parts": {"clean": part(e + 0.01 * k), "wet": part(2 * e), "real": part(1.5 * e)}}
            for c, e in (("mel122", 0.10), ("cqt122", 0.12)) for k, s in enumerate((100, 1000))]
    claims = claim_tests([{"id": "d3", "claim": "Mel-122 edges CQT-122 on unseen instruments", "better": "mel122",
                           "worse": "cqt122", "split": "program_disjoint"}], runs)
    (tmp_path / "results.json").write_text(json.dumps({"study": {"steps": 1000}, "runs": runs, "missing": ["x"] * 44,
                                                       "claims": claims}))
    monkeypatch.setenv("MIE_STUDY", str(tmp_path))
    at = goto(app, "6_Mel_vs_CQT")
    at.session_state["cmp_tab"] = "Over seeds (the study)"
    at.run()
    assert not at.exception
    assert any("4 of 48 study runs finished" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "front-end" in d.value.columns)
    assert table.set_index("front-end").loc["Mel-122 learned", "EER (%)"] == "10.50 +- 0.50"
    assert (table["seeds"] == 2).all()
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert verdicts["claim"].tolist() == ["Mel-122 edges CQT-122 on unseen instruments"]


def test_the_default_system_warms_up_in_the_background_from_the_first_page(tiny_cache, monkeypatch):
    """Issue 32 (cold start: the first Enrol after a start took 27 s): the first page opened
    starts loading the default system in a background thread; the Verify page then finds it
    loaded (one load in all) instead of loading it on its first run."""
    from mie_core.service import verify as verify_mod
    from pages.common import ui

    monkeypatch.setenv("MIE_CACHE", str(tiny_cache["cache"]))
    monkeypatch.setenv("MIE_RUNS", str(tiny_cache["runs"]))
    monkeypatch.chdir(REPO)
    loads, real = [], verify_mod.load_verifier
    monkeypatch.setattr(verify_mod, "load_verifier", lambda path, *a, **kw: loads.append(str(path)) or real(path, *a, **kw))
    ui._warm_up.clear()
    ui.verifier.clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()  # Home: no model of its own, yet the default system starts loading
    default = str(ui.default_entry().path)
    t0 = time.monotonic()
    while default not in loads and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    assert default in loads  # started by the page, not by this test
    thread = ui.warm_up()  # the same thread the page started (one per server)
    assert thread is not None and thread.name.startswith("warm-up")
    thread.join(120)
    assert loads.count(default) == 1  # (with its members, each loaded on the way)
    goto(at, "1_Verify")
    assert loads.count(default) == 1  # found loaded, not loaded again
