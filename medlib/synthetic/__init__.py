"""The embedded synthetic benchmark: seeded, offline, written in the real datasets' formats.

``build_benchmark(root, profile, seed)`` writes three sub-benchmarks under ``root/<profile>/``:

* ``chest/``: chest-radiograph-like images in MS-CXR and ChestX-ray8 formats
  (:mod:`medlib.synthetic.chest`);
* ``umrg/``: multi-modality 2D images with masks, two key points and implicit questions in
  U-MRG-14K format (:mod:`medlib.synthetic.multimodal`);
* ``ct/``: CT-like volumes with organ and lesion masks and explicit / implicit queries in
  M3D-RefSeg format (:mod:`medlib.synthetic.ct`).

The adapters in :mod:`medlib.data` read them exactly as they read the real datasets.
"""

from __future__ import annotations

import json
from pathlib import Path

PROFILES: dict[str, dict] = {
    # unit tests: seconds
    "tiny": {
        "chest": {"sizes": {"train": 12, "val": 4, "test": 6}, "image_size": 128},
        "umrg": {"sizes": {"train": 8, "val": 4, "test": 4}, "image_size": 128},
        "ct": {"sizes": {"train": 3, "val": 1, "test": 2}, "shape": (32, 64, 64)},
    },
    # CPU profile of the notebooks
    "smoke": {
        "chest": {"sizes": {"train": 600, "val": 100, "test": 200}, "image_size": 224},
        "umrg": {"sizes": {"train": 300, "val": 60, "test": 100}, "image_size": 224},
        "ct": {"sizes": {"train": 32, "val": 8, "test": 16}, "shape": (48, 96, 96)},
    },
    # larger synthetic study for GPU users
    "full": {
        "chest": {"sizes": {"train": 5000, "val": 500, "test": 1000}, "image_size": 448},
        "umrg": {"sizes": {"train": 3000, "val": 300, "test": 600}, "image_size": 448},
        "ct": {"sizes": {"train": 300, "val": 50, "test": 100}, "shape": (64, 256, 256)},
    },
}

PARTS = ("chest", "umrg", "ct")


def benchmark_dir(root: str | Path, profile: str = "smoke", seed: int = 0) -> Path:
    from ..paths import repo_path

    return repo_path(root) / f"{profile}_seed{seed}"


def build_benchmark(
    root: str | Path, profile: str = "smoke", seed: int = 0, parts=PARTS, overwrite: bool = False
) -> dict:
    """Write the benchmark (idempotent: an existing complete build is reused unless
    ``overwrite``). Returns the summary also stored in ``summary.json``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown benchmark profile {profile!r}; choose one of {sorted(PROFILES)}")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown benchmark parts {sorted(unknown)}; choose from {PARTS}")
    out = benchmark_dir(root, profile, seed)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() and not overwrite else {}
    cfg = PROFILES[profile]
    for part in parts:
        if part in summary:
            continue
        if part == "chest":
            from .chest import generate_chest

            summary[part] = generate_chest(out / "chest", seed=seed, **cfg["chest"])
        elif part == "umrg":
            from .multimodal import generate_umrg

            summary[part] = generate_umrg(out / "umrg", seed=seed, **cfg["umrg"])
        elif part == "ct":
            from .ct import generate_ct

            summary[part] = generate_ct(out / "ct", seed=seed, **cfg["ct"])
        out.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))
    return summary
