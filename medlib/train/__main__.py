"""Command line: ``python -m medlib.train <stage> --config FILE [--set section.key=value ...]``.

  check   validate the config and print what would run (no model or data is loaded)
  vision  run the vision-tower warm-up (dense per-token objective; docs/grpo.md)
  sft     run (or resume) the SFT stage
  grpo    run (or resume) the GRPO stage
  all     vision warm-up, SFT, then GRPO: the stages the config enables, in that order

A rerun into a run folder that a different config made (another learning rate, template, data...)
is refused with the list of what changed: add ``--fresh`` to move the old folder aside (renamed
``<stage>.old-<hash>``, never deleted) and start over, or ``--resume-anyway`` to continue its
checkpoints with the new config (the old config is kept as ``config.resumed-over-<n>.yaml``).
A newest checkpoint that is incomplete (killed mid-save, truncated, missing files) is moved to
``incomplete_checkpoints/`` and the run resumes from the newest complete one.

Many GPUs: ``accelerate launch --config_file configs/accelerate/zero2.yaml -m medlib.train grpo
--config configs/medground/full.yaml``.
"""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, RunConfig


def summary(cfg: RunConfig) -> str:
    """A few lines naming what a config runs."""
    lines = [f"{cfg.name}: {cfg.paper}, model {cfg.model.name_or_path}, data {cfg.data.source} at {cfg.data.root} "
             f"(template {cfg.template}), seed {cfg.seed}, bf16 {cfg.bf16}"]
    s, g, v = cfg.sft, cfg.grpo, cfg.vision
    if v.enabled:
        lines.append(f"  vision: warm-up of the vision tower, {v.steps} steps, lr {v.learning_rate:g}, batch {v.batch_size}, "
                     f"from {v.init_from}")
    if s.enabled:
        lines.append(f"  sft : lr {s.learning_rate:g}, epochs {s.epochs:g}, max_steps {s.max_steps}, batch {s.batch_size} "
                     f"x accum {s.grad_accum}, lora {'r=' + str(s.lora.r) if s.lora.enabled else 'off'}, "
                     f"from {s.init_from}")
    if g.enabled:
        lines.append(f"  grpo: G {g.num_generations}, beta {g.beta:g}, lr {g.learning_rate:g}, loss {g.loss_type}, "
                     f"scale_rewards {g.scale_rewards}, T {g.temperature:g}, completion {g.max_completion_length}, "
                     f"epochs {g.epochs:g}, max_steps {g.max_steps}, {g.batch_size} prompt(s) x accum {g.grad_accum}, "
                     f"lora {'r=' + str(g.lora.r) if g.lora.enabled else 'off'}, vllm {g.use_vllm}, from {g.init_from}")
        lines.append(f"        rewards {g.rewards or 'paper default'} {g.reward_options or ''}")
    lines.append(f"  outputs: {cfg.run_dir('<stage>')}")
    return "\n".join(lines)


def prepare_run_folder(cfg: RunConfig, stage: str, fresh: bool, resume_anyway: bool) -> str | None:
    """Before a stage runs: a folder made by another config is moved aside (``fresh``), kept
    with its old config saved beside (``resume_anyway``), or refused (the sentence returned)."""
    import shutil

    from ..evaluate.provenance import config_hash
    from .run_folder import config_change, has_work, move_aside, recorded_config

    run_dir = cfg.run_dir(stage)
    if not has_work(run_dir):
        return None
    old = recorded_config(run_dir)
    changed = config_change(old, cfg.to_dict(), stage) if old is not None else []
    if fresh:
        target = move_aside(run_dir, f"{stage}.old-{config_hash(old or {})[:8]}")
        print(f"{stage}: moved the existing run folder to {target}; starting fresh")
        return None
    if not changed:
        return None
    what = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
    if resume_anyway:
        n = 1 + len(list(run_dir.glob("config.resumed-over-*.yaml")))
        shutil.copyfile(run_dir / "config.yaml", run_dir / f"config.resumed-over-{n}.yaml")
        print(f"{stage}: resuming {run_dir} although its config differs ({what}); its config is kept as "
              f"config.resumed-over-{n}.yaml")
        return None
    return (f"{run_dir} was made by a different config ({what}); rerun with --fresh to move it aside and start "
            f"over, or with --resume-anyway to continue it with the new config.")


def main(argv: list[str] | None = None) -> int:
    from ..cli import RunConfigParser

    ap = RunConfigParser(prog="python -m medlib.train", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=("check", "vision", "sft", "grpo", "all"))
    ap.add_config_arguments(set_help="override config values")
    when = ap.add_mutually_exclusive_group()
    when.add_argument("--fresh", action="store_true",
                      help="move an existing run folder of the stage aside (<stage>.old-<hash>) and start over")
    when.add_argument("--resume-anyway", action="store_true",
                      help="resume a run folder even though a different config made it")
    args = ap.parse_args(argv)  # exits with code 2 and one sentence on a bad config or override
    cfg = args.run_config
    print(summary(cfg))
    if args.stage == "check":
        from .preflight import missing_paths

        problems = missing_paths(cfg)
        for p in problems:
            print(f"config error: {p}", file=sys.stderr)
        return 2 if problems else 0
    from ..data.io import DatasetError
    from ..models.load import ModelLoadError
    from .grpo import run_grpo
    from .sft import run_sft
    from .vision_warmup import run_vision_warmup

    runners = {"vision": run_vision_warmup, "sft": run_sft, "grpo": run_grpo}
    stages = {"all": [s for s in runners if getattr(cfg, s).enabled]}.get(args.stage, [args.stage])
    refused = [msg for s in stages if (msg := prepare_run_folder(cfg, s, args.fresh, args.resume_anyway))]
    if refused:
        print("error: " + " ".join(refused), file=sys.stderr)
        return 2
    try:
        for stage in stages:
            result = runners[stage](cfg)
            print(f"{stage}: {result.global_step} steps, model {result.model_dir}, metrics {result.metrics_csv}")
    except (ConfigError, DatasetError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
