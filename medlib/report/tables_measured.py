"""Rows of ours read from committed measurements rather than written by a notebook's table cell.

* MedReasoner Table 4 (segmenter x prompt type) from the segmenter measurement
  ``results/segment.json`` (``python -m medlib.segment.measure``, notebook 05): the mask Dice of
  each prompt type on the embedded U-MRG-style test images. The prompts there are the ground-truth
  box and key points, not a model's answer (the paper prompts with MedReasoner-7B's), and the row
  says so.
* MedReasoner Tables 3 (the SFT-continued control) and 5 (prompt types) from notebook 20's
  reward-design study ``results/medreasoner_modes_<profile>.csv``.
* MedGround-R1 Table 4 (SFT vs GRPO at equal steps) from the learning studies
  ``results/learning_study_<stem>.json`` (``python -m medlib.study.learning``): each arm's mIoU and
  Acc averaged over the study's seeds.

:func:`measured_ours` returns them in :data:`medlib.report.tables.OURS_COLUMNS`, for
:func:`medlib.report.tables.build_tables`. Nothing here is recomputed beyond means and bootstrap
intervals of the per-case values the files hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import summarize
from ..paths import results_dir

SEGMENT_PROMPTS = {"points": "w/ Points", "box": "w/ BBox", "box+points": "BBox & Points"}
"""Prompt types of the measurement -> MedReasoner Table 4's columns as printed."""
SEGMENTER_BESIDE = {"litemedsam": "MedSAM", "medsam2": "MedSAM2"}
"""Our segmenter -> the printed row it compares with (LiteMedSAM is a distilled MedSAM)."""
SEGMENTER_NAMES = {"litemedsam": "LiteMedSAM", "medsam2": "MedSAM2"}
MODEL_NAMES = {"tiny": "tiny Qwen2.5-VL"}


class MeasuredDataError(ValueError):
    """A committed measurement lacks a field its table needs; the message names file and field."""


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MeasuredDataError(f"{path}: not JSON ({e.msg} at line {e.lineno}); rerun the command that wrote it") from None


def _need(d: dict, key: str, path: Path) -> Any:
    if key not in d:
        raise MeasuredDataError(f"{path}: no field {key!r}; rerun the command that wrote it")
    return d[key]


def _producer(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)


def segmenter_rows(path: Path | None = None) -> list[dict[str, Any]]:
    """MedReasoner Table 4 rows of ours from the segmenter measurement (empty when absent)."""
    path = Path(path) if path else results_dir() / "segment.json"
    if not path.is_file():
        return []
    s = _load(path)
    two = _need(s, "2d", path)
    rows = _need(two, "rows", path)
    seg = _need(s, "segmenter", path)
    name = str(seg.get("name", "?"))
    model = SEGMENTER_NAMES.get(name, name)
    beside = SEGMENTER_BESIDE.get(name, "")
    profile = str(s.get("profile", ""))
    out = []
    for prompt, printed in SEGMENT_PROMPTS.items():
        dice = [float(r["dice"]) for r in rows if r.get("prompt") == prompt]
        if not dice:
            continue
        m = summarize(np.asarray(dice) * 100, n_boot=1000, seed=0)
        out.append(dict(
            method=f"{model}, ground-truth prompts", setting=printed, metric="Dice", value=m["mean"],
            ci_low=m["ci_low"], ci_high=m["ci_high"], n=m["n"], stands_for="U-MRG-14K", subset="all",
            dataset=f"embedded U-MRG-style {two.get('split', 'test')} images",
            beside_method=beside, beside_setting=printed if beside else "", profile=profile,
            scale=(f"{model} ({seg.get('device', '?')}) prompted with the ground-truth "
                   f"{'box and key points' if prompt == 'box+points' else prompt}; the paper prompts with "
                   f"MedReasoner-7B's answers"),
            produced_by="segment_measure"))
    return out


def _study_label(cfg: dict) -> tuple[str, str]:
    model = cfg.get("model", {}).get("name_or_path", "?")
    data = cfg.get("data", {})
    return MODEL_NAMES.get(model, model), f"embedded {data.get('source', '?')} {data.get('image_size', '?')} px"


