"""How good is a segmenter given a prompt? Per-case Dice / IoU tables and per-structure summaries.

Cases carry arrays (image or volume, ground-truth mask, optional prompts), so the functions run
on anything: synthetic shapes, Colin27/AAL (:mod:`medlib.segment.colin27`), or the records of a
dataset adapter / the embedded benchmark (:func:`cases_2d_from_records`,
:func:`cases_3d_from_records`). Prompts missing from a case are derived from its mask: the
tight box and two interior key points (MedReasoner's ``points_1`` / ``points_2``).

* :func:`measure_2d`: MedReasoner Table 4 in miniature, prompt = ``points`` / ``box`` /
  ``box+points``; Dice of the 2D mask (MedReasoner's mask metric).
* :func:`measure_3d`: MedVol-R1's setting, boxes on the key slice propagated through the
  volume; volumetric DSC and IoU over the whole volume, and from the same propagation the DSC
  on the ground truth's z-range (what the official LiteMedSAM 3D protocol, which is given a 3D
  box, would score) and on ``|t - k| <= 5`` (the window of MedVol-R1's cross-slice reward R_c,
  Sec. 2.5).

The embedded benchmark and Colin27 runs that write ``results/segment*.json`` are in
:mod:`medlib.segment.measure`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..geometry import mask_to_box, mask_to_boxes
from ..metrics import dice, mask_iou, windowed_dice
from .preprocess import ABDOMEN_WINDOW

PROMPTS = ("points", "box", "box+points")
DELTA = 5  # MedVol-R1 R_c window |t - k| <= 5 (Table 2b)


@dataclass
class SegCase2D:
    """One 2D case: image (HxW or HxWx3), bool mask, optional prompts (pixels of the image)."""

    case_id: str
    structure: str
    image: np.ndarray
    mask: np.ndarray
    boxes: list | None = None  # xyxy boxes; None -> tight box of the mask
    points: np.ndarray | None = None  # (K, 2) positive points; None -> two interior points
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SegCase3D:
    """One volumetric case: [z, y, x] raw volume, bool mask, key slice and its boxes."""

    case_id: str
    structure: str
    volume: np.ndarray
    mask: np.ndarray
    key_slice: int | None = None  # None -> slice of largest mask area (MedVol-R1 Top-1)
    boxes: list | None = None  # None -> one box per connected component of the key-slice mask
    window: tuple[float, float] | None = ABDOMEN_WINDOW
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------- prompts
def key_slice_of(mask3d: np.ndarray) -> int:
    """Axial slice with the largest foreground area (first one on ties)."""
    m = np.asarray(mask3d, dtype=bool)
    if m.ndim != 3 or not m.any():
        raise ValueError(f"key slice needs a non-empty 3D mask, got shape {m.shape} with {int(m.sum())} voxels")
    return int(np.argmax(m.sum(axis=(1, 2))))


def crop_z(case: SegCase3D, lo: int, hi: int) -> SegCase3D:
    """``case`` restricted to slices ``lo <= t < hi`` (clipped to the volume), key slice
    shifted; ``meta['z_lo']`` records the offset. The key slice must lie inside the crop."""
    k = case.key_slice if case.key_slice is not None else key_slice_of(case.mask)
    lo, hi = max(int(lo), 0), min(int(hi), case.volume.shape[0])
    if not lo <= k < hi:
        raise ValueError(f"{case.case_id}: key slice {k} outside the crop [{lo}, {hi})")
    return SegCase3D(
        case.case_id,
        case.structure,
        case.volume[lo:hi],
        case.mask[lo:hi],
        k - lo,
        case.boxes,
        case.window,
        {**case.meta, "z_lo": lo + case.meta.get("z_lo", 0)},
    )


def dice_z(pred: np.ndarray, gt: np.ndarray, lo: int, hi: int) -> float:
    """Dice of two [z, y, x] masks on slices ``lo <= t < hi``; 0 when both are empty there
    (:func:`medlib.metrics.windowed_dice`, the rule R_c uses)."""
    return windowed_dice(pred, gt, lo, hi - 1)


def interior_points(mask: np.ndarray) -> np.ndarray:
    """Two positive key points inside a 2D mask, (2, 2) as (x, y) pixel indices.

    Point 1 is the pixel deepest inside the mask (largest distance to the background); point 2
    the deepest pixel outside the largest inscribed disc around point 1 (another part of an
    elongated structure), or point 1 again for a mask too small to hold two.
    """
    from scipy.ndimage import distance_transform_edt

    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("interior_points needs a non-empty mask")
    edt = distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    y1, x1 = np.unravel_index(int(np.argmax(edt)), m.shape)
    yy, xx = np.mgrid[: m.shape[0], : m.shape[1]]
    far = (yy - y1) ** 2 + (xx - x1) ** 2 >= max(edt[y1, x1], 1.0) ** 2
    cand = np.where(m & far, edt, 0.0)
    if cand.max() > 0:
        y2, x2 = np.unravel_index(int(np.argmax(cand)), m.shape)
    else:
        y2, x2 = y1, x1
    return np.array([[x1, y1], [x2, y2]], dtype=np.float64)


def case_prompts(case: SegCase2D) -> tuple[list, np.ndarray]:
    """The case's boxes (default: the mask's tight box) and key points (default:
    :func:`interior_points`)."""
    boxes = case.boxes if case.boxes else [mask_to_box(case.mask)]
    points = case.points if case.points is not None else interior_points(case.mask)
    return [np.asarray(b, dtype=np.float64) for b in boxes], np.asarray(points, dtype=np.float64)


# ------------------------------------------------------------------------ measuring
def _progress(items, desc: str, progress: bool):
    items = list(items)
    if not progress or len(items) < 2:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


def measure_2d(
    segmenter, cases: Iterable[SegCase2D], prompts: Sequence[str] = ("box",), progress: bool = False
) -> pd.DataFrame:
    """One row per (case, prompt): Dice, IoU, areas, seconds. Several boxes -> union of masks."""
    bad = [p for p in prompts if p not in PROMPTS]
    if bad:
        raise ValueError(f"unknown prompt kinds {bad}; use any of {PROMPTS}")
    rows = []
    for case in _progress(cases, "segment 2D", progress):
        gt = np.asarray(case.mask, dtype=bool)
        boxes, points = case_prompts(case)
        for kind in prompts:
            t0 = time.perf_counter()
            if kind == "points":
                pred = segmenter.segment_2d(case.image, points=points)
            else:
                pts = points if kind == "box+points" else None
                pred = np.zeros(gt.shape, dtype=bool)
                for b in boxes:
                    pred |= segmenter.segment_2d(case.image, box=b, points=pts)
            rows.append(
                {
                    "case_id": case.case_id,
                    "structure": case.structure,
                    "prompt": kind,
                    "dice": dice(pred, gt),
                    "iou": mask_iou(pred, gt),
                    "pred_area": int(pred.sum()),
                    "gt_area": int(gt.sum()),
                    "seconds": time.perf_counter() - t0,
                }
            )
    return pd.DataFrame(rows)


def propagate_case(segmenter, case: SegCase3D) -> tuple[np.ndarray, int, list]:
    """The segmenter's bool [z, y, x] mask for a case, with the key slice and boxes used (the
    case's, else the largest-area slice and the GT's connected-component boxes there); the
    case's window goes to segmenters whose ``propagate_3d`` takes one."""
    gt = np.asarray(case.mask, dtype=bool)
    k = case.key_slice if case.key_slice is not None else key_slice_of(gt)
    boxes = case.boxes if case.boxes is not None else list(mask_to_boxes(gt[k]))
    takes_window = "window" in inspect.signature(segmenter.propagate_3d).parameters
    kw = {"window": case.window} if takes_window else {}
    return np.asarray(segmenter.propagate_3d(case.volume, k, boxes, **kw), dtype=bool), int(k), boxes


