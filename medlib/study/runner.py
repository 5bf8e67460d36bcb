"""A paper's effects with power: arms from cached SFT starts, hyper-parameters chosen on val,
paired verdicts on test (one runner for the three papers).

A *study spec* (``configs/studies/<paper>.yaml``) names the run config, the seeds, the arms
(each a stage, ``sft`` or ``grpo``, and ``--set``-style overrides, trained from the seed's SFT
start by :func:`medlib.study.ablation.run_ablation`), the claims (arm vs control, metrics, the
paper's own delta) and the selection candidates. Two commands:

    python -m medlib.study select --spec configs/studies/medground_r1.yaml --arm grpo
    python -m medlib.study run --spec configs/studies/medground_r1.yaml

``select`` trains every candidate of an arm on the selection seeds and evaluates it on the
**validation** split only (``results/study/<paper>/selection_<arm>.csv``, kept); the chosen
overrides are then written into the arm's ``set`` in the spec, with the file they were read
from. ``run`` trains every arm for every seed (seeds in parallel processes, one thread each, so
the numbers do not depend on the machine's core count), evaluates each on the test split, and
writes ``results/study/<paper>/arms.csv`` (one row per arm and seed), ``passk.csv`` (pass@k of
the SFT start and the GRPO model), ``diagnostics.csv`` (per-arm means of the GRPO step
diagnostics) and the paper's rows of ``results/effects.csv`` (:mod:`medlib.study.effects`). Every
stage is cached by its config (a rerun reuses finished runs and evaluations and resumes
unfinished ones).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import repo_path, results_dir

START = "sft_start"


# ----------------------------------------------------------------------------- spec
def load_spec(path: str | Path) -> dict[str, Any]:
    """The study spec as a dict, checked for the keys the runner needs."""
    import yaml

    p = repo_path(path)
    if not p.is_file():
        raise SystemExit(f"{path}: study spec not found")
    spec = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    for key in ("paper", "config", "seeds", "arms"):
        if key not in spec:
            raise SystemExit(f"{path}: missing key {key!r}")
    for name, arm in spec["arms"].items():
        if arm.get("stage") not in ("sft", "grpo"):
            raise SystemExit(f"{path}: arm {name!r}: stage must be sft or grpo")
    for c in spec.get("claims", []):
        for k in ("arm", "control"):
            if c[k] != START and c[k] not in spec["arms"]:
                raise SystemExit(f"{path}: claim {c.get('claim')!r}: {k} {c[k]!r} is not an arm")
    spec["_path"] = str(path)
    return spec


def group_name(spec: dict[str, Any]) -> str:
    return f"{spec['paper']}_study"


def _variant(name: str, arm: dict[str, Any]):
    from .ablation import Variant

    return Variant(name, stage=arm["stage"], overrides=list(arm.get("set", [])))


def arm_seeds(spec: dict[str, Any], arm: dict[str, Any]) -> list[int]:
    return list(arm.get("seeds", spec["seeds"]))


# ----------------------------------------------------------------------------- one seed
def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def run_seed(spec_path: str, seed: int, arms: dict[str, dict[str, Any]], split: str, limit: int | None,
             threads: int, passk: dict[str, Any] | None, with_start: bool = True) -> dict[str, Any]:
    """Every arm of ``arms`` for one seed from that seed's SFT start, evaluated on ``split`` (and the
    start itself when ``with_start``); pass@k of the start and of the arms named in
    ``passk['arms']`` when asked."""
    _set_threads(threads)
    from ..train import load_config
    from .ablation import run_ablation, start_run

    spec = load_spec(spec_path)
    cfg = load_config(repo_path(spec["config"]), [f"seed={seed}", *spec.get("set", [])])
    t0 = time.perf_counter()
    start = start_run(cfg)
    variants = [_variant(n, a) for n, a in arms.items()]
    df = run_ablation(cfg, start["model_dir"], variants, group=group_name(spec), seeds=[seed], split=split,
                      limit=limit, include_start=START if with_start else None)
    df["sft_start_seconds"] = start["train_seconds"]
    out = {"rows": df.to_dict("records"), "seconds": round(time.perf_counter() - t0, 1), "passk": []}
    if passk and seed in passk.get("seeds", []):
        out["passk"] = passk_for_seed(spec, cfg, seed, start["model_dir"], passk, split, limit)
    return out


def model_dirs(spec: dict[str, Any], cfg, seed: int, start_model: str) -> dict[str, str]:
    """Model folder of the start and of each finished arm of ``seed``."""
    from .ablation import DONE, variant_config

    dirs = {START: start_model}
    for name, arm in spec["arms"].items():
        vc = variant_config(cfg, _variant(name, arm), start_model, group_name(spec), seed)
        done = vc.run_dir(arm["stage"]) / DONE
        if done.is_file():
            dirs[name] = json.loads(done.read_text())["model_dir"]
    return dirs


def passk_for_seed(spec, cfg, seed: int, start_model: str, passk: dict[str, Any], split: str,
                   limit: int | None) -> list[dict[str, Any]]:
    """pass@k rows (cached in the evaluation folder) of the start and the asked arms."""
    from ..evaluate import load_for_eval
    from ..evaluate.passk import evaluate_passk
    from ..train.common import use_image_backend
    from ..train.datasets import load_records

    dirs = model_dirs(spec, cfg, seed, start_model)
    records = load_records(cfg, split)[:limit]
    n, temp = int(passk.get("n", 16)), float(passk.get("temperature", cfg.grpo.temperature))
    rows = []
    for name in [START, *passk.get("arms", [])]:
        if name not in dirs:
            continue
        cache = repo_path(cfg.output_dir) / group_name(spec) / "_eval" / f"{name}_seed{seed}_passk{n}_{split}.json"
        key = {"model": dirs[name], "n": n, "temperature": temp, "split": split, "limit": limit}
        if cache.is_file() and json.loads(cache.read_text()).get("key") == key:
            res = json.loads(cache.read_text())["result"]
        else:
            model, processor = load_for_eval(dirs[name])
            processor = use_image_backend(processor, cfg.model.image_backend)
            res = evaluate_passk(model, processor, records, paper=cfg.paper, template=cfg.template, n=n,
                                 temperature=temp, max_new_tokens=cfg.grpo.max_completion_length, seed=seed)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps({"key": key, "result": res}, indent=1))
        rows.append({"arm": name, "seed": seed, "split": split, **res})
    return rows


def prepare(spec: dict[str, Any]) -> None:
    """Build what parallel workers would otherwise race to build: the data, each seed's SFT start
    is built by its own worker, but the semantic reward's embedded CLIP is trained here, once."""
    from ..train import load_config
    from ..train.datasets import load_records

    cfg = load_config(repo_path(spec["config"]), list(spec.get("set", [])))
    load_records(cfg, "train")
    rewards = set(cfg.grpo.rewards or {})
    for arm in spec["arms"].values():
        rewards |= {o.split("=", 1)[1] for o in arm.get("set", []) if o.startswith("grpo.rewards")}
    if any("semantic" in r for r in rewards) and cfg.grpo.reward_options.get("semantic_scorer"):
        from ..semantic import ensure_trained

        ensure_trained(cfg.grpo.reward_options["semantic_scorer"])


