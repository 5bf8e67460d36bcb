"""Records -> TRL rows: every coordinate is in the model frame, and each paper's SFT target earns
the full reward from that paper's own reward functions (rows and rewards agree on the columns)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medlib.geometry import ModelFrame, box_iou
from medlib.models import build_tiny_qwen25vl, load_processor, model_frame
from medlib.parsing import parse_medground
from medlib.rewards.registry import build_reward_set
from medlib.train.config import config_from_dict
from medlib.train.datasets import (
    build_rows,
    derive_key_points,
    load_records,
    reframe_text,
    top_k_key_slice,
    uniform_slices,
)

SMALL = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
         "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500}


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    d = build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "m", **SMALL)
    # 100 x 100 images are resized to 112 x 112: the model frame differs from the image
    return load_processor(d, min_pixels=3136, max_pixels=50176)


def _cfg(tmp_path, paper, source, **data):
    extra = {"grpo": {"reward_options": {"segmenter": "litemedsam"}}} if paper == "medvol" else {}
    return config_from_dict({"paper": paper, "name": "t", "output_dir": str(tmp_path / "runs"), "progress": False,
                             "data": {"source": source, "root": str(tmp_path / source), **data}, **extra})


def _text(row) -> str:
    return row["completion"][0]["content"][0]["text"]


def _rewards(paper, rows, **options):
    funcs, _ = build_reward_set(paper, None, **options)
    cols = {k: [r[k] for r in rows] for k in rows[0] if k not in ("prompt", "completion")}
    comps = [r["completion"] for r in rows]
    return {f.__name__: f([r["prompt"] for r in rows], comps, **cols) for f in funcs}


def test_medground_rows_are_in_the_model_frame_and_the_target_earns_full_reward(tmp_path, processor):
    cfg = _cfg(tmp_path, "medground", "toy2d", sizes={"train": 6}, image_size=100)
    recs = load_records(cfg, "train")
    rows = build_rows(cfg, recs, processor, with_completion=True)
    assert len(rows) == 6
    for rec, row in zip(recs, rows):
        frame = model_frame(processor, 100, 100)
        assert frame == ModelFrame(100, 100, 112, 112) and row["model_size"] == [112, 112]
        assert row["solution"] == frame.box_to_model_int(rec.box)
        assert row["image"].size == (100, 100) and row["image"].mode == "RGB"  # the original image
        assert parse_medground(_text(row)).box == tuple(float(v) for v in row["solution"])
        assert row["prompt"][0]["content"][0] == {"type": "image"}
        assert rec.query in row["prompt"][0]["content"][1]["text"]
    r = _rewards("medground", rows, semantic_scorer="mean-intensity")
    assert r["medground_format"] == [1.0] * 6 and r["medground_spatial"] == [1.0] * 6
    # the semantic reward crops the predicted box mapped back to the 100 x 100 image with
    # model_size; the test scorer gives cos(pi * (mean crop intensity - 1)) for a "bright" phrase
    for row, got in zip(rows, r["medground_semantic"]):
        b = ModelFrame(100, 100, 112, 112).box_to_original(row["solution"])
        x1, y1, x2, y2 = int(np.floor(b[0] + 1e-6)), int(np.floor(b[1] + 1e-6)), int(np.ceil(b[2] - 1e-6)), int(np.ceil(b[3] - 1e-6))
        m = np.asarray(row["image"], dtype=float)[y1:y2, x1:x2].mean() / 255
        assert got == pytest.approx(np.cos(np.pi * (m - 1.0)), abs=1e-9)
        assert got > 0.6  # target 220 grey; a box on the 60-grey background would give cos(0.76 pi) = -0.74


def test_medreasoner_rows_with_points_earn_full_reward(tmp_path, processor):
    cfg = _cfg(tmp_path, "medreasoner", "toy2d", sizes={"train": 5}, image_size=100, template="reasoning")
    rows = build_rows(cfg, load_records(cfg, "train"), processor, with_completion=True)
    for row in rows:
        (x1, y1, x2, y2), pts = row["solution"], row["points"]
        assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in pts)  # key points inside the box
        assert pts[0] != pts[1]
    r = _rewards("medreasoner", rows)
    # soft set of the public code: think 1, answer 1, smooth_log(IoU 1) = 1, smooth_log(pDice 1) = 1
    for name in ("medreasoner_format_think", "medreasoner_format_answer", "medreasoner_box_iou",
                 "medreasoner_points_dice"):
        assert r[name] == pytest.approx([1.0] * 5), name
    direct = build_rows(_cfg(tmp_path, "medreasoner", "toy2d", image_size=100, template="direct"),
                        load_records(cfg, "train")[:1], processor, with_completion=True)[0]
    assert _text(direct).startswith("<answer>") and "with bbox and points" in direct["prompt"][0]["content"][1]["text"]


def test_umrg_reasoning_is_moved_into_the_model_frame(tmp_path, processor):
    cfg = _cfg(tmp_path, "medreasoner", "umrg_synth", sizes={"train": 3}, image_size=100)
    recs = load_records(cfg, "train")
    rows = build_rows(cfg, recs, processor, with_completion=True)
    for rec, row in zip(recs, rows):
        orig = json.dumps([int(v) for v in rec.box])
        assert orig in rec.reasoning  # the dataset's CoT cites the box in original pixels...
        assert json.dumps(row["solution"]) in _text(row).split("</think>")[0]  # ...the target, in the model's


def test_medvol_rows_and_sft_targets(tmp_path, processor):
    # 56 x 56 slices of a 64-pixel volume; model frame 56 x 56
    cfg = _cfg(tmp_path, "medvol", "toy3d", sizes={"train": 3}, volume_shape=[20, 64, 64], n_slices=6,
               slice_size=56, top_k=1)
    recs = load_records(cfg, "train")
    rows = build_rows(cfg, recs, processor, with_completion=True)
    for row in rows:
        assert row["slice_indices"] == uniform_slices(20, 6) == [0, 4, 8, 11, 15, 19]
        assert len(row["images"]) == 6 and row["images"][0].size == (56, 56)
        tags = [p["text"] for p in row["prompt"][0]["content"] if p["type"] == "text"][:6]
        assert tags == [f"<slice {k}>" for k in range(1, 7)]
        assert row["model_size"] == [56, 56]
    funcs, _ = build_reward_set("medvol", {"format": 1, "axial": 1, "spatial": 1})  # R_c needs a segmenter
    cols = {k: [x[k] for x in rows] for k in rows[0] if k not in ("prompt", "completion")}
    r = {f.__name__: f([x["prompt"] for x in rows], [x["completion"] for x in rows], **cols) for f in funcs}
    # Top-1 visibility: the key slice is the shown slice with the largest area -> R_a = 1; its boxes
    # are the connected components scaled 64 -> 56, so the Hungarian IoU is close to 1
    assert r["medvol_format"] == [1.0] * 3 and r["medvol_axial"] == [1.0] * 3
    assert all(v > 0.75 for v in r["medvol_spatial"]), r["medvol_spatial"]


def test_volumes_whose_target_is_not_sampled_are_skipped(tmp_path, processor):
    from medlib.data.io import DatasetError

    cfg = _cfg(tmp_path, "medvol", "toy3d", sizes={"train": 2}, volume_shape=[20, 32, 32], n_slices=1, slice_size=28)
    recs = load_records(cfg, "train")
    # keep only slice 0 (the single uniform sample) empty by construction
    for r in recs:
        m = np.load(r.mask_path)
        m[0] = 0
        np.save(r.mask_path, m)
    with pytest.warns(UserWarning, match="skipped 2 of 2"), pytest.raises(DatasetError, match="n_slices"):
        build_rows(cfg, recs, processor, with_completion=True)


def test_top_k_visibility_sampling():
    areas = np.array([0.0, 5.0, 50.0, 40.0, 0.0, 30.0])
    rng = np.random.default_rng(0)
    draws = {top_k_key_slice(areas, 2, rng) for _ in range(200)}
    assert draws == {2, 3}  # the two largest, both drawn
    assert top_k_key_slice(areas, 10, rng) in {1, 2, 3, 5}  # never an empty slice
    assert top_k_key_slice(np.zeros(4), 3, rng) is None
    assert uniform_slices(5, 10) == [0, 1, 2, 3, 4]


def test_derived_key_points_lie_inside_the_target():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:55] = True
    p1, p2 = derive_key_points((5, 10, 55, 30), mask)
    # deepest pixel: the centre row of the rectangle; second point far from it but still deep
    assert mask[int(p1[1]), int(p1[0])] and mask[int(p2[1]), int(p2[0])] and p1 != p2
    assert abs(p1[1] - 20) <= 1
    q1, q2 = derive_key_points((0, 0, 40, 10))  # no mask: along the longer side
    assert q1 == (10.0, 5.0) and q2 == (30.0, 5.0)


def test_reframe_text():
    f = ModelFrame(100, 50, 200, 100)
    assert reframe_text("box [10, 5, 20, 15] at (30, 40)", f) == "box [20, 10, 40, 30] at (60, 80)"
    same = ModelFrame(10, 10, 10, 10)
    assert reframe_text("[1, 2, 3, 4]", same) == "[1, 2, 3, 4]"


def test_chest_benchmark_rows(tmp_path, processor):
    cfg = _cfg(tmp_path, "medground", "chest", sizes={"train": 4}, image_size=112, template="chain_of_box",
               max_samples=3)
    recs = load_records(cfg, "train")
    assert len(recs) == 3 and (tmp_path / "chest" / "ms_cxr" / "MS_CXR_train.json").is_file()
    rows = build_rows(cfg, recs, processor, with_completion=True)
    for rec, row in zip(recs, rows):
        # 112 x 112 stays 112 x 112: the model-frame box is the annotation itself
        assert box_iou(row["solution"], rec.box) > 0.99
        assert "[x1, y1, x2, y2]" in row["prompt"][0]["content"][1]["text"]
    img = Image.open(recs[0].image_path)
    assert img.size == (112, 112)
