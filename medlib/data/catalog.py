"""One place that knows where each dataset lives: the embedded benchmark and real data roots.

The embedded benchmark (:func:`medlib.synthetic.build_benchmark`) and a real ``DATA_ROOT``
have the same sub-folders, so the same adapters read both:

==============  ==================================  ===================================
sub-folder      adapter                             real source
==============  ==================================  ===================================
``ms_cxr``      :func:`medlib.data.mscxr.load_mscxr`           MS-CXR (MedRPG split files)
``chestxray8``  :func:`medlib.data.chestxray8.load_chestxray8` NIH ChestX-ray8 box table
``umrg``        :func:`medlib.data.umrg.load_umrg`             U-MRG-14K (MedReasoner)
``m3d_refseg``  :func:`medlib.data.m3d.load_m3d_refseg`        M3D-RefSeg
==============  ==================================  ===================================
"""

from __future__ import annotations

from pathlib import Path

from .io import DatasetError

DATASETS = ("ms_cxr", "chestxray8", "umrg", "m3d_refseg")

# where each dataset sits inside the embedded benchmark folder
_BENCH_SUBDIR = {
    "ms_cxr": "chest/ms_cxr",
    "chestxray8": "chest/chestxray8",
    "umrg": "umrg",
    "m3d_refseg": "ct",
}


def load_dataset(name: str, root: str | Path, split: str, *, allow_outside_root: bool = False):
    """Records of one dataset split from ``root`` (the dataset's own folder); image paths that
    leave ``root`` are an error unless ``allow_outside_root``."""
    root = Path(root)
    kw = {"allow_outside_root": allow_outside_root}
    if name == "ms_cxr":
        from .mscxr import load_mscxr

        return load_mscxr(root, split, **kw)
    if name == "chestxray8":
        from .chestxray8 import load_chestxray8

        return load_chestxray8(root, split, **kw)
    if name == "umrg":
        from .umrg import load_umrg

        return load_umrg(root, split, **kw)
    if name == "m3d_refseg":
        from .m3d import load_m3d_refseg

        return load_m3d_refseg(root, split, **kw)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def benchmark_dataset_root(bench_dir: str | Path, name: str) -> Path:
    """Folder of dataset ``name`` inside a built embedded benchmark."""
    if name not in _BENCH_SUBDIR:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    return Path(bench_dir) / _BENCH_SUBDIR[name]


def load_benchmark(bench_dir: str | Path, name: str, split: str):
    """Records of one dataset split of the embedded benchmark."""
    return load_dataset(name, benchmark_dataset_root(bench_dir, name), split)


def find_real_datasets(data_root: str | Path | None) -> dict[str, Path | None]:
    """Which real datasets are present under ``data_root`` (None when absent)."""
    found: dict[str, Path | None] = dict.fromkeys(DATASETS)
    if not data_root:
        return found
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetError(f"{root}: DATA_ROOT is not a folder (set it to the folder holding {', '.join(DATASETS)})")
    for name in DATASETS:
        p = root / name
        found[name] = p if p.is_dir() else None
    return found


def real_chestxray8_box_table() -> Path | None:
    """The real NIH ``BBox_List_2017.csv.gz`` (984 boxes, no images) that ships inside the
    ``torchxrayvision`` wheel, or None when that package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(spec.submodule_search_locations[0]) / "data" / "BBox_List_2017.csv.gz"
    return p if p.is_file() else None
