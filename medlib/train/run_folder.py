"""Which config made a run folder, and what to do when a rerun brings another one.

A stage's run folder (``<output_dir>/<name>/<stage>/``) holds the ``config.yaml`` it was started
with. :func:`stage_key` hashes the part of a config a stage depends on (the notebooks' ablations
reuse a finished run with the same key and move a run of another key aside); :func:`config_change`
lists what differs between the folder's config and a new one, so the command line can refuse to
resume silently, or start fresh after :func:`move_aside` (the old folder is renamed, never deleted).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .config import RunConfig

DONE = "done.json"
STAGES = ("vision", "sft", "grpo")
#: top-level keys that change how a run reports, not what it computes
COSMETIC = ("progress", "resume", "report_to")


GRPO_KEY_EXEMPT_AT_DEFAULT = {"rollout_batch_prompts": None, "update_batch_prompts": None,
                              "vllm_importance_sampling_correction": False, "fast_generation": False}
"""GRPO settings that, at these values, train exactly as runs made before the settings existed
(one rollout per optimizer step; no vLLM reweighting; TRL's own ``generate``): left out of the
key then, so that a run cached before they were added is reused, not retrained."""
DATA_KEY_EXEMPT_AT_DEFAULT = {"allow_outside_root": False}
"""Data settings that, at these values, read the same records as before they existed."""


def stage_dict(d: dict[str, Any], stage: str) -> dict[str, Any]:
    """The config ``d`` without what cannot change what ``stage`` trains: the sections of stages
    that ``stage`` does not start from, the evaluation settings, and the GRPO settings of
    :data:`GRPO_KEY_EXEMPT_AT_DEFAULT` at their defaults."""
    d = copy.deepcopy(d)
    d.pop("evaluation", None)
    for section, exempt in (("grpo", GRPO_KEY_EXEMPT_AT_DEFAULT), ("data", DATA_KEY_EXEMPT_AT_DEFAULT)):
        for k, default in exempt.items():
            if d.get(section, {}).get(k, default) == default:
                d.get(section, {}).pop(k, None)
    chain = [stage]
    while d[chain[-1]]["init_from"] in ("vision", "sft"):
        chain.append(d[chain[-1]]["init_from"])
    for other in STAGES:
        if other not in chain:
            d.pop(other)
    d["_chain"] = chain
    return d


def stage_key(cfg: RunConfig, stage: str) -> str:
    """The hash that decides whether ``stage``'s finished run can be reused: :func:`stage_dict` of
    the config (a GRPO learning-rate sweep must not retrain the SFT start it begins with), plus,
    when the stage chain begins from a model folder that ``medlib.study.ablation.train_variant``
    wrote, that run's own key (a GRPO arm is retrained when its SFT start was)."""
    from ..evaluate.provenance import config_hash
    from ..paths import repo_path

    d = stage_dict(cfg.to_dict(), stage)
    chain = d.pop("_chain")
    init = d[chain[-1]]["init_from"]
    if init != "base":
        done = repo_path(init).parent / DONE
        d["init_run"] = json.loads(done.read_text()).get("config_hash") if done.is_file() else None
    return config_hash(d)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flat(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def config_change(old: dict[str, Any], new: dict[str, Any], stage: str) -> list[str]:
    """``key: old -> new`` for each value ``stage`` depends on that differs between two configs (a
    key the old config does not have, added to medlib since, is taken to hold the new value)."""
    try:
        a = _flat({k: v for k, v in stage_dict(old, stage).items() if k not in COSMETIC})
    except (KeyError, TypeError, AttributeError):
        return ["config.yaml: unreadable or not a medlib run config"]
    b = _flat({k: v for k, v in stage_dict(new, stage).items() if k not in COSMETIC})
    return [f"{k}: {a[k]!r} -> {b.get(k, '<unset>')!r}" for k in sorted(a) if a[k] != b.get(k, "<unset>")]


def recorded_config(run_dir: Path) -> dict[str, Any] | None:
    """The config a run folder was started with (its ``config.yaml``), or None when it has none."""
    import yaml

    p = run_dir / "config.yaml"
    if not p.is_file():
        return None
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}
    return d if isinstance(d, dict) else {}


def has_work(run_dir: Path) -> bool:
    """Whether a run folder holds anything a rerun would resume from or overwrite."""
    if not run_dir.is_dir():
        return False
    return any((run_dir / n).exists() for n in ("final", "adapter", "metrics.csv")) or any(run_dir.glob("checkpoint-*"))


def move_aside(run_dir: Path, name: str) -> Path:
    """Rename ``run_dir`` to ``name`` beside it, or ``name-2``, ``name-3``... when a run of the same
    key was moved aside before (switching back and forth between two configs)."""
    target, n = run_dir.with_name(name), 1
    while target.exists():
        n += 1
        target = run_dir.with_name(f"{name}-{n}")
    run_dir.rename(target)
    return target
