"""GRPO steps per minute on a CPU with ``grpo.fast_generation`` off (TRL's ``model.generate``) and on
(:mod:`medlib.train.fast_generation`), side by side in one run.

The MedGround-R1 learning config's GRPO stage (8 prompts x G 4, 48 new tokens at most, temperature
1, the paper's three rewards) from an SFT model, ``--steps`` optimizer steps per run, runs
alternating old / new / new / old ... (``--pairs`` of each) so that a shared machine's load falls
on both alike; medians over the steps after each run's first. Both runs of a pair start from the
same model and seed, and the two samplers draw the same tokens, so their logged rewards and
completion lengths must be equal: the file records whether they were. Writes
``results/benchmarks/generation.json`` with the machine's load (``os.getloadavg``) and core count.

    python benchmarks/bench_generation.py --model runs/medground_learning/sft/final [--steps 3] [--pairs 2]

An SFT model of that config (about 35-token answers; a random model always runs to 48 tokens):
``python -m medlib.train sft --config configs/medground/learning.yaml --set sft.max_steps=60
sft.init_from=base vision.enabled=false``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from medlib.paths import results_dir
from medlib.segment.quality import run_info

CONFIG = "configs/medground/learning.yaml"
COMPARED = ("reward", "completions/mean_length", "kl", "loss")


def timed_run(model: str, fast: bool, steps: int, out_dir: Path) -> dict:
    """One GRPO run of ``steps`` steps: seconds per step, generation seconds per step, metrics."""
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from medlib.train import run_grpo
    from medlib.train.callbacks import read_metrics

    step_s, gen_s = [], []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            step_s.append(time.perf_counter() - self.t0)

    inner = GRPOTrainer._generate_single_turn

    def timed_generation(self, *a, **kw):  # TRL's padding + generate + EOS masking, both paths alike
        t0 = time.perf_counter()
        try:
            return inner(self, *a, **kw)
        finally:
            gen_s.append(time.perf_counter() - t0)

    GRPOTrainer._generate_single_turn = timed_generation
    try:
        load0 = os.getloadavg()[0]
        res = run_grpo(CONFIG, [f"grpo.init_from={model}", f"grpo.max_steps={steps}", f"output_dir={out_dir}",
                                f"grpo.save_steps={steps + 1}", "grpo.logging_steps=1", "progress=false",
                                f"grpo.fast_generation={str(fast).lower()}"], callbacks=[StepTimer()])
    finally:
        GRPOTrainer._generate_single_turn = inner
    rows = [r for r in read_metrics(res.metrics_csv) if "loss" in r]
    return {"fast_generation": fast, "step_s": step_s, "generation_s": gen_s,
            "metrics": [{k: r.get(k) for k in COMPARED} for r in rows],
            "loadavg_1min_start": load0, "loadavg_1min_end": os.getloadavg()[0]}


def summary(runs: list[dict], fast: bool) -> dict:
    """Medians over the runs of one sampler, each run's first step left out."""
    sel = [r for r in runs if r["fast_generation"] is fast]
    step = [s for r in sel for s in r["step_s"][1:]]
    gen = [s for r in sel for s in r["generation_s"][1:]]
    length = [m["completions/mean_length"] for r in sel for m in r["metrics"]]
    med, med_gen = statistics.median(step), statistics.median(gen)
    return {"median_step_s": med, "grpo_steps_per_min": 60.0 / med, "median_generation_s_per_step": med_gen,
            "generation_share": med_gen / med, "mean_completion_length": statistics.mean(length),
            "timed_steps": len(step)}


def report(runs: list[dict], order: list[bool], args) -> dict:
    """Write the results file of the finished pairs of runs; returns it."""
    old, new = summary(runs, False), summary(runs, True)
    same = all(a["metrics"] == b["metrics"] for a, b in zip(runs[0::2], runs[1::2], strict=True))
    out = {
        "what": "GRPO steps per minute, grpo.fast_generation false (TRL model.generate) vs true "
                "(medlib.train.fast_generation), same model, data, seed and settings",
        "command": f"python benchmarks/bench_generation.py --model <SFT model> --steps {args.steps} --pairs {args.pairs}",
        "config": CONFIG, "model": args.model_label, "steps_per_run": args.steps, "run_order_fast_generation": order,
        "runs_finished": len(runs),
        "first_step_of_each_run": "excluded from the medians (model, data and reward models warm up)",
        "torch_threads": torch.get_num_threads(), "nproc": os.cpu_count(),
        "loadavg_end": list(os.getloadavg()),
        "old": old, "new": new,
        "speedup_steps_per_min": new["grpo_steps_per_min"] / old["grpo_steps_per_min"],
        "speedup_generation": old["median_generation_s_per_step"] / new["median_generation_s_per_step"],
        "same_logged_metrics_old_vs_new": same,
        "runs": runs,
        **run_info(),
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="SFT model folder of the learning config (see above)")
    ap.add_argument("--model-label", default="SFT, 60 steps of configs/medground/learning.yaml from the tiny base",
                    help="how the results file describes --model (no paths of this machine)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--out", default=str(results_dir("benchmarks") / "generation.json"))
    args = ap.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        print(f"--model {args.model}: no model folder there; train one with the SFT command in this file's "
              "docstring", file=sys.stderr)
        return 2
    order = [f for i in range(args.pairs) for f in ((False, True) if i % 2 == 0 else (True, False))]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, fast in enumerate(order):
            r = timed_run(args.model, fast, args.steps, Path(tmp) / f"run{i}")
            runs.append(r)
            print(f"run {i}: fast_generation={fast} steps {[round(s, 1) for s in r['step_s']]} s, "
                  f"generation {[round(s, 1) for s in r['generation_s']]} s", flush=True)
            if i % 2 == 1:  # a finished pair: the file holds everything measured so far
                out = report(runs, order, args)
    print(json.dumps({k: out[k] for k in ("old", "new", "speedup_steps_per_min", "speedup_generation",
                                          "same_logged_metrics_old_vs_new", "loadavg_end")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
