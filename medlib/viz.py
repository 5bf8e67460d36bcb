"""Figures for the notebooks: samples with boxes, points and masks; CT slices. Saved as PNG + PDF."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, name: str, out_dir: Path | None = None, pdf: bool = True) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.png`` (and ``.pdf``); returns the paths."""
    from .paths import figures_dir

    d = Path(out_dir) if out_dir is not None else figures_dir()
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / f"{name}.png"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    if pdf:
        paths.append(d / f"{name}.pdf")
        fig.savefig(paths[1], bbox_inches="tight")
    return paths


def draw_sample(ax, image: np.ndarray, boxes=(), points=None, mask=None, title: str = "", box_colors=None,
                pred_boxes=()) -> None:
    """One panel: image, ground-truth boxes (solid), predicted boxes (dashed), points, mask outline."""
    from matplotlib.patches import Rectangle

    img = np.asarray(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else None)
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask).astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    colors = box_colors or ["lime", "orange", "magenta", "yellow"]
    for i, b in enumerate(boxes):
        x1, y1, x2, y2 = [float(v) for v in b]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=colors[i % len(colors)]))
    for b in pred_boxes:
        x1, y1, x2, y2 = [float(v) for v in b]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ec="red", ls="--"))
    if points is not None:
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        ax.plot(p[:, 0], p[:, 1], "o", ms=4, mfc="red", mec="white", mew=0.6)
    ax.set_title("\n".join(textwrap.wrap(title, 34)), fontsize=7)
    ax.axis("off")


def plot_records_grid(records: Sequence, ncols: int = 4, title: str = ""):
    """Grid of :class:`~medlib.data.records.Grounding2D` records with their boxes, points and masks."""
    plt = _plt()
    n = len(records)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), records):
        draw_sample(ax, r.load_image(), boxes=r.boxes, points=r.points, mask=r.load_mask(), title=r.query)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_volume_slices(volume: np.ndarray, mask: np.ndarray, n_slices: int = 6, window=(40, 400), title: str = "",
                       pred: np.ndarray | None = None):
    """Axial slices through the mask's extent (``[z, y, x]`` arrays), mask contour in cyan,
    optional prediction contour in red, plus a coronal slice through the mask centre."""
    plt = _plt()
    level, width = window
    lo, hi = level - width / 2, level + width / 2
    v = np.clip((np.asarray(volume, float) - lo) / (hi - lo), 0, 1)
    m = np.asarray(mask).astype(bool)
    zs = np.nonzero(m.any(axis=(1, 2)))[0]
    picks = np.linspace(zs.min(), zs.max(), n_slices).round().astype(int) if zs.size else np.linspace(
        0, v.shape[0] - 1, n_slices).round().astype(int)
    fig, axes = plt.subplots(1, n_slices + 1, figsize=(2.2 * (n_slices + 1), 2.6))
    for ax, z in zip(axes, picks):
        ax.imshow(v[z], cmap="gray", vmin=0, vmax=1)
        if m[z].any():
            ax.contour(m[z].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
        if pred is not None and np.asarray(pred)[z].any():
            ax.contour(np.asarray(pred)[z].astype(float), levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"axial z={z}", fontsize=7)
        ax.axis("off")
    yc = int(np.nonzero(m.any(axis=(0, 2)))[0].mean()) if m.any() else v.shape[1] // 2
    ax = axes[-1]
    ax.imshow(v[::-1, yc, :], cmap="gray", vmin=0, vmax=1, aspect="auto")
    if m[:, yc, :].any():
        ax.contour(m[::-1, yc, :].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_title(f"coronal y={yc}", fontsize=7)
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
