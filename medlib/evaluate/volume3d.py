"""3D evaluation (MedVol-R1 Sec. 3.1): volumetric DSC and IoU of the mask a segmenter propagates
from the model's key slice and boxes, plus key-slice quality and refusals.

Per volume: the row of :func:`medlib.train.datasets.row_3d` (``n_slices`` uniform axial slices
at ``slice_size``, each after ``<slice k>``) -> greedy completion -> :func:`medlib.parsing.parse_medvol`
-> ``z = slice_indices[k - slice_base]`` and the boxes scaled from the model frame of the slice
images to the volume's in-plane pixels (as the training reward R_c does) -> the segmenter's
``propagate_3d(volume, z, boxes)`` -> DSC / IoU against the whole GT mask. An answer without a
key slice naming a shown slice, or without a usable box, is a refusal: empty mask, DSC 0.

Besides DSC and IoU: ``key_hit`` (the chosen slice shows the target), ``key_axial`` (R_a:
foreground area on it over the largest among the shown slices), ``key_boxes`` (R_s: Hungarian-
matched box IoU on that slice against its connected-component boxes) and, with ``delta``, ``DSC_local``
(Dice on R_c's window N(k), ``window`` ``sampled`` (default: delta counted in shown slices) or
``native`` (volume z), with its 0 when both are empty there; Table 2b's Delta).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..data.records import Grounding3D
from ..geometry import mask_to_boxes
from ..parsing import parse_medvol
from ..rewards.medvol import DEFAULT_WINDOW, spatial_reward, window_bounds
from .generation import generate
from .provenance import provenance, write_json, write_jsonl

SLICE_BASE = 1


def eval_row_3d(rec: Grounding3D, processor, n_slices: int, slice_size: int, slice_base: int = SLICE_BASE
                ) -> dict[str, Any]:
    """The prompt row of a volume (no completion). Unlike training, a volume whose target shows
    on none of the sampled slices is kept: it is part of the test set and counts."""
    from .. import prompts
    from ..models.frames import model_frame
    from ..train.datasets import row_3d, slice_image, uniform_slices

    row = row_3d(rec, processor, n_slices, slice_size, 1, np.random.default_rng(0), False, slice_base)
    if row is not None:
        return row
    vol = rec.load_volume()
    z_idx = uniform_slices(vol.shape[0], n_slices)
    lo, hi = np.percentile(vol, [0.5, 99.5])
    frame = model_frame(processor, slice_size, slice_size)
    return {
        "images": [slice_image(vol[z], lo, hi, slice_size) for z in z_idx],
        "prompt": prompts.conversation(prompts.medvol_content(rec.query, len(z_idx), slice_base), len(z_idx)),
        "phrase": rec.query, "mask_path": str(rec.mask_path), "mask_value": rec.mask_value,
        "volume_path": str(rec.volume_path), "slice_indices": z_idx,
        "model_size": [frame.model_width, frame.model_height], "sample_id": rec.sample_id,
    }


def boxes_to_volume(boxes, model_size: Sequence[float], shape: tuple[int, int, int]) -> list[list[float]]:
    """Boxes in the model frame of the slice images -> the volume's in-plane pixels (x by
    ``X / model_width``, y by ``Y / model_height``), corners ordered, clipped to the slice; boxes
    under one pixel or with non-finite numbers are dropped."""
    _, h, w = shape
    mw, mh = float(model_size[0]), float(model_size[1])
    out = []
    for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if not np.all(np.isfinite(b)):
            continue
        x1, x2 = sorted((b[0] * w / mw, b[2] * w / mw))
        y1, y2 = sorted((b[1] * h / mh, b[3] * h / mh))
        x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
        y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            out.append([float(x1), float(y1), float(x2), float(y2)])
    return out


def score_3d(records: Sequence[Grounding3D], rows: Sequence[dict[str, Any]], completions: Sequence[str], *,
             segmenter, delta: int | None = None, slice_base: int = SLICE_BASE, bootstrap: int = 1000,
             seed: int = 0, window: str = DEFAULT_WINDOW) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-volume predictions and aggregate metrics (all in %, bootstrap 95% intervals)."""
    if not (len(records) == len(rows) == len(completions)):
        raise ValueError(f"{len(records)} records, {len(rows)} rows and {len(completions)} completions differ")
    preds: list[dict[str, Any]] = []
    pm_all, gt_all, hit, axial, kbox, local = [], [], [], [], [], []
    refusals = 0
    for rec, row, text in zip(records, rows, completions):
        vol = rec.load_volume()
        gt = np.asarray(rec.load_mask(), dtype=bool)
        if gt.shape != vol.shape:
            raise ValueError(f"{rec.sample_id}: mask shape {gt.shape} differs from volume shape {vol.shape}")
        a = parse_medvol(text)
        shown = [int(z) for z in row["slice_indices"]]
        pos = None if a.key_slice is None else a.key_slice - slice_base
        z = shown[pos] if pos is not None and 0 <= pos < len(shown) else None
        boxes = [] if a.boxes is None else boxes_to_volume(a.boxes, row["model_size"], gt.shape)
        reason = a.reason
        if a.key_slice is not None and z is None:
            reason = f"key slice {a.key_slice} is not one of the {len(shown)} shown slices"
        elif z is not None and not boxes and reason is None:
            reason = "no box of at least one pixel inside the slice"
        refused = z is None or not boxes
        refusals += refused
        if refused:
            pm = np.zeros(gt.shape, dtype=bool)
        else:
            pm = np.asarray(segmenter.propagate_3d(vol, z, boxes), dtype=bool)
            if pm.shape != gt.shape:
                raise ValueError(f"{rec.sample_id}: segmenter {getattr(segmenter, 'name', segmenter)!r} returned a "
                                 f"mask of shape {pm.shape} for a volume of shape {gt.shape}")
        areas = gt[shown].reshape(len(shown), -1).sum(axis=1)
        f_z = 0.0 if z is None else float(gt[z].sum())
        ax = f_z / float(areas.max()) if areas.max() > 0 else 0.0
        gt_boxes = mask_to_boxes(gt[z]) if z is not None else np.zeros((0, 4))
        kb = _matched_box_score(boxes, gt_boxes) if z is not None else 0.0
        d, j = metrics.dice(pm, gt), metrics.mask_iou(pm, gt)
        p = {"sample_id": rec.sample_id, "dataset": rec.dataset, "query": rec.query, "completion": text,
             "key_slice": a.key_slice, "key_z": z, "boxes_model": None if a.boxes is None else [list(b) for b in a.boxes],
             "boxes": boxes, "gt_key_z": shown[int(np.argmax(areas))] if areas.max() > 0 else None,
             "gt_boxes_on_key": gt_boxes.tolist(), "refused": refused, "reason": reason,
             "dsc": d, "iou": j, "key_hit": f_z > 0, "key_axial": ax, "key_boxes": kb,
             "pred_voxels": int(pm.sum()), "gt_voxels": int(gt.sum()), "slice_indices": shown,
             "model_size": list(row["model_size"])}
        if delta is not None:
            bounds = None if refused else window_bounds(pos, int(delta), shown, gt.shape[0], window)
            p["dsc_local"] = 0.0 if bounds is None else metrics.windowed_dice(pm, gt, *bounds)
            local.append(p["dsc_local"])
        preds.append(p)
        pm_all.append(pm)
        gt_all.append(gt)
        hit.append(float(f_z > 0))
        axial.append(ax)
        kbox.append(kb)
    out = metrics.volume_metrics(pm_all, gt_all, n_boot=bootstrap, seed=seed)
    out["refusals"] = int(refusals)
    for name, vals in (("key_hit", hit), ("key_axial", axial), ("key_boxes", kbox)):
        out[name] = metrics.summarize(np.asarray(vals) * 100, bootstrap, seed)
    if delta is not None:
        out["DSC_local"] = metrics.summarize(np.asarray(local) * 100, bootstrap, seed)
        out["delta"] = int(delta)
        out["window"] = window
    out["segmenter"] = getattr(segmenter, "name", type(segmenter).__name__)
    return preds, out


