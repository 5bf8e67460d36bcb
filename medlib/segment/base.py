"""The one segmentation interface everything downstream talks to.

MedReasoner turns a box + two points into a mask with a frozen segmenter; MedVol-R1 propagates
key-slice boxes through a volume, both at evaluation and inside its cross-slice reward R_c.
Both only ever call a :class:`Segmenter`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Segmenter(Protocol):
    """Promptable segmenter.

    * ``segment_2d(image, box=None, points=None)``: ``image`` is HxW or HxWx3 uint8 (or any
      numeric array; the segmenter normalises it), ``box`` an xyxy pixel box or None,
      ``points`` an (K, 2) array of positive (x, y) points or None. Returns a bool HxW mask.
    * ``propagate_3d(volume, key_slice, boxes)``: ``volume`` is [z, y, x] raw intensities
      (e.g. HU), ``boxes`` a list of xyxy boxes on slice ``key_slice``. Returns a bool
      [z, y, x] mask (union over the boxes).
    """

    name: str

    def segment_2d(self, image: np.ndarray, box=None, points=None) -> np.ndarray: ...

    def propagate_3d(self, volume: np.ndarray, key_slice: int, boxes) -> np.ndarray: ...
