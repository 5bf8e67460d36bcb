"""Figures rebuilt from ``results/`` only: training curves, ablation bars, our numbers beside the
papers', the learning studies. Each ``plot_*`` function reads files the notebooks and studies
wrote and returns a matplotlib figure, or None when those files do not exist yet.

:func:`results_figures` lists every figure the results folder feeds (name, input files, how to
draw it); :func:`write_figures` draws them into ``figures/`` (``python -m medlib figures``; the
commands that write results files call it); :func:`check_figures` draws them again into a
temporary folder and compares bytes with the committed ones (``python -m medlib check-figures``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import results_dir
from .viz import PAGE_WIDTH_IN

#: the curves worth plotting for each kind of run, in order: (log column, stage, panel title, y label)
CURVE_PANELS = (
    ("reward", "GRPO", "GRPO: mean reward", "reward (sum of terms)"),
    ("kl", "GRPO", "GRPO: KL to the reference", "KL (nats / token)"),
    ("completions/mean_length", "GRPO", "GRPO: completion length", "tokens"),
    ("loss", "SFT", "SFT: training loss", "cross-entropy (nats / token)"),
)
#: how many reward terms get a panel of their own
MAX_REWARD_PANELS = 3
#: y-axis names with units, per metric column
METRIC_LABELS = {"mIoU": "mIoU (%)", "Acc": "Acc@0.5 (%)", "pDice": "pDice (%)", "Dice": "mask Dice (%)",
                 "DSC": "volume DSC (%)", "IoU": "volume IoU (%)", "DSC_local": "DSC near the key slice (%)",
                 "key_hit": "key slice in the mask (%)"}
#: the learning study's arms, as the figure names them
STUDY_ARMS = {"sft_start": "SFT start", "sft_more": "SFT continued\n(equal steps)", "grpo": "GRPO"}
PAPER_NAMES = {"medground-r1": "MedGround-R1", "medreasoner": "MedReasoner", "medvol-r1": "MedVol-R1",
               "medground": "MedGround-R1", "medvol": "MedVol-R1"}


def _plt():
    from .viz import _plt as plt

    return plt()


def training_logs(group: str) -> dict[str, pd.DataFrame]:
    """``results/training/<group>/<arm>_seed<s>.csv`` as DataFrames keyed by file stem."""
    d = results_dir("training") / group
    return {p.stem: pd.read_csv(p) for p in sorted(d.glob("*.csv"))} if d.is_dir() else {}


def training_groups() -> list[str]:
    """Every group with training logs (e.g. ``medground_smoke``)."""
    d = results_dir("training")
    return sorted(p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*.csv")))


def run_label(stem: str, df: pd.DataFrame) -> tuple[str, str, str]:
    """(stage, arm, seed) of a training log ``<arm>_seed<s>``: GRPO when it logged rewards, else SFT."""
    m = re.fullmatch(r"(.+)_seed(\d+)", stem)
    arm, seed = (m.group(1), m.group(2)) if m else (stem, "")
    stage = "GRPO" if "reward" in df and df["reward"].notna().any() else "SFT"
    return stage, arm, seed


def group_title(group: str) -> str:
    """``medground_smoke`` -> ``MedGround-R1, smoke profile``; a sweep's ``+overrides`` kept."""
    head, _, sweep = group.partition("+")
    paper, _, rest = head.partition("_")
    rest = rest.replace("_", " ")
    title = f"{PAPER_NAMES.get(paper, paper)}, {rest} profile" if rest else PAPER_NAMES.get(paper, paper)
    return title + (f" (sweep: {sweep.replace('+', ', ')})" if sweep else "")


def _panel_grid(n: int, ncols: int, row_height: float, extra: float = 0.9):
    plt = _plt()
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH_IN, row_height * nrows + extra), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes.ravel()[:n]


