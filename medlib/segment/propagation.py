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


SliceBatchSegmenter = Callable[[int, Sequence[np.ndarray]], list[np.ndarray]]


def propagate_slices_many(
    shape: tuple[int, int, int],
    requests: Sequence[tuple[int, Sequence[np.ndarray], int | tuple[int, int] | None]],
    segment_slice: SliceBatchSegmenter,
    pad: float = 0.0,
) -> list[np.ndarray]:
    """:func:`propagate_slices` of many ``(key_slice, boxes, max_distance)`` requests on one
    volume (``max_distance`` None, one cap, or ``(down, up)`` caps per direction), in lock-step: at each distance from the key slices every live track (request x
    direction) that stands on slice ``t`` is decoded in one ``segment_slice(t, boxes)`` call, so
    a slice is visited once per distance whatever the number of requests and boxes. Each mask
    equals what :func:`propagate_slices` gives for that request alone (tracks are independent:
    the prompt on slice ``t`` is the padded box of the same track's mask on the slice before)."""
    n = shape[0]
    outs = [np.zeros(shape, dtype=bool) for _ in requests]

    def run(items: list[tuple[int, int, list[np.ndarray]]]) -> list[list[np.ndarray]]:
        """Masks of each (request, slice, prompts) item, one segmenter call per slice."""
        by_slice: dict[int, list[int]] = {}
        for j, (_, t, _) in enumerate(items):
            by_slice.setdefault(t, []).append(j)
        result: list[list[np.ndarray]] = [[] for _ in items]
        for t, js in by_slice.items():
            masks = list(segment_slice(t, [b for j in js for b in items[j][2]]))
            for j in js:
                k = len(items[j][2])
                result[j], masks = masks[:k], masks[k:]
        return result

    keyed = [(r, int(k), list(boxes)) for r, (k, boxes, _) in enumerate(requests) if len(boxes)]
    tracks: dict[tuple[int, int], list[np.ndarray]] = {}
    for (r, k, _), masks in zip(keyed, run(keyed)):
        for m in masks:
            outs[r][k] |= m
        tracks[(r, 1)] = tracks[(r, -1)] = masks
    distance = 1
    while tracks:
        items, owners = [], []
        for (r, step), prev in tracks.items():
            key, _, cap = requests[r]
            if isinstance(cap, tuple):  # (towards lower z, towards higher z)
                cap = cap[0 if step < 0 else 1]
            t = int(key) + step * distance
            if not 0 <= t < n or (cap is not None and distance > cap):
                continue
            prompts = [b for b in (padded_tight_box(m, pad) for m in prev) if b is not None]
            if prompts:
                items.append((r, t, prompts))
                owners.append((r, step))
        tracks = {}
        for owner, (r, t, _), masks in zip(owners, items, run(items)):
            for m in masks:
                outs[r][t] |= m
            tracks[owner] = masks
        distance += 1
    return outs
