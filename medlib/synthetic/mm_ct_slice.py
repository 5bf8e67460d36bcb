"""CT scene of the 2D benchmark: an axial slice of the synthetic abdomen (:mod:`.ct_anatomy`)
rendered at image resolution, soft-tissue window, radiological convention (the patient's
right on the image left). Two tasks: one kidney of the pair (qualifier: side), or one of
several hypodense liver lesions (qualifier: size)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from . import ct_anatomy as A
from .mm_common import Candidate, Scene, to_uint8


def _render(case: A.Case, size: int, w: float, rng: np.random.Generator):
    grid = A.Grid.slice(size, w)
    tis, organ, inst = A.tissue_map(case, grid)
    hu = A.render_hu(tis, case, grid, rng, blur_vox=(0.7, 0.7), noise_hu=float(rng.uniform(8, 14)))
    lo, hi = 40 - 200, 40 + 200  # window level 40, width 400
    return (hu - lo) / (hi - lo), organ, inst


def _kidneys(rng: np.random.Generator, size: int) -> Scene | None:
    case = A.sample_case(rng)
    (rc, lc), r = case.kidneys
    w = (rc[2] + lc[2]) / 2 + rng.uniform(-0.4, 0.4) * r[2]
    img, organ, _ = _render(case, size, w, rng)
    cands = []
    for oid, side in ((3, "right"), (4, "left")):
        m = organ == oid
        if m.sum() < 0.002 * size * size:
            return None
        cands.append(Candidate(m, side=side, intensity=float(np.clip(img[m], 0, 1).mean()), category=f"{side} kidney"))
    return Scene(to_uint8(img), "CT", "abdomen", "kidney", "kidney", cands, ["side"],
                 {"task": "kidney", "level_w": float(w)})


def _liver_lesions(rng: np.random.Generator, size: int) -> Scene | None:
    case = A.sample_case(rng)
    w = float(rng.uniform(0.62, 0.74))
    _, organ, _ = _render(case, size, w, rng)
    liver = organ == 1
    if liver.sum() < 0.05 * size * size:
        return None
    depth = distance_transform_edt(liver)
    n = int(rng.integers(2, 4))
    base = size * rng.uniform(0.018, 0.028)
    radii = base * np.array([1.0, 1.4, 1.9][:n])
    rng.shuffle(radii)
    centres: list[tuple[float, float, float]] = []
    for r in radii:
        ok = np.argwhere(depth > r + 3)
        ok = [p for p in ok if all(np.hypot(p[0] - c[1], p[1] - c[0]) > r + c[2] + 5 for c in centres)]
        if not ok:
            return None
        py, px = ok[int(rng.integers(len(ok)))]
        centres.append((float(px), float(py), float(r)))
    half = size / 2
    lesions = [
        A.Lesion("metastasis", 1, ((px + 0.5) / half - 1, (py + 0.5) / half - 1, w), (r / half, r / half * 0.9, 0.2))
        for px, py, r in centres
    ]
    img, organ, inst = _render(A.with_lesions(case, lesions), size, w, rng)
    cands = []
    for k, (_, _, r) in enumerate(centres):
        m = inst == k + 1
        if m.sum() < 0.6 * np.pi * r * r * 0.9:
            return None
        side = "left" if (np.nonzero(m)[1].mean() + 0.5) > half else "right"
        cands.append(Candidate(m, side=side, intensity=float(np.clip(img[m], 0, 1).mean())))
    return Scene(to_uint8(img), "CT", "neoplasm", "liver tumor", "low-density lesion", cands, ["size"],
                 {"task": "liver_lesion", "level_w": w})


def make(rng: np.random.Generator, size: int) -> Scene:
    """One CT scene (kidney pair or liver lesions, chosen at random)."""
    for _ in range(50):
        s = (_kidneys if rng.random() < 0.45 else _liver_lesions)(rng, size)
        if s is not None:
            return s
    raise RuntimeError("could not place a CT scene in 50 tries")
