"""Figures a reader can read: whole queries, a legend off the data, at most a page wide, zooms on
small boxes; drawn on small synthetic inputs."""

import matplotlib
import numpy as np

matplotlib.use("Agg")

from medlib.report.viz import PAGE_WIDTH_IN, draw_sample, plot_predictions, zoom_window  # noqa: E402

LONG = ("Which low-density spot in the largest solid organ would a clinician biopsy to confirm the "
        "suspected malignancy? Choose the larger one.")


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (112, 112), dtype=np.uint8)


def test_a_long_query_is_wrapped_whole_not_cut():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_sample(ax, _image(), boxes=[[10, 10, 30, 30]], title=LONG)
    title = ax.get_title()
    assert "\n" in title and " ".join(title.split()) == LONG


def test_zoom_window_holds_both_boxes_with_a_margin_and_stays_in_the_image():
    ys, xs = zoom_window((112, 112), [[50, 60, 54, 64], [58, 60, 60, 66]], margin=1.0)
    assert (xs.start, xs.stop, ys.start, ys.stop) == (40, 70, 48, 78)  # 10 px side + 10 px each way, at (55, 63)
    ys, xs = zoom_window((112, 112), [[0, 0, 100, 110]])
    assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 112, 0, 112)


def test_qualitative_panels_whole_image_zoom_legend_and_page_width():
    items = [dict(image=_image(0), gt_box=[50, 60, 54, 64], box=[58, 60, 60, 66], query=LONG, label="IoU 0.00"),
             dict(image=_image(1), gt_box=[10, 10, 60, 60], box=None, query="right lower lung nodule",
                  label="IoU 0.00")]
    fig = plot_predictions(items, title="best and worst")
    assert fig.get_figwidth() <= PAGE_WIDTH_IN
    top, zoom = fig.axes[0], fig.axes[2]  # column 1: the whole image, then its zoom
    assert " ".join(top.get_title(loc="left").split()[2:]) == LONG  # "IoU 0.00" then the whole query
    assert "no box" in fig.axes[1].get_title(loc="left")
    assert zoom.images[0].get_array().shape == (30, 30)  # the zoom crops around the two small boxes
    dashed = [p for p in zoom.patches if p.get_linestyle() == "--"]
    assert len(dashed) == 1 and tuple(dashed[0].get_xy()) == (18.0, 12.0)  # prediction moved into the crop
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["ground-truth box", "predicted box"]


def test_segmentation_figures_fit_a_page_with_a_legend_under_them():
    from medlib.rewards.analysis import ThresholdFloodSegmenter
    from medlib.segment.figures import plot_prompt_examples, plot_propagation
    from medlib.segment.quality import SegCase2D, SegCase3D, propagate_case

    yy, xx = np.mgrid[:64, :64]
    m = (yy - 30) ** 2 + (xx - 30) ** 2 <= 64
    img = (40 + 150 * m).astype(np.uint8)
    fig = plot_prompt_examples(ThresholdFloodSegmenter(), [SegCase2D("c", "a structure with a long name", img, m)])
    assert fig.get_figwidth() <= PAGE_WIDTH_IN and len(fig.legends) == 1
    z, y, x = np.mgrid[:20, :48, :48]
    gt = ((z - 10) ** 2 / 25 + ((y - 24) ** 2 + (x - 24) ** 2) / 100) <= 1
    case = SegCase3D("v", "s", (200.0 * gt).astype(np.float32), gt, key_slice=10, window=(100, 400))
    pred, _, boxes = propagate_case(ThresholdFloodSegmenter(), case)
    fig = plot_propagation(case, pred, boxes)
    assert fig.get_figwidth() <= PAGE_WIDTH_IN and len(fig.legends) == 1
    assert not fig.axes[-2].get_legend()  # the Dice curve carries no legend over its data


def test_prediction_examples_pick_best_median_worst_and_draw_the_segmenters_mask():
    from medlib.report.viz import best_median_worst, plot_prediction_examples
    from medlib.rewards.analysis import ThresholdFloodSegmenter

    class Rec:
        def __init__(self, seed):
            self.seed = seed

        def load_image(self):
            img = np.full((64, 64), 40, np.uint8)
            img[20:30, 20:30] = 200
            return img

        def load_mask(self):
            m = np.zeros((64, 64), bool)
            m[20:30, 20:30] = True
            return m

    preds = [dict(sample_id=f"s{i}", query=f"q{i}", gt_box=[20, 20, 30, 30], box=[18, 18, 30, 30] if i else None,
                  points=[[24, 24], [26, 26]] if i else None, mask_dice=d) for i, d in enumerate((0.0, 0.9, 0.5, 0.7))]
    assert best_median_worst(preds, "mask_dice") == [1, 2, 0]  # order 0.9, 0.7, 0.5, 0.0: the median is the 3rd
    fig = plot_prediction_examples(preds, {p["sample_id"]: Rec(i) for i, p in enumerate(preds)}, key="mask_dice",
                                   label="Dice", segmenter=ThresholdFloodSegmenter())
    heads = [ax.get_title(loc="left").splitlines()[0] for ax in fig.axes[:3]]
    assert heads == ["Dice 0.90", "Dice 0.50", "Dice 0.00 (no box: refused or unparsable)"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["ground-truth box", "predicted box", "predicted key points", "ground-truth mask", "predicted mask"]
    assert len(fig.axes[0].collections) >= 2  # GT and predicted mask outlines on the first panel


def test_a_wide_laid_out_figure_is_laid_out_again_at_page_width(tmp_path):
    import matplotlib.pyplot as plt

    from medlib.report.viz import save_figure

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8))
    a0.set_ylabel("per-token estimate")
    a1.plot([0, 1], [-20000, 20000])  # wide tick labels: the gap between the panels is all used
    a1.set_ylabel("estimate")
    fig.tight_layout()  # laid out at 10 inches
    save_figure(fig, "wide", tmp_path)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert fig.get_figwidth() == PAGE_WIDTH_IN
    assert a1.yaxis.label.get_window_extent(r).x0 > a0.get_window_extent(r).x1  # its label clears the left panel


def test_propagated_slices_page_wide_titled_with_dice_and_a_legend():
    from medlib.report.viz import plot_propagated_slices

    gt = np.zeros((9, 32, 32), bool)
    gt[2:7, 10:20, 10:20] = True
    pred = np.zeros_like(gt)
    pred[4, 10:20, 10:20] = True
    fig = plot_propagated_slices(200.0 * gt, gt, pred, [2, 4, 6], key_z=4, boxes=[[10, 10, 20, 20]],
                                 title="a query that is long " * 8)
    assert fig.get_figwidth() <= PAGE_WIDTH_IN
    assert [ax.get_title() for ax in fig.axes] == ["z=2\nDice 0.00", "z=4 (key)\nDice 1.00", "z=6\nDice 0.00"]
    assert [t.get_text() for t in fig.legends[0].get_texts()][0] == "ground truth"


def test_records_grid_titles_clear_the_images_above_them():
    from medlib.report.viz import plot_records_grid

    class Rec:
        boxes, points = [[10, 10, 30, 30]], [[20, 20], [22, 22]]
        query = LONG

        def load_image(self):
            return _image()

        def load_mask(self):
            return None

    fig = plot_records_grid([Rec() for _ in range(8)], title="t")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    above, below = fig.axes[0], fig.axes[4]
    assert fig.get_figwidth() <= PAGE_WIDTH_IN
    assert below.title.get_window_extent(r).y1 < above.get_window_extent(r).y0  # the long query fits between rows
    assert " ".join(below.get_title().split()) == LONG
