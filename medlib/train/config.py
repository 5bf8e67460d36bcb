"""Typed run configuration, one per paper, read from YAML; bad keys or values fail naming the field.

A run is ``model`` + ``data`` + up to three stages: ``vision`` (a dense warm-up of the vision tower
alone, off by default; docs/grpo.md#small-models-on-a-cpu), ``sft`` (cold start; MedVol-R1 Sec. 2.4) and
``grpo`` (all three papers). Every GRPO setting the papers rely on is a field with no library
default behind it (docs/grpo.md#trls-defaults-differ): ``loss_type``, ``scale_rewards``, ``beta``,
``temperature``, ``num_generations``, ``learning_rate``, ``max_completion_length``.

``load_config(path, overrides)`` -> :class:`RunConfig`; overrides are ``"grpo.beta=0"`` strings
or a nested dict. ``batch_size`` of a GRPO stage counts *prompts* per device, each sampled
``num_generations`` times, as in the papers' trainers (VLM-R1, veRL); TRL's
``per_device_train_batch_size`` counts completions and is ``batch_size * num_generations``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAPERS = ("medground", "medreasoner", "medvol")
TEMPLATES = {
    "medground": ("r1", "chain_of_box"),
    "medreasoner": ("reasoning", "direct"),
    "medvol": ("slices",),
}
#: Data sources with a built-in reader (see :mod:`medlib.train.datasets`): the embedded synthetic
#: benchmark (written under ``root`` when missing), the real datasets' adapters, and toy data for
#: tests. Any other source must be ``"package.module:function"`` returning the records of
#: ``(root, split)``.
SYNTHETIC_SOURCES = ("chest", "umrg_synth", "ct_synth", "toy2d", "toy3d")
REAL_SOURCES = ("mscxr", "chestxray8", "umrg", "m3d_refseg", "m3d_seg")
SOURCES = SYNTHETIC_SOURCES + REAL_SOURCES
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
SCALE_REWARDS = ("group", "batch", "none")
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
DEVICES = ("auto", "cpu", "cuda")
VLLM_MODES = ("colocate", "server")
IMAGE_BACKENDS = ("auto", "pil")
_SOURCE_FN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ConfigError(ValueError):
    """A run configuration with an unknown key or a bad value; the message names the field."""


@dataclass
class ModelConfig:
    name_or_path: str = "tiny"
    """Hub id (``Qwen/Qwen2.5-VL-7B-Instruct``), local folder, or ``"tiny"`` to build the tiny
    CPU Qwen2.5-VL (:func:`medlib.models.build_tiny_qwen25vl`) under the run folder."""
    dtype: str = "auto"
    """Weights dtype: auto, bfloat16, float16, float32."""
    attn_implementation: str = "auto"
    """auto (flash_attention_2 on CUDA with flash-attn, else sdpa), flash_attention_2, sdpa, eager."""
    min_pixels: int | None = None
    """Processor's smallest resized image (pixels); None keeps the checkpoint's value."""
    max_pixels: int | None = None
    """Processor's largest resized image (pixels); None keeps the checkpoint's value."""
    tiny: dict[str, Any] = field(default_factory=dict)
    """Size overrides of :class:`medlib.models.TinyQwenSpec` when ``name_or_path`` is ``"tiny"``."""
    image_backend: str = "auto"
    """Image processor backend: auto (the checkpoint's; torchvision in transformers 5) or pil. On a
    CPU the PIL backend of ``Qwen2VLImageProcessor`` is ~50x faster for small images (measured: 16
    images of 112 x 112 in 0.02 s vs 1.1 s) and gives the same pixels when no resize is needed."""


@dataclass
class DataConfig:
    source: str = "chest"
    """Embedded benchmark: chest (MS-CXR format), umrg_synth (U-MRG format), ct_synth (M3D-RefSeg
    format), each written under ``root`` when missing; real data: mscxr, chestxray8, umrg,
    m3d_refseg, m3d_seg; tests: toy2d, toy3d; or ``"package.module:function"``."""
    root: str = "build/data/chest"
    """Dataset folder (relative paths are relative to the repository root)."""
    allow_outside_root: bool = False
    """Accept image / volume paths in the annotation files that resolve outside ``root``."""
    subsets: list[str] = field(default_factory=list)
    """m3d_seg: M3D-Seg dataset ids to use (e.g. 0003 AbdomenCT-1k, 0004 KiTS23, 0012 CT-ORG)."""
    train_split: str = "train"
    max_samples: int | None = None
    """Use only the first N training records (None: all)."""
    template: str = ""
    """Prompt template (empty: the paper's default): medground r1 | chain_of_box; medreasoner
    reasoning | direct; medvol slices."""
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 64, "val": 16, "test": 32})
    """Samples per split when the data is generated (chest, toy2d, toy3d)."""
    image_size: int = 224
    """Image side of generated 2D data (chest, toy2d)."""
    volume_shape: list[int] = field(default_factory=lambda: [32, 64, 64])
    """[z, y, x] of generated volumes (toy3d)."""
    seed: int = 0
    """Seed of generated data and of the SFT target sampling."""
    n_slices: int = 64
    """MedVol-R1: axial slices sampled uniformly from each volume (Sec. 3: 64)."""
    slice_size: int = 256
    """MedVol-R1: side of each slice image (Sec. 3: 256 x 256)."""
    top_k: int = 3
    """MedVol-R1 SFT targets: Top-K visibility sampling (Sec. 2.4)."""


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    """``"all-linear"`` (MedVol-R1 Sec. 3) or a list of module names."""


@dataclass
class VisionStage:
    """Vision-tower warm-up (:mod:`medlib.train.vision_warmup`): the vision tower alone learns, for
    every merged image token, which finding classes cover it (binary cross-entropy on the
    covered fraction). docs/grpo.md#small-models-on-a-cpu: without it a small random model never reads
    where the target is and SFT collapses to the mean box."""

    enabled: bool = False
    steps: int = 300
    """Optimizer steps."""
    learning_rate: float = 1e-3
    batch_size: int = 16
    """Images per step."""
    subcells: int = 2
    """Targets per token and class: the covered fraction of each of ``subcells`` x ``subcells``
    squares of the token (1: the token as a whole; 2: its four patches), so that the token's
    embedding also says where inside the token the finding lies."""
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    init_from: str = "base"
    """base (the model of ``model``) or a model folder."""


@dataclass
class StageConfig:
    enabled: bool = True
    learning_rate: float = 1e-6
    epochs: float = 1.0
    max_steps: int = -1
    """Optimizer steps; -1: run ``epochs`` epochs."""
    batch_size: int = 1
    """Per device: samples (SFT) or prompts (GRPO; each sampled num_generations times)."""
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    lr_scheduler: str = "constant"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    lora: LoraSettings = field(default_factory=LoraSettings)
    save_steps: int = 500
    """Checkpoint every N optimizer steps (a killed run resumes from the last one)."""
    save_total_limit: int | None = 2
    logging_steps: int = 10
    init_from: str = "base"
    """base (the model of ``model``), vision (this run's warmed vision tower), sft (this run's SFT
    result), or a model folder."""


@dataclass
class SFTStage(StageConfig):
    max_length: int | None = None
    """Truncate sequences to this many tokens (None: no truncation; never cut image tokens)."""
    completion_only_loss: bool = True


@dataclass
class GRPOStage(StageConfig):
    num_generations: int = 4
    beta: float = 0.04
    max_completion_length: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    epsilon: float = 0.2
    num_iterations: int = 1
    mask_truncated_completions: bool = False
    kl_bias_correction: bool = False
    """Multiply the k3 KL term by the importance ratio (TRL's ``use_bias_correction_kl``, on by
    default in TRL 1.16). Off: the papers' GRPO objective (MedGround-R1 Eq. 2)."""
    rewards: dict[str, float] | None = None
    """Reward name -> weight (:func:`medlib.rewards.build_reward_set`); None: the paper's set."""
    reward_options: dict[str, Any] = field(default_factory=dict)
    """Options of the paper's reward set (e.g. ``semantic_scorer``, ``mode``, ``segmenter``)."""
    rollout_batch_prompts: int | None = None
    """Prompts per rollout (generation) batch, over all devices (veRL ``data.train_batch_size``);
    each is sampled ``num_generations`` times. None: one rollout per optimizer step (TRL's default)."""
    update_batch_prompts: int | None = None
    """Prompts per optimizer step, over all devices (veRL ``ppo_mini_batch_size``); the gradient
    accumulation is derived from it and the number of devices. None: ``batch_size x grad_accum x
    devices``. Smaller than ``rollout_batch_prompts``: several updates per rollout, so that the
    clipped ratio departs from 1 (with one update per rollout the clipping never acts)."""
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_importance_sampling_correction: bool = False
    """Reweight by the ratio of trainer to vLLM log-probabilities (TRL's
    ``vllm_importance_sampling_correction``, on by default in TRL 1.16). Off: the papers' GRPO,
    whose ratio is taken to the recomputed old policy only (veRL)."""
    log_completions: bool = False
    fast_generation: bool = False
    """On a CPU, sample completions with one pre-fill per distinct prompt and a lean decoding loop
    (:mod:`medlib.train.fast_generation`): the same tokens as ``generate`` for the same seed (tested).
    Off by default: side by side on a loaded 2-core machine it was not faster than TRL's
    ``model.generate`` (``benchmarks/bench_generation.py``). GPU and vLLM runs use TRL's path."""


@dataclass
class EvalSettings:
    """Held-out evaluation (``python -m medlib.evaluate``, :func:`medlib.study.ablation.evaluate_model`);
    decoding is greedy. Not part of any training stage's cache key."""

    repetition_penalty: float = 1.0
    """Decoding repetition penalty (MedReasoner App. D.1: 1.05; 1: none)."""
    metric_variant: str = "official"
    """MedReasoner's IoU / pDice / mask Dice: ``official`` (its public evaluation code, which
    produced its tables) or ``paper`` (Eq. 5 and the textbook definitions); see
    :data:`medlib.metrics.MEDREASONER_VARIANTS`."""
    segmenter: str | None = None
    """Segmenter of the mask Dice (MedReasoner) and the propagation (MedVol-R1): ``litemedsam`` or
    ``medsam2:<checkpoint>``. None: the reward's segmenter, else LiteMedSAM (said when used)."""


@dataclass
class RunConfig:
    paper: str
    """medground, medreasoner or medvol."""
    name: str
    """Run name: outputs go to ``<output_dir>/<name>/<stage>/``."""
    output_dir: str = "runs"
    seed: int = 0
    device: str = "auto"
    """auto, cpu or cuda."""
    bf16: bool = False
    """bfloat16 mixed precision (GPU only)."""
    gradient_checkpointing: bool = False
    """Recompute activations to save memory (GPU runs; slow and pointless on CPU)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    progress: bool = True
    """tqdm progress bars."""
    resume: bool = True
    """Resume a stage from its last checkpoint when one exists."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vision: VisionStage = field(default_factory=VisionStage)
    sft: SFTStage = field(default_factory=lambda: SFTStage(enabled=False))
    grpo: GRPOStage = field(default_factory=GRPOStage)
    evaluation: EvalSettings = field(default_factory=EvalSettings)

    # ------------------------------------------------------------------ derived
    @property
    def template(self) -> str:
        return self.data.template or TEMPLATES[self.paper][0]

    def run_dir(self, stage: str) -> Path:
        from ..paths import repo_path

        return repo_path(self.output_dir) / self.name / stage

    def data_root(self) -> Path:
        from ..paths import repo_path

        return repo_path(self.data.root)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------ parsing
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked (and, for numbers written as strings such as ``1e-6``, converted)
    against the annotation ``tp``; ConfigError naming ``where`` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} is not a {' or '.join(_type_name(a) for a in args)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp) or (str, Any)
        return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(f):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return f
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp}")  # pragma: no cover - config classes only


