"""Figures for the notebooks: samples with boxes, points and masks; CT slices; qualitative
predictions. Saved as PNG + PDF, at most a page wide, byte-identical when drawn again."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: widest figure a page holds (inches): a figure drawn wider is scaled down to it when saved
PAGE_WIDTH_IN = 7.0
#: PNG resolution (dots per inch): a page-wide figure is 1,400 px wide
PNG_DPI = 200
#: PDF metadata without a creation date (matplotlib writes the current time otherwise), so the same
#: figure drawn again gives the same bytes
PDF_METADATA = {"CreationDate": None}
GT_COLOR, PRED_COLOR = "lime", "red"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters, nothing cut."""
    return "\n".join(textwrap.wrap(str(text), width)) or ""


def fit_to_page(fig, width: float = PAGE_WIDTH_IN) -> None:
    """Scale a figure drawn wider than a page down to ``width`` inches (same aspect), and lay it
    out again; a narrower figure is left as it is."""
    import warnings

    w, h = fig.get_size_inches()
    if w <= width + 1e-6:
        return
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    fig.set_size_inches(width, h * width / w)
    engine = fig.get_layout_engine()  # a placeholder after fig.tight_layout(): lay out again at the new size
    if engine is None or isinstance(engine, PlaceHolderLayoutEngine):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()


def save_figure(fig, name: str, out_dir: Path | None = None, pdf: bool = True) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.png`` (and ``.pdf``), at most a page wide; returns the
    paths. The files hold no timestamp: the same figure saved again gives the same bytes."""
    from ..paths import figures_dir

    d = Path(out_dir) if out_dir is not None else figures_dir()
    d.mkdir(parents=True, exist_ok=True)
    fit_to_page(fig)
    paths = [d / f"{name}.png"]
    fig.savefig(paths[0], dpi=PNG_DPI, bbox_inches="tight", pad_inches=0.05)
    if pdf:
        paths.append(d / f"{name}.pdf")
        fig.savefig(paths[1], bbox_inches="tight", pad_inches=0.05, metadata=PDF_METADATA)
    return paths


def box_legend(fig, points: bool = False, mask: bool = False, pred_mask: bool = False, ncol: int = 5) -> None:
    """One legend under the panels: ground truth (solid lime), prediction (dashed red), and the
    points / mask outlines the panels draw; it covers no image."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=GT_COLOR, lw=1.5, label="ground-truth box"),
               Line2D([], [], color=PRED_COLOR, lw=1.5, ls="--", label="predicted box")]
    if points:
        handles.append(Line2D([], [], ls="", marker="o", mfc=PRED_COLOR, mec="white", label="predicted key points"))
    if mask:
        handles.append(Line2D([], [], color="cyan", lw=1.2, label="ground-truth mask"))
    if pred_mask:
        handles.append(Line2D([], [], color="yellow", lw=1.2, label="predicted mask"))
    fig.legend(handles=handles, loc="lower center", ncol=min(ncol, len(handles)), fontsize=6.5, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handlelength=1.6, columnspacing=1.0)


def draw_sample(ax, image: np.ndarray, boxes=(), points=None, mask=None, title: str = "", box_colors=None,
                pred_boxes=(), title_width: int = 34, pred_mask=None) -> None:
    """One panel: image, ground-truth boxes (solid), predicted boxes (dashed red), points, mask
    outline (cyan; a predicted mask yellow). The title is wrapped at ``title_width`` characters,
    never cut."""
    from matplotlib.patches import Rectangle

    img = np.asarray(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else None,
              interpolation="nearest")
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask).astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    if pred_mask is not None and np.asarray(pred_mask).any():
        ax.contour(np.asarray(pred_mask).astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
    colors = box_colors or [GT_COLOR, "orange", "magenta", "yellow"]
    for i, b in enumerate(boxes):
        x1, y1, x2, y2 = [float(v) for v in b]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=colors[i % len(colors)]))
    for b in pred_boxes:
        x1, y1, x2, y2 = [float(v) for v in b]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.2, ec=PRED_COLOR, ls="--"))
    if points is not None and len(points):
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        ax.plot(p[:, 0], p[:, 1], "o", ms=4, mfc="red", mec="white", mew=0.6)
    ax.set_title(wrap(title, title_width), fontsize=7)
    ax.axis("off")


