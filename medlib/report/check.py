"""Is ``results/`` complete and plausible? Every file a notebook batch must leave, and every
number in it inside its possible range.

* :func:`expected_files` names, per notebook, the files it writes at a profile;
* :func:`check_results` reads a results folder and returns one line per problem: a missing file,
  a value outside its range (a percentage outside 0-100, an interval that does not hold its mean,
  a negative time, a non-finite loss), or a file that cannot be read. An empty list means "ok".

``python -m medlib check-results [--profile smoke] [--dir results]`` prints the problems and
exits 1 when there are any; ``make reproduce`` runs it after the batch and ``make test`` runs it
on the batch executed at the tiny size and on the committed ``results/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

#: files each notebook writes (relative to the results folder; ``{p}`` = profile)
EXPECTED: dict[str, tuple[str, ...]] = {
    "00_tour": ("tour_rewards.csv", "tour_metrics.json"),
    "01_data": ("data/benchmark_stats_2d_{p}.csv", "data/benchmark_stats_3d_{p}.csv"),
    "02_rewards": ("reward_disagreements.csv",),
    "03_grpo_objective": ("grpo_objective_check.csv",),
    "10_medground_train": ("medground_ablation_{p}.csv", "training/medground_{p}/",
                           *(f"ours/medground-r1_table{t}__10_medground_train_{{p}}.csv" for t in (2, 3, 4))),
    "11_medground_eval": ("eval/medground_{p}/", "ours/medground-r1_table1__11_medground_eval_{p}.csv"),
    "20_medreasoner_train": ("medreasoner_modes_{p}.csv", "ours/medreasoner_table3__20_medreasoner_train_{p}.csv"),
    "21_medreasoner_eval": ("ours/medreasoner_table2__21_medreasoner_eval_{p}.csv",
                            "ours/medreasoner_table3__21_medreasoner_eval_{p}.csv"),
    "30_medvol_train": ("medvol_ablation_{p}.csv", "training/medvol_{p}/"),
    "31_medvol_eval": ("ours/medvol-r1_table1__31_medvol_eval_{p}.csv", "ours/medvol-r1_table2a__31_medvol_eval_{p}.csv"),
    "90_tables": ("tables/",),
}
PERCENT = ("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU", "DSC_local", "key_hit")
#: hand-computed GRPO loss vs TRL's (notebook 03): float32 agreement
OBJECTIVE_TOLERANCE = 1e-4


def expected_files(profile: str, notebooks: Iterable[str] | None = None) -> list[str]:
    """Relative paths (a trailing ``/``: a non-empty folder) the notebooks write at ``profile``."""
    names = EXPECTED if notebooks is None else [n for n in notebooks if n in EXPECTED]
    return [f.format(p=profile) for n in names for f in EXPECTED[n]]


#: MedReasoner's official pDice is twice the discs' IoU (medlib.metrics.pdice): up to 200 %
PERCENT_MAX = {"pDice": 200.0}


def _pct(where: str, name: str, v, problems: list[str], metric: str | None = None) -> None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        problems.append(f"{where}: {name} = {v!r} is not a number")
        return
    top = PERCENT_MAX.get(metric, 100.0) if metric else 100.0
    if not (math.isfinite(x) and 0.0 <= x <= top):
        problems.append(f"{where}: {name} = {x} is outside 0-{top:g} (%)")


def _interval(where: str, name: str, mean, lo, hi, problems: list[str]) -> None:
    vals = [float(v) for v in (lo, mean, hi) if v not in ("", None) and not pd.isna(v)]
    if len(vals) == 3 and not vals[0] - 1e-9 <= vals[1] <= vals[2] + 1e-9:
        problems.append(f"{where}: {name} interval [{vals[0]}, {vals[2]}] does not hold its mean {vals[1]}")


def _check_summary(path: Path, rel: str, problems: list[str]) -> None:
    s = json.loads(path.read_text())
    if int(s.get("n") or 0) < 1:
        problems.append(f"{rel}: n = {s.get('n')!r}, no sample was evaluated")
    for name, m in (s.get("metrics") or {}).items():
        if name in PERCENT and isinstance(m, dict):
            _pct(rel, f"{name}.mean", m.get("mean"), problems, metric=name)
            _interval(rel, name, m.get("mean"), m.get("ci_low"), m.get("ci_high"), problems)
    if int(s.get("refusals") or 0) > int(s.get("n") or 0):
        problems.append(f"{rel}: refusals {s.get('refusals')} > n {s.get('n')}")


def _check_csv(path: Path, rel: str, problems: list[str]) -> None:
    df = pd.read_csv(path)
    if df.empty:
        problems.append(f"{rel}: no rows")
        return
    if rel.startswith("ours/"):
        for i, r in df.iterrows():
            if r.get("unit") == "%":
                _pct(rel, f"row {i + 2} value", r["value"], problems, metric=r.get("metric"))
                _interval(rel, f"row {i + 2}", r["value"], r.get("ci_low"), r.get("ci_high"), problems)
        return
    if rel.endswith("grpo_objective_check.csv"):
        worst = float(df["abs_diff"].abs().max())
        if not worst <= OBJECTIVE_TOLERANCE:
            problems.append(f"{rel}: hand-computed GRPO loss differs from TRL's by {worst:g} > {OBJECTIVE_TOLERANCE:g}")
        return
    for col in df.columns:
        if col in PERCENT:
            for i, v in df[col].dropna().items():
                _pct(rel, f"row {i + 2} {col}", v, problems, metric=col)
        elif col.endswith(("seconds", "_s")) and pd.api.types.is_numeric_dtype(df[col]) and (df[col] < 0).any():
            problems.append(f"{rel}: negative {col}")
        elif col == "loss" and pd.api.types.is_numeric_dtype(df[col]) and not df[col].dropna().map(math.isfinite).all():
            problems.append(f"{rel}: non-finite loss")


def _check_json(path: Path, rel: str, problems: list[str]) -> None:
    d = json.loads(path.read_text())
    if path.name == "summary.json":
        _check_summary(path, rel, problems)
    elif path.name.startswith("learning_study"):
        for arm, m in d["summary"]["arms"].items():
            for k in ("mIoU", "Acc"):
                _pct(rel, f"{arm}.{k}", m[k], problems)
    elif path.name == "semantic_clip.json":
        s = d["summary"]
        if not 0.0 <= s["phrase_top1"] <= 1.0 or s["phrase_top1"] <= s["chance_top1"]:
            problems.append(f"{rel}: phrase_top1 {s['phrase_top1']} is not above chance {s['chance_top1']}")
    elif path.name.startswith("segment"):
        for part in ("2d", "3d"):
            for row in (d.get(part) or {}).get("summary", []):
                for k, v in row.items():
                    if k.startswith("dice") and k.endswith("mean") and not 0.0 <= float(v) <= 1.0:
                        problems.append(f"{rel}: {part} {row.get('structure')} {k} = {v} is outside 0-1")


def check_results(results: str | Path, profile: str | None = None, notebooks: Iterable[str] | None = None) -> list[str]:
    """Problems of the results folder ``results``: missing files (when ``profile`` is given, the
    files of ``notebooks``, default all) and out-of-range values in every CSV / JSON present."""
    root = Path(results)
    problems: list[str] = []
    if profile is not None:
        for rel in expected_files(profile, notebooks):
            p = root / rel
            ok = p.is_dir() and any(p.iterdir()) if rel.endswith("/") or not p.suffix else p.is_file()
            if not ok:
                problems.append(f"{rel}: missing")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith("reported/") or path.suffix not in (".csv", ".json"):
            continue
        try:
            (_check_csv if path.suffix == ".csv" else _check_json)(path, rel, problems)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError, pd.errors.ParserError) as e:
            problems.append(f"{rel}: unreadable ({type(e).__name__}: {e})")
    return problems