def _build(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys{' of ' + where if where else ''}: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required config key(s) {', '.join(missing)}" + (f" in {where}" if where else ""))
    if cls is RunConfig:  # writing an sft or vision section means running it, unless it says otherwise
        for optional in ("sft", "vision"):
            if isinstance(data.get(optional), dict) and "enabled" not in data[optional]:
                kwargs[optional].enabled = True
    return cls(**kwargs)


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {msg}")


def _check_stage(s: StageConfig, name: str) -> None:
    _check(s.learning_rate > 0, f"{name}.learning_rate", f"must be > 0, got {s.learning_rate}")
    _check(s.epochs > 0, f"{name}.epochs", f"must be > 0, got {s.epochs}")
    _check(s.max_steps == -1 or s.max_steps > 0, f"{name}.max_steps", f"must be -1 or > 0, got {s.max_steps}")
    _check(s.batch_size >= 1, f"{name}.batch_size", f"must be >= 1, got {s.batch_size}")
    _check(s.grad_accum >= 1, f"{name}.grad_accum", f"must be >= 1, got {s.grad_accum}")
    _check(0 <= s.warmup_ratio < 1, f"{name}.warmup_ratio", f"must be in [0, 1), got {s.warmup_ratio}")
    _check(s.lr_scheduler in SCHEDULERS, f"{name}.lr_scheduler", f"must be one of {SCHEDULERS}, got {s.lr_scheduler!r}")
    _check(s.weight_decay >= 0, f"{name}.weight_decay", f"must be >= 0, got {s.weight_decay}")
    _check(s.max_grad_norm > 0, f"{name}.max_grad_norm", f"must be > 0, got {s.max_grad_norm}")
    _check(s.save_steps >= 1, f"{name}.save_steps", f"must be >= 1, got {s.save_steps}")
    _check(s.save_total_limit is None or s.save_total_limit >= 1, f"{name}.save_total_limit",
           f"must be >= 1 or null, got {s.save_total_limit}")
    _check(s.logging_steps >= 1, f"{name}.logging_steps", f"must be >= 1, got {s.logging_steps}")
    _check(bool(s.init_from), f"{name}.init_from", "must be base, sft or a model folder")
    lo = s.lora
    _check(lo.r >= 1, f"{name}.lora.r", f"must be >= 1, got {lo.r}")
    _check(lo.alpha >= 1, f"{name}.lora.alpha", f"must be >= 1, got {lo.alpha}")
    _check(0 <= lo.dropout < 1, f"{name}.lora.dropout", f"must be in [0, 1), got {lo.dropout}")
    tm = lo.target_modules
    _check(tm == "all-linear" or (isinstance(tm, list) and tm and all(tm)), f"{name}.lora.target_modules",
           f"must be 'all-linear' or a non-empty list of module names, got {tm!r}")


def _check_vision(cfg: RunConfig) -> None:
    v = cfg.vision
    _check(v.steps >= 1, "vision.steps", f"must be >= 1, got {v.steps}")
    _check(v.learning_rate > 0, "vision.learning_rate", f"must be > 0, got {v.learning_rate}")
    _check(v.batch_size >= 1, "vision.batch_size", f"must be >= 1, got {v.batch_size}")
    _check(v.subcells in (1, 2, 4, 7), "vision.subcells", f"must divide the 28-pixel token: 1, 2, 4 or 7, got {v.subcells}")
    _check(v.weight_decay >= 0, "vision.weight_decay", f"must be >= 0, got {v.weight_decay}")
    _check(v.max_grad_norm > 0, "vision.max_grad_norm", f"must be > 0, got {v.max_grad_norm}")
    _check(v.logging_steps >= 1, "vision.logging_steps", f"must be >= 1, got {v.logging_steps}")
    _check(bool(v.init_from) and v.init_from not in ("vision", "sft"), "vision.init_from",
           f"must be base or a model folder, got {v.init_from!r}")
    if v.enabled:
        _check(cfg.paper != "medvol", "vision.enabled", "the vision warm-up serves the 2D papers (medground, "
               "medreasoner); MedVol-R1 has no per-token 2D targets")
        first = "sft" if cfg.sft.enabled else "grpo"
        _check(getattr(cfg, first).init_from != "base", f"{first}.init_from",
               "base would ignore the vision warm-up; set it to vision (or vision.enabled: false)")


def _check_tiny(sizes: dict[str, Any], spec_cls: type) -> None:
    """``model.tiny``: whole numbers of the right sign (seed >= 0, every size >= 1) that make a
    consistent :class:`medlib.models.TinyQwenSpec`."""
    hints = typing.get_type_hints(spec_cls)
    for k, v in sizes.items():
        where = f"model.tiny.{k}"
        if hints[k] is int:
            _check(isinstance(v, int) and not isinstance(v, bool), where, f"must be a whole number, got {v!r}")
            _check(v >= (0 if k == "seed" else 1), where, f"must be >= {0 if k == 'seed' else 1}, got {v}")
        elif hints[k] is float:
            _check(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0, where,
                   f"must be a number > 0, got {v!r}")
        else:
            _check(isinstance(v, list | tuple) and all(isinstance(x, int) and x >= 1 for x in v), where,
                   f"must be a list of whole numbers >= 1, got {v!r}")
    try:
        spec_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()}).check()
    except ValueError as e:
        raise ConfigError(f"model.tiny: {e}") from None


