"""MedVol-R1 rewards on a synthetic volume with hand-computed areas, boxes and Dice, and a
deterministic threshold-and-flood segmenter standing in for MedSAM2 propagation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from medlib.rewards.medvol import (
    MedVolAxial,
    MedVolCrossSlice,
    MedVolSpatial,
    medvol_format,
    spatial_reward,
    spatial_rewards,
)
from medlib.segment.base import Segmenter


class FloodSegmenter:
    """Deterministic Segmenter: on the key slice, voxels above ``threshold`` inside each box;
    then slice by slice outwards, voxels above threshold within 2 px of the previous slice's
    mask, until the mask is empty."""

    name = "flood"

    def __init__(self, threshold: float = 50.0):
        self.threshold = threshold
        self.calls = 0

    def segment_2d(self, image, box=None, points=None):
        fg = np.asarray(image, dtype=float) > self.threshold
        if box is None:
            return fg
        m = np.zeros_like(fg)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        m[y1:y2, x1:x2] = fg[y1:y2, x1:x2]
        return m

    def propagate_3d(self, volume, key_slice, boxes):
        self.calls += 1
        vol = np.asarray(volume, dtype=float)
        out = np.zeros(vol.shape, dtype=bool)
        for b in boxes:
            out[key_slice] |= self.segment_2d(vol[key_slice], b)
        for step in (-1, 1):
            t = key_slice + step
            while 0 <= t < len(vol) and out[t - step].any():
                out[t] |= (vol[t] > self.threshold) & binary_dilation(out[t - step], iterations=2)
                t += step
        return out


def make_volume() -> np.ndarray:
    """16 x 32 x 32 mask. Object A: squares centred at (10, 10), sides 2, 4, 6, 8, 8, 6, 4, 2 on
    slices 4..11 (areas 4, 16, 36, 64, 64, 36, 16, 4; total 240). Object B: a 4 x 4 square at
    x 24..27, y 20..23 on slices 6..8 (16 each; total 48).
    Slice areas F_t: z4 4, z5 16, z6 52, z7 80, z8 80, z9 36, z10 16, z11 4; max 80."""
    m = np.zeros((16, 32, 32), dtype=bool)
    for z, side in zip(range(4, 12), (2, 4, 6, 8, 8, 6, 4, 2)):
        lo = 10 - side // 2
        m[z, lo : lo + side, lo : lo + side] = True
    m[6:9, 20:24, 24:28] = True
    return m


MASK = make_volume()
VOLUME = MASK * 100.0
A7, B7 = [6, 6, 14, 14], [24, 20, 28, 24]  # GT boxes on z = 7 (prompt identifier 8)


def ans(key, boxes) -> str:
    return "<think>t</think><answer>" + json.dumps({"key_slice": key, "bbox_2d_list": boxes}) + "</answer>"


def test_flood_segmenter_is_a_segmenter():
    assert isinstance(FloodSegmenter(), Segmenter)


def test_format():
    ok = [ans(8, [A7]), "<think>t</think><answer><slice 8> [[6, 6, 14, 14]]</answer>"]
    bad = ["<answer>{}</answer>", ans(8, [[1, 2, 3]]), "x"]
    assert medvol_format(None, ok + bad) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_axial_hand_computed():
    # identifiers are 1-based: "<slice 8>" is z = 7
    texts = [ans(8, []), ans(7, []), ans(5, []), ans(1, []), ans(99, []), "no answer"]
    out = MedVolAxial()(None, texts, mask=[MASK] * len(texts))
    # z7: 80/80; z6: 52/80 = 0.65; z4: 4/80 = 0.05; z0: 0; out of range: 0; unparsed: 0
    assert out == pytest.approx([1.0, 0.65, 0.05, 0.0, 0.0, 0.0])
    # slice_base 0: identifier 7 is z = 7
    assert MedVolAxial(slice_base=0)(None, [ans(7, [])], mask=[MASK]) == [1.0]


def test_axial_with_sampled_slices_takes_the_max_over_what_the_model_saw():
    # prompt slices are z = 0, 2, 4, ..., 14; identifier 4 (1-based) -> position 3 -> z = 6
    shown = list(range(0, 16, 2))  # areas 0, 0, 4, 52, 80, 16, 0, 0 -> max 80
    out = MedVolAxial()(
        None, [ans(4, []), ans(5, []), ans(9, [])], mask=[MASK] * 3, slice_indices=[shown] * 3
    )
    assert out == pytest.approx([52 / 80, 1.0, 0.0])  # identifier 9 names no shown slice
    # only slices 4 and 10 shown: max area 16, identifier 1 (z4): 4/16 = 0.25
    assert MedVolAxial()(None, [ans(1, [])], mask=[MASK], slice_indices=[[4, 10]]) == [0.25]


def test_spatial_hand_computed():
    shifted = [10, 6, 18, 14]  # vs A7: inter 4 * 8 = 32, union 64 + 64 - 32 = 96 -> 1/3
    far = [0, 28, 2, 30]
    cases = [
        ([A7, B7], 1.0),  # both exact
        ([B7, A7], 1.0),  # order does not matter (Hungarian)
        ([A7], 0.5),  # one of two found: 1 / max(1, 2)
        ([A7, far], 0.5),  # spurious box matched to B with IoU 0: 1 / 2
        ([A7, B7, far], 2 / 3),  # 2 / max(3, 2)
        ([shifted, B7], (1 / 3 + 1) / 2),
        ([], 0.0),
    ]
    texts = [ans(8, boxes) for boxes, _ in cases]
    out = MedVolSpatial()(None, texts, mask=[MASK] * len(texts))
    assert out == pytest.approx([v for _, v in cases])
    assert spatial_reward(np.zeros((0, 4)), np.zeros((0, 4))) == 0.0


def test_spatial_scales_model_frame_boxes_to_the_mask():
    # the model saw 64 x 64 slices: its [12, 12, 28, 28] is [6, 6, 14, 14] of the 32 x 32 mask
    out = MedVolSpatial()(
        None, [ans(8, [[12, 12, 28, 28], [48, 40, 56, 48]])], mask=[MASK], model_size=[(64, 64)]
    )
    assert out == [1.0]


def test_cross_slice_dice_hand_computed():
    seg = FloodSegmenter()
    full = MedVolCrossSlice(seg, delta=5)
    # both boxes: flood recovers A and B exactly -> Dice 1
    # only A's box: prediction A (240 voxels, all inside slices 2..12); GT there A + B = 288;
    # Dice = 2 * 240 / (240 + 288) = 480 / 528 = 0.909
    texts = [ans(8, [A7, B7]), ans(8, [A7]), ans(8, []), ans(99, [A7])]
    out = full(None, texts, mask=[MASK] * 4, volume=[VOLUME] * 4)
    assert out == pytest.approx([1.0, 480 / 528, 0.0, 0.0])
    assert seg.calls == 2  # no propagation without a matched box or a valid slice
    # delta 0: the key slice only: A 64 vs GT 80 -> 2 * 64 / 144 = 0.889
    assert MedVolCrossSlice(seg, delta=0)(None, [ans(8, [A7])], mask=[MASK], volume=[VOLUME]) == [
        pytest.approx(128 / 144)
    ]
    # delta 1 around z = 7: A on z6..8 = 36 + 64 + 64 = 164; B 48; Dice 2*164/(164 + 212) = 328/376
    assert MedVolCrossSlice(seg, delta=1)(None, [ans(8, [A7])], mask=[MASK], volume=[VOLUME]) == [
        pytest.approx(328 / 376)
    ]


def test_cross_slice_prompts_are_sanitised():
    seg = FloodSegmenter()
    # a swapped, partly outside box is ordered and clipped before it reaches the segmenter
    out = MedVolCrossSlice(seg, delta=0)(None, [ans(8, [[14, 14, 6, -3]])], mask=[MASK], volume=[VOLUME])
    assert out == [pytest.approx(128 / 144)]


def test_correct_answer_gets_the_maximal_reward():
    seg = FloodSegmenter()
    text = ans(8, [A7, B7])
    cols = dict(mask=[MASK], volume=[VOLUME])
    total = sum(
        f(None, [text], **cols)[0]
        for f in (medvol_format, MedVolAxial(), MedVolSpatial(), MedVolCrossSlice(seg))
    )
    assert total == pytest.approx(4.0)


def test_mask_from_file_with_a_label_value(tmp_path):
    labels = make_volume().astype(np.int16)
    labels[6:9, 20:24, 24:28] = 2  # object B is label 2
    path = tmp_path / "labels.npy"
    np.save(path, labels)
    # only B (label 2) on z = 7: one GT box B7; A7 is spurious -> 1 / 2; B7 alone -> 1
    out = MedVolSpatial()(
        None, [ans(8, [A7, B7]), ans(8, [B7])], mask_path=[str(path)] * 2, mask_value=[2, 2]
    )
    assert out == [0.5, 1.0]
    # label 2 areas: 16 on z6..8 -> identifier 8 (z7) gets 16 / 16
    assert MedVolAxial()(None, [ans(8, [])], mask_path=[str(path)], mask_value=[2]) == [1.0]


def test_missing_mask_is_a_clear_error():
    from medlib.rewards._common import RewardInputError

    with pytest.raises(RewardInputError, match="mask"):
        MedVolSpatial()(None, [ans(8, [A7])])


def test_empty_ground_truth_does_not_apply():
    empty = np.zeros((4, 8, 8), dtype=bool)
    assert MedVolAxial()(None, [ans(1, [])], mask=[empty]) == [None]


def test_batched_spatial_equals_per_row_hungarian():
    rng = np.random.default_rng(0)
    preds, gts = [], []
    for _ in range(300):

        def boxes(k):
            xy = rng.uniform(0, 40, size=(k, 2))
            return np.concatenate([xy, xy + rng.uniform(-2, 20, size=(k, 2))], axis=1)

        preds.append(boxes(int(rng.integers(0, 5))))
        gts.append(boxes(int(rng.integers(0, 4))))
    assert spatial_rewards(preds, gts) == pytest.approx(
        [spatial_reward(p, g) for p, g in zip(preds, gts)], abs=1e-12
    )


def test_window_bounds_sampled_and_native_hand_computed():
    from medlib.rewards.medvol import window_bounds

    shown = [0, 5, 10, 15, 20, 25, 30, 35]  # 8 of 40 slices
    # key at position 3 (z 15), delta 2: positions 1..5 -> z 5..25 (21 native slices)
    assert window_bounds(3, 2, shown, 40) == (5, 25)
    assert window_bounds(3, 2, shown, 40, "native") == (13, 17)
    assert window_bounds(0, 2, shown, 40) == (0, 10)  # clipped at the first shown slice
    assert window_bounds(7, 1, shown, 40) == (30, 35)
    assert window_bounds(3, 2, None, 40) == window_bounds(3, 2, None, 40, "native") == (1, 5)
    assert window_bounds(8, 2, shown, 40) is None and window_bounds(-1, 2, shown, 40) is None
    with pytest.raises(ValueError, match="unknown R_c window"):
        window_bounds(3, 2, shown, 40, "z")


def test_cross_slice_window_counts_shown_slices_by_default():
    # shown z = 1, 3, ..., 15; identifier 4 -> position 3 -> z 7, where A7 is A's box.
    # Flood from A7 recovers A (240 voxels, areas z5 16, z6 36, z7 64, z8 64, z9 36).
    shown = list(range(1, 16, 2))
    cols = dict(mask=[MASK], volume=[VOLUME], slice_indices=[shown])
    # sampled, delta 1: positions 2..4 -> z 5, 7, 9 -> window z5..9; A there 216, GT 264 (B 48)
    sampled = MedVolCrossSlice(FloodSegmenter(), delta=1)(None, [ans(4, [A7])], **cols)
    assert sampled == [pytest.approx(2 * 216 / (216 + 264))]
    # native, delta 1: z6..8; A 164, GT 212
    native = MedVolCrossSlice(FloodSegmenter(), delta=1, window="native")(None, [ans(4, [A7])], **cols)
    assert native == [pytest.approx(2 * 164 / (164 + 212))]
    with pytest.raises(ValueError, match="unknown window"):
        MedVolCrossSlice(FloodSegmenter(), window="z")


def test_cross_slice_batched_path_gives_the_rewards_of_one_propagation_per_completion():
    """The step-batched R_c (LiteMedSAM's propagate_many, propagation cut at the window) equals
    the per-completion propagate_3d to the volume's end, and encodes each slice once a step."""
    from medlib.segment import LiteMedSAMSegmenter

    mask = MASK[3:12]  # A on z1..8, B on z3..5
    vol = np.where(mask, 60.0, -100.0) + np.random.default_rng(0).normal(0, 5, mask.shape)
    shown = [0, 2, 4, 6, 8]
    texts = [ans(3, [A7, B7]), ans(3, [A7]), ans(2, [B7]), ans(4, [[2, 2, 12, 12]]), ans(3, []), ans(9, [A7])]
    cols = dict(mask=[mask] * 6, volume=[vol] * 6, slice_indices=[shown] * 6)
    seg = LiteMedSAMSegmenter()
    new_reward = MedVolCrossSlice(seg, delta=1)
    new = new_reward(None, texts, **cols)
    stats = new_reward.last_stats
    assert stats["propagations"] == 4 and stats["volumes"] == 1 and stats["boxes"] == 5
    assert stats["distinct_window_slices"] == 9  # windows z2..6, z2..6, z0..4, z4..8
    assert stats["encoder_calls"] <= 9
    old = MedVolCrossSlice(seg, delta=1, batched=False)(None, texts, **cols)
    assert new == old and old[0] > 0.5 and old[4:] == [0.0, 0.0]
