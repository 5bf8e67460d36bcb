"""Paired effect sizes and the verdict of each claim, computed from per-item evaluations.

A claim compares an *arm* with a *control* trained from the same start, seed by seed, on the
same test items (e.g. MedGround-R1 Table 4: GRPO vs SFT continued for as many steps). For each
seed the delta is the mean over items of ``arm - control`` (per-item IoU, hit, ...), with a
paired bootstrap 95% interval (items resampled, both arms together). The pooled delta is the
mean of the per-seed deltas; its interval resamples seeds *and* items (a two-level bootstrap:
draw seeds with replacement, then items with replacement within each drawn seed), so it covers
both the training noise between seeds and the test-set noise.

The verdict is read off the pooled interval: ``shown`` when it excludes 0 in the direction the
paper claims, ``reversed`` when it excludes 0 the other way, else ``not shown``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: per-item value of each metric in an evaluation's ``predictions.jsonl`` (in %, as the tables)
ITEM_METRICS = {"Acc": ("hit", 100.0), "mIoU": ("iou", 100.0), "pDice": ("pdice", 100.0),
                "Dice": ("mask_dice", 100.0), "IoU": ("iou", 100.0)}
VERDICTS = ("shown", "not shown", "reversed")


def item_values(eval_dir: str | Path, metric: str) -> dict[str, float]:
    """``{sample_id: value}`` of ``metric`` from ``eval_dir/predictions.jsonl`` (values in %)."""
    key, scale = ITEM_METRICS[metric]
    path = Path(eval_dir) / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-item predictions; evaluate the run first")
    out: dict[str, float] = {}
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            rec = json.loads(line)
            if key not in rec:
                raise KeyError(f"{path}, line {n}: no {key!r} field for metric {metric}")
            out[str(rec["sample_id"])] = float(rec[key]) * scale
    return out


def paired_arrays(arm: dict[str, float], control: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The two arms' values on the same items, in the control's order; the item sets must agree."""
    if set(arm) != set(control):
        only = sorted(set(arm) ^ set(control))[:3]
        raise ValueError(f"arm and control were evaluated on different items (e.g. {only}); "
                         "evaluate both on the same split and limit")
    ids = list(control)
    return np.array([arm[i] for i in ids]), np.array([control[i] for i in ids])


def paired_bootstrap(arm: np.ndarray, control: np.ndarray, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``arm - control`` and its percentile 95% interval, items resampled in pairs."""
    d = np.asarray(arm, float) - np.asarray(control, float)
    if d.size == 0:
        raise ValueError("paired_bootstrap: no items")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boots = d[idx].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def pooled_bootstrap(pairs: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of the per-seed paired deltas, and a 95% interval that resamples seeds and,
    within each drawn seed, items (two-level bootstrap)."""
    diffs = [np.asarray(a, float) - np.asarray(c, float) for a, c in pairs]
    if not diffs or any(d.size == 0 for d in diffs):
        raise ValueError("pooled_bootstrap: every seed needs items")
    rng = np.random.default_rng(seed)
    k = len(diffs)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, k, size=k)
        boots[b] = np.mean([diffs[s][rng.integers(0, diffs[s].size, size=diffs[s].size)].mean() for s in seeds])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(np.mean([d.mean() for d in diffs])), float(lo), float(hi)


