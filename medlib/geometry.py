"""Box, point and mask geometry shared by rewards, metrics and data preparation.

Conventions
-----------
* Boxes are ``[x1, y1, x2, y2]`` (xyxy) in pixels, continuous: a box covers the pixel columns
  ``x1 .. x2 - 1``, so a mask's tight box has ``x2 = max_col + 1`` and area = width * height.
* ``xywh`` is ``[x, y, w, h]`` (ChestX-ray8's ``Bbox [x,y,w,h]``, MS-CXR's annotation columns).
* Normalised boxes divide x by the image width and y by its height (range [0, 1]).
* Points are ``(x, y)``.

Every function here is pure numpy and never raises on finite input; functions that take
untrusted boxes (from model output) also accept NaN / inf / swapped corners and treat them
as documented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ArrayLike = np.ndarray | list | tuple


# --------------------------------------------------------------------------- conversions
def xywh_to_xyxy(box: ArrayLike) -> np.ndarray:
    """``[x, y, w, h] -> [x, y, x + w, y + h]``; works on (..., 4) arrays."""
    b = np.asarray(box, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:4]], axis=-1)


def xyxy_to_xywh(box: ArrayLike) -> np.ndarray:
    """``[x1, y1, x2, y2] -> [x1, y1, x2 - x1, y2 - y1]``; works on (..., 4) arrays."""
    b = np.asarray(box, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:4] - b[..., :2]], axis=-1)


def normalize_box(box: ArrayLike, width: float, height: float) -> np.ndarray:
    """Pixel xyxy -> [0, 1] xyxy (divide x by width, y by height)."""
    b = np.asarray(box, dtype=np.float64)
    return b / np.array([width, height, width, height], dtype=np.float64)


def denormalize_box(box: ArrayLike, width: float, height: float) -> np.ndarray:
    """[0, 1] xyxy -> pixel xyxy."""
    b = np.asarray(box, dtype=np.float64)
    return b * np.array([width, height, width, height], dtype=np.float64)


def order_corners(box: ArrayLike) -> np.ndarray:
    """Swap corners so that x1 <= x2 and y1 <= y2 (a box given as two opposite corners)."""
    b = np.asarray(box, dtype=np.float64)
    return np.stack(
        [
            np.minimum(b[..., 0], b[..., 2]),
            np.minimum(b[..., 1], b[..., 3]),
            np.maximum(b[..., 0], b[..., 2]),
            np.maximum(b[..., 1], b[..., 3]),
        ],
        axis=-1,
    )


def clip_box(box: ArrayLike, width: float, height: float) -> np.ndarray:
    """Clip xyxy to the image rectangle ``[0, width] x [0, height]``."""
    b = np.asarray(box, dtype=np.float64)
    lim = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(b, 0.0, lim)


def is_valid_box(box: ArrayLike, width: float | None = None, height: float | None = None) -> bool:
    """True when the box has 4 finite numbers, x2 > x1, y2 > y1, and (if a size is given)
    lies inside the image ``[0, width] x [0, height]``."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return False
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        return False
    if not (b[2] > b[0] and b[3] > b[1]):
        return False
    if width is not None and height is not None:
        return bool(b[0] >= 0 and b[1] >= 0 and b[2] <= width and b[3] <= height)
    return True


def box_area(box: ArrayLike) -> np.ndarray:
    """Area of xyxy boxes; degenerate or swapped boxes have area 0. Shape (...,)."""
    b = np.asarray(box, dtype=np.float64)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


# --------------------------------------------------------------------------------- IoU
def _finite_or_empty(b: np.ndarray) -> np.ndarray:
    """Replace any box with a non-finite coordinate by an empty box (IoU 0 with everything)."""
    bad = ~np.all(np.isfinite(b), axis=-1)
    if np.any(bad):
        b = b.copy()
        b[bad] = 0.0
    return b