def plot_training_curves(group: str, panels=CURVE_PANELS):
    """One panel per logged quantity (its title names the stage), one line per run (the legend
    names stage, arm and seed): GRPO arms log rewards, KL and lengths; SFT arms their loss."""
    logs = training_logs(group)
    if not logs:
        return None
    runs = {stem: (run_label(stem, df), df) for stem, df in logs.items()}
    chosen = [(col, stage, title, ylabel) for col, stage, title, ylabel in panels
              if any(s[0] == stage and col in df and df[col].notna().any() for s, df in runs.values())]
    terms = sorted({c for (s, _, _), df in runs.values() if s == "GRPO" for c in df.columns
                    if c.startswith("rewards/") and c.endswith("/mean")})
    chosen += [(c, "GRPO", f"GRPO: {c.split('/')[1].replace('_', ' ')} reward", "reward term")
               for c in terms[:MAX_REWARD_PANELS]]
    fig, axes = _panel_grid(len(chosen), 3, 1.95, extra=0.4 + 0.14 * int(np.ceil(len(runs) / 3)))
    arms = sorted({arm for (_, arm, _), _ in runs.values()})
    colors = {arm: f"C{i % 10}" for i, arm in enumerate(arms)}
    seeds = sorted({seed for (_, _, seed), _ in runs.values()})
    styles = {seed: ("-", "--", ":", "-.")[i % 4] for i, seed in enumerate(seeds)}
    lines = {}
    for ax, (col, stage, title, ylabel) in zip(axes, chosen, strict=True):
        for (s, arm, seed), df in runs.values():
            if s != stage or col not in df or not df[col].notna().any():
                continue
            d = df[df[col].notna()]
            label = f"{s}: {arm}" + (f", seed {seed}" if seed else "")
            (line,) = ax.plot(d["step"], d[col], styles.get(seed, "-"), marker=".", ms=3, lw=1, color=colors[arm],
                              label=label)
            lines.setdefault(label, line)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("training step", fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"Training curves: {group_title(group)}", fontsize=9)
    n_leg_rows = int(np.ceil(len(lines) / 3))
    bottom = (0.14 * n_leg_rows + 0.08) / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.legend(list(lines.values()), list(lines), loc="lower center", ncol=3, fontsize=6, frameon=False)
    return fig


def ablation_tables() -> dict[str, pd.DataFrame]:
    """The per-arm result CSVs the training notebooks write (``results/*_ablation_*.csv``,
    ``results/medreasoner_modes_*.csv``)."""
    return {p.stem: pd.read_csv(p) for p in _ablation_files()}


def _ablation_files() -> list[Path]:
    d = results_dir()
    return sorted(d.glob("*_ablation_*.csv")) + sorted(d.glob("medreasoner_modes_*.csv"))


def ablation_title(name: str) -> str:
    """``medground_ablation_smoke`` -> ``MedGround-R1 ablation, smoke profile``."""
    paper, _, rest = name.partition("_")
    kind, _, profile = rest.rpartition("_")
    kind = {"ablation": "ablation", "modes": "reward modes"}.get(kind, kind.replace("_", " "))
    return f"{PAPER_NAMES.get(paper, paper)} {kind}, {profile} profile"


