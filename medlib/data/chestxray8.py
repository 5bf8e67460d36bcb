"""ChestX-ray8 boxes (Wang et al. 2017; NIH ``BBox_List_2017.csv``) as MedRPG uses them.

MedGround-R1 (Sec. 4, "Datasets"): 984 hand-labelled boxes over eight findings; following
MedRPG the finding label is the query, giving image-text-box triples.

Layout: ``root/BBox_List_2017.csv`` (or ``.csv.gz``) and the PNGs in ``root/images/``. The
file's header is ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` (the box title itself holds
commas) and each row is ``image, label, x, y, w, h`` in pixels of the 1024x1024 PNG; empty
trailing fields are allowed. Boxes become xyxy; the query is the label in lower case, as in
MedRPG's split files (``"Atelectasis"`` -> ``"atelectasis"``); ``label`` keeps the original.

Splits: a list file per split (one image name a line) when there is one, else a
deterministic split by patient (:func:`patient_split`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
from collections.abc import Mapping
from pathlib import Path

from .checks import fit_to_image_file, inside_root
from .io import DatasetError
from .records import Grounding2D

DATASET = "chestxray8"
CSV_NAMES = ("BBox_List_2017.csv", "BBox_List_2017.csv.gz")
#: The eight findings with boxes.
FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltrate",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
)
#: Deterministic split fractions by patient (about MedRPG's 70/20/10 sizes, test larger).
SPLIT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


def patient_split(patient_id: str, fractions: Mapping[str, float] = SPLIT_FRACTIONS) -> str:
    """Deterministic split of a patient: ``u`` = first 8 hex digits of SHA-256(patient id)
    / 2**32, uniform in [0, 1); the split is the first whose cumulative fraction exceeds u
    (default: train u < 0.7, val u < 0.8, test otherwise). Every image of a patient lands
    in the same split, so no patient is in two splits."""
    u = int(hashlib.sha256(str(patient_id).encode()).hexdigest()[:8], 16) / 2**32
    total = sum(fractions.values())
    acc = 0.0
    for name, frac in fractions.items():
        acc += frac / total
        if u < acc:
            return name
    return list(fractions)[-1]


def patient_of(image_index: str) -> str:
    """NIH patient id: the part of the image name before ``_`` (``00013118_008.png`` -> ``00013118``)."""
    return image_index.split("_", 1)[0]


def find_bbox_csv(root: Path) -> Path:
    """``root`` itself when it is a file, else ``root/BBox_List_2017.csv[.gz]``."""
    if root.is_file():
        return root
    if not root.is_dir():
        raise DatasetError(f"{root}: ChestX-ray8 root directory not found")
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"{root}: no {CSV_NAMES[0]} (or {CSV_NAMES[1]}) found")


def _read_text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
                return f.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e


def read_bbox_csv(path: Path) -> list[dict]:
    """Parse ``BBox_List_2017.csv`` into dicts ``image, label, box (xyxy), line``; one
    ``DatasetError`` naming the file and line for any malformed row."""
    rows = list(csv.reader(io.StringIO(_read_text(path))))
    if not rows or [c.strip() for c in rows[0][:2]] != ["Image Index", "Finding Label"]:
        got = ",".join(rows[0]) if rows else "<empty file>"
        raise DatasetError(
            f"{path}: header must start with 'Image Index,Finding Label,Bbox [x,y,w,h]', got {got!r}"
        )
    out = []
    for i, row in enumerate(rows[1:], start=1):
        line = i + 1
        where = f"{path}, line {line} (data row {i})"
        if not any(c.strip() for c in row):
            continue  # blank line
        if len(row) < 6:
            raise DatasetError(
                f"{where}: expected 6 fields (Image Index, Finding Label, x, y, w, h), found {len(row)}"
            )
        if any(c.strip() for c in row[6:]):
            raise DatasetError(f"{where}: unexpected non-empty field(s) after h: {row[6:]}")
        image, label = row[0].strip(), row[1].strip()
        if not image or not label:
            raise DatasetError(f"{where}: empty Image Index or Finding Label")
        vals = []
        for name, v in zip(("x", "y", "w", "h"), row[2:6]):
            try:
                x = float(v)
            except ValueError:
                raise DatasetError(f"{where}: {name} {v!r} is not a number") from None
            if not math.isfinite(x):
                raise DatasetError(f"{where}: {name} {v!r} is not finite")
            vals.append(x)
        x, y, w, h = vals
        if w <= 0 or h <= 0:
            raise DatasetError(f"{where}: box width and height must be > 0, got w={w:g}, h={h:g}")
        out.append({"image": image, "label": label, "box": (x, y, x + w, y + h), "line": line})
    return out


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: split list file not found")
    return {ln.strip() for ln in _read_text(path).splitlines() if ln.strip()}


def load_chestxray8(
    root: str | Path,
    split: str | None = None,
    split_files: Mapping[str, str | Path] | None = None,
    *,
    check_images: bool = False,
    allow_outside_root: bool = False,
) -> list[Grounding2D]:
    """ChestX-ray8 box records, one per CSV row (query = finding label, lower case).

    ``split=None`` returns every row (split ``"all"``). Otherwise the images of the split
    are, in order of preference: those listed in ``split_files[split]``; those in
    ``root/{split}_list.txt`` (NIH ships ``train_val_list.txt`` and ``test_list.txt``);
    else the rows whose patient :func:`patient_split` assigns to ``split``.
    ``image_size`` stays ``None`` (the CSV has no size; the NIH PNGs are 1024x1024). Boxes are
    checked against the image file when it is there (else when it is read): outside it is an
    error naming the file and line, partly outside is clipped and noted
    (:func:`medlib.data.checks.fit_boxes`). An image name that leaves ``images/`` is an error
    unless ``allow_outside_root``.
    """
    root = Path(root)
    csv_path = find_bbox_csv(root)
    base = csv_path.parent if root.is_file() else root
    rows = read_bbox_csv(csv_path)

    keep = None
    if split is not None:
        if split_files is not None:
            if split not in split_files:
                raise DatasetError(
                    f"split_files has no entry for split {split!r} (has {sorted(split_files)})"
                )
            keep = _read_list(Path(split_files[split]))
        elif (base / f"{split}_list.txt").is_file():
            keep = _read_list(base / f"{split}_list.txt")
        elif split not in SPLIT_FRACTIONS:
            raise DatasetError(
                f"{base}: no {split}_list.txt and {split!r} is not one of the patient splits {list(SPLIT_FRACTIONS)}"
            )

    out = []
    for r in rows:
        pid = patient_of(r["image"])
        if split is not None:
            if keep is not None and r["image"] not in keep:
                continue
            if keep is None and patient_split(pid) != split:
                continue
        stem = r["image"].rsplit(".", 1)[0]
        where = f"{csv_path}, line {r['line']}"
        rec = Grounding2D(
            sample_id=f"cxr8_{stem}_{r['label'].lower()}",
            dataset=DATASET,
            split=split or "all",
            image_path=inside_root(base / "images" / r["image"], base, where, allow_outside_root),
            query=r["label"].lower(),
            boxes=[r["box"]],
            label=r["label"],
            meta={"patient_id": pid, "line": r["line"], "source": csv_path.name, "where": where},
        )
        fit_to_image_file(rec)
        out.append(rec)
    if check_images:
        missing = [r.image_path for r in out if not r.image_path.exists()]
        if missing:
            raise DatasetError(
                f"{len(missing)} of {len(out)} ChestX-ray8 images not found, e.g. {missing[0]}"
            )
    return out
