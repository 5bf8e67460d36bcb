"""Where a GRPO step goes, for each paper's smoke config, against plain TRL.

For each config: ``--steps`` GRPO steps from the config's SFT start (``runs/<name>/sft/final``;
when it is missing a start is trained here with ``--sft-steps`` steps of the config's SFT, under
``build/bench_grpo/``), through :func:`medlib.train.grpo.run_grpo`, with timers wrapped around
``GRPOTrainer._generate`` (generation), ``_get_per_token_logps_and_entropies`` (policy, old and
reference log-probs), ``compute_loss`` (the loss, less its log-probs), ``torch.Tensor.backward``,
``_calculate_rewards`` (TRL's reward bookkeeping), each reward callable, and the segmenter's
propagation (segmentation, counted apart from R_c's own arithmetic). Times are exclusive: a
timer inside another is subtracted from it; "rest" is the step's wall time less all of them
(optimizer, data collation, callbacks, logging).

In the same run, the baseline: plain ``trl.GRPOTrainer`` on the same model, rows and
``GRPOConfig`` (generation settings included) with one constant reward and no medlib callback;
``overhead`` is medlib's seconds per step over the baseline's. The first step of each run warms
caches and is reported but left out of the means.

    python benchmarks/bench_grpo_step.py [--configs configs/medground/smoke.yaml,...] [--steps 4]
                                         [--sft-steps 60] [--out results/benchmarks/grpo_step.json]

Writes the JSON with per-step times, the shares, R_c's encoder calls against the distinct slices
in its windows, and the machine's load before and after (the machine may be shared: read the
shares and ratios, not the seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime

import torch

from medlib.paths import repo_path, results_dir
from medlib.provenance import write_json
from medlib.train.step_timing import TimedReward, Timers, step_timer_callback, summarise, timed_trainer

SMOKE = ("configs/medground/smoke.yaml", "configs/medreasoner/smoke.yaml", "configs/medvol/smoke.yaml")
BENCH_DIR = "build/bench_grpo"


# --------------------------------------------------------------------- the runs
def sft_start(cfg, sft_steps: int) -> tuple[str, str]:
    """The config's SFT start, or one trained here with ``sft_steps`` steps."""
    from medlib.train.config import config_from_dict
    from medlib.train.sft import run_sft

    committed = cfg.run_dir("sft") / "final"
    if (committed / "config.json").is_file():
        return str(committed), f"{committed.relative_to(repo_path('.'))} (the config's SFT start)"
    bench = config_from_dict(cfg.to_dict(), [f"output_dir={BENCH_DIR}", f"sft.max_steps={sft_steps}",
                                             f"sft.save_steps={sft_steps}"])
    final = bench.run_dir("sft") / "final"
    if not (final / "config.json").is_file():
        run_sft(bench)
    return str(final), f"{final.relative_to(repo_path('.'))} ({sft_steps} SFT steps trained by this benchmark)"


def run_medlib(cfg, init: str, steps: int) -> dict:
    """``steps`` GRPO steps of ``cfg`` through medlib, every part timed."""
    from medlib.rewards.medvol import MedVolCrossSlice
    from medlib.train.config import config_from_dict
    from medlib.train.grpo import reward_set, run_grpo

    run = config_from_dict(cfg.to_dict(), [f"output_dir={BENCH_DIR}", f"name={cfg.name}_medlib",
                                           f"grpo.init_from={init}", f"grpo.max_steps={steps}",
                                           f"grpo.save_steps={steps}", "resume=false"])
    shutil.rmtree(run.run_dir("grpo"), ignore_errors=True)
    timers = Timers()
    funcs, weights = reward_set(run)
    rc_stats = []
    for f in funcs:
        if isinstance(f, MedVolCrossSlice):
            seg = f.segmenter
            for meth in ("propagate_many", "propagate_3d"):
                if hasattr(seg, meth):
                    setattr(seg, meth, timers.wrap("segmentation", getattr(seg, meth)))
            score = f.score

            def score_and_count(*a, _f=f, _score=score, **k):
                out = _score(*a, **k)
                rc_stats.append(dict(_f.last_stats))
                return out

            f.score = score_and_count
    step_seconds: list[float] = []
    with timed_trainer(timers):
        run_grpo(run, reward_funcs=[TimedReward(f, timers) for f in funcs], reward_weights=weights,
                 callbacks=[step_timer_callback(step_seconds)])
    out = summarise(timers, step_seconds)
    out["rewards"] = [getattr(f, "__name__", str(f)) for f in funcs]
    if rc_stats:
        out["cross_slice_per_step"] = rc_stats
        out["cross_slice_share"] = round(
            out["shares"].get("reward:medvol_cross_slice", 0) + out["shares"].get("segmentation", 0), 4)
    sem = [k for k in out["shares"] if "semantic" in k]
    if sem:
        out["semantic_share"] = round(sum(out["shares"][k] for k in sem), 4)
    return out


