"""Every notebook executes end to end with papermill at its smallest size (CI tier of STYLE.md)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLIB_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    params = {"PROFILE": "tiny", "SEED": 0, "BENCH_ROOT": str(tmp_path / "data"), "DATA_ROOT": ""}
    pm.execute_notebook(str(path), str(tmp_path / path.name), parameters=params, cwd=str(path.parent),
                        kernel_name="python3", progress_bar=False)
    figures = list((tmp_path / "figures").glob("*.png"))
    assert figures or path.stem.startswith("9"), f"{path.name} saved no figure"
    assert os.path.getsize(tmp_path / path.name) > 0
