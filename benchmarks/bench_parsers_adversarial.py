"""Parsers and non-model rewards on adversarial completions of 1 MB and 10 MB.

Every shape of :mod:`medlib.adversarial` (long digit runs after ``[``, runs of spaces between
optional parts, repeated openers, nested brackets, unterminated tags and fences), bare and
inside think / answer blocks, through every parser of :mod:`medlib.parsing` and every reward
that needs no model. Each cell is one cold call (parse caches cleared); the goal is under 1 s
each at 10 MB. Writes ``results/benchmarks/parsers_adversarial.json``.

    python benchmarks/bench_parsers_adversarial.py [--sizes 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

from medlib.adversarial import PARSERS, adversarial_completions, non_model_rewards
from medlib.parsing import clear_parse_caches
from medlib.paths import results_dir
from medlib.rewards._common import clear_step_memos
from medlib.segment.quality import run_info

GOAL_SECONDS = 1.0


def cold_seconds(fn, text: str) -> float:
    clear_parse_caches()
    clear_step_memos()
    t0 = time.perf_counter()
    fn(text)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="characters per completion")
    ap.add_argument("--out", default=str(results_dir("benchmarks") / "parsers_adversarial.json"))
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    functions = {f"parser:{k}": v for k, v in PARSERS.items()} | {f"reward:{k}": v for k, v in non_model_rewards().items()}
    sizes = {}
    for n in args.sizes:
        texts = adversarial_completions(n)
        per_function = {}
        for name, fn in functions.items():
            times = {shape: round(cold_seconds(fn, text), 4) for shape, text in texts.items()}
            worst = max(times, key=times.get)
            per_function[name] = {"max_seconds": times[worst], "worst_shape": worst, "seconds": times}
        slowest = max(per_function, key=lambda k: per_function[k]["max_seconds"])
        sizes[str(n)] = {
            "characters": n,
            "shapes": len(texts),
            "max_seconds": per_function[slowest]["max_seconds"],
            "slowest": f"{slowest} on {per_function[slowest]['worst_shape']}",
            "all_under_goal": all(v["max_seconds"] < GOAL_SECONDS for v in per_function.values()),
            "functions": per_function,
        }
        print(f"{n:>10} chars: slowest {sizes[str(n)]['slowest']} {sizes[str(n)]['max_seconds']:.3f} s")
    out = {
        "command": "python benchmarks/bench_parsers_adversarial.py " + " ".join(map(shlex.quote, argv or sys.argv[1:])),
        "goal_seconds": GOAL_SECONDS,
        "note": "one cold call per cell (parse caches cleared), wall seconds on the machine below, which other "
                "jobs may share: load_average (1, 5, 15 min) is read before and after the run",
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "sizes": sizes,
        **run_info(),
    }
    with open(args.out, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
