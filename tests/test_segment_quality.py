"""medlib.segment.quality: prompts derived from masks, Dice tables, records in. The segmenter
here is an oracle (ground truth inside the box), so every number is hand-checkable."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medlib.data.io import write_volume_nifti
from medlib.data.records import Grounding2D, Grounding3D
from medlib.segment.quality import (
    SegCase2D,
    SegCase3D,
    cases_2d_from_records,
    cases_3d_from_records,
    interior_points,
    key_slice_of,
    measure_2d,
    measure_3d,
    per_structure_table,
)


class BoxOracle:
    """Returns the box region (2D) / the box region on every slice (3D); points alone give the
    3x3 square around the first point."""

    name = "oracle"

    def segment_2d(self, image, box=None, points=None):
        m = np.zeros(image.shape[:2], bool)
        if box is not None:
            x1, y1, x2, y2 = (int(v) for v in box)
            m[y1:y2, x1:x2] = True
        elif points is not None:
            x, y = (int(v) for v in np.asarray(points)[0])
            m[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = True
        return m

    def propagate_3d(self, volume, key_slice, boxes, window=None):
        self.window = window
        m = np.zeros(volume.shape, bool)
        for b in boxes:
            x1, y1, x2, y2 = (int(v) for v in b)
            m[:, y1:y2, x1:x2] = True
        return m


def test_interior_points_are_inside_and_apart():
    m = np.zeros((20, 60), bool)
    m[5:15, 5:55] = True  # a 10 x 50 bar: deepest pixels along the middle row
    p = interior_points(m)
    assert p.shape == (2, 2) and all(m[int(y), int(x)] for x, y in p)
    # point 1 is at depth 5 (rows 9/10 of 5..14); point 2 lies outside the radius-5 disc
    assert np.hypot(*(p[0] - p[1])) >= 5
    single = np.zeros((5, 5), bool)
    single[2, 2] = True
    np.testing.assert_array_equal(interior_points(single), [[2, 2], [2, 2]])
    with pytest.raises(ValueError):
        interior_points(np.zeros((3, 3), bool))


def test_key_slice_is_largest_area():
    m = np.zeros((4, 5, 5), bool)
    m[1, :2, :2] = True  # 4 voxels
    m[2, :3, :3] = True  # 9 voxels
    m[3, :3, :3] = True  # 9 again: the first wins
    assert key_slice_of(m) == 2
    with pytest.raises(ValueError, match="non-empty 3D"):
        key_slice_of(np.zeros((2, 3, 3), bool))


def test_measure_2d_table_hand_checked():
    img = np.zeros((10, 10), np.uint8)
    gt = np.zeros((10, 10), bool)
    gt[2:6, 2:6] = True  # 16 px
    cases = [
        SegCase2D("a", "liver", img, gt),  # box from the mask: exact
        SegCase2D("b", "liver", img, gt, boxes=[[2, 2, 6, 4]]),  # half the structure: 8 px
        SegCase2D("c", "kidney", img, gt, boxes=[[2, 2, 4, 4], [4, 4, 6, 6]]),  # union 8 px
    ]
    rows = measure_2d(BoxOracle(), cases, prompts=("box", "points"))
    box = rows[rows.prompt == "box"].set_index("case_id")
    assert box.loc["a", "dice"] == 1.0
    # 8 of 16 px, nothing outside: Dice 2 * 8 / (8 + 16) = 2/3, IoU 8/16
    assert box.loc["b", "dice"] == pytest.approx(2 / 3) and box.loc["b", "iou"] == 0.5
    assert box.loc["c", "dice"] == pytest.approx(2 / 3) and box.loc["c", "pred_area"] == 8
    pts = rows[rows.prompt == "points"].set_index("case_id")
    assert pts.loc["a", "pred_area"] == 9  # 3x3 around an interior point, all inside the square
    assert pts.loc["a", "dice"] == pytest.approx(2 * 9 / 25)
    table = per_structure_table(rows, by=("prompt",))
    liver_box = table[(table.structure == "liver") & (table.prompt == "box")].iloc[0]
    assert liver_box.dice_mean == pytest.approx((1 + 2 / 3) / 2) and liver_box.n == 2
    all_box = table[(table.structure == "ALL") & (table.prompt == "box")].iloc[0]
    assert all_box.dice_mean == pytest.approx((1 + 2 / 3 + 2 / 3) / 3) and all_box.n == 3
    with pytest.raises(ValueError, match="unknown prompt kinds"):
        measure_2d(BoxOracle(), cases, prompts=("scribble",))


def test_measure_3d_uses_key_slice_components_and_window():
    gt = np.zeros((5, 12, 12), bool)
    gt[1:4, 2:5, 2:5] = True  # 27 voxels
    gt[2, 8:10, 8:10] = True  # second component only on slice 2 (the key slice: 13 px)
    oracle = BoxOracle()
    rows = measure_3d(oracle, [SegCase3D("v", "lesion", np.zeros(gt.shape), gt, window=(50, 350))])
    r = rows.iloc[0]
    assert r.key_slice == 2 and r.n_boxes == 2 and oracle.window == (50, 350)
    # oracle fills both boxes on all 5 slices: 5 * (9 + 4) = 65 voxels, 31 of them true
    assert r.pred_voxels == 65 and r.gt_voxels == 31 and r.dice == pytest.approx(2 * 31 / 96)
    assert per_structure_table(rows, by=()).iloc[-1].structure == "ALL"


def test_cases_from_records(tmp_path):
    img = np.zeros((8, 8), np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 3:6] = 255
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    rec = Grounding2D("s1", "toy", "test", tmp_path / "img.png", "the lesion", [(3, 2, 6, 5)], mask_path=tmp_path / "mask.png", label="lesion")
    (c,) = cases_2d_from_records([rec])
    assert c.structure == "lesion" and c.mask.sum() == 9 and c.boxes == [(3, 2, 6, 5)]
    assert measure_2d(BoxOracle(), [c]).dice.iloc[0] == 1.0
    no_mask = Grounding2D("s2", "toy", "test", tmp_path / "img.png", "q", [(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="s2: record has no mask_path"):
        cases_2d_from_records([no_mask])
    vol = np.zeros((3, 6, 6), np.int16)
    seg = np.zeros((3, 6, 6), np.uint8)
    seg[1, 1:3, 1:4] = 2
    write_volume_nifti(tmp_path / "v.nii.gz", vol)
    write_volume_nifti(tmp_path / "m.nii.gz", seg)
    r3 = Grounding3D("v1", "toy", "test", tmp_path / "v.nii.gz", tmp_path / "m.nii.gz", "kidney", mask_value=2)
    (c3,) = cases_3d_from_records([r3])
    assert c3.volume.shape == (3, 6, 6) and c3.mask.sum() == 6 and c3.key_slice is None
    assert measure_3d(BoxOracle(), [c3]).iloc[0].key_slice == 1
