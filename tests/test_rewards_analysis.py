"""medlib.rewards.analysis (notebook 02): smoothing curves, reward landscape, validity penalty,
worked examples and the paper-vs-code table, against hand arithmetic and the reward code."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from medlib.rewards import build_reward_set, default_weights
from medlib.rewards.analysis import (
    DEFAULT_CHOICES,
    DISAGREEMENT_COLUMNS,
    GroundingExample,
    ThresholdFloodSegmenter,
    chest_example,
    disagreements,
    key_points_in_box,
    landscape_example,
    medground_completion,
    medreasoner_completion,
    medvol_completion,
    penalty_effect,
    pivot_worked,
    reward_landscape,
    slid_boxes,
    smoothing_curves,
    synthetic_example,
    synthetic_volume_example,
    worked_example,
    worked_medground,
    worked_medreasoner,
    worked_medvol,
)
from medlib.rewards.medground import MedGroundFormat, MedGroundSemantic
from medlib.rewards.medreasoner import medreasoner_scores
from medlib.rewards.smoothing import smooth_exp_official, smooth_exp_paper
from medlib.segment.base import Segmenter
from medlib.semantic.stand_in import MeanIntensityScorer

ROOT = Path(__file__).resolve().parents[1]
E3 = math.exp(3.0)


# ------------------------------------------------------------------------- smoothing
def test_smoothing_curves_are_monotone_and_hit_the_documented_endpoints():
    df = smoothing_curves(n=101)
    assert set(df.columns) >= {"function", "variant", "c", "x", "value", "in_domain"}
    ends = {}
    for (f, v, c), g in df.groupby(["function", "variant", "c"], dropna=False):
        d = np.diff(g.sort_values("x").value.to_numpy())
        assert (d > 0).all() if f == "smooth_log" else (d < 0).all(), (f, v, c)
        dom = g[g.in_domain]
        ends[(f, v, None if np.isnan(c) else c)] = (dom.value.iloc[0], dom.value.iloc[-1], dom.x.max())
    # Fig. 12 / official: 0.9 ln(3r + 1) / ln 4 + 0.1 -> 0.1 at r = 0, 1.0 at r = 1; domain [0, 1]
    assert ends[("smooth_log", "official", None)] == pytest.approx((0.1, 1.0, 1.0))
    # Eq. 8: ln(3r + 1) / ln 4 -> 0 .. 1
    assert ends[("smooth_log", "paper", None)] == pytest.approx((0.0, 1.0, 1.0))
    # Fig. 13 / official: min-max normalised sigmoid, 0.9 s + 0.1 -> 1.0 at d = 0, 0.1 at d = 2, for any c
    assert ends[("smooth_exp", "official", 1.0)] == pytest.approx((1.0, 0.1, 2.0), abs=1e-7)
    assert ends[("smooth_exp", "official", 0.5)] == pytest.approx((1.0, 0.1, 2.0), abs=1e-7)
    # Eq. 9 unnormalised, c = 1: 1 / (1 + e^-3) = 0.952574 at d = 0, 1 / (1 + e^3) = 0.047426 at d = 2
    assert ends[("smooth_exp", "paper", 1.0)] == pytest.approx((1 / (1 + 1 / E3), 1 / (1 + E3), 2.0))
    # beyond the log domain (official pDice = 2 IoU): 0.9 ln 7 / ln 4 + 0.1 = 1.36331 at 2
    log_off = df[(df.function == "smooth_log") & (df.variant == "official")]
    assert log_off.value.max() == pytest.approx(0.9 * math.log(7) / math.log(4) + 0.1)
    assert not log_off[log_off.x > 1].in_domain.any()


# ------------------------------------------------------------------------- landscape
def square_example(w: int = 30) -> GroundingExample:
    """120 x 120 black image, a white GT square [45, 45, 45 + w, 45 + w], a 'bright' phrase."""
    img = np.zeros((120, 120), dtype=np.uint8)
    img[45 : 45 + w, 45 : 45 + w] = 255
    box = np.array([45, 45, 45 + w, 45 + w])
    return GroundingExample(img, box, "bright opacity", key_points_in_box(box), "test square")


def test_slid_boxes_stay_inside_the_image_and_keep_their_size():
    dx, boxes = slid_boxes([10, 5, 40, 25], width=100, max_shift=1.5)
    # w = 30: left limit max(-45, -10) = -10, right limit min(45, 100 - 40) = 45
    assert dx[0] == -10 and dx[-1] == 45 and len(dx) == 56
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 100).all()
    assert ((boxes[:, 2] - boxes[:, 0]) == 30).all() and (boxes[:, [1, 3]] == [5, 25]).all()


def test_thresholded_iou_is_a_step_at_half_and_continuous_iou_peaks_at_zero_shift():
    ex = square_example(30)
    df = reward_landscape(ex, MeanIntensityScorer())
    by_dx = df.set_index("dx_px")
    # pure shift of a width-30 box: IoU = (30 - |dx|) / (30 + |dx|)
    d = np.abs(df.dx_px.to_numpy())
    assert df.medground_iou.to_numpy() == pytest.approx(np.clip((30 - d) / (30 + d), 0, None))
    assert by_dx.loc[0, "medground_iou"] == 1.0 and df.medground_iou.idxmax() == by_dx.index.get_loc(0)
    # the step: dx = 9 -> 21/39 = 0.538 > 0.5 -> 1; dx = 10 -> 20/40 = 0.5, not > 0.5 -> 0
    assert by_dx.loc[9, "medground_spatial"] == 1.0 and by_dx.loc[-9, "medground_spatial"] == 1.0
    assert by_dx.loc[10, "medground_spatial"] == 0.0 and by_dx.loc[-10, "medground_spatial"] == 0.0
    assert (df.medground_spatial == (df.iou > 0.5).astype(float)).all()
    assert (np.abs(np.diff(df.medground_spatial)) > 0).sum() == 2  # one step up, one down


def test_semantic_follows_the_crop_and_the_released_variant_is_flat():
    ex = square_example(30)
    df = reward_landscape(ex, MeanIntensityScorer()).set_index("dx_px")
    # test scorer: cos(pi (m - 1)) for a bright phrase, m = mean of the crop = (30 - |dx|) / 30
    assert df.loc[0, "medground_semantic"] == pytest.approx(1.0)
    assert df.loc[15, "medground_semantic"] == pytest.approx(math.cos(math.pi * -0.5), abs=1e-12)
    assert df.loc[30, "medground_semantic"] == pytest.approx(-1.0)
    # whole image: mean 900 / 14400 = 0.0625 -> cos(pi (0.0625 - 1)) < 0 -> 0 for every shift
    assert set(df.medground_semantic_released) == {0.0}


def test_medreasoner_box_term_has_a_floor_where_iou_is_zero():
    ex = square_example(30)
    df = reward_landscape(ex, MeanIntensityScorer())
    # IoU 0: S_log = 0.1; both GT points outside (v1 = 0.5 * 0.5), same area (v2 = 1)
    # -> 0.1 * (0.7 + 0.3 * 1.25 / 2) = 0.08875, rounded to 4 places
    zero = df[df.iou == 0].medreasoner_box_iou
    assert len(zero) > 0 and zero.to_numpy() == pytest.approx(0.08875, abs=1e-4)
    assert df.medreasoner_box_iou.max() == 1.0


# --------------------------------------------------------------------------- penalty
def test_penalty_effect_hand_values_and_factor():
    gt, pts = [40, 40, 80, 80], [[52, 60], [68, 60]]
    df = penalty_effect(gt, pts, scales=[0.3, 0.5, 1.0, 1.2, 1.5])
    r = df.set_index("scale")
    # s = 0.5: box [50, 50, 70, 70], area ratio 400 / 1600 = 0.25 -> v2 = 0.5; both points inside -> v1 = 1
    # IoU 0.25 -> 0.9 ln 1.75 / ln 4 + 0.1 = 0.463313; x (0.7 + 0.3 * 1.5 / 2) = 0.925 -> 0.428565 -> 0.4286
    assert r.loc[0.5, ["box_position_valid", "box_area_valid", "factor"]].tolist() == [1.0, 0.5, 0.925]
    assert r.loc[0.5, "smoothed"] == pytest.approx(0.9 * math.log(1.75) / math.log(4) + 0.1)
    assert r.loc[0.5, "penalised"] == 0.4286
    # s = 0.3: box [54, 54, 66, 66]: points at x = 52 and 68 fall outside -> v1 = 0.25
    assert r.loc[0.3, "box_position_valid"] == 0.25
    # s = 1: the GT itself, no penalty; s = 1.2: area 1.44 (valid); s = 1.5: 2.25 (invalid)
    assert r.loc[1.0, ["smoothed", "penalised", "factor"]].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert r.loc[1.2, "box_area_valid"] == 1.0 and r.loc[1.5, "box_area_valid"] == 0.5
    assert df.penalised.to_numpy() == pytest.approx((df.smoothed * df.factor).to_numpy(), abs=6e-5)


def test_penalty_effect_paper_variant_is_not_rounded():
    df = penalty_effect([40, 40, 80, 80], [[52, 60], [68, 60]], scales=[0.5, 2.0], variant="paper")
    # Eq. 8: ln(1.75) / ln 4 = 0.403677; x 0.925 = 0.373401 (no rounding)
    assert df.penalised.iloc[0] == pytest.approx(math.log(1.75) / math.log(4) * 0.925, abs=1e-12)
    assert df.penalised.to_numpy() == pytest.approx((df.smoothed * df.factor).to_numpy(), abs=1e-12)


# -------------------------------------------------------------------------- examples
def test_chest_example_is_the_benchmark_image(tmp_path):
    from medlib.data.io import read_image
    from medlib.synthetic import PROFILES
    from medlib.synthetic.chest import generate_chest

    ex = chest_example("tiny", seed=0)
    cfg = PROFILES["tiny"]["chest"]
    generate_chest(tmp_path, cfg["sizes"], cfg["image_size"], seed=0, progress=False)
    rows = json.loads((tmp_path / "ms_cxr" / "MS_CXR_test.json").read_text())
    i = int(ex.source.split("test image ")[1].split(":")[0])
    row = rows[i]
    assert row["phrase"] == ex.phrase
    x, y, w, h = row["bbox"]
    assert ex.gt_box.tolist() == [x, y, x + w, y + h]
    assert np.array_equal(read_image(tmp_path / "ms_cxr" / row["img_file"]), ex.image)


def test_examples_are_deterministic_and_consistent():
    a, b = landscape_example("smoke", 3), landscape_example("smoke", 3)
    assert np.array_equal(a.image, b.image) and a.phrase == b.phrase
    assert landscape_example("no-such-profile", 3).image.shape == a.image.shape  # falls back to smoke
    s = synthetic_example(96, seed=1)
    x1, y1, x2, y2 = s.gt_box
    inside = s.image[y1:y2, x1:x2].mean()
    assert inside > s.image.mean() + 40  # the box holds the bright opacity
    for ex in (a, s):  # key points lie inside the GT box
        p = ex.gt_points
        assert (p[:, 0] >= ex.gt_box[0]).all() and (p[:, 0] <= ex.gt_box[2]).all()
        assert (p[:, 1] >= ex.gt_box[1]).all() and (p[:, 1] <= ex.gt_box[3]).all()


def test_key_points_follow_the_longer_side():
    # wide box 100 x 20: points at x = 0 + 30, 0 + 70 on y = 10
    assert key_points_in_box([0, 0, 100, 20]).tolist() == [[30, 10], [70, 10]]
    assert key_points_in_box([0, 0, 20, 100]).tolist() == [[10, 30], [10, 70]]


# --------------------------------------------------------------------- worked examples
def test_worked_medground_totals_and_variants():
    ex = square_example(30)
    text = medground_completion([48, 45, 78, 75], ex.phrase)  # dx = 3: IoU 27/33 = 0.818
    t = worked_medground(text, ex, MeanIntensityScorer()).set_index(["reward", "setting"]).value
    assert t["spatial"].iloc[0] == 1.0 and t["iou"].iloc[0] == pytest.approx(27 / 33)
    assert t["semantic"].iloc[0] == pytest.approx(math.cos(math.pi * -0.1))  # crop mean 27/30
    assert t["total"].iloc[0] == pytest.approx(1.0 + 1.0 + math.cos(math.pi * -0.1))
    bare = "<think>x</think><answer>[48, 45, 78, 75]</answer>"
    tb = worked_medground(bare, ex, MeanIntensityScorer()).set_index("setting").value
    assert tb["paper (footnote 7, braces)"] == 0.0 and tb["bare box allowed (braces=False)"] == 1.0
    assert MedGroundFormat()([None], [text])[0] == 1.0


def test_worked_medreasoner_scores_match_the_reward_code():
    ex = square_example(30)
    text = medreasoner_completion([46, 45, 76, 75], ex.gt_points + 1)
    t = worked_medreasoner(text, ex)
    for setting, g in t.groupby("setting"):
        mode = setting.split()[0]
        variant = setting.split(" / ")[1].split()[0]
        ref = medreasoner_scores(text, ex.gt_box.tolist(), ex.gt_points.tolist(), mode, variant,
                                 model_size=ex.size, replicate_base_gt_bug="GT bug" in setting)  # fmt: skip
        vals = g.set_index("reward").value
        for k, v in vals.items():
            assert v == pytest.approx(ref[k]), (setting, k)
        terms = [k for k in vals.index if k != "score" and not k.endswith("_valid")]
        assert vals["score"] == pytest.approx(vals[terms].sum())
    wide = pivot_worked(t)
    assert list(wide.columns)[0] == "soft / official (default)" and wide.index[-1] == "score"
    # the public med_base.py bug zeroes IoU and box-L1 of a near-perfect answer
    assert wide.loc["base_box_iou", "base / official"] == 1.0
    assert wide.loc["base_box_iou", "base (GT bug) / official"] == 0.0


def test_worked_medvol_on_the_ground_truth_and_a_shifted_slice():
    from medlib.geometry import mask_to_boxes

    vol = synthetic_volume_example(seed=0)
    areas = vol.mask.sum(axis=(1, 2))
    z = int(areas.argmax())
    exact = worked_medvol(medvol_completion(z + 1, mask_to_boxes(vol.mask[z])), vol).set_index("reward").value
    assert exact["R_f format"] == 1.0 and exact["R_a axial"] == 1.0 and exact["R_s spatial"] == pytest.approx(1.0)
    assert exact["R_c cross-slice"] > 0.95  # the flood stand-in recovers the clean ellipsoids
    # two slices off with one box: R_a = F_{z+2} / max F; R_s <= 1/2 (N = 1, N* = 2)
    one = worked_medvol(medvol_completion(z + 3, mask_to_boxes(vol.mask[z + 2])[:1]), vol).set_index("reward").value
    assert one["R_a axial"] == pytest.approx(areas[z + 2] / areas.max())
    assert 0 < one["R_s spatial"] <= 0.5
    assert one["total"] == pytest.approx(one.drop("total").sum())


def test_threshold_flood_segmenter_is_a_segmenter():
    seg = ThresholdFloodSegmenter(threshold=0.5)
    assert isinstance(seg, Segmenter)
    vol = np.zeros((5, 10, 10))
    vol[1:4, 2:6, 2:6] = 1.0
    m = seg.propagate_3d(vol, 2, [[2, 2, 6, 6]])
    assert np.array_equal(m, vol > 0.5)


def test_worked_example_concatenates_the_three_papers():
    ex = square_example(30)
    vol = synthetic_volume_example(seed=0)
    z = int(vol.mask.sum(axis=(1, 2)).argmax())
    df = worked_example(medground_completion(ex.gt_box, ex.phrase), medreasoner_completion(ex.gt_box, ex.gt_points),
                        medvol_completion(z + 1, [[0, 0, 10, 10]]), ex, vol, MeanIntensityScorer())  # fmt: skip
    assert list(df.columns) == ["paper", "reward", "setting", "value", "detail"]
    assert list(dict.fromkeys(df.paper)) == ["MedGround-R1", "MedReasoner", "MedVol-R1"]


# ------------------------------------------------------------------ paper vs code
def test_disagreement_table_has_the_columns_and_every_row_names_a_default():
    t = disagreements()
    assert tuple(t.columns) == DISAGREEMENT_COLUMNS
    assert t.id.is_unique and len(t) >= 15
    assert set(t.default) <= set(DEFAULT_CHOICES)
    for col in DISAGREEMENT_COLUMNS:
        assert t[col].map(lambda v: isinstance(v, str) and v.strip() != "").all(), col
    assert set(t.paper) == {"MedGround-R1", "MedReasoner", "MedVol-R1"}
    for rid in ("mg_semantic_region", "mg_format_braces", "mr_smooth_log_affine", "mr_smooth_exp_normalised",
                "mr_pdice_double", "mr_base_gt_bug"):  # fmt: skip
        assert rid in set(t.id), rid


def test_disagreement_defaults_are_what_the_reward_code_does():
    d = disagreements().set_index("id").default
    funcs, _ = build_reward_set("medground")
    # semantic: paper (crop) by default, the released whole-image variant not in the set
    assert d["mg_semantic_region"] == "paper"
    assert any(type(f) is MedGroundSemantic for f in funcs)
    # format: footnote-7 regex with braces
    assert d["mg_format_braces"] == "code" and funcs[0].braces is True
    assert d["mg_reward_set"] == "paper" and set(default_weights("medground")) == {"format", "spatial", "semantic"}
    # MedReasoner smoothing / pDice / penalty: the official (code) variant by default
    for rid in ("mr_smooth_log_affine", "mr_smooth_exp_normalised", "mr_pdice_double", "mr_penalty_clip_round"):
        assert d[rid] == "code"
    assert {f.variant for f in build_reward_set("medreasoner", mode="hard")[0]} == {"official"}
    # base mode: the terms work (paper), the public GT bug is opt-in
    assert d["mr_base_gt_bug"] == "paper"
    assert {f.replicate_base_gt_bug for f in build_reward_set("medreasoner", mode="base")[0]} == {False}


def test_numbers_quoted_in_the_table_match_the_code():
    t = disagreements().set_index("id")
    # Eq. 9 unnormalised: 0.953 and 0.047; official scale floor S_exp(1; c = 0.5) = 0.291
    assert f"{smooth_exp_paper(0.0):.3f} at d = 0" in t.loc["mr_smooth_exp_normalised", "paper_says"]
    assert f"{smooth_exp_paper(2.0):.3f} at d = 2" in t.loc["mr_smooth_exp_normalised", "paper_says"]
    assert f"= {smooth_exp_official(1.0, 3.0, 0.5):.3f}" in t.loc["mr_scale_centre", "code_does"]
    # pDice saturation claim: two discs of radius r = 20 score the full 1 once their IoU passes 1/2
    gt_box, gt_pts = [0, 0, 100, 100], [[30, 50], [70, 50]]  # r = 20
    text = medreasoner_completion([0, 0, 100, 100], [[42, 50], [82, 50]])
    # centres d = 12 apart: lens area 2 r^2 acos(d / 2r) - d / 2 sqrt(4 r^2 - d^2)
    # = 800 acos(0.3) - 6 sqrt(1456) = 1012.9 - 228.9 = 783.9; union 2 pi 400 - 783.9 = 1729.4;
    # IoU 0.4533 -> code "dice" 2 IoU = 0.9066 -> 0.9 ln(3.72) / ln 4 + 0.1 = 0.9529 (no penalty)
    assert medreasoner_scores(text, gt_box, gt_pts)["points_dice"] == pytest.approx(0.9529, abs=2e-4)
    # d = 10: lens 860.8, IoU 0.521 > 1/2 -> 2 IoU > 1 -> smoothed 1.02 -> clipped to the full 1
    text = medreasoner_completion([0, 0, 100, 100], [[40, 50], [80, 50]])
    assert medreasoner_scores(text, gt_box, gt_pts)["points_dice"] == 1.0
