"""Getting the real datasets into ``DATA_ROOT`` and checking them: ``python -m medlib data``.

``fetch NAME --root DATA_ROOT`` downloads what is openly hosted on the Hugging Face hub
(M3D-RefSeg; U-MRG-14K given its dataset id) with :func:`huggingface_hub.snapshot_download` into
``DATA_ROOT/<folder>``; for the credentialed or manual sources (MS-CXR on PhysioNet, the NIH
ChestX-ray8 images) it prints the steps instead. ``check --root DATA_ROOT`` reads every split of
every dataset present with medlib's own adapters and reports record counts, or the adapter's
error naming the file and row. Hub ids are the ones the papers' code reads (docs/offline_assets.md#the-papers-datasets;
module docstrings of :mod:`medlib.data.m3d`, :mod:`medlib.data.umrg`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .io import DatasetError


@dataclass(frozen=True)
class Source:
    folder: str  # sub-folder of DATA_ROOT the adapter reads
    paper: str
    origin: str
    hub_id: str | None = None  # a Hugging Face dataset repo, when openly hosted
    manual: str = ""  # steps for sources that need credentials or a manual download
    splits: tuple[str, ...] = ("train", "val", "test")


SOURCES: dict[str, Source] = {
    "ms_cxr": Source(
        "ms_cxr", "MedGround-R1", "PhysioNet MS-CXR v1.1.0 (credentialed) + MIMIC-CXR-JPG images",
        manual=(
            "1. Get PhysioNet credentials and sign the MS-CXR and MIMIC-CXR-JPG data use agreements.\n"
            "2. wget -r -N -c -np --user YOUR_USER --ask-password https://physionet.org/files/ms-cxr/1.1.0/\n"
            "3. Download the MIMIC-CXR-JPG images the CSV names (column 'path') under the same folder,\n"
            "   or MedRPG's split files (github eraserNut/MedRPG, data/MS_CXR/MS_CXR_{train,val,test}.pth)\n"
            "   with their 640 x 640 images.\n"
            "4. Put the CSV / split files in DATA_ROOT/ms_cxr and run: python -m medlib data check --root DATA_ROOT"
        ),
    ),
    "chestxray8": Source(
        "chestxray8", "MedGround-R1", "NIH ChestX-ray8 (ChestX-ray14) box table + images",
        manual=(
            "1. Download BBox_List_2017.csv and the images/ folder from the NIH box\n"
            "   (https://nihcc.app.box.com/v/ChestXray-NIHCC), or only the 880 boxed images.\n"
            "2. Put them in DATA_ROOT/chestxray8 (BBox_List_2017.csv, images/<Image Index>.png)\n"
            "   and run: python -m medlib data check --root DATA_ROOT"
        ),
    ),
    "umrg": Source(
        "umrg", "MedReasoner", "U-MRG-14K, MedReasoner's release (Parquet, train/test)",
        manual=(
            "1. Find the dataset repository in the Hugging Face collection huggingface.co/collections/zzzyzh/u-mrg\n"
            "   (linked from github PRIS-CV/MedReasoner).\n"
            "2. python -m medlib data fetch umrg --root DATA_ROOT --hub-id <that dataset id>\n"
            "   (or put train/test Parquet files in DATA_ROOT/umrg by hand), then\n"
            "   python -m medlib data check --root DATA_ROOT"
        ),
        splits=("train", "test"),
    ),
    "m3d_refseg": Source("m3d_refseg", "MedVol-R1 / MedGround-R1", "M3D-RefSeg (BAAI-DCAI/M3D)",
                         hub_id="GoodBaiBai88/M3D-RefSeg", splits=("train", "test")),
}


def fetch(name: str, data_root: str | Path, hub_id: str | None = None) -> Path | str:
    """Download dataset ``name`` into ``data_root/<folder>`` when it is openly hosted (returns the
    folder); otherwise return the manual steps as text. ``hub_id`` overrides the default repo."""
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {list(SOURCES)}")
    src = SOURCES[name]
    repo = hub_id or src.hub_id
    if repo is None:
        return f"{name} ({src.origin}) needs credentials or a manual download:\n{src.manual}"
    target = Path(data_root) / src.folder
    target.mkdir(parents=True, exist_ok=True)
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=repo, repo_type="dataset", local_dir=str(target))
    except Exception as e:  # network, auth or a moved repo: one clear message
        raise DatasetError(
            f"could not download {repo} into {target}: {type(e).__name__}: {e}. Download it by hand "
            f"(huggingface-cli download {repo} --repo-type dataset --local-dir {target}) or pass "
            f"--hub-id if the repository moved."
        ) from e
    return target


def check(data_root: str | Path) -> list[dict]:
    """Read every split of every dataset present under ``data_root`` with medlib's adapters.
    One row per (dataset, split): ``records`` (count) or ``error`` (the adapter's message)."""
    from .catalog import find_real_datasets, load_dataset

    rows = []
    for name, path in find_real_datasets(data_root).items():
        if path is None:
            rows.append({"dataset": name, "split": "", "records": None, "error": "absent"})
            continue
        for split in SOURCES[name].splits:
            try:
                n = len(load_dataset(name, path, split))
                rows.append({"dataset": name, "split": split, "records": n, "error": ""})
            except (DatasetError, FileNotFoundError, ValueError) as e:
                rows.append({"dataset": name, "split": split, "records": None, "error": str(e)})
    return rows
