"""The paper's study (Tables II-IV), declared in one file and run to the end over sessions.

    python -m training.study run [--jobs 2] [--max-runs N]   # train and evaluate what is missing
    python -m training.study status                          # finished / partial / missing, and the pace
    python -m training.study report                          # docs/study/results.json, docs/study/tables.md

``recipes/study/study.yaml`` names the base recipe, the overrides every run shares, the one
budget in steps, the seeds, the conditions (each one factor changed from the base: Table III's
front-ends, Table II's ablations, ours without the recording chain) with the splits each is
trained on, and the paper's claims as pairs of conditions.

``run`` trains every missing (condition, split, seed) in the file's order, ``--jobs`` side by
side with one thread each (``python -m training.train`` in a child process, its output in
``runs/study/NAME.out``), along the base recipe's own schedule to the budget's step
(``--stop-at-step``), exports the model there (``atSTEPS/``) and evaluates it
(:mod:`training.study_eval`, ``eval_atSTEPS.json`` in the run folder). A run is claimed by an
OS lock while a worker has it, so two ``run`` commands share the work instead of doubling it;
a killed run carries on from its last checkpoint (``--resume``), and a run stopped with the
study (SIGTERM or Ctrl-C to ``run``) checkpoints the step it is on first; a finished run (its record,
here or in ``docs/study/results.json`` when the run folder is gone) is never retrained; a
larger budget later carries every run on along the same schedule.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mie_core.fileio import FileLock, LockedError
from training.config import ConfigError, apply_overrides, from_dict, _read_yaml

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "recipes" / "study" / "study.yaml"
RESULTS_DIR = ROOT / "docs" / "study"
SPLITS = {"program_disjoint": "pd", "soundfont_disjoint": "sd"}
TABLE_ORDER = ("III", "II", "ours")


@dataclass(frozen=True)
class Condition:
    """One factor changed from the base: ``overrides`` as ``section.key=value`` strings."""

    name: str
    table: str
    what: str
    overrides: tuple
    splits: tuple


@dataclass(frozen=True)
class Claim:
    """The paper found ``better`` better than ``worse`` on ``split`` (its EERs, %: ``paper``)."""

    id: str
    claim: str
    better: str
    worse: str
    split: str
    paper: tuple | None


@dataclass(frozen=True)
class Run:
    condition: str
    split: str
    seed: int
    overrides: tuple  # everything the run changes from the base config file

    @property
    def name(self) -> str:
        return f"{self.condition}_{SPLITS[self.split]}_s{self.seed}"


@dataclass(frozen=True)
class Study:
    base: Path
    recipe: tuple
    steps: int  # the budget: steps trained of the base schedule (optim.steps planned), where each run is judged
    seeds: tuple
    conditions: tuple
    claims: tuple
    out_dir: Path

    def condition(self, name: str) -> Condition:
        return next(c for c in self.conditions if c.name == name)

    def runs(self) -> list[Run]:
        """Every planned run, in the order they train: Table III on the program-disjoint split,
        then Table II, ours, and the soundfont-disjoint split; seeds outermost within each, so
        a partial study has every condition of a seed before the next seed."""
        groups = [(t, "program_disjoint") for t in TABLE_ORDER] + [(t, "soundfont_disjoint") for t in TABLE_ORDER]
        out = []
        for table, split in groups:
            for seed in self.seeds:
                for c in self.conditions:
                    if c.table == table and split in c.splits:
                        out.append(Run(c.name, split, seed, self._overrides(c, split, seed)))
        return out

    def _overrides(self, c: Condition, split: str, seed: int) -> tuple:
        name = Run(c.name, split, seed, ()).name
        return (*self.recipe, *c.overrides, f"data.split={split}", f"run.seed={seed}", f"run.name={name}",
                f"run.out_dir={_shown(self.out_dir)}", "run.threads=1")


def _shown(path: Path) -> str:
    """A path as the run's config records it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _pairs(mapping, where: str) -> tuple:
    if mapping is None:
        return ()
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where} must be a mapping of section.key: value")
    return tuple(f"{k}={json.dumps(v) if isinstance(v, (list, bool)) or v is None else v}" for k, v in mapping.items())


