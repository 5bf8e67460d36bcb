"""Does GRPO with MedGround-R1's rewards improve on SFT? The learning study.

For each seed: SFT cold start -> evaluate (``sft_start``); from that checkpoint, (a) SFT for as
many more steps as GRPO runs (``sft_more``, the equal-steps control of MedGround-R1 Table 4) and
(b) GRPO with the paper's rewards (``grpo``); evaluate both on the held-out split (mIoU, Acc@0.5,
bootstrap 95% intervals). The same runs serve notebook 10 at the same profile and seed (they are
cached by config).

    python -m medlib.study.learning --config configs/medground/learning.yaml --seeds 0 1 2

writes ``results/learning_study_<config stem>.json`` (per-seed numbers, means, differences, wall seconds per
stage, the command, git commit and versions) and ``results/learning_study_<config stem>.csv``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import repo_path, results_dir
from ..train import load_config
from .ablation import Variant, run_ablation, start_run
from .report import load_study  # noqa: F401 - read by notebook 10 and the figures

ARMS = ("sft_start", "sft_more", "grpo")


def study_variants(grpo_steps: int) -> list[Variant]:
    """GRPO with the paper's G = 4 and reward set, and SFT continued for the same steps."""
    return [Variant("sft_more", stage="sft", overrides={"sft": {"max_steps": grpo_steps}}),
            Variant("G4", overrides={"grpo": {"num_generations": 4}})]


def study_stem(config: str | Path, overrides: Sequence[str] = ()) -> str:
    """``<config stem>`` plus, for a sweep (``--set``), the overrides made safe for a folder name
    (``learning+grpo-learning_rate-3e-4``; no dots, which a path would read as a suffix): a sweep
    gets its own GRPO runs, training logs and results files instead of overwriting the study's own,
    and still reuses its SFT start."""
    stem = Path(config).stem
    return "+".join([stem, *(re.sub(r"[^A-Za-z0-9_+-]", "-", o) for o in overrides)])


def run_study(config: str | Path, seeds: Sequence[int], overrides: Sequence[str] = (), limit: int | None = None,
              group: str | None = None) -> pd.DataFrame:
    """One row per (seed, arm) with mIoU / Acc (%), intervals, steps and seconds."""
    frames = []
    for seed in seeds:
        cfg = load_config(repo_path(config), [*overrides, f"seed={seed}"])
        t0 = time.perf_counter()
        start = start_run(cfg)
        df = run_ablation(cfg, start["model_dir"], study_variants(cfg.grpo.max_steps),
                          group=group or f"{cfg.paper}_{Path(config).stem}", seeds=[seed], limit=limit,
                          include_start="sft_start")
        df["variant"] = df["variant"].replace({"G4": "grpo"})
        df["sft_start_steps"] = start["steps"]
        df["sft_start_seconds"] = start["train_seconds"]
        df["seed_wall_seconds"] = round(time.perf_counter() - t0, 1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def summarise(df: pd.DataFrame) -> dict[str, Any]:
    """Means over seeds per arm, and the per-seed differences GRPO - SFT-start and GRPO - SFT-more."""
    out: dict[str, Any] = {"arms": {}, "differences": {}}
    for arm in ARMS:
        d = df[df["variant"] == arm]
        out["arms"][arm] = {m: round(float(d[m].mean()), 2) for m in ("mIoU", "Acc")} | {"seeds": int(len(d))}
    piv = {m: df.pivot(index="seed", columns="variant", values=m) for m in ("mIoU", "Acc")}
    for ref in ("sft_start", "sft_more"):
        for m, p in piv.items():
            diff = (p["grpo"] - p[ref]).round(2)
            out["differences"][f"grpo - {ref} ({m})"] = {"per_seed": diff.tolist(), "mean": round(float(diff.mean()), 2),
                                                        "seeds_positive": int((diff > 0).sum())}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import RunConfigParser, positive_int, results_stem

    ap = RunConfigParser(prog="python -m medlib.study.learning", description=__doc__, resolve=repo_path,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_config_arguments(config_default="configs/medground/smoke.yaml")  # --config, repeatable --set
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--limit", type=positive_int, default=None, help="evaluate on the first N test records")
    ap.add_argument("--out", default=None, type=results_stem,
                    help="results stem (default results/learning_study_<config stem>[+<overrides>])")
    args = ap.parse_args(argv)

    import torch

    from ..evaluate.provenance import git_commit, package_versions

    t0 = time.perf_counter()
    stem = study_stem(args.config, args.set)
    df = run_study(args.config, args.seeds, args.set, args.limit, group=f"medground_{stem}")
    out = Path(args.out) if args.out else results_dir() / f"learning_study_{stem}"
    df.to_csv(out.with_name(out.name + ".csv"), index=False)
    summary = {
        "command": "python -m medlib.study.learning " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": args.config, "overrides": args.set, "seeds": args.seeds,
        "resolved_config": load_config(repo_path(args.config), list(args.set)).to_dict(),
        "summary": summarise(df),
        "per_seed": df.round(3).to_dict("records"),
        "wall_seconds_total": round(time.perf_counter() - t0, 1),
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "note": "wall seconds were measured on a shared 2-core machine; runs reused from a cache report "
                "the seconds of the run that produced them",
    }
    out.with_name(out.name + ".json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps(summary["summary"], indent=1))
    redraw_figures(stem)
    return 0


def redraw_figures(stem: str) -> list[Path]:
    """The figures this study's results feed (its bars and its GRPO / SFT training curves), drawn
    again so that no committed figure shows an earlier run."""
    from ..report.figures import study_figure_name, write_figures

    written = write_figures(only=[study_figure_name(stem), f"91_training_medground_{stem}"])
    print("figures:", ", ".join(p.name for p in written))
    return written


if __name__ == "__main__":
    raise SystemExit(main())