def zoom_window(shape, boxes, margin: float = 1.0, min_side: int = 24) -> tuple[slice, slice]:
    """Rows and columns around the union of ``boxes`` grown by ``margin`` x its larger side (at
    least ``min_side`` px), clipped to the image."""
    b = np.asarray([list(map(float, x)) for x in boxes if x is not None and len(x) == 4]).reshape(-1, 4)
    if not len(b):
        return slice(0, shape[0]), slice(0, shape[1])
    x1, y1, x2, y2 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    side = max(x2 - x1, y2 - y1, 1.0)
    half = max(side * (0.5 + margin), min_side / 2)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    r0, r1 = int(max(np.floor(cy - half), 0)), int(min(np.ceil(cy + half), shape[0]))
    c0, c1 = int(max(np.floor(cx - half), 0)), int(min(np.ceil(cx + half), shape[1]))
    return slice(r0, r1), slice(c0, c1)


def _crop(mask, ys: slice, xs: slice):
    return None if mask is None else np.asarray(mask)[ys, xs]


def plot_predictions(items: Sequence[dict], title: str = "", zoom: float = 1.0):
    """Qualitative panels, one column per prediction, on the original image: the whole image
    (top) and a zoom on the two boxes (bottom); ground-truth box solid lime, predicted box dashed
    red, optional key points and masks. Each item: ``image``, ``gt_box``, ``box`` (None: refused),
    and optionally ``points``, ``mask`` (ground truth), ``pred_mask``, ``query`` (shown whole,
    wrapped), ``label`` (e.g. "IoU 0.91")."""
    from matplotlib.patches import Rectangle

    plt = _plt()
    n = max(len(items), 1)
    col_w = min(2.3, PAGE_WIDTH_IN / n)
    fig, axes = plt.subplots(2, n, figsize=(col_w * n, 2 * col_w + 1.0), squeeze=False,
                             gridspec_kw={"hspace": 0.08, "wspace": 0.05})
    has_points = any(it.get("points") is not None and len(it.get("points")) for it in items)
    has_mask = any(it.get("mask") is not None for it in items)
    has_pred_mask = any(it.get("pred_mask") is not None for it in items)
    for j, it in enumerate(items):
        img = np.asarray(it["image"])
        box = it.get("box")
        pred = [box] if box is not None and len(box) == 4 else []
        head = it.get("label", "") + ("" if pred else " (no box: refused or unparsable)")
        text = f"{head}\n{wrap(it.get('query', ''), int(col_w * 15))}".strip()
        draw_sample(axes[0, j], img, boxes=[it["gt_box"]], pred_boxes=pred, points=it.get("points"),
                    mask=it.get("mask"), pred_mask=it.get("pred_mask"), title="")
        axes[0, j].set_title(text, fontsize=7, loc="left")
        ys, xs = zoom_window(img.shape[:2], [it["gt_box"], *pred], margin=zoom)
        off = np.array([xs.start, ys.start, xs.start, ys.start], dtype=float)
        pts = it.get("points")
        pts = None if pts is None or not len(pts) else np.asarray(pts, float).reshape(-1, 2) - off[:2]
        draw_sample(axes[1, j], img[ys, xs], boxes=[np.asarray(it["gt_box"], float) - off],
                    pred_boxes=[np.asarray(p, float) - off for p in pred], points=pts, mask=_crop(it.get("mask"), ys, xs),
                    pred_mask=_crop(it.get("pred_mask"), ys, xs), title="")
        axes[1, j].text(0.02, 0.98, f"zoom x{img.shape[1] / max(xs.stop - xs.start, 1):.1f}", transform=axes[1, j].transAxes,
                        fontsize=6, color="white", va="top", ha="left")
        if max(img.shape[0] / (ys.stop - ys.start), img.shape[1] / (xs.stop - xs.start)) > 1.05:  # where the zoom is
            axes[0, j].add_patch(Rectangle((xs.start - 0.5, ys.start - 0.5), xs.stop - xs.start, ys.stop - ys.start,
                                           fill=False, ec="white", lw=0.6, ls=":"))
    for ax in axes[:, len(items):].ravel():
        ax.axis("off")
    box_legend(fig, points=has_points, mask=has_mask, pred_mask=has_pred_mask)
    if title:
        fig.suptitle(title, fontsize=9)
    lines = max((len(ax.get_title(loc="left").splitlines()) for ax in axes[0]), default=1)
    head_in = 0.13 * lines + 0.1 + (0.3 if title else 0.0)  # room for the wrapped queries and the title
    fig.set_size_inches(fig.get_figwidth(), 2 * col_w + head_in + 0.45)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - head_in / fig.get_figheight(),
                        bottom=0.35 / fig.get_figheight())
    return fig


