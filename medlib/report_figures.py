"""Figures rebuilt from ``results/`` only (notebook ``91_figures``): training curves, ablation
bars, our numbers beside the papers'. Each function reads files the other notebooks wrote and
returns a matplotlib figure, or None when those files do not exist yet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .paths import results_dir

#: the curves worth plotting for each kind of run, in order of preference
CURVE_COLUMNS = ("reward", "kl", "completions/mean_length", "loss")


def training_logs(group: str) -> dict[str, pd.DataFrame]:
    """``results/training/<group>/<arm>_seed<s>.csv`` as DataFrames keyed by file stem."""
    d = results_dir("training") / group
    return {p.stem: pd.read_csv(p) for p in sorted(d.glob("*.csv"))} if d.is_dir() else {}


def training_groups() -> list[str]:
    """Every group with training logs (e.g. ``medground_smoke``)."""
    d = results_dir("training")
    return sorted(p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*.csv")))


def plot_training_curves(group: str, columns=CURVE_COLUMNS):
    """One panel per logged quantity, one line per arm (GRPO arms log rewards and KL, SFT arms
    loss)."""
    import matplotlib.pyplot as plt

    logs = training_logs(group)
    if not logs:
        return None
    cols = [c for c in columns if any(c in df and df[c].notna().any() for df in logs.values())]
    reward_cols = sorted({c for df in logs.values() for c in df.columns if c.startswith("rewards/") and c.endswith("/mean")})
    cols = cols + reward_cols[:3]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.6 * len(cols), 3.2), squeeze=False)
    for ax, col in zip(axes[0], cols, strict=True):
        for name, df in logs.items():
            if col in df and df[col].notna().any():
                d = df[df[col].notna()]
                ax.plot(d["step"], d[col], marker=".", ms=3, lw=1, label=name)
        ax.set_title(col.replace("rewards/", "").replace("/mean", ""), fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(group, fontsize=10)
    fig.tight_layout()
    return fig


def ablation_tables() -> dict[str, pd.DataFrame]:
    """The per-arm result CSVs the training notebooks write (``results/*_ablation_*.csv``,
    ``results/medreasoner_modes_*.csv``)."""
    d = results_dir()
    files = sorted(d.glob("*_ablation_*.csv")) + sorted(d.glob("medreasoner_modes_*.csv"))
    return {p.stem: pd.read_csv(p) for p in files}


def plot_ablation(name: str, df: pd.DataFrame, metrics=("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU")):
    """Bars with 95% intervals per arm (first seed), one panel per metric present."""
    import matplotlib.pyplot as plt

    present = [m for m in metrics if m in df and df[m].notna().any()]
    if not present or df.empty:
        return None
    one = df[df["seed"] == df["seed"].min()]
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.4), squeeze=False)
    for ax, m in zip(axes[0], present, strict=True):
        lo = one.get(f"{m}_lo", one[m])
        hi = one.get(f"{m}_hi", one[m])
        ax.bar(one["variant"], one[m], yerr=[one[m] - lo, hi - one[m]], capsize=3, color="tab:blue")
        ax.set_ylabel(f"{m} (%)")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    return fig


def plot_ours_vs_reported(side: pd.DataFrame, title: str):
    """Paired bars: the paper's number and ours for every row of a table where both exist
    (:func:`medlib.tables.side_by_side` output)."""
    import matplotlib.pyplot as plt

    def first_number(s: str) -> float:
        try:
            return float(str(s).split(" ")[0].split(";")[0])
        except ValueError:
            return float("nan")

    rows = side.assign(rep=side["reported"].map(first_number), our=side["ours"].map(first_number))
    rows = rows[rows["rep"].notna() & rows["our"].notna() & (rows["metric"] != "refusals")]
    if rows.empty:
        return None
    labels = [f"{r.method} {r.setting} {r.metric}".strip() for r in rows.itertuples()]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(rows) + 2), 3.4))
    ax.bar(x - 0.2, rows["rep"], 0.4, label="reported (paper)", color="tab:grey")
    ax.bar(x + 0.2, rows["our"], 0.4, label="ours (see scale in results/tables)", color="tab:blue")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_proof(stem: str = "learning") -> pd.DataFrame | None:
    """The learning study's per-seed rows (``results/learning_study_<stem>.json``), if present."""
    from .learning_study import load_study

    study = load_study(stem)
    return None if study is None else study["per_seed"]


def plot_learning_study(per_seed: pd.DataFrame, title: str = "Learning study: SFT start vs SFT continued vs GRPO"):
    """mIoU and Acc@0.5 per arm: the mean over seeds (bar) and each seed (dots)."""
    import matplotlib.pyplot as plt

    arms = [a for a in ("sft_start", "sft_more", "grpo") if a in set(per_seed["variant"])]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, metric in zip(axes, ("mIoU", "Acc")):
        for i, arm in enumerate(arms):
            vals = per_seed.loc[per_seed["variant"] == arm, metric].to_numpy(float)
            ax.bar(i, vals.mean(), color=("0.7", "0.5", "tab:blue")[i % 3], width=0.6)
            ax.scatter(np.full(len(vals), i), vals, color="k", s=12, zorder=3)
        ax.set_xticks(range(len(arms)), arms)
        ax.set_ylabel(f"{metric} (%)")
    n = per_seed["seed"].nunique()
    fig.suptitle(f"{title} ({n} seed{'s' if n != 1 else ''}; bars: mean, dots: seeds)", fontsize=9)
    fig.tight_layout()
    return fig
