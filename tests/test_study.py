"""The paper's study: its declaration, its runner (resumable, never retraining), its report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.config import ConfigError
from training.study import STUDY_FILE, Run, child_command, load_study, run_config, run_state
from training.study_report import claim_tests, collect, markdown

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_study_declares_every_condition_and_seed():
    study = load_study()
    runs = study.runs()
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 48  # 10 conditions x 3 seeds + 6 front-ends x 3 seeds on a second split
    assert study.seeds == (100, 1000, 10000)
    assert names[0] == "cqt122_pd_s100" and {r.condition for r in runs[:6]} == {
        "cqt122", "mel122", "mel80", "cqt122_fixed", "mel122_fixed", "mel80_fixed"}  # Table III first
    assert [r.split for r in runs[-18:]] == ["soundfont_disjoint"] * 18


def _flat(cfg) -> dict:
    return {f"{sec}.{k}": v for sec, d in cfg.to_dict().items() for k, v in d.items()}


def test_each_condition_differs_from_the_base_only_in_its_factor():
    study = load_study()
    by = {(r.condition, r.split, r.seed): _flat(run_config(study, r)) for r in study.runs()}
    base = by[("cqt122", "program_disjoint", 100)]
    changes = {"mel122": {"model.init"}, "mel80": {"model.init", "model.n_filters"}, "cqt122_fixed": {"model.learnable"},
               "mel122_fixed": {"model.init", "model.learnable"},
               "mel80_fixed": {"model.init", "model.n_filters", "model.learnable"}, "no_augment": {"data.augment"},
               "no_family": {"head.family_weight"}, "softmax": {"head.kind", "head.margin"}, "no_chain": {"chain.enabled"},
               "cqt122": set()}
    for (cond, split, seed), flat in by.items():
        diff = {k for k in flat if flat[k] != base[k]} - {"run.name", "run.seed"}
        expected = set(changes[cond]) | ({"data.split"} if split != "program_disjoint" else set())
        assert diff == expected, (cond, split, seed, diff)
        assert flat["run.seed"] == seed and flat["run.threads"] == 1
    # today's recipe for real recordings on the base recipe's own schedule, judged at the budget's step: the
    # pilot's path (training/configs/scratch_mel122.yaml is the mel122 condition)
    assert base["chain.enabled"] and base["data.performed_share"] == 0.5
    from training.config import load_config

    pilot = _flat(load_config(REPO / "training" / "configs" / "scratch_mel122.yaml"))
    mel = by[("mel122", "program_disjoint", 100)]
    assert {k for k in mel if mel[k] != pilot[k]} <= {"run.name", "run.eval_every", "run.threads", "run.out_dir"}
    assert study.steps < base["optim.steps"] == 4000


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("better: cqt122, worse: softmax", "better: cqt122, worse: nosuch"), "no condition named 'nosuch'"),
    (lambda s: s.replace("{data.augment: false}", "{data.augmentt: false}"), "no_augment"),
    (lambda s: s.replace("steps: 1000", "steps: -5"), "steps must be a positive integer"),
    (lambda s: s.replace("steps: 1000", "steps: 5000"), "beyond run cqt122_pd_s100's schedule"),
    (lambda s: s.replace("split: soundfont_disjoint, paper: [1.03", "split: program_disjoint, paper: [1.03")
     .replace("name: mel122\n    table: III\n    what: Mel-122, filters learned\n    set: {model.init: mel}\n"
              "    splits: [program_disjoint, soundfont_disjoint]",
              "name: mel122\n    table: III\n    what: Mel-122, filters learned\n    set: {model.init: mel}\n"
              "    splits: [soundfont_disjoint]"), "is not trained on the program_disjoint split"),
])
def test_a_bad_study_file_fails_at_load_naming_the_fault(tmp_path, edit, message):
    bad = tmp_path / "study.yaml"
    text = STUDY_FILE.read_text().replace("base: ../../training/configs/base.yaml",
                                          f"base: {REPO / 'training' / 'configs' / 'base.yaml'}")
    bad.write_text(edit(text))
    with pytest.raises(ConfigError, match=message):
        load_study(bad)


def _record(name, split, seed, clean, wet, real, steps=1000, n=800):
    part = lambda e: {"eer": e, "n_target": n, "n_nontarget": n, "by_group": {"VSCO-2": e}}  # noqa: E731
    return {"run": name, "split": split, "seed": seed, "steps": steps,
            "parts": {"clean": part(clean), "wet": part(wet), "real": part(real)},
            "probing": {"family": {"micro_f1": 0.5, "macro_f1": 0.4, "improvement_macro": 1.0}}}


def test_claims_are_z_tested_with_holm_and_given_a_verdict(tmp_path):
    study = load_study(out_dir=tmp_path / "runs")
    records = []
    for seed in study.seeds:
        records.append({**_record(f"cqt122_pd_s{seed}", "program_disjoint", seed, 0.05, 0.10, 0.10), "condition": "cqt122"})
        # softmax: far worse on clean notes (reproduced), far better on wet (reversed), equal on real
        records.append({**_record(f"softmax_pd_s{seed}", "program_disjoint", seed, 0.15, 0.04, 0.10), "condition": "softmax"})
    tests = claim_tests(study, records)
    by_part = {t["part"]: t for t in tests if t["id"] == "a"}
    assert [t["id"] for t in tests] == ["a"] * 3  # only the claim with both conditions present
    assert by_part["clean"]["verdict"] == "reproduced" and by_part["wet"]["verdict"] == "reversed"
    assert by_part["real"]["verdict"] == "not significant" and by_part["real"]["p"] == 1.0
    # Eq. 1 by hand for the clean row: z = 2 |a - b| / sqrt((a(1-a) + b(1-b)) (Nt + Nn) / (Nt Nn))
    z = 2 * 0.10 / np.sqrt((0.05 * 0.95 + 0.15 * 0.85) * 1600 / 800**2)
    assert by_part["clean"]["z"] == pytest.approx(z)
    assert by_part["clean"]["p_holm"] >= by_part["clean"]["p"]  # Holm never lowers a p-value
    text = markdown(study, records, ["mel122_pd_s100"], tests)
    assert "6 of 7 runs finished" in text and "Missing: mel122_pd_s100" in text
    assert "| Base without the recording chain | not run yet |" in text
    assert "5.00 +- 0.00" in text and "reversed" in text


def test_collect_keeps_shipped_records_and_drops_another_budget(tmp_path):
    study = load_study(out_dir=tmp_path / "runs")
    shipped = tmp_path / "docs"
    shipped.mkdir()
    (shipped / "results.json").write_text(json.dumps({"runs": [
        _record("cqt122_pd_s100", "program_disjoint", 100, 0.05, 0.1, 0.1),
        _record("mel122_pd_s100", "program_disjoint", 100, 0.05, 0.1, 0.1, steps=999)]}))
    on_disk = tmp_path / "runs" / "mel80_pd_s100"
    on_disk.mkdir(parents=True)
    (on_disk / "eval_at1000.json").write_text(json.dumps(_record("mel80_pd_s100", "program_disjoint", 100, 0.07, 0.1, 0.1)))
    records, missing = collect(study, shipped)
    assert [r["run"] for r in records] == ["cqt122_pd_s100", "mel80_pd_s100"]
    assert "mel122_pd_s100" in missing and len(missing) == 46
    runs = {r.name: r for r in study.runs()}
    from training.study import shipped_records

    assert run_state(study, runs["cqt122_pd_s100"], shipped_records(shipped)) == "done"  # never retrained
    assert run_state(study, runs["mel80_pd_s100"]) == "done"
    assert run_state(study, runs["mel122_pd_s100"], shipped_records(shipped)) == "missing"


def test_min_cllr_is_calibration_free():
    from mie_core.scoring.metrics import cllr, min_cllr

    rng = np.random.default_rng(0)
    t, n = rng.normal(1.0, 1.0, 400), rng.normal(-1.0, 1.0, 400)
    m = min_cllr(t, n)
    assert 0 < m < 1
    assert min_cllr(np.exp(t), np.exp(n)) == pytest.approx(m)  # any increasing map of the scores
    for a, b in ((2.0, 0.0), (0.5, 0.3), (1.0, -1.0)):  # below the cost of every affine calibration
        assert m <= cllr(a * t + b, a * n + b) + 1e-12


def _tiny_study(tmp_path, corpus_root) -> Path:
    text = f"""
base: {REPO / 'training' / 'configs' / 'tiny.yaml'}
recipe:
  data.corpus: {corpus_root}
  run.precision: fp32
  run.eval_every: 4
  run.ckpt_every: 2
steps: 6
seeds: [100]
conditions:
  - {{name: cqt, table: III, what: CQT, set: {{}}, splits: [program_disjoint]}}
  - {{name: mel, table: III, what: Mel, set: {{model.init: mel}}, splits: [program_disjoint]}}
claims:
  - {{id: d, claim: CQT beats Mel, better: cqt, worse: mel, split: program_disjoint, paper: null}}
"""
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_study_runs_side_by_side_resumes_and_never_retrains(tiny_corpus, tmp_path):
    from conftest import train_env

    path = _tiny_study(tmp_path, tiny_corpus.root)
    out = tmp_path / "runs"
    study = load_study(path, out)
    env = {**train_env(), "MIE_EMBEDDINGS": str(tmp_path / "emb")}
    cqt, mel = study.runs()
    # the Mel run was interrupted at step 2 (its checkpoint kept): the study carries it on
    subprocess.run([sys.executable, "-m", "training.train", "--config", str(study.base), "--stop-at-step", "2",
                    *[a for o in mel.overrides for a in ("--set", o)]], cwd=REPO, env=env, check=True,
                   capture_output=True)
    assert run_state(study, mel) == "partial"
    cmd = [sys.executable, "-m", "training.study", "--study", str(path), "--out-dir", str(out)]
    r = subprocess.run([*cmd, "run", "--jobs", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mel_pd_s100: carrying on from its last checkpoint" in r.stdout and "cqt_pd_s100: starting" in r.stdout
    assert all(run_state(study, x) == "done" for x in (cqt, mel))
    log = [json.loads(line) for line in (out / mel.name / "log.jsonl").read_text().splitlines()]
    assert {"event": "resume", "step": 2} in [{k: e[k] for k in ("event", "step") if k in e} for e in log]
    rec = json.loads((out / cqt.name / "eval_at6.json").read_text())
    # judged at the budget's step of the tiny recipe's own 200-step schedule
    assert rec["steps"] == 6 and rec["clips"] == 6 * 16 and len(rec["checkpoint_sha256"]) == 64
    assert {"clean", "wet"} <= set(rec["parts"]) and 0 <= rec["parts"]["clean"]["eer"] <= 1
    assert len(rec["bands_hz"]) == 40 and [s for s, _ in rec["curve"]] == [4]
    # the two parts are the same notes, clean and through the chain
    assert rec["parts"]["clean"]["n_target"] == rec["parts"]["wet"]["n_target"]
    # a second run trains nothing
    before = (out / cqt.name / "eval_at6.json").stat().st_mtime_ns
    r = subprocess.run([*cmd, "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "2 of 2 runs done" in r.stdout and "starting" not in r.stdout
    assert (out / cqt.name / "eval_at6.json").stat().st_mtime_ns == before
    docs = tmp_path / "docs"
    r = subprocess.run([*cmd, "report", "--out", str(docs)], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((docs / "results.json").read_text())
    assert [x["run"] for x in res["runs"]] == ["cqt_pd_s100", "mel_pd_s100"] and res["missing"] == []
    assert {c["part"] for c in res["claims"]} >= {"clean", "wet"}
    assert "2 of 2 runs finished" in (docs / "tables.md").read_text()


def test_a_run_of_another_budget_is_set_aside_not_deleted(tmp_path):
    from training.study import set_aside

    study = load_study(out_dir=tmp_path / "runs")
    run = study.runs()[0]
    d = study.out_dir / run.name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("optim:\n  steps: 1000\n")  # a schedule compressed into 1,000 steps
    (d / "eval_at1000.json").write_text("{}")
    assert run_state(study, run) == "stale"
    moved = set_aside(d)
    assert moved.name == f"{run.name}@1000" and (moved / "eval_at1000.json").exists() and not d.exists()
    assert run_state(study, run) == "missing"


def test_a_background_child_runs_its_module_at_the_lowest_priority_in_its_own_session():
    """--background: each child (a session of its own) yields the CPU, and gets its arguments."""
    check = ["-m", "timeit", "-n", "1", "-r", "1", "import os; assert os.nice(0) == 19"]
    low = subprocess.run(child_command(check, background=True), capture_output=True, text=True,
                         start_new_session=True)
    assert low.returncode == 0 and "1 loop" in low.stdout, low.stderr
    if Path("/proc/self/autogroup").exists():
        show = ["-m", "timeit", "-n", "1", "-r", "1", "print(open('/proc/self/autogroup').read())"]
        out = subprocess.run(child_command(show, background=True), capture_output=True, text=True,
                             start_new_session=True).stdout
        assert "nice 19" in out, out
    assert child_command(check) == [sys.executable, *check]
    with pytest.raises(ValueError, match="runs a module"):
        child_command(["script.py"], background=True)


def test_last_step_reads_a_stop_logged_after_the_training_records(tmp_path):
    """A run stopped by a signal checkpoints at the step it was on, past its last training
    record: that step is what the study reports it carries on from; clips/s from training records."""
    from training.study import last_step

    lines = [{"event": "train", "step": 10, "clips_per_s": 4.0}, {"event": "train", "step": 20, "clips_per_s": 6.0},
             {"event": "paused", "step": 23, "reason": "signal"}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert last_step(tmp_path) == (23, 5.0)
    lines.append({"event": "train", "step": 30, "clips_per_s": 8.0})  # resumed at 23 and carried on
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert last_step(tmp_path) == (30, 6.0)
    assert last_step(tmp_path / "none") == (0, None)
