"""Ablations behind the training notebooks (10, 20, 30): one start model, several variants, each
trained and evaluated the same way.

A *variant* is a named set of config overrides for one stage (``grpo`` or ``sft``) that starts
from a given model folder (the SFT cold start, MedVol-R1 Sec. 2.4; the SFT checkpoint of
MedGround-R1 Table 4). :func:`run_ablation` trains each variant (or reuses a finished run with
the same :func:`stage_key`: ``<output_dir>/<group>/<variant>_seed<s>/<stage>/done.json`` holds it), evaluates it
on a held-out split with :mod:`medlib.evaluate` (reused likewise), copies the training log to
``results/training/<group>/`` and returns one row per variant and seed. Nothing is lost when a
notebook is interrupted: a rerun resumes each unfinished run from its last checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..evaluate.provenance import config_hash
from ..paths import portable_path, repo_path, results_dir
from ..train.config import RunConfig, config_from_dict
from ..train.run_folder import GRPO_KEY_EXEMPT_AT_DEFAULT, STAGES, stage_key  # noqa: F401 - part of this module's API
from ..train.run_folder import move_aside as _move_aside

DONE = "done.json"
STARTED = "experiment.json"
METRICS = ("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU", "DSC_local", "key_hit")


@dataclass
class Variant:
    """One arm of an ablation: ``overrides`` (``"grpo.num_generations=8"`` strings or a nested
    dict) applied to the base config for ``stage``."""

    name: str
    stage: str = "grpo"
    overrides: dict[str, Any] | list[str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in ("grpo", "sft"):
            raise ValueError(f"variant {self.name!r}: stage must be grpo or sft, got {self.stage!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.name):
            raise ValueError(f"variant name {self.name!r}: use letters, digits, '_', '.', '+', '-'")


def variant_config(base: RunConfig, variant: Variant, start_model: str | Path, group: str, seed: int) -> RunConfig:
    """The run config of ``variant``: only its stage enabled, starting from ``start_model``,
    named ``<variant>_seed<seed>`` under ``<output_dir>/<group>/``."""
    d = base.to_dict()
    other = "sft" if variant.stage == "grpo" else "grpo"
    d[other]["enabled"] = False
    d["vision"]["enabled"] = False  # the start model already holds any warm-up
    d[variant.stage]["enabled"] = True
    d[variant.stage]["init_from"] = str(start_model)
    d["name"] = f"{variant.name}_seed{seed}"
    d["output_dir"] = str(Path(base.output_dir) / group)
    d["seed"] = seed
    return config_from_dict(d, variant.overrides)  # the CLI's merge: a reward set is replaced whole


def train_variant(cfg: RunConfig, stage: str) -> dict[str, Any]:
    """Train ``stage`` of ``cfg`` unless a finished run with the same :func:`stage_key` exists; returns
    ``{"model_dir", "steps", "train_seconds", "reused"}``. An interrupted run of the same config
    resumes from its last checkpoint; a run folder left by a *different* config is moved aside
    to ``<stage>.old-<hash>`` (never resumed, never deleted)."""
    from ..train import run_grpo, run_sft, run_vision_warmup

    run_dir = cfg.run_dir(stage)
    done, started = run_dir / DONE, run_dir / STARTED
    h = stage_key(cfg, stage)
    if done.is_file():
        info = json.loads(done.read_text())
        if info.get("config_hash") == h and (Path(info["model_dir"]) / "config.json").is_file():
            return info | {"reused": True}
    if started.is_file():
        prev = json.loads(started.read_text()).get("config_hash")
        if prev != h:
            _move_aside(run_dir, f"{stage}.old-{str(prev)[:8]}")
    run_dir.mkdir(parents=True, exist_ok=True)
    started.write_text(json.dumps({"config_hash": h}))
    t0 = time.perf_counter()
    res = {"grpo": run_grpo, "sft": run_sft, "vision": run_vision_warmup}[stage](cfg)
    info = {"config_hash": h, "model_dir": str(res.model_dir), "steps": res.global_step,
            "train_seconds": round(time.perf_counter() - t0, 1), "metrics_csv": str(res.metrics_csv)}
    done.write_text(json.dumps(info, indent=1))
    return info | {"reused": False}


def start_run(cfg: RunConfig) -> dict[str, Any]:
    """The SFT checkpoint every arm of an ablation starts from: ``cfg``'s SFT stage, in a run
    folder of its own per seed (``<name>_seed<s>/sft``), after the vision warm-up when the config
    enables it (``<name>_seed<s>/vision``); see :func:`train_variant`. ``train_seconds`` counts both."""
    d = cfg.to_dict()
    d["name"] = f"{cfg.name}_seed{cfg.seed}"
    d["grpo"]["enabled"] = False
    start = config_from_dict(d)
    vision_seconds = 0.0
    if start.vision.enabled:
        vision_seconds = train_variant(start, "vision")["train_seconds"]
    info = train_variant(start, "sft")
    return info | {"vision_seconds": vision_seconds, "train_seconds": round(info["train_seconds"] + vision_seconds, 1)}


def evaluate_model(cfg: RunConfig, model_dir: str | Path, out_dir: Path, *, split: str = "test",
                   segmenter: Any = None, limit: int | None = None, batch_size: int = 16,
                   max_new_tokens: int | None = None, profile: str | None = None) -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``split`` of ``cfg``'s data (reusing ``out_dir/summary.json``
    when it was written for the same model, config and split)."""
    from ..evaluate import evaluate_2d, evaluate_3d, load_for_eval
    from ..train.common import use_image_backend
    from ..train.datasets import load_records

    out_dir = Path(out_dir)
    summary = out_dir / "summary.json"
    key = {"model": portable_path(model_dir), "config": config_hash(cfg.to_dict()), "split": split, "limit": limit}
    if summary.is_file():
        s = json.loads(summary.read_text())
        if s.get("medlib_experiment_key") == key:
            return s
    records = load_records(cfg, split)[:limit]
    model, processor = load_for_eval(str(model_dir))
    processor = use_image_backend(processor, cfg.model.image_backend)
    tokens = max_new_tokens or cfg.grpo.max_completion_length
    common = dict(out_dir=out_dir, seed=cfg.seed, config=cfg.to_dict(), profile=profile,
                  model_path=str(model_dir), split=split, batch_size=batch_size, max_new_tokens=tokens)
    if cfg.paper == "medvol":
        s = evaluate_3d(model, processor, records, segmenter=segmenter, n_slices=cfg.data.n_slices,
                        slice_size=cfg.data.slice_size, **common)
    else:
        s = evaluate_2d(model, processor, records, paper=cfg.paper, template=cfg.template, segmenter=segmenter,
                        repetition_penalty=cfg.evaluation.repetition_penalty,
                        metric_variant=cfg.evaluation.metric_variant, **common)
    s["medlib_experiment_key"] = key
    summary.write_text(json.dumps(s, indent=1, default=str))
    return s


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    """Flat metrics of an evaluation summary: ``<metric>`` (mean, %), ``<metric>_lo/_hi``, refusals, n."""
    row: dict[str, Any] = {"n": summary.get("n"), "refusals": summary.get("refusals")}
    for k in METRICS:
        m = summary.get("metrics", {}).get(k)
        if m is not None:
            row[k], row[f"{k}_lo"], row[f"{k}_hi"] = m["mean"], m["ci_low"], m["ci_high"]
    return row


