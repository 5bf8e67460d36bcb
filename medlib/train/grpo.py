"""GRPO stage through ``trl.GRPOTrainer`` (MedGround-R1 Sec. 2.1, MedReasoner Sec. 4, MedVol-R1 Sec. 2.5).

The objective is DeepSeekMath's GRPO as the papers use it: ``loss_type="grpo"`` (per-sequence mean
over tokens, then mean over the group), rewards summed with their weights then normalised by the
group's standard deviation (``scale_rewards="group"``), KL to a frozen reference model with
coefficient ``beta`` (TRL's per-token k3 estimator, the "low-variance" KL of veRL). Every one of
these is set from the config, never left to TRL's defaults (docs/grpo.md#trls-defaults-differ).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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
from .diagnostics import with_group_diagnostics

STAGE = "grpo"


def grpo_args(cfg: RunConfig, run_dir: Path, device: str, reward_weights: Sequence[float]):
    """``trl.GRPOConfig`` of the config's GRPO stage."""
    from trl import GRPOConfig

    return GRPOConfig(**grpo_kwargs(cfg, run_dir, device, reward_weights))


def devices() -> int:
    """Number of training processes (``WORLD_SIZE``, set by ``accelerate launch`` / torchrun)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def batch_kwargs(cfg: RunConfig, world_size: int) -> dict[str, int]:
    """Rollout and update sizes in TRL's units (completions). ``grpo.update_batch_prompts``
    (veRL ``ppo_mini_batch_size``) sets the gradient accumulation, ``grpo.rollout_batch_prompts``
    (veRL ``data.train_batch_size``) the generation batch: 128 and 64 give two optimizer steps
    per rollout batch."""
    g = cfg.grpo
    per_step = g.batch_size * world_size
    out: dict[str, int] = {}
    if g.update_batch_prompts is not None:
        if g.update_batch_prompts % per_step:
            raise ConfigError(
                f"grpo.update_batch_prompts: {g.update_batch_prompts} prompts per update is not a multiple of "
                f"grpo.batch_size x devices = {g.batch_size} x {world_size}; change batch_size or the number of GPUs")
        out["gradient_accumulation_steps"] = g.update_batch_prompts // per_step
    if g.rollout_batch_prompts is not None:
        if g.rollout_batch_prompts % per_step:
            raise ConfigError(
                f"grpo.rollout_batch_prompts: {g.rollout_batch_prompts} prompts per rollout is not a multiple of "
                f"grpo.batch_size x devices = {g.batch_size} x {world_size}; change batch_size or the number of GPUs")
        out["generation_batch_size"] = g.rollout_batch_prompts * g.num_generations
    return out


def grpo_kwargs(cfg: RunConfig, run_dir: Path, device: str, reward_weights: Sequence[float],
                world_size: int | None = None) -> dict[str, Any]:
    """Every ``trl.GRPOConfig`` argument the stage sets (``batch_size`` prompts x
    ``num_generations`` completions per device and micro-step)."""
    g = cfg.grpo
    kwargs = trainer_kwargs(cfg, g, run_dir, device)
    kwargs.update(batch_kwargs(cfg, devices() if world_size is None else world_size))
    return dict(
        **kwargs,
        per_device_train_batch_size=g.batch_size * g.num_generations,
        num_generations=g.num_generations,
        beta=g.beta,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        multi_objective_aggregation="sum_then_normalize",
        reward_weights=list(reward_weights),
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        top_k=g.top_k,
        repetition_penalty=g.repetition_penalty,
        epsilon=g.epsilon,
        num_iterations=g.num_iterations,
        mask_truncated_completions=g.mask_truncated_completions,
        # the papers' objective: the k3 KL estimator as is (TRL 1.16 defaults to multiplying it by
        # the importance ratio, which changes the gradient; see notebook 03)
        use_bias_correction_kl=g.kl_bias_correction,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        # TRL 1.16 turns this on by default; the papers' objective has no such reweighting
        vllm_importance_sampling_correction=g.vllm_importance_sampling_correction,
        log_completions=g.log_completions,
        remove_unused_columns=False,
        shuffle_dataset=True,
    )


def reward_set(cfg: RunConfig) -> tuple[list[Callable], list[float]]:
    """The paper's reward callables and weights (``grpo.rewards``, ``grpo.reward_options``); a
    segmenter given by its spec (``"litemedsam"``, ``"medsam2:/path/ckpt.pt"``) is built here, and an
    ``embedded`` semantic scorer trained here if its cache is missing."""
    from ..rewards.registry import build_reward_set
    from .preflight import build_segmenter_at_start, load_reward_models

    opts = dict(cfg.grpo.reward_options)
    if cfg.paper == "medground" and isinstance(opts.get("semantic_scorer"), str):
        # the explicit training step: an `embedded` scorer is trained here (once, then cached),
        # before the run, not inside the first reward call (loading never trains)
        from ..semantic import ensure_trained

        ensure_trained(opts["semantic_scorer"])
    if isinstance(opts.get("segmenter"), str | dict):
        opts["segmenter"] = build_segmenter_at_start(opts["segmenter"])
    funcs, weights = build_reward_set(cfg.paper, cfg.grpo.rewards, **opts)
    load_reward_models(funcs)  # a scorer that cannot be loaded fails here, not at the first parseable box
    return funcs, weights


def run_grpo(
    cfg: RunConfig | str | Path | dict,
    overrides: dict | list[str] | None = None,
    *,
    callbacks: Sequence[Any] = (),
    reward_funcs: Sequence[Callable] | None = None,
    reward_weights: Sequence[float] | None = None,
    train_dataset: Any = None,
) -> StageResult:
    """Run (or resume) the GRPO stage of ``cfg``; returns where the model and metrics are.

    ``reward_funcs`` / ``reward_weights`` replace the paper's set (tests, ablations);
    ``train_dataset`` replaces the rows built from ``cfg.data``.
    """
    from .datasets import build_rows, load_records, to_dataset
    from .fast_generation import grpo_trainer_class
    from .preflight import check_paths

    cfg = as_config(cfg, overrides)
    if not cfg.grpo.enabled:
        raise ConfigError(f"grpo.enabled: the GRPO stage of {cfg.name} is off; set grpo.enabled: true to run it")
    device = check_device(cfg)
    init_distributed(device)
    run_dir = cfg.run_dir(STAGE)
    check_paths(cfg)
    if reward_funcs is None:  # models the rewards use load first: a bad one fails before data or training
        funcs, weights = reward_set(cfg)
    with main_process_first():
        records = load_records(cfg, cfg.data.train_split) if train_dataset is None else []
    model_path = resolve_init_model(cfg, cfg.grpo, STAGE, records)
    processor = stage_processor(cfg, model_path)
    if train_dataset is None:
        train_dataset = to_dataset(build_rows(cfg, records, processor, with_completion=False))
    if reward_funcs is not None:
        funcs = list(reward_funcs)
        weights = list(reward_weights) if reward_weights is not None else [1.0] * len(funcs)
        if len(weights) != len(funcs):
            raise ValueError(f"{len(funcs)} reward functions but {len(weights)} weights")
    funcs = with_group_diagnostics(funcs, weights, cfg.grpo.num_generations)
    write_run_files(cfg, STAGE, run_dir, {"model": model_path, "train_samples": len(train_dataset),
                                          "rewards": [getattr(f, "__name__", str(f)) for f in funcs],
                                          "reward_weights": weights})
    peft = lora_config(cfg.grpo)
    trainer = resumable(grpo_trainer_class(cfg.grpo.fast_generation))(
        model=model_path,
        reward_funcs=funcs,
        args=grpo_args(cfg, run_dir, device, weights),
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=peft,
        callbacks=callbacks_for(cfg, run_dir, callbacks),
    )
    train_or_resume(trainer, run_dir, cfg.grpo, cfg.resume)
    final = save_final(trainer, processor, model_path, run_dir, peft is not None)
    return StageResult(STAGE, run_dir, final, trainer.state.global_step, run_dir / "metrics.csv", len(train_dataset))