def _pool_map(jobs: int, tasks: list[tuple]) -> list[dict[str, Any]]:
    if jobs <= 1 or len(tasks) <= 1:
        return [run_seed(*t) for t in tasks]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as ex:
        return list(ex.map(run_seed, *zip(*tasks)))


# ----------------------------------------------------------------------------- diagnostics
DIAG_PREFIXES = ("diag/", "kl", "entropy", "completions/mean_length", "frac_reward_zero_std", "reward", "rewards/")


def diagnostics_summary(spec: dict[str, Any]) -> pd.DataFrame:
    """Per (arm, seed): mean over logged steps of each GRPO diagnostic in its training log, and its
    value over the first and last quarter of the run (does the signal dry up?)."""
    logs = results_dir("training", group_name(spec))
    rows = []
    for name, arm in spec["arms"].items():
        if arm["stage"] != "grpo":
            continue
        for s in arm_seeds(spec, arm):
            f = logs / f"{name}_seed{s}.csv"
            if not f.is_file():
                continue
            df = pd.read_csv(f)
            df = df[df["loss"].notna()] if "loss" in df else df
            cols = [c for c in df.columns if c.startswith(DIAG_PREFIXES)]
            q = max(1, len(df) // 4)
            row: dict[str, Any] = {"arm": name, "seed": s, "logged_steps": len(df)}
            for c in cols:
                v = pd.to_numeric(df[c], errors="coerce")
                row[c] = round(float(v.mean()), 4)
                row[c + "@first_quarter"] = round(float(v.iloc[:q].mean()), 4)
                row[c + "@last_quarter"] = round(float(v.iloc[-q:].mean()), 4)
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- commands
def run(spec_path: str, *, jobs: int | None = None, limit: int | None = None, only: Sequence[str] = (),
        seeds: Sequence[int] = (), n_boot: int = 2000, out_dir: Path | None = None) -> dict[str, Any]:
    """Train and evaluate every arm for every seed on the test split, then the effects (``only`` /
    ``seeds``: a part of the study, e.g. to spread it over machines; the effects then cover only
    what that part evaluated, so finish with a full run, which reuses every finished stage)."""
    from .ablation import mean_over_seeds
    from .effects import claim_rows, write_effects

    spec = load_spec(spec_path)
    split = spec.get("split", "test")
    arms = {n: a for n, a in spec["arms"].items() if not only or n in only}
    t0 = time.perf_counter()
    tasks = []
    for seed in [s for s in spec["seeds"] if not seeds or s in seeds]:
        seed_arms = {n: a for n, a in arms.items() if seed in arm_seeds(spec, a)}
        tasks.append((spec_path, seed, seed_arms, split, limit, int(spec.get("threads", 1)), spec.get("passk")))
    prepare(spec)
    results = _pool_map(int(jobs or spec.get("jobs", 1)), tasks)
    out = Path(out_dir) if out_dir else results_dir("study", spec["paper"])
    out.mkdir(parents=True, exist_ok=True)
    arms_df = pd.DataFrame([r for res in results for r in res["rows"]])
    arms_df.round(3).to_csv(out / "arms.csv", index=False)
    passk_rows = [r for res in results for r in res["passk"]]
    if passk_rows:
        pd.DataFrame(passk_rows).to_csv(out / "passk.csv", index=False)
    diag = diagnostics_summary(spec)
    if len(diag):
        diag.to_csv(out / "diagnostics.csv", index=False)
    command = "python -m medlib.study run --spec " + spec["_path"]
    from ..train import load_config

    cfg = load_config(repo_path(spec["config"]), list(spec.get("set", [])))
    eval_root = repo_path(cfg.output_dir) / group_name(spec) / "_eval"
    suffix = "" if split == "test" else f"_{split}"
    rows, evaluated = [], _evaluated(arms_df)
    for claim in spec.get("claims", []):
        seeds = [s for s in claim.get("seeds", spec["seeds"])
                 if (claim["arm"], s) in evaluated and (claim["control"], s) in evaluated]
        if not seeds:
            continue
        dirs = {(a, s): eval_root / f"{a}_seed{s}{suffix}" for a in (claim["arm"], claim["control"]) for s in seeds}
        rows += claim_rows({"paper": spec.get("paper_name", spec["paper"]), **claim}, dirs, seeds, n_boot=n_boot, command=command,
                           selected_on=spec.get("selected_on", "val"))
    if rows:
        write_effects(rows, spec.get("paper_name", spec["paper"]), None if out_dir is None else out)
    means = mean_over_seeds(arms_df, [m for m in ("mIoU", "Acc", "pDice", "DSC") if m in arms_df])
    summary = {"command": command, "spec": spec_path, "seeds": spec["seeds"], "split": split,
               "wall_seconds": round(time.perf_counter() - t0, 1),
               "seed_seconds": {str(t[1]): r["seconds"] for t, r in zip(tasks, results)},
               "threads_per_seed": int(spec.get("threads", 1)), "jobs": int(jobs or spec.get("jobs", 1)),
               "means": means.round(2).to_dict("records"), "effects": rows}
    (out / "study.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    if out_dir is None:  # the figures these files feed, redrawn by the command that wrote them
        from ..report.figures import write_figures

        write_figures(only=["91_effects", f"91_study_{spec['paper']}_passk", f"91_study_{spec['paper']}_grpo_signal"])
    return summary


def _evaluated(df: pd.DataFrame) -> set[tuple[str, int]]:
    return {(r.variant, int(r.seed)) for r in df.itertuples()}


def select(spec_path: str, arm_name: str, *, jobs: int | None = None, limit: int | None = None) -> pd.DataFrame:
    """Train every candidate of ``arm_name`` (spec ``selection.<arm>``: name -> overrides, each on
    top of the arm's own) on the selection seeds; evaluate on the validation split only."""
    spec = load_spec(spec_path)
    sel = spec.get("selection", {})
    split = sel.get("split", "val")
    if split == spec.get("split", "test"):
        raise SystemExit(f"{spec_path}: selection.split must differ from the test split ({split!r})")
    cands = sel.get(arm_name)
    if not cands:
        raise SystemExit(f"{spec_path}: no selection candidates for arm {arm_name!r} (selection.{arm_name})")
    base = spec["arms"][arm_name]
    arms = {f"sel-{arm_name}-{c}": {"stage": base["stage"], "set": [*base.get("set", []), *over]}
            for c, over in cands.items()}
    seeds = list(sel.get("seeds", [spec["seeds"][0]]))
    # the starts first (trained and evaluated once), then one task per (seed, candidate), so that
    # candidates train in parallel without two processes writing one file
    threads = int(spec.get("threads", 1))
    prepare(spec)
    starts = _pool_map(int(jobs or spec.get("jobs", 1)), [(spec_path, s, {}, split, limit, threads, None) for s in seeds])
    tasks = [(spec_path, s, {n: a}, split, limit, threads, None, False) for s in seeds for n, a in arms.items()]
    results = starts + _pool_map(int(jobs or spec.get("jobs", 1)), tasks)
    df = pd.DataFrame([r for res in results for r in res["rows"]])
    df["split"] = split
    df["candidate"] = df["variant"].str.replace(f"sel-{arm_name}-", "", regex=False)
    df["overrides"] = df["variant"].map(lambda v: " ".join(arms[v]["set"]) if v in arms else "")
    out = results_dir("study", spec["paper"])
    df.round(3).to_csv(out / f"selection_{arm_name}.csv", index=False)
    return df


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m medlib.study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train every arm, evaluate on test, write the effects")
    s = sub.add_parser("select", help="train an arm's candidates, evaluate on the validation split")
    s.add_argument("--arm", required=True)
    for p in (r, s):
        p.add_argument("--spec", required=True)
        p.add_argument("--jobs", type=int, default=None, help="seeds trained at once (default: the spec's)")
        p.add_argument("--limit", type=int, default=None, help="evaluate on the first N records")
    r.add_argument("--only", nargs="*", default=[], help="run only these arms")
    r.add_argument("--seeds", nargs="*", type=int, default=[], help="run only these seeds of the spec")
    args = ap.parse_args(argv)
    for name in ("jobs", "limit"):
        v = getattr(args, name)
        if v is not None and v < 1:
            ap.error(f"--{name} must be >= 1, got {v}")
    if args.cmd == "select":
        df = select(args.spec, args.arm, jobs=args.jobs, limit=args.limit)
        cols = [c for c in ("candidate", "seed", "split", "mIoU", "Acc", "pDice", "DSC", "train_seconds") if c in df]
        print(df[cols].to_string(index=False))
    else:
        summary = run(args.spec, jobs=args.jobs, limit=args.limit, only=args.only, seeds=args.seeds)
        print(json.dumps({"means": summary["means"], "wall_seconds": summary["wall_seconds"]}, indent=1))
        for e in summary["effects"]:
            if e["scope"] == "pooled":
                print(f"{e['claim']} [{e['metric']}]: {e['delta']:+.2f} [{e['ci_lo']:+.2f}, {e['ci_hi']:+.2f}] "
                      f"-> {e['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