def measure_3d(segmenter, cases: Iterable[SegCase3D], delta: int = DELTA, progress: bool = False) -> pd.DataFrame:
    """One row per case: Dice / IoU of the propagation from the key-slice boxes over the whole
    (given) volume, and the Dice of that same propagation on the GT's z-range (``dice_gt_z``)
    and on ``|t - k| <= delta`` (``dice_near_key``, MedVol-R1's R_c)."""
    rows = []
    for case in _progress(cases, "propagate 3D", progress):
        gt = np.asarray(case.mask, dtype=bool)
        calls0 = getattr(segmenter, "encoder_calls", 0)
        t0 = time.perf_counter()
        pred, k, boxes = propagate_case(segmenter, case)
        zs = np.nonzero(gt.any(axis=(1, 2)))[0]
        rows.append(
            {
                "case_id": case.case_id,
                "structure": case.structure,
                "key_slice": int(k),
                "n_boxes": len(boxes),
                "dice": dice(pred, gt),
                "iou": mask_iou(pred, gt),
                "dice_gt_z": dice_z(pred, gt, int(zs[0]), int(zs[-1]) + 1),
                "dice_near_key": dice_z(pred, gt, k - delta, k + delta + 1),
                "pred_voxels": int(pred.sum()),
                "gt_voxels": int(gt.sum()),
                "pred_slices": int(pred.any(axis=(1, 2)).sum()),
                "gt_slices": int(gt.any(axis=(1, 2)).sum()),
                "encoder_calls": getattr(segmenter, "encoder_calls", 0) - calls0,
                "seconds": time.perf_counter() - t0,
            }
        )
    return pd.DataFrame(rows)


