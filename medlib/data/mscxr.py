"""MS-CXR phrase grounding (Boecking et al. 2022) as MedRPG and MedGround-R1 use it.

MedGround-R1 (Sec. 4, "Datasets"): 1,153 image-phrase-box triples, 890 after MedRPG's filter
that keeps only phrases with exactly one box; the query is the phrase (``label_text``).

``load_mscxr(root, split)`` reads the first of these that exists in ``root`` (or the one
``format`` names):

``medrpg`` - MedRPG's split files ``MS_CXR_{split}.pth`` (github eraserNut/MedRPG,
    ``data/MS_CXR``: 638 / 85 / 167 = 890 rows, the split MedGround-R1 evaluates on) or the
    same rows as ``MS_CXR_{split}.json`` (what the synthetic benchmark writes): a list of
    rows in MedRPG's split-tuple order ``anno_id, image_id, category_id, img_file, bbox,
    width, height, phrase``, either as JSON objects with those keys or as lists. ``bbox`` is
    ``[x, y, w, h]`` in pixels of the image file ``img_file`` (MedRPG's released files hold
    640x640 JPEGs while ``width``/``height`` are the DICOM size, so the record leaves
    ``image_size`` empty and keeps ``width``/``height`` as ``meta["annotated_size"]``).
    ``category_id`` follows MedRPG's ``ID_Categories`` (:data:`MSCXR_CATEGORIES`).
``medground`` - ``{split}.json`` or ``cxr_{split}.json`` (MedGround-R1 / VLM-R1 rows):
    ``{"image", "problem", "solution": [x1, y1, x2, y2], "normalized_solution"}``; the
    phrase is ``problem`` without MedGround-R1's question prefix.
``csv`` - the official ``MS_CXR_Local_Alignment_v1.*.csv``: ``dicom_id, category_name,
    label_text, path, x, y, w, h, image_width, image_height`` (+ ``split`` in v1.1.0); boxes
    in pixels of the MIMIC-CXR-JPG image ``path`` (v1.1.0's split is not MedRPG's split).
    Rows of one (dicom_id, label_text) form
    one phrase; without a ``split`` column the split is :func:`patient_split` of the MIMIC
    subject id (``p<8 digits>`` in ``path``).

Image paths are ``image_root / <relative path>`` (``image_root`` defaults to ``root``; for a
MedRPG checkout pass ``root=data/MS_CXR, image_root=ln_data/MS_CXR``).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checks import fit_boxes, fit_to_image_file, inside_root, where_of
from .chestxray8 import patient_split
from .io import DatasetError
from .records import Grounding2D

DATASET = "ms_cxr"

#: MedRPG's ``ID_Categories`` (datasets/data_loader.py), the eight MS-CXR finding classes.
MSCXR_CATEGORIES: dict[int, str] = {
    1: "Cardiomegaly",
    2: "Lung Opacity",
    3: "Edema",
    4: "Consolidation",
    5: "Pneumonia",
    6: "Atelectasis",
    7: "Pneumothorax",
    8: "Pleural Effusion",
}
MEDRPG_FIELDS = ("anno_id", "image_id", "category_id", "img_file", "bbox", "width", "height", "phrase")
CSV_COLUMNS = (
    "dicom_id",
    "category_name",
    "label_text",
    "path",
    "x",
    "y",
    "w",
    "h",
    "image_width",
    "image_height",
)
#: MedGround-R1's question (eval/test_rec_r1_med_qwen25.py logs); the phrase follows it.
MEDGROUND_QUESTION = "Please provide the bounding box coordinate of the region this sentence describes: "
FORMATS = ("auto", "medrpg", "medground", "csv")


def load_mscxr(
    root: str | Path,
    split: str,
    *,
    format: str = "auto",  # noqa: A002 - the natural name for the user
    one_box_per_phrase: bool = True,
    image_root: str | Path | None = None,
    check_images: bool = False,
    allow_outside_root: bool = False,
) -> list[Grounding2D]:
    """MS-CXR records of one split (``"train"``, ``"val"``, ``"test"``).

    ``one_box_per_phrase`` applies MedRPG's filter (paper: 1,153 -> 890): phrases with more
    than one box are dropped; with ``False`` they are kept as one record with several boxes.
    ``check_images`` raises when an image file is missing (images are otherwise read lazily).
    Boxes are checked against their image (the CSV's size, or the image file's when it is
    there; else when the image is read): outside it is an error naming the file and row, partly
    outside is clipped and noted (:func:`medlib.data.checks.fit_boxes`). An image path that
    leaves the image root is an error unless ``allow_outside_root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: MS-CXR root directory not found")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    img_root = Path(image_root) if image_root is not None else root
    fmt, path = _find_source(root, split, format)
    if fmt == "medrpg":
        records = _read_medrpg(path, split, img_root)
    elif fmt == "medground":
        records = _read_medground(path, split, img_root)
    else:
        records = _read_csv(path, split, img_root)
    for r in records:
        inside_root(r.image_path, img_root, where_of(r), allow_outside_root)
        if r.image_size is not None:
            fit_boxes(r, *r.image_size)
        else:
            fit_to_image_file(r)
    records = _group_phrases(records, one_box_per_phrase)
    if check_images:
        missing = [r.image_path for r in records if not r.image_path.exists()]
        if missing:
            raise DatasetError(
                f"{len(missing)} of {len(records)} MS-CXR images not found, e.g. {missing[0]}; "
                f"pass image_root= the folder holding the 'files/' tree"
            )
    return records


