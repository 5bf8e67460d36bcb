"""Each notebook is a jupytext pair: notebooks/NN_name.ipynb (run by papermill) and NN_name.py
(percent format, linted by ruff). The two must hold the same cells, or an edit on one side is lost."""

import json
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="jupytext is a dev dependency: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    def src(s):
        return s if isinstance(s, str) else "".join(s)

    return [(c["cell_type"], src(c["source"]), list(c.get("metadata", {}).get("tags", []))) for c in nb["cells"]]


def test_every_notebook_has_its_pair_and_no_pair_is_orphaned():
    ipynb = {p.stem for p in NOTEBOOKS}
    py = {p.stem for p in NB_DIR.glob("*.py")}
    assert ipynb, "no notebooks found"
    assert not ipynb - py, f"notebooks without a .py pair: {sorted(ipynb - py)} (run `make sync`)"
    assert not py - ipynb, f".py files without a notebook: {sorted(py - ipynb)} (run `make sync`)"


def test_pairing_is_configured_for_the_folder():
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    path = find_jupytext_configuration_file(str(NB_DIR))
    assert path, "notebooks/ has no jupytext configuration"
    cfg = load_jupytext_configuration_file(path)
    formats = cfg.formats if isinstance(cfg.formats, str) else ",".join(cfg.formats)
    assert formats == "ipynb,py:percent", f"{path}: formats {formats!r}, want 'ipynb,py:percent'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_holds_the_same_cells(path):
    py = path.with_suffix(".py")
    nb_cells = _cells(json.loads(path.read_text()))
    py_cells = _cells(jupytext.read(py, fmt="py:percent"))
    assert len(nb_cells) == len(py_cells), (
        f"{path.name} has {len(nb_cells)} cells, {py.name} {len(py_cells)}: run `make sync` "
        "(it keeps the newer of the two)")
    for i, (a, b) in enumerate(zip(nb_cells, py_cells)):
        assert a == b, f"cell {i} differs between {path.name} and {py.name}: run `make sync` (it keeps the newer of the two)"
