"""Do two results folders hold the same metrics? The determinism check of the notebook batch: run
``make reproduce`` twice with the same seed (two clones, or one run's ``results/`` copied aside)
and compare, ``python -m medlib compare-results A B``.

Every ``.csv`` and ``.json`` under ``A`` is read with its twin under ``B``; their numbers (CSV
numeric columns, JSON numeric and boolean leaves) must agree to ``abs_tol`` (exact by default).
Wall-clock numbers and provenance are skipped: columns and keys named like seconds, times,
durations, load averages, thread counts, commits or package versions (:data:`SKIP`). Strings are
provenance (paths, commands) and are not compared. ``benchmarks/`` (timings) and ``reported/``
(the papers' numbers) are left out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: a CSV column or JSON key matching this is a timing or provenance field, not a metric
SKIP = re.compile(
    r"seconds|_s$|time|runtime|per_second|duration|date|commit|load_average|machine|threads|versions|"
    r"wall|rss|memory|pool_s",
    re.IGNORECASE,
)
#: folders of a results tree that do not come from the seeded runs
SKIP_DIRS = ("benchmarks", "reported")


@dataclass(frozen=True)
class Difference:
    file: str
    where: str
    a: Any
    b: Any

    def __str__(self) -> str:
        return f"{self.file} {self.where}: {self.a!r} != {self.b!r}"


def _numbers_differ(x: float, y: float, abs_tol: float) -> bool:
    if math.isnan(x) and math.isnan(y):
        return False
    return not math.isclose(x, y, rel_tol=0.0, abs_tol=abs_tol)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Numeric and boolean leaves of a JSON value by dotted path (keys matching :data:`SKIP` and
    everything below them left out)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not SKIP.search(str(k)):
                out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (bool, int, float)):
        out[prefix] = obj
    return out


def _compare_json(name: str, a: Path, b: Path, abs_tol: float) -> tuple[int, list[Difference]]:
    fa, fb = _flatten(json.loads(a.read_text())), _flatten(json.loads(b.read_text()))
    diffs = [Difference(name, k, fa.get(k), fb.get(k)) for k in sorted(set(fa) ^ set(fb))]
    for k in sorted(set(fa) & set(fb)):
        x, y = fa[k], fb[k]
        if isinstance(x, bool) or isinstance(y, bool):
            if x != y:
                diffs.append(Difference(name, k, x, y))
        elif _numbers_differ(float(x), float(y), abs_tol):
            diffs.append(Difference(name, k, x, y))
    return len(fa), diffs


def _compare_csv(name: str, a: Path, b: Path, abs_tol: float) -> tuple[int, list[Difference]]:
    da, db = pd.read_csv(a), pd.read_csv(b)
    if len(da) != len(db):
        return 0, [Difference(name, "rows", len(da), len(db))]
    cols = [c for c in da.columns if not SKIP.search(str(c)) and pd.api.types.is_numeric_dtype(da[c])]
    diffs = [Difference(name, f"column {c}", "present", "missing") for c in cols if c not in db.columns]
    n = 0
    for c in cols:
        if c not in db.columns:
            continue
        for i, (x, y) in enumerate(zip(da[c].tolist(), pd.to_numeric(db[c], errors="coerce").tolist())):
            n += 1
            if _numbers_differ(float(x), float(y), abs_tol):
                diffs.append(Difference(name, f"row {i} {c}", x, y))
    return n, diffs


def compare_results(a: str | Path, b: str | Path, *, abs_tol: float = 0.0) -> dict[str, Any]:
    """``{"files", "numbers", "differences"}`` for results folders ``a`` and ``b`` (see module doc)."""
    a, b = Path(a), Path(b)
    for d in (a, b):
        if not d.is_dir():
            raise FileNotFoundError(f"results folder not found: {d}")
    files, numbers, diffs = 0, 0, []
    for p in sorted(a.rglob("*")):
        rel = p.relative_to(a)
        if p.suffix not in (".csv", ".json") or not p.is_file() or rel.parts[0] in SKIP_DIRS:
            continue
        twin = b / rel
        if not twin.is_file():
            diffs.append(Difference(str(rel), "file", "present", "missing"))
            continue
        n, d = (_compare_json if p.suffix == ".json" else _compare_csv)(str(rel), p, twin, abs_tol)
        files, numbers = files + 1, numbers + n
        diffs += d
    return {"files": files, "numbers": numbers, "differences": diffs}