def plot_ablation(name: str, df: pd.DataFrame,
                  metrics=("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU", "DSC_local", "key_hit")):
    """Bars per arm: the first seed's value with its 95% bootstrap interval; dots: the other seeds
    where an arm ran more than one. One panel per metric present."""
    present = [m for m in metrics if m in df and df[m].notna().any()]
    if not present or df.empty:
        return None
    first = df["seed"].min()
    one = df[df["seed"] == first]
    arms = list(one["variant"])
    ncols = min(len(present), 3 if len(arms) <= 5 else 2)
    fig, axes = _panel_grid(len(present), ncols, 2.6, extra=0.5)
    many = df[df["seed"] != first]
    for ax, m in zip(axes, present, strict=True):
        lo = one.get(f"{m}_lo", one[m])
        hi = one.get(f"{m}_hi", one[m])
        x = np.arange(len(arms))
        ax.bar(x, one[m], yerr=[one[m] - lo, hi - one[m]], capsize=2, color="tab:blue", width=0.7,
               error_kw={"lw": 0.8})
        for i, arm in enumerate(arms):
            vals = many.loc[many["variant"] == arm, m].to_numpy(float)
            ax.scatter(np.full(len(vals), i), vals, s=10, facecolors="white", edgecolors="k", lw=0.7, zorder=3)
        ax.set_xticks(x, arms, rotation=45, ha="right", fontsize=6)
        ax.set_ylabel(METRIC_LABELS.get(m, m), fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
    n = f", n = {int(one['n'].iloc[0])} test records" if "n" in one and one["n"].notna().any() else ""
    others = ", dots: other seeds" if len(many) else ""
    fig.suptitle(f"{ablation_title(name)}{n}\n(bars: seed {first} with 95% interval{others})", fontsize=8)
    fig.tight_layout()
    return fig


def _first_number(s) -> float:
    try:
        return float(str(s).split(" ")[0].split(";")[0])
    except ValueError:
        return float("nan")


def _interval(s) -> tuple[float, float]:
    m = re.search(r"\[([-0-9.]+),\s*([-0-9.]+)\]", str(s))
    return (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))


def plot_ours_vs_reported(side: pd.DataFrame, title: str):
    """Paired horizontal bars, one row per table row where both exist (:func:`medlib.report.tables.side_by_side`
    output): the paper's number (grey) and ours (blue, with its 95% interval). Ours come from a
    tiny model on embedded data, so the two are on different scales (``results/tables``)."""
    rows = side.assign(rep=side["reported"].map(_first_number), our=side["ours"].map(_first_number))
    rows = rows[rows["rep"].notna() & rows["our"].notna() & (rows["metric"] != "refusals")].reset_index(drop=True)
    if rows.empty:
        return None
    parts = [c for c in ("method", "setting", "metric") if c in rows]
    labels = [" ".join(str(v) for v in r if str(v) not in ("", "nan")) for r in rows[parts].itertuples(index=False)]
    lo_hi = np.array([_interval(s) for s in rows["ours"]])
    err = np.vstack([rows["our"] - lo_hi[:, 0], lo_hi[:, 1] - rows["our"]])
    err = np.where(np.isfinite(err), err, 0.0)
    plt = _plt()
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, 0.32 * len(rows) + 1.3))
    ax.barh(y - 0.2, rows["rep"], 0.4, label="reported in the paper", color="tab:grey")
    ax.barh(y + 0.2, rows["our"], 0.4, xerr=err, label="ours (tiny model, embedded data), 95% interval",
            color="tab:blue", error_kw={"lw": 0.8, "capsize": 2})
    ax.set_yticks(y, [textwrap_label(s, 45) for s in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("value (%)", fontsize=8)
    ax.set_xlim(0, max(100.0, float(np.nanmax(np.r_[rows["rep"], rows["our"] + err[1]])) * 1.05))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.22 / fig.get_figheight(), 1, 1))
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="lower center", ncol=2, frameon=False)
    return fig


def textwrap_label(s: str, width: int) -> str:
    from .viz import wrap

    return wrap(s, width)


def learning_proof(stem: str = "learning") -> pd.DataFrame | None:
    """The learning study's per-seed rows (``results/learning_study_<stem>.json``), if present."""
    from ..study.report import load_study

    study = load_study(stem)
    return None if study is None else study["per_seed"]


def learning_studies() -> list[str]:
    """Stems of every learning study with a results file (``learning``, ``smoke``, sweeps)."""
    return sorted(p.stem.removeprefix("learning_study_") for p in results_dir().glob("learning_study_*.json"))


