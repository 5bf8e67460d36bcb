"""Committed notebooks carry no outputs, start with a `parameters` cell and keep logic in medlib."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", nb.name), f"{nb.name}: name must be NN_snake_case.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name}: no code cells"
    for c in code:
        assert not c.get("outputs"), f"{path.name}: a cell has outputs (run `make clean-notebooks`)"
        assert c.get("execution_count") is None, f"{path.name}: a cell has an execution count"
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), f"{path.name}: first code cell not tagged parameters"
    assert "papermill" not in nb.get("metadata", {}), f"{path.name}: papermill metadata committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_logic_lives_in_medlib(path):
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        src = "".join(c["source"])
        assert not re.search(r"^\s*class\s", src, re.M), f"{path.name}: class defined in a notebook"
        if re.search(r"^\s*def\s", src, re.M):
            assert len(src.strip().splitlines()) <= 8, f"{path.name}: function longer than a tiny plot helper"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path):
    """papermill's parameter inference (``papermill --help-notebook``, and its log at every run)
    skips a line with a second "=", e.g. one in the help comment: keep help comments free of it."""
    from papermill.translators import PythonTranslator

    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(cell["source"])
    assigned = [ln.split("=")[0].strip() for ln in src.splitlines() if "=" in ln and not ln.lstrip().startswith("#")]
    found = [p.name for p in PythonTranslator.inspect({"source": src})]
    assert found == assigned, f"{path.name}: papermill reads {found}, the cell assigns {assigned}"
