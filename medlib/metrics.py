"""Evaluation metrics of the three papers, each aggregate with a bootstrap 95% interval.

* mIoU and Acc (IoU > 0.5): MedRPG protocol, MedGround-R1 Table 1.
* pDice (points), box IoU, 2D Dice (masks), refusal count: MedReasoner Tables 2-6, each in two
  variants (``MEDREASONER_VARIANTS``): ``official``, the public evaluation code that produced the
  paper's tables (the default, for comparisons with them), and ``paper``, the equations as printed.
* Volumetric DSC and IoU: MedVol-R1 Tables 1-2.

Per-sample functions return floats; ``summarize`` turns a vector of per-sample values into
``{"mean", "ci_low", "ci_high", "n"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .geometry import _circle_overlap, box_iou_pairs, point_pair_disc_dice

ACC_IOU_THRESHOLD = 0.5


# ------------------------------------------------------------------------ bootstrap
def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``stat`` over per-sample ``values``.

    Resamples with replacement ``n_boot`` times (seeded, so intervals are reproducible).
    An empty input gives ``(nan, nan)``; a single value gives ``(v, v)``.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    samples = v[idx]
    if stat is np.mean:
        stats = samples.mean(axis=1)
    else:
        stats = np.array([stat(s) for s in samples])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def summarize(values: Sequence[float] | np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of per-sample values with its bootstrap 95% interval."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
    return {"mean": float(v.mean()) if v.size else float("nan"), "ci_low": lo, "ci_high": hi, "n": int(v.size)}


# ----------------------------------------------------------------------------- boxes
def _boxes_or_empty(boxes: Sequence) -> np.ndarray:
    """(N, 4) float array; a missing prediction (None, wrong length) becomes an empty box
    [0, 0, 0, 0], as MedGround-R1's evaluation does for completions without a box."""
    out = np.zeros((len(boxes), 4), dtype=np.float64)
    for i, b in enumerate(boxes):
        if b is None:
            continue
        try:
            a = np.asarray(b, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            continue
        if a.shape == (4,):
            out[i] = a
    return out


def per_sample_iou(pred_boxes: Sequence, gt_boxes: Sequence) -> np.ndarray:
    """IoU of each prediction with its ground truth; missing predictions score 0."""
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predictions for {len(gt_boxes)} ground-truth boxes")
    return box_iou_pairs(_boxes_or_empty(pred_boxes), _boxes_or_empty(gt_boxes))


def grounding_metrics(pred_boxes: Sequence, gt_boxes: Sequence, n_boot: int = 2000, seed: int = 0) -> dict:
    """MedRPG protocol: ``mIoU`` = mean IoU, ``Acc`` = fraction with IoU > 0.5 (both in %,
    as the papers report them), each with a bootstrap 95% interval, plus refusals."""
    iou = per_sample_iou(pred_boxes, gt_boxes)
    hit = (iou > ACC_IOU_THRESHOLD).astype(np.float64)
    miou, acc = summarize(iou * 100, n_boot, seed), summarize(hit * 100, n_boot, seed)
    return {"mIoU": miou, "Acc": acc, "refusals": refusal_count(pred_boxes), "n": int(iou.size)}


def refusal_count(preds: Sequence) -> int:
    """Number of answers that give no usable prediction (None or not a 4-number box)
    (MedReasoner's "# refusals")."""
    n = 0
    for p in preds:
        if p is None:
            n += 1
            continue
        try:
            a = np.asarray(p, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            n += 1
            continue
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            n += 1
    return n


# ------------------------------------------------------------- MedReasoner variants
MEDREASONER_VARIANTS = ("official", "paper")
"""``official``: MedReasoner's public evaluation (``eval/utils.py``), which produced its tables;
``paper``: Eq. 5 / the textbook definitions. They differ in pDice (official: twice the discs'
IoU, up to 2), box IoU (official: areas of swapped boxes not clipped, +1e-6) and mask Dice
(official: +1e-6, so two empty masks score 0)."""
DEFAULT_MEDREASONER_VARIANT = "official"


def _check_variant(variant: str) -> None:
    if variant not in MEDREASONER_VARIANTS:
        raise ValueError(f"metric variant {variant!r}: choose one of {MEDREASONER_VARIANTS}")


def _official_pdice(p: np.ndarray, g: np.ndarray) -> float:
    """``2 |D_p ∩ D_g| / (|D_p ∪ D_g| + 1e-5)``: the public code's "dice" of the two discs, which
    is twice their IoU (1 for half-overlapping discs, about 2 for identical ones)."""
    cp, cg = p.mean(axis=0), g.mean(axis=0)
    rp, rg = 0.5 * np.linalg.norm(p[1] - p[0]), 0.5 * np.linalg.norm(g[1] - g[0])
    d = float(np.linalg.norm(cp - cg))
    if d >= rp + rg:
        inter = 0.0
    elif d <= abs(rp - rg):
        inter = np.pi * min(rp, rg) ** 2
    else:
        inter = float(_circle_overlap(rp, rg, d))
    union = np.pi * rp**2 + np.pi * rg**2 - inter
    return 2.0 * inter / (union + 1e-5)


# ---------------------------------------------------------------------------- points
def pdice(pred_points: Sequence, gt_points: Sequence, variant: str = DEFAULT_MEDREASONER_VARIANT) -> np.ndarray:
    """Per-sample pDice (MedReasoner) of the discs whose diameters are the two point pairs;
    a missing or malformed prediction scores 0 (the public evaluation's ``except`` branch).

    ``official``: ``2 I / (U + 1e-5)`` (public code; in [0, 2)); ``paper``: Eq. 5,
    ``2 I / (|D_p| + |D_g|)`` (in [0, 1])."""
    _check_variant(variant)
    out = np.zeros(len(gt_points), dtype=np.float64)
    for i, (p, g) in enumerate(zip(pred_points, gt_points)):
        if p is None:
            continue
        try:
            pa = np.asarray(p, dtype=np.float64).reshape(2, 2)
            ga = np.asarray(g, dtype=np.float64).reshape(2, 2)
        except (TypeError, ValueError):
            continue
        if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(ga))):
            continue
        out[i] = _official_pdice(pa, ga) if variant == "official" else float(point_pair_disc_dice(pa, ga))
    return out


