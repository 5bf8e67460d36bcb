"""Segmenter plumbing: prompt hygiene, intensity windows, the embedding cache, slice-by-slice
propagation (with an oracle 2D segmenter), the factory, and the one place the RL code reaches
a real segmenter: MedVol-R1's cross-slice reward through ``medlib.rewards.registry``."""

from __future__ import annotations

import numpy as np
import pytest

from medlib.segment import EmbeddingCache, Segmenter, build_segmenter, get_segmenter, image_key
from medlib.segment.factory import spec_key
from medlib.segment.preprocess import (
    check_volume,
    minmax_to_uint8,
    to_rgb_uint8,
    valid_key_slice,
    window_bounds,
    window_to_uint8,
)
from medlib.segment.prompts import (
    box_to_sam_indices,
    iter_boxes,
    padded_tight_box,
    sanitize_box,
    sanitize_points,
)
from medlib.segment.propagation import propagate_slices, propagate_slices_many


# ------------------------------------------------------------------------- prompts
@pytest.mark.parametrize(
    "box, expected",
    [
        ([10, 20, 30, 40], [10, 20, 30, 40]),
        ([30, 40, 10, 20], [10, 20, 30, 40]),  # swapped corners are ordered
        ([-5, -5, 30, 200], [0, 0, 30, 100]),  # clipped to the 50 x 100 (w x h) image
        ((10.5, 1, 49.5, 2.5), [10.5, 1, 49.5, 2.5]),  # sub-pixel kept
    ],
)
def test_sanitize_box_orders_and_clips(box, expected):
    np.testing.assert_allclose(sanitize_box(box, 50, 100), expected)


@pytest.mark.parametrize(
    "box",
    [
        None,
        [np.nan, 0, 10, 10],
        [0, 0, np.inf, 10],
        [60, 10, 80, 20],  # wholly right of a 50-wide image: zero width after clipping
        [10, 10, 10, 20],  # zero width
        [1, 2, 3],
        "ten",
        [[1, 2], [3, 4, 5]],
    ],
)
def test_sanitize_box_rejects_unusable(box):
    assert sanitize_box(box, 50, 100) is None


def test_sanitize_points_drops_nonfinite_and_clips_to_last_pixel():
    p = sanitize_points([[5, 5], [np.nan, 3], [100, -4]], width=50, height=40)
    # the NaN point is dropped; (100, -4) clips to the last column 49 and row 0
    np.testing.assert_allclose(p, [[5, 5], [49, 0]])
    np.testing.assert_allclose(sanitize_points((3, 4), 50, 40), [[3, 4]])
    assert sanitize_points([[np.nan, 1]], 50, 40) is None
    assert sanitize_points([1, 2, 3], 50, 40) is None
    assert sanitize_points(None, 50, 40) is None


def test_box_to_sam_indices_is_inclusive_pixel_box():
    # continuous [10, 20, 30, 40] covers columns 10..29, rows 20..39: SAM wants the extremes
    np.testing.assert_allclose(box_to_sam_indices([10, 20, 30, 40]), [10, 20, 29, 39])
    # narrower than a pixel: never inverted
    np.testing.assert_allclose(box_to_sam_indices([10, 20, 10.5, 20.5]), [10, 20, 10, 20])


def test_iter_boxes_accepts_one_or_many():
    assert len(iter_boxes([1, 2, 3, 4])) == 1
    assert len(iter_boxes([[1, 2, 3, 4], [5, 6, 7, 8]])) == 2
    assert iter_boxes(None) == [] and iter_boxes([]) == [] and iter_boxes([1, 2]) == []
    assert len(iter_boxes([[1, 2, 3, 4], "bad"])) == 2  # ragged: kept as given, sanitised later


def test_padded_tight_box():
    m = np.zeros((20, 30), bool)
    m[5:8, 10:15] = True  # rows 5..7, cols 10..14 -> continuous [10, 5, 15, 8]
    np.testing.assert_allclose(padded_tight_box(m, 0), [10, 5, 15, 8])
    np.testing.assert_allclose(padded_tight_box(m, 2), [8, 3, 17, 10])
    np.testing.assert_allclose(padded_tight_box(m, 100), [0, 0, 30, 20])  # clipped
    assert padded_tight_box(np.zeros((4, 4), bool), 1) is None


