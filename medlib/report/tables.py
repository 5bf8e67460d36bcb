"""The papers' tables rebuilt: reported numbers beside ours, as Markdown and LaTeX.

Reported numbers come from :mod:`medlib.report.reported` (``results/reported/``). Ours are rows that the
notebooks write with :func:`write_ours` into ``results/ours/<paper>_table<id>__<producer>.csv``,
plus the rows :mod:`medlib.report.tables_measured` reads from committed measurements (the segmenter
measurement, the learning studies). Our rows are named for what they are: ``method`` and
``dataset`` are our model and data ("tiny Qwen2.5-VL", "embedded chest 112 px"), never the
paper's; ``beside_method`` / ``beside_setting`` name the printed row they sit beside and
``stands_for`` the paper's dataset. :func:`paper_layout` lays a table out as the paper prints it
(rows: method and setting; columns: dataset, subset, metric) with each of our rows on its own line
under the row it sits beside; :func:`side_by_side` keeps the long format (one number a line).
:func:`build_tables` writes every table to ``results/tables/`` (``python -m medlib.report.tables``,
notebook ``90_tables``). Nothing here computes a metric: it only reads ``results/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from ..paths import results_dir
from .reported import COLUMNS, METRICS, TABLES, load_reported

OURS_EXTRA = ("stands_for", "beside_method", "beside_setting", "profile", "scale", "n", "ci_low", "ci_high",
              "produced_by")
OURS_COLUMNS = COLUMNS + OURS_EXTRA
KEY = ("dataset", "subset", "method", "setting", "metric")
NOT_RUN = "not run"
MAX_PERCENT = {"pDice": 200.0}
"""MedReasoner's official pDice is twice the discs' IoU: up to 200 %."""
_PRODUCER = re.compile(r"^[A-Za-z0-9_.-]+$")


class OursDataError(ValueError):
    """A row of our results that breaks the schema; the message names the file/row and field."""


def ours_dir() -> Path:
    """``results/ours/`` (under ``$MEDLIB_RESULTS_DIR`` when set)."""
    return results_dir("ours")


def _check_table(paper: str, table: str) -> None:
    if paper not in TABLES:
        raise OursDataError(f"unknown paper {paper!r}; choose one of {list(TABLES)}")
    if table not in TABLES[paper]:
        raise OursDataError(f"{paper} has no table {table!r}; its tables are {list(TABLES[paper])}")


def _check_row(row: Mapping, where: str) -> dict:
    missing = [c for c in ("method", "metric", "value", "stands_for", "profile", "scale") if c not in row]
    if missing:
        raise OursDataError(f"{where}: missing field(s) {missing}")
    unknown = sorted(set(row) - set(OURS_COLUMNS))
    if unknown:
        raise OursDataError(f"{where}: unknown field(s) {unknown}; allowed {list(OURS_COLUMNS)}")
    metric = row["metric"]
    if metric not in METRICS:
        raise OursDataError(f"{where}, field 'metric': {metric!r} is not one of {list(METRICS)}")
    try:
        value = float(row["value"])
    except (TypeError, ValueError):
        raise OursDataError(f"{where}, field 'value': {row['value']!r} is not a number") from None
    if not math.isfinite(value):
        raise OursDataError(f"{where}, field 'value': {value} is not finite")
    unit = METRICS[metric]
    top = MAX_PERCENT.get(metric, 100.0)
    if unit == "%" and not 0.0 <= value <= top:
        raise OursDataError(f"{where}, field 'value': {value} is outside 0-{top:g} for {metric} (in %)")
    out = {c: "" for c in OURS_COLUMNS}
    out.update({k: row[k] for k in row})
    out.update(value=value, unit=unit, source="ours", subset=row.get("subset") or "all")
    out["dataset"] = row.get("dataset") or row["stands_for"]
    for c in ("ci_low", "ci_high", "n"):
        out[c] = "" if out[c] in ("", None) or (isinstance(out[c], float) and math.isnan(out[c])) else out[c]
    return out


def _check_names(row: Mapping, paper: str, table: str, where: str) -> None:
    """Our rows carry our model and data, not the paper's (those go in ``beside_*`` and
    ``stands_for``); ``beside_method`` / ``beside_setting``, when given, name a printed row."""
    rep = load_reported(paper, table)
    methods, datasets = set(rep["method"]), set(rep["dataset"])
    if row["method"] in methods:
        raise OursDataError(
            f"{where}, field 'method': {row['method']!r} is a model of the paper; name ours (e.g. "
            f"'tiny Qwen2.5-VL, SFT + GRPO') and put the paper's row in beside_method / beside_setting")
    dataset = row.get("dataset") or ""
    if not dataset or dataset in datasets:
        raise OursDataError(
            f"{where}, field 'dataset': {dataset!r} must name our data (e.g. 'embedded chest 112 px'); "
            f"the paper's dataset goes in stands_for")
    bm, bs = row.get("beside_method") or "", row.get("beside_setting") or ""
    if bm or bs:
        printed = set(zip(rep["method"], rep["setting"]))
        if (bm, bs) not in printed:
            raise OursDataError(f"{where}, fields 'beside_method', 'beside_setting': {paper} Table {table} prints "
                                f"no row ({bm!r}, {bs!r}); leave both empty for a row of ours with no printed "
                                f"counterpart")


def write_ours(rows: Iterable[Mapping], paper: str, table: str | int, produced_by: str) -> Path:
    """Write our rows for one table (replacing what ``produced_by`` wrote before); values of
    metrics in % are percentages, like the papers print them."""
    table = str(table)
    _check_table(paper, table)
    if not _PRODUCER.match(produced_by):
        raise OursDataError(f"produced_by {produced_by!r}: use letters, digits, '_', '.', '-'")
    checked = []
    for i, r in enumerate(rows):
        where = f"{paper} Table {table} row {i}"
        c = _check_row(r, where)
        _check_names(c, paper, table, where)
        c.update(paper=paper, table=table, produced_by=produced_by)
        checked.append(c)
    if not checked:
        raise OursDataError(f"{paper} Table {table}: no rows to write")
    path = ours_dir() / f"{paper}_table{table}__{produced_by}.csv"
    pd.DataFrame(checked, columns=list(OURS_COLUMNS)).to_csv(path, index=False)
    return path


def load_ours(paper: str | None = None, table: str | int | None = None, folder: Path | None = None) -> pd.DataFrame:
    """All our rows (columns ``OURS_COLUMNS``), optionally for one paper / table."""
    folder = Path(folder) if folder else ours_dir()
    frames = []
    for path in sorted(folder.glob("*_table*__*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if tuple(df.columns) != OURS_COLUMNS:
            raise OursDataError(f"{path.name}: columns {list(df.columns)}, expected {list(OURS_COLUMNS)}; "
                                f"rerun the notebook named in its produced_by column to rewrite it")
        for i, r in enumerate(df.to_dict("records"), start=2):
            _check_names(_check_row(r, f"{path.name}, line {i}"), r["paper"], r["table"], f"{path.name}, line {i}")
        df["value"] = df["value"].astype(float)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(OURS_COLUMNS))
    if paper is not None:
        out = out[out["paper"] == paper]
    if table is not None:
        out = out[out["table"] == str(table)]
    return out.reset_index(drop=True)


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(round(value))}" if unit == "count" else f"{value:.2f}"


def _fmt_ours(r: Mapping) -> str:
    s = _fmt(float(r["value"]), r["unit"])
    if r.get("ci_low", "") != "" and r.get("ci_high", "") != "":
        s += f" [{float(r['ci_low']):.1f}, {float(r['ci_high']):.1f}]"
    return s


def _our_label(r: Mapping) -> str:
    """``ours: <model>[, <setting>]; <data>, n = <n>`` (what one of our rows is)."""
    head = f"ours: {r['method']}" + (f", {r['setting']}" if r.get("setting") else "")
    n = f", n = {r['n']}" if str(r.get("n", "")) not in ("", "nan") else ""
    return f"{head}; {r['dataset']}{n}"


def _ours_on(r: Mapping) -> str:
    note = f"; {r['note']}" if r.get("note") else ""
    return f"{r['dataset']} ({r['profile']}, n={r['n'] or '?'}): {r['scale']}{note}"


def _with_measured(paper: str, table: str, ours: pd.DataFrame | None) -> pd.DataFrame:
    if ours is not None:
        return ours
    mine = load_ours(paper, table)
    extra = measured_ours(paper, table)
    return pd.concat([mine, extra], ignore_index=True) if len(extra) else mine


def measured_ours(paper: str, table: str) -> pd.DataFrame:
    """Our rows of ``paper`` Table ``table`` from committed measurements
    (:func:`medlib.report.tables_measured.measured_rows`), checked like the rows of ``results/ours/``."""
    from .tables_measured import measured_rows

    checked = []
    for i, r in enumerate(measured_rows(paper, str(table))):
        where = f"{r['produced_by']} row {i}"
        c = _check_row(r, where)
        _check_names(c, paper, str(table), where)
        c.update(paper=paper, table=str(table))
        checked.append(c)
    return pd.DataFrame(checked, columns=list(OURS_COLUMNS))


def side_by_side(paper: str, table: str | int, ours: pd.DataFrame | None = None) -> pd.DataFrame:
    """One table in the long format: every reported number with ours for the same printed row
    (``beside_method``, ``beside_setting``), dataset (``stands_for``), subset and metric, then our
    numbers that sit beside no printed row (under our own method and setting)."""
    table = str(table)
    _check_table(paper, table)
    rep = load_reported(paper, table)
    ours = _with_measured(paper, table, ours)
    by_key: dict[tuple, list[dict]] = {}
    for r in ours.to_dict("records") if len(ours) else []:
        if r.get("beside_method") or r.get("beside_setting"):
            key = (r["stands_for"], r["subset"], r["beside_method"], r["beside_setting"], r["metric"])
        else:
            key = (r["stands_for"], r["subset"], r["method"], r["setting"], r["metric"])
        by_key.setdefault(key, []).append(r)
    rows, used = [], set()
    for r in rep.to_dict("records"):
        key = tuple(r[k] for k in KEY)
        mine = by_key.get(key, [])
        used.add(key)
        rows.append(_row(r, mine))
    for key, mine in by_key.items():
        if key not in used:
            base = dict(zip(KEY, key, strict=True), value=math.nan, unit=mine[0]["unit"])
            rows.append(_row(base, mine))
    return pd.DataFrame(rows)


def _row(rep: Mapping, mine: list[dict]) -> dict:
    out = {k: rep[k] for k in KEY}
    out["reported"] = _fmt(rep["value"], rep["unit"])
    if mine:
        out["ours"] = "; ".join(_fmt_ours(m) for m in mine)
        out["ours_is"] = "; ".join(_our_label(m) for m in mine)
        out["ours_on"] = "; ".join(_ours_on(m) for m in mine)
        out["produced_by"] = "; ".join(sorted({m["produced_by"] for m in mine}))
    else:
        out.update(ours=NOT_RUN, ours_is="", ours_on="", produced_by="")
    return out


def paper_layout(paper: str, table: str | int, ours: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The table as the paper prints it: one line per printed (method, setting), one column per
    (dataset, subset, metric) in the paper's order, and under each printed row a line per row of
    ours beside it (first cell ``ours: <model>; <data>, n = <n>``); ours beside no printed row
    come last. Returns ``(frame, footnotes)``: ``footnotes`` maps a line of ours to its scale and
    producer. Columns that hold a single value (one dataset, one subset) are dropped from the
    header."""
    table = str(table)
    _check_table(paper, table)
    rep = load_reported(paper, table)
    ours = _with_measured(paper, table, ours)
    mine = ours.to_dict("records") if len(ours) else []
    cols: list[tuple] = []
    for r in rep.to_dict("records"):
        c = (r["dataset"], r["subset"], r["metric"])
        if c not in cols:
            cols.append(c)
    for r in mine:
        c = (r["stands_for"], r["subset"], r["metric"])
        if c not in cols:
            cols.append(c)
    show_ds = len({c[0] for c in cols}) > 1
    show_sub = len({c[1] for c in cols}) > 1
    names = [" ".join(x for x, keep in ((c[0], show_ds), (c[1] if c[1] != "all" else "", show_sub), (c[2], True))
                      if keep and x) for c in cols]
    printed: dict[tuple, dict] = {}
    for r in rep.to_dict("records"):
        line = printed.setdefault((r["method"], r["setting"]), {})
        line[(r["dataset"], r["subset"], r["metric"])] = _fmt(r["value"], r["unit"])
    beside: dict[tuple, dict[tuple, dict]] = {}
    for r in mine:
        at = (r.get("beside_method") or "", r.get("beside_setting") or "")
        if at not in printed:
            at = ("", "")
        ident = (r["method"], r.get("setting") or "", r["dataset"], str(r.get("n", "")), r["produced_by"])
        entry = beside.setdefault(at, {}).setdefault(ident, {"label": _our_label(r), "on": _ours_on(r),
                                                             "by": r["produced_by"], "cells": {}})
        entry["cells"][(r["stands_for"], r["subset"], r["metric"])] = _fmt_ours(r)
    lines, notes = [], {}

    def add(method: str, setting: str, cells: dict, is_ours: bool, note: str = "") -> None:
        out = {"method": method, "setting": setting}
        for c, name in zip(cols, names):
            out[name] = cells.get(c, "–" if not is_ours else "")
        out["_ours"] = is_ours
        out["_note"] = note
        lines.append(out)

    for (method, setting), cells in printed.items():
        add(method, setting, cells, False)
        for e in beside.get((method, setting), {}).values():
            k = notes.setdefault(e["on"] + f" (produced by {e['by']})", len(notes) + 1)
            add(e["label"], "", e["cells"], True, str(k))
    for e in beside.get(("", ""), {}).values():
        k = notes.setdefault(e["on"] + f" (produced by {e['by']})", len(notes) + 1)
        add(e["label"] + " (no printed counterpart)", "", e["cells"], True, str(k))
    frame = pd.DataFrame(lines, columns=["method", "setting", *names, "_ours", "_note"])
    if not frame["setting"].astype(bool).any():
        frame = frame.drop(columns="setting")
    return frame, {v: k for k, v in notes.items()}


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, title: str, notes: Mapping[int, str] | None = None) -> str:
    """A GitHub Markdown table of :func:`paper_layout` (the paper's rows and columns, ours on
    their own lines, marked with their footnote)."""
    cols = [c for c in df.columns if not c.startswith("_")]
    lines = [f"### {title}", "", "| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in df.to_dict("records"):
        cells = [_md_escape(r[c]) for c in cols]
        if r.get("_ours"):
            cells[0] = f"↳ {cells[0]} [{r['_note']}]"
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Printed rows: the paper's numbers as printed, in its layout. Lines starting with ↳: medlib's runs "
                 "(our model and data, named in the line) under the printed row they compare with; 95% bootstrap "
                 "interval in brackets. A printed row with no ↳ line under it: not run by us.")
    for k, text in sorted((notes or {}).items()):
        lines.append(f"[{k}] {_md_escape(text)}")
    return "\n".join(lines) + "\n"


