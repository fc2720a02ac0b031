"""Training configuration: frozen dataclasses loaded from YAML and validated at load.

A YAML file has up to seven sections, ``model``, ``data``, ``optim``, ``head``, ``run``,
``chain`` and ``distill``, whose keys are the fields below; ``base: other.yaml`` (relative to the
file) starts from another config. Unknown keys and bad values fail at load with a
message naming them. ``--set section.key=value`` overrides any field (YAML syntax
for the value). The resolved config is written next to every run (``config.yaml``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import math

import yaml

from mie_core.augment.chain import ChainParams
from mie_core.nnet.model import ModelArgs


class ConfigError(ValueError):
    pass


MIN_CROP_S = 0.1  # a training clip shorter than this holds no more than an attack
MAX_SEGMENT_S = 30.0  # a training segment longer than this does not fit a batch in memory


@dataclass(frozen=True)
class DataConfig:
    """Which notes train and validate, and how training clips are made.

    source: "corpus" (our SoundFont corpus), "nsynth" (NSynth split folders) or "rwc"
        (a folder of RWC-MDB-I performances, cut into notes, the paper's variation split).
    corpus: corpus folder ("" = the default data/corpus).
    split: "program_disjoint" or "soundfont_disjoint".
    train_*: which notes of the training instruments are rendered into memory.
    valid_*: which notes of the valid instruments are embedded (whole notes).
    batch_workers: processes that make training batches (0 = one thread beside the model,
        enough on a CPU; a GPU needs about one per spare core, the recording chain being
        the CPU's work). The batches depend on this number, not on timing.
    crop_s: length of a training clip in seconds (0 = the whole segment, as the paper).
    crop_min_s: where > 0, each batch's clips are a length drawn uniformly from
        crop_min_s..crop_s seconds (variable-duration training, as speaker verification
        trains for short test utterances; real notes last 0.3-4 s); 0: always crop_s.
    augment: the paper's note concatenation (Sec. V-B-2) with probability concat_prob,
        segments of concat_min_s..concat_max_s seconds of trimmed notes.
    """

    source: str = "corpus"
    corpus: str = ""
    split: str = "program_disjoint"
    nsynth_train: str = ""
    nsynth_valid: str = ""
    rwc_root: str = ""
    train_pitch_step: int = 1
    train_pitch_offset: int = 0
    train_velocities: tuple = (25, 50, 75, 100, 127)
    train_max_notes_per_instrument: int = 0
    valid_pitch_step: int = 6
    valid_pitch_offset: int = 0
    valid_velocities: tuple = (25, 50, 75, 100, 127)
    valid_max_notes_per_instrument: int = 30
    crop_s: float = 1.0
    crop_min_s: float = 0.0
    augment: bool = True
    concat_prob: float = 0.5
    concat_min_s: float = 3.0
    concat_max_s: float = 5.0
    trim_top_db: float = 40.0
    render_workers: int = 0
    batch_workers: int = 0
    performed_share: float = 0.0
    performed_held_s: tuple = (0.2, 3.0)

    def __post_init__(self):
        object.__setattr__(self, "train_velocities", tuple(int(v) for v in self.train_velocities))
        object.__setattr__(self, "valid_velocities", tuple(int(v) for v in self.valid_velocities))
        if self.source not in ("corpus", "nsynth", "rwc"):
            raise ConfigError(f"data.source must be 'corpus', 'nsynth' or 'rwc', not {self.source!r}")
        if self.source == "rwc" and not self.rwc_root:
            raise ConfigError("data.source 'rwc' needs data.rwc_root")
        if self.source == "nsynth" and not (self.nsynth_train and self.nsynth_valid):
            raise ConfigError("data.source 'nsynth' needs data.nsynth_train and data.nsynth_valid folders")
        if self.split not in ("program_disjoint", "soundfont_disjoint"):
            raise ConfigError(f"data.split must be 'program_disjoint' or 'soundfont_disjoint', not {self.split!r}")
        if self.crop_s < 0:
            raise ConfigError("data.crop_s must be >= 0")
        # bounds that keep a batch within memory and a clip long enough to hold a note's sound
        if self.crop_s and not MIN_CROP_S <= self.crop_s <= MAX_SEGMENT_S:
            raise ConfigError(f"data.crop_s must be 0 (whole segments) or from {MIN_CROP_S} to {MAX_SEGMENT_S} s, "
                              f"not {self.crop_s!r}")
        if self.crop_min_s and not (self.crop_s and MIN_CROP_S <= self.crop_min_s <= self.crop_s):
            raise ConfigError(f"data.crop_min_s must be 0 (a fixed crop) or from {MIN_CROP_S} s to data.crop_s "
                              f"({self.crop_s!r}), not {self.crop_min_s!r}")
        if not self.concat_max_s <= MAX_SEGMENT_S:
            raise ConfigError(f"data.concat_max_s must be at most {MAX_SEGMENT_S} s, not {self.concat_max_s!r}")
        if not 0 <= self.concat_prob <= 1:
            raise ConfigError("data.concat_prob must be in [0, 1]")
        if not 0 < self.concat_min_s <= self.concat_max_s:
            raise ConfigError("need 0 < data.concat_min_s <= data.concat_max_s")
        if self.train_pitch_step < 1 or self.valid_pitch_step < 1:
            raise ConfigError("pitch steps must be >= 1")
        for name in ("train_velocities", "valid_velocities"):
            bad = [v for v in getattr(self, name) if not 1 <= v <= 127]
            if bad or not getattr(self, name):
                raise ConfigError(f"data.{name} must be MIDI velocities from 1 to 127, not {list(getattr(self, name))}")
        for name in ("train_pitch_offset", "valid_pitch_offset", "train_max_notes_per_instrument",
                     "valid_max_notes_per_instrument", "render_workers", "batch_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"data.{name} must be >= 0, not {getattr(self, name)}")
        for name in ("crop_s", "crop_min_s", "concat_min_s", "concat_max_s", "trim_top_db", "concat_prob"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"data.{name} must be a finite number")
        if not 0 <= self.performed_share <= 1:
            raise ConfigError("data.performed_share must be in [0, 1]")
        object.__setattr__(self, "performed_held_s", tuple(float(v) for v in self.performed_held_s))
        if len(self.performed_held_s) != 2 or not 0.05 <= self.performed_held_s[0] <= self.performed_held_s[1] <= 3.9:
            raise ConfigError("data.performed_held_s must be [low, high] with 0.05 <= low <= high <= 3.9 s")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up then exponential decay over a planned number of steps.

    lr(step) = lr * step / warmup_steps while step < warmup_steps, then
    lr * lr_final_ratio ** ((step - warmup_steps) / (steps - warmup_steps)).
    The schedule depends only on the step, so a run split over sessions follows the
    same path as an unbroken one.

    head_warmup_steps: for fine-tuning a trained encoder under new heads (``--init-from``):
    the first N steps train the heads alone (the encoder frozen, its batch-norm statistics
    still following the data), at head_lr (0: the schedule's lr), so that the new heads'
    random start does not pull the encoder's space apart.
    """

    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 400
    lr_final_ratio: float = 0.02
    weight_decay: float = 1e-5
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 5.0
    head_warmup_steps: int = 0
    head_lr: float = 0.0

    def __post_init__(self):
        for name in ("lr", "lr_final_ratio", "weight_decay", "beta1", "beta2", "grad_clip", "head_lr"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ConfigError(f"optim.{name} must be a finite number, not {v!r}")
        if self.steps < 1:
            raise ConfigError(f"optim.steps must be >= 1, not {self.steps}")
        if self.batch_size < 2:
            raise ConfigError(f"optim.batch_size must be >= 2 (batch norm needs two clips), not {self.batch_size}")
        if self.lr <= 0 or not 0 < self.lr_final_ratio <= 1:
            raise ConfigError(f"optim.lr must be positive ({self.lr!r}) and optim.lr_final_ratio in (0, 1] "
                              f"({self.lr_final_ratio!r})")
        if not 0 <= self.warmup_steps < self.steps:
            raise ConfigError(f"optim.warmup_steps must be in [0, steps={self.steps}), not {self.warmup_steps}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, not {self.weight_decay!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"optim.{name} must be in [0, 1), not {getattr(self, name)!r}")
        if self.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be >= 0 (0: off), not {self.grad_clip!r}")
        if not 0 <= self.head_warmup_steps < self.steps:
            raise ConfigError(f"optim.head_warmup_steps must be in [0, steps={self.steps}), not {self.head_warmup_steps}")
        if self.head_lr < 0:
            raise ConfigError(f"optim.head_lr must be >= 0 (0: optim.lr's schedule), not {self.head_lr!r}")


@dataclass(frozen=True)
class HeadConfig:
    """kind: "asoftmax" (paper), "softmax" (w/o A-softmax) or "aam" (ArcFace).
    margin: in the head's own unit, 0 for its default: A-softmax's integer multiplier of
    the angle (1-4; default 2, the paper's), AAM's additive angle in radians (0-1.0;
    default 0.2); plain softmax has none. family_weight 0 is "w/o instrument family".
    lambda_* anneal A-softmax: lambda = max(lambda_min, lambda_base / (1 + lambda_gamma * step)).
    scale: AAM's logit scale.
    pitch_weight: a pitch adversary (issue 29: an embedding that forgets register): a small
    classifier of the clip's MIDI pitch behind a gradient-reversal layer, so the encoder is
    pushed, by pitch_weight times the adversary's gradient, toward embeddings it cannot read
    the pitch from (0: off, the paper's recipe; clips of concatenated notes carry no pitch)."""

    kind: str = "asoftmax"
    margin: float = 0.0
    family_weight: float = 1.0
    lambda_base: float = 1500.0
    lambda_gamma: float = 0.01
    lambda_min: float = 5.0
    scale: float = 30.0
    pitch_weight: float = 0.0

    def __post_init__(self):
        if self.kind not in ("asoftmax", "softmax", "aam"):
            raise ConfigError(f"head.kind must be 'asoftmax', 'softmax' or 'aam', not {self.kind!r}")
        m = self.margin
        if not math.isfinite(m) or m < 0:
            raise ConfigError(f"head.margin must be a finite number >= 0 (0: the head's default), not {m!r}")
        if self.kind == "asoftmax" and m and (int(m) != m or not 1 <= m <= 4):
            raise ConfigError(f"head.margin {m!r}: A-softmax's margin multiplies the angle and must be an integer "
                              "from 1 to 4 (the paper's is 2)")
        if self.kind == "aam" and m and not 0 < m <= 1.0:
            raise ConfigError(f"head.margin {m!r}: AAM's margin is an angle in radians, in (0, 1.0] (usual 0.2); "
                              "set head.margin=0.2")
        if self.kind == "softmax" and m:
            raise ConfigError(f"head.margin {m!r}: a plain softmax head has no margin; leave it 0")
        for name in ("family_weight", "lambda_base", "lambda_gamma", "lambda_min", "scale", "pitch_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"head.{name} must be a finite number >= 0, not {v!r}")
        if self.scale <= 0:
            raise ConfigError(f"head.scale must be positive, not {self.scale!r}")

    @property
    def effective_margin(self) -> float:
        """The margin the head uses: the configured one, or the kind's default."""
        if self.margin:
            return self.margin
        return {"asoftmax": 2, "aam": 0.2, "softmax": 0.0}[self.kind]


def check_device(device: str) -> None:
    """'auto', 'cpu', 'cuda' or 'cuda:N' that this machine has; else ConfigError naming it."""
    import re

    if device in ("auto", "cpu"):
        return
    if not re.fullmatch(r"cuda(:\d+)?", device):
        raise ConfigError(f"run.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"run.device is {device!r} but this machine has no CUDA GPU; use 'auto' or 'cpu'")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"run.device is {device!r} but this machine has {torch.cuda.device_count()} GPU(s)")


@dataclass(frozen=True)
class RunConfig:
    """name: run folder under out_dir. precision: "auto" (bf16 autocast where the
    hardware has it), "bf16" or "fp32". eval_every/ckpt_every in steps (0 = only at
    the end). threads: torch CPU threads (0 = all). average_from_step: from the step after
    it, the trainer keeps the uniform average of the weights after every step (WeSpeaker's
    averaged last checkpoints, at every step; 0 = off), in ``state.pt`` and exported with
    ``--export STATE --averaged``."""

    name: str = "run"
    seed: int = 100
    out_dir: str = "runs"
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0
    eval_every: int = 500
    ckpt_every: int = 100
    log_every: int = 10
    eval_seed: int = 0
    average_from_step: int = 0

    def __post_init__(self):
        if self.average_from_step < 0:
            raise ConfigError(f"run.average_from_step must be a step >= 0 (0: no average), not {self.average_from_step}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"run.precision must be 'auto', 'bf16' or 'fp32', not {self.precision!r}")
        if self.eval_every < 0 or self.ckpt_every < 0 or self.log_every < 1:
            raise ConfigError("run.eval_every and run.ckpt_every must be >= 0, run.log_every >= 1")
        if self.threads < 0:
            raise ConfigError(f"run.threads must be >= 0 (0: all cores), not {self.threads}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"run.name must be a plain folder name, not {self.name!r}")
        for name in ("seed", "eval_seed"):  # seeds of numpy's generators (seed * 1009 + rank)
            if not 0 <= getattr(self, name) < 2**31 // 1009:
                raise ConfigError(f"run.{name} must be from 0 to {2**31 // 1009 - 1}, not {getattr(self, name)}")
        check_device(self.device)


@dataclass(frozen=True)
class ChainConfig(ChainParams):
    """The recording-chain augmentation (:mod:`mie_core.augment.chain`): off unless ``enabled``.

    Every other key is a stage's probability (``p_*``) or range (:class:`ChainParams`);
    ``room_seed`` picks the room bank (:func:`mie_core.augment.chain.room_bank`: seed 0 is the
    shipped bank, another seed is built once and kept under ``data/rooms``; the trainer
    draws only its training rooms); ``share`` is the share of training clips that go through
    the chain at all (the rest stay clean, as Kaldi's recipes keep the clean copy beside the
    augmented ones).
    """

    enabled: bool = False
    room_seed: int = 0
    share: float = 1.0

    def __post_init__(self):
        try:
            super().__post_init__()
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if not (isinstance(self.share, (int, float)) and 0.0 < self.share <= 1.0):
            raise ConfigError(f"chain.share must be in (0, 1], not {self.share!r}")

    def params(self) -> ChainParams:
        return ChainParams(**{k: getattr(self, k) for k in ChainParams.__dataclass_fields__})


@dataclass(frozen=True)
class DistillConfig:
    """Consistency with a frozen teacher while the recording chain is on: off unless ``weight`` > 0.

    Each training clip goes to the student through the chain and to the teacher as it was
    before the chain; the loss adds ``weight`` times the relative squared distance between
    the two embeddings (:func:`training.distill.relative_mse`), so the student learns to put
    a wet clip where the teacher puts the clean one instead of drifting to a geometry of its
    own (knowledge distillation for robustness, as in noise-robust speaker embeddings).
    ``teacher``: ``init`` (the model given by ``--init-from``, kept frozen) or a checkpoint
    folder with the same model arguments.
    """

    weight: float = 0.0
    teacher: str = "init"

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise ConfigError(f"distill.weight must be a finite number >= 0 (0: off), not {self.weight!r}")
        if not self.teacher:
            raise ConfigError("distill.teacher must be 'init' or a checkpoint folder")

    @property
    def enabled(self) -> bool:
        return self.weight > 0


SIBLING_KINDS = ("program", "family")  # what makes two instruments siblings (training.data.sibling_instruments)


@dataclass(frozen=True)
class PairConfig:
    """Register pairs (issue 29: an embedding that forgets register): off unless ``weight`` > 0.

    The first ``share`` of each batch is drawn as pairs, two single notes of one training
    instrument at least ``min_semitones`` apart in pitch (the farthest note where none is),
    each cropped and sent through the recording chain on its own; the loss adds ``weight``
    times a symmetric InfoNCE over the pairs (:func:`training.pairs.pair_loss`): each note
    must find its partner, a note of the same instrument an octave away, among the other
    pairs' notes by cosine at ``temperature``. A SoundFont preset stretches each sample over
    several semitones, so renders alone show the network less of how one instrument's timbre
    changes with register than real notes do; the pairs ask for that invariance directly.
    ``siblings``: the pairs come in twos of one kind, so that each note's impostors include
    an instrument of its own kind: on real notes the verdicts' errors are impostors of the same
    kind (a piano against another collection's piano, docs/experiments/sibling-pairs.md);
    ``sibling_kind`` says which: ``"family"`` (NSynth's, e.g. an acoustic and a nylon guitar) or
    ``"program"`` (the same General MIDI program in another SoundFont: two SoundFonts' pianos;
    the family where notes carry no program).
    """

    weight: float = 0.0
    share: float = 0.5
    min_semitones: int = 12
    temperature: float = 0.1
    siblings: bool = False
    sibling_kind: str = "program"

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise ConfigError(f"pairs.weight must be a finite number >= 0 (0: off), not {self.weight!r}")
        if not (isinstance(self.share, (int, float)) and 0 < self.share <= 1):
            raise ConfigError(f"pairs.share must be in (0, 1], the share of each batch drawn as pairs, not {self.share!r}")
        if not (isinstance(self.min_semitones, int) and 1 <= self.min_semitones <= 60):
            raise ConfigError(f"pairs.min_semitones must be an integer from 1 to 60, not {self.min_semitones!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and 0.01 <= self.temperature <= 10):
            raise ConfigError(f"pairs.temperature must be from 0.01 to 10, not {self.temperature!r}")
        if not isinstance(self.siblings, bool):
            raise ConfigError(f"pairs.siblings must be true or false, not {self.siblings!r}")
        if self.sibling_kind not in SIBLING_KINDS:
            raise ConfigError(f"pairs.sibling_kind must be one of {', '.join(SIBLING_KINDS)}, not {self.sibling_kind!r}")

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    def count(self, batch_size: int) -> int:
        """Pairs in a batch of ``batch_size`` clips (0 when off)."""
        return int(self.share * batch_size) // 2 if self.enabled else 0


@dataclass(frozen=True)
class Config:
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    run: RunConfig = field(default_factory=RunConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    pairs: PairConfig = field(default_factory=PairConfig)

    def __post_init__(self):
        if self.pairs.enabled and self.pairs.count(self.optim.batch_size) < 2:
            raise ConfigError(f"pairs.weight > 0 needs at least 2 pairs a batch: pairs.share {self.pairs.share} of "
                              f"optim.batch_size {self.optim.batch_size} makes {self.pairs.count(self.optim.batch_size)}")
        if self.distill.enabled and not self.chain.enabled:
            raise ConfigError("distill.weight > 0 needs chain.enabled: the teacher sees each clip before the "
                              "chain, the student after it; without the chain both see the same clip")
        if self.model.sample_rate != 16000:
            raise ConfigError(f"model.sample_rate is {self.model.sample_rate}, but every data source here gives "
                              "16 kHz audio; only 16000 is supported")

    def to_dict(self) -> dict:
        d = asdict(self)
        for sec in d.values():
            for k, v in sec.items():
                if isinstance(v, tuple):
                    sec[k] = list(v)
        return d


SECTIONS = {"model": ModelArgs, "data": DataConfig, "optim": OptimConfig, "head": HeadConfig, "run": RunConfig,
            "chain": ChainConfig, "distill": DistillConfig, "pairs": PairConfig}


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if path in seen:
        raise ConfigError(f"config inheritance loops through {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"no config file {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    base = raw.pop("base", None)
    if base:
        raw = _merge(_read_yaml((path.parent / base).resolve(), seen + (path,)), raw)
    return raw


def from_dict(raw: dict, where: str = "config") -> Config:
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {sorted(unknown)}; expected {sorted(SECTIONS)}")
    parts = {}
    for name, cls in SECTIONS.items():
        sec = raw.get(name) or {}
        if not isinstance(sec, dict):
            raise ConfigError(f"{where}: section {name!r} must be a mapping")
        defaults = cls()
        known = {f.name for f in fields(cls)}
        bad = set(sec) - known
        if bad:
            raise ConfigError(f"{where}: unknown key(s) in {name}: {sorted(bad)}; known: {sorted(known)}")
        values = {}
        for k, v in sec.items():
            values[k] = _check_type(f"{where}: {name}.{k}", getattr(defaults, k), v)
        try:
            parts[name] = cls(**values)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from None
    return Config(**parts)


def _check_type(where: str, default, v):
    """``v`` as the type of the field's default (an integral float becomes an int), or ConfigError."""
    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise ConfigError(f"{where} must be true or false, not {v!r}")
        return v
    if isinstance(default, (int, float)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where} must be a number, not {v!r}")
        if isinstance(default, int):
            if isinstance(v, float) and not v.is_integer():
                raise ConfigError(f"{where} must be an integer, not {v!r}")
            return int(v)
        return v
    if isinstance(default, str) and not isinstance(v, str):
        raise ConfigError(f"{where} must be a string, not {v!r}")
    if isinstance(default, tuple) and not isinstance(v, (list, tuple)):
        raise ConfigError(f"{where} must be a list, not {v!r}")
    return v


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    bad = [k for k, v in raw.items() if v is not None and not isinstance(v, dict)]
    if bad:
        raise ConfigError(f"section {bad[0]!r} must be a mapping, not {type(raw[bad[0]]).__name__}")
    raw = {k: dict(v or {}) for k, v in raw.items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item}: the value is not YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(raw.get(section, {}), dict):
            raise ConfigError(f"--set {item}: section {section!r} is not a mapping")
        raw.setdefault(section, {})[name] = parsed
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, merge with its ``base``, apply ``--set`` overrides and validate.

    >>> cfg = load_config("training/configs/cqt122.yaml", ["optim.steps=8000"])
    >>> cfg.model.init, cfg.model.n_filters, cfg.optim.steps, cfg.head.kind
    ('cqt', 122, 8000, 'asoftmax')
    >>> load_config("training/configs/cqt122.yaml", ["optim.lr=-1"])
    Traceback (most recent call last):
    ...
    training.config.ConfigError: training/configs/cqt122.yaml: optim.lr must be positive (-1) and optim.lr_final_ratio in (0, 1] (0.02)
    """
    path = Path(path)
    raw = apply_overrides(_read_yaml(path.resolve()), overrides or [])
    return from_dict(raw, where=str(path))


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def with_run(cfg: Config, **kw: Any) -> Config:
    return replace(cfg, run=replace(cfg.run, **kw))
