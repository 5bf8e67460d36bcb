"""Metrics: hand-computed cases and bootstrap behaviour."""

import numpy as np
import pytest

from medlib import metrics as m


def test_grounding_metrics_hand_computed():
    gt = [[0, 0, 10, 10]] * 4
    pred = [
        [0, 0, 10, 10],  # IoU 1
        [5, 0, 15, 10],  # 50/150 = 1/3 -> miss
        [0, 0, 10, 6],  # 60/100 = 0.6 -> hit
        None,  # refusal -> IoU 0
    ]
    out = m.grounding_metrics(pred, gt, n_boot=200)
    assert out["mIoU"]["mean"] == pytest.approx(100 * (1 + 1 / 3 + 0.6 + 0) / 4)
    assert out["Acc"]["mean"] == pytest.approx(50.0)
    assert out["refusals"] == 1 and out["n"] == 4
    assert out["Acc"]["ci_low"] <= 50.0 <= out["Acc"]["ci_high"]


def test_acc_threshold_is_strict():
    # IoU exactly 0.5 is not a hit (Acc counts IoU > 0.5): [0,0,10,10] vs [0,0,10,5] = 50/100
    out = m.grounding_metrics([[0, 0, 10, 5]], [[0, 0, 10, 10]], n_boot=10)
    assert out["mIoU"]["mean"] == pytest.approx(50.0)
    assert out["Acc"]["mean"] == 0.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="predictions"):
        m.per_sample_iou([[0, 0, 1, 1]], [])


def test_refusals():
    assert m.refusal_count([None, [1, 2, 3], "x", [0, 0, 1, float("nan")], [0, 0, 1, 1]]) == 4


def test_dice_and_iou_masks():
    p = np.zeros((4, 4), bool)
    g = np.zeros((4, 4), bool)
    p[0, :3] = True  # 3 px
    g[0, 1:] = True  # 3 px, overlap 2
    assert m.dice(p, g) == pytest.approx(2 * 2 / 6)
    assert m.mask_iou(p, g) == pytest.approx(2 / 4)
    assert m.dice(np.zeros(3), np.zeros(3)) == 1.0
    assert m.dice(np.zeros(3), np.ones(3)) == 0.0
    with pytest.raises(ValueError):
        m.dice(np.zeros(3), np.zeros(4))


def test_volume_metrics():
    a = np.zeros((2, 3, 3), bool)
    a[0] = True  # 9 voxels
    b = np.zeros((2, 3, 3), bool)
    b[:, 0, :] = True  # 6 voxels, overlap 3
    out = m.volume_metrics([a], [b], n_boot=10)
    assert out["DSC"]["mean"] == pytest.approx(100 * 2 * 3 / 15)
    assert out["IoU"]["mean"] == pytest.approx(100 * 3 / 12)


def test_pdice_missing_prediction_is_zero():
    gt = [[[0, 0], [2, 0]], [[0, 0], [2, 0]]]
    out = m.pdice([[[0, 0], [2, 0]], None], gt, "paper")
    assert out.tolist() == pytest.approx([1.0, 0.0])


def test_bootstrap_interval_behaviour():
    rng = np.random.default_rng(0)
    x = rng.normal(10, 1, 400)
    lo, hi = m.bootstrap_ci(x, seed=1)
    # the interval brackets the mean and has width close to 2 * 1.96 * sigma / sqrt(n) = 0.196
    assert lo < x.mean() < hi
    assert 0.14 < hi - lo < 0.26
    # deterministic for a seed
    assert m.bootstrap_ci(x, seed=1) == (lo, hi)
    assert m.bootstrap_ci([3.0]) == (3.0, 3.0)
    assert all(np.isnan(m.bootstrap_ci([])))
    # a non-mean statistic works too
    lo_med, hi_med = m.bootstrap_ci(x, stat=np.median, n_boot=300)
    assert lo_med < np.median(x) < hi_med