# ----------------------------------------------------------------------- intensity
def test_window_recipe_hand_computed():
    # level 40, width 400 -> clip to [-160, 240]; min -160, max 240 after clipping;
    # (v + 160) / 400 * 255 truncated: -1000 -> 0, 0 -> 102, 40 -> 127.5 -> 127,
    # 240 -> 255, 1000 -> 255, 100 -> 165.75 -> 165
    v = np.array([[[-1000, 0, 40], [240, 1000, 100]]], dtype=np.int16)
    np.testing.assert_array_equal(window_to_uint8(v, (40, 400)), [[[0, 102, 127], [255, 255, 165]]])
    # no window: plain min-max over the volume: (v + 1000) / 2000 * 255
    np.testing.assert_array_equal(window_to_uint8(v, None), [[[0, 127, 132], [158, 255, 140]]])
    assert window_bounds((40, 400)) == (-160.0, 240.0)
    with pytest.raises(ValueError, match="positive width"):
        window_bounds((40, 0))
    with pytest.raises(ValueError, match="level, width"):
        window_bounds("soft tissue")


def test_minmax_handles_constant_and_nonfinite():
    assert minmax_to_uint8(np.full((3, 3), 7.0)).max() == 0
    out = minmax_to_uint8(np.array([0.0, np.nan, 10.0, np.inf]))
    np.testing.assert_array_equal(out, [0, 0, 255, 0])


def test_to_rgb_uint8_shapes_and_types():
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = to_rgb_uint8(g)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and (rgb[..., 1] == g).all()
    assert to_rgb_uint8(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)  # alpha dropped
    assert to_rgb_uint8(np.zeros((3, 4, 1), np.uint8)).shape == (3, 4, 3)
    f = to_rgb_uint8(np.array([[0.0, 0.5], [1.0, 0.25]]))
    np.testing.assert_array_equal(f[..., 0], [[0, 127], [255, 63]])
    assert to_rgb_uint8(np.array([[True, False]]))[0, 0, 0] == 255
    for bad in (np.zeros((0, 4)), np.zeros((2, 2, 2, 2)), np.zeros((3, 4, 2))):
        with pytest.raises(ValueError, match="HxW"):
            to_rgb_uint8(bad)


def test_volume_and_key_slice_checks():
    with pytest.raises(ValueError, match="non-empty"):
        check_volume(np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="non-empty"):
        check_volume(np.zeros((4, 4)))
    assert valid_key_slice(3, 5) == 3 and valid_key_slice(np.int64(0), 5) == 0 and valid_key_slice(2.0, 5) == 2
    for bad in (5, -1, 2.5, float("nan"), None, "x"):
        assert valid_key_slice(bad, 5) is None


# --------------------------------------------------------------------------- cache
def test_image_key_is_content_shape_and_dtype():
    a = np.zeros((4, 6), np.uint8)
    assert image_key(a) == image_key(a.copy())
    assert image_key(a) != image_key(a.reshape(6, 4))  # same bytes, other shape
    assert image_key(a) != image_key(a.astype(np.int8))  # same bytes, other dtype
    b = a.copy()
    b[3, 5] = 1
    assert image_key(a) != image_key(b)
    assert image_key(a, "x") != image_key(a, "y")
    assert image_key(np.asfortranarray(np.arange(6).reshape(2, 3))) == image_key(np.arange(6).reshape(2, 3))


def test_cache_lru_by_entries_and_bytes():
    c = EmbeddingCache(max_entries=2, max_bytes=10_000)
    c.put("a", np.zeros(100, np.float32))  # 400 B
    c.put("b", np.zeros(100, np.float32))
    assert c.get("a") is not None  # a is now most recent
    c.put("c", np.zeros(100, np.float32))  # evicts b (least recently used)
    assert "b" not in c and "a" in c and "c" in c and c.stats.evictions == 1
    assert c.get("b") is None and c.stats.misses == 1 and c.stats.hits == 1
    c.put("big", np.zeros(3000, np.float32))  # 12 kB > max_bytes: not stored
    assert "big" not in c and c.nbytes == 800
    c2 = EmbeddingCache(max_entries=10, max_bytes=1000)
    for k in "abc":
        c2.put(k, {"x": [np.zeros(100, np.float32)]})  # 400 B each, nested
    assert len(c2) == 2 and c2.nbytes == 800  # third put pushed bytes to 1200 > 1000
    calls = []
    assert c2.get_or_compute("z", lambda: calls.append(1) or 5) == 5
    assert c2.get_or_compute("z", lambda: calls.append(1) or 6) == 5 and calls == [1]
    off = EmbeddingCache(max_entries=0)
    off.put("a", 1)
    assert len(off) == 0 and not off.enabled
    with pytest.raises(ValueError):
        EmbeddingCache(-1)


# --------------------------------------------------------------------- propagation
def _ellipsoid(shape=(12, 40, 50), centre=(5, 20, 25), radii=(4, 10, 14)):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((x - centre[2]) / radii[2]) ** 2 <= 1


