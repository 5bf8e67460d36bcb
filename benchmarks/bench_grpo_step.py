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
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import torch

from medlib.paths import repo_path, results_dir

SMOKE = ("configs/medground/smoke.yaml", "configs/medreasoner/smoke.yaml", "configs/medvol/smoke.yaml")
BENCH_DIR = "build/bench_grpo"


# ------------------------------------------------------------------------- timers
class Timers:
    """Exclusive wall-clock seconds per category: nested timers are subtracted from the outer."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []

    def wrap(self, category: str, fn):
        timers = self

        def timed(*args, **kwargs):
            timers._stack.append([0.0])
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - t0
                children = timers._stack.pop()[0]
                timers.seconds[category] += total - children
                timers.calls[category] += 1
                if timers._stack:
                    timers._stack[-1][0] += total

        timed.__name__ = getattr(fn, "__name__", category)
        timed.__wrapped__ = fn
        return timed


class TimedReward:
    """A reward callable under a timer, keeping the ``__name__`` TRL logs."""

    def __init__(self, fn, timers: Timers):
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.fn = fn
        self._timed = timers.wrap(f"reward:{self.__name__}", fn)

    def __call__(self, *args, **kwargs):
        return self._timed(*args, **kwargs)


def patch_trainer(timers: Timers) -> list[tuple[object, str, object]]:
    """Wrap the GRPOTrainer methods and Tensor.backward; returns what to restore."""
    from trl import GRPOTrainer

    patched = []
    for name, cat in (
        ("_generate", "generation"),
        ("_get_per_token_logps_and_entropies", "log_probs"),
        ("compute_loss", "loss"),
        ("_calculate_rewards", "reward_bookkeeping"),
    ):
        orig = getattr(GRPOTrainer, name)
        patched.append((GRPOTrainer, name, orig))
        setattr(GRPOTrainer, name, timers.wrap(cat, orig))
    patched.append((torch.Tensor, "backward", torch.Tensor.backward))
    torch.Tensor.backward = timers.wrap("backward", torch.Tensor.backward)
    return patched


def unpatch(patched) -> None:
    for owner, name, orig in reversed(patched):
        setattr(owner, name, orig)


def step_timer_callback(step_seconds: list[float]):
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            step_seconds.append(time.perf_counter() - self.t0)

    return StepTimes()


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


def summarise(timers: Timers, steps: list[float], skip_first: bool = True) -> dict:
    """Seconds per step and the shares of the measured steps (all steps' categories, scaled)."""
    total = sum(steps)
    measured = steps[1:] if skip_first and len(steps) > 1 else steps
    cats = dict(timers.seconds)
    cats["rest"] = max(total - sum(cats.values()), 0.0)
    shares = {k: v / total for k, v in sorted(cats.items())} if total > 0 else {}
    return {
        "step_seconds": [round(s, 3) for s in steps],
        "seconds_per_step": sum(measured) / len(measured) if measured else None,
        "seconds_per_step_incl_first": total / len(steps) if steps else None,
        "shares": {k: round(v, 4) for k, v in shares.items()},
        "seconds": {k: round(v, 3) for k, v in sorted(cats.items())},
        "calls": dict(sorted(timers.calls.items())),
    }


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
    patched = patch_trainer(timers)
    try:
        run_grpo(run, reward_funcs=[TimedReward(f, timers) for f in funcs], reward_weights=weights,
                 callbacks=[step_timer_callback(step_seconds)])
    finally:
        unpatch(patched)
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
    patched = patch_trainer(timers)
    try:
        trainer = GRPOTrainer(model=init, reward_funcs=[constant_reward],
                              args=grpo_args(run, run_dir, "cpu", [1.0]), train_dataset=data,
                              processing_class=processor, callbacks=[step_timer_callback(step_seconds)])
        trainer.train()
    finally:
        unpatch(patched)
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
