"""GRPO stage through ``trl.GRPOTrainer`` (MedGround-R1 Sec. 2.1, MedReasoner Sec. 4, MedVol-R1 Sec. 2.5).

The objective is DeepSeekMath's GRPO as the papers use it: ``loss_type="grpo"`` (per-sequence mean
over tokens, then mean over the group), rewards summed with their weights then normalised by the
group's standard deviation (``scale_rewards="group"``), KL to a frozen reference model with
coefficient ``beta`` (TRL's per-token k3 estimator, the "low-variance" KL of veRL). Every one of
these is set from the config, never left to TRL's defaults (REFERENCE_NOTES section 9).
"""

from __future__ import annotations

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

STAGE = "grpo"


def grpo_args(cfg: RunConfig, run_dir: Path, device: str, reward_weights: Sequence[float]):
    """``trl.GRPOConfig`` of the config's GRPO stage."""
    from trl import GRPOConfig

    return GRPOConfig(**grpo_kwargs(cfg, run_dir, device, reward_weights))


def grpo_kwargs(cfg: RunConfig, run_dir: Path, device: str, reward_weights: Sequence[float]) -> dict[str, Any]:
    """Every ``trl.GRPOConfig`` argument the stage sets (``batch_size`` prompts x
    ``num_generations`` completions per device and micro-step)."""
    g = cfg.grpo
    return dict(
        **trainer_kwargs(cfg, g, run_dir, device),
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
        log_completions=g.log_completions,
        remove_unused_columns=False,
        shuffle_dataset=True,
    )


def reward_set(cfg: RunConfig) -> tuple[list[Callable], list[float]]:
    """The paper's reward callables and weights (``grpo.rewards``, ``grpo.reward_options``); a
    segmenter given by its spec (``"litemedsam"``, ``"medsam2:/path/ckpt.pt"``) is built here."""
    from ..rewards.registry import build_reward_set

    opts = dict(cfg.grpo.reward_options)
    if isinstance(opts.get("segmenter"), str | dict):
        from ..segment import build_segmenter

        opts["segmenter"] = build_segmenter(opts["segmenter"])
    return build_reward_set(cfg.paper, cfg.grpo.rewards, **opts)


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

    cfg = as_config(cfg, overrides)
    if not cfg.grpo.enabled:
        raise ConfigError(f"grpo.enabled: the GRPO stage of {cfg.name} is off; set grpo.enabled: true to run it")
    device = check_device(cfg)
    init_distributed(device)
    run_dir = cfg.run_dir(STAGE)
    with main_process_first():
        records = load_records(cfg, cfg.data.train_split) if train_dataset is None else []
    model_path = resolve_init_model(cfg, cfg.grpo, STAGE, records)
    processor = stage_processor(cfg, model_path)
    if train_dataset is None:
        train_dataset = to_dataset(build_rows(cfg, records, processor, with_completion=False))
    if reward_funcs is None:
        funcs, weights = reward_set(cfg)
    else:
        funcs = list(reward_funcs)
        weights = list(reward_weights) if reward_weights is not None else [1.0] * len(funcs)
        if len(weights) != len(funcs):
            raise ValueError(f"{len(funcs)} reward functions but {len(weights)} weights")
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
