"""What a study's results say, for the training notebooks: its tables and its two diagnostic
figures (pass@k of the SFT start and the GRPO model; the GRPO signal step by step), read from
``results/study/<paper>/`` and ``results/training/<paper>_study/`` only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .paths import results_dir


def study_files(paper: str) -> dict[str, pd.DataFrame]:
    """The study's result tables that exist: ``arms``, ``passk``, ``diagnostics``, selections."""
    d = results_dir("study", paper)
    out = {}
    for f in sorted(d.glob("*.csv")):
        out[f.stem] = pd.read_csv(f)
    return out


def arm_means(arms: pd.DataFrame, metrics=("mIoU", "Acc")) -> pd.DataFrame:
    """Mean, minimum and maximum over seeds of each arm's test metrics."""
    present = [m for m in metrics if m in arms]
    g = arms.groupby("variant", sort=False)[present]
    return g.mean().round(2).join(g.min().add_suffix("_min")).join(g.max().add_suffix("_max")).join(
        g.size().rename("seeds"))


def selection_table(sel: pd.DataFrame) -> pd.DataFrame:
    """A selection file as candidate x metric on the validation split (mean over its seeds)."""
    metrics = [m for m in ("mIoU", "Acc", "pDice", "DSC") if m in sel]
    t = sel.groupby(["variant", "split"], sort=False)[metrics].mean().round(2)
    return t.join(sel.groupby(["variant", "split"], sort=False)["overrides"].first())


def plot_passk(passk: pd.DataFrame, path: str | Path | None = None):
    """pass@k (k = 1..16, log-2 axis) of each arm, one line per seed; greedy Acc is not in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = sorted(int(c.split("@")[1]) for c in passk.columns if c.startswith("pass@"))
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    colors = {"sft_start": "tab:blue", "grpo": "tab:orange"}
    for (arm, seed), d in passk.groupby(["arm", "seed"], sort=False):
        vals = [float(d[f"pass@{k}"].iloc[0]) for k in ks]
        ax.plot(ks, vals, "o-", color=colors.get(arm), alpha=0.6, lw=1, ms=3,
                label=arm if seed == passk["seed"].min() else None)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples per test image)")
    ax.set_ylabel("pass@k, Acc@0.5 (%)")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=150, metadata={"Software": None})
    return fig


SIGNAL_COLUMNS = (("diag/zero_spread/total", "groups with no reward spread"),
                  ("diag/zero_spread/medground_spatial", "groups with no spatial spread"),
                  ("diag/adv_share/medground_spatial", "spatial share of advantage variance"),
                  ("diag/adv_share/medground_semantic", "semantic share of advantage variance"))


def plot_signal(paper: str, arm: str = "grpo", path: str | Path | None = None):
    """The GRPO signal over training, one panel per diagnostic, one line per seed of ``arm``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = sorted(results_dir("training", f"{paper}_study").glob(f"{arm}_seed*.csv"))
    cols = [c for c in SIGNAL_COLUMNS]
    fig, axes = plt.subplots(1, len(cols) + 1, figsize=(7.0, 2.4), sharex=True)
    for f in logs:
        df = pd.read_csv(f)
        df = df[df["loss"].notna()] if "loss" in df else df
        seed = f.stem.split("seed")[-1]
        for ax, (c, _) in zip(axes, cols):
            if c in df:
                ax.plot(df["step"], df[c], lw=1, label=f"seed {seed}")
        if "kl" in df:
            axes[-1].plot(df["step"], df["kl"], lw=1)
    for ax, (_, title) in zip(axes, cols):
        ax.set_title(title, fontsize=7)
        ax.set_ylim(-0.05, 1.05)
    axes[-1].set_title("KL to the SFT start", fontsize=7)
    for ax in axes:
        ax.set_xlabel("GRPO step", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=150, metadata={"Software": None})
    return fig