def load_study(path: str | Path = STUDY_FILE, out_dir: str | Path | None = None) -> Study:
    """The study file, validated: every run's config is built (and checked) here, so a bad
    override fails at once, naming the condition, not hours later."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: {err}") from None
    known = {"base", "recipe", "steps", "seeds", "conditions", "claims"}
    if not isinstance(raw, dict) or set(raw) - known or not {"base", "steps", "seeds", "conditions"} <= set(raw):
        extra = sorted(set(raw) - known) if isinstance(raw, dict) else []
        raise ConfigError(f"{path}: a study needs base, steps, seeds, conditions" + (f"; unknown keys {extra}" if extra else ""))
    steps = raw["steps"]
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{path}: steps must be a positive integer, not {steps!r}")
    seeds = tuple(raw["seeds"])
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path}: seeds must be distinct integers, not {raw['seeds']!r}")
    conditions = []
    for i, c in enumerate(raw["conditions"]):
        where = f"{path}: conditions[{i}]"
        if not isinstance(c, dict) or not {"name", "table", "what"} <= set(c):
            raise ConfigError(f"{where} needs name, table and what")
        if str(c["table"]) not in TABLE_ORDER:
            raise ConfigError(f"{where}: table must be one of {TABLE_ORDER}, not {c['table']!r}")
        splits = tuple(c.get("splits", ["program_disjoint"]))
        if not splits or set(splits) - set(SPLITS):
            raise ConfigError(f"{where}: splits must be from {sorted(SPLITS)}, not {list(splits)}")
        conditions.append(Condition(str(c["name"]), str(c["table"]), str(c["what"]), _pairs(c.get("set"), where), splits))
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: condition names repeat: {names}")
    claims = []
    for i, c in enumerate(raw.get("claims") or []):
        where = f"{path}: claims[{i}]"
        cl = Claim(str(c["id"]), str(c["claim"]), str(c["better"]), str(c["worse"]), str(c.get("split", "program_disjoint")),
                   tuple(c["paper"]) if c.get("paper") else None)
        for n in (cl.better, cl.worse):
            if n not in names:
                raise ConfigError(f"{where}: no condition named {n!r}")
            if cl.split not in next(x for x in conditions if x.name == n).splits:
                raise ConfigError(f"{where}: {n!r} is not trained on the {cl.split} split")
        claims.append(cl)
    study = Study(base=(path.parent / raw["base"]).resolve(), recipe=_pairs(raw.get("recipe"), f"{path}: recipe"),
                  steps=steps, seeds=seeds, conditions=tuple(conditions),
                  claims=tuple(claims), out_dir=Path(out_dir).resolve() if out_dir else ROOT / "runs" / "study")
    for r in study.runs():
        cfg = run_config(study, r)  # raises ConfigError naming the run
        if cfg.optim.steps < study.steps:
            raise ConfigError(f"{path}: the budget ({study.steps} steps) is beyond run {r.name}'s schedule "
                              f"({cfg.optim.steps} planned steps)")
    return study


def run_config(study: Study, run: Run):
    """The run's resolved :class:`training.config.Config`."""
    try:
        return from_dict(apply_overrides(_read_yaml(study.base), list(run.overrides)), str(study.base))
    except ConfigError as err:
        raise ConfigError(f"study run {run.name}: {err}") from None


# ---------------------------------------------------------------------------------------- state

def shipped_records(results_dir: Path = RESULTS_DIR) -> dict:
    """name -> record of the runs whose results ship in ``docs/study/results.json``."""
    path = results_dir / "results.json"
    if not path.exists():
        return {}
    return {r["run"]: r for r in json.loads(path.read_text()).get("runs", [])}


def model_dir(study: Study, run: Run) -> Path:
    """The run's model at the budget's step (``runs/study/NAME/at1000``)."""
    return study.out_dir / run.name / f"at{study.steps}"


def eval_path(study: Study, run: Run) -> Path:
    """The record of the run's model at the budget's step (``runs/study/NAME/eval_at1000.json``)."""
    return study.out_dir / run.name / f"eval_at{study.steps}.json"


def run_state(study: Study, run: Run, shipped: dict | None = None) -> str:
    """"done" (evaluated here, or its record ships), "trained" (its model at the budget's step
    exported, not evaluated), "partial" (a checkpoint to carry on from), "stale" (a run of
    another schedule in its folder) or "missing"."""
    d = study.out_dir / run.name
    rec = (shipped or {}).get(run.name)
    if rec and rec.get("steps") == study.steps:
        return "done"
    if d.is_dir() and _folder_steps(d) not in (None, run_config(study, run).optim.steps):
        return "stale"
    if eval_path(study, run).exists():
        return "done"
    if (model_dir(study, run) / "model.json").exists():
        return "trained"
    if (d / "state.pt").exists():
        return "partial"
    return "missing"


