"""``python -m medlib.semantic_train [--profile smoke] [--seed 0]``: (re)train the embedded small
CLIP of a profile and write its held-out numbers (phrase retrieval top-1 / top-5 against chance,
GT box vs other boxes, the same architecture untrained) to ``results/semantic_clip.json``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..provenance import provenance, write_json
from .evaluation import evaluate_small_clip, headline
from .training import (
    BENCH_ROOT,
    EMBEDDED_RECIPES,
    embedded_chest_root,
    embedded_model_dir,
    recipe_for,
    train_embedded_clip,
)


def _shown(path: str | Path) -> str:
    """A path relative to the repository when it lies inside it (no machine paths in results)."""
    from ..paths import REPO

    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m medlib.semantic_train", description=__doc__.split("\n\n")[0].strip('`'))
    ap.add_argument("--profile", default="smoke", choices=sorted(EMBEDDED_RECIPES),
                    help="benchmark profile: its chest benchmark and its training recipe")
    ap.add_argument("--seed", type=int, default=0, help="benchmark seed and training seed")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    ap.add_argument("--out", default=None, help="model folder (default build/semantic/<profile>_seed<seed>)")
    ap.add_argument("--bench-root", default=BENCH_ROOT, help="where the embedded benchmark lives")
    ap.add_argument("--results", default="results/semantic_clip.json")
    a = ap.parse_args(argv)
    from ..paths import repo_path

    t0 = time.time()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = a.out
    if out is None:
        out = embedded_model_dir(a.profile, a.seed)
        if a.steps is not None and a.steps != recipe_for(a.profile).steps:  # keep the cache canonical
            out = out.with_name(f"{out.name}_steps{a.steps}")
    scorer = train_embedded_clip(a.profile, a.seed, out_dir=repo_path(out), bench_root=a.bench_root,
                                 steps=a.steps)
    chest = embedded_chest_root(a.profile, a.seed, a.bench_root)
    report: dict[str, Any] = {
        "command": "python -m medlib.semantic_train " + " ".join(sys.argv[1:] if argv is None else argv),
        "provenance": provenance(seed=a.seed, profile=a.profile, load_average_1min_at_start=load),
        "benchmark": {"root": _shown(chest), "train_parts": list(recipe_for(a.profile).parts),
                      "eval_split": "test"},
        "model_dir": _shown(repo_path(out)),
        "model": scorer.info,
    }
    report |= evaluate_small_clip(scorer, chest, a.seed, parts=recipe_for(a.profile).parts)
    report = {"summary": headline(report), **report, "seconds_total": round(time.time() - t0, 1)}
    path = write_json(repo_path(a.results), report)
    h = report["summary"]
    print(f"phrase top-1 {h['phrase_top1']:.3f} / top-5 {h['phrase_top5']:.3f} "
          f"(chance {h['chance_top1']:.4f} / {h['chance_top5']:.4f}; n={h['n']}), "
          f"same class+side {h['phrase_top1_same_class_side']:.3f} (chance {h['chance_same_class_side']:.3f}); "
          f"GT > random box {h['gt_higher_than_random_box']:.3f}, gap {h['gt_minus_random_box_similarity']:.3f}; "
          f"trained {h['train_seconds']} s; wrote {path}")
    return report


if __name__ == "__main__":
    main()
