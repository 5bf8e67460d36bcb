"""2D evaluation: MedGround-R1 (mIoU, Acc@0.5) and MedReasoner (IoU, pDice, mask Dice, refusals).

Protocol (docs/medground_r1.md#metrics, docs/medreasoner.md#metrics): greedy decoding; the paper's parser for the prompt
template (:func:`medlib.parsing.parse_medground`: the integer box regex of MedGround-R1
footnote 8 inside ``<answer>``; :func:`medlib.parsing.parse_medreasoner`: the JSON answer with
``bbox``, ``points_1``, ``points_2``); an answer without a usable box is a refusal and scores
IoU 0 (MedGround-R1's evaluation uses ``[0, 0, 0, 0]``). The model answers in its resized frame
(:func:`medlib.models.model_frame`); predictions are mapped back to the original image's pixels
and every metric is computed there, against the record's own box, points and mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..data.records import Grounding2D
from ..parsing import parse_medground, parse_medreasoner
from .generation import generate
from .provenance import provenance, write_json, write_jsonl

PAPERS_2D = ("medground", "medreasoner")


def resolve_template(paper: str, template: str | None) -> str:
    """``template`` checked against the paper's templates (None: the paper's default)."""
    from ..train.config import TEMPLATES

    if paper not in PAPERS_2D:
        raise ValueError(f"2D evaluation serves {PAPERS_2D}, not {paper!r}")
    if template is None:
        return TEMPLATES[paper][0]
    if template not in TEMPLATES[paper]:
        raise ValueError(f"{paper} templates are {TEMPLATES[paper]}, got {template!r}")
    return template


def build_rows_2d(records: Sequence[Grounding2D], processor, paper: str, template: str) -> list[dict[str, Any]]:
    """Prompt rows (no completion) of the records, in order."""
    from ..train.datasets import row_2d

    return [row_2d(r, processor, paper, template, with_completion=False) for r in records]


def parse_prediction(text: str, paper: str) -> dict[str, Any]:
    """Box (and MedReasoner's points) of one completion, in the model frame; None when missing."""
    if paper == "medground":
        a = parse_medground(text)
        return {"box": a.box, "points": None, "reason": a.reason, "format_ok": a.format_ok}
    a = parse_medreasoner(text)
    return {"box": a.box, "points": a.points, "reason": a.reason,
            "format_ok": a.think_score == 1.0 and a.answer_score == 1.0}


def _gt_points(rec: Grounding2D, mask: np.ndarray | None) -> np.ndarray:
    from ..train.datasets import derive_key_points

    pts = rec.points if rec.points is not None else derive_key_points(rec.box, mask)
    return np.asarray(pts, dtype=np.float64).reshape(2, 2)


def _as_list(a: Any) -> list | None:
    return None if a is None else np.asarray(a, dtype=np.float64).tolist()


def score_2d(records: Sequence[Grounding2D], rows: Sequence[dict[str, Any]], completions: Sequence[str], *,
             processor, paper: str = "medground", segmenter=None, bootstrap: int = 1000,
             seed: int = 0, metric_variant: str = metrics.DEFAULT_MEDREASONER_VARIANT,
             ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-sample predictions and aggregate metrics of ``completions`` (one per record/row).

    Returns ``(predictions, metrics)``. ``metrics`` holds ``mIoU``, ``Acc`` (IoU > 0.5; MedRPG's
    textbook IoU), each ``{"mean", "ci_low", "ci_high", "n"}`` in %, and ``refusals``; MedReasoner
    adds its table's ``IoU``, ``pDice`` and, with a ``segmenter``, ``Dice`` of the mask it cuts
    from the predicted box and points, all three in ``metric_variant`` (``official``: its public
    evaluation code; ``paper``: Eq. 5), named in ``metrics["metric_variant"]``."""
    if paper == "medreasoner" and metric_variant not in metrics.MEDREASONER_VARIANTS:
        raise ValueError(f"metric_variant {metric_variant!r}: choose one of {metrics.MEDREASONER_VARIANTS}")
    from ..models.frames import model_frame

    if not (len(records) == len(rows) == len(completions)):
        raise ValueError(f"{len(records)} records, {len(rows)} rows and {len(completions)} completions differ")
    if paper not in PAPERS_2D:
        raise ValueError(f"2D evaluation serves {PAPERS_2D}, not {paper!r}")
    preds: list[dict[str, Any]] = []
    boxes_orig, gt_boxes, pd, mask_dice, box_iou = [], [], [], [], []
    for rec, row, text in zip(records, rows, completions):
        w, h = row["image"].size
        frame = model_frame(processor, w, h)
        p = parse_prediction(text, paper)
        box = None if p["box"] is None else frame.box_to_original(p["box"])
        gt = np.asarray(rec.box, dtype=np.float64)
        iou = float(metrics.per_sample_iou([box], [gt])[0])
        boxes_orig.append(box)
        gt_boxes.append(gt)
        pred = {
            "sample_id": rec.sample_id, "dataset": rec.dataset, "query": rec.query, "completion": text,
            "box_model": _as_list(p["box"]), "box": _as_list(box), "gt_box": gt.tolist(),
            "gt_box_model": list(row["solution"]), "iou": iou, "hit": iou > metrics.ACC_IOU_THRESHOLD,
            "refused": box is None, "reason": p["reason"], "format_ok": bool(p["format_ok"]),
            "image_size": [w, h], "model_size": [frame.model_width, frame.model_height],
        }
        if paper == "medreasoner":
            gt_mask = rec.load_mask() if rec.mask_path is not None else None
            gt_mask = None if gt_mask is None else np.asarray(gt_mask) > 0
            gpts = _gt_points(rec, gt_mask)
            pts = None if p["points"] is None else frame.points_to_original(np.asarray(p["points"], float))
            pdv = float(metrics.pdice([pts], [gpts], metric_variant)[0])
            biou = float(metrics.medreasoner_box_iou([box], [gt], metric_variant)[0])
            pd.append(pdv)
            box_iou.append(biou)
            pred.update(points_model=_as_list(p["points"]), points=_as_list(pts), gt_points=gpts.tolist(),
                        pdice=pdv, box_iou=biou, metric_variant=metric_variant)
            if segmenter is not None and gt_mask is not None:
                pm = _segment(segmenter, rec, box, pts, gt_mask.shape)
                md = metrics.mask_dice(pm, gt_mask, metric_variant)
                mask_dice.append(md)
                # the counts that both variants need, so a summary can be rescored without the masks
                pred.update(mask_dice=md, mask_area=int(pm.sum()), gt_mask_area=int(gt_mask.sum()),
                            mask_intersection=int(np.logical_and(pm, gt_mask).sum()))
        preds.append(pred)
    out = metrics.grounding_metrics(boxes_orig, gt_boxes, n_boot=bootstrap, seed=seed)
    if paper == "medreasoner":
        out["metric_variant"] = metric_variant
        out["IoU"] = metrics.summarize(np.asarray(box_iou) * 100, bootstrap, seed)
        out["pDice"] = metrics.summarize(np.asarray(pd) * 100, bootstrap, seed)
        if segmenter is not None:
            out["Dice"] = metrics.summarize(np.asarray(mask_dice) * 100, bootstrap, seed)
            out["segmenter"] = getattr(segmenter, "name", type(segmenter).__name__)
    return preds, out


def _segment(segmenter, rec: Grounding2D, box, points, shape) -> np.ndarray:
    """MedReasoner's mask: the segmenter prompted with the predicted box and both points
    (original frame); an empty mask for a refusal."""
    if box is None:
        return np.zeros(shape, dtype=bool)
    m = np.asarray(segmenter.segment_2d(rec.load_image(), box=np.asarray(box, float), points=points), dtype=bool)
    if m.shape != tuple(shape):
        raise ValueError(f"{rec.sample_id}: segmenter {getattr(segmenter, 'name', segmenter)!r} returned a mask "
                         f"of shape {m.shape} for a ground truth of shape {tuple(shape)}")
    return m


def evaluate_2d(model, processor, records: Sequence[Grounding2D], *, paper: str = "medground",
                template: str | None = "r1", segmenter=None, batch_size: int = 16, max_new_tokens: int = 64,
                out_dir: str | Path | None = None, bootstrap: int = 1000, seed: int = 0, config: Any = None,
                profile: str | None = None, model_path: str | Path | None = None, split: str | None = None,
                progress: bool = False, repetition_penalty: float = 1.0,
                metric_variant: str = metrics.DEFAULT_MEDREASONER_VARIANT,
                segmenter_spec: str | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on 2D ``records``: rows -> greedy :func:`generate` -> parse -> original
    frame -> metrics (:func:`score_2d`). Writes ``out_dir/predictions.jsonl`` and
    ``out_dir/summary.json`` when ``out_dir`` is given; returns the summary.

    ``template`` None means the paper's default (MedGround-R1 ``r1``, MedReasoner ``reasoning``);
    the default ``"r1"`` is read as None for MedReasoner. The summary records the decoding
    (``repetition_penalty``), MedReasoner's ``metric_variant`` and the ``segmenter`` of the mask
    Dice (``segmenter_spec`` when given, else the segmenter's name)."""
    if not records:
        raise ValueError("evaluate_2d: no records to evaluate")
    if paper == "medreasoner" and template == "r1":
        template = None
    template = resolve_template(paper, template)
    rows = build_rows_2d(records, processor, paper, template)
    completions = generate(model, processor, rows, batch_size=batch_size, max_new_tokens=max_new_tokens,
                           repetition_penalty=repetition_penalty, progress=progress)
    preds, mets = score_2d(records, rows, completions, processor=processor, paper=paper, segmenter=segmenter,
                           bootstrap=bootstrap, seed=seed, metric_variant=metric_variant)
    summary = {
        "paper": paper, "template": template, "split": split, "n": len(records),
        "refusals": mets["refusals"], "metrics": mets,
        "decoding": {"do_sample": False, "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                     "repetition_penalty": float(repetition_penalty)},
        "bootstrap": bootstrap,
        "provenance": provenance(config=config, seed=seed, profile=profile, model_path=model_path),
    }
    if paper == "medreasoner":
        summary["metric_variant"] = metric_variant
        if segmenter is not None:
            summary["segmenter"] = segmenter_spec or getattr(segmenter, "name", type(segmenter).__name__)
    if out_dir is not None:
        out = Path(out_dir)
        write_jsonl(out / "predictions.jsonl", preds)
        write_json(out / "summary.json", summary)
    return summary
