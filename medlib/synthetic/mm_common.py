"""Shared pieces of the 2D multi-modality scenes (U-MRG-like benchmark): the scene record,
smooth random fields, shape masks, MedReasoner-style key points and location words."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom


@dataclass
class Candidate:
    """One instance of the scene's target class (the target or a same-class distractor)."""

    mask: np.ndarray  # bool, HxW
    side: str | None = None  # patient side ("left" / "right") where the modality defines one
    intensity: float = 0.0  # mean normalised brightness inside the mask (0 dark .. 1 bright)
    category: str | None = None  # overrides the scene's category (e.g. "left kidney")

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def centroid(self) -> tuple[float, float]:
        ys, xs = np.nonzero(self.mask)
        return float(xs.mean()), float(ys.mean())


@dataclass
class Scene:
    """A rendered 2D image with its candidate instances and what the text needs to know."""

    image: np.ndarray  # uint8 HxW or HxWx3
    modality: str  # "CT", "MRI", "ultrasound", "fundus"
    supercategory: str
    category: str  # fine-grained class of the target
    noun: str  # how the text names one candidate ("low-density lesion", "kidney", ...)
    candidates: list[Candidate]
    qualifiers: list[str]  # applicable qualifier kinds: size, side, depth, brightness, vertical, proximity
    context: dict = field(default_factory=dict)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int = 8) -> np.ndarray:
    """Band-limited noise in about [-1, 1]: a random ``cells x cells`` grid upsampled cubically."""
    g = rng.standard_normal((cells + 3, cells + 3))
    z = zoom(g, ((shape[0] + 2 * shape[0] / cells) / g.shape[0], (shape[1] + 2 * shape[1] / cells) / g.shape[1]), order=3)
    oy, ox = (z.shape[0] - shape[0]) // 2, (z.shape[1] - shape[1]) // 2
    z = z[oy : oy + shape[0], ox : ox + shape[1]]
    return (z / (np.abs(z).max() + 1e-9)).astype(np.float32)


def coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)`` in [-1, 1], broadcastable to ``(size, size)``."""
    c = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    return c[None, :], c[:, None]


def blob(x, y, cx, cy, rx, ry, angle=0.0, wobble=None, amp=0.0):
    """Normalised radius of a rotated ellipse (<= 1 inside); ``wobble`` (a field of the image
    shape) times ``amp`` roughens the border."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    r = ((c * dx + s * dy) / rx) ** 2 + ((-s * dx + c * dy) / ry) ** 2
    return r + (amp * wobble if wobble is not None else 0.0)


def key_points(mask: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two interior key points ``(x, y)`` as MedReasoner's annotation gives them (App. B.1:
    "the point farthest from the mask boundary, and the point relatively farthest from it"):
    the maximum of the distance transform, and among pixels at least ``max(2, 0.2 dmax)``
    deep (at most ``dmax / 2``, so small masks keep room) the one farthest from the first: it
    lies near the far end of the principal axis."""
    d = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y1, x1 = np.unravel_index(int(np.argmax(d)), d.shape)
    dmax = float(d.max())
    deep = d >= min(max(2.0, 0.2 * dmax), 0.5 * dmax)
    ys, xs = np.nonzero(deep)
    k = int(np.argmax((xs - x1) ** 2 + (ys - y1) ** 2))
    return (int(x1), int(y1)), (int(xs[k]), int(ys[k]))


def where_words(cx: float, cy: float, w: int, h: int) -> str:
    """Coarse image location: "upper left part", "centre", ..."""
    col = "left" if cx < w / 3 else "right" if cx > 2 * w / 3 else ""
    row = "upper" if cy < h / 3 else "lower" if cy > 2 * h / 3 else ""
    if not col and not row:
        return "centre of the image"
    return f"{' '.join(p for p in (row, col) if p)} part of the image"


def to_uint8(a: np.ndarray) -> np.ndarray:
    return (np.clip(a, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def soften(a: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(a.astype(np.float32), sigma)
