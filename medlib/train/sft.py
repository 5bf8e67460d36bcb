"""SFT stage through ``trl.SFTTrainer``: next-token loss on the paper's answer format.

MedVol-R1's cold start (Sec. 2.4: LoRA rank 128 on all linear layers, targets from Top-K
visibility sampling), MedGround-R1's SFT baseline (Table 4) and the CPU warm start of the tiny
model (docs/grpo.md#small-models-on-a-cpu). Rows are prompt-completion pairs; the loss covers only the
completion (``completion_only_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import (
    StageResult,
    as_config,
    callbacks_for,
    init_distributed,
    lora_config,
    main_process_first,
    resolve_init_model,
    resumable,
    save_final,
    stage_processor,
    train_or_resume,
    trainer_kwargs,
    write_run_files,
)
from .config import ConfigError, RunConfig, check_device

STAGE = "sft"


def sft_args(cfg: RunConfig, run_dir: Path, device: str):
    """``trl.SFTConfig`` of the config's SFT stage."""
    from trl import SFTConfig

    return SFTConfig(**sft_kwargs(cfg, run_dir, device))


def sft_kwargs(cfg: RunConfig, run_dir: Path, device: str) -> dict[str, Any]:
    """Every ``trl.SFTConfig`` argument the stage sets."""
    s = cfg.sft
    return dict(
        **trainer_kwargs(cfg, s, run_dir, device),
        per_device_train_batch_size=s.batch_size,
        max_length=s.max_length,
        completion_only_loss=s.completion_only_loss,
        packing=False,
        dataset_kwargs={"skip_prepare_dataset": True},  # images are processed by the collator
        remove_unused_columns=True,
    )


def run_sft(
    cfg: RunConfig | str | Path | dict,
    overrides: dict | list[str] | None = None,
    *,
    callbacks: Sequence[Any] = (),
    train_dataset: Any = None,
) -> StageResult:
    """Run (or resume) the SFT stage of ``cfg``; returns where the model and metrics are."""
    from trl import SFTTrainer

    from .datasets import build_rows, load_records, to_dataset

    cfg = as_config(cfg, overrides)
    if not cfg.sft.enabled:
        raise ConfigError(f"sft.enabled: the SFT stage of {cfg.name} is off; set sft.enabled: true to run it")
    device = check_device(cfg)
    init_distributed(device)
    run_dir = cfg.run_dir(STAGE)
    with main_process_first():
        records = load_records(cfg, cfg.data.train_split) if train_dataset is None else []
    model_path = resolve_init_model(cfg, cfg.sft, STAGE, records)
    processor = stage_processor(cfg, model_path)
    if train_dataset is None:
        train_dataset = to_dataset(build_rows(cfg, records, processor, with_completion=True))
    write_run_files(cfg, STAGE, run_dir, {"model": model_path, "train_samples": len(train_dataset)})
    peft = lora_config(cfg.sft)
    trainer = resumable(SFTTrainer)(
        model=model_path,
        args=sft_args(cfg, run_dir, device),
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=peft,
        callbacks=callbacks_for(cfg, run_dir, callbacks),
    )
    train_or_resume(trainer, run_dir, cfg.sft, cfg.resume)
    final = save_final(trainer, processor, model_path, run_dir, peft is not None)
    return StageResult(STAGE, run_dir, final, trainer.state.global_step, run_dir / "metrics.csv", len(train_dataset))
