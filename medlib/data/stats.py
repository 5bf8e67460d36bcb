"""Dataset statistics for the data notebook: counts, box sizes and positions, queries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def describe_2d(records: Sequence) -> pd.DataFrame:
    """One row per (dataset, split, label): count, mean relative box area, mean box centre
    (fractions of the image), mean query length in words, share with masks / key points."""
    rows = []
    for r in records:
        if r.image_size is not None:
            w, h = r.image_size
        else:
            h, w = r.load_image().shape[:2]
        for b in r.boxes:
            x1, y1, x2, y2 = b
            rows.append(
                {
                    "dataset": r.dataset,
                    "split": r.split,
                    "label": r.label or "-",
                    "rel_area": (x2 - x1) * (y2 - y1) / (w * h),
                    "cx": (x1 + x2) / 2 / w,
                    "cy": (y1 + y2) / 2 / h,
                    "query_words": len(r.query.split()),
                    "has_mask": r.mask_path is not None,
                    "has_points": r.points is not None,
                }
            )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return (
        df.groupby(["dataset", "split", "label"])
        .agg(
            n=("rel_area", "size"),
            rel_area=("rel_area", "mean"),
            cx=("cx", "mean"),
            cy=("cy", "mean"),
            query_words=("query_words", "mean"),
            masks=("has_mask", "mean"),
            points=("has_points", "mean"),
        )
        .round(3)
        .reset_index()
    )


def describe_3d(records: Sequence) -> pd.DataFrame:
    """One row per (dataset, split, label): count, mean target volume (ml), mean number of
    slices the target spans, and the share of implicit queries (``meta['implicit']``)."""
    rows = []
    for r in records:
        m = r.load_mask()
        vox_ml = float(np.prod(r.spacing)) / 1000.0
        zs = np.nonzero(m.any(axis=(1, 2)))[0]
        rows.append(
            {
                "dataset": r.dataset,
                "split": r.split,
                "label": r.label or "-",
                "volume_ml": m.sum() * vox_ml,
                "slices": int(zs.max() - zs.min() + 1) if zs.size else 0,
                "implicit": bool(r.meta.get("implicit", False)),
            }
        )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return (
        df.groupby(["dataset", "split", "label"])
        .agg(n=("slices", "size"), volume_ml=("volume_ml", "mean"), slices=("slices", "mean"),
             implicit=("implicit", "mean"))
        .round(2)
        .reset_index()
    )
