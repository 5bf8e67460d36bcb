"""U-MRG-14K (MedReasoner, Yan et al. 2025, Sec. 3) as 2D grounding records.

The release (HF collection ``zzzyzh/u-mrg``, read by github PRIS-CV/MedReasoner's
``eval/eval.py`` and ``verl/utils/dataset/rl_dataset.py``) is a verl-style Parquet dataset
with ``train`` and ``test`` splits; each row holds

* ``prompt``: ``[{"role": "user", "content": <implicit question>}]``;
* ``images`` / ``masks``: one-element lists of images, stored as HF ``Image`` structs
  ``{"bytes": <PNG/JPEG bytes> | null, "path": <file name> | null}``; the mask is 0/255;
* ``reward_model``: ``{"ground_truth": '{"bbox_2d": [x1, y1, x2, y2], "point_2d": [[x, y],
  [x, y]]}'}`` (a JSON string; pixels of the stored image);
* ``extra_info``: ``{"id", "supercategory", "category", ...}``; ``data_source``, ``ability``.

The CoT trace and free-text answer of the paper's QA pairs (App. B.3: question, think,
answer) are not fields the released code reads; medlib takes them from ``extra_info``
(``think`` / ``reasoning`` / ``cot`` and ``answer``) or top-level columns of those names
when present; the synthetic benchmark writes them there.

Files: ``root/<split>.parquet``, HF hub shards ``root/data/<split>-*.parquet`` or, the same
rows as JSON lines, ``root/<split>.jsonl`` (images as a path string or ``{"path": ...}``).
Embedded image bytes are written once to ``cache_dir`` (default ``root/_medlib_images``);
paths resolve against the data file's folder, then ``root``. Boxes and points are kept as
the file gives them (medlib's own writer uses the continuous convention of
:mod:`medlib.geometry`: ``x2`` = last column + 1).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checks import inside_root
from .io import DatasetError
from .records import Grounding2D

DATASET = "umrg"
_IMAGE_FIELDS = ("bytes", "path")


def split_files(root: Path, split: str) -> list[Path]:
    """The split's data files: Parquet (``<split>.parquet``, ``data/<split>-*.parquet``,
    ``<split>-*.parquet``) or else ``<split>.jsonl``."""
    pq = [root / f"{split}.parquet", *sorted((root / "data").glob(f"{split}-*.parquet")), *sorted(root.glob(f"{split}-*.parquet"))]
    pq = [p for p in pq if p.is_file()]
    if pq:
        return pq
    if (root / f"{split}.jsonl").is_file():
        return [root / f"{split}.jsonl"]
    raise DatasetError(
        f"{root}: no U-MRG file for split {split!r} (expected {split}.parquet, data/{split}-*.parquet or {split}.jsonl)"
    )


def iter_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """``(row number, row)`` of a Parquet or JSON-lines file (row numbers from 0; for JSON
    lines the row number is the line number - 1)."""
    if path.suffix == ".jsonl":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: cannot read ({e})") from e
        for i, ln in enumerate(lines):
            if not ln.strip():
                continue
            try:
                yield i, json.loads(ln)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}, row {i} (line {i + 1}): not valid JSON ({e})") from e
        return
    try:
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path)
        i = 0
        for batch in f.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                yield i, row
                i += 1
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types
        raise DatasetError(f"{path}: not a readable Parquet file ({e})") from e


def _num(v, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DatasetError(f"{where}: {what} must be a finite number, got {v!r}")
    return float(v)


def parse_ground_truth(gt, where: str) -> tuple[tuple[float, float, float, float], tuple[tuple[float, float], tuple[float, float]]]:
    """``(bbox, (p1, p2))`` from ``reward_model.ground_truth`` (JSON string or object)."""
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{where}: reward_model.ground_truth is not JSON ({e})") from e
    if not isinstance(gt, dict) or "bbox_2d" not in gt or "point_2d" not in gt:
        raise DatasetError(f"{where}: ground_truth must hold 'bbox_2d' and 'point_2d', got {gt!r}")
    b = gt["bbox_2d"]
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        raise DatasetError(f"{where}: bbox_2d must be [x1, y1, x2, y2], got {b!r}")
    x1, y1, x2, y2 = (_num(v, "bbox_2d value", where) for v in b)
    if x2 <= x1 or y2 <= y1:
        raise DatasetError(f"{where}: bbox_2d {b!r} has x2 <= x1 or y2 <= y1")
    p = gt["point_2d"]
    if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(isinstance(q, (list, tuple)) and len(q) == 2 for q in p):
        raise DatasetError(f"{where}: point_2d must be [[x, y], [x, y]], got {p!r}")
    pts = tuple((_num(q[0], "point_2d value", where), _num(q[1], "point_2d value", where)) for q in p)
    return (x1, y1, x2, y2), pts


def _ext(data: bytes, name: str | None) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:2] == b"\xff\xd8":
        return ".jpg"
    return Path(name).suffix if name and Path(name).suffix else ".png"


def _image_file(entry, kind: str, where: str, bases: list[Path], cache: Path, stem: str,
                allow_outside_root: bool = False) -> Path:
    """A file for an HF ``Image`` entry: its path (inside the dataset root ``bases[-1]`` unless
    ``allow_outside_root``), or its bytes written to ``cache``."""
    if isinstance(entry, str):
        entry = {"bytes": None, "path": entry}
    if not isinstance(entry, dict) or not any(entry.get(k) for k in _IMAGE_FIELDS):
        raise DatasetError(f"{where}: {kind} entry must be a path or {{'bytes', 'path'}}, got {type(entry).__name__}")
    data, name = entry.get("bytes"), entry.get("path")
    if data:
        out = cache / f"{stem}_{kind}{_ext(data, name)}"
        if not out.is_file() or out.stat().st_size != len(data):
            cache.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        return out
    p = Path(name)
    for cand in ([p] if p.is_absolute() else [b / p for b in bases]):
        if cand.is_file():
            return inside_root(cand, bases[-1], where, allow_outside_root)
    raise DatasetError(f"{where}: {kind} file {name!r} not found (looked in {', '.join(str(b) for b in bases)})")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise DatasetError(f"{path}: not a readable image ({e})") from e


def _text(row: dict, extra: dict, *keys: str) -> str | None:
    for k in keys:
        for src in (extra, row):
            v = src.get(k)
            if isinstance(v, str) and v.strip():
                return v
    return None


def parse_row(row, where: str, split: str, bases: list[Path], cache: Path, fallback_id: str,
              allow_outside_root: bool = False) -> Grounding2D:
    """One U-MRG row -> :class:`Grounding2D` (see the module docstring for the fields). A mask of
    another size than its image, a box outside the image and a key point outside its box are
    errors naming the file and row."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object, got {type(row).__name__}")
    extra = row.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise DatasetError(f"{where}: extra_info must be an object")
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        question = prompt
    elif isinstance(prompt, list) and prompt and isinstance(prompt[0], dict) and isinstance(prompt[0].get("content"), str):
        question = next((m["content"] for m in prompt if isinstance(m, dict) and m.get("role", "user") == "user"), prompt[0]["content"])
    else:
        raise DatasetError(f"{where}: prompt must be a list of {{'role', 'content'}} messages, got {prompt!r}")
    question = question.replace("<image>", "").strip()
    if not question:
        raise DatasetError(f"{where}: empty question")
    rm = row.get("reward_model")
    if not isinstance(rm, dict) or "ground_truth" not in rm:
        raise DatasetError(f"{where}: reward_model.ground_truth missing")
    box, pts = parse_ground_truth(rm["ground_truth"], where)
    sid = str(extra.get("id") or fallback_id)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(sid).stem if Path(sid).suffix in (".png", ".jpg") else sid)
    images = row.get("images")
    if not isinstance(images, list) or not images:
        raise DatasetError(f"{where}: images must be a non-empty list")
    ipath = _image_file(images[0], "image", where, bases, cache, stem, allow_outside_root)
    masks = row.get("masks")
    mpath = (_image_file(masks[0], "mask", where, bases, cache, stem, allow_outside_root)
             if isinstance(masks, list) and masks else None)
    w, h = _image_size(ipath)
    if mpath is not None and _image_size(mpath) != (w, h):
        mw, mh = _image_size(mpath)
        raise DatasetError(f"{where}: mask {mpath.name} is {mw}x{mh} but its image {ipath.name} is {w}x{h}; "
                           f"the mask must cover the image pixel for pixel")
    x1, y1, x2, y2 = box
    if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
        raise DatasetError(f"{where}: bbox_2d {list(box)} lies outside the {w}x{h} image {ipath.name}")
    for x, y in pts:
        if not (-1 <= x <= w + 1 and -1 <= y <= h + 1):
            raise DatasetError(f"{where}: key point {(x, y)} lies outside the {w}x{h} image {ipath.name}")
        if not (x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1):
            raise DatasetError(f"{where}: key point {(x, y)} lies outside its box {list(box)} (point_2d must be "
                               f"inside bbox_2d)")
    meta = {k: extra[k] for k in ("supercategory", "modality", "index") if k in extra}
    meta["data_source"] = row.get("data_source")
    meta["where"] = where
    return Grounding2D(
        sample_id=sid,
        dataset=DATASET,
        split=split,
        image_path=ipath,
        query=question,
        boxes=[box],
        image_size=(w, h),
        mask_path=mpath,
        points=pts,
        reasoning=_text(row, extra, "think", "reasoning", "cot"),
        answer=_text(row, extra, "answer"),
        label=extra.get("category"),
        meta=meta,
    )


