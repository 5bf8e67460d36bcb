"""Prompt hygiene shared by every segmenter: untrusted boxes and points in, safe prompts out.

Boxes arrive from model completions (MedReasoner's ``bbox``, MedVol-R1's key-slice boxes), so
anything may come in: NaN, inf, swapped corners, boxes partly or wholly outside the image,
strings. The rules, one place for all segmenters:

* a box is parsed to 4 floats, corners are ordered, then clipped to the image; a box that is
  not 4 finite numbers, or has no area after clipping, is *unusable*: the segmenter returns
  an empty mask (never an exception from deep inside torch);
* points are parsed to (K, 2); non-finite points are dropped, the rest clipped to the image;
* SAM-family prompt encoders read coordinates as pixel indices (they add 0.5 to reach the
  pixel centre, and their training boxes are the extreme foreground pixels, inclusive). medlib
  boxes are continuous (``x2 = last column + 1``, see :mod:`medlib.geometry`), so a box goes to
  a SAM model as ``[x1, y1, x2 - 1, y2 - 1]``.
"""

from __future__ import annotations

import numpy as np

from ..geometry import clip_box, order_corners


def sanitize_box(box, width: int, height: int) -> np.ndarray | None:
    """A clipped, corner-ordered xyxy box (float64) or None when the box is unusable."""
    if box is None:
        return None
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        return None
    b = clip_box(order_corners(b), width, height)
    if not (b[2] > b[0] and b[3] > b[1]):
        return None
    return b


def sanitize_points(points, width: int, height: int) -> np.ndarray | None:
    """Finite points as an (K, 2) float64 array clipped to the image, or None when none is left.

    A single point may be given as ``(x, y)``. Clipping keeps a point on the last pixel
    (``x <= width - 1``), since SAM reads points as pixel indices.
    """
    if points is None:
        return None
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if p.size == 0 or p.size % 2:
        return None
    p = p.reshape(-1, 2)
    p = p[np.all(np.isfinite(p), axis=1)]
    if len(p) == 0:
        return None
    p[:, 0] = np.clip(p[:, 0], 0, max(width - 1, 0))
    p[:, 1] = np.clip(p[:, 1], 0, max(height - 1, 0))
    return p


def iter_boxes(boxes) -> list:
    """``boxes`` as a list of candidate boxes: one box ``[x1, y1, x2, y2]`` or a list of them."""
    if boxes is None:
        return []
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        return list(boxes) if isinstance(boxes, list | tuple) else []
    if arr.ndim == 1:
        return [arr] if arr.size == 4 else []
    if arr.ndim == 2 and arr.shape[1] == 4:
        return list(arr)
    return []


def box_to_sam_indices(box: np.ndarray) -> np.ndarray:
    """Continuous xyxy -> SAM's inclusive pixel-index box ``[x1, y1, x2 - 1, y2 - 1]``.

    A box narrower than one pixel keeps ``x2 = x1`` (one column), never an inverted box.
    """
    b = np.asarray(box, dtype=np.float64).reshape(4).copy()
    b[2] = max(b[0], b[2] - 1.0)
    b[3] = max(b[1], b[3] - 1.0)
    return b


def padded_tight_box(mask: np.ndarray, pad: float) -> np.ndarray | None:
    """Tight continuous box of a 2D mask grown by ``pad`` pixels per side and clipped
    (the box prompt slice-by-slice propagation hands to the next slice); None when empty."""
    m = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return None
    h, w = m.shape
    b = np.array([xs.min() - pad, ys.min() - pad, xs.max() + 1 + pad, ys.max() + 1 + pad], dtype=np.float64)
    return clip_box(b, w, h)
