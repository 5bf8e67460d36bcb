"""Slice-by-slice propagation of box prompts through a volume with a 2D segmenter.

LiteMedSAM's 3D recipe (bowang-lab/MedSAM, ``CVPR24_LiteMedSAM_infer.py``): segment the key
slice from the box; on each next slice the prompt is the tight box of the previous slice's
mask, grown by a few pixels; go up and down from the key slice. medlib stops a box's track in
a direction when its mask vanishes (the official script falls back to the key-slice box inside
a given z-range; MedVol-R1 gives no z-range, only the key slice). The result is the union
over the boxes. Each slice is embedded once per direction for all boxes still alive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .prompts import padded_tight_box

SliceSegmenter = Callable[[int, Sequence[np.ndarray]], list[np.ndarray]]


def propagate_slices(
    shape: tuple[int, int, int],
    key_slice: int,
    boxes: Sequence[np.ndarray],
    segment_slice: SliceSegmenter,
    pad: float = 0.0,
    max_distance: int | None = None,
) -> np.ndarray:
    """Union over ``boxes`` of the masks propagated from ``key_slice`` (bool [z, y, x]).

    ``segment_slice(t, boxes)`` returns one 2D bool mask per box on slice ``t``; ``pad`` grows
    the tight box of the previous mask (pixels of the volume); ``max_distance`` caps how far
    from the key slice a track may go (None: to the end of the volume).
    """
    n = shape[0]
    out = np.zeros(shape, dtype=bool)
    if not boxes:
        return out
    key_masks = segment_slice(key_slice, list(boxes))
    for m in key_masks:
        out[key_slice] |= m
    for step in (1, -1):
        prev, t = key_masks, key_slice + step
        while 0 <= t < n and (max_distance is None or abs(t - key_slice) <= max_distance):
            prompts = [b for b in (padded_tight_box(m, pad) for m in prev) if b is not None]
            if not prompts:
                break
            prev = segment_slice(t, prompts)
            for m in prev:
                out[t] |= m
            t += step
    return out