# ------------------------------------------------------------- MedReasoner metric variants
def test_pdice_official_is_twice_the_disc_iou_paper_is_eq5():
    unit = [[0, 0], [2, 0]]  # disc of radius 1 centred at (1, 0), area pi
    big = [[-1, 0], [3, 0]]  # concentric disc of radius 2, area 4 pi
    far = [[10, 0], [12, 0]]
    # identical discs: Eq. 5 gives 1, the public code 2 pi / (pi + 1e-5)
    assert m.pdice([unit], [unit], "paper")[0] == pytest.approx(1.0)
    assert m.pdice([unit], [unit], "official")[0] == pytest.approx(2 * np.pi / (np.pi + 1e-5), rel=1e-12)
    # concentric radii 1 and 2: intersection pi, union 4 pi, areas 5 pi
    assert m.pdice([unit], [big], "paper")[0] == pytest.approx(2 / 5)
    assert m.pdice([unit], [big], "official")[0] == pytest.approx(2 * np.pi / (4 * np.pi + 1e-5), rel=1e-12)
    # disjoint, missing, malformed: 0 in both
    for v in m.MEDREASONER_VARIANTS:
        assert m.pdice([far, None, [[0, 0]], [[np.nan, 0], [1, 1]]], [unit] * 4, v).tolist() == [0.0] * 4
    # the default is the public evaluation's (what produced the paper's tables)
    assert m.pdice([unit], [big])[0] == m.pdice([unit], [big], "official")[0]
    with pytest.raises(ValueError, match="metric variant 'eq5'"):
        m.pdice([unit], [big], "eq5")


def test_pdice_official_partial_overlap_hand_computed():
    # two unit discs whose centres are 1 apart: lens area 2 acos(1/2) - sqrt(3)/2
    a, b = [[-1, 0], [1, 0]], [[0, 0], [2, 0]]
    lens = 2 * np.arccos(0.5) - np.sqrt(3) / 2
    assert m.pdice([a], [b], "official")[0] == pytest.approx(2 * lens / (2 * np.pi - lens + 1e-5), rel=1e-9)
    assert m.pdice([a], [b], "paper")[0] == pytest.approx(2 * lens / (2 * np.pi), rel=1e-9)


def test_medreasoner_box_iou_variants():
    pred, gt = [[0, 0, 2, 2]], [[1, 1, 3, 3]]  # intersection 1, union 7
    assert m.medreasoner_box_iou(pred, gt, "official")[0] == pytest.approx(1 / (7 + 1e-6), rel=1e-12)
    assert m.medreasoner_box_iou(pred, gt, "paper")[0] == pytest.approx(1 / 7, rel=1e-12)
    # a box given as [x2, y1, x1, y2] has no intersection: 0, never an error; a refusal is 0
    assert m.medreasoner_box_iou([[2, 0, 0, 2], None], [[0, 0, 2, 2]] * 2, "official").tolist() == [0.0, 0.0]
    # the +1e-6: two identical zero-area boxes give 0 / 1e-6 = 0 (no division by zero)
    assert m.medreasoner_box_iou([[1, 1, 1, 5]], [[1, 1, 1, 5]], "official")[0] == 0.0


def test_mask_dice_variants():
    p, g = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    p[0, :3] = True  # 3 px
    g[0, 1:] = True  # 3 px in row 0 ...
    g[1, :2] = True  # ... and 2 in row 1: 5 px, 2 shared with p
    assert m.mask_dice(p, g, "paper") == pytest.approx(2 * 2 / 8)
    assert m.mask_dice(p, g, "official") == pytest.approx(4 / (8 + 1e-6), rel=1e-12)
    empty = np.zeros((4, 4), bool)
    assert m.mask_dice(empty, empty, "paper") == 1.0  # nothing to find, nothing found
    assert m.mask_dice(empty, empty, "official") == 0.0  # the public code's +1e-6


def test_windowed_dice_hand_computed_and_empty_window_scores_zero():
    from medlib.metrics import EMPTY_WINDOW_DICE, windowed_dice

    gt = np.zeros((6, 4, 4), dtype=bool)
    pred = np.zeros_like(gt)
    gt[2, :2, :2] = True  # 4 voxels on z2
    pred[2, :2, :1] = True  # 2 inside
    pred[4, :2, :2] = True  # 4 on z4 (outside a window ending at z3)
    assert windowed_dice(pred, gt, 1, 3) == pytest.approx(2 * 2 / (2 + 4))
    assert windowed_dice(pred, gt, 1, 4) == pytest.approx(2 * 2 / (6 + 4))
    assert windowed_dice(pred, gt, -5, 99) == pytest.approx(4 / 10)  # clipped to the volume
    assert EMPTY_WINDOW_DICE == 0.0 and windowed_dice(pred, gt, 0, 1) == 0.0  # both empty there
    assert windowed_dice(pred, gt, 4, 3) == 0.0  # an empty range
    with pytest.raises(ValueError, match="shapes differ"):
        windowed_dice(pred, gt[:3], 0, 1)
