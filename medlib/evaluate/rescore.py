"""MedReasoner's metrics of a finished evaluation recomputed in another variant, without the model.

``predictions.jsonl`` keeps, per sample, the predicted and ground-truth boxes and key points in
the original frame, and the mask counts; :func:`rescore_medreasoner` recomputes IoU, pDice and
mask Dice in ``variant`` (:data:`medlib.metrics.MEDREASONER_VARIANTS`) from them and rewrites
``summary.json`` with the variant named. Predictions written before the mask counts were kept
(``gt_mask_area``, ``mask_intersection``) carry only the Eq. 5 mask Dice: its official value is
then the same number (the two differ by the public code's +1e-6 in the denominator, under 1e-6
relative) except for two empty masks, which score 0; the summary says so.

  python -m medlib.evaluate.rescore results/eval/<run>/<arm> --metric-variant official
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics


def _mask_dice(p: dict[str, Any], variant: str) -> tuple[float, bool]:
    """(Dice, exact) of one prediction in ``variant``."""
    if "mask_intersection" in p and "gt_mask_area" in p:
        i, a, b = p["mask_intersection"], p["mask_area"], p["gt_mask_area"]
        if variant == "official":
            return 2.0 * i / (a + b + 1e-6), True
        return (1.0 if a + b == 0 else 2.0 * i / (a + b)), True
    old = float(p["mask_dice"])  # written by the Eq. 5 Dice (both empty: 1)
    both_empty = p.get("mask_area") == 0 and old == 1.0
    if variant == "official":
        return (0.0 if both_empty else old), False
    return old, True


def rescore_medreasoner(eval_dir: str | Path, variant: str = metrics.DEFAULT_MEDREASONER_VARIANT,
                        write: bool = True) -> dict[str, Any]:
    """Summary of ``eval_dir`` with IoU / pDice / Dice in ``variant`` (rewritten in place when
    ``write``); per-sample values in ``predictions.jsonl`` are updated too."""
    if variant not in metrics.MEDREASONER_VARIANTS:
        raise ValueError(f"metric variant {variant!r}: choose one of {metrics.MEDREASONER_VARIANTS}")
    d = Path(eval_dir)
    spath, ppath = d / "summary.json", d / "predictions.jsonl"
    for f in (spath, ppath):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: not found; rescore needs the summary.json and predictions.jsonl "
                                    "that python -m medlib.evaluate writes")
    summary = json.loads(spath.read_text())
    if summary.get("paper") != "medreasoner":
        raise ValueError(f"{spath}: paper {summary.get('paper')!r}; only MedReasoner's metrics have variants")
    preds = []
    for n, line in enumerate(ppath.read_text().splitlines(), start=1):
        try:
            preds.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{ppath}, line {n}: not JSON ({e.msg}); rerun the evaluation") from None
    boot, seed = int(summary.get("bootstrap", 1000)), int(summary.get("provenance", {}).get("seed", 0) or 0)
    ious = metrics.medreasoner_box_iou([p["box"] for p in preds], [p["gt_box"] for p in preds], variant)
    pds = metrics.pdice([p["points"] for p in preds], [p["gt_points"] for p in preds], variant)
    dices, exact = [], True
    for p, iou, pdv in zip(preds, ious, pds):
        p.update(box_iou=float(iou), pdice=float(pdv), metric_variant=variant)
        if "mask_dice" in p:
            v, ok = _mask_dice(p, variant)
            p["mask_dice"] = v
            dices.append(v)
            exact &= ok
    m = summary["metrics"]
    m["metric_variant"] = variant
    m["IoU"] = metrics.summarize(ious * 100, boot, seed)
    m["pDice"] = metrics.summarize(pds * 100, boot, seed)
    if dices:
        m["Dice"] = metrics.summarize(np.asarray(dices) * 100, boot, seed)
    summary["metric_variant"] = variant
    summary["rescored"] = {
        "from": "predictions.jsonl", "variant": variant,
        "mask_dice": "exact" if exact or not dices else
        "the Eq. 5 value (mask counts not recorded): within 1e-6 relative of the official one; two empty masks 0",
    }
    if write:
        ppath.write_text("".join(json.dumps(p) + "\n" for p in preds))
        spath.write_text(json.dumps(summary, indent=1, default=str))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m medlib.evaluate.rescore", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_dir", nargs="+", help="folders with summary.json and predictions.jsonl")
    ap.add_argument("--metric-variant", default=metrics.DEFAULT_MEDREASONER_VARIANT,
                    choices=metrics.MEDREASONER_VARIANTS)
    args = ap.parse_args(argv)
    for d in args.eval_dir:
        try:
            s = rescore_medreasoner(d, args.metric_variant)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        m = s["metrics"]
        print(f"{d}: {args.metric_variant} IoU {m['IoU']['mean']:.2f}, pDice {m['pDice']['mean']:.2f}"
              + (f", Dice {m['Dice']['mean']:.2f}" if "Dice" in m else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
