"""Geometry: hand-computed cases and properties (hypothesis)."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlib import geometry as g

coord = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
box_st = st.tuples(coord, coord, coord, coord).map(lambda b: g.order_corners(b).tolist())


def test_conversions_round_trip():
    assert g.xywh_to_xyxy([10, 20, 30, 40]).tolist() == [10, 20, 40, 60]
    assert g.xyxy_to_xywh([10, 20, 40, 60]).tolist() == [10, 20, 30, 40]
    n = g.normalize_box([50, 25, 100, 75], width=200, height=100)
    assert n.tolist() == [0.25, 0.25, 0.5, 0.75]
    assert g.denormalize_box(n, 200, 100).tolist() == [50, 25, 100, 75]
    assert g.order_corners([10, 8, 2, 4]).tolist() == [2, 4, 10, 8]
    assert g.clip_box([-5, 3, 250, 120], 200, 100).tolist() == [0, 3, 200, 100]


def test_validity():
    assert g.is_valid_box([0, 0, 1, 1])
    assert not g.is_valid_box([5, 0, 1, 1])  # swapped x
    assert not g.is_valid_box([0, 0, 0, 1])  # zero width
    assert not g.is_valid_box([0, float("nan"), 1, 1])
    assert not g.is_valid_box([0, 0, 1])
    assert not g.is_valid_box("abc")
    assert g.is_valid_box([0, 0, 10, 10], width=10, height=10)
    assert not g.is_valid_box([0, 0, 11, 10], width=10, height=10)


def test_iou_hand_computed():
    # [0,0,10,10] vs [5,0,15,10]: inter 5*10=50, union 100+100-50=150
    assert g.box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    # contained: [0,0,4,4] in [0,0,8,8]: 16/64
    assert g.box_iou([0, 0, 4, 4], [0, 0, 8, 8]) == pytest.approx(0.25)
    # touching edges: no overlap
    assert g.box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    # swapped or NaN boxes count as empty
    assert g.box_iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0
    assert g.box_iou([0, 0, float("nan"), 10], [0, 0, 10, 10]) == 0.0
    assert g.box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_iou_matrix_matches_pairs():
    rng = np.random.default_rng(0)
    a = g.order_corners(rng.uniform(0, 100, (5, 4)))
    b = g.order_corners(rng.uniform(0, 100, (3, 4)))
    m = g.box_iou_matrix(a, b)
    assert m.shape == (5, 3)
    for i, j in itertools.product(range(5), range(3)):
        assert m[i, j] == pytest.approx(g.box_iou(a[i], b[j]))
    assert g.box_iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


@given(box_st, box_st)
@settings(max_examples=200, deadline=None)
def test_iou_properties(a, b):
    iou = g.box_iou(a, b)
    assert 0.0 <= iou <= 1.0
    assert iou == pytest.approx(g.box_iou(b, a))


@given(box_st, st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
@settings(max_examples=200, deadline=None)
def test_iou_identity_and_translation(a, dx, dy):
    if g.box_area(a) > 1e-3:
        assert g.box_iou(a, a) == pytest.approx(1.0)
    b = [a[0] + 7, a[1] - 3, a[2] + 11, a[3] + 2]
    t = np.array([dx, dy, dx, dy])
    assert g.box_iou(np.add(a, t), np.add(b, t)) == pytest.approx(g.box_iou(a, b), abs=1e-6)


def _brute_force_best(iou):
    n, m = iou.shape
    best = 0.0
    if n <= m:
        for perm in itertools.permutations(range(m), n):
            best = max(best, sum(iou[i, perm[i]] for i in range(n)))
    else:
        for perm in itertools.permutations(range(n), m):
            best = max(best, sum(iou[perm[j], j] for j in range(m)))
    return best


@pytest.mark.parametrize("n,m,seed", [(1, 1, 0), (2, 3, 1), (3, 2, 2), (4, 4, 3), (3, 5, 4), (5, 3, 5)])
def test_hungarian_optimal_against_brute_force(n, m, seed):
    rng = np.random.default_rng(seed)
    pred = g.order_corners(rng.uniform(0, 50, (n, 4)))
    gt = g.order_corners(rng.uniform(0, 50, (m, 4)))
    r, c, ious = g.hungarian_match(pred, gt)
    assert len(r) == min(n, m) and len(set(r)) == len(r) and len(set(c)) == len(c)
    assert ious.sum() == pytest.approx(_brute_force_best(g.box_iou_matrix(pred, gt)))


def test_hungarian_picks_the_right_partner():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    pred = [[21, 20, 31, 30], [0, 1, 10, 11]]
    r, c, ious = g.hungarian_match(pred, gt)
    assert dict(zip(r.tolist(), c.tolist())) == {0: 1, 1: 0}
    # each pair: shifted by 1 px along one axis -> inter 90, union 110
    assert ious.tolist() == pytest.approx([90 / 110, 90 / 110])
    assert len(g.hungarian_match(np.zeros((0, 4)), gt)[0]) == 0


def test_disc_dice_hand_computed():
    # identical pairs -> 1; the order of the endpoints does not matter
    assert g.point_pair_disc_dice([[0, 0], [2, 0]], [[2, 0], [0, 0]]) == pytest.approx(1.0)
    # concentric discs r=1 and r=2: inter = pi*1, areas pi + 4pi -> 2/5
    assert g.point_pair_disc_dice([[-1, 0], [1, 0]], [[-2, 0], [2, 0]]) == pytest.approx(0.4)
    # disjoint discs
    assert g.point_pair_disc_dice([[0, 0], [2, 0]], [[10, 0], [12, 0]]) == 0.0
    # two unit discs whose centres are 1 apart: lens area 2*acos(1/2) - (1/2)*sqrt(3)
    lens = 2 * math.acos(0.5) - 0.5 * math.sqrt(3)
    assert g.point_pair_disc_dice([[-1, 0], [1, 0]], [[0, 0], [2, 0]]) == pytest.approx(2 * lens / (2 * math.pi))
    assert g.point_pair_disc_dice([[0, 0], [float("nan"), 0]], [[0, 0], [2, 0]]) == 0.0


def test_mask_to_boxes_components():
    m = np.zeros((20, 30), bool)
    m[2:5, 3:9] = True  # 3x6 = 18 px -> [3, 2, 9, 5]
    m[10:18, 20:25] = True  # 8x5 = 40 px -> [20, 10, 25, 18]
    m[0, 29] = True  # single pixel
    boxes = g.mask_to_boxes(m)
    assert boxes.tolist() == [[20, 10, 25, 18], [3, 2, 9, 5], [29, 0, 30, 1]]
    assert g.mask_to_boxes(m, min_area=2).shape == (2, 4)
    assert g.mask_to_box(m).tolist() == [3, 0, 30, 18]
    assert g.mask_to_box(np.zeros((4, 4))) is None
    # diagonal neighbours: one component with 8-connectivity, two with 4-connectivity
    d = np.eye(3, dtype=bool)
    assert len(g.mask_to_boxes(d, connectivity=2)) == 1
    assert len(g.mask_to_boxes(d, connectivity=1)) == 3


def test_largest_component_3d():
    v = np.zeros((5, 10, 10), bool)
    v[1:4, 1:4, 1:4] = True  # 27 voxels
    v[0, 8, 8] = True
    lc = g.largest_component(v)
    assert lc.sum() == 27 and not lc[0, 8, 8]


@pytest.mark.parametrize("h,w", [(1000, 800), (224, 224), (30, 30), (2048, 2500), (333, 517), (56, 3000)])
def test_qwen_resize_matches_transformers(h, w):
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    ours = g.qwen_smart_resize(h, w)
    theirs = smart_resize(h, w, factor=28, min_pixels=g.QWEN_MIN_PIXELS, max_pixels=g.QWEN_MAX_PIXELS)
    assert ours == tuple(theirs)
    assert ours[0] % 28 == 0 and ours[1] % 28 == 0


def test_model_frame_round_trip_lands_on_same_pixels():
    f = g.ModelFrame.for_qwen(width=1000, height=800)
    assert (f.model_width, f.model_height) == (1008, 812)
    gt = np.array([100, 200, 300, 420])
    back = f.box_to_original(f.box_to_model(gt))
    assert np.allclose(back, gt)
    # the integer box written in the prompt maps back to within one original pixel
    ib = f.box_to_original(f.box_to_model_int(gt))
    assert np.all(np.abs(ib - gt) <= 1.0)
    # image_grid_thw for 812x1008 is (1, 58, 72): 58*14 = 812, 72*14 = 1008
    f2 = g.ModelFrame.from_grid_thw(1000, 800, [1, 58, 72])
    assert f2 == f
