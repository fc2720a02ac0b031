"""Train the instrument encoder (paper Sec. V-B).

    python -m training.train --config training/configs/cqt122.yaml
    python -m training.train --resume runs/cqt122/state.pt [--max-minutes 60]
    python -m training.train --config ... --stop-at-step 500  # a budget in steps; resumable
    python -m training.train --config training/configs/tiny.yaml --init-from runs/cqt122/best
    python -m training.train --config ... --dry-run          # parameter counts, nothing trained
    torchrun --nproc_per_node 8 -m training.train --config ...   # DDP, one process per GPU

A run folder ``<run.out_dir>/<run.name>/`` holds ``config.yaml`` (the resolved config),
``log.jsonl`` (loss, learning rate, clips/s, validation EER), ``state.pt`` (everything
to resume exactly: model, heads, optimizer, step, random-generator states, config,
label maps, corpus recipe, versions), ``best/`` and ``last/`` (safetensors + JSON:
what the app and ``mie_core`` load; nothing unpickled).

A run killed at any moment and resumed loses at most the steps since its last
checkpoint (``run.ckpt_every``) and then follows the same path: the data sampler's
generator, torch's generator, the optimizer and the step are all restored, and the
learning-rate schedule is a function of the step alone. A run asked to stop (SIGTERM, or
Ctrl-C's SIGINT) loses nothing: it finishes the step under way, checkpoints, and exits with
128 + the signal's number (143, 130); a second signal stops it at once. (One process only:
under DDP, torchrun's own handling stands.)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mie_core.scoring import metrics, trials
from mie_core.nnet.heads import DualHead
from mie_core.nnet.checkpoint import CheckpointError, library_versions, load_encoder, save_checkpoint
from mie_core.fileio import FileLock, LockedError
from mie_core.hardware import cpu_has_bf16
from mie_core.nnet.model import InstrumentEncoder
from training.config import Config, ConfigError, apply_overrides, dump_config, from_dict, load_config, with_run
from training.data import ClipSampler, ParallelBatches, Prefetcher, load_corpus_sets, load_nsynth_sets, load_rwc_sets
from training.pairs import pair_loss

REPO = Path(__file__).resolve().parent.parent


class TrainModel(nn.Module):
    """Encoder + heads as one module (one DDP wrapper keeps both in sync)."""

    def __init__(self, encoder: InstrumentEncoder, heads: DualHead):
        super().__init__()
        self.encoder = encoder
        self.heads = heads

    def forward(self, wave, instrument, family, iteration: int, freeze_encoder: bool = False, pitch=None):
        if freeze_encoder:  # heads alone learn (optim.head_warmup_steps): no graph through the encoder
            with torch.no_grad():
                emb = self.encoder(wave)
        else:
            emb = self.encoder(wave)
        return {**self.heads(emb, instrument, family, iteration, pitch), "embedding": emb}


def lr_at(step: int, cfg: Config) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then exponential decay."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    span = max(1, o.steps - o.warmup_steps)
    return o.lr * o.lr_final_ratio ** ((step - o.warmup_steps) / span)


def build(cfg: Config, n_instruments: int, n_families: int) -> TrainModel:
    enc = InstrumentEncoder(cfg.model)
    h = cfg.head
    heads = DualHead(cfg.model.embed_dim, n_instruments, n_families, kind=h.kind, family_weight=h.family_weight,
                     margin=h.effective_margin, lambda_base=h.lambda_base, lambda_gamma=h.lambda_gamma,
                     lambda_min=h.lambda_min, scale=h.scale, pitch_weight=h.pitch_weight)
    return TrainModel(enc, heads)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"host": platform.node(), "cpu": cpu, "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpus"] = torch.cuda.device_count()
    return out


def evaluate_eer(encoder: InstrumentEncoder, valid, seed: int, device, bf16: bool = False) -> dict:
    """Validation EER with the paper's protocol on whole notes (trials fixed by ``seed``)."""
    emb = encoder.embed(valid.audio, batch_size=32, device=device, bf16=bf16)
    encoder.train()
    tr = trials.make_trials(valid.instrument, np.random.default_rng(seed))
    s = trials.score_trials(emb, tr)
    t, n = s[tr.target], s[~tr.target]
    return {"eer": metrics.eer(t, n, "rocch"), "eer_interp": metrics.eer(t, n, "interp"),
            "min_dcf": metrics.min_dcf(t, n), "n_target": tr.n_target, "n_nontarget": tr.n_nontarget}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