def _check_source_function(source: str) -> None:
    """``data.source`` of the form ``package.module:function``: the module imports and has it."""
    import importlib

    module, _, fn = source.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"data.source: cannot import {module!r} ({e}); give one of {SOURCES} or an "
                          "importable 'package.module:function'") from None
    _check(callable(getattr(mod, fn, None)), "data.source", f"module {module!r} has no function {fn!r}")


def validate(cfg: RunConfig) -> RunConfig:
    """Check every value of ``cfg`` (device-independent checks; see :func:`check_device`)."""
    _check(cfg.paper in PAPERS, "paper", f"must be one of {PAPERS}, got {cfg.paper!r}")
    _check(bool(re.fullmatch(r"[\w.+-]+(/[\w.+-]+)*", cfg.name or "")), "name",
           f"must be a non-empty folder name (letters, digits, _ . + -), got {cfg.name!r}")
    _check(not {".", ".."} & set((cfg.name or "").split("/")), "name",
           f"must stay inside output_dir (no '.' or '..' parts), got {cfg.name!r}")
    _check(cfg.device in DEVICES, "device", f"must be one of {DEVICES}, got {cfg.device!r}")
    _check(all(r in ("tensorboard", "none") for r in cfg.report_to), "report_to",
           f"supported: tensorboard, none; got {cfg.report_to}")
    m = cfg.model
    _check(bool(m.name_or_path), "model.name_or_path", "must be a hub id, a folder or 'tiny'")
    from ..models.load import ATTN_IMPLEMENTATIONS, DTYPES

    _check(m.dtype in DTYPES, "model.dtype", f"must be one of {DTYPES}, got {m.dtype!r}")
    _check(m.attn_implementation in ATTN_IMPLEMENTATIONS, "model.attn_implementation",
           f"must be one of {ATTN_IMPLEMENTATIONS}, got {m.attn_implementation!r}")
    for k in ("min_pixels", "max_pixels"):
        v = getattr(m, k)
        _check(v is None or v >= 28 * 28, f"model.{k}", f"must be >= 784 or null, got {v}")
    _check(m.image_backend in IMAGE_BACKENDS, "model.image_backend",
           f"must be one of {IMAGE_BACKENDS}, got {m.image_backend!r}")
    if m.min_pixels and m.max_pixels:
        _check(m.min_pixels <= m.max_pixels, "model.min_pixels", "must be <= model.max_pixels")
    if m.tiny:
        from ..models.tiny import TinyQwenSpec

        bad = sorted(set(m.tiny) - set(TinyQwenSpec.__dataclass_fields__))
        _check(not bad, "model.tiny", f"unknown size(s) {bad}; valid: {sorted(TinyQwenSpec.__dataclass_fields__)}")
        _check_tiny(m.tiny, TinyQwenSpec)
    d = cfg.data
    _check(d.source in SOURCES or bool(_SOURCE_FN.match(d.source)), "data.source",
           f"must be one of {SOURCES} or 'package.module:function', got {d.source!r}")
    if d.source not in SOURCES:
        _check_source_function(d.source)
    if d.source == "m3d_seg":
        _check(len(d.subsets) > 0, "data.subsets", "m3d_seg needs the M3D-Seg dataset ids to use, e.g. [\"0004\"]")
    if d.template:
        _check(d.template in TEMPLATES[cfg.paper], "data.template",
               f"{cfg.paper} templates are {TEMPLATES[cfg.paper]}, got {d.template!r}")
    _check(d.max_samples is None or d.max_samples >= 1, "data.max_samples", f"must be >= 1 or null, got {d.max_samples}")
    _check(all(v >= 0 for v in d.sizes.values()), "data.sizes", f"sizes must be >= 0, got {d.sizes}")
    _check(d.image_size >= 28, "data.image_size", f"must be >= 28, got {d.image_size}")
    _check(len(d.volume_shape) == 3 and min(d.volume_shape) >= 4, "data.volume_shape",
           f"must be [z, y, x] with every side >= 4, got {d.volume_shape}")
    _check(d.n_slices >= 1, "data.n_slices", f"must be >= 1, got {d.n_slices}")
    _check(d.slice_size >= 28, "data.slice_size", f"must be >= 28, got {d.slice_size}")
    _check(d.top_k >= 1, "data.top_k", f"must be >= 1, got {d.top_k}")
    _check(cfg.sft.enabled or cfg.grpo.enabled, "sft.enabled", "at least one of sft and grpo must be enabled")
    _check_vision(cfg)
    _check_stage(cfg.sft, "sft")
    _check_stage(cfg.grpo, "grpo")
    _check(cfg.sft.max_length is None or cfg.sft.max_length >= 16, "sft.max_length",
           f"must be >= 16 or null, got {cfg.sft.max_length}")
    _check(cfg.sft.init_from != "sft", "sft.init_from", "an SFT stage cannot start from its own result")
    e = cfg.evaluation
    _check(e.repetition_penalty > 0, "evaluation.repetition_penalty", f"must be > 0, got {e.repetition_penalty}")
    from ..metrics import MEDREASONER_VARIANTS

    _check(e.metric_variant in MEDREASONER_VARIANTS, "evaluation.metric_variant",
           f"must be one of {MEDREASONER_VARIANTS}, got {e.metric_variant!r}")
    g = cfg.grpo
    _check(g.num_generations >= 2, "grpo.num_generations", f"GRPO needs >= 2 generations, got {g.num_generations}")
    _check(g.beta >= 0, "grpo.beta", f"must be >= 0, got {g.beta}")
    _check(g.max_completion_length >= 1, "grpo.max_completion_length", f"must be >= 1, got {g.max_completion_length}")
    _check(g.temperature > 0, "grpo.temperature", f"must be > 0, got {g.temperature}")
    _check(0 < g.top_p <= 1, "grpo.top_p", f"must be in (0, 1], got {g.top_p}")
    _check(g.top_k >= 0, "grpo.top_k", f"must be >= 0, got {g.top_k}")
    _check(g.repetition_penalty > 0, "grpo.repetition_penalty", f"must be > 0, got {g.repetition_penalty}")
    _check(g.loss_type in LOSS_TYPES, "grpo.loss_type", f"must be one of {LOSS_TYPES}, got {g.loss_type!r}")
    _check(g.scale_rewards in SCALE_REWARDS, "grpo.scale_rewards",
           f"must be one of {SCALE_REWARDS}, got {g.scale_rewards!r}")
    _check(g.epsilon > 0, "grpo.epsilon", f"must be > 0, got {g.epsilon}")
    _check(g.num_iterations >= 1, "grpo.num_iterations", f"must be >= 1, got {g.num_iterations}")
    for k in ("rollout_batch_prompts", "update_batch_prompts"):
        v = getattr(g, k)
        _check(v is None or v >= 1, f"grpo.{k}", f"must be >= 1 or null, got {v}")
    if g.rollout_batch_prompts and g.update_batch_prompts:
        _check(g.rollout_batch_prompts % g.update_batch_prompts == 0, "grpo.rollout_batch_prompts",
               f"must be a multiple of grpo.update_batch_prompts ({g.update_batch_prompts}), "
               f"got {g.rollout_batch_prompts}")
    _check(g.vllm_mode in VLLM_MODES, "grpo.vllm_mode", f"must be one of {VLLM_MODES}, got {g.vllm_mode!r}")
    _check(0 < g.vllm_gpu_memory_utilization <= 1, "grpo.vllm_gpu_memory_utilization",
           f"must be in (0, 1], got {g.vllm_gpu_memory_utilization}")
    if g.rewards is not None:
        _check(len(g.rewards) > 0, "grpo.rewards", "must name at least one reward (or be null for the paper's set)")
    from ..rewards.registry import RewardConfigError, build_reward_set

    try:  # names, weights and options; builds light objects only (models load on first call)
        build_reward_set(cfg.paper, g.rewards, **g.reward_options)
    except RewardConfigError as e:
        raise ConfigError(f"grpo.rewards / grpo.reward_options: {e}") from None
    return cfg


