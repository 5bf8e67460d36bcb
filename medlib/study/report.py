"""What a study's results say, for the training notebooks: its tables and its two diagnostic
figures (pass@k of the SFT start and the GRPO model; the GRPO signal step by step), read from
``results/study/<paper>/`` and ``results/training/<paper>_study/`` only."""

from __future__ import annotations

import json

import pandas as pd

from ..paths import results_dir


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


def plot_passk(passk: pd.DataFrame):
    """pass@k (k = 1..16, log-2 axis) of each arm, one line per seed; greedy Acc is not in it."""
    from ..report.viz import _plt

    plt = _plt()

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
    return fig


SIGNAL_COLUMNS = (("diag/zero_spread/total", "groups with no reward spread"),
                  ("diag/zero_spread/medground_spatial", "groups with no spatial spread"),
                  ("diag/adv_share/medground_spatial", "spatial share of advantage variance"),
                  ("diag/adv_share/medground_semantic", "semantic share of advantage variance"))


def plot_signal(paper: str, arm: str = "grpo"):
    """The GRPO signal over training, one panel per diagnostic (and KL), one line per seed of ``arm``."""
    import textwrap

    from ..report.viz import _plt

    plt = _plt()

    logs = sorted(results_dir("training", f"{paper}_study").glob(f"{arm}_seed*.csv"))
    panels = [*SIGNAL_COLUMNS, ("kl", "KL to the SFT start (nats / token)")]
    fig, axes = plt.subplots(2, 3, figsize=(7.0, 4.6), sharex=True)
    flat = axes.ravel()
    for f in logs:
        df = pd.read_csv(f)
        df = df[df["loss"].notna()] if "loss" in df else df
        seed = f.stem.split("seed")[-1]
        for ax, (c, _) in zip(flat, panels):
            if c in df:
                ax.plot(df["step"], df[c], lw=1, label=f"seed {seed}")
    for ax, (c, title) in zip(flat, panels):
        ax.set_title("\n".join(textwrap.wrap(title, 28)), fontsize=8)
        if c != "kl":
            ax.set_ylim(-0.05, 1.05)
            ax.set_ylabel("fraction", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes[1]:
        ax.set_xlabel("GRPO step", fontsize=8)
    handles, labels = flat[0].get_legend_handles_labels()
    flat[-1].axis("off")
    flat[-1].legend(handles, labels, loc="center", fontsize=8, frameon=False, title=f"{arm} arm")
    fig.tight_layout()
    return fig


def _mean(df: pd.DataFrame, arm: str, col: str) -> float | None:
    d = df[df["arm"] == arm] if "arm" in df else df
    return None if d.empty or col not in d else float(pd.to_numeric(d[col], errors="coerce").mean())


def explain(paper: str, paper_name: str) -> str:
    """What the study's files say, in sentences whose every number is read from them: the
    verdicts, whether GRPO sharpened or widened what sampling reaches (pass@k), and where the
    GRPO signal came from (zero-spread groups, each reward's share of the advantage variance)."""
    from .effects import describe, load_effects

    files = study_files(paper)
    lines = []
    eff = load_effects(paper_name)
    if eff is not None and len(eff):
        lines.append(describe(eff))
        shown = eff[eff["verdict"] == "shown"]
        lines.append(f"{len(shown)} of {len(eff)} claims are shown at this scale (95% intervals over seeds and test items).")
    pk = files.get("passk")
    if pk is not None and {"sft_start", "grpo"} <= set(pk["arm"]):
        ks = sorted(int(c.split("@")[1]) for c in pk.columns if c.startswith("pass@"))
        lo, hi = f"pass@{ks[0]}", f"pass@{ks[-1]}"
        a1, b1 = _mean(pk, "sft_start", lo), _mean(pk, "grpo", lo)
        a2, b2 = _mean(pk, "sft_start", hi), _mean(pk, "grpo", hi)
        widened = b2 - a2 > 2.0
        lines.append(f"Sampled at the GRPO temperature ({len(set(pk['seed']))} seeds), GRPO moved {lo} from {a1:.1f}% to "
                     f"{b1:.1f}% and {hi} from {a2:.1f}% to {b2:.1f}%: "
                     + ("it also widened what many samples reach." if widened else
                        "it made single samples right more often without widening what many samples reach "
                        "(sharpening, not discovery)."))
    dg = files.get("diagnostics")
    if dg is not None and len(dg):
        g = dg[dg["arm"] == "grpo"] if "grpo" in set(dg["arm"]) else dg
        parts = []
        for col, what in (("diag/zero_spread/medground_spatial", "groups in which the spatial reward was the same "
                                                                 "for every completion"),
                          ("diag/zero_spread/total", "groups with no total-reward spread (no gradient)")):
            if col in g:
                parts.append(f"{100 * g[col].mean():.0f}% of {what}")
        shares = {c.split("/")[-1]: g[c].mean() for c in g.columns if c.startswith("diag/adv_share/") and "@" not in c}
        if parts:
            lines.append("Over the GRPO runs: " + "; ".join(parts) + ".")
        if shares:
            lines.append("Share of the advantage variance: " + ", ".join(
                f"{k.replace('medground_', '')} {100 * v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
                + ".")
    return "\n".join(lines) if lines else f"no study results for {paper} yet"


def describe_arms(runs: pd.DataFrame, metrics, reference: str, seed: int | None = None) -> str:
    """What an ablation table says, one sentence per arm and metric, every number read from it:
    the arm's value and 95% interval against ``reference``'s, and whether the two intervals are
    apart (a difference this table can see) or overlap (one seed and a small test split cannot
    tell the arms apart; an effect study with several seeds can)."""
    one = runs if seed is None else runs[runs["seed"] == seed]
    one = one.set_index("variant")
    if reference not in one.index:
        return f"no {reference!r} row to compare with"
    ref = one.loc[reference]
    lines = []
    for arm, r in one.iterrows():
        if arm == reference:
            continue
        for m in metrics:
            if m not in r or pd.isna(r[m]):
                continue
            lo, hi, rlo, rhi = r.get(f"{m}_lo"), r.get(f"{m}_hi"), ref.get(f"{m}_lo"), ref.get(f"{m}_hi")
            if any(pd.isna(v) for v in (lo, hi, rlo, rhi)):
                verdict = "no interval to compare"
            elif lo > rhi:
                verdict = "above it, intervals apart"
            elif hi < rlo:
                verdict = "below it, intervals apart"
            else:
                verdict = "intervals overlap: not distinguishable here"
            lines.append(f"{arm}: {m} {r[m]:.1f} [{lo:.1f}, {hi:.1f}] vs {reference} {ref[m]:.1f} "
                         f"[{rlo:.1f}, {rhi:.1f}] ({verdict}).")
    return "\n".join(lines)


def load_study(stem: str = "learning") -> dict[str, pd.DataFrame] | None:
    """``results/learning_study_<stem>.json`` as tables (per seed, means, paired differences), or
    None when the study has not been run."""
    path = results_dir() / f"learning_study_{stem}.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    cols = ["seed", "variant", "steps", "train_seconds", "mIoU", "mIoU_lo", "mIoU_hi", "Acc", "Acc_lo", "Acc_hi"]
    per_seed = pd.DataFrame(d["per_seed"])
    per_seed = per_seed[[c for c in cols if c in per_seed.columns]]
    means = pd.DataFrame(d["summary"]["arms"]).T
    diffs = pd.DataFrame(d["summary"]["differences"]).T
    return {"per_seed": per_seed, "means": means, "differences": diffs, "command": d.get("command")}


EFFECT_VIEW = ["table", "claim", "metric", "seeds", "n_test", "delta", "ci_lo", "ci_hi", "verdict"]


def paper_effects(paper: str, paper_name: str) -> tuple[pd.DataFrame | None, str]:
    """A paper's pooled rows of ``results/effects.csv`` (None when no study has run) and what they
    mean (:func:`explain`), or a sentence saying that no claim of the paper is judged yet."""
    from .effects import load_effects

    effects = load_effects(paper_name)
    if effects is None or effects.empty:
        return None, (f"{paper_name}: no effect study has run yet, so no claim of this paper is judged here; the "
                      "arms above are one seed on a small test split (intervals in the table), not a test of the "
                      "paper's effect.")
    return effects[EFFECT_VIEW], explain(paper, paper_name)