def box_iou_pairs(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Element-wise IoU of (N, 4) with (N, 4) (or broadcastable) boxes.

    IoU = |A ∩ B| / |A ∪ B| (MedRPG / MedGround-R1 spatial reward, MedVol-R1 R_s).
    Swapped, degenerate or non-finite boxes count as empty; IoU of two empty boxes is 0.
    """
    a = _finite_or_empty(np.asarray(a, dtype=np.float64))
    b = _finite_or_empty(np.asarray(b, dtype=np.float64))
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.clip(iou, 0.0, 1.0)


def box_iou(a: ArrayLike, b: ArrayLike) -> float:
    """IoU of two single xyxy boxes (float in [0, 1]); see :func:`box_iou_pairs`."""
    return float(box_iou_pairs(np.asarray(a, dtype=np.float64).reshape(4), np.asarray(b, dtype=np.float64).reshape(4)))


def box_iou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise IoU matrix, shape (N, M), of (N, 4) and (M, 4) boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou_pairs(a[:, None, :], b[None, :, :])


# --------------------------------------------------------------------- Hungarian matching
def hungarian_match(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching on cost ``C_ij = 1 - IoU(pred_i, gt_j)`` (MedVol-R1 Sec. 2.5).

    Returns ``(pred_idx, gt_idx, ious)`` of the ``min(N, N*)`` matched pairs, computed with
    :func:`scipy.optimize.linear_sum_assignment`. Empty inputs give empty arrays.
    """
    from scipy.optimize import linear_sum_assignment

    iou = box_iou_matrix(pred, gt)
    if iou.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), np.zeros(0)
    rows, cols = linear_sum_assignment(1.0 - iou)
    return rows.astype(np.int64), cols.astype(np.int64), iou[rows, cols]