def constant_reward(prompts, completions, **kwargs):
    return [1.0] * len(completions)


def run_plain_trl(cfg, init: str, steps: int) -> dict:
    """The baseline: plain ``trl.GRPOTrainer``, same model, rows and GRPOConfig, a constant reward."""
    from trl import GRPOTrainer

    from medlib.train.common import stage_processor
    from medlib.train.config import config_from_dict
    from medlib.train.datasets import build_rows, load_records, to_dataset
    from medlib.train.grpo import grpo_args

    run = config_from_dict(cfg.to_dict(), [f"output_dir={BENCH_DIR}", f"name={cfg.name}_trl",
                                           f"grpo.init_from={init}", f"grpo.max_steps={steps}",
                                           f"grpo.save_steps={steps}", "resume=false"])
    run_dir = run.run_dir("grpo")
    shutil.rmtree(run_dir, ignore_errors=True)
    processor = stage_processor(run, init)
    data = to_dataset(build_rows(run, load_records(run, run.data.train_split), processor, with_completion=False))
    timers = Timers()
    step_seconds: list[float] = []
    with timed_trainer(timers):
        trainer = GRPOTrainer(model=init, reward_funcs=[constant_reward],
                              args=grpo_args(run, run_dir, "cpu", [1.0]), train_dataset=data,
                              processing_class=processor, callbacks=[step_timer_callback(step_seconds)])
        trainer.train()
    return summarise(timers, step_seconds)


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=",".join(SMOKE))
    ap.add_argument("--steps", type=int, default=4, help="GRPO steps per run (the first is left out of the means)")
    ap.add_argument("--sft-steps", type=int, default=60, help="SFT steps of a start trained here when none exists")
    ap.add_argument("--out", default=str(results_dir() / "benchmarks" / "grpo_step.json"))
    ap.add_argument("--note", default="", help="a sentence stored with the results (e.g. the machine was shared)")
    args = ap.parse_args(argv)
    import transformers
    import trl

    from medlib.train.config import load_config

    started = time.time()
    result = {"benchmark": "grpo_step", "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/bench_grpo_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "trl": trl.__version__, "transformers": transformers.__version__, "steps": args.steps,
              "machine_before": machine(), "note": args.note, "configs": {}}
    for path in [p.strip() for p in args.configs.split(",") if p.strip()]:
        cfg = load_config(repo_path(path))
        t0 = time.time()
        init, origin = sft_start(cfg, args.sft_steps)
        entry = {"config": path, "sft_start": origin, "sft_seconds": round(time.time() - t0, 1)}
        entry["medlib"] = run_medlib(cfg, init, args.steps)
        entry["plain_trl"] = run_plain_trl(cfg, init, args.steps)
        m, b = entry["medlib"]["seconds_per_step"], entry["plain_trl"]["seconds_per_step"]
        entry["overhead"] = round(m / b, 3) if m and b else None
        result["configs"][path] = entry
        print(json.dumps({path: {"medlib_s": m, "trl_s": b, "overhead": entry["overhead"],
                                 "shares": entry["medlib"]["shares"]}}), flush=True)
    result["machine_after"] = machine()
    result["wall_seconds"] = round(time.time() - started, 1)
    print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