def learning_study_rows(folder: Path | None = None) -> list[dict[str, Any]]:
    """MedGround-R1 Table 4 rows of ours: each learning study's arms (SFT start, SFT continued
    for the GRPO steps, GRPO), mIoU and Acc averaged over its seeds."""
    folder = Path(folder) if folder else results_dir()
    out = []
    for path in sorted(folder.glob("learning_study_*.json")):
        s = _load(path)
        per_seed = _need(s, "per_seed", path)
        cfg = _need(s, "resolved_config", path)
        model, dataset = _study_label(cfg)
        seeds = sorted({int(r["seed"]) for r in per_seed})
        stem = path.stem[len("learning_study_"):]
        sets = s.get("overrides") or []
        g = cfg.get("grpo", {})
        which = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, seeds))}"
        scale = (f"{which}; GRPO G {g.get('num_generations')}, lr "
                 f"{g.get('learning_rate')}, beta {g.get('beta')}" + (f"; --set {' '.join(sets)}" if sets else "")
                 + f"; {s.get('command', '')}")
        arms: dict[str, list[dict]] = {}
        for r in per_seed:
            arms.setdefault(r["variant"], []).append(r)
        for arm, rs in arms.items():
            start = int(rs[0].get("sft_start_steps", 0))
            steps = int(rs[0].get("steps", 0))
            setting = {"sft_start": f"SFT-{start}", "sft_more": f"SFT-{start + steps}",
                       "grpo": f"SFT-{start} + GRPO-{steps}"}.get(arm, arm)
            for metric in ("mIoU", "Acc"):
                vals = [float(r[metric]) for r in rs if metric in r]
                if not vals:
                    continue
                out.append(dict(
                    method=model, setting=setting, metric=metric, value=float(np.mean(vals)), ci_low="", ci_high="",
                    n=int(sum(int(r.get("n", 0)) for r in rs)), stands_for="MS-CXR", subset="all", dataset=dataset,
                    beside_method="", beside_setting="", profile=stem, scale=scale,
                    produced_by=_producer(f"learning_study_{stem}")))
    return out


MODES_ARMS = {"soft": "w/ RL(Soft)", "hard": "w/ RL(Hard)", "base": "w/ RL(Base)", "sft_start": "w/ SFT",
              "sft_more": "w/ SFT continued"}


def medreasoner_modes_rows(table: str, folder: Path | None = None) -> list[dict[str, Any]]:
    """Rows of notebook 20's reward-design study (``results/medreasoner_modes_<profile>.csv``, seed
    0) that its own table cell does not write: Table 3's SFT-continued control (the paper prints
    none) and Table 5's prompt comparison, where our soft-reward arm sits beside MedReasoner-7B
    with the same prompt. CPU profiles use the direct prompt, ``full`` the reasoning prompt, as
    notebook 20 does; IoU and pDice there are the ``paper`` variant (MedRPG IoU, Eq. 5)."""
    folder = Path(folder) if folder else results_dir()
    out = []
    for path in sorted(folder.glob("medreasoner_modes_*.csv")):
        profile = path.stem[len("medreasoner_modes_"):]
        df = pd.read_csv(path)
        missing = [c for c in ("variant", "seed", "n", "refusals", "mIoU", "pDice") if c not in df.columns]
        if missing:
            raise MeasuredDataError(f"{path}: no column(s) {missing}; rerun notebook 20_medreasoner_train")
        full = profile == "full"  # the configs: Lingshu-7B on U-MRG-14K; the CPU profiles: tiny, embedded
        prompt = "reasoning prompt" if full else "direct prompt"
        model = "Lingshu-7B" if full else MODEL_NAMES["tiny"]
        data = "U-MRG-14K (our copy, test split)" if full else "embedded umrg_synth 112 px"
        first = df[df["seed"] == df["seed"].min()].set_index("variant")
        if table == "3":
            wanted = [("sft_more", "", "")]
        else:
            wanted = [("soft", "MedReasoner-7B", prompt), ("sft_start", "", "")]
        for arm, bm, bs in wanted:
            if arm not in first.index:
                continue
            r = first.loc[arm]
            steps = f", {int(r['steps'])} steps" if "steps" in r and arm == "sft_more" else ""
            base = dict(method=f"{model} {MODES_ARMS.get(arm, arm)}{steps}", setting=prompt,
                        stands_for="U-MRG-14K", subset="all", dataset=data, beside_method=bm,
                        beside_setting=bs, profile=profile, n=int(r["n"]),
                        scale=f"notebook 20's reward-design study, seed {int(df['seed'].min())}",
                        note="IoU, pDice: the paper variant (MedRPG IoU, Eq. 5)", produced_by=_producer(path.stem))
            for ours, metric in (("mIoU", "IoU"), ("pDice", "pDice")):
                lo, hi = r.get(f"{ours}_lo"), r.get(f"{ours}_hi")
                out.append(base | dict(metric=metric, value=float(r[ours]),
                                       ci_low="" if lo is None or pd.isna(lo) else float(lo),
                                       ci_high="" if hi is None or pd.isna(hi) else float(hi)))
            out.append(base | dict(metric="refusals", value=float(r["refusals"]), ci_low="", ci_high=""))
    return out


def measured_rows(paper: str, table: str) -> list[dict[str, Any]]:
    """Our rows of ``paper`` Table ``table`` from committed measurements, unchecked
    (:func:`medlib.report.tables.measured_ours` checks them like the rows of ``results/ours/``)."""
    if (paper, str(table)) == ("medreasoner", "4"):
        return segmenter_rows()
    if (paper, str(table)) == ("medground-r1", "4"):
        return learning_study_rows()
    if paper == "medreasoner" and str(table) in ("3", "5"):
        return medreasoner_modes_rows(str(table))
    return []
