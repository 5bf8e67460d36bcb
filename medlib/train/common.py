"""What the SFT and GRPO runners share: the starting model, Trainer arguments, LoRA, checkpoints,
saving the result, and the provenance written next to it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig, StageConfig, VisionStage, load_config

TINY = "tiny"
FINAL = "final"


@dataclass
class StageResult:
    """What a finished stage left behind."""

    stage: str
    run_dir: Path
    model_dir: Path
    """The trained model (LoRA merged), loadable with ``medlib.models.load_vlm``."""
    global_step: int
    metrics_csv: Path
    train_samples: int


def as_config(cfg: RunConfig | str | Path | dict, overrides: dict | list[str] | None = None) -> RunConfig:
    """A validated config from a RunConfig, a YAML path or a dict (overrides applied)."""
    from .config import config_from_dict

    if isinstance(cfg, RunConfig):
        return cfg if not overrides else config_from_dict(cfg.to_dict(), overrides)
    if isinstance(cfg, dict):
        return config_from_dict(cfg, overrides)
    return load_config(cfg, overrides)


def init_distributed(device: str):
    """The process group of a launched run, set up before anything touches files. accelerate's
    shared state must be created with ``cpu=True`` on CPU ranks; created without it on a machine
    without CUDA it silently reports one process, and every rank would build the same files."""
    from accelerate import PartialState

    return PartialState(cpu=device == "cpu")


def main_process_first():
    """Context manager: the main process runs the block first (builds files), the others after."""
    from accelerate import PartialState

    return PartialState().main_process_first()


def tiny_model_dir(cfg: RunConfig) -> Path:
    return cfg.run_dir("tiny_model")


def build_tiny_for(cfg: RunConfig, records: list) -> Path:
    """Build (once) the tiny model of ``cfg`` with a tokenizer trained on the paper's templates
    and the records' queries."""
    from .. import prompts
    from ..models.tiny import build_tiny_qwen25vl

    texts = prompts.corpus_texts()
    for r in records:
        texts += [r.query, prompts.medground_question(r.query)]
    return build_tiny_qwen25vl(tiny_model_dir(cfg), texts=texts, **cfg.model.tiny)


def resolve_init_model(cfg: RunConfig, stage: StageConfig | VisionStage, stage_name: str, records: list) -> str:
    """Local folder of the model a stage starts from (``init_from``: base, vision, sft or a folder)."""
    from ..models.load import resolve_model_source
    from ..paths import repo_path

    if stage.init_from in ("sft", "vision"):
        p = cfg.run_dir(stage.init_from) / FINAL
        if not (p / "config.json").is_file():
            raise ConfigError(
                f"{stage_name}.init_from: {stage.init_from}, but {p} holds no trained model; run the "
                f"{stage.init_from} stage first (python -m medlib.train {stage.init_from} --config ...) or set "
                f"{stage_name}.init_from: base"
            )
        return str(p)
    if stage.init_from != "base":
        p = repo_path(stage.init_from)
        if not (p / "config.json").is_file():
            raise ConfigError(f"{stage_name}.init_from: {p} is not a saved model folder (no config.json)")
        return str(p)
    with main_process_first():  # one process builds or downloads, the others then find it
        if cfg.model.name_or_path == TINY:
            return str(build_tiny_for(cfg, records))
        return resolve_model_source(cfg.model.name_or_path)


def use_image_backend(processor, backend: str = "auto"):
    """``processor`` with its image processor rebuilt on the ``backend`` (``"pil"``), same settings;
    ``"auto"`` leaves it as loaded. Saved processors record no backend, so every load applies it."""
    if backend == "auto":
        return processor
    import transformers

    ip = getattr(processor, "image_processor", None)
    if ip is None:
        return processor
    name = type(ip).__name__
    base = name[: -len("Pil")] if name.endswith("Pil") else name
    cls = getattr(transformers, base + "Pil", None)
    if cls is None:
        raise ConfigError(f"model.image_backend: {backend}, but {name} has no PIL backend in transformers "
                          f"{transformers.__version__}; use auto")
    if not isinstance(ip, cls):
        skip = {"image_processor_type", "processor_class", "_processor_class", "backend"}
        processor.image_processor = cls(**{k: v for k, v in ip.to_dict().items() if k not in skip})
    return processor