def _tex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "–": "--", "Δ": r"$\Delta$",
           "↳": r"$\hookrightarrow$"}
    return "".join(rep.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs LaTeX table of :func:`paper_layout` (or :func:`side_by_side`) output."""
    cols = [c for c in df.columns if not c.startswith("_")]
    text_cols = {"method", "setting", "dataset", "subset", "metric"}
    spec = "".join("l" if c in text_cols else "r" for c in cols)
    out = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
           " & ".join(_tex_escape(c[:1].upper() + c[1:]) for c in cols) + r" \\", r"\midrule"]
    for r in df.to_dict("records"):
        cells = [_tex_escape(r[c]) for c in cols]
        if r.get("_ours"):
            cells[0] = r"\quad $\hookrightarrow$ " + cells[0]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", rf"\label{{{label}}}",
            r"\end{table}"]
    return "\n".join(out) + "\n"


def build_tables(out_dir: Path | None = None) -> pd.DataFrame:
    """Write every table of the three papers in the paper's layout as ``<paper>_table<id>.md`` /
    ``.tex``, its long format as ``<paper>_table<id>.csv``, and an index ``README.md``; return one
    row per table (how many reported / ours numbers)."""
    out_dir = Path(out_dir) if out_dir else results_dir("tables")
    out_dir.mkdir(parents=True, exist_ok=True)
    ours_all = load_ours()
    index = []
    md_all = ["# The papers' tables, reported beside ours", "",
              "Built by `python -m medlib.report.tables` (notebook `90_tables`) from `results/reported/`, "
              "`results/ours/` and the committed measurements (`results/segment.json`, "
              "`results/learning_study_*.json`); nothing in these files is computed here. "
              "The long format (one number a line) is `<paper>_table<id>.csv`.", ""]
    for paper, tables in TABLES.items():
        for t in tables:
            mine = ours_all[(ours_all["paper"] == paper) & (ours_all["table"] == t)]
            extra = measured_ours(paper, t)
            mine = pd.concat([mine, extra], ignore_index=True) if len(extra) else mine.reset_index(drop=True)
            long = side_by_side(paper, t, mine)
            layout, notes = paper_layout(paper, t, mine)
            title = f"{paper} Table {t}"
            md = to_markdown(layout, title, notes)
            (out_dir / f"{paper}_table{t}.md").write_text(md)
            (out_dir / f"{paper}_table{t}.tex").write_text(
                to_latex(layout, f"{title}: reported vs medlib", f"tab:{paper}-{t}"))
            long.to_csv(out_dir / f"{paper}_table{t}.csv", index=False)
            md_all.append(md)
            index.append({"paper": paper, "table": t, "rows": len(long),
                          "ours": int((long["ours"] != NOT_RUN).sum()),
                          "produced_by": ", ".join(sorted({p for p in long["produced_by"] if p}))})
    (out_dir / "README.md").write_text("\n".join(md_all))
    return pd.DataFrame(index)


MODEL_NAMES = {"tiny": "tiny Qwen2.5-VL"}
"""Our model's name in a row: the config's ``model.name_or_path`` (a hub id: its last part)."""


def our_model(cfg) -> str:
    """What our rows call the model of ``cfg`` (``tiny`` -> "tiny Qwen2.5-VL")."""
    name = cfg.model.name_or_path
    return MODEL_NAMES.get(name, str(name).rstrip("/").split("/")[-1])


def our_data(cfg) -> str:
    """What our rows call the data of ``cfg``: the embedded benchmark with its image size or
    slices ("embedded chest 112 px"), or a real dataset as our copy of it."""
    d = cfg.data
    real = {"mscxr": "MS-CXR", "chestxray8": "ChestX-ray8", "umrg": "U-MRG-14K", "m3d_seg": "M3D-Seg",
            "m3d_refseg": "M3D-RefSeg"}
    if d.source in real:
        return f"{real[d.source]} (our copy, {', '.join(d.subsets) + ' ' if d.subsets else ''}test split)"
    if cfg.paper == "medvol":
        return f"embedded {d.source} volumes, {d.n_slices} slices"
    return f"embedded {d.source} {d.image_size} px"


def ours_rows(result: Mapping, method: str, setting: str, metrics: Mapping[str, str] | Iterable[str], **labels) -> list[dict]:
    """Rows for :func:`write_ours` from one flat result (a row of
    :func:`medlib.study.ablation.run_ablation`: ``<metric>``, ``<metric>_lo``, ``<metric>_hi``, ``n``).
    ``metrics`` maps our metric names to the table's (``{"mIoU": "IoU"}``) or lists shared names;
    ``labels`` are the remaining fields (``stands_for``, ``dataset``, ``profile``, ``scale``)."""
    pairs = metrics.items() if isinstance(metrics, Mapping) else ((m, m) for m in metrics)
    out = []
    for ours, theirs in pairs:
        lo, hi = result.get(f"{ours}_lo"), result.get(f"{ours}_hi")
        out.append(dict(method=method, setting=setting, metric=theirs, value=float(result[ours]),
                        ci_low="" if lo is None else float(lo), ci_high="" if hi is None else float(hi),
                        n=int(result["n"]), **labels))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m medlib.report.tables [--out DIR]``: rebuild ``results/tables/``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m medlib.report.tables", description=main.__doc__)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default results/tables/)")
    args = ap.parse_args(argv)
    try:
        index = build_tables(args.out)
    except OursDataError as e:
        print(f"error: {e}")
        return 2
    print(index.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
