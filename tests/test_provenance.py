"""One provenance writer and one JSON / JSONL writer for the whole package (medlib.provenance)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from medlib.provenance import PACKAGES, config_hash, provenance, write_json, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def test_provenance_records_the_callers_fields_then_commit_and_versions():
    p = provenance(stage="sft", seed=np.int64(3), config={"b": 1, "a": 2}, model_path=ROOT / "runs" / "x")
    assert p["stage"] == "sft" and p["seed"] == 3 and type(p["seed"]) is int
    assert p["config_hash"] == config_hash({"a": 2, "b": 1})  # key order does not matter
    assert p["model_path"] == "runs/x"  # relative to the repository, no machine path
    assert p["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", p["git_commit"])
    assert set(p["versions"]) == set(PACKAGES) and p["versions"]["numpy"] == np.__version__
    assert "timestamp" not in p and "machine" not in p  # only when asked: results stay comparable
    q = provenance(timestamp=True, machine=True)
    assert q["timestamp"].endswith("+00:00") and q["machine"]["cpus_usable"] >= 1


def test_json_writers_take_the_path_first_and_write_strict_json(tmp_path):
    obj = {"a": np.float32(0.5), "nan": float("nan"), "arr": np.arange(3), "t": (1, 2), "p": Path("x/y")}
    out = write_json(tmp_path / "deep" / "s.json", obj)
    assert out == tmp_path / "deep" / "s.json"
    assert json.loads(out.read_text()) == {"a": 0.5, "nan": None, "arr": [0, 1, 2], "t": [1, 2], "p": "x/y"}
    rows = write_jsonl(tmp_path / "p.jsonl", [{"x": np.int64(1)}, {"x": float("inf")}])
    assert [json.loads(line) for line in rows.read_text().splitlines()] == [{"x": 1}, {"x": None}]


def test_no_other_module_writes_its_own_provenance():
    """git commits and package versions are read in medlib.provenance only."""
    others = []
    for p in sorted((ROOT / "medlib").rglob("*.py")):
        if p.name == "provenance.py" and p.parent.name == "medlib":
            continue
        text = p.read_text(encoding="utf-8")
        if "rev-parse" in text or re.search(r"\bmd\.version\(|metadata\.version\(", text):
            others.append(str(p.relative_to(ROOT)))
    assert others == [], f"provenance read outside medlib.provenance: {others}"
