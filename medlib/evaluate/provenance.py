"""What every evaluation summary records about how it was made (STYLE.md rule 5): the git
commit, a hash of the run config, the seed, the profile, package versions and the model."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

from ..paths import portable_path

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "numpy")


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repository medlib runs from; None outside a git checkout."""
    from ..paths import REPO

    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def config_dict(config: Any) -> dict[str, Any] | None:
    """A config as a plain dict: a :class:`~medlib.train.config.RunConfig`, a dict, or None."""
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, dict):
        return config
    raise TypeError(f"config must be a RunConfig or a dict, got {type(config).__name__}")


def config_hash(config: Any) -> str | None:
    """sha256 of the config's canonical JSON (sorted keys); None without a config."""
    d = config_dict(config)
    if d is None:
        return None
    blob = json.dumps(d, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in packages:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def provenance(*, config: Any = None, seed: int = 0, profile: str | None = None,
               model_path: str | Path | None = None) -> dict[str, Any]:
    """Provenance block of a summary JSON."""
    return {
        "git_commit": git_commit(),
        "config_hash": config_hash(config),
        "seed": int(seed),
        "profile": profile,
        "model_path": portable_path(model_path),
        "python": platform.python_version(),
        "versions": package_versions(),
    }


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars/arrays as Python values, tuples as lists and non-finite floats as
    None (strict JSON)."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(jsonable(r), allow_nan=False) + "\n")
    return path
