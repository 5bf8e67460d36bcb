"""Where things live: the repository root and paths given relative to it."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def repo_path(p: str | Path) -> Path:
    """An absolute path: ``p`` itself if absolute, else relative to the repository root."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else REPO / p


def figures_dir() -> Path:
    """``figures/`` (or ``$MEDLIB_FIGURES_DIR``, which the notebook tests point elsewhere)."""
    d = Path(os.environ.get("MEDLIB_FIGURES_DIR") or REPO / "figures")
    d.mkdir(parents=True, exist_ok=True)
    return d


def results_dir(*parts: str) -> Path:
    """``results/<parts>`` (or under ``$MEDLIB_RESULTS_DIR``)."""
    d = Path(os.environ.get("MEDLIB_RESULTS_DIR") or REPO / "results").joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d