def verdict(lo: float, hi: float, direction: int = 1) -> str:
    """``shown`` / ``reversed`` / ``not shown`` for an interval and the paper's direction (+1: the
    arm is claimed above the control, -1: below)."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    lo, hi = (lo, hi) if direction == 1 else (-hi, -lo)
    if lo > 0:
        return "shown"
    if hi < 0:
        return "reversed"
    return "not shown"


def claim_rows(claim: dict[str, Any], eval_dirs: dict[tuple[str, int], Path], seeds: Sequence[int], *,
               n_boot: int = 2000, command: str = "", selected_on: str = "val") -> list[dict[str, Any]]:
    """One pooled row per metric of ``claim`` (keys: paper, table, claim, arm, control, metrics,
    direction, paper_delta {metric: value}, paper_rows) plus one row per seed; ``eval_dirs`` maps
    (arm, seed) to the evaluation folder holding ``predictions.jsonl``."""
    rows = []
    direction = int(claim.get("direction", 1))
    for metric in claim["metrics"]:
        pairs, per_seed = [], []
        for s in seeds:
            a = item_values(eval_dirs[(claim["arm"], s)], metric)
            c = item_values(eval_dirs[(claim["control"], s)], metric)
            pair = paired_arrays(a, c)
            pairs.append(pair)
            d, lo, hi = paired_bootstrap(*pair, n_boot=n_boot, seed=s)
            per_seed.append((s, d, lo, hi, len(pair[0])))
        d, lo, hi = pooled_bootstrap(pairs, n_boot=n_boot, seed=0)
        base = {"paper": claim["paper"], "table": str(claim["table"]), "claim": claim["claim"], "metric": metric,
                "arm": claim["arm"], "control": claim["control"],
                "paper_delta": (claim.get("paper_delta") or {}).get(metric),
                "paper_rows": claim.get("paper_rows", ""), "selected_on": selected_on, "command": command}
        n_test = sorted({n for *_, n in per_seed})
        rows.append(base | {"seeds": " ".join(map(str, seeds)), "n_test": n_test[0] if len(n_test) == 1 else str(n_test),
                            "delta": round(d, 2), "ci_lo": round(lo, 2), "ci_hi": round(hi, 2),
                            "verdict": verdict(lo, hi, direction), "scope": "pooled"})
        for s, d1, lo1, hi1, n in per_seed:
            rows.append(base | {"seeds": str(s), "n_test": n, "delta": round(d1, 2), "ci_lo": round(lo1, 2),
                                "ci_hi": round(hi1, 2), "verdict": verdict(lo1, hi1, direction), "scope": "seed"})
    return rows


EFFECT_COLUMNS = ["paper", "table", "claim", "metric", "arm", "control", "scope", "seeds", "n_test", "delta",
                  "ci_lo", "ci_hi", "paper_delta", "paper_rows", "selected_on", "verdict", "command"]


def write_effects(rows: list[dict[str, Any]], paper: str, out_dir: str | Path | None = None) -> Path:
    """Replace ``paper``'s rows of ``results/effects.csv`` (and ``.json``) by ``rows``; other papers'
    rows stay. Returns the CSV path."""
    import pandas as pd

    from ..paths import results_dir

    out = Path(out_dir) if out_dir is not None else results_dir()
    csv = out / "effects.csv"
    old = pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=EFFECT_COLUMNS)
    old = old[old["paper"] != paper]
    new = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    df = pd.concat([d for d in (old, new) if len(d)], ignore_index=True)
    df.to_csv(csv, index=False)
    (out / "effects.json").write_text(json.dumps(df.to_dict("records"), indent=1, default=str) + "\n")
    return csv


def load_effects(paper: str | None = None, scope: str | None = "pooled"):
    """``results/effects.csv`` as a table (one paper's rows, pooled rows by default), or None."""
    import pandas as pd

    from ..paths import results_dir

    csv = results_dir() / "effects.csv"
    if not csv.is_file():
        return None
    df = pd.read_csv(csv)
    if paper is not None:
        df = df[df["paper"] == paper]
    if scope is not None:
        df = df[df["scope"] == scope]
    return df.reset_index(drop=True)


def describe(df) -> str:
    """One sentence per pooled row: what was claimed, what we measured, the verdict."""
    lines = []
    for r in df.itertuples():
        paper_d = "" if r.paper_delta != r.paper_delta or r.paper_delta is None else f" (paper: {r.paper_delta:+.2f})"
        lines.append(f"{r.claim} [{r.metric}]: {r.delta:+.2f} points, 95% interval [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}] "
                     f"over seeds {r.seeds} and {r.n_test} test items{paper_d} -> {r.verdict}.")
    return "\n".join(lines)


def effects_markdown(df) -> str:
    """The pooled effects as a Markdown table (our delta with its interval beside the paper's)."""
    head = "| paper | table | claim | metric | ours (delta, 95% CI) | paper's delta | seeds | n test | verdict |\n"
    head += "|---|---|---|---|---|---|---|---|---|\n"
    body = ""
    for r in df.itertuples():
        paper_d = "" if r.paper_delta != r.paper_delta or r.paper_delta is None else f"{r.paper_delta:+.2f}"
        body += (f"| {r.paper} | {r.table} | {r.claim} | {r.metric} | {r.delta:+.2f} [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}] "
                 f"| {paper_d} | {r.seeds} | {r.n_test} | {r.verdict} |\n")
    return head + body


def plot_effects(df):
    """Effect-size figure: one row per pooled claim and metric, our delta with its 95% interval
    (points, in percentage points) and the paper's delta (open diamond) where it printed one."""
    from ..report.viz import _plt

    plt = _plt()

    labels = [f"{r.paper} T{r.table}: {r.claim} [{r.metric}]" for r in df.itertuples()]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(df) + 1.2))
    y = list(range(len(df)))[::-1]
    colors = {"shown": "tab:green", "not shown": "tab:gray", "reversed": "tab:red"}
    for yi, r in zip(y, df.itertuples()):
        c = colors.get(r.verdict, "k")
        ax.plot([r.ci_lo, r.ci_hi], [yi, yi], color=c, lw=2)
        ax.plot(r.delta, yi, "o", color=c, label=f"ours: {r.verdict}")
        if r.paper_delta == r.paper_delta and r.paper_delta is not None:
            ax.plot(r.paper_delta, yi, "D", mfc="none", color="k", label="paper's delta")
    ax.axvline(0, color="k", lw=0.8, ls=":")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("arm minus control (percentage points)")
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=len(uniq), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig
