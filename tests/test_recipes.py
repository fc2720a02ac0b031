"""The recipes' scripts run as written: the GPU script's dry run builds every model it
would train (tiny config here), and the LMFT recipe's config loads."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_gpu_script_dry_runs_every_stage_on_the_tiny_config(tiny_corpus):
    env = {**os.environ, "DRY_RUN": "1", "PY": os.environ.get("PYTHON", "python"), "CONFIG": "training/configs/tiny.yaml",
           "FINETUNE": "training/configs/tiny.yaml", "INIT": "cache/models/cqt122",
           "EXTRA": f"--set data.corpus={tiny_corpus.root}", "OMP_NUM_THREADS": "1"}
    import sys

    env["PY"] = sys.executable
    res = subprocess.run(["bash", "recipes/gpu/run.sh", "1", "3"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("encoder parameters:") == 2  # mel122_gpu and the fine-tuning, each built
    assert "init: mel" in res.stdout and "name: mel122_gpu" in res.stdout and "name: cqt122_pairs_gpu" in res.stdout


def test_the_lmft_recipe_loads_as_documented():
    from training.config import load_config

    cfg = load_config(REPO / "recipes" / "lmft" / "cqt122_lmft.yaml")
    assert (cfg.data.crop_s, cfg.head.effective_margin, cfg.optim.lr) == (3.0, 3, 1e-4)
    assert cfg.optim.head_warmup_steps == 200 and cfg.chain.enabled and cfg.data.performed_share == 0.5
    lam = cfg.head.lambda_base / (1 + cfg.head.lambda_gamma * cfg.optim.steps)
    assert abs(lam - cfg.head.lambda_min) < 0.05  # lambda reaches its floor at the last step, as the config says


def test_the_variable_duration_recipe_differs_from_lmft_in_its_crops_alone():
    import dataclasses

    from training.config import load_config

    lmft = load_config(REPO / "recipes" / "lmft" / "cqt122_lmft.yaml")
    var = load_config(REPO / "recipes" / "lmft_var" / "cqt122_lmft_var.yaml")
    assert (var.data.crop_min_s, var.data.crop_s) == (0.5, 4.0)
    assert dataclasses.replace(var.data, crop_s=3.0, crop_min_s=0.0) == lmft.data
    assert (var.optim, var.head, var.chain) == (lmft.optim, lmft.head, lmft.chain)


def test_the_sibling_recipe_differs_from_the_shipped_pairs_member_s_in_its_siblings_alone():
    import dataclasses

    from training.config import load_config

    pairs = load_config(REPO / "recipes" / "register_pairs" / "cqt122_pairs.yaml")
    sib = load_config(REPO / "recipes" / "sibling_pairs" / "cqt122_siblings.yaml")
    assert sib.pairs.siblings and sib.pairs.sibling_kind == "family" and not pairs.pairs.siblings
    assert dataclasses.replace(sib.pairs, siblings=False, sibling_kind="program") == pairs.pairs
    assert (sib.model, sib.data, sib.optim, sib.head, sib.chain) == (pairs.model, pairs.data, pairs.optim, pairs.head,
                                                                      pairs.chain)


SHIPPED = {"cqt122": "cqt122", "cqt122_clean": "cqt122/clean", "mel122": "mel122", "mel122_clean": "mel122/clean"}
# how a run is executed, not what it learns: free to differ from the shipped model's record
EXECUTION = {"name", "out_dir", "threads", "device", "precision", "eval_every", "ckpt_every", "log_every"}


def test_the_shipped_recipe_names_each_run_as_it_ships_and_trains_what_shipped():
    """recipes/shipped/NAME.yaml trains runs/shipped/NAME, shipped as cache/models/NAME (``_clean``:
    the partner's ``/clean``), with every setting the shipped model's provenance records (fields
    added since then at their defaults, which are the old behaviour)."""
    import json

    from training.config import load_config

    for name, folder in SHIPPED.items():
        cfg = load_config(REPO / "recipes" / "shipped" / f"{name}.yaml")
        assert (cfg.run.name, cfg.run.out_dir) == (name, "runs/shipped")
        recorded = json.loads((REPO / "cache" / "models" / folder / "model.json").read_text())["provenance"]["config"]
        mine = cfg.to_dict()
        differ = [(sec, k, mine[sec][k], v) for sec, fields_ in recorded.items() for k, v in fields_.items()
                  if not (sec == "run" and k in EXECUTION)
                  and (list(mine[sec][k]) if isinstance(mine[sec][k], tuple) else mine[sec][k]) != v]
        assert not differ, (name, differ)


def test_make_cache_runs_the_steps_the_manifest_records():
    """``make cache`` (recipes/shipped/run.sh stage 5) runs the build steps of
    cache/manifest.json's command, in its order, with its options (checkpoint paths aside:
    the shipped cache was built from runs under their former names)."""
    import json
    import re
    import shlex

    def steps(commands: list[str]) -> list[list[str]]:
        out = []
        for c in commands:
            args = shlex.split(c.split("(")[0])
            args = args[args.index("training.build_cache") + 1:]
            args = args[:next((i for i, a in enumerate(args) if a in ("$PY", "fi")), len(args))]  # the step's own
            # NAME=PATH of --model/--clean/--member: the name kept, the path not
            out.append([re.sub(r"=(?!.*,).*/.*$", "=PATH", a) if args[i - 1] in ("--model", "--clean", "--member") else a
                        for i, a in enumerate(args)])
        return out

    manifest = json.loads((REPO / "cache" / "manifest.json").read_text())["command"]
    recorded = steps([c.strip() for c in manifest.split("; then ")])
    script = (REPO / "recipes" / "shipped" / "run.sh").read_text()
    stage5 = script[script.index('if on 5;'):script.index('if on 6;')]
    lines = " ".join(line.split("#")[0] for line in stage5.replace("\\\n", " ").splitlines())  # comments aside
    mine = steps(["python -m training.build_cache" + c for c in lines.split("$PY -m training.build_cache")[1:]])
    # the manifest's first step says "(probing added by --probing-only)": that step comes next
    assert ["--probing-only"] in mine and mine.index(["--probing-only"]) == 1
    assert [s for s in mine if s != ["--probing-only"]] == recorded, (mine, recorded)


def test_every_recipe_script_parses_and_asked_for_no_stage_does_nothing(tmp_path):
    """Each recipes/*/run.sh is valid bash and, asked for a stage past its last, exits 0 having
    run nothing (what it writes goes to runs/ and its results/: nothing new appears)."""
    import glob

    scripts = sorted(glob.glob(str(REPO / "recipes" / "*" / "run.sh")))
    assert len(scripts) >= 8
    for script in scripts:
        assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0, script
        res = subprocess.run(["bash", script, "99", "99"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PY": "false"})  # any command it ran would fail
        assert res.returncode == 0 and not res.stdout, (script, res.stdout, res.stderr)