def per_structure_table(rows: pd.DataFrame, metric: str = "dice", by: Sequence[str] = ("prompt",)) -> pd.DataFrame:
    """Mean / std / n of ``metric`` per structure (and per ``by`` column, e.g. prompt), with a
    final ``ALL`` row per group (mean over cases, not over structures)."""
    by = [c for c in by if c in rows.columns]
    keys = ["structure", *by]
    g = rows.groupby(keys, sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    if by:
        allg = rows.groupby(by, sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    else:
        allg = rows[metric].agg(["mean", "std", "count"]).to_frame().T
    allg.insert(0, "structure", "ALL")
    out = pd.concat([g, allg], ignore_index=True).rename(columns={"mean": f"{metric}_mean", "std": f"{metric}_std", "count": "n"})
    out["n"] = out["n"].astype(int)
    return out


METRICS_3D = ("dice", "dice_gt_z", "dice_near_key", "iou")


def summarise_3d(rows: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Per structure (and ``by`` column), with a final ``ALL`` row: n, the mean and std of the
    whole-volume Dice and the means of :data:`METRICS_3D`, of ``pred_slices`` and ``gt_slices``."""
    base = per_structure_table(rows, "dice", by=by)
    keys = ["structure", *[c for c in by if c in rows.columns]]
    for m in (*METRICS_3D[1:], "pred_slices", "gt_slices"):
        t = per_structure_table(rows, m, by=by)[[*keys, f"{m}_mean"]]
        base = base.merge(t, on=keys, how="left")
    return base


# ------------------------------------------------------------------------ records in
def cases_2d_from_records(records: Iterable) -> list[SegCase2D]:
    """:class:`~medlib.data.records.Grounding2D` records (with ``mask_path``) -> 2D cases."""
    out = []
    for r in records:
        mask = r.load_mask()
        if mask is None:
            raise ValueError(f"{r.sample_id}: record has no mask_path; segmentation quality needs a mask")
        pts = None if r.points is None else np.asarray(r.points, dtype=np.float64)
        meta = {"modality": r.meta["modality"]} if "modality" in r.meta else {}
        out.append(SegCase2D(r.sample_id, r.label or r.query, r.load_image(), mask, list(r.boxes) or None, pts, meta))
    return out


def cases_3d_from_records(records: Iterable, window: tuple[float, float] | None = ABDOMEN_WINDOW) -> list[SegCase3D]:
    """:class:`~medlib.data.records.Grounding3D` records -> 3D cases (key slice from
    ``meta['key_slice']`` when present, else the largest-area slice)."""
    out = []
    for r in records:
        mask = r.load_mask()
        k = r.meta.get("key_slice")
        out.append(SegCase3D(r.sample_id, r.label or r.query, r.load_volume(), mask, k, None, window))
    return out


# ------------------------------------------------------------------------ provenance
def run_info() -> dict:
    """Timestamp, git commit, machine and package versions for a results file
    (:func:`medlib.provenance.provenance`)."""
    from ..provenance import provenance

    return provenance(timestamp=True, machine=True)