def run_ablation(base: RunConfig, start_model: str | Path, variants: Sequence[Variant], *, group: str,
                 seeds: Sequence[int] = (0,), split: str = "test", segmenter: Any = None,
                 limit: int | None = None, profile: str | None = None,
                 include_start: str | None = "start") -> pd.DataFrame:
    """Train and evaluate every variant for every seed; one row per (variant, seed) with the
    metrics (in %), steps and seconds. ``include_start`` names a row for ``start_model`` itself
    (evaluated once per seed), e.g. the SFT-only checkpoint. Evaluations go to
    ``<output_dir>/<group>/_eval/<variant>_seed<s>[_<split>]/`` (the suffix for splits other than
    test). Training logs are copied to
    ``results/training/<group>/<variant>_seed<s>.csv``."""
    logs = results_dir("training", *group.split("/"))
    eval_root = repo_path(base.output_dir) / group / "_eval"
    suffix = "" if split == "test" else f"_{split}"  # a validation evaluation never replaces the test one
    rows = []
    for seed in seeds:
        if include_start:
            cfg = config_from_dict(base.to_dict(), {"seed": seed})
            s = evaluate_model(cfg, start_model, eval_root / f"{include_start}_seed{seed}{suffix}", split=split,
                               segmenter=segmenter, limit=limit, profile=profile)
            rows.append({"variant": include_start, "seed": seed, "stage": "start", "steps": 0,
                         "train_seconds": 0.0, **summary_row(s)})
        for v in variants:
            cfg = variant_config(base, v, start_model, group, seed)
            info = train_variant(cfg, v.stage)
            s = evaluate_model(cfg, info["model_dir"], eval_root / f"{v.name}_seed{seed}{suffix}", split=split,
                               segmenter=segmenter, limit=limit, profile=profile)
            src = Path(info.get("metrics_csv") or cfg.run_dir(v.stage) / "metrics.csv")
            if src.is_file():
                shutil.copyfile(src, logs / f"{v.name}_seed{seed}.csv")
            rows.append({"variant": v.name, "seed": seed, "stage": v.stage, "steps": info["steps"],
                         "train_seconds": info["train_seconds"], **summary_row(s)})
    return pd.DataFrame(rows)