# ---------------------------------------------------------------------- point-pair discs
def _circle_overlap(r1: np.ndarray, r2: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Area of intersection of two discs with radii r1, r2 and centre distance d (vectorised)."""
    r1, r2, d = np.broadcast_arrays(np.asarray(r1, float), np.asarray(r2, float), np.asarray(d, float))
    out = np.zeros(r1.shape, dtype=np.float64)
    rmin = np.minimum(r1, r2)
    inside = d <= np.abs(r1 - r2)  # one disc inside the other
    out[inside] = math.pi * rmin[inside] ** 2
    part = (d < r1 + r2) & ~inside & (d > 0)
    if np.any(part):
        a, b, c = r1[part], r2[part], d[part]
        al = np.arccos(np.clip((c**2 + a**2 - b**2) / (2 * c * a), -1.0, 1.0))
        be = np.arccos(np.clip((c**2 + b**2 - a**2) / (2 * c * b), -1.0, 1.0))
        out[part] = a**2 * al + b**2 * be - 0.5 * np.sqrt(
            np.clip((-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b), 0, None)
        )
    return out


def point_pair_disc_dice(pred_pts: ArrayLike, gt_pts: ArrayLike) -> np.ndarray:
    """pDice (MedReasoner Sec. 3, points reward): Dice of the two discs whose *diameters*
    are the segments ``p1 p2`` (prediction) and ``g1 g2`` (ground truth).

    ``2 |D_p ∩ D_g| / (|D_p| + |D_g|)``, computed in closed form. Input shapes (..., 2, 2)
    as ``[[x1, y1], [x2, y2]]``; returns shape (...,). Non-finite input gives 0; two
    identical zero-size discs give 0 (no area to agree on).
    """
    p = np.asarray(pred_pts, dtype=np.float64)
    g = np.asarray(gt_pts, dtype=np.float64)
    p, g = np.broadcast_arrays(p, g)
    finite = np.all(np.isfinite(p), axis=(-2, -1)) & np.all(np.isfinite(g), axis=(-2, -1))
    p = np.where(finite[..., None, None], p, 0.0)
    g = np.where(finite[..., None, None], g, 0.0)
    cp, cg = p.mean(axis=-2), g.mean(axis=-2)
    rp = 0.5 * np.linalg.norm(p[..., 1, :] - p[..., 0, :], axis=-1)
    rg = 0.5 * np.linalg.norm(g[..., 1, :] - g[..., 0, :], axis=-1)
    d = np.linalg.norm(cp - cg, axis=-1)
    inter = _circle_overlap(rp, rg, d)
    denom = math.pi * (rp**2 + rg**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(denom > 0, 2 * inter / np.where(denom > 0, denom, 1.0), 0.0)
    return np.where(finite, np.clip(dice, 0.0, 1.0), 0.0)


# ------------------------------------------------------------------------ masks to boxes
def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight xyxy box of all foreground pixels of a 2D mask (None when empty)."""
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask_to_box expects a 2D mask, got shape {m.shape}")
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def mask_to_boxes(mask: np.ndarray, connectivity: int = 2, min_area: int = 1) -> np.ndarray:
    """One xyxy box per connected component of a 2D mask (MedVol-R1 Sec. 2.4: boxes by
    connected-component decomposition of the key-slice mask).

    ``connectivity`` 1 = 4-neighbourhood, 2 = 8-neighbourhood (scikit-image convention);
    components smaller than ``min_area`` pixels are dropped. Boxes are sorted by area,
    largest first. Returns shape (K, 4).
    """
    from skimage.measure import label, regionprops

    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask_to_boxes expects a 2D mask, got shape {m.shape}")
    if not m.any():
        return np.zeros((0, 4))
    lab = label(m, connectivity=connectivity)
    boxes, areas = [], []
    for rp in regionprops(lab):
        if rp.area < min_area:
            continue
        r0, c0, r1, c1 = rp.bbox  # rows/cols, exclusive max
        boxes.append([c0, r0, c1, r1])
        areas.append(rp.area)
    if not boxes:
        return np.zeros((0, 4))
    order = np.argsort(-np.asarray(areas), kind="stable")
    return np.asarray(boxes, dtype=np.float64)[order]


def largest_component(mask: np.ndarray, connectivity: int | None = None) -> np.ndarray:
    """Keep only the largest connected component of a 2D or 3D mask (MedSAM2 post-processing)."""
    from skimage.measure import label

    m = np.asarray(mask).astype(bool)
    if not m.any():
        return m
    lab = label(m, connectivity=connectivity)
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    return lab == int(np.argmax(counts))


# --------------------------------------------------- the frame a Qwen2.5-VL model sees
QWEN_PATCH = 14
QWEN_MERGE = 2
QWEN_FACTOR = QWEN_PATCH * QWEN_MERGE  # 28
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280


def qwen_smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """Size ``(height, width)`` that a Qwen2.5-VL processor resizes an image to.

    Both sides rounded to multiples of ``factor`` (28 = patch 14 x merge 2), total pixels
    kept within ``[min_pixels, max_pixels]`` while preserving the aspect ratio (Qwen2.5-VL
    technical report, "naive dynamic resolution"; same arithmetic as the processor).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be < 200, got {height}x{width}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class ModelFrame:
    """Mapping between an original image and the resized frame the model sees and answers in.

    Scaling is per axis: ``x_model = x_orig * model_width / orig_width`` (and likewise y),
    which is how VLM-R1 maps predictions back from ``image_grid_thw * 14``.
    """

    orig_width: int
    orig_height: int
    model_width: int
    model_height: int

    @classmethod
    def for_qwen(
        cls, width: int, height: int, min_pixels: int = QWEN_MIN_PIXELS, max_pixels: int = QWEN_MAX_PIXELS
    ) -> ModelFrame:
        h, w = qwen_smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
        return cls(width, height, w, h)

    @classmethod
    def from_grid_thw(cls, width: int, height: int, grid_thw: ArrayLike, patch: int = QWEN_PATCH) -> ModelFrame:
        """Frame from a processor's ``image_grid_thw`` row ``(t, h_patches, w_patches)``."""
        g = [int(v) for v in np.asarray(grid_thw).reshape(-1)[:3]]
        return cls(width, height, g[2] * patch, g[1] * patch)

    @property
    def _scale(self) -> np.ndarray:
        sx = self.model_width / self.orig_width
        sy = self.model_height / self.orig_height
        return np.array([sx, sy, sx, sy], dtype=np.float64)

    def box_to_model(self, box: ArrayLike) -> np.ndarray:
        return np.asarray(box, dtype=np.float64) * self._scale

    def box_to_original(self, box: ArrayLike) -> np.ndarray:
        return np.asarray(box, dtype=np.float64) / self._scale

    def points_to_model(self, pts: ArrayLike) -> np.ndarray:
        return np.asarray(pts, dtype=np.float64) * self._scale[:2]

    def points_to_original(self, pts: ArrayLike) -> np.ndarray:
        return np.asarray(pts, dtype=np.float64) / self._scale[:2]

    def box_to_model_int(self, box: ArrayLike) -> list[int]:
        """Integer box in the model frame, as written in prompts and SFT targets
        (floor for the top-left corner, ceil for the bottom-right, clipped to the frame)."""
        b = self.box_to_model(box)
        out = [math.floor(b[0]), math.floor(b[1]), math.ceil(b[2]), math.ceil(b[3])]
        out = [min(max(v, 0), lim) for v, lim in zip(out, (self.model_width, self.model_height) * 2)]
        return out
