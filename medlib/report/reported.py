"""The three papers' own numbers, as data: ``results/reported/<paper>_table<id>.csv``.

Every row is one number as printed in one table of one paper (``source == "reported"``), in long
format; ``results/reported/README.md`` documents the schema, where each table sits in the paper
and how the tables garbled by text extraction were read. Notebooks put these next to medlib's own
measurements; they are never produced by medlib.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

import pandas as pd

from medlib.paths import REPO

COLUMNS = (
    "paper",
    "table",
    "dataset",
    "subset",
    "method",
    "setting",
    "metric",
    "value",
    "unit",
    "source",
    "note",
)
PAPERS = ("medground-r1", "medreasoner", "medvol-r1")
TABLES: dict[str, tuple[str, ...]] = {
    "medground-r1": ("1", "2", "3", "4"),
    "medreasoner": ("2", "3", "4", "5", "6"),
    "medvol-r1": ("1", "2a", "2b"),
}
# metric name as printed -> unit; meanings per paper are in results/reported/README.md
METRICS: dict[str, str] = {
    "mIoU": "%",  # MedGround-R1: mean box IoU
    "Acc": "%",  # MedGround-R1: fraction of boxes with IoU > 0.5
    "IoU": "%",  # MedReasoner: mean box IoU; MedVol-R1: volumetric mask IoU
    "pDice": "%",  # MedReasoner: Dice of the two key-point discs
    "Dice": "%",  # MedReasoner: MedSAM2 mask vs ground-truth mask
    "DSC": "%",  # MedVol-R1: volumetric Dice
    "refusals": "count",  # MedReasoner "# Ref.": answers without a box
}
NO_VALUE = "no value:"  # a row whose value is empty must have a note starting with this
ENV_VAR = "MEDGROUND_REPORTED_DIR"


class ReportedDataError(ValueError):
    """A reported-numbers CSV breaks the schema; the message names the file, row and field."""


def reported_dir() -> Path:
    """The folder of the reported CSVs: ``$MEDGROUND_REPORTED_DIR`` if set, else the checkout's."""
    override = os.environ.get(ENV_VAR)
    d = Path(override).expanduser() if override else REPO / "results" / "reported"
    if not d.is_dir():
        raise FileNotFoundError(
            f"reported numbers folder {d} not found: use a repository checkout (pip install -e .) "
            f"or set {ENV_VAR} to a copy of results/reported."
        )
    return d


def _check_paper(paper: str) -> str:
    if paper not in TABLES:
        raise ValueError(f"unknown paper {paper!r}; choose one of {list(PAPERS)}")
    return paper


def _tables_matching(paper: str, table: str | int) -> list[str]:
    """Table ids of ``paper`` matching ``table``: exact ("2a"), or "2" for all of 2a, 2b."""
    t = str(table).strip().lower().removeprefix("table").strip()
    hits = [x for x in TABLES[paper] if x == t] or [
        x for x in TABLES[paper] if x.startswith(t) and x[len(t) :].isalpha()
    ]
    return hits


def list_tables(paper: str | None = None) -> list[tuple[str, str]]:
    """All (paper, table) pairs that have a CSV, optionally for one paper."""
    papers = PAPERS if paper is None else (_check_paper(paper),)
    return [(p, t) for p in papers for t in TABLES[p]]


def reported_csv(paper: str, table: str | int) -> Path:
    """Path of one table's CSV (``table`` must name exactly one table, e.g. "2a")."""
    hits = _tables_matching(_check_paper(paper), table)
    if len(hits) != 1:
        raise ValueError(f"{paper} has no single table {table!r}; its tables are {list(TABLES[paper])}")
    return reported_dir() / f"{paper}_table{hits[0]}.csv"


def _row_error(path: Path, line: int, field: str, msg: str) -> ReportedDataError:
    return ReportedDataError(f"{path.name}, line {line}, field {field!r}: {msg}")


def _validate(df: pd.DataFrame, path: Path, paper: str, table: str) -> pd.DataFrame:
    if tuple(df.columns) != COLUMNS:
        raise ReportedDataError(f"{path.name}: columns {list(df.columns)}, expected {list(COLUMNS)}")
    values = []
    for i, r in enumerate(df.itertuples(index=False), start=2):  # line 1 is the header
        for field, want in (("paper", paper), ("table", table), ("source", "reported")):
            if getattr(r, field) != want:
                raise _row_error(path, i, field, f"{getattr(r, field)!r}, expected {want!r}")
        if r.metric not in METRICS:
            raise _row_error(path, i, "metric", f"{r.metric!r} is not one of {list(METRICS)}")
        if r.unit != METRICS[r.metric]:
            raise _row_error(path, i, "unit", f"{r.unit!r}, expected {METRICS[r.metric]!r} for {r.metric}")
        if r.value == "":
            if not r.note.startswith(NO_VALUE):
                raise _row_error(path, i, "value", f"empty, but the note does not start with {NO_VALUE!r}")
            values.append(math.nan)
            continue
        try:
            v = float(r.value)
        except ValueError:
            raise _row_error(path, i, "value", f"{r.value!r} is not a number") from None
        if not math.isfinite(v) or r.note.startswith(NO_VALUE):
            raise _row_error(path, i, "value", f"{r.value!r} with note {r.note[:40]!r}")
        values.append(v)
    df = df.copy()
    df["value"] = values
    return df


@cache
def _read(path: Path, paper: str, table: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"reported table {path} is missing (expected for {paper} Table {table}).")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return _validate(df, path, paper, table)


def load_reported(paper: str | None = None, table: str | int | None = None) -> pd.DataFrame:
    """The reported numbers as one long DataFrame (columns ``COLUMNS``; ``value`` float, NaN
    where the paper gives none), filtered to one paper and/or table ("2" matches 2a and 2b)."""
    papers = PAPERS if paper is None else (_check_paper(paper),)
    pairs = []
    for p in papers:
        ts = TABLES[p] if table is None else _tables_matching(p, table)
        pairs += [(p, t) for t in ts]
    if not pairs:
        raise ValueError(
            f"no table {table!r} in {list(papers)}; tables: {dict((p, TABLES[p]) for p in papers)}"
        )
    d = reported_dir()
    frames = [_read(d / f"{p}_table{t}.csv", p, t) for p, t in pairs]
    return pd.concat(frames, ignore_index=True)


def reported_value(
    paper: str,
    table: str | int,
    method: str,
    metric: str,
    dataset: str | None = None,
    setting: str | None = None,
    subset: str = "all",
) -> float:
    """One reported number (NaN where the paper gives none). Labels are as printed, e.g.
    ``reported_value("medground-r1", 1, "Ours", "mIoU", dataset="MS-CXR") == 79.02``.
    Raises LookupError naming the options when the filters match no row or several."""
    df = load_reported(paper, table)
    want = {"method": method, "metric": metric, "subset": subset, "dataset": dataset, "setting": setting}
    sel = df
    for col, val in want.items():
        if val is None:
            continue
        nxt = sel[sel[col] == val]
        if nxt.empty:
            raise LookupError(
                f"{paper} Table {table}: no row with {col}={val!r}; options: {sorted(sel[col].unique())}"
            )
        sel = nxt
    if len(sel) > 1:
        varying = {
            c: sorted(sel[c].unique()) for c in ("table", "dataset", "setting") if sel[c].nunique() > 1
        }
        raise LookupError(f"{paper} Table {table} {method} {metric}: {len(sel)} rows; narrow with {varying}")
    return float(sel["value"].iloc[0])