def mean_over_seeds(df: pd.DataFrame, metrics: Sequence[str] = ("mIoU", "Acc")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each variant (rows in first-seen order)."""
    present = [m for m in metrics if m in df.columns]
    g = df.groupby("variant", sort=False)[present]
    out = g.mean().add_suffix("_mean").join(g.std(ddof=1).add_suffix("_sd")).join(g.size().rename("seeds"))
    return out.reset_index()


def medvol_arms(cfg: RunConfig) -> dict[str, Variant]:
    """The arms of MedVol-R1 Tables 2a and 2b for ``cfg``: the full reward set, each reward
    removed, RL from the base model (no SFT), and Delta 2 / 5 (the LiteMedSAM segmenter's
    propagation is capped at Delta, which leaves R_c unchanged)."""
    rewards = dict(cfg.grpo.rewards or {"format": 1.0, "axial": 1.0, "spatial": 1.0, "cross_slice": 1.0})
    opts = dict(cfg.grpo.reward_options)

    def without(r: str) -> dict[str, Any]:
        return {"grpo": {"rewards": {k: v for k, v in rewards.items() if k != r}}}

    def with_delta(d: int) -> dict[str, Any]:
        seg = opts.get("segmenter")
        if isinstance(seg, dict) and "max_propagation_distance" in seg:
            seg = {**seg, "max_propagation_distance": d}
        return {"grpo": {"reward_options": {**opts, "delta": d, "segmenter": seg}}}

    return {
        "full": Variant("full"),
        "no_Rf": Variant("no_Rf", overrides=without("format")),
        "no_Ra": Variant("no_Ra", overrides=without("axial")),
        "no_Rs": Variant("no_Rs", overrides=without("spatial")),
        "no_Rc": Variant("no_Rc", overrides=without("cross_slice")),
        "rl_only": Variant("rl_only", overrides={"grpo": {"init_from": "base"}}),
        "delta2": Variant("delta2", overrides=with_delta(2)),
        "delta5": Variant("delta5", overrides=with_delta(5)),
    }


#: arms the CPU profiles run (each R_c reward propagates masks, so every arm is costly)
MEDVOL_CPU_ARMS = ("full", "no_Rc", "rl_only")


def medvol_segmenter() -> Any:
    """LiteMedSAM with an embedding cache large enough to hold every test slice once for all arms."""
    from ..segment import build_segmenter

    return build_segmenter({"name": "litemedsam", "cache_size": 512, "cache_bytes": 2**31})
