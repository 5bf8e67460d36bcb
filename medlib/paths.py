"""Where things live: the repository root and paths given relative to it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def repo_path(p: str | Path) -> Path:
    """An absolute path: ``p`` itself if absolute, else relative to the repository root."""
    p = Path(p).expanduser()
    return p if p.is_absolute() else REPO / p


def figures_dir() -> Path:
    d = REPO / "figures"
    d.mkdir(exist_ok=True)
    return d


def results_dir(*parts: str) -> Path:
    d = REPO.joinpath("results", *parts)
    d.mkdir(parents=True, exist_ok=True)
    return d