# ----------------------------------------------------------------------------- sources
def _find_source(root: Path, split: str, fmt: str) -> tuple[str, Path]:
    candidates = {
        "medrpg": [root / f"MS_CXR_{split}.json", root / f"MS_CXR_{split}.pth"],
        "medground": [root / f"{split}.json", root / f"cxr_{split}.json"],
        "csv": sorted(root.glob("MS_CXR_Local_Alignment_v1*.csv"), reverse=True),
    }
    order = ("medrpg", "medground", "csv") if fmt == "auto" else (fmt,)
    for name in order:
        for p in candidates[name]:
            if p.is_file():
                return name, p
    wanted = "; ".join(
        f"{name}: " + (", ".join(p.name for p in candidates[name]) or "MS_CXR_Local_Alignment_v1.*.csv")
        for name in order
    )
    raise DatasetError(f"{root}: no MS-CXR annotation file for split {split!r} (looked for {wanted})")


def _number(value: Any, where: str, field: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {field} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise DatasetError(f"{where}: {field} {value!r} is not finite")
    return x


def _xywh_box(values: Sequence[Any], where: str) -> tuple[float, float, float, float]:
    if not isinstance(values, list | tuple) or len(values) != 4:
        raise DatasetError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {values!r}")
    x, y, w, h = (_number(v, where, f"bbox[{i}]") for i, v in enumerate(values))
    if w <= 0 or h <= 0:
        raise DatasetError(f"{where}: box width and height must be > 0, got w={w:g}, h={h:g}")
    return (x, y, x + w, y + h)


# ----------------------------------------------------------------------------- MedRPG
def _load_rows(path: Path) -> list:
    if path.suffix == ".pth":
        import torch

        try:
            rows = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types
            raise DatasetError(f"{path}: not a readable MedRPG split file ({e})") from e
    else:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: expected a list of rows, got {type(rows).__name__}")
    return rows


def _read_medrpg(path: Path, split: str, img_root: Path) -> list[Grounding2D]:
    out = []
    for i, row in enumerate(_load_rows(path)):
        where = f"{path}, row {i} (0-based)"
        if isinstance(row, dict):
            missing = [k for k in MEDRPG_FIELDS if k not in row]
            if missing:
                raise DatasetError(f"{where}: missing key(s) {missing}")
            values = [row[k] for k in MEDRPG_FIELDS]
        elif isinstance(row, list | tuple) and len(row) in (8, 9):  # 9: MedRPG's phrase_marker variant
            values = list(row[:8])
        else:
            raise DatasetError(
                f"{where}: expected an object with keys {list(MEDRPG_FIELDS)} or an 8-item list"
            )
        anno_id, image_id, category_id, img_file, bbox, width, height, phrase = values
        if not isinstance(img_file, str) or not img_file:
            raise DatasetError(f"{where}: img_file must be a relative image path, got {img_file!r}")
        if not isinstance(phrase, str) or not phrase.strip():
            raise DatasetError(f"{where}: phrase must be a non-empty string, got {phrase!r}")
        cat = int(_number(category_id, where, "category_id"))
        out.append(
            Grounding2D(
                sample_id=f"mscxr_{anno_id}",
                dataset=DATASET,
                split=split,
                image_path=img_root / img_file,
                query=phrase.strip(),
                boxes=[_xywh_box(bbox, where)],
                image_size=None,
                label=MSCXR_CATEGORIES.get(cat),
                meta={
                    "anno_id": anno_id,
                    "image_id": image_id,
                    "category_id": cat,
                    "annotated_size": (
                        int(_number(width, where, "width")),
                        int(_number(height, where, "height")),
                    ),
                    "source": path.name,
                    "where": where,
                },
            )
        )
    return out


# ----------------------------------------------------------------------------- MedGround-R1
def phrase_from_problem(problem: str) -> str:
    """The referring phrase inside a MedGround-R1 ``problem`` (question prefix and final
    full stop removed)."""
    p = problem.strip()
    if p.lower().startswith(MEDGROUND_QUESTION.lower()):
        p = p[len(MEDGROUND_QUESTION) :]
    return p[:-1].strip() if p.endswith(".") else p


def _read_medground(path: Path, split: str, img_root: Path) -> list[Grounding2D]:
    out = []
    for i, row in enumerate(_load_rows(path)):
        where = f"{path}, row {i} (0-based)"
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected an object with keys image, problem, solution")
        missing = [k for k in ("image", "problem", "solution") if k not in row]
        if missing:
            raise DatasetError(f"{where}: missing key(s) {missing}")
        sol = row["solution"]
        if not isinstance(sol, list | tuple) or len(sol) != 4:
            raise DatasetError(f"{where}: solution must be [x1, y1, x2, y2], got {sol!r}")
        x1, y1, x2, y2 = (_number(v, where, f"solution[{k}]") for k, v in enumerate(sol))
        if x2 <= x1 or y2 <= y1:
            raise DatasetError(f"{where}: solution needs x2 > x1 and y2 > y1, got {list(sol)}")
        phrase = phrase_from_problem(str(row["problem"]))
        if not phrase:
            raise DatasetError(f"{where}: empty phrase in problem {row['problem']!r}")
        out.append(
            Grounding2D(
                sample_id=f"mscxr_{split}_{i}",
                dataset=DATASET,
                split=split,
                image_path=img_root / str(row["image"]),
                query=phrase,
                boxes=[(x1, y1, x2, y2)],
                meta={"source": path.name, "problem": row["problem"], "where": where},
            )
        )
    return out


# ----------------------------------------------------------------------------- official CSV
_SUBJECT = re.compile(r"/p(\d{8})/")  # MIMIC-CXR: files/p10/p10000032/s5.../x.jpg


def _read_csv(path: Path, split: str, img_root: Path) -> list[Grounding2D]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {missing} (found {header})")
        rows = list(reader)
    has_split = "split" in header
    out = []
    for i, row in enumerate(rows):
        line = i + 2  # the header is line 1
        where = f"{path}, line {line} (data row {i + 1})"
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        empty = [c for c in CSV_COLUMNS if row.get(c, "") == ""]
        if empty:
            raise DatasetError(f"{where}: empty value in column(s) {empty}")
        x1, y1, x2, y2 = _xywh_box([row["x"], row["y"], row["w"], row["h"]], where)
        iw = _number(row["image_width"], where, "image_width")
        ih = _number(row["image_height"], where, "image_height")
        if iw <= 0 or ih <= 0:
            raise DatasetError(f"{where}: image_width and image_height must be > 0")
        m = _SUBJECT.search("/" + row["path"])
        subject = m.group(1) if m else row["dicom_id"]
        row_split = row["split"] if has_split and row.get("split") else patient_split(subject)
        if row_split != split:
            continue
        out.append(
            Grounding2D(
                sample_id=f"mscxr_{row['dicom_id']}_{line}",
                dataset=DATASET,
                split=split,
                image_path=img_root / row["path"],
                query=row["label_text"],
                boxes=[(x1, y1, x2, y2)],
                image_size=(int(iw), int(ih)),
                label=row["category_name"],
                meta={"dicom_id": row["dicom_id"], "subject_id": subject, "line": line, "source": path.name,
                      "where": where},
            )
        )
    return out


# ----------------------------------------------------------------------------- filter
def _group_phrases(records: list[Grounding2D], one_box_per_phrase: bool) -> list[Grounding2D]:
    """Merge records of the same (image, phrase) into one; MedRPG keeps only single-box ones."""
    groups: dict[tuple[str, str], list[Grounding2D]] = {}
    for r in records:
        groups.setdefault((str(r.image_path), r.query), []).append(r)
    out = []
    for members in groups.values():
        if len(members) > 1 and one_box_per_phrase:
            continue
        first = members[0]
        first.boxes = [b for m in members for b in m.boxes]
        out.append(first)
    return out