def plot_records_grid(records: Sequence, ncols: int = 4, title: str = ""):
    """Grid of :class:`~medlib.data.records.Grounding2D` records with their boxes, points and
    masks, a page wide; each query shown whole (wrapped)."""
    plt = _plt()
    n = len(records)
    nrows = max(1, int(np.ceil(n / ncols)))
    side = PAGE_WIDTH_IN / ncols
    width = int(side * 16)
    lines = max((len(wrap(r.query, width).splitlines()) for r in records), default=1)
    row_h = side + 0.13 * lines + 0.15  # room for the longest wrapped query above each image
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH_IN, row_h * nrows + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    has_points = has_mask = False
    for ax, r in zip(axes.ravel(), records):
        mask = r.load_mask()
        has_points |= r.points is not None and len(r.points) > 0
        has_mask |= mask is not None
        draw_sample(ax, r.load_image(), boxes=r.boxes, points=r.points, mask=mask, title=r.query, title_width=width)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=GT_COLOR, lw=1.5, label="box (first target; others orange, magenta)")]
    if has_points:
        handles.append(Line2D([], [], ls="", marker="o", mfc="red", mec="white", label="key points"))
    if has_mask:
        handles.append(Line2D([], [], color="cyan", lw=1.2, label="mask outline"))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return fig


