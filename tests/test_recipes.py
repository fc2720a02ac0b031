"""The recipes' scripts run as written: the GPU script's dry run builds every model it
would train (tiny config here), and the LMFT recipe's config loads."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_gpu_script_dry_runs_every_stage_on_the_tiny_config(tiny_corpus):
    env = {**os.environ, "DRY_RUN": "1", "PY": os.environ.get("PYTHON", "python"), "CONFIG": "training/configs/tiny.yaml",
           "LMFT": "training/configs/tiny.yaml", "INIT": "cache/models/cqt122",
           "EXTRA": f"--set data.corpus={tiny_corpus.root}", "OMP_NUM_THREADS": "1"}
    import sys

    env["PY"] = sys.executable
    res = subprocess.run(["bash", "recipes/gpu/run.sh", "1", "3"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("encoder parameters:") == 2  # mel122_gpu and the fine-tuning, each built
    assert "init: mel" in res.stdout and "name: mel122_gpu" in res.stdout and "name: cqt122_lmft_gpu" in res.stdout


def test_the_lmft_recipe_loads_as_documented():
    from training.config import load_config

    cfg = load_config(REPO / "recipes" / "lmft" / "cqt122_lmft.yaml")
    assert (cfg.data.crop_s, cfg.head.effective_margin, cfg.optim.lr) == (3.0, 3, 1e-4)
    assert cfg.optim.head_warmup_steps == 200 and cfg.chain.enabled and cfg.data.performed_share == 0.5
    lam = cfg.head.lambda_base / (1 + cfg.head.lambda_gamma * cfg.optim.steps)
    assert abs(lam - cfg.head.lambda_min) < 0.05  # lambda reaches its floor at the last step, as the config says
