"""Checks every adapter applies: boxes against their image, finite voxels, paths inside the root.

* :func:`fit_boxes`: a box that does not overlap its image at all is an error naming the file
  and row; a box that overlaps it only in part is clipped to the image and the record's
  ``meta["notes"]`` says so (``python -m medlib data check`` counts them). Without this, a
  box outside a 224-pixel image became the zero-area target ``[224, 224, 224, 224]``.
* :func:`require_finite`: a volume with NaN or infinite voxels is an error naming the file (one
  NaN makes every intensity window NaN and every rendered slice black).
* :func:`inside_root`: an image path from an annotation file that resolves outside the dataset
  root (``../..``, an absolute path, a symlink out) is refused unless the caller allows it
  (``data.allow_outside_root: true``, ``data check --allow-outside-root``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .io import DatasetError, require_finite  # noqa: F401 - require_finite is part of this module's API

NOTES = "notes"
CLIPPED = "clipped"


def where_of(rec) -> str:
    """File and row of a record (``meta["where"]``, set by the adapters), else its sample id."""
    return str(rec.meta.get("where") or rec.sample_id)


def fit_box(box: Sequence[float], width: int, height: int, where: str, image: str | Path = "") -> tuple[tuple, bool]:
    """``(box clipped to the width x height image, whether it was clipped)``; a box with no area
    inside the image raises :class:`DatasetError` naming ``where``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    c = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
    if c[2] <= c[0] or c[3] <= c[1]:
        name = f" {Path(image).name}" if image else ""
        raise DatasetError(f"{where}: box {[round(v, 2) for v in (x1, y1, x2, y2)]} lies outside the "
                           f"{width}x{height} image{name}; fix or drop this row")
    return c, c != (x1, y1, x2, y2)


def fit_boxes(rec, width: int, height: int) -> None:
    """Check and clip ``rec.boxes`` against its ``width`` x ``height`` image (see :func:`fit_box`);
    each clipped box adds a line to ``rec.meta["notes"]`` and counts in ``rec.meta["clipped"]``."""
    out = []
    for b in rec.boxes:
        c, clipped = fit_box(b, width, height, where_of(rec), rec.image_path)
        if clipped:
            rec.meta.setdefault(NOTES, []).append(
                f"box {[round(float(v), 2) for v in b]} clipped to the {width}x{height} image: "
                f"{[round(v, 2) for v in c]}")
            rec.meta[CLIPPED] = rec.meta.get(CLIPPED, 0) + 1
        out.append(c)
    rec.boxes = out


def inside_root(path: Path, root: Path, where: str, allow: bool = False) -> Path:
    """``path`` when it resolves inside ``root`` (or ``allow``); else :class:`DatasetError`."""
    if allow:
        return path
    try:
        path.resolve().relative_to(Path(root).resolve())
    except ValueError:
        raise DatasetError(f"{where}: image path {path} leaves the dataset root {root}; move the file under the "
                           f"root or allow it explicitly (data.allow_outside_root: true, or "
                           f"data check --allow-outside-root)") from None
    return path


def image_file_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from an image file's header (nothing decoded); None when it is absent
    or not a PNG/JPEG/TIFF that PIL reads (DICOM and unreadable files are checked when read)."""
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file() or Path(path).suffix.lower() in (".dcm", ".dicom"):
        return None
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError):
        return None


def fit_to_image_file(rec) -> None:
    """:func:`fit_boxes` against the record's image file when it is there (a missing image is
    checked when it is read)."""
    size = image_file_size(rec.image_path)
    if size is not None:
        fit_boxes(rec, *size)