def stage_processor(cfg: RunConfig, model_path: str):
    """The processor a stage trains with: the model's, with the config's pixel bounds and image backend."""
    from ..models.load import load_processor

    proc = load_processor(model_path, cfg.model.min_pixels, cfg.model.max_pixels)
    return use_image_backend(proc, cfg.model.image_backend)


def lora_config(stage: StageConfig):
    """``peft.LoraConfig`` of a stage, or None when LoRA is off."""
    if not stage.lora.enabled:
        return None
    from peft import LoraConfig

    lo = stage.lora
    return LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules,
                      task_type="CAUSAL_LM")


def model_init_kwargs(cfg: RunConfig) -> dict[str, Any]:
    from ..models.load import resolve_attn_implementation

    kw: dict[str, Any] = {"attn_implementation": resolve_attn_implementation(cfg.model.attn_implementation)}
    if cfg.model.dtype != "auto":
        kw["dtype"] = cfg.model.dtype
    return kw


def _checkpointing_arg() -> str:
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def trainer_kwargs(cfg: RunConfig, stage: StageConfig, run_dir: Path, device: str) -> dict[str, Any]:
    """Arguments shared by ``trl.SFTConfig`` and ``trl.GRPOConfig``, all set explicitly."""
    ckpt_arg = _checkpointing_arg()  # transformers 5.2x renamed gradient_checkpointing
    return {
        "output_dir": str(run_dir),
        "run_name": f"{cfg.name}/{run_dir.name}",
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "learning_rate": stage.learning_rate,
        "num_train_epochs": stage.epochs,
        "max_steps": stage.max_steps,
        "gradient_accumulation_steps": stage.grad_accum,
        "warmup_steps": stage.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        "lr_scheduler_type": stage.lr_scheduler,
        "weight_decay": stage.weight_decay,
        "max_grad_norm": stage.max_grad_norm,
        "optim": stage.optim,
        "bf16": cfg.bf16,
        "fp16": False,
        ckpt_arg: cfg.gradient_checkpointing,
        "logging_steps": stage.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": stage.save_steps,
        "save_total_limit": stage.save_total_limit,
        "report_to": "none",  # TensorBoard is added as a callback writing to <run>/tensorboard
        "disable_tqdm": not cfg.progress,
        "use_cpu": device == "cpu",
        "dataloader_num_workers": 0,
        "model_init_kwargs": model_init_kwargs(cfg),
    }


def callbacks_for(cfg: RunConfig, run_dir: Path, extra: list | tuple = ()) -> list:
    from .callbacks import CSVMetricsCallback, RankReportCallback, tensorboard_callback
    from .checkpoints import CheckpointMarkerCallback

    cbs = [CSVMetricsCallback(run_dir / "metrics.csv"), RankReportCallback(run_dir / "ranks"),
           CheckpointMarkerCallback()]
    if "tensorboard" in cfg.report_to:
        tb = tensorboard_callback(run_dir / "tensorboard")
        if tb is not None:
            cbs.append(tb)
    return cbs + list(extra)


class ResumeFixMixin:
    """Resume a full-model checkpoint with transformers' own key conversion.

    transformers 5.2x saves Qwen-VL weights under their original checkpoint names
    (``visual.*``, ``model.layers.*``) but ``Trainer._load_from_checkpoint`` loads them with a
    plain non-strict ``load_state_dict`` into ``model.visual.*`` / ``model.language_model.*``:
    almost nothing is restored and the resumed run silently continues from the initial weights.
    Here the checkpoint is read back with ``from_pretrained`` (which converts the names) and
    copied in strictly. LoRA adapters, DeepSpeed and FSDP checkpoints keep their own loaders.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        from peft import PeftModel

        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        ck = Path(resume_from_checkpoint)
        full = (ck / "model.safetensors").is_file() or (ck / "model.safetensors.index.json").is_file()
        if not full or isinstance(target, PeftModel) or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(target.parameters()).dtype
        loaded = type(target).from_pretrained(str(ck), dtype=dtype)
        missing, unexpected = target.load_state_dict(loaded.state_dict(), strict=False)
        if missing or unexpected:
            raise RuntimeError(f"{ck}: checkpoint does not match the model (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
        del loaded


def resumable(trainer_cls):
    """``trainer_cls`` with :class:`ResumeFixMixin`'s checkpoint loading."""
    return type(trainer_cls.__name__, (ResumeFixMixin, trainer_cls), {})