def _folder_steps(run_dir: Path) -> int | None:
    """The planned steps of the schedule of the run in a folder (its config.yaml), None without one."""
    try:
        return int(yaml.safe_load((run_dir / "config.yaml").read_text())["optim"]["steps"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def set_aside(run_dir: Path) -> Path:
    """Move a run of another schedule out of the way (``NAME@STEPS``, never deleted)."""
    steps = _folder_steps(run_dir)
    dest = run_dir.with_name(f"{run_dir.name}@{steps}")
    k = 1
    while dest.exists():
        dest, k = run_dir.with_name(f"{run_dir.name}@{steps}.{k}"), k + 1
    run_dir.rename(dest)
    return dest


def last_step(run_dir: Path) -> tuple[int, float | None]:
    """(last logged step, mean clips/s over the log) of a run folder (0, None without a log):
    the step of its last training record, or of a stop (``paused``) logged after it, which a
    stopped run checkpoints at."""
    step, rates = 0, []
    try:
        for line in (run_dir / "log.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec.get("event") in ("train", "paused"):
                step = rec["step"]
            if rec.get("event") == "train":
                rates.append(rec.get("clips_per_s") or 0)
    except (OSError, ValueError):
        pass
    return step, (sum(rates) / len(rates) if rates else None)


# ----------------------------------------------------------------------------------------- run

# runs a module as ``python -m`` would, after giving the process and its session the lowest CPU
# priority (mie_core.hardware.yield_cpu: nice alone does not hold between sessions)
_BACKGROUND = ("import runpy, sys; from mie_core.hardware import yield_cpu; yield_cpu(); "
               "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def child_command(argv: list[str], background: bool = False) -> list[str]:
    """The command line of a study child (``argv`` as after ``python``: ``["-m", module, ...]``).

    With ``background`` the child yields the CPU to every other job on the machine, its own
    session included (each child runs in a session of its own, so the runner's priority does not
    reach it).
    """
    if not background:
        return [sys.executable, *argv]
    if len(argv) < 2 or argv[0] != "-m":
        raise ValueError(f"a background child runs a module (-m MODULE ...), got {argv[:2]}")
    return [sys.executable, "-c", _BACKGROUND, *argv[1:]]


class Worker(threading.Thread):
    """Takes the next unclaimed run, trains it in a child process, evaluates it, repeats."""

    def __init__(self, study: Study, plan: list[Run], stop: threading.Event, budget: list, say,
                 background: bool = False):
        super().__init__(daemon=True)
        self.study, self.plan, self.stop, self.budget, self.say = study, plan, stop, budget, say
        self.background = background
        self.child: subprocess.Popen | None = None
        self.failed: list[str] = []

    def run(self) -> None:
        for run in self.plan:
            if self.stop.is_set():
                return
            if run_state(self.study, run, shipped_records()) == "done":
                continue
            claim = FileLock(self.study.out_dir / f".{run.name}.claim", timeout_s=0, what=f"study run {run.name}")
            try:
                claim.acquire()
            except LockedError:
                continue  # another worker has it
            try:
                with self.budget[0]:
                    if self.budget[1] == 0:
                        return
                    self.budget[1] -= 1
                if not (self._train(run) and self._evaluate(run)) and not self.stop.is_set():
                    self.failed.append(run.name)
            finally:
                claim.release()

    def _child(self, run: Run, argv: list[str], what: str) -> bool:
        log = self.study.out_dir / f"{run.name}.out"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        with open(log, "a") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(argv)}\n")
            out.flush()
            self.child = subprocess.Popen(child_command(argv, self.background), cwd=ROOT, stdout=out,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True)
            rc = self.child.wait()
        self.child = None
        if rc != 0 and not self.stop.is_set():
            self.say(f"{run.name}: {what} failed (exit {rc}); see {log}")
        return rc == 0

    def _train(self, run: Run) -> bool:
        d = self.study.out_dir / run.name
        state = run_state(self.study, run)
        if state == "stale":
            self.say(f"{run.name}: its folder holds a run of another schedule; moved to {set_aside(d).name}")
            state = "missing"
        if state == "trained":
            return True
        budget = ["--stop-at-step", str(self.study.steps)]
        if state == "partial":
            self.say(f"{run.name}: carrying on from its last checkpoint (logged to step {last_step(d)[0]})")
            argv = ["-m", "training.train", "--resume", str(d / "state.pt"), *budget]
        else:
            self.say(f"{run.name}: starting")
            argv = ["-m", "training.train", "--config", str(self.study.base), "--overwrite", *budget]
            for o in run.overrides:
                argv += ["--set", o]
        if not self._child(run, argv, "train"):
            return False
        # the model as it stands at the budget's step (the run's schedule may go on beyond it)
        return self._child(run, ["-m", "training.train", "--export", str(d / "state.pt"), "--to",
                                 str(model_dir(self.study, run))], "export")

    def _evaluate(self, run: Run) -> bool:
        ok = self._child(run, ["-m", "training.study_eval", str(self.study.out_dir / run.name), "--at",
                               str(self.study.steps)], "evaluate")
        if ok:
            self.say(f"{run.name}: finished and evaluated")
        return ok

    def terminate(self) -> None:
        if self.child is not None and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGTERM)


def cmd_run(args) -> int:
    study = load_study(args.study, args.out_dir)
    study.out_dir.mkdir(parents=True, exist_ok=True)
    plan = study.runs()
    if args.only:
        plan = [r for r in plan if r.condition in args.only.split(",")]
    stop = threading.Event()
    budget = [threading.Lock(), args.max_runs if args.max_runs is not None else -1]

    def say(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    if args.background:  # the runner waits on its children; each yields the CPU in a session of its own
        say("in the background: every run at the lowest priority (nice 19, its session's too)")
    workers = [Worker(study, plan, stop, budget, say, background=args.background) for _ in range(args.jobs)]

    def on_signal(signum, frame):  # noqa: ARG001
        stop.set()
        for w in workers:
            w.terminate()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    missing = sum(run_state(study, r, shipped_records()) != "done" for r in plan)
    say(f"study: {len(plan) - missing} of {len(plan)} runs done; {args.jobs} worker(s), one thread each")
    for w in workers:
        w.start()
        time.sleep(1.0)  # the first claims its run before the second looks
    for w in workers:
        while w.is_alive():
            w.join(timeout=1.0)
    failed = [n for w in workers for n in w.failed]
    left = sum(run_state(study, r, shipped_records()) != "done" for r in plan)
    say(f"study: {len(plan) - left} of {len(plan)} runs done" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def status_rows(study: Study) -> list[dict]:
    shipped = shipped_records()
    rows = []
    for r in study.runs():
        state = run_state(study, r, shipped)
        step, rate = last_step(study.out_dir / r.name)
        rows.append({"run": r.name, "condition": r.condition, "split": r.split, "seed": r.seed, "state": state,
                     "step": study.steps if state in ("done", "trained") else step, "clips_per_s": rate})
    return rows


def cmd_status(args) -> int:
    study = load_study(args.study, args.out_dir)
    rows = status_rows(study)
    for r in rows:
        rate = f"{r['clips_per_s']:.1f} clips/s" if r["clips_per_s"] else ""
        print(f"{r['run']:<24} {r['state']:<8} step {r['step']:>5}/{study.steps}  {rate}")
    done = sum(r["state"] == "done" for r in rows)
    rates = [r["clips_per_s"] for r in rows if r["clips_per_s"]]
    left_steps = sum(study.steps - r["step"] for r in rows if r["state"] != "done")
    line = f"{done} of {len(rows)} runs done"
    if rates:
        batch = run_config(study, study.runs()[0]).optim.batch_size
        hours = left_steps * batch / (sum(rates) / len(rates)) / 3600 / max(1, args.jobs)
        line += (f"; {left_steps} steps left: about {hours:.0f} h of training at {sum(rates) / len(rates):.0f} "
                 f"clips/s per run, {args.jobs} side by side (evaluation and rendering not counted)")
    print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default=str(STUDY_FILE), help="the study file (default recipes/study/study.yaml)")
    p.add_argument("--out-dir", help="where the runs go (default runs/study)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train and evaluate the missing runs")
    r.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default 2)")
    r.add_argument("--max-runs", type=int, default=None, help="start at most N runs, then stop")
    r.add_argument("--only", help="only these conditions (comma-separated)")
    r.add_argument("--background", action="store_true",
                   help="take only the CPU other jobs leave: every run at the lowest priority, its "
                        "session's included (mie_core.hardware.yield_cpu)")
    s = sub.add_parser("status", help="what is finished, partial and missing, and the pace")
    s.add_argument("--jobs", type=int, default=2, help="for the time estimate: runs side by side")
    rep = sub.add_parser("report", help="docs/study/results.json and tables.md from the runs present")
    rep.add_argument("--out", default=str(RESULTS_DIR), help="where results.json and tables.md go")
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            if args.jobs < 1:
                p.error("--jobs must be >= 1")
            return cmd_run(args)
        if args.cmd == "status":
            return cmd_status(args)
        from training.study_report import cmd_report

        return cmd_report(args)
    except ConfigError as err:
        print(f"study error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