def plot_learning_study(per_seed: pd.DataFrame, title: str = "Learning study: SFT start vs SFT continued vs GRPO"):
    """mIoU and Acc@0.5 per arm: the mean over seeds (bar) and each seed (dots, one marker per seed,
    joined across arms: the comparison is paired by seed)."""
    plt = _plt()
    arms = [a for a in STUDY_ARMS if a in set(per_seed["variant"])]
    seeds = sorted(per_seed["seed"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.0))
    markers = "osD^v<>p"
    for ax, metric in zip(axes, ("mIoU", "Acc")):
        for i, arm in enumerate(arms):
            vals = per_seed.loc[per_seed["variant"] == arm, metric].to_numpy(float)
            ax.bar(i, vals.mean(), color=("0.75", "0.55", "tab:blue")[i % 3], width=0.6)
        for j, seed in enumerate(seeds):
            d = per_seed[per_seed["seed"] == seed].set_index("variant")
            ys = [float(d.loc[a, metric]) if a in d.index else np.nan for a in arms]
            ax.plot(range(len(arms)), ys, "-", color="k", lw=0.5, alpha=0.5, zorder=2)
            ax.scatter(range(len(arms)), ys, color="k", s=14, marker=markers[j % len(markers)], zorder=3,
                       label=f"seed {seed}")
        ax.set_xticks(range(len(arms)), [STUDY_ARMS[a] for a in arms], fontsize=7)
        ax.set_ylabel(METRIC_LABELS[metric], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        lo = np.nanmin(per_seed[metric].to_numpy(float))
        ax.set_ylim(0, max(np.nanmax(per_seed[metric].to_numpy(float)) * 1.15, lo + 1))
    n = len(seeds)
    fig.suptitle(f"{title}\n({n} seed{'s' if n != 1 else ''}; bars: mean over seeds, dots: each seed)", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=max(len(labels), 1), fontsize=7, frameon=False)
    return fig


@dataclass(frozen=True)
class ResultsFigure:
    """A figure the results folder feeds: its file stem under ``figures/``, the results files it
    reads, and how to draw it (None: nothing to draw)."""

    name: str
    inputs: tuple[Path, ...]
    draw: Callable[[], object]


def _study_figure(stem: str):
    per_seed = learning_proof(stem)
    if per_seed is None or per_seed.empty:
        return None
    title = "Learning study: SFT start vs SFT continued vs GRPO"
    return plot_learning_study(per_seed, title if stem == "learning" else f"{title} ({stem.replace('+', ', ')})")


def study_figure_name(stem: str) -> str:
    """``learning`` -> ``91_learning_study``; any other stem -> ``91_learning_study_<stem>``."""
    return "91_learning_study" if stem == "learning" else f"91_learning_study_{stem}"


def results_figures() -> list[ResultsFigure]:
    """Every figure the results folder feeds now, in a fixed order."""
    from .reported import TABLES
    from .tables import load_ours, ours_dir, side_by_side

    out: list[ResultsFigure] = []
    for group in training_groups():
        files = tuple(sorted((results_dir("training") / group).glob("*.csv")))
        out.append(ResultsFigure(f"91_training_{group}", files, lambda g=group: plot_training_curves(g)))
    for path in _ablation_files():
        out.append(ResultsFigure(f"91_{path.stem}", (path,), lambda p=path: plot_ablation(p.stem, pd.read_csv(p))))
    ours = load_ours()
    for paper, tables in TABLES.items():
        for t in tables:
            if ours.empty or ours[(ours["paper"] == paper) & (ours["table"].astype(str) == str(t))].empty:
                continue
            files = tuple(sorted(ours_dir().glob(f"{paper}_table{t}__*.csv")))
            title = f"{PAPER_NAMES.get(paper, paper)} Table {t}: reported vs ours"
            out.append(ResultsFigure(f"91_{paper}_table{t}", files,
                                     lambda p=paper, t=t, title=title: plot_ours_vs_reported(side_by_side(p, t), title)))
    for stem in learning_studies():
        out.append(ResultsFigure(study_figure_name(stem), (results_dir() / f"learning_study_{stem}.json",),
                                 lambda s=stem: _study_figure(s)))
    out += effect_study_figures()
    return out


def effect_study_figures() -> list[ResultsFigure]:
    """The effect studies' figures (:mod:`medlib.study`): the effect sizes of every paper, and per
    paper the pass@k curves and the GRPO signal of its study."""
    from ..study.effects import load_effects, plot_effects
    from ..study.report import plot_passk, plot_signal

    out: list[ResultsFigure] = []
    eff = results_dir() / "effects.csv"
    if eff.is_file():
        out.append(ResultsFigure("91_effects", (eff,), lambda: plot_effects(load_effects())))
    for d in sorted(results_dir("study").glob("*/")):
        paper = d.name
        if (d / "passk.csv").is_file():
            out.append(ResultsFigure(f"91_study_{paper}_passk", (d / "passk.csv",),
                                     lambda f=d / "passk.csv": plot_passk(pd.read_csv(f))))
        logs = tuple(sorted(results_dir("training", f"{paper}_study").glob("grpo_seed*.csv")))
        if logs:
            out.append(ResultsFigure(f"91_study_{paper}_grpo_signal", logs, lambda p=paper: plot_signal(p)))
    return out


def write_figures(out_dir: Path | None = None, only: Iterable[str] | None = None) -> list[Path]:
    """Draw every figure the results folder feeds (or those named in ``only``) into ``out_dir``
    (default ``figures/``) with matplotlib's default style and the Agg backend, so the same results
    give the same bytes on any machine with the same matplotlib; returns the files written."""
    import matplotlib

    from .viz import save_figure

    plt = _plt()
    wanted = None if only is None else set(only)
    written: list[Path] = []
    for spec in results_figures():
        if wanted is not None and spec.name not in wanted:
            continue
        with matplotlib.rc_context():
            matplotlib.rcdefaults()
            fig = spec.draw()
            if fig is None:
                continue
            written += save_figure(fig, spec.name, out_dir)
            plt.close(fig)
    return written


#: committed figures with this prefix are the results folder's: each must be one :func:`results_figures` draws
OWNED_PREFIX = "91_"


def _png_software(path: Path) -> str | None:
    """The ``Software`` text of a PNG (matplotlib writes its version there), or None."""
    import struct

    data = path.read_bytes()
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        if kind == b"tEXt":
            key, _, text = data[i + 8:i + 8 + length].partition(b"\0")
            if key == b"Software":
                return text.decode("latin-1")
        if kind == b"IDAT":
            return None
        i += 12 + length
    return None


def check_figures(figures: Path | None = None) -> list[str]:
    """One sentence per committed figure that is not what its results files give now: missing,
    different bytes, or fed by no results file any more. Empty list: every figure is current."""
    import tempfile

    import matplotlib

    from ..paths import figures_dir

    figures = Path(figures) if figures is not None else figures_dir()
    problems: list[str] = []
    specs = {s.name: s for s in results_figures()}
    with tempfile.TemporaryDirectory() as tmp:
        made = {p.name: p for p in write_figures(Path(tmp))}
        version_note = ""
        for name, fresh in sorted(made.items()):
            committed = figures / name
            spec = specs[Path(name).stem]
            inputs = ", ".join(f"results/{p.relative_to(results_dir())}" if p.is_relative_to(results_dir())
                               else str(p) for p in spec.inputs[:3]) + (" ..." if len(spec.inputs) > 3 else "")
            if not committed.is_file():
                problems.append(f"{committed.name} is missing; {inputs} feed it: run `python -m medlib figures` and commit it")
            elif committed.read_bytes() != fresh.read_bytes():
                if not version_note and committed.suffix == ".png":
                    drawn_with = _png_software(committed) or ""
                    if drawn_with and matplotlib.__version__ not in drawn_with:
                        version_note = (f" (the committed figures were drawn with {drawn_with.split(',')[0]}, this is "
                                        f"Matplotlib v{matplotlib.__version__}: compare with that version)")
                problems.append(f"{committed.name} differs from what {inputs} give now: "
                                f"run `python -m medlib figures` and commit it")
    drawn = {Path(n).stem for n in made}
    for p in sorted(figures.glob(f"{OWNED_PREFIX}*")):
        if p.suffix in (".png", ".pdf") and p.stem not in drawn:
            problems.append(f"{p.name}: no results file feeds it any more (its inputs were removed): delete it")
    if problems and version_note:
        problems[0] += version_note
    return problems
