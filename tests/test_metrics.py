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
    out = m.pdice([[[0, 0], [2, 0]], None], gt)
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
