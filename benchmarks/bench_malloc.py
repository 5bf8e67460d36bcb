"""Training speed on a CPU with glibc's default malloc settings vs ``medlib.reproduce.MALLOC_ENV``.

Side by side, in one run: the same SFT run of the smoke MedReasoner model (``--steps`` steps,
fresh process each) under both settings, alternating ``--repeats`` times. Records wall seconds,
system seconds and minor page faults of each process, and checks that both settings give the
same weights (the setting changes where memory comes from, not any number). Writes
``results/benchmarks/malloc.json``.

    python benchmarks/bench_malloc.py [--steps 30] [--repeats 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medlib.paths import repo_path, results_dir
from medlib.reproduce import MALLOC_ENV
from medlib.segment.quality import run_info

CONFIG = "configs/medreasoner/smoke.yaml"


def one_run(steps: int, env: dict[str, str], out: Path) -> dict:
    """One SFT run in a fresh process; its wall and system seconds, page faults and weights hash."""
    over = [f"output_dir={out}", "name=bench", "data.template=direct", f"sft.max_steps={steps}",
            f"sft.save_steps={steps + 1}", "progress=false"]
    cmd = [sys.executable, "-m", "medlib.train", "sft", "--config", str(repo_path(CONFIG)), "--set", *over]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=repo_path("."))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    weights = out / "bench" / "sft" / "final" / "model.safetensors"
    return {"wall_seconds": round(wall, 2), "system_seconds": round(after.ru_stime - before.ru_stime, 2),
            "user_seconds": round(after.ru_utime - before.ru_utime, 2),
            "minor_page_faults": after.ru_minflt - before.ru_minflt,
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    default_env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    settings = {"glibc_default": default_env, "medlib_malloc_env": {**default_env, **MALLOC_ENV}}
    runs: dict[str, list[dict]] = {k: [] for k in settings}
    for _ in range(a.repeats):
        for name, env in settings.items():
            with tempfile.TemporaryDirectory() as tmp:
                runs[name].append(one_run(a.steps, env, Path(tmp)))
                print(name, runs[name][-1], flush=True)
    best = {k: min(r["wall_seconds"] for r in v) for k, v in runs.items()}
    hashes = {r["weights_sha256"] for v in runs.values() for r in v}
    out = {
        "what": f"SFT of the smoke MedReasoner model ({CONFIG}, direct prompt), {a.steps} steps, one fresh process per run",
        "malloc_env": MALLOC_ENV,
        "runs": runs,
        "best_wall_seconds": best,
        "speedup": round(best["glibc_default"] / best["medlib_malloc_env"], 2),
        "identical_weights": len(hashes) == 1,
        "command": "python benchmarks/bench_malloc.py " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
        **run_info(),
    }
    path = results_dir("benchmarks") / "malloc.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"speedup {out['speedup']}x, identical weights: {out['identical_weights']}; wrote {path}")


if __name__ == "__main__":
    main()