def medreasoner_box_iou(pred_boxes: Sequence, gt_boxes: Sequence,
                        variant: str = DEFAULT_MEDREASONER_VARIANT) -> np.ndarray:
    """Per-sample box IoU of MedReasoner's tables; a missing prediction scores 0.

    ``official`` (public ``compute_iou``): ``I / (A_p + A_g - I + 1e-6)`` with the intersection's
    sides clipped at 0 but the areas not: a box with x2 < x1 has a negative area. ``paper``: the
    textbook IoU (:func:`per_sample_iou`; a swapped box is empty)."""
    _check_variant(variant)
    if variant == "paper":
        return per_sample_iou(pred_boxes, gt_boxes)
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predictions for {len(gt_boxes)} ground-truth boxes")
    out = np.zeros(len(gt_boxes), dtype=np.float64)
    for i, (p, g) in zip(range(len(gt_boxes)), zip(_boxes_or_empty(pred_boxes), _boxes_or_empty(gt_boxes))):
        if pred_boxes[i] is None or not (np.all(np.isfinite(p)) and np.all(np.isfinite(g))):
            continue
        inter = max(0.0, min(p[2], g[2]) - max(p[0], g[0])) * max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
        area_p = (p[2] - p[0]) * (p[3] - p[1])
        area_g = (g[2] - g[0]) * (g[3] - g[1])
        denom = area_p + area_g - inter + 1e-6
        out[i] = inter / denom if denom != 0 else 0.0
    return out


# ----------------------------------------------------------------------------- masks
def dice(pred: np.ndarray, gt: np.ndarray, empty_value: float = 1.0) -> float:
    """Dice = 2|P ∩ G| / (|P| + |G|) for 2D or 3D binary masks (MedReasoner mask Dice,
    MedVol-R1 DSC). Both empty -> ``empty_value`` (1: nothing to find, nothing found)."""
    p, g = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return float(empty_value)
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def mask_dice(pred: np.ndarray, gt: np.ndarray, variant: str = DEFAULT_MEDREASONER_VARIANT) -> float:
    """MedReasoner's mask Dice. ``official`` (public ``compute_dice``):
    ``2 |P ∩ G| / (|P| + |G| + 1e-6)``, so two empty masks score 0; ``paper``: :func:`dice`
    (two empty masks score 1)."""
    _check_variant(variant)
    if variant == "paper":
        return dice(pred, gt)
    p, g = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    return 2.0 * int(np.logical_and(p, g).sum()) / (int(p.sum()) + int(g.sum()) + 1e-6)


def mask_iou(pred: np.ndarray, gt: np.ndarray, empty_value: float = 1.0) -> float:
    """IoU = |P ∩ G| / |P ∪ G| for binary masks (MedVol-R1 volumetric IoU)."""
    p, g = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    union = int(np.logical_or(p, g).sum())
    if union == 0:
        return float(empty_value)
    return int(np.logical_and(p, g).sum()) / union


EMPTY_WINDOW_DICE = 0.0
"""The windowed Dice's empty-mask rule, "an empty window scores 0": where neither mask has a
voxel on the window's slices the Dice is 0, not 1. As a reward (MedVol-R1's R_c) a 1 would pay
an answer whose key slice misses the target and whose boxes segment nothing there, the very
answer R_c exists to penalise; the evaluation's ``DSC_local`` reads the same window with the
same rule so that it reports what the reward rewarded."""


def windowed_dice(pred: np.ndarray, gt: np.ndarray, z_lo: int, z_hi: int) -> float:
    """Dice of two [z, y, x] masks on the axial slices ``z_lo <= t <= z_hi`` (clipped to the
    volume): MedVol-R1 Eq. for R_c, Dice restricted to the key slice's neighbourhood N(k).
    Both empty there -> :data:`EMPTY_WINDOW_DICE` (0)."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {g.shape}")
    lo, hi = max(int(z_lo), 0), min(int(z_hi) + 1, g.shape[0])
    if hi <= lo:
        return EMPTY_WINDOW_DICE
    p, g = p[lo:hi].astype(bool, copy=False), g[lo:hi].astype(bool, copy=False)
    denom = int(p.sum()) + int(g.sum())
    return EMPTY_WINDOW_DICE if denom == 0 else 2.0 * int(np.logical_and(p, g).sum()) / denom


def volume_metrics(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], n_boot: int = 2000, seed: int = 0) -> dict:
    """Volumetric DSC and IoU (%), each with a bootstrap 95% interval (MedVol-R1 Table 1)."""
    d = np.array([dice(p, g) for p, g in zip(preds, gts)]) * 100
    j = np.array([mask_iou(p, g) for p, g in zip(preds, gts)]) * 100
    return {"DSC": summarize(d, n_boot, seed), "IoU": summarize(j, n_boot, seed), "n": int(d.size)}


def mask_metrics(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], n_boot: int = 2000, seed: int = 0) -> dict:
    """2D mask Dice (%) with a bootstrap 95% interval (MedReasoner Tables 2-6)."""
    d = np.array([dice(p, g) for p, g in zip(preds, gts)]) * 100
    return {"Dice": summarize(d, n_boot, seed), "n": int(d.size)}