def load_umrg(root: str | Path, split: str, cache_dir: str | Path | None = None, *,
              allow_outside_root: bool = False) -> list[Grounding2D]:
    """U-MRG-14K records of ``split`` (``train`` / ``test``; the benchmark also has ``val``); an
    image or mask path that leaves ``root`` is an error unless ``allow_outside_root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: U-MRG root directory not found")
    cache = (Path(cache_dir) if cache_dir is not None else root / "_medlib_images") / split
    out = []
    for path in split_files(root, split):
        bases = [path.parent] + ([root] if path.parent != root else [])
        for i, row in iter_rows(path):
            out.append(parse_row(row, f"{path}, row {i}", split, bases, cache, f"{split}-{path.stem}-{i}",
                                 allow_outside_root))
    ids = [r.sample_id for r in out]
    if len(set(ids)) != len(ids):
        dup = next(s for s in ids if ids.count(s) > 1)
        raise DatasetError(f"{root}: split {split!r} has duplicate sample id {dup!r}")
    return out


# ------------------------------------------------------------------ writing (benchmark, fixtures)


def umrg_row(
    sample_id: str,
    index: int,
    split: str,
    question: str,
    image: str | bytes,
    mask: str | bytes,
    bbox,
    points,
    supercategory: str,
    category: str,
    modality: str,
    think: str = "",
    answer: str = "",
    data_source: str = "U-MRG-14K",
) -> dict:
    """One row in the release's schema; ``image`` / ``mask`` are a relative path or bytes."""

    def img(v):
        return {"bytes": v, "path": None} if isinstance(v, bytes) else {"bytes": None, "path": str(v)}

    gt = {"bbox_2d": [int(v) if float(v).is_integer() else float(v) for v in bbox],
          "point_2d": [[int(p[0]), int(p[1])] for p in points]}
    return {
        "data_source": data_source,
        "prompt": [{"content": question, "role": "user"}],
        "images": [img(image)],
        "masks": [img(mask)],
        "ability": "medical_grounding",
        "reward_model": {"ground_truth": json.dumps(gt), "style": "rule"},
        "extra_info": {"answer": answer, "category": category, "id": sample_id, "index": int(index), "modality": modality,
                       "split": split, "supercategory": supercategory, "think": think},
    }


def write_umrg_parquet(path: str | Path, rows: list[dict]) -> Path:
    """Write rows (:func:`umrg_row`) as Parquet with the release's column types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("images", pa.list_(image)),
        ("masks", pa.list_(image)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([(k, pa.int64() if k == "index" else pa.string()) for k in
                                  ("answer", "category", "id", "index", "modality", "split", "supercategory", "think")])),
    ])
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), p, compression="zstd")
    return p