def check_device(cfg: RunConfig) -> str:
    """The device a run will use; GPU-only options on a CPU raise one clear ConfigError."""
    import warnings

    import torch

    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise ConfigError("device: cuda was requested but no CUDA GPU is visible; set device: cpu or auto")
    dev = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu"
    if dev == "cpu":
        if cfg.bf16:
            raise ConfigError("bf16: bfloat16 mixed precision is a GPU option; set bf16: false for a CPU run")
        if cfg.grpo.enabled and cfg.grpo.use_vllm:
            raise ConfigError("grpo.use_vllm: vLLM generation needs a GPU; set grpo.use_vllm: false for a CPU run")
        if cfg.model.attn_implementation == "flash_attention_2":
            raise ConfigError("model.attn_implementation: flash_attention_2 needs a GPU; use auto or sdpa on CPU")
        if cfg.gradient_checkpointing:
            warnings.warn("gradient_checkpointing on a CPU run only slows it down (it saves GPU memory); "
                          "set gradient_checkpointing: false", stacklevel=2)
    return dev


# ------------------------------------------------------------------------ loading
#: mappings that an override replaces whole instead of merging key by key, by path: a reward set
#: ``{name: weight}`` is the set of rewards a run optimises, so an override that gives one without
#: the semantic reward drops it (MedGround-R1 Table 3's ablation). A dotted override *into* the
#: set (``grpo.rewards.spatial=2``) changes that one weight.
REPLACED_WHOLE = (("grpo", "rewards"),)
_OVERRIDE_KEY = re.compile(r"[\w-]+(?:\.[\w-]+)*")


