"""The papermill batch: runs in order, skips unchanged notebooks, stops at the first failure and names it."""

import json

import pytest

from medlib import reproduce
from medlib.reproduce import NotebookFailed, run_batch, strip_notebook


def _nb(cells):
    return {
        "cells": [
            {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "source": "PROFILE = 'x'\nSEED = 0",
             "outputs": [], "execution_count": None},
        ] + [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
             for i, s in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.mark.slow
def test_batch_stops_at_failure_and_skips_unchanged(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "01_ok.ipynb").write_text(json.dumps(_nb(["x = SEED + 1", "print(PROFILE, x)"])))
    (nbdir / "02_broken.ipynb").write_text(json.dumps(_nb(["raise ValueError('deliberately broken')"])))
    (nbdir / "03_never.ipynb").write_text(json.dumps(_nb(["pass"])))
    build = tmp_path / "build"
    with pytest.raises(NotebookFailed, match=r"02_broken.*ValueError: deliberately broken"):
        run_batch("smoke", notebooks_dir=nbdir, build_dir=build, progress=False)
    executed = json.loads((build / "01_ok.ipynb").read_text())
    assert "smoke 1" in "".join(executed["cells"][-1]["outputs"][0]["text"])  # parameters injected
    assert not (build / "03_never.ipynb").exists()
    # fix the broken notebook: 01 is skipped (unchanged), 02 and 03 run
    (nbdir / "02_broken.ipynb").write_text(json.dumps(_nb(["y = 2"])))
    runs = run_batch("smoke", notebooks_dir=nbdir, build_dir=build, progress=False)
    assert [(r.name, r.status) for r in runs] == [("01_ok", "skipped"), ("02_broken", "ran"), ("03_never", "ran")]
    runs = run_batch("smoke", notebooks_dir=nbdir, build_dir=build, progress=False, force=True)
    assert all(r.status == "ran" for r in runs)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'nope'.*smoke"):
        reproduce.load_profile("nope")


def test_strip_notebook(tmp_path):
    nb = _nb(["1 + 1"])
    nb["cells"][1]["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {},
                                  "execution_count": 1}]
    nb["cells"][1]["execution_count"] = 1
    nb["metadata"]["papermill"] = {"duration": 1}
    p = tmp_path / "a.ipynb"
    p.write_text(json.dumps(nb))
    assert strip_notebook(p) is True
    clean = json.loads(p.read_text())
    assert clean["cells"][1]["outputs"] == [] and clean["cells"][1]["execution_count"] is None
    assert "papermill" not in clean["metadata"]
    assert strip_notebook(p) is False


def test_makefile_exports_the_malloc_settings_of_the_batch():
    """`make test` / `make reproduce` and `python -m medlib reproduce` give the kernels the same
    glibc settings (MALLOC_ENV), so timings measured either way agree."""
    import re

    from medlib.reproduce import MALLOC_ENV, REPO

    exported = dict(re.findall(r"^export (MALLOC_\w+) \?= (\d+)$", (REPO / "Makefile").read_text(), re.M))
    assert exported == MALLOC_ENV