def load_state(path: str | Path, flag: str = "--resume") -> dict:
    """A run's ``state.pt``, loaded without executing anything (``weights_only=True``).

    Only tensors and plain Python types are accepted; ``torch.__version__`` objects that
    runs before 2026-11-26 stored are allowed as the plain strings they are. A missing,
    empty, truncated or crafted file, or one whose fields have the wrong types, is a
    ConfigError naming it (``flag``: the option that named it, for the message).
    """
    import pickle

    from torch.torch_version import TorchVersion

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: no such file (give the run's state.pt)")
    if path.stat().st_size == 0:
        raise ConfigError(f"{flag} {path}: the file is empty, not a training state")
    try:
        with torch.serialization.safe_globals([TorchVersion]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ConfigError(f"{flag} {path}: refused, it holds something other than tensors and plain data "
                          f"({_first_line(err)})") from None
    except Exception as err:  # torch.load raises many kinds on a damaged file; every one is this line
        raise ConfigError(f"{flag} {path}: not a readable checkpoint ({_first_line(err)})") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "step", "config"} <= set(state):
        raise ConfigError(f"{flag} {path}: not a training state (no model, optimizer, step and config)")
    kinds = {"model": dict, "optimizer": dict, "config": dict, "label_maps": dict}
    for key, kind in kinds.items():
        if key in state and not isinstance(state[key], kind):
            raise ConfigError(f"{flag} {path}: its {key!r} is a {type(state[key]).__name__}, not a mapping")
    if isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise ConfigError(f"{flag} {path}: its 'step' is {state['step']!r}, not a step number")
    maps = state.get("label_maps", {})
    if not all(isinstance(maps.get(k), list) for k in ("instrument", "family")):
        raise ConfigError(f"{flag} {path}: its label_maps lack the instrument and family lists")
    return state


class RunLock:
    """An OS lock on a run folder (``.lock``; :class:`mie_core.fileio.FileLock`), held while a
    trainer writes there and released by the kernel if the process dies (a forked batch
    worker closes its copy), so two trainers never share a run folder."""

    def __init__(self, run_dir: Path):
        self.lock = FileLock(run_dir / ".lock", timeout_s=0, what=f"the run folder {run_dir}")
        try:
            self.lock.acquire()
        except LockedError as err:
            raise ConfigError(f"{run_dir} is in use by another trainer ({err}); wait for it or choose another "
                              "run.name / run.out_dir") from None

    def release(self) -> None:
        self.lock.release()


class Logger:
    def __init__(self, path: Path | None, interactive: bool):
        self.path = path
        self.interactive = interactive

    def event(self, **rec) -> None:
        if self.path is None:
            return
        rec = {"time": time.time(), **rec}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def say(self, msg: str) -> None:
        if self.path is not None:
            print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config (training/configs/NAME.yaml)")
    p.add_argument("--resume", help="state.pt of a run to carry on exactly")
    p.add_argument("--init-from", help="start from this model's encoder; new heads for the new labels")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config field")
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly at a checkpoint after N minutes")
    p.add_argument("--stop-at-step", type=int, default=None, metavar="N",
                   help="stop cleanly at a checkpoint after step N of the config's schedule (a budget in steps "
                        "that is the same on every machine; --resume carries on to the schedule's end)")
    p.add_argument("--dry-run", action="store_true", help="build the model, print parameter counts, train nothing")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in a folder that holds one (its state, log and exports are replaced)")
    p.add_argument("--export", metavar="STATE", help="write the model of a run's state.pt (its last checkpoint) "
                   "as a model folder, --to DIR; trains nothing")
    p.add_argument("--to", help="the model folder --export writes")
    p.add_argument("--averaged", action="store_true",
                   help="with --export: the average of the weights kept since run.average_from_step")
    args = p.parse_args(argv)
    if args.stop_at_step is not None and args.stop_at_step < 1:
        p.error(f"--stop-at-step must be a step >= 1, not {args.stop_at_step}")
    try:
        if args.export:
            print(f"wrote {export_state(args.export, args.to, args.averaged)}")
            return 0
        return run(args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2


def export_state(state_path: str | Path, folder: str | Path | None, averaged: bool = False) -> Path:
    """The model of a run's checkpoint (``state.pt``) as a model folder: what to keep when
    a run stops before its end (a GPU lease running out, say). The folder's provenance
    names the state, its step and clips; its metrics are the run's best validation.
    ``averaged``: the average of the weights since ``run.average_from_step`` instead
    (provenance ``averaged``: the steps it spans)."""
    if not folder:
        raise ConfigError("--export needs --to DIR (the model folder to write)")
    state = load_state(state_path, "--export")
    cfg = from_dict(state["config"], where=f"--export {state_path}")
    maps = state["label_maps"]
    model = build(cfg, len(maps["instrument"]), len(maps["family"]))
    average = state.get("average")
    if averaged and not average:
        raise ConfigError(f"--export {state_path} --averaged: the run keeps no average (run.average_from_step "
                          f"is {cfg.run.average_from_step}, at step {state['step']})")
    try:
        model.load_state_dict(average["model"] if averaged else state["model"])
    except (RuntimeError, TypeError, ValueError) as err:
        raise ConfigError(f"--export {state_path}: its weights do not fit its config ({_first_line(err)})") from None
    trained_s = state.get("trained_s", 0.0)
    prov = {"config": cfg.to_dict(), "corpus": state.get("recipe"), "versions_at_training": state.get("versions"),
            "step": state["step"], "clips_seen": state.get("clips_seen"), "trained_minutes": round(trained_s / 60, 2),
            "exported_from": str(Path(state_path).resolve()),
            "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if averaged:
        prov["averaged"] = {"from_step": average["from_step"], "to_step": state["step"], "n_steps": average["count"]}
    try:
        return save_checkpoint(folder, model.encoder, model.heads, maps, prov, {"valid": state.get("best")})
    except (CheckpointError, OSError) as err:
        raise ConfigError(f"--export --to {folder}: {err}") from None


def update_average(average: dict | None, weights: dict, from_step: int) -> dict:
    """The running uniform mean of a model's state after one more step: floating tensors
    (weights and batch-norm statistics) averaged, the others (batch counters) the latest.

    >>> a = update_average(None, {"w": torch.tensor([1.0]), "n": torch.tensor(1)}, 0)
    >>> a = update_average(a, {"w": torch.tensor([3.0]), "n": torch.tensor(2)}, 0)
    >>> a["count"], a["model"]["w"].tolist(), int(a["model"]["n"])
    (2, [2.0], 2)
    """
    if average is None:
        return {"from_step": from_step, "count": 1,
                "model": {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                          for k, v in weights.items()}}
    average["count"] += 1
    for k, v in weights.items():
        mean = average["model"][k]
        if v.is_floating_point():
            mean.add_(v.detach().float() - mean, alpha=1.0 / average["count"])
        else:
            mean.copy_(v)
    return average


def resolve_config(args) -> tuple[Config, dict | None]:
    """The run's config (from --config and --set, or from --resume's state) and that state."""
    if args.resume:
        state = load_state(args.resume)
        for item in args.set:
            if not item.startswith("run."):
                raise ConfigError(f"--set {item}: only run.* settings may change on --resume")
            if item.split("=", 1)[0] in ("run.name", "run.out_dir"):
                raise ConfigError(f"--set {item}: a resumed run writes where its state.pt is; copy the run folder "
                                  "to carry it on elsewhere")
        try:
            raw = apply_overrides(state["config"], args.set)
        except ConfigError as err:
            raise ConfigError(f"--resume {args.resume}: {err}") from None
        cfg = from_dict(raw, where=f"--resume {args.resume}")
        # the run folder is the one that holds the state: resuming a copy never writes into
        # the folder named inside it (where a newer or finished run may be)
        here = Path(args.resume).resolve().parent
        return with_run(cfg, name=here.name, out_dir=str(here.parent)), state
    if args.config:
        return load_config(args.config, args.set), None
    raise ConfigError("give --config, --resume or --export")


def select_device(cfg: Config, local_rank: int, world: int) -> tuple[torch.device, bool]:
    """(device, bf16 autocast?) of this process; joins the process group under torchrun."""
    if cfg.run.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.run.device)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    if cfg.run.precision == "auto":
        bf16 = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or (device.type == "cpu" and cpu_has_bf16())
    else:
        bf16 = cfg.run.precision == "bf16"
    return device, bf16


def print_dry_run(cfg: Config, device: torch.device, bf16: bool) -> None:
    n_inst = _count_instruments(cfg)
    model = build(cfg, max(n_inst, 1), 11)
    enc = model.encoder
    print(dump_config(cfg))
    print(f"encoder parameters: {enc.n_parameters():,} (front-end {sum(p.numel() for p in enc.frontend.parameters()):,}, "
          f"ResNet {sum(p.numel() for p in enc.encoder.parameters()):,}, "
          f"pooling {sum(p.numel() for p in enc.pooling.parameters()):,}, "
          f"projection {sum(p.numel() for p in enc.projection.parameters()):,})")
    print(f"head parameters: {sum(p.numel() for p in model.heads.parameters()):,} "
          f"({n_inst} instruments, 11 families)")
    print(f"precision: {'bf16 autocast' if bf16 else 'fp32'} on {device}")


RUN_FILES = ("state.pt", "log.jsonl", "config.yaml", "best", "last")


def claim_run_dir(run_dir: Path, resuming: bool, overwrite: bool) -> RunLock:
    """Lock the run folder; refuse one that holds a run unless resuming or ``overwrite``."""
    import shutil

    lock = RunLock(run_dir)
    held = [n for n in RUN_FILES if (run_dir / n).exists()]
    if not resuming and held:
        if not overwrite:
            lock.release()
            how = (f"carry it on with `--resume {run_dir / 'state.pt'}`, or " if "state.pt" in held else "")
            raise ConfigError(f"{run_dir} already holds a run ({', '.join(held)}); {how}pass --overwrite to start a "
                              "new one there, or choose another run.name")
        for old in ("state.pt", "log.jsonl", "config.yaml"):
            (run_dir / old).unlink(missing_ok=True)
        for old in ("best", "last"):
            shutil.rmtree(run_dir / old, ignore_errors=True)
    return lock


def distill_source(cfg: Config, init_from: str | None, state: dict | None) -> str | None:
    """The model a distilled run learns from: ``distill.teacher``, or for ``init`` the model
    the run started from (``--init-from``; a resumed run's own); None without distillation."""
    if not cfg.distill.enabled:
        return None
    if cfg.distill.teacher != "init":
        return cfg.distill.teacher
    source = init_from if state is None else state.get("recipe", {}).get("init_from")
    if not source:
        raise ConfigError("distill.teacher 'init' is the model given by --init-from; none was given")
    return str(source)


def run(args) -> int:
    t_start = time.monotonic()
    cfg, state = resolve_config(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device, bf16 = select_device(cfg, int(os.environ.get("LOCAL_RANK", "0")), world)
    if args.dry_run:
        print_dry_run(cfg, device, bf16)
        return 0
    # the teacher before the data (minutes on a real corpus): a missing one fails at once
    teacher_source, teacher = distill_source(cfg, args.init_from, state), None
    if teacher_source:
        from training.distill import load_teacher

        try:
            teacher = load_teacher(teacher_source, cfg.model, device)
        except (OSError, ValueError) as err:
            raise ConfigError(f"distill.teacher: {err}") from None

    run_dir = Path(cfg.run.out_dir) / cfg.run.name
    is_main = rank == 0
    log = Logger(run_dir / "log.jsonl" if is_main else None, sys.stderr.isatty())
    if is_main:
        lock = claim_run_dir(run_dir, state is not None, args.overwrite)  # noqa: F841  (held until the process ends)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        log.say(f"run {run_dir}: {'bf16 autocast' if bf16 else 'fp32'} on {device}, {torch.get_num_threads()} threads, world {world}")

    loader = {"corpus": load_corpus_sets, "nsynth": load_nsynth_sets, "rwc": load_rwc_sets}[cfg.data.source]
    t0 = time.monotonic()
    train_set, valid_set, recipe = loader(cfg, log=log.say if is_main else None)
    render_s = time.monotonic() - t0
    if state is not None:  # where the run started from is provenance that a resume keeps
        recipe = {**recipe, **{k: v for k, v in state.get("recipe", {}).items() if k in ("init_from", "teacher")}}
    label_maps = {"instrument": train_set.instruments, "family": train_set.families}
    if is_main:
        log.say(f"{len(train_set.instruments)} training instruments, {train_set.audio.shape[0]} notes in memory "
                f"({train_set.audio.nbytes / 2**30:.2f} GiB, {render_s:.1f} s)")
        log.event(event="data", n_train_notes=int(train_set.audio.shape[0]), n_valid_notes=int(valid_set.audio.shape[0]),
                  n_instruments=len(train_set.instruments), seconds=render_s)

    torch.manual_seed(cfg.run.seed)
    model = build(cfg, len(train_set.instruments), len(train_set.families))
    if args.init_from and state is None:
        init = load_encoder(args.init_from)
        if init.args != cfg.model:
            raise ConfigError(f"--init-from {args.init_from}: its model arguments differ from the config's model section")
        model.encoder.load_state_dict(init.state_dict())
        recipe = {**recipe, "init_from": str(Path(args.init_from).resolve())}
    model.to(device)
    if bf16 or device.type == "cuda":
        # channels_last is what makes bf16 fast on CPU. In fp32 on CPU we keep the default
        # layout: torch 2.13's fp32 channels_last convolution backward corrupted the heap here
        # for some shapes (ResNet width 8 on 1-s crops: "double free or corruption").
        model.encoder.encoder.to(memory_format=torch.channels_last)
    if teacher is not None:
        from training.distill import relative_mse

        if bf16 or device.type == "cuda":
            teacher.encoder.to(memory_format=torch.channels_last)
        recipe = {**recipe, "teacher": str(Path(teacher_source).resolve())}
        if is_main:
            log.say(f"distillation from {teacher_source} (frozen), weight {cfg.distill.weight}")
    o = cfg.optim
    # two parameter groups only where the heads warm up alone (one group keeps older states resumable)
    params = ([{"params": list(model.encoder.parameters()), "name": "encoder"},
               {"params": list(model.heads.parameters()), "name": "heads"}] if o.head_warmup_steps else model.parameters())
    opt = torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
    per_rank = max(1, o.batch_size // world)
    if cfg.pairs.enabled and is_main:
        log.say(f"register pairs: {cfg.pairs.count(per_rank)} a batch, >= {cfg.pairs.min_semitones} semitones "
                f"apart, weight {cfg.pairs.weight}"
                f"{f', in twos of sibling instruments (same {cfg.pairs.sibling_kind})' if cfg.pairs.siblings else ''}")
    sampler = ClipSampler(train_set, cfg.data.crop_s, cfg.data.augment, cfg.data.concat_prob, cfg.data.concat_min_s,
                          cfg.data.concat_max_s, cfg.data.trim_top_db, seed=cfg.run.seed * 1009 + rank,
                          chain=make_chain(cfg, log.say if is_main else None), chain_share=cfg.chain.share,
                          keep_clean=teacher is not None, keep_pitch=cfg.head.pitch_weight > 0,
                          crop_min_s=cfg.data.crop_min_s, pair_count=cfg.pairs.count(per_rank),
                          pair_min_semitones=cfg.pairs.min_semitones, pair_siblings=cfg.pairs.sibling_kind if cfg.pairs.siblings else None)
    step, best, trained_s, clips_seen = 0, None, 0.0, 0
    average = None  # {"from_step", "count", "model"}: the weights' running mean (run.average_from_step)
    if state is not None:
        if state["label_maps"] != label_maps:
            raise ConfigError(f"{args.resume}: the training labels differ from the data now on disk")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, best = state["step"], state["best"]
        trained_s, clips_seen = state.get("trained_s", 0.0), state.get("clips_seen", 0)
        average = state.get("average")
        saved_stream = state["sampler"][rank] if isinstance(state["sampler"], list) else state["sampler"]
        if not cfg.data.batch_workers:  # with batch workers the stream's state is theirs (ParallelBatches)
            sampler.set_state(saved_stream)
        torch.set_rng_state(state["torch_rng"])
        if is_main:
            log.say(f"resumed at step {step} of {o.steps}")
            log.event(event="resume", step=step)

    if cfg.data.batch_workers:  # a resume keeps the run's config, so its number of workers too
        batches = ParallelBatches(sampler, per_rank, cfg.data.batch_workers, seed=cfg.run.seed * 1009 + rank,
                                  state=saved_stream if state is not None else None)
    else:
        batches = Prefetcher(sampler, per_rank)
    train_model: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    provenance = {
        "config": cfg.to_dict(), "commit": git_commit(), "machine": machine(), "corpus": recipe,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }

    def checkpoint() -> None:
        samplers = [batches.state]
        if world > 1:
            import torch.distributed as dist

            samplers = [None] * world
            dist.all_gather_object(samplers, batches.state)
        if not is_main:
            return
        _atomic_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
            "sampler": samplers, "torch_rng": torch.get_rng_state(), "config": cfg.to_dict(),
            "label_maps": label_maps, "recipe": recipe, "versions": library_versions(),
            "trained_s": trained_s, "clips_seen": clips_seen, "average": average,
        }, run_dir / "state.pt")

    def export(name: str, metrics_: dict) -> None:
        prov = {**provenance, "step": step, "trained_minutes": round(trained_s / 60, 2), "clips_seen": clips_seen,
                "clips_per_s": round(clips_seen / trained_s, 2) if trained_s else None,
                "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        save_checkpoint(run_dir / name, model.encoder, model.heads, label_maps, prov, metrics_)

    def validate() -> None:
        nonlocal best
        if not is_main:
            return
        t = time.monotonic()
        res = evaluate_eer(model.encoder, valid_set, cfg.run.eval_seed, device, bf16)
        log.event(event="valid", step=step, seconds=round(time.monotonic() - t, 1), **res)
        log.say(f"step {step}: valid EER {100 * res['eer']:.2f} % (interp {100 * res['eer_interp']:.2f} %)")
        if best is None or res["eer"] < best["eer"]:
            best = {"step": step, **res}
            export("best", {"valid": res})

    bar = None
    if is_main and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=o.steps, initial=step, desc="train", unit="step", file=sys.stderr)
    model.train()
    stop_reason = "done"
    window_t, window_clips = time.monotonic(), 0
    signalled, previous = _ask_to_stop_on_signals(world)
    while step < o.steps:
        if signalled:
            stop_reason = "signal"
            break
        if args.stop_at_step is not None and step >= args.stop_at_step:
            stop_reason = "steps"
            break
        if args.max_minutes is not None:
            out_of_time = time.monotonic() - t_start > args.max_minutes * 60
            if world > 1:  # every rank stops at the same step
                import torch.distributed as dist

                flag = torch.tensor([float(out_of_time)], device=device)
                dist.broadcast(flag, 0)
                out_of_time = bool(flag.item())
            if out_of_time:
                stop_reason = "time"
                break
        t_step = time.monotonic()
        lr = lr_at(step, cfg)
        heads_alone = step < o.head_warmup_steps
        for g in opt.param_groups:
            g["lr"] = lr if not heads_alone else (0.0 if g.get("name") == "encoder" else (o.head_lr or lr))
        x, yi, yf, *extra = batches.next()
        clean = extra[:1] if teacher is not None else []
        yp = torch.from_numpy(extra[-1]).to(device) if cfg.head.pitch_weight > 0 else None
        x = torch.from_numpy(x).to(device, non_blocking=True)
        yi = torch.from_numpy(yi).to(device)
        yf = torch.from_numpy(yf).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = train_model(x, yi, yf, step, heads_alone and world == 1, yp)
            if teacher is not None:
                with torch.no_grad():
                    target = teacher(torch.from_numpy(clean[0]).to(device, non_blocking=True))
        loss = out["loss"]
        if cfg.pairs.enabled:
            n_pair = 2 * cfg.pairs.count(per_rank)
            out["loss_pair"] = pair_loss(out["embedding"][:n_pair], yi[:n_pair], cfg.pairs.temperature)
            loss = loss + cfg.pairs.weight * out["loss_pair"]
        if teacher is not None:
            out["loss_distill"] = relative_mse(out["embedding"], target)
            loss = loss + cfg.distill.weight * out["loss_distill"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        step += 1
        if cfg.run.average_from_step and step > cfg.run.average_from_step:
            average = update_average(average, model.state_dict(), cfg.run.average_from_step)
        clips_seen += per_rank * world
        window_clips += per_rank * world
        trained_s += time.monotonic() - t_step
        if not math.isfinite(loss.item()):
            log.say(f"step {step}: loss is {loss.item()}; stopping (last checkpoint kept)")
            log.event(event="error", step=step, message="non-finite loss")
            _restore_signals(previous)
            batches.close()
            return 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
        if step % cfg.run.log_every == 0 and is_main:
            now = time.monotonic()
            acc = (out["logits_instrument"].argmax(1) == yi).float().mean().item()
            rec = {"event": "train", "step": step, "loss": round(loss.item(), 5),
                   "loss_instrument": round(out["loss_instrument"].item(), 5),
                   "loss_family": round(out["loss_family"].item(), 5), "acc_instrument": round(acc, 4), "lr": lr,
                   "clips_per_s": round(window_clips / max(now - window_t, 1e-9), 2)}
            for extra_loss in ("loss_distill", "loss_pair"):
                if extra_loss in out:
                    rec[extra_loss] = round(out[extra_loss].item(), 5)
            if out.get("loss_pitch") is not None:  # the adversary's loss and accuracy: high accuracy = pitch still readable
                known = yp >= 0
                rec["loss_pitch"] = round(out["loss_pitch"].item(), 5)
                rec["acc_pitch"] = round((out["logits_pitch"][known].argmax(1) == yp[known]).float().mean().item(), 4) \
                    if bool(known.any()) else None
            log.event(**rec)
            if bar is None and step % (cfg.run.log_every * 10) == 0:
                log.say(f"step {step}/{o.steps} loss {rec['loss']:.3f} lr {lr:.2e} {rec['clips_per_s']:.1f} clips/s")
            window_t, window_clips = now, 0
        if cfg.run.eval_every and step % cfg.run.eval_every == 0 and step < o.steps:
            validate()
            window_t, window_clips = time.monotonic(), 0
        if cfg.run.ckpt_every and step % cfg.run.ckpt_every == 0:
            checkpoint()
    _restore_signals(previous)  # from here a signal acts as it would have
    batches.close()
    if bar is not None:
        bar.close()
    if stop_reason in ("time", "steps", "signal"):
        checkpoint()
        if is_main:
            log.event(event="paused", step=step, reason=stop_reason)
            why = {"time": f"after {args.max_minutes} min", "steps": "as asked",
                   "signal": f"by {signal.Signals(signalled[0]).name}" if signalled else ""}[stop_reason]
            log.say(f"stopped {why} at step {step} of {o.steps}; its model: `python -m training.train --export "
                    f"{run_dir / 'state.pt'} --to DIR`; carry on with "
                    f"`python -m training.train --resume {run_dir / 'state.pt'}`")
        return 128 + signalled[0] if stop_reason == "signal" else 0
    validate()
    checkpoint()
    if is_main:
        export("last", {"valid": best})
        log.event(event="done", step=step, trained_minutes=round(trained_s / 60, 2),
                  clips_per_s=round(clips_seen / max(trained_s, 1e-9), 2), best=best)
        log.say(f"done: {step} steps, best valid EER {100 * best['eer']:.2f} % at step {best['step']}")
    if world > 1:
        import hashlib

        import torch.distributed as dist

        # every rank must hold the same weights; log each rank's digest so it can be checked
        flat = torch.cat([p.detach().float().cpu().ravel() for p in model.parameters()]).numpy()
        digests = [None] * world
        dist.all_gather_object(digests, hashlib.sha256(flat.tobytes()).hexdigest())
        if is_main:
            log.event(event="ddp_check", step=step, digests=digests, identical=len(set(digests)) == 1)
        dist.barrier()
        dist.destroy_process_group()
    return 0


def _ask_to_stop_on_signals(world: int) -> tuple[list[int], dict]:
    """(signalled, previous): from now on SIGTERM and SIGINT append their number to
    ``signalled`` (the loop stops at its next step, after a checkpoint) and restore the
    default, so a second one stops the process at once; ``previous`` {signal: handler} to put
    back. Nothing is installed under DDP or off the main thread (where Python cannot)."""
    signalled: list[int] = []
    if world > 1 or threading.current_thread() is not threading.main_thread():
        return signalled, {}

    def ask(signum, frame):  # noqa: ARG001
        signalled.append(signum)
        signal.signal(signum, signal.SIG_DFL)

    return signalled, {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict) -> None:
    """Puts back the handlers :func:`_ask_to_stop_on_signals` replaced (one Python did not set: the default)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def make_chain(cfg: Config, say=None):
    """The recording chain of ``cfg.chain`` over the training rooms, or None when off."""
    if not cfg.chain.enabled:
        return None
    from mie_core.augment import chain

    bank = chain.room_bank(seed=cfg.chain.room_seed,
                           progress=(lambda d, t: say(f"room bank: {d}/{t} rooms") if d % 50 == 0 else None) if say else None)
    if say:
        say(f"recording chain on: {int((bank.part == 'train').sum())} training rooms (seed {bank.seed})")
    return chain.RecordingChain(cfg.chain.params(), bank, part="train")


def _count_instruments(cfg: Config) -> int:
    if cfg.data.source != "corpus":
        return 0
    try:
        from mie_core.data.corpus import Corpus, default_corpus_dir

        c = Corpus.load(cfg.data.corpus or default_corpus_dir())
        return int(c.split_notes(cfg.data.split, "train")["instrument_str"].nunique())
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
