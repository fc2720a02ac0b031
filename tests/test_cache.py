"""The shipped cache: its manifest matches its files, and its embeddings are the
checkpoints' output. Also the builder itself, on the tiny corpus."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mie_core.service import workbench
from mie_core.nnet.checkpoint import load_encoder
from mie_core.data.render import render_many

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "cache"
needs_cache = pytest.mark.skipif(not (SHIPPED / "manifest.json").exists(), reason="no shipped cache in this checkout")


def check_manifest(root: Path) -> dict:
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == set(manifest["files"])
    for name, info in manifest["files"].items():
        data = (root / name).read_bytes()
        assert len(data) == info["bytes"] and hashlib.sha256(data).hexdigest() == info["sha256"], name
    assert manifest["command"].startswith("python -m training.build_cache")
    return manifest


def check_embeddings_match_the_checkpoint(root: Path, n: int = 3) -> None:
    bench = json.loads((root / "results" / "benchmark.json").read_text())
    notes = pd.read_parquet(root / "embeddings" / "notes_test.parquet")
    present = notes[notes["soundfont"].isin(workbench.soundfont_paths())]  # make data fetches them; one may be absent
    assert len(present), "none of the cache's soundfonts is on this machine"
    rows = present.iloc[np.linspace(0, len(present) - 1, n).round().astype(int)]
    audio = render_many(workbench.note_specs(rows), workers=1)
    folders = [(f, f.name) for f in sorted((root / "models").iterdir()) if (f / "model.json").exists()]
    # each model's clean partner and the members only systems use (cqt122/pairs), inside its folder
    folders += [(sub, f"{f.name}_{sub.name}") for f, _ in list(folders) for sub in sorted(f.iterdir())
                if (sub / "model.json").exists()]
    for folder, name in folders:
        enc = load_encoder(folder)
        want = np.load(root / "embeddings" / f"{name}_test.npy")[rows.index.to_numpy()].astype(np.float32)
        got = enc.embed(audio, bf16=bench["embed_bf16"])
        cos = (want * got).sum(1) / (np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1))
        # float16 storage (and bf16 kernels that differ between CPUs) leave cosine > 0.999
        assert cos.min() > 0.999, (name, cos)
        np.testing.assert_allclose(got, want, rtol=0.05, atol=0.05 * np.abs(want).max())


@needs_cache
def test_shipped_manifest_matches_the_files():
    manifest = check_manifest(SHIPPED)
    # the budget of what the repository ships: two models with their embeddings, maps and
    # results (56.5 MB), the room bank, which cannot be rebuilt (4.6 MB, mie_core.augment.chain.SHIPPED_ROOMS),
    # each model's clean-trained fusion partner with its test embeddings (43 MB; the same
    # bytes as the models shipped before the recording chain, so git stores them once) and
    # the mel+cqt system (2-3 MB: its fusion and centroids, no weights of its own) and the
    # member only it uses, cqt122/pairs (22 MB: weights, back-end and its test embeddings;
    # docs/experiments/register-pairs.md: in place of the LMFT member, wet 7.59 -> 6.34 % EER)
    assert manifest["total_bytes"] < 135e6
    assert all(f["bytes"] < 20e6 for f in manifest["files"].values())  # no file over 20 MB


@needs_cache
def test_shipped_pitch_gaps_are_the_benchmark_s_real_verdicts_split_by_pitch_distance():
    """``results/pitch_gaps.json`` (the Verify page's warning cites it) holds every trial of the
    real part once: its overall rates are the ones ``benchmark.json`` gives for the same trials
    (0.5 points: it was embedded in fp32, the benchmark in bf16, which flips a few trials at the
    threshold), and genuine notes far from the enrolment are accepted less often than near ones."""
    gaps = json.loads((SHIPPED / "results" / "pitch_gaps.json").read_text())
    real = json.loads((SHIPPED / "results" / "benchmark.json").read_text())["parts"]["real"]
    assert gaps["n_draws"] == real["n_draws"] and gaps["within_a_semitone_of_label"] > 0.9
    assert set(gaps["models"]) >= {"cqt122", "mel122", "mel+cqt"}
    for name, rec in gaps["models"].items():
        ref = real["models"].get(name) or real["systems"][name]
        ref = ref.get("fused") or ref.get("calibrated")
        assert rec["genuine_accepted"] == pytest.approx(1 - ref["p_miss"], abs=0.005)
        assert rec["impostors_rejected"] == pytest.approx(1 - ref["p_fa"], abs=0.005)
        bins = rec["bins"]
        n_gen = sum(b["n_genuine"] for b in bins)
        assert real["n_target"] * real["n_draws"] - 25 <= n_gen <= real["n_target"] * real["n_draws"]  # a note without pitch
        assert bins[0]["genuine_accepted"] > bins[-1]["genuine_accepted"] + 0.2


@needs_cache
def test_shipped_real_notes_fusions_are_the_systems_and_hold_on_every_held_out_source():
    """Each shipped system's ``real_calibration.json`` (issue 29) refits its own fusion (one
    weight per feature of that fusion) on real notes of every source it was measured on,
    and the default system's verdicts, each source scored with the weights fitted without
    it, are right on at least 90 % of genuine and of impostor trials of all sources together,
    and within 5 points of that on each (over 20 draws three sources' impostors fall short of
    the issue's 90: docs/results.md#auto)."""
    from mie_core.scoring.fusion import QualityFusion
    from mie_core.service.verify import RealCalibration

    for name in ("mel+cqt", "cqt122", "mel122"):
        folder = REPO / "cache" / "models" / name
        rc, qf = RealCalibration.load(folder), QualityFusion.load(folder)
        assert rc.kind == "fusion" and len(rc.weights) == qf.fusion.weights.size
        assert set(rc.held_out) == set(rc.fitted_on["sources"]) | {"pooled"} == set(rc.as_shipped)
        assert rc.held_out["pooled"]["n_target"] == rc.as_shipped["pooled"]["n_target"] > 200
    rc = RealCalibration.load(REPO / "cache" / "models" / "mel+cqt")
    pooled = rc.held_out["pooled"]
    assert pooled["genuine_accepted"] >= 0.9 and pooled["impostors_rejected"] >= 0.9
    assert min(rc.worst()) >= 0.85 - 1e-9


@needs_cache
def test_shipped_condition_model_reads_the_recording_and_holds_the_verdicts_on_every_source():
    """The shipped recording-condition model reads six recording features beside the members'
    back-end vectors (docs/experiments/studio-condition.md#both); the cache ships the features
    of the test notes (the Verify page's corpus enrolments), one row per note, and the model
    hears those clean renders as renders; its figures average REAL_DRAWS trial draws (20: over
    5, a source of one instrument moved by a trial or two from one set of draws to the next);
    held out, the automatic verdicts are right on 90 % or more of genuine and of impostor
    trials of all sources together, and on each source within 5 points of that (the
    real-recordings issue asks 90 on every source: the README says which fall short); clean
    renders score as the own fusion does, within 0.5 points."""
    from mie_core.scoring.fusion import member_vectors
    from mie_core.service import workbench
    from mie_core.service.verify import RealCalibration, load_verifier

    folder = REPO / "cache" / "models" / "mel+cqt"
    rc = RealCalibration.load(folder)
    assert rc.condition.inputs == "recording+members"
    rec = workbench.Cache(SHIPPED).recording("test")
    assert rec.shape == (len(pd.read_parquet(SHIPPED / "embeddings" / "notes_test.parquet")), 6)
    ver = load_verifier(folder)
    names = [str(m.resolve().relative_to((SHIPPED / "models").resolve())).replace("/", "_") for m in ver.member_paths]
    emb = ver.join(*[np.load(SHIPPED / "embeddings" / f"{n}_test.npy").astype(np.float32) for n in names])
    x = np.hstack([rec, member_vectors(*ver.fusion_members(emb))])
    p = rc.condition.proba(x).mean(0)
    assert p[0] > 0.5 and p[2] < 0.3  # P(render) and P(studio) of clean renders
    from mie_core.evaluation.report import REAL_DRAWS

    assert rc.fitted_on["draws"] >= REAL_DRAWS
    assert rc.auto["pooled"]["genuine_accepted"] >= 0.9 and rc.auto["pooled"]["impostors_rejected"] >= 0.9
    for source, r in rc.auto.items():
        assert min(r["genuine_accepted"], r["impostors_rejected"]) >= 0.85 - 1e-9, source
    test = rc.renders["test"]
    assert test["auto"]["eer"] <= test["own"]["eer"] + 0.005


@needs_cache
def test_shipped_pairs_score_as_their_files_in_the_files_order():
    """The shipped pairs' files list the clean partner first (written so since the first
    release); loaded, the member order is the main model first. The fused LLRs of the shipped
    test embeddings through the loader equal those of the files' own numbers taken in the
    files' order, to float64 rounding (the same sums in another order)."""
    from mie_core.scoring import fusion
    from mie_core.scoring.backend import Backend
    from mie_core.scoring.trials import make_trials
    from mie_core.service.verify import load_verifier

    rows = pd.read_parquet(SHIPPED / "embeddings" / "notes_test.parquet")
    tr = make_trials(rows["instrument_str"].to_numpy(), np.random.default_rng(0), 5, 5, 5)
    for name in ("cqt122", "mel122"):
        folder = SHIPPED / "models" / name
        main, clean = (np.load(SHIPPED / "embeddings" / f"{n}_test.npy").astype(np.float32) for n in (name, f"{name}_clean"))
        ver = load_verifier(folder)
        backends, members = ver.fusion_members(ver.join(main, clean))
        assert backends[0].width == backends[1].width and ver.fusion.n_members == 2
        got = fusion.trial_llrs(backends, ver.fusion, members, tr)
        meta = json.loads((folder / "fusion.json").read_text())
        assert meta["features"][:2] == ["l_clean", "l_chain"]
        as_filed = fusion.QualityFusion(
            fusion.ConditionDetector(np.asarray(meta["detector"]["coef"]), float(meta["detector"]["intercept"])),
            fusion.Fusion(np.asarray(meta["fusion"]["weights"]), float(meta["fusion"]["offset"])), members=("c", "m"),
            main="c")
        want = fusion.trial_llrs([Backend.load(folder / "clean"), Backend.load(folder)], as_filed, [clean, main], tr)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_shipped_embeddings_are_the_checkpoints_output():
    check_embeddings_match_the_checkpoint(SHIPPED)


@needs_cache
def test_shipped_cache_has_everything_the_app_reads():
    bench = json.loads((SHIPPED / "results" / "benchmark.json").read_text())
    models = sorted(p.name for p in (SHIPPED / "models").iterdir() if (p / "model.json").exists())
    assert {"mel122", "cqt122"} <= set(models)
    for m in models:
        for part in ("test", "valid"):
            e = np.load(SHIPPED / "embeddings" / f"{m}_{part}.npy")
            assert e.dtype == np.float16 and len(e) == len(pd.read_parquet(SHIPPED / "embeddings" / f"notes_{part}.parquet"))
        for method in ("tsne", "umap"):
            assert (SHIPPED / "maps" / f"{m}_test_{method}.npy").exists()
        r = bench["parts"]["test"]["models"][m]
        assert {"eer", "eer_ci", "min_dcf", "threshold", "det", "family_eer"} <= set(r)
        meta = json.loads((SHIPPED / "models" / m / "model.json").read_text())
        prov = meta["provenance"]
        assert meta["label_maps"]["instrument"] and prov["machine"] and prov["config"] and prov["corpus"]
        assert prov["commit"] or prov["commit_note"]  # a run started before the first commit says so
    assert "significance" in bench["parts"]["test"] and "mfcc_baseline" in bench["parts"]["test"]["models"]
    assert {r["label"] for r in bench["probing"]} >= {"family", "source", "pitch_octave", "velocity"}


def check_backends(root: Path) -> None:
    """Each model's scoring back-end: calibrated, with a cohort of training instruments and
    centroids of every corpus instrument in its space (no LDA: the shipped choice)."""
    from mie_core.scoring.backend import Backend
    from mie_core.service.verify import load_verifier

    tops = [f for f in sorted((root / "models").iterdir()) if (f / "model.json").exists()]  # not the systems
    members = [sub for f in tops for sub in sorted(f.iterdir()) if (sub / "model.json").exists() and sub.name != "clean"]
    for folder in tops + members:
        if folder in members:  # a model only the systems use: no fusion of its own, its test embeddings shipped
            assert not (folder / "fusion.json").exists()
            assert (root / "embeddings" / f"{folder.parent.name}_{folder.name}_test.npy").exists()
        be = Backend.load(folder)
        assert be.projection is None and not (folder / "backend_projection.npy").exists()
        assert be.cohort.shape[1] == be.mean.size and be.calibration is not None and be.calibration[0] > 0
        ver = load_verifier(folder)
        assert ver.centroids.shape[1] == be.mean.size
        assert np.allclose(np.linalg.norm(ver.centroids, axis=1), 1.0, atol=2e-3)  # float16 unit vectors
        assert be.info["n_train_notes"] == 6 * (ver.instruments["part"] == "train").sum()  # the bank's notes
        if (folder / "fusion.json").exists():  # fused with its clean partner (mie_core.scoring.fusion)
            (partner,) = ver.others
            assert ver.fused and partner.can_calibrate and partner.centroids is None
            assert ver.width == ver.dim + partner.dim and ver.hash != partner.hash
            k = ver.backend.mean.size + partner.backend.mean.size
            assert ver.fusion.detector.coef.shape == (k,) and ver.fusion.info["fusion_trials"] > 0
            # the page enrols corpus instruments from both models' test embeddings
            assert (root / "embeddings" / f"{folder.name}_clean_test.npy").exists()


def check_systems(root: Path) -> list[str]:
    """Each system of models (a folder whose fusion.json names members): it loads as the
    fused system of those shipped folders, main model first, its centroids over every
    member are unit vectors, and every part's results score it on the models' trials."""
    from mie_core.service.verify import load_verifier

    bench = json.loads((root / "results" / "benchmark.json").read_text())
    names = []
    for folder in sorted((root / "models").iterdir()):
        if (folder / "model.json").exists():
            continue
        meta = json.loads((folder / "fusion.json").read_text())
        ver = load_verifier(folder)
        assert ver.fused and len(ver.layout) == len(meta["members"]) >= 2
        assert [str(p.relative_to(root / "models")) for p in ver.member_paths][0] == meta["main"]
        assert sorted(str(p.relative_to(root / "models")) for p in ver.member_paths) == sorted(meta["members"])
        assert ver.width == sum(m.dim for m in ver.layout) and ver.fusion.fusion.weights.size == 2 * len(ver.layout) + 1
        assert ver.centroids.shape[1] == sum(m.backend.width for m in ver.layout)
        assert np.allclose(np.linalg.norm(ver.centroids, axis=1), 1.0, atol=2e-3)
        for name, part in bench["parts"].items():
            rec = part["systems"][folder.name]["fused"]
            assert 0 <= rec["eer"] <= 0.5 and len(rec["eer_draws"]) == part["n_draws"], name
        names.append(folder.name)
    return names


@needs_cache
def test_shipped_backends():
    check_backends(SHIPPED)
    assert check_systems(SHIPPED) == ["mel+cqt"]


def test_builder_on_the_tiny_corpus(tiny_cache):
    root = tiny_cache["cache"]
    check_manifest(root)
    check_embeddings_match_the_checkpoint(root)
    bench = json.loads((root / "results" / "benchmark.json").read_text())
    assert set(bench["parts"]) == {"test", "valid", "wet"}
    # the wet part is the test notes through the test rooms' chain: same notes, harder trials
    test, wet = (pd.read_parquet(root / "embeddings" / f"notes_{p}.parquet") for p in ("test", "wet"))
    assert test["note_str"].tolist() == wet["note_str"].tolist()
    assert bench["probing"] and set(bench["models"]) == {"cqt_tiny", "mel_tiny"}
    check_backends(root)
    # the fused system is scored on the same trials as its model alone, in every part
    assert (root / "models" / "cqt_tiny" / "fusion.json").exists() and not (root / "models" / "mel_tiny" / "fusion.json").exists()
    for part in bench["parts"].values():
        f = part["models"]["cqt_tiny"]["fused"]
        assert 0 <= f["eer"] <= 0.5 and f["cllr"] > 0 and len(f["eer_draws"]) == 2
        assert "fused" not in part["models"]["mel_tiny"]
    assert "--clean cqt_tiny=" in json.loads((root / "manifest.json").read_text())["command"]
    assert check_systems(root) == ["tiny_sys"]
    command = json.loads((root / "manifest.json").read_text())["command"]
    assert "--system tiny_sys=cqt_tiny,cqt_tiny/extra,cqt_tiny/clean,mel_tiny" in command
    # the member only the system uses ships with its back-end (check_backends) but is no page's model
    assert "--member cqt_tiny/extra=" in command and (root / "models" / "cqt_tiny" / "extra" / "backend.json").exists()
    assert [m.name for m in workbench.find_models(cache=root, runs=root / "no-runs")] == ["cqt_tiny", "mel_tiny"]


@pytest.mark.parametrize("spec", ["cqt122/clean=x", "a/b/c=x", "=x", "cqt122/lmft=", "a/.hidden=x", "cqt122//=x",
                                  "cqt122=x"])
def test_a_member_s_name_is_a_folder_inside_a_model_s_folder(spec):
    from training.build_cache import parse_member

    with pytest.raises(ValueError, match="--member"):
        parse_member(spec)
    assert parse_member("cqt122/lmft=runs/x/last") == ("cqt122/lmft", "runs/x/last")


def test_a_member_goes_inside_a_model_s_folder_of_the_cache(tiny_cache):
    from training.build_cache import add_member

    root = tiny_cache["cache"]
    with pytest.raises(SystemExit, match="not a model folder"):
        add_member(root, "nomodel/extra", "no/checkpoint")
    assert not (root / "models" / "nomodel").exists() and not workbench.verify_cache(root)


def test_an_experiment_s_system_is_scored_on_the_parts_asked_at_the_precision_asked(tiny_cache, tiny_corpus,
                                                                                     tmp_path):
    import shutil

    from training.build_cache import cache_precision, main

    root = tmp_path / "cache"
    shutil.copytree(tiny_cache["cache"], root)
    before = json.loads((root / "results" / "benchmark.json").read_text())
    assert {"test", "wet"} <= set(before["parts"])
    args = ["--systems-only", "--out", str(root), "--corpus", str(tiny_corpus.root),
            "--system", "exp=cqt_tiny,cqt_tiny/clean"]
    with pytest.raises(SystemExit, match="not among the cache's parts"):
        main(args + ["--system-parts", "real"])  # the tiny cache scores no real part
    assert main(args + ["--system-parts", "wet", "--precision", "fp32"]) == 0
    after = json.loads((root / "results" / "benchmark.json").read_text())
    assert "exp" in after["parts"]["wet"]["systems"] and "exp" not in after["parts"]["test"].get("systems", {})
    # the shipped system's figures are untouched
    assert after["parts"]["test"]["systems"] == before["parts"]["test"]["systems"]
    assert json.loads((root / "models" / "exp" / "fusion.json").read_text())
    with pytest.raises(SystemExit):  # only for an experiment's copy, beside --systems-only
        main(["--out", str(root), "--system-parts", "wet"])
    assert cache_precision({"precision": "bf16"}) == "bf16" and cache_precision({"precision": "bf16"}, "fp32") == "fp32"


def test_the_manifest_records_every_step_in_the_order_run(tmp_path):
    """A step run again after others is recorded again (the pitch gaps refitted after a new
    member; a member added back after it was dropped), a step run twice in a row once, a
    member the full build made not again, and an explicit precision with the step."""
    from training.build_cache import rewrite_manifest, step_with_precision, write_manifest

    (tmp_path / "a.txt").write_text("a")
    write_manifest(tmp_path, "python -m training.build_cache --model x=y --member x/m=z")
    member = step_with_precision("--members-only --member x/m=z", "fp32")
    for step, made_by in (("--members-only --member x/m=z", "--member x/m=z"), ("--pitch-gaps-only", None),
                          ("--drop-member x/m", None), (member, "--member x/m=z"), ("--pitch-gaps-only", None),
                          ("--pitch-gaps-only", None)):
        rewrite_manifest(tmp_path, step, made_by)
    steps = json.loads((tmp_path / "manifest.json").read_text())["command"].split("; then python -m training.build_cache ")
    assert steps[1:] == ["--pitch-gaps-only", "--drop-member x/m", member, "--pitch-gaps-only"]


def test_a_member_no_system_fuses_is_dropped_and_one_in_use_is_refused(tiny_cache, tmp_path):
    import shutil

    from training.build_cache import main, rewrite_manifest

    root = tmp_path / "cache"
    shutil.copytree(tiny_cache["cache"], root)
    with pytest.raises(SystemExit, match="tiny_sys still fuse"):
        main(["--out", str(root), "--drop-member", "cqt_tiny/extra"])
    with pytest.raises(SystemExit, match="belongs to its model"):
        main(["--out", str(root), "--drop-member", "cqt_tiny/clean"])
    with pytest.raises(SystemExit, match="has no member"):
        main(["--out", str(root), "--drop-member", "cqt_tiny"])
    # a spare member, as a system rebuilt without it leaves one
    shutil.copytree(root / "models" / "cqt_tiny" / "extra", root / "models" / "cqt_tiny" / "spare")
    shutil.copy(root / "embeddings" / "cqt_tiny_extra_test.npy", root / "embeddings" / "cqt_tiny_spare_test.npy")
    rewrite_manifest(root, "--members-only --member cqt_tiny/spare=X")
    assert main(["--out", str(root), "--drop-member", "cqt_tiny/spare"]) == 0
    assert not (root / "models" / "cqt_tiny" / "spare").exists()
    assert not (root / "embeddings" / "cqt_tiny_spare_test.npy").exists()
    manifest = json.loads((root / "manifest.json").read_text())
    assert not any("spare" in f for f in manifest["files"]) and manifest["command"].endswith("--drop-member cqt_tiny/spare")
    assert workbench.verify_cache(root) == []  # the rest as it was, every hash right
    assert (root / "models" / "cqt_tiny" / "extra" / "model.json").exists()


def test_verify_cache_names_a_corrupt_file(tiny_cache, tmp_path):
    import shutil
    import subprocess
    import sys

    assert workbench.verify_cache(tiny_cache["cache"]) == []
    copy = tmp_path / "cache"
    shutil.copytree(tiny_cache["cache"], copy)
    target = copy / "embeddings" / "mel_tiny_test.npy"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0x40  # one flipped bit, same size: only the hash sees it
    target.write_bytes(bytes(data))
    problems = workbench.verify_cache(copy)
    assert len(problems) == 1 and "mel_tiny_test.npy" in problems[0] and "sha256" in problems[0]
    assert workbench.verify_cache(copy, hashes=False) == []
    res = subprocess.run([sys.executable, "-m", "mie_core", "verify-cache", "--cache", str(copy)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 1 and "mel_tiny_test.npy" in res.stderr


def test_verify_and_identify_commands_with_a_fused_model(tiny_cache, tmp_path):
    """``python -m mie_core verify`` and ``identify`` on the tiny cache's fused model: one JSON
    object per clip with the fields the issue names, the probability the sigmoid of the LLR
    at the prior, and the same numbers as the library function on the same clips."""
    import subprocess
    import sys

    import soundfile as sf

    from mie_core.scoring import backend
    from mie_core.service.verify import load_verifier, verify

    root = tiny_cache["cache"]
    notes = pd.read_parquet(root / "embeddings" / "notes_test.parquet")
    notes = notes[notes["soundfont"].isin(workbench.soundfont_paths())]
    inst = notes["instrument_str"].value_counts().index[:2]
    rows = pd.concat([notes[notes["instrument_str"] == inst[0]].head(4), notes[notes["instrument_str"] == inst[1]].head(1)])
    audio = render_many(workbench.note_specs(rows), workers=1)
    files = []
    for i, x in enumerate(audio):
        files.append(tmp_path / f"clip{i}.wav")
        sf.write(files[-1], x, 16000, subtype="PCM_16")  # int16 renders, written exactly
    model = root / "models" / "cqt_tiny"
    cmd = [sys.executable, "-m", "mie_core", "verify", "--model", str(model), "--precision", "fp32", "--prior", "0.2",
           "--enrol", *map(str, files[:3]), "--test", *map(str, files[3:]), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["file"] for o in out] == [str(f) for f in files[3:]]
    assert {"score", "llr", "probability", "accept", "typical", "quality"} <= set(out[0])
    for o in out:
        assert o["probability"] == pytest.approx(float(backend.sigmoid(o["llr"] + backend.logit(0.2))), rel=1e-9)
        assert o["accept"] == (o["probability"] >= 0.5) and 0 <= o["quality"] <= 1
    labels = rows["pitch"].to_numpy(float)  # the renders' own pitch, and the gap it gives to the enrolment's
    for o, p in zip(out, labels[3:]):
        assert o["pitch"] == pytest.approx(p, abs=1.0)
        assert o["pitch_gap"] == pytest.approx(np.abs(p - labels[:3]).min(), abs=2.0)
    v = load_verifier(model, "fp32")
    want = verify(v, v.embed(audio[:3]), v.embed(audio[3:]), 0.2)
    # the command reads the clips back from 16-bit WAV files: the same samples, the same model
    np.testing.assert_allclose([o["llr"] for o in out], want["llr"], rtol=1e-4, atol=1e-4)
    res = subprocess.run([sys.executable, "-m", "mie_core", "identify", "--model", str(model), "--top", "3", "--json",
                          *map(str, files[:2])], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(out) == 2 and all(len(o["nearest"]) == 3 for o in out)
    assert {"instrument", "family", "program", "score"} <= set(out[0]["nearest"][0])
    assert len({n["program"] for n in out[0]["nearest"]}) == 3  # one per General MIDI program
    # a system of several models answers the same commands, with every member's embeddings
    system = root / "models" / "tiny_sys"
    res = subprocess.run([sys.executable, "-m", "mie_core", "verify", "--model", str(system), "--precision", "fp32",
                          "--enrol", *map(str, files[:3]), "--test", *map(str, files[3:]), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    v = load_verifier(system, "fp32")
    want = verify(v, v.embed(audio[:3]), v.embed(audio[3:]))
    np.testing.assert_allclose([o["llr"] for o in out], want["llr"], rtol=1e-4, atol=1e-4)


def test_evaluate_scores_a_shipped_fused_folder_as_the_builder_did(tiny_cache, tiny_corpus, tmp_path):
    """``python -m mie_core evaluate`` on a cache folder with a fusion refits the partner's
    back-end and the fusion exactly as the builder does, and reports the fused system; a
    system folder of several models is scored as the builder scored it."""
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.report import run_evaluation

    root = tiny_cache["cache"]
    res = run_evaluation([f"cqt_tiny={root / 'models' / 'cqt_tiny'}", f"tiny_sys={root / 'models' / 'tiny_sys'}"],
                         tiny_corpus.root, parts=("wet", "test"), out=tmp_path / "report", n_draws=2, probing_on=False,
                         store=EmbeddingStore(tmp_path / "emb"))
    shipped = json.loads((root / "results" / "benchmark.json").read_text())["parts"]
    got = res["parts"]["wet"]["models"]["cqt_tiny"]["fused"]
    want = shipped["wet"]["models"]["cqt_tiny"]["fused"]
    # same weights, trials, seed and precision: equal up to the low bits that another thread
    # schedule can change in a score (one tied trial of the tiny part would move EER by ~0.02)
    assert got["eer"] == pytest.approx(want["eer"], abs=0.02)
    assert got["cllr"] == pytest.approx(want["cllr"], rel=0.05)
    tables = (tmp_path / "report" / "tables.md").read_text()
    assert "cqt_tiny (fused)" in tables and "tiny_sys (system, fused)" in tables
    # a system is scored as shipped (nothing refitted) on the models' own trials
    for part in ("wet", "test"):
        got, want = res["parts"][part]["systems"]["tiny_sys"]["fused"], shipped[part]["systems"]["tiny_sys"]["fused"]
        assert got["eer"] == pytest.approx(want["eer"], abs=0.02) and got["cllr"] == pytest.approx(want["cllr"], rel=0.05)


def test_a_fusion_that_does_not_fit_its_models_is_refused(tiny_cache, tmp_path):
    import shutil

    from mie_core.service.verify import load_verifier

    folder = tmp_path / "cqt_tiny"
    shutil.copytree(tiny_cache["cache"] / "models" / "cqt_tiny", folder)
    meta = json.loads((folder / "fusion.json").read_text())
    coef = meta["detector"]["coef"]
    meta["detector"]["coef"] = coef[:-1]  # one value short: not two members of one width
    (folder / "fusion.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="fusion.json.*one width"):
        load_verifier(folder)
    meta["detector"]["coef"] = coef[:-2]  # two short: two members, but not these
    (folder / "fusion.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="detector takes"):
        load_verifier(folder)
    shutil.rmtree(folder / "clean")
    with pytest.raises(ValueError, match="clean"):  # the partner's folder is named in the error
        load_verifier(folder)


def test_evaluate_reports_every_source_with_the_calibration_fitted_without_it(tiny_cache, tiny_runs, tiny_corpus,
                                                                             tmp_path):
    """The per-source table of ``evaluate`` (issue 29): every shipped folder scored as the
    Verify page scores it, per source and pooled; the recalibration fitted without each
    source is affine, so it moves the verdicts but never a source's EER; a folder without a
    back-end is said to be not measured."""
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.parts import load_parts
    from mie_core.evaluation.report import markdown_sources, source_results

    root = tiny_cache["cache"]
    part = load_parts(tiny_corpus, ("test",), "program_disjoint")["test"]
    inst = sorted(part.rows["instrument_str"].unique())
    part.rows["source"] = part.rows["instrument_str"].map({n: "abc"[k % 3] for k, n in enumerate(inst)})
    paths = {"cqt_tiny": root / "models" / "cqt_tiny", "tiny_sys": root / "models" / "tiny_sys"}
    res = source_results({**paths, "raw": tiny_runs["mel"] / "best"}, EmbeddingStore(tmp_path / "emb"), "fp32",
                         n_draws=2, part=part)
    assert set(res["systems"]) == set(paths)
    assert "back-end" in res["not_measured"]["raw"]
    for name, r in res["systems"].items():
        assert set(r["before"]) == {"a", "b", "c", "pooled"}
        for s in "abc":
            assert r["loso"][s]["eer"] == pytest.approx(r["before"][s]["eer"], abs=1e-12)
            assert 0.0 <= r["loso"][s]["genuine_accepted"] <= 1.0
        assert r["before"]["pooled"]["n_target"] == r["loso"]["pooled"]["n_target"] > 0
    text = markdown_sources(res)
    assert text.count("| a (") == 2 and "pooled" in text
    # each row says its trials per draw, and the 95 % interval of the default's verdicts holds its rates
    for (name, r), line in zip(res["systems"].items(), (ln for ln in text.splitlines() if ln.startswith("| a ("))):
        cells = [c.strip() for c in line.strip(" |").split("|")]
        default = r["auto" if "auto" in r else "fusion" if "fusion" in r else "before"]["a"]
        assert cells[1] == f"{r['before']['a']['n_target']:.0f} / {r['before']['a']['n_nontarget']:.0f}"
        for (lo, hi), rate in zip((map(float, x.split("-")) for x in cells[-1].split(" / ")),
                                  (default["genuine_accepted"], default["impostors_rejected"])):
            assert lo - 0.5 <= 100 * rate <= hi + 0.5 and hi - lo > 0  # whole percents, rounded


def test_evaluate_measures_the_automatic_choice_with_the_shipped_condition_inputs(tiny_cache, tiny_corpus, tmp_path):
    """With the renders clean and through rooms (``condition_parts``), a fused system gets the
    automatic choice per source and the condition model fitted on every source, reading what
    the shipped one reads (``report.CONDITION_INPUTS``: six recording features, then the
    member vectors), each trial's studio weight a probability."""
    from mie_core.evaluation.embeddings import EmbeddingStore
    from mie_core.evaluation.parts import load_parts
    from mie_core.evaluation.report import CONDITION_INPUTS, source_results
    from mie_core.scoring.condition import ConditionModel
    from mie_core.service.verify import load_verifier

    parts = load_parts(tiny_corpus, ("test", "valid", "calib"), "program_disjoint")
    part = parts["test"]
    inst = sorted(part.rows["instrument_str"].unique())
    part.rows["source"] = part.rows["instrument_str"].map({n: "abc"[k % 3] for k, n in enumerate(inst)})
    folder = tiny_cache["cache"] / "models" / "tiny_sys"
    res = source_results({"tiny_sys": folder}, EmbeddingStore(tmp_path / "emb"), "fp32", n_draws=2, part=part,
                         condition_parts=(parts["valid"], parts["calib"]))
    r = res["systems"]["tiny_sys"]
    assert set(r["auto"]) == {"a", "b", "c", "pooled"}
    assert all(0.0 <= v["studio_weight"] <= 1.0 and 0.0 <= v["eer"] <= 0.5 for v in r["auto"].values())
    model = ConditionModel.from_dict(r["condition"])
    ver = load_verifier(folder)
    assert CONDITION_INPUTS == model.inputs == "recording+members"
    backends = ver.fusion_members(np.zeros((1, ver.width), np.float32))[0]
    assert model.coef.shape == (3, 6 + sum(b.width for b in backends))
    assert r["auto_margin"] == 0.0 and r["condition"]["fitted_on"]["studio"] == len(part.rows)


@needs_cache
def test_the_readme_s_per_source_table_is_what_the_cache_measured():
    """The README's real notes, source by source: its automatic column (EER and both verdict
    rates) is the shipped mel+cqt's ``real_calibration.json`` (what the Verify page quotes),
    to the printed digit, and says over how many draws."""
    import re

    from mie_core.evaluation.report import REAL_DRAWS
    from mie_core.service.verify import RealCalibration

    rc = RealCalibration.load(REPO / "cache" / "models" / "mel+cqt")
    text = (REPO / "README.md").read_text()
    assert f"means over {REAL_DRAWS} draws" in text and rc.fitted_on["draws"] == REAL_DRAWS
    labels = {"VSCO-2": "vsco2", "Karoryfer": "karoryfer", "Freesound packs": "freesound", "Iowa MIS": "iowa",
              "no source listed": "unlisted", "Salamander grand piano": "salamander", "all 538 notes": "pooled"}
    seen = set()
    for line in text.splitlines():
        m = re.match(r"\| ([^|(]+) \(\d+\) \|", line)
        if not m or m.group(1) not in labels:
            continue
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        eer, verdicts = cells[6], cells[7]
        r = rc.auto[labels[m.group(1)]]
        assert eer == f"{100 * r['eer']:.2f}", (m.group(1), eer)
        assert verdicts == f"{100 * r['genuine_accepted']:.1f} / {100 * r['impostors_rejected']:.1f}", m.group(1)
        seen.add(labels[m.group(1)])
    assert seen == set(rc.auto)