def merge_config(base: dict[str, Any], over: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``base`` with ``over`` merged in (neither is modified): mappings merge key by key, except
    those of :data:`REPLACED_WHOLE`, which ``over`` replaces; any other value replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        path = (*_path, k)
        merge = isinstance(v, dict) and isinstance(out.get(k), dict) and path not in REPLACED_WHOLE
        out[k] = merge_config(out[k], v, path) if merge else copy.deepcopy(v)
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """``"grpo.beta=0"`` -> ``("grpo.beta", 0)``, the value read as YAML; one ConfigError
    sentence naming the key when the item or its value is malformed."""
    import yaml

    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. grpo.beta=0")
    key, raw = (part.strip() for part in item.split("=", 1))
    if not _OVERRIDE_KEY.fullmatch(key):
        raise ConfigError(f"override {item!r}: {key!r} is not a dotted config key such as grpo.beta")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as e:
        why = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{key}: the override value {raw!r} is not valid YAML ({why}); close its brackets "
                          "or quote it") from None


def _field_type(path: list[str]) -> Any:
    """The annotation of the config field at ``path`` (Any below a free-form mapping);
    ConfigError naming the first unknown key."""
    tp: Any = RunConfig
    for i, part in enumerate(path):
        if not dataclasses.is_dataclass(tp):
            return Any  # inside a {name: value} mapping such as grpo.rewards or model.tiny
        fields = {f.name for f in dataclasses.fields(tp)}
        if part not in fields:
            where = ".".join(path[:i])
            raise ConfigError(f"unknown config key {'.'.join(path[: i + 1])}; valid keys"
                              f"{' of ' + where if where else ''}: {', '.join(sorted(fields))}")
        tp = typing.get_type_hints(tp)[part]
    return tp