def _matched_box_score(pred: list[list[float]], gt: np.ndarray) -> float:
    """MedVol-R1's R_s on the chosen slice: Hungarian-matched IoUs / max(N, N*)."""
    return spatial_reward(np.asarray(pred, dtype=np.float64).reshape(-1, 4), gt)


def evaluate_3d(model, processor, records: Sequence[Grounding3D], *, segmenter, n_slices: int, slice_size: int,
                delta: int | None = 5, slice_base: int = SLICE_BASE, batch_size: int = 4, max_new_tokens: int = 128,
                out_dir: str | Path | None = None, bootstrap: int = 1000, seed: int = 0, config: Any = None,
                profile: str | None = None, model_path: str | Path | None = None, split: str | None = None,
                progress: bool = False, window: str = DEFAULT_WINDOW) -> dict[str, Any]:
    """Evaluate ``model`` on volumes: rows -> greedy :func:`generate` -> key slice and boxes ->
    ``segmenter.propagate_3d`` -> :func:`score_3d`. Writes ``predictions.jsonl`` and
    ``summary.json`` under ``out_dir`` when given; returns the summary."""
    if not records:
        raise ValueError("evaluate_3d: no records to evaluate")
    if segmenter is None:
        raise ValueError("evaluate_3d needs a segmenter (e.g. medlib.segment.build_segmenter('litemedsam'))")
    rows = [eval_row_3d(r, processor, n_slices, slice_size, slice_base) for r in records]
    completions = generate(model, processor, rows, batch_size=batch_size, max_new_tokens=max_new_tokens,
                           progress=progress)
    preds, mets = score_3d(records, rows, completions, segmenter=segmenter, delta=delta, slice_base=slice_base,
                           bootstrap=bootstrap, seed=seed, window=window)
    summary = {
        "paper": "medvol", "template": "slices", "split": split, "n": len(records), "refusals": mets["refusals"],
        "metrics": mets, "n_slices": n_slices, "slice_size": slice_size,
        "decoding": {"do_sample": False, "max_new_tokens": max_new_tokens, "batch_size": batch_size},
        "bootstrap": bootstrap,
        "provenance": provenance(config=config, seed=seed, profile=profile, model_path=model_path),
    }
    if out_dir is not None:
        out = Path(out_dir)
        write_jsonl(out / "predictions.jsonl", preds)
        write_json(out / "summary.json", summary)
    return summary