def _oracle(gt, calls):
    """2D 'segmenter' returning the ground truth inside each (integer-rounded) box."""

    def segment_slice(t, boxes):
        calls.append((t, len(boxes)))
        out = []
        for b in boxes:
            m = np.zeros(gt.shape[1:], bool)
            x1, y1, x2, y2 = (int(round(v)) for v in b)
            m[y1:y2, x1:x2] = gt[t, y1:y2, x1:x2]
            out.append(m)
        return out

    return segment_slice


def test_propagation_recovers_structure_and_stops_when_mask_vanishes():
    gt = _ellipsoid()
    calls = []
    key = 5
    box = padded_tight_box(gt[key], 0)
    out = propagate_slices(gt.shape, key, [box], _oracle(gt, calls), pad=1.0)
    # the ellipsoid spans slices 1..9 (|z - 5| <= 4; slices 1 and 9 hold the single centre
    # voxel); each slice's tight box + 1 px contains the next slice's smaller section, so the
    # oracle recovers it exactly
    np.testing.assert_array_equal(out, gt)
    visited = [t for t, _ in calls]
    # key 5, then 6..9 and 10 (empty: stop), then 4..1 and 0 (empty: stop); never 11
    assert visited == [5, 6, 7, 8, 9, 10, 4, 3, 2, 1, 0]


def test_propagation_union_over_boxes_and_max_distance():
    a = _ellipsoid(centre=(5, 12, 12), radii=(3, 6, 6))
    b = _ellipsoid(centre=(5, 28, 36), radii=(2, 6, 8))
    gt = a | b
    calls = []
    boxes = [padded_tight_box(a[5], 0), padded_tight_box(b[5], 0)]
    out = propagate_slices(gt.shape, 5, boxes, _oracle(gt, calls), pad=1.0)
    np.testing.assert_array_equal(out, gt)
    # one call per slice for all live boxes. a spans slices 2..8, b 3..7 (single centre voxel
    # on 3 and 7): b is still asked on 8 and 2 (its mask on 7 / 3 is not empty), finds nothing
    # there and drops out; a alone is asked on 9 and 1, finds nothing, and the track ends
    assert calls == [(5, 2), (6, 2), (7, 2), (8, 2), (9, 1), (4, 2), (3, 2), (2, 2), (1, 1)]
    limited = propagate_slices(gt.shape, 5, boxes, _oracle(gt, []), pad=1.0, max_distance=1)
    assert limited[[4, 5, 6]].sum() == gt[[4, 5, 6]].sum() and not limited[[0, 1, 2, 3, 7, 8, 9]].any()
    assert not propagate_slices(gt.shape, 5, [], _oracle(gt, [])).any()


def test_propagation_of_many_requests_equals_each_alone_with_one_call_per_slice_and_distance():
    a = _ellipsoid(centre=(5, 12, 12), radii=(3, 6, 6))
    b = _ellipsoid(centre=(5, 28, 36), radii=(2, 6, 8))
    gt = a | b
    box_a, box_b = padded_tight_box(a[5], 0), padded_tight_box(b[5], 0)
    requests = [(5, [box_a, box_b], None), (5, [box_a], 1), (6, [padded_tight_box(a[6], 0)], (2, 1)), (4, [], None)]
    calls = []
    got = propagate_slices_many(gt.shape, requests, _oracle(gt, calls), pad=1.0)
    for (k, boxes, cap), g in zip(requests[:2], got):
        np.testing.assert_array_equal(g, propagate_slices(gt.shape, k, boxes, _oracle(gt, []), pad=1.0, max_distance=cap))
    # (down 2, up 1) from slice 6: slices 4..7 only
    down_up = propagate_slices(gt.shape, 6, requests[2][1], _oracle(gt, []), pad=1.0)
    assert np.array_equal(got[2][4:8], down_up[4:8]) and not got[2][[0, 1, 2, 3, 8, 9]].any()
    assert not got[3].any()
    # one call per (distance, slice): the key slices 5 and 6 (4 boxes on 5), then at distance 1
    # slices 6 and 4 (two requests on each), 7 and 5, then ...; never the same slice twice in a round
    rounds = [calls[:2], calls[2:6]]
    assert sorted(rounds[0]) == [(5, 3), (6, 1)]
    assert sorted(t for t, _ in rounds[1]) == [4, 5, 6, 7] and dict(rounds[1])[6] == 3
    assert all(len({t for t, _ in r}) == len(r) for r in rounds)


# ------------------------------------------------------------------------- factory
def test_factory_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown segmenter 'sam3'.*litemedsam, medsam2"):
        build_segmenter("sam3")
    with pytest.raises(ValueError, match="MedSAM2_latest.pt"):
        build_segmenter("medsam2")
    with pytest.raises(FileNotFoundError, match="MedSAM2_latest.pt"):
        build_segmenter(f"medsam2:{tmp_path / 'missing.pt'}")
    with pytest.raises(FileNotFoundError, match="LiteMedSAM checkpoint not found"):
        build_segmenter(f"litemedsam:{tmp_path / 'missing.pth'}")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['windw'\]"):
        build_segmenter({"name": "litemedsam", "windw": (40, 400)})
    with pytest.raises(TypeError):
        build_segmenter(42)


