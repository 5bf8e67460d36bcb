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


def _legend(fig, entries, ncol: int = 4) -> None:
    """One legend under the panels, so that it covers no image or curve."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=1.4, ls=ls, marker=m, mfc=c, mec="white" if m else c, label=label)
               for label, c, ls, m in entries]
    fig.legend(handles=handles, loc="lower center", ncol=min(ncol, len(handles)), fontsize=7, frameon=False)


def plot_prompt_examples(segmenter, cases: Sequence[SegCase2D], prompts: Sequence[str] = PROMPTS, zoom: float | None = None):
    """One row per case, one column per prompt type, a page wide: image, GT outline (cyan), the
    prompt (GT box in lime, key points as dots) and the segmenter's mask (red), with its Dice.
    ``zoom`` crops each row to the mask grown by that fraction (small structures in large images)."""
    import matplotlib.pyplot as plt

    from ..report.viz import PAGE_WIDTH_IN, draw_sample

    side = PAGE_WIDTH_IN / len(prompts)
    fig, axes = plt.subplots(len(cases), len(prompts), figsize=(PAGE_WIDTH_IN, (side + 0.35) * len(cases) + 0.4),
                             squeeze=False)
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
                        title=f"{case.structure} | {kind}: Dice {dice(pred, case.mask):.2f}", title_width=int(side * 15))
            _outline(ax, pred[ys, xs], "red")
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    _legend(fig, [("ground-truth outline", "cyan", "-", None), ("prompt box (GT box)", "lime", "-", None),
                  ("prompt key points", "red", "", "o"), ("segmenter's mask", "red", "-", None)])
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
    from ..report.viz import PAGE_WIDTH_IN

    ncols = min(len(picks), 4)
    nrows = int(np.ceil(len(picks) / ncols))
    side = PAGE_WIDTH_IN / ncols
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, (side + 0.1) * nrows + 3.0))
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[side + 0.1] * nrows + [2.4])
    for i, t in enumerate(picks):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        ax.imshow(u8[t][ys, xs], cmap="gray", vmin=0, vmax=255)
        _outline(ax, gt[t][ys, xs], "cyan")
        _outline(ax, pred[t][ys, xs], "red")
        if t == k:
            for b in boxes:
                x1, y1, x2, y2 = (float(v) for v in b)
                ax.add_patch(Rectangle((x1 - xs.start, y1 - ys.start), x2 - x1, y2 - y1, fill=False, lw=1.0, ec="lime"))
        ax.set_title(("key slice " if t == k else "") + f"z={t + z0}: Dice {dice(pred[t], gt[t]):.2f}", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[nrows, :])
    t = np.arange(n)
    per_slice = [dice(pred[i], gt[i], empty_value=np.nan) for i in t]
    ax.plot(t + z0, per_slice, "o-", ms=3, color="black", label="slice Dice (both empty: not drawn)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(z0 - 0.5, z0 + n - 0.5)
    ax.set_xlabel("axial slice t (volume z)", fontsize=8)
    ax.set_ylabel("slice Dice (0-1)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax2 = ax.twinx()
    ax2.plot(t + z0, gt.sum(axis=(1, 2)), color="tab:cyan", label="GT area")
    ax2.plot(t + z0, pred.sum(axis=(1, 2)), "--", color="tab:red", label="predicted area")
    ax2.set_ylabel("area (pixels)", fontsize=8)
    ax2.tick_params(labelsize=7)
    ax2.set_ylim(bottom=0)
    ax.axvline(k + z0, color="red", lw=0.8)
    lo, hi = max(k - delta, 0), min(k + delta, n - 1)
    ax.axvspan(lo + z0 - 0.5, hi + z0 + 0.5, color="grey", alpha=0.15, label=f"R_c window |t - k| <= {delta}")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.set_title(f"{case.case_id}: volume DSC {dice(pred, gt):.3f}", fontsize=9)
    fig.tight_layout(rect=(0, 0.55 / fig.get_figheight(), 1, 1))
    fig.legend(h1 + h2 + _slice_handles(), l1 + l2 + ["GT outline (slices)", "propagated mask (slices)",
                                                     "key-slice box"],
               fontsize=7, loc="lower center", ncol=3, frameon=False)
    return fig


def _slice_handles():
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, lw=1.2) for c in ("cyan", "red", "lime")]
