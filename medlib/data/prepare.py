"""Getting the real datasets into ``DATA_ROOT`` and checking them: ``python -m medlib data``.

``fetch NAME --root DATA_ROOT`` downloads what is openly hosted on the Hugging Face hub
(M3D-RefSeg; U-MRG-14K given its dataset id) with :func:`huggingface_hub.snapshot_download` into
``DATA_ROOT/<folder>``; for the credentialed or manual sources (MS-CXR on PhysioNet, the NIH
ChestX-ray8 images) it prints the steps instead. ``check --root DATA_ROOT`` reads every split of
every dataset present with medlib's own adapters, opens every image, mask and volume the records
name, and reports record counts, boxes clipped to their image and the bad files (or the adapter's
error naming the file and row). Hub ids are the ones the papers' code reads (docs/offline_assets.md#the-papers-datasets; module docstrings of :mod:`medlib.data.m3d`, :mod:`medlib.data.umrg`).
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


def open_record(rec) -> None:
    """Read a record's image or volume and its mask, as training would: the boxes are checked
    against the image (outside: error; partly outside: clipped and noted), a 2D mask must have
    the image's size, a volume must be finite and its mask of the same shape."""
    from .records import Grounding3D

    if isinstance(rec, Grounding3D):
        vol, mask = rec.load_volume(), rec.load_mask()
        if mask.shape != vol.shape:
            raise DatasetError(f"{rec.mask_path}: mask shape {mask.shape} differs from volume {rec.volume_path} "
                               f"shape {vol.shape}")
        return
    img = rec.load_image()
    if rec.mask_path is not None:
        m = rec.load_mask()
        if m.shape[:2] != img.shape[:2]:
            raise DatasetError(f"{rec.mask_path}: mask is {m.shape[1]}x{m.shape[0]} but image {rec.image_path} is "
                               f"{img.shape[1]}x{img.shape[0]}")


def check(data_root: str | Path, *, open_files: bool = True, allow_outside_root: bool = False,
          examples: int = 3) -> list[dict]:
    """Read every split of every dataset present under ``data_root`` with medlib's adapters and
    (``open_files``) open every image, mask and volume the records name (:func:`open_record`).
    One row per (dataset, split): ``records`` (count) or ``error`` (the adapter's message),
    ``bad`` (records whose files fail, with up to ``examples`` of their messages in
    ``problems``) and ``clipped`` (boxes clipped to their image)."""
    from .catalog import find_real_datasets, load_dataset
    from .checks import CLIPPED

    rows = []
    for name, path in find_real_datasets(data_root).items():
        if path is None:
            rows.append({"dataset": name, "split": "", "records": None, "error": "absent", "bad": 0, "clipped": 0,
                         "problems": []})
            continue
        for split in SOURCES[name].splits:
            row = {"dataset": name, "split": split, "records": None, "error": "", "bad": 0, "clipped": 0,
                   "problems": []}
            try:
                recs = load_dataset(name, path, split, allow_outside_root=allow_outside_root)
            except (DatasetError, FileNotFoundError, ValueError) as e:
                rows.append(row | {"error": str(e)})
                continue
            row["records"] = len(recs)
            for r in recs if open_files else []:
                try:
                    open_record(r)
                except DatasetError as e:
                    row["bad"] += 1
                    if len(row["problems"]) < examples:
                        row["problems"].append(str(e))
            row["clipped"] = sum(int(r.meta.get(CLIPPED, 0)) for r in recs)
            rows.append(row)
    return rows