def test_segmenter_protocol_is_runtime_checkable():
    class Fake:
        name = "fake"

        def segment_2d(self, image, box=None, points=None):
            return np.zeros(image.shape[:2], bool)

        def propagate_3d(self, volume, key_slice, boxes):
            return np.zeros(volume.shape, bool)

    assert isinstance(Fake(), Segmenter)


def test_spec_key_is_canonical():
    assert spec_key(None) == spec_key("") == spec_key(" LiteMedSAM ") == "litemedsam"
    assert spec_key("medsam2 : /ckpt.pt") == "medsam2:/ckpt.pt"
    assert spec_key({"window": (40, 400), "name": "litemedsam"}) == spec_key({"name": "litemedsam", "window": (40, 400)})
    with pytest.raises(TypeError):
        spec_key(3)


def test_get_segmenter_shares_one_instance_per_spec(tmp_path):
    a = get_segmenter("litemedsam")
    assert get_segmenter(" litemedsam") is a and get_segmenter(None) is a
    assert build_segmenter("litemedsam") is not a  # build_segmenter always builds anew
    with pytest.raises(FileNotFoundError):  # a failed build raises every time, nothing cached
        get_segmenter(f"litemedsam:{tmp_path / 'missing.pth'}")
    with pytest.raises(FileNotFoundError):
        get_segmenter(f"litemedsam:{tmp_path / 'missing.pth'}")


# --------------------------------------------------- MedVol-R1 R_c through the registry
def _phantom_ct(seed=0):
    """5 axial slices of 48 x 64 'CT' in HU: a soft-tissue ellipsoid (60 HU) on slices 1..3
    in fat (-100 HU), plus noise."""
    z, y, x = np.mgrid[:5, :48, :64]
    gt = ((z - 2) / 1.8) ** 2 + ((y - 24) / 13.0) ** 2 + ((x - 30) / 17.0) ** 2 <= 1
    vol = np.where(gt, 60.0, -100.0) + np.random.default_rng(seed).normal(0, 5, gt.shape)
    return vol, gt


def test_medvol_cross_slice_reward_with_litemedsam_by_spec():
    from medlib.prompts import medvol_answer
    from medlib.rewards.registry import build_reward_set

    vol, gt = _phantom_ct()
    assert gt.any(axis=(1, 2)).tolist() == [False, True, True, True, False]
    (reward,), weights = build_reward_set("medvol", {"cross_slice": 1.0}, segmenter="litemedsam")
    assert weights == [1.0] and reward.__name__ == "medvol_cross_slice"
    box = [13, 11, 48, 38]  # tight box of the key-slice (z = 2) section: x 13..47, y 11..37
    completions = [
        medvol_answer(3, [box]),  # <slice 3> = z 2 (slice_base 1), the exact box
        medvol_answer(3, [[0, 0, 8, 8]]),  # a box on fat in the corner: matched, but wrong
        medvol_answer(9, [box]),  # <slice 9> = z 8: outside the 5-slice volume
        "no answer block",
    ]
    n = len(completions)
    seg = get_segmenter("litemedsam")
    calls = seg.encoder_calls
    scores = reward([None] * n, completions, mask=[gt] * n, volume=[vol] * n)
    # R_c = Dice over |t - 2| <= 5, i.e. the whole volume. The exact box recovers the
    # ellipsoid (measured 0.856: LiteMedSAM also marks the empty end slices, as box-driven
    # propagation has no "absent" signal); the corner box segments fat and misses it (measured
    # 0.0); no usable key slice gives 0
    assert scores[0] > 0.75
    assert scores[1] < 0.1
    assert scores[2:] == [0.0, 0.0]
    # the reward resolved the spec through medlib.segment.get_segmenter: the very same object
    # encoded them, and each of the 5 slices at most once (both rollouts share its embedding cache)
    assert 1 <= seg.encoder_calls - calls <= 5


def test_loading_a_shared_segmenter_leaves_the_callers_random_streams_alone():
    """get_segmenter is first called inside MedVol-R1's cross-slice reward: building the network
    (which initialises layers from torch's global stream before loading weights) must not change
    what the GRPO run samples next. build_segmenter itself does draw, which is what makes this
    test able to fail."""
    import torch

    from medlib.segment.factory import clear_segmenters

    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    build_segmenter("litemedsam")
    assert not torch.equal(torch.rand(4), expected)  # a plain build moves the stream
    clear_segmenters()
    torch.manual_seed(3)
    get_segmenter("litemedsam")
    assert torch.equal(torch.rand(4), expected)
