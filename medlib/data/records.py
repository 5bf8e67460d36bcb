"""Typed records shared by every adapter and by the embedded benchmark.

Coordinates are pixels of the *original* image, boxes in xyxy with the continuous
convention of :mod:`medlib.geometry` (a box ``[x1, y1, x2, y2]`` covers pixel columns
``x1 .. x2-1``), points as ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass
class Grounding2D:
    """One 2D grounding example: an image, a query and the region(s) it refers to."""

    sample_id: str
    dataset: str
    split: str
    image_path: Path
    query: str
    boxes: list[Box]
    image_size: tuple[int, int] | None = None  # (width, height); read from the file when None
    mask_path: Path | None = None
    points: tuple[Point, Point] | None = None  # MedReasoner's two interior key points
    reasoning: str | None = None  # chain-of-thought text where the dataset has one
    answer: str | None = None  # free-text answer (U-MRG)
    label: str | None = None  # finding / structure class
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def box(self) -> Box:
        """The single target box (MedRPG protocol: one box per phrase)."""
        if len(self.boxes) != 1:
            raise ValueError(f"{self.sample_id}: expected exactly one box, found {len(self.boxes)}")
        return self.boxes[0]

    def load_image(self) -> np.ndarray:
        """Image as a uint8 array, HxW (grey) or HxWx3. The boxes are checked against it
        (:func:`medlib.data.checks.fit_boxes`: outside is an error, partly outside is clipped
        and noted in ``meta["notes"]``)."""
        from .checks import fit_boxes
        from .io import read_image

        a = read_image(self.image_path)
        fit_boxes(self, a.shape[1], a.shape[0])
        return a

    def load_mask(self) -> np.ndarray | None:
        from .io import read_mask

        return None if self.mask_path is None else read_mask(self.mask_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_path"] = str(self.image_path)
        d["mask_path"] = None if self.mask_path is None else str(self.mask_path)
        return d


@dataclass
class Grounding3D:
    """One volumetric example: a CT-like volume, a query and the target mask.

    Arrays are indexed ``[z, y, x]`` (axial slice first); ``spacing`` is ``(z, y, x)`` in mm.
    """

    sample_id: str
    dataset: str
    split: str
    volume_path: Path
    mask_path: Path
    query: str
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    label: str | None = None
    mask_value: int | None = None  # label id inside a multi-label mask file; None = any nonzero
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def load_volume(self) -> np.ndarray:
        from .io import read_volume

        return read_volume(self.volume_path)[0]

    def load_mask(self) -> np.ndarray:
        from .io import read_volume

        m = read_volume(self.mask_path)[0]
        return (m == self.mask_value) if self.mask_value is not None else (m != 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["volume_path"] = str(self.volume_path)
        d["mask_path"] = str(self.mask_path)
        return d