def check_override(item: str) -> tuple[str, Any]:
    """:func:`parse_override`, plus: the key exists and the value has the field's type."""
    key, value = parse_override(item)
    tp = _field_type(key.split("."))
    if tp is not Any:
        _coerce(value, tp, key)
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``data`` with ``value`` set at the dotted ``key`` (a mapping value merges into a mapping
    there, as :func:`merge_config` does)."""
    path = key.split(".")
    out = copy.deepcopy(data)
    node = out
    for i, part in enumerate(path[:-1]):
        nxt = node.get(part)
        if nxt is None and tuple(path[: i + 1]) in REPLACED_WHOLE:
            raise ConfigError(f"{key}: {'.'.join(path[: i + 1])} is the paper's default set here; give the whole "
                              f"set instead, e.g. {'.'.join(path[: i + 1])}={{format: 1, spatial: 1}}")
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key}: {'.'.join(path[: i + 1])} is {nxt!r}, not a mapping")
        node = nxt
    node.update(merge_config(node, {path[-1]: value}, tuple(path[:-1])))
    return out


def apply_overrides(data: dict[str, Any], items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """Every ``"section.key=value"`` of ``items`` applied to ``data``, in order (a later one wins)."""
    for item in items or ():
        data = apply_override(data, *parse_override(item))
    return data


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["grpo.beta=0", "data.sizes={train: 8}"]`` -> nested dict (values parsed as YAML)."""
    return apply_overrides({}, items)


def config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | list[str] | tuple[str, ...] | None = None) -> RunConfig:
    """A validated :class:`RunConfig` from a nested dict plus overrides: ``"section.key=value"``
    strings applied in order (:func:`apply_overrides`) or a nested dict (:func:`merge_config`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a run config must be a mapping, got {type(data).__name__}")
    if isinstance(overrides, list | tuple):
        merged = apply_overrides(data, list(overrides))
    else:
        merged = merge_config(data, overrides or {})
    return validate(_build(RunConfig, merged))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file; one ConfigError sentence when it is missing, not
    UTF-8 text or not valid YAML."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start} is 0x{e.object[e.start]:02x}); save the file "
                          "as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where} ({getattr(e, 'problem', None) or type(e).__name__})") from None
    return {} if data is None else data


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> RunConfig:
    """Read a YAML run config (see ``configs/<paper>/*.yaml``) and validate it."""
    p = Path(path)
    data = read_config_file(p)
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
