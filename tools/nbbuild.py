"""Write a clean notebook from a list of markdown / code cells (used to author notebooks/).

Usage from Python: ``write_notebook(path, [("md", "..."), ("params", "..."), ("code", "...")])``.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> Path:
    out = []
    for i, (kind, src) in enumerate(cells):
        src = src.strip("\n")
        cid = f"c{i:02d}"
        if kind == "md":
            out.append({"cell_type": "markdown", "id": cid, "metadata": {}, "source": src})
        else:
            meta = {"tags": ["parameters"]} if kind == "params" else {}
            out.append({"cell_type": "code", "id": cid, "metadata": meta, "source": src,
                        "outputs": [], "execution_count": None})
    nb = {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    p = Path(path)
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return p
