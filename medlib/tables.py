"""The papers' tables rebuilt: reported numbers beside ours, as Markdown and LaTeX.

Reported numbers come from :mod:`medlib.reported` (``results/reported/``). Ours are rows that the
notebooks write with :func:`write_ours` into ``results/ours/<paper>_table<id>__<producer>.csv``:
the reported schema plus what a reader needs to judge them (``stands_for``: the paper's dataset
the row is a stand-in for; ``profile``; ``scale``: model, data and hardware in words; ``n``;
the bootstrap 95% interval; ``produced_by``: the notebook or command). :func:`side_by_side`
aligns the two on (dataset, subset, method, setting, metric); :func:`build_tables` writes every
table of the three papers to ``results/tables/`` (notebook ``90_tables``). Nothing here computes a
metric: it only reads ``results/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from .paths import results_dir
from .reported import COLUMNS, METRICS, TABLES, load_reported

OURS_EXTRA = ("stands_for", "profile", "scale", "n", "ci_low", "ci_high", "produced_by")
OURS_COLUMNS = COLUMNS + OURS_EXTRA
KEY = ("dataset", "subset", "method", "setting", "metric")
NOT_RUN = "not run"
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
    if unit == "%" and not 0.0 <= value <= 100.0:
        raise OursDataError(f"{where}, field 'value': {value} is outside 0-100 for {metric} (in %)")
    out = {c: "" for c in OURS_COLUMNS}
    out.update({k: row[k] for k in row})
    out.update(value=value, unit=unit, source="ours", subset=row.get("subset") or "all")
    out["dataset"] = row.get("dataset") or row["stands_for"]
    for c in ("ci_low", "ci_high", "n"):
        out[c] = "" if out[c] in ("", None) or (isinstance(out[c], float) and math.isnan(out[c])) else out[c]
    return out


def write_ours(rows: Iterable[Mapping], paper: str, table: str | int, produced_by: str) -> Path:
    """Write our rows for one table (replacing what ``produced_by`` wrote before); values of
    metrics in % are percentages, like the papers print them."""
    table = str(table)
    _check_table(paper, table)
    if not _PRODUCER.match(produced_by):
        raise OursDataError(f"produced_by {produced_by!r}: use letters, digits, '_', '.', '-'")
    checked = []
    for i, r in enumerate(rows):
        c = _check_row(r, f"{paper} Table {table} row {i}")
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
            raise OursDataError(f"{path.name}: columns {list(df.columns)}, expected {list(OURS_COLUMNS)}")
        for i, r in enumerate(df.to_dict("records"), start=2):
            _check_row(r, f"{path.name}, line {i}")
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


def side_by_side(paper: str, table: str | int, ours: pd.DataFrame | None = None) -> pd.DataFrame:
    """One table: every reported row with our matching number (``stands_for`` == the reported
    dataset, same subset, method, setting, metric), then our rows that match none."""
    table = str(table)
    _check_table(paper, table)
    rep = load_reported(paper, table)
    ours = load_ours(paper, table) if ours is None else ours
    ours = ours.assign(_key=[tuple(r[k] if k != "dataset" else r["stands_for"] for k in KEY)
                             for r in ours.to_dict("records")]) if len(ours) else ours
    by_key: dict[tuple, list[dict]] = {}
    for r in ours.to_dict("records") if len(ours) else []:
        by_key.setdefault(r["_key"], []).append(r)
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
        out["ours_on"] = "; ".join(
            f"{m['dataset']} ({m['profile']}, n={m['n'] or '?'}): {m['scale']}" for m in mine
        )
        out["produced_by"] = "; ".join(sorted({m["produced_by"] for m in mine}))
    else:
        out.update(ours=NOT_RUN, ours_on="", produced_by="")
    return out


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, title: str) -> str:
    """A GitHub Markdown table (setting/method rows, reported and ours columns) with footnotes
    naming the scale of each of our numbers."""
    cols = ["dataset", "subset", "method", "setting", "metric", "reported", "ours"]
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    notes: dict[str, int] = {}
    for r in df.to_dict("records"):
        cells = [_md_escape(r[c]) for c in cols]
        if r["ours_on"]:
            k = notes.setdefault(r["ours_on"], len(notes) + 1)
            cells[-1] += f" [{k}]"
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Reported: the paper's number as printed. Ours: medlib's run; 95% bootstrap interval in brackets.")
    for text, k in notes.items():
        lines.append(f"[{k}] {_md_escape(text)}")
    return "\n".join(lines) + "\n"


def _tex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "–": "--", "Δ": r"$\Delta$"}
    return "".join(rep.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs LaTeX table of :func:`side_by_side` output."""
    cols = ["dataset", "subset", "method", "setting", "metric", "reported", "ours"]
    out = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{lllllrr}", r"\toprule",
           " & ".join(c.capitalize() for c in cols) + r" \\", r"\midrule"]
    for r in df.to_dict("records"):
        out.append(" & ".join(_tex_escape(r[c]) for c in cols) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", rf"\label{{{label}}}",
            r"\end{table}"]
    return "\n".join(out) + "\n"


def build_tables(out_dir: Path | None = None) -> pd.DataFrame:
    """Write every table of the three papers as ``<paper>_table<id>.md`` / ``.tex`` and an
    index ``README.md``; return one row per table (how many reported / ours numbers)."""
    out_dir = Path(out_dir) if out_dir else results_dir("tables")
    out_dir.mkdir(parents=True, exist_ok=True)
    ours_all = load_ours()
    index = []
    md_all = ["# The papers' tables, reported beside ours", "",
              "Built by notebook `90_tables` from `results/reported/` and `results/ours/`; "
              "nothing in these files is computed here.", ""]
    for paper, tables in TABLES.items():
        for t in tables:
            mine = ours_all[(ours_all["paper"] == paper) & (ours_all["table"] == t)]
            df = side_by_side(paper, t, mine.reset_index(drop=True))
            title = f"{paper} Table {t}"
            md = to_markdown(df, title)
            (out_dir / f"{paper}_table{t}.md").write_text(md)
            (out_dir / f"{paper}_table{t}.tex").write_text(
                to_latex(df, f"{title}: reported vs medlib", f"tab:{paper}-{t}"))
            md_all.append(md)
            index.append({"paper": paper, "table": t, "rows": len(df),
                          "ours": int((df["ours"] != NOT_RUN).sum()),
                          "produced_by": ", ".join(sorted({p for p in df["produced_by"] if p}))})
    (out_dir / "README.md").write_text("\n".join(md_all))
    return pd.DataFrame(index)


def ours_rows(result: Mapping, method: str, setting: str, metrics: Mapping[str, str] | Iterable[str], **labels) -> list[dict]:
    """Rows for :func:`write_ours` from one flat result (a row of
    :func:`medlib.experiments.run_ablation`: ``<metric>``, ``<metric>_lo``, ``<metric>_hi``, ``n``).
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