def train_or_resume(trainer, run_dir: Path, stage: StageConfig, resume: bool) -> None:
    """Train, resuming from the newest *complete* checkpoint in ``run_dir`` when there is one
    (:func:`medlib.train.checkpoints.newest_complete_checkpoint`: newer, incomplete ones are
    moved aside and one line says so). A checkpoint that already reached ``max_steps`` is
    loaded without training (transformers would run one step past it)."""
    ckpt = last_checkpoint(run_dir) if resume else None
    done = ckpt is not None and stage.max_steps > 0 and checkpoint_step(ckpt) >= stage.max_steps
    if not done:
        trainer.train(resume_from_checkpoint=ckpt)
        return
    trainer._load_from_checkpoint(ckpt)
    trainer.state.global_step = checkpoint_step(ckpt)


def checkpoint_step(ckpt: str | Path) -> int:
    state = Path(ckpt) / "trainer_state.json"
    if state.is_file():
        return int(json.loads(state.read_text()).get("global_step", 0))
    return int(Path(ckpt).name.rsplit("-", 1)[-1])


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint of ``run_dir`` (the main process moves incomplete newer
    ones aside and prints which it used and why), or None."""
    import sys

    from accelerate import PartialState

    from .checkpoints import newest_complete_checkpoint

    state = PartialState()
    with main_process_first():
        ckpt, line = newest_complete_checkpoint(run_dir, move=state.is_main_process)
    if line and state.is_main_process:
        print(line, file=sys.stderr)
        prov = run_dir / "provenance.json"
        if prov.is_file():  # the run files say what this run resumed from
            info = json.loads(prov.read_text()) | {"resumed_from": ckpt.name if ckpt else None, "resume_note": line}
            prov.write_text(json.dumps(info, indent=1, default=str))
    return str(ckpt) if ckpt is not None else None


def save_final(trainer, processor, base_model: str, run_dir: Path, peft: bool) -> Path:
    """Save the trained model to ``<run>/final`` (a LoRA adapter is merged into the base weights
    on the main process, so the next stage and the evaluation load one plain model)."""
    from accelerate import PartialState

    final = run_dir / FINAL
    if not peft:
        trainer.save_model(str(final))
    else:
        trainer.save_model(str(run_dir / "adapter"))
    state = PartialState()
    state.wait_for_everyone()
    if state.is_main_process:
        if peft:
            from peft import PeftModel
            from transformers import AutoModelForImageTextToText

            base = AutoModelForImageTextToText.from_pretrained(base_model, dtype="auto")
            merged = PeftModel.from_pretrained(base, str(run_dir / "adapter")).merge_and_unload()
            merged.save_pretrained(str(final))
        processor.save_pretrained(str(final))
    state.wait_for_everyone()
    return final


def provenance(cfg: RunConfig, stage: str) -> dict[str, Any]:
    """Stage, paper, run name and seed, then the git commit and package versions
    (:func:`medlib.provenance.provenance`)."""
    from ..provenance import provenance as record

    return record(stage=stage, paper=cfg.paper, name=cfg.name, seed=cfg.seed)


def write_run_files(cfg: RunConfig, stage: str, run_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """``config.yaml`` (the full resolved config) and ``provenance.json`` in the run folder."""
    import yaml
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    info = provenance(cfg, stage) | (extra or {})
    (run_dir / "provenance.json").write_text(json.dumps(info, indent=1, default=str))