def plot_volume_slices(volume: np.ndarray, mask: np.ndarray, n_slices: int = 7, window=(40, 400), title: str = "",
                       pred: np.ndarray | None = None, ncols: int = 4):
    """Axial slices through the mask's extent (``[z, y, x]`` arrays), mask contour in cyan,
    optional prediction contour in red, plus a coronal slice through the mask centre; ``ncols``
    panels a row, a page wide."""
    plt = _plt()
    level, width = window
    lo, hi = level - width / 2, level + width / 2
    v = np.clip((np.asarray(volume, float) - lo) / (hi - lo), 0, 1)
    m = np.asarray(mask).astype(bool)
    zs = np.nonzero(m.any(axis=(1, 2)))[0]
    picks = np.linspace(zs.min(), zs.max(), n_slices).round().astype(int) if zs.size else np.linspace(
        0, v.shape[0] - 1, n_slices).round().astype(int)
    n = n_slices + 1
    nrows = int(np.ceil(n / ncols))
    side = PAGE_WIDTH_IN / ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH_IN, (side + 0.25) * nrows + 0.6), squeeze=False)
    axes = axes.ravel()
    for ax in axes:
        ax.axis("off")
    for ax, z in zip(axes, picks):
        ax.imshow(v[z], cmap="gray", vmin=0, vmax=1)
        if m[z].any():
            ax.contour(m[z].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
        if pred is not None and np.asarray(pred)[z].any():
            ax.contour(np.asarray(pred)[z].astype(float), levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"axial z={z}", fontsize=7)
    yc = int(np.nonzero(m.any(axis=(0, 2)))[0].mean()) if m.any() else v.shape[1] // 2
    ax = axes[n_slices]
    ax.imshow(v[::-1, yc, :], cmap="gray", vmin=0, vmax=1, aspect="auto")
    if m[:, yc, :].any():
        ax.contour(m[::-1, yc, :].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_title(f"coronal y={yc}", fontsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="cyan", lw=1.2, label="ground-truth mask")]
    if pred is not None:
        handles.append(Line2D([], [], color="red", lw=1.2, label="prediction"))
    if title:
        fig.suptitle(wrap(title, 110), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return fig


def best_median_worst(preds: Sequence[dict], key: str) -> list[int]:
    """Indices of the predictions with the highest, the median and the lowest ``key`` (ties: file
    order), or all of them when there are fewer than three."""
    order = sorted(range(len(preds)), key=lambda i: -float(preds[i].get(key) or 0.0))
    return [order[0], order[len(order) // 2], order[-1]] if len(order) >= 3 else order


def plot_prediction_examples(preds: Sequence[dict], records: dict, key: str = "iou", label: str = "IoU",
                             segmenter=None, title: str = ""):
    """Qualitative figure of an evaluation's ``predictions.jsonl`` rows (best, median, worst
    ``key``): boxes and key points in the original image's pixels (``box``, ``gt_box``,
    ``points``), on the original image of ``records[sample_id]``; with a ``segmenter``, the
    predicted mask it gives from the box and points, beside the ground-truth mask."""
    items = []
    for i in best_median_worst(preds, key):
        p = preds[i]
        rec = records[p["sample_id"]]
        img = rec.load_image()
        item = dict(image=img, gt_box=p["gt_box"], box=p.get("box"), query=p.get("query", ""),
                    label=f"{label} {float(p.get(key) or 0.0):.2f}", points=p.get("points"))
        if segmenter is not None:
            item["mask"] = rec.load_mask()
            if p.get("box"):
                pts = np.asarray(p["points"], float) if p.get("points") else None
                item["pred_mask"] = segmenter.segment_2d(img, box=np.asarray(p["box"], float), points=pts)
        items.append(item)
    return plot_predictions(items, title=title)


def plot_propagated_slices(volume: np.ndarray, gt: np.ndarray, pred: np.ndarray, slices: Sequence[int],
                           key_z: int | None = None, window=(40, 400), boxes=(), title: str = ""):
    """Axial slices ``slices`` of a ``[z, y, x]`` volume, a page wide: ground-truth outline (lime),
    the mask propagated from the key slice (red), the model's key-slice ``boxes`` (dashed red),
    each slice titled with its z and Dice; a legend under the panels."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from ..metrics import dice

    plt = _plt()
    level, width = window
    v = np.clip((np.asarray(volume, float) - (level - width / 2)) / width, 0, 1)
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    n = max(len(slices), 1)
    side = PAGE_WIDTH_IN / n
    fig, axes = plt.subplots(1, n, figsize=(PAGE_WIDTH_IN, side + 0.9), squeeze=False)
    for ax, t in zip(axes[0], slices):
        ax.imshow(v[t], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if gt[t].any():
            ax.contour(gt[t].astype(float), levels=[0.5], colors=GT_COLOR, linewidths=0.8)
        if pred[t].any():
            ax.contour(pred[t].astype(float), levels=[0.5], colors=PRED_COLOR, linewidths=0.8)
        if key_z is not None and t == key_z:
            for b in boxes:
                x1, y1, x2, y2 = (float(c) for c in b)
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=PRED_COLOR, ls="--", lw=0.8))
        key = " (key)" if key_z is not None and t == key_z else ""
        ax.set_title(f"z={t}{key}\nDice {dice(pred[t], gt[t]):.2f}", fontsize=7)
        ax.axis("off")
    handles = [Line2D([], [], color=GT_COLOR, lw=1.2, label="ground truth"),
               Line2D([], [], color=PRED_COLOR, lw=1.2, label="propagated from the model's key-slice boxes")]
    if len(boxes):
        handles.append(Line2D([], [], color=PRED_COLOR, lw=1.0, ls="--", label="model's boxes (key slice)"))
    if title:
        fig.suptitle(wrap(title, 110), fontsize=8)
    fig.tight_layout(rect=(0, 0.25 / fig.get_figheight(), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return fig
