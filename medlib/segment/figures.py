"""Figures of notebook 05: masks from each prompt type, and a propagation slice by slice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import dice
from .preprocess import window_to_uint8
from .quality import DELTA, PROMPTS, SegCase2D, SegCase3D, case_prompts


def _zoom(shape: tuple[int, int], mask: np.ndarray, margin: float) -> tuple[slice, slice]:
    """Rows / columns around the mask, grown by ``margin`` x its larger side (at least 24 px)."""
    ys, xs = np.nonzero(mask)
    pad = max(24, int(margin * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    return (slice(max(ys.min() - pad, 0), min(ys.max() + 1 + pad, shape[0])),
            slice(max(xs.min() - pad, 0), min(xs.max() + 1 + pad, shape[1])))


def _outline(ax, mask: np.ndarray, color: str) -> None:
    if np.asarray(mask).any():
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=color, linewidths=0.9)


def plot_prompt_examples(segmenter, cases: Sequence[SegCase2D], prompts: Sequence[str] = PROMPTS, zoom: float | None = None):
    """One row per case, one column per prompt type: image, GT outline (cyan), the prompt (GT
    box in lime, key points as dots) and the segmenter's mask (red), with its Dice. ``zoom``
    crops each row to the mask grown by that fraction (small structures in large images)."""
    import matplotlib.pyplot as plt

    from ..viz import draw_sample

    fig, axes = plt.subplots(len(cases), len(prompts), figsize=(2.6 * len(prompts), 2.7 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases):
        boxes, points = case_prompts(case)
        img = np.asarray(case.image)
        ys, xs = _zoom(img.shape[:2], case.mask, zoom) if zoom is not None else (slice(None), slice(None))
        off = np.array([xs.start or 0, ys.start or 0], dtype=float)
        for ax, kind in zip(row, prompts):
            if kind == "points":
                pred = segmenter.segment_2d(img, points=points)
            else:
                pred = np.zeros(case.mask.shape, dtype=bool)
                for b in boxes:
                    pred |= segmenter.segment_2d(img, box=b, points=points if kind == "box+points" else None)
            shown_boxes = [np.asarray(b) - np.tile(off, 2) for b in boxes] if kind != "points" else []
            shown_points = points - off if kind != "box" else None
            draw_sample(ax, img[ys, xs], boxes=shown_boxes, points=shown_points, mask=case.mask[ys, xs],
                        title=f"{case.structure} | {kind}: Dice {dice(pred, case.mask):.2f}")
            _outline(ax, pred[ys, xs], "red")
    fig.tight_layout()
    return fig


def plot_propagation(case: SegCase3D, pred: np.ndarray, boxes=(), n_show: int = 7, delta: int = DELTA):
    """Top: axial slices around the key slice k (every ``step`` slices, step chosen so the GT
    z-range fits), GT outline cyan, propagated mask red, the key-slice ``boxes`` lime. Bottom:
    per-slice Dice and areas, the R_c window ``|t - k| <= delta`` shaded. Slices are numbered in
    the full volume (``case.meta['z_lo']`` is the offset of a cropped case)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    gt = np.asarray(case.mask, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    k = int(case.key_slice)
    n = gt.shape[0]
    z0 = int(case.meta.get("z_lo", 0))
    zs = np.nonzero(gt.any(axis=(1, 2)))[0]
    half = n_show // 2
    step = max(1, int(np.ceil(max(k - zs.min(), zs.max() - k, 1) / max(half, 1))))
    picks = [t for t in range(k - half * step, k + half * step + 1, step) if 0 <= t < n]
    u8 = window_to_uint8(case.volume, case.window)
    ys, xs = _zoom(gt.shape[1:], gt.any(axis=0) | pred.any(axis=0), 0.3)
    fig = plt.figure(figsize=(2.0 * len(picks), 5.2))
    grid = fig.add_gridspec(2, len(picks), height_ratios=[1, 1.1])
    for i, t in enumerate(picks):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(u8[t][ys, xs], cmap="gray", vmin=0, vmax=255)
        _outline(ax, gt[t][ys, xs], "cyan")
        _outline(ax, pred[t][ys, xs], "red")
        if t == k:
            for b in boxes:
                x1, y1, x2, y2 = (float(v) for v in b)
                ax.add_patch(Rectangle((x1 - xs.start, y1 - ys.start), x2 - x1, y2 - y1, fill=False, lw=1.0, ec="lime"))
        ax.set_title(("key " if t == k else "") + f"z={t + z0}  Dice {dice(pred[t], gt[t]):.2f}", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    t = np.arange(n)
    per_slice = [dice(pred[i], gt[i], empty_value=np.nan) for i in t]
    ax.plot(t + z0, per_slice, "o-", ms=3, color="black", label="slice Dice (both empty: not drawn)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(z0 - 0.5, z0 + n - 0.5)
    ax.set_xlabel("axial slice t")
    ax.set_ylabel("Dice")
    ax2 = ax.twinx()
    ax2.plot(t + z0, gt.sum(axis=(1, 2)), color="tab:cyan", label="GT area")
    ax2.plot(t + z0, pred.sum(axis=(1, 2)), "--", color="tab:red", label="predicted area")
    ax2.set_ylabel("pixels")
    ax2.set_ylim(bottom=0)
    ax.axvline(k + z0, color="red", lw=0.8)
    lo, hi = max(k - delta, 0), min(k + delta, n - 1)
    ax.axvspan(lo + z0 - 0.5, hi + z0 + 0.5, color="grey", alpha=0.15, label=f"R_c window |t - k| <= {delta}")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    ax.set_title(f"{case.case_id}: volume DSC {dice(pred, gt):.3f}", fontsize=9)
    fig.tight_layout()
    return fig
