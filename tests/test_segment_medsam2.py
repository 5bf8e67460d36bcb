"""MedSAM2 through the sam2 package, on CPU with random weights (no checkpoint ships here):
config values, safe checkpoint loading, the official 3D preprocessing, prompt frame mapping,
determinism, the 2D embedding cache and bounded memory in 3D."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from medlib.segment import MedSAM2Segmenter, Segmenter, build_segmenter
from medlib.segment.medsam2 import VolumeFrames, fill_small_holes, preprocess_frame
from medlib.segment.medsam2_config import DEFAULT_CONFIG, ConfigError, build_model, load_config


@pytest.fixture(scope="module")
def seg():
    torch.set_num_threads(2)
    return MedSAM2Segmenter.random_init(seed=0)


def _capture_prompts(model):
    """Record every point-prompt tensor the SAM prompt encoder receives (512 frame)."""
    seen = []

    def hook(mod, args, kwargs):
        pts = kwargs.get("points", args[0] if args else None)
        if pts is not None:
            seen.append((pts[0].detach().float().cpu().numpy(), pts[1].cpu().numpy()))

    return seen, model.sam_prompt_encoder.register_forward_pre_hook(hook, with_kwargs=True)


# -------------------------------------------------------------------------- config
def test_config_is_sam21_hiera_tiny_at_512():
    import sam2
    from omegaconf import OmegaConf

    cfg = load_config()
    assert cfg.model.image_size == 512
    attn = cfg.model.memory_attention.layer
    assert list(attn.self_attention.feat_sizes) == [32, 32] and list(attn.cross_attention.feat_sizes) == [32, 32]
    assert cfg.model._target_ == "medlib.segment.medsam2.MedSAM2VideoPredictor"
    assert cfg.model.fill_hole_area == 8 and cfg.model.binarize_mask_from_pts_for_mem_enc
    # every other value equals the sam2 package's own sam2.1 hiera-tiny config
    ours = OmegaConf.to_container(OmegaConf.load(DEFAULT_CONFIG))["model"]
    ref = OmegaConf.to_container(OmegaConf.load(Path(sam2.__file__).parent / "configs/sam2.1/sam2.1_hiera_t.yaml"))["model"]
    assert ref["image_size"] == 1024 and ref["memory_attention"]["layer"]["self_attention"]["feat_sizes"] == [64, 64]
    for d in (ours, ref):
        d.pop("image_size")
        for a in ("self_attention", "cross_attention"):
            d["memory_attention"]["layer"][a].pop("feat_sizes")
    assert ours == ref
    small = load_config(image_size=256)
    assert small.model.image_size == 256 and list(small.model.memory_attention.layer.self_attention.feat_sizes) == [16, 16]


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="`model` section"):
        load_config(bad)
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_config(image_size=500)
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_CONFIG.read_text().replace("embed_dim: 96", "embed_dim: ninety-six"))
    with pytest.raises(ConfigError, match="cannot build"):
        build_model(load_config(broken))
    with pytest.raises(ConfigError):
        MedSAM2Segmenter.random_init(0, config=broken)


# ---------------------------------------------------------------------- checkpoint
def test_checkpoint_errors_name_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="MedSAM2_latest.pt"):
        MedSAM2Segmenter()
    with pytest.raises(FileNotFoundError, match=r"missing\.pt.*MedSAM2_latest\.pt.*huggingface"):
        MedSAM2Segmenter(tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": {"not_a_sam2_key": torch.zeros(2)}}, wrong)
    with pytest.raises(ValueError, match="does not match the sam2.1 hiera-tiny 512"):
        MedSAM2Segmenter(wrong)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Path("x")}, pickled)  # not weights-only
    with pytest.raises(ValueError, match="not a loadable MedSAM2 checkpoint"):
        MedSAM2Segmenter(pickled)


def test_checkpoint_roundtrip_loads_every_weight(tmp_path, seg):
    ckpt = tmp_path / "MedSAM2_latest.pt"
    torch.save({"model": seg.model.state_dict()}, ckpt)
    loaded = build_segmenter(f"medsam2:{ckpt}")
    assert isinstance(loaded, Segmenter) and loaded.checkpoint == str(ckpt)
    a, b = seg.model.state_dict(), loaded.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = MedSAM2Segmenter.random_init(seed=1)
    w = "image_encoder.trunk.patch_embed.proj.weight"
    assert not torch.equal(other.model.state_dict()[w], a[w])


# ------------------------------------------------------------------- preprocessing
def test_frame_preprocessing_matches_official_recipe():
    # constant 127: /255 = 0.498039; (x - mean) / std per channel:
    # R (0.498039 - 0.485) / 0.229 = 0.056940, G (.. - 0.456) / 0.224 = 0.187675,
    # B (.. - 0.406) / 0.225 = 0.409063
    x = preprocess_frame(np.full((40, 50), 127, np.uint8), 64)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 10, 10].numpy(), [0.056940, 0.187675, 0.409063], atol=1e-5)
    # left half 0, right half 255: the far corners stay 0 and 1 after bicubic resizing:
    # (0 - 0.485) / 0.229 = -2.117904 and (1 - 0.485) / 0.229 = 2.248908 (red channel)
    step = np.zeros((40, 40), np.uint8)
    step[:, 20:] = 255
    y = preprocess_frame(step, 512)
    assert float(y[0, 0, 0]) == pytest.approx(-2.117904, abs=1e-5)
    assert float(y[0, 511, 511]) == pytest.approx(2.248908, abs=1e-5)
    frames = VolumeFrames(np.zeros((3, 8, 8), np.uint8), 32)
    assert len(frames) == 3 and frames.accesses == 0 and frames[2].shape == (3, 32, 32) and frames.accesses == 1


def test_fill_small_holes_matches_sam2_rule():
    s = torch.ones(1, 1, 10, 10)
    s[0, 0, 0:2, 0:10] = -1  # background strip of 20 px touching the border: kept
    s[0, 0, 4:6, 4:6] = -1  # 4-px hole: filled
    s[0, 0, 7, 1] = -1  # two pixels touching diagonally: one 8-connected hole of 2: filled
    s[0, 0, 8, 2] = -1
    s[0, 0, 4:7, 7:10] = -2  # 9-px hole > 8: kept
    out = fill_small_holes(s, 8)
    assert torch.all(out[0, 0, 4:6, 4:6] == 0.1) and out[0, 0, 7, 1] == 0.1 and out[0, 0, 8, 2] == 0.1
    assert torch.all(out[0, 0, 0:2] == -1) and torch.all(out[0, 0, 4:7, 7:10] == -2)
    assert torch.all(out[s > 0] == 1)


def test_init_state_from_frames_has_sam2s_state_layout(tmp_path):
    from PIL import Image

    model = build_model(load_config(image_size=128), seed=0)
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)).save(tmp_path / f"{i:05d}.jpg")
    ref = model.init_state(str(tmp_path))  # sam2's own loader, from a JPEG folder
    ours = model.init_state_from_frames(VolumeFrames(np.zeros((2, 32, 32), np.uint8), 128), 32, 32)
    assert set(ours) == set(ref)
    for k in ("num_frames", "video_height", "video_width", "offload_state_to_cpu", "offload_video_to_cpu"):
        assert ours[k] == ref[k], k


# ---------------------------------------------------------------------------- 2D
def test_2d_prompts_land_in_the_512_frame(seg):
    img = np.zeros((64, 80), np.uint8)
    img[20:40, 30:60] = 200
    seen, hook = _capture_prompts(seg.model)
    try:
        m, score = seg.segment_2d(img, box=[10, 20, 30, 40], points=[[45, 30], [35, 25]], return_score=True)
    finally:
        hook.remove()
    assert m.shape == (64, 80) and m.dtype == bool and isinstance(score, float)
    coords, labels = seen[-1]
    # box [10, 20, 30, 40] -> SAM inclusive [10, 20, 29, 39]; x * 512 / 80, y * 512 / 64:
    # corners (64, 160), (185.6, 312); points (288, 240), (224, 200); labels box 2, 3 then 1, 1
    np.testing.assert_allclose(coords[0], [[64, 160], [185.6, 312], [288, 240], [224, 200]], atol=1e-4)
    assert labels[0].tolist() == [2, 3, 1, 1]
    # multimask: the returned mask is the highest-scoring of the three
    masks, scores, _ = seg.image_predictor.predict(
        point_coords=np.array([[45, 30], [35, 25]]), point_labels=np.ones(2), box=np.array([10, 20, 29, 39])
    )
    assert len(scores) == 3 and score == pytest.approx(float(scores.max()), abs=1e-5)
    np.testing.assert_array_equal(m, masks[int(np.argmax(scores))] > 0)
    feats = seg.image_predictor._features  # backbone sizes follow image_size 512
    assert feats["image_embed"].shape == (1, 256, 32, 32)
    assert [tuple(f.shape) for f in feats["high_res_feats"]] == [(1, 32, 128, 128), (1, 64, 64, 64)]


def test_2d_cache_and_determinism(seg):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (48, 56), dtype=np.uint8)
    calls = seg.encoder_calls
    boxes = [[5, 5, 30, 40], [10, 2, 50, 20], [0, 0, 56, 48], [20, 20, 25, 25]]
    masks = [seg.segment_2d(img, box=b) for b in boxes]
    assert seg.encoder_calls == calls + 1 and seg.cache.stats.hits >= 3
    twin = MedSAM2Segmenter.random_init(seed=0, cache_size=0)  # same seed, no cache
    for b, m in zip(boxes[:2], masks[:2]):
        np.testing.assert_array_equal(twin.segment_2d(img, box=b), m)
    assert twin.encoder_calls == 2


def test_2d_bad_prompts_give_empty_masks(seg):
    img = np.zeros((30, 40), np.uint8)
    calls = seg.encoder_calls
    for box in ([np.nan, 1, 5, 5], [50, 40, 60, 45], [3, 3, 3, 9]):
        assert not seg.segment_2d(img, box=box).any()
    assert not seg.segment_2d(img, points=[[np.nan, 2]]).any()
    assert seg.encoder_calls == calls
    with pytest.raises(ValueError, match="box or points"):
        seg.segment_2d(img)
    assert isinstance(seg._autocast(), contextlib.nullcontext)  # bf16 autocast only on CUDA


# ---------------------------------------------------------------------------- 3D
def test_3d_official_flow_frames_memory_and_mapping(seg):
    vol = np.full((4, 64, 64), -100.0)
    vol[:, 20:40, 16:48] = 60.0
    seen, hook = _capture_prompts(seg.model)
    try:
        out = seg.propagate_3d(vol, 1, [[16, 20, 48, 40]])
    finally:
        hook.remove()
    assert out.shape == vol.shape and out.dtype == bool
    run = seg.last_run
    # forward from key 1 encodes frames 1, 2, 3; after the reset the box is added on frame 1
    # again (re-encoded: SAM2 caches only the latest frame) and reverse tracking encodes 0
    assert run["frames_encoded"] == 5 and run["frames"] == 4
    # the state holds per-frame memories only (~0.3 MB per frame at 512), never the frames
    # themselves (3 MB per frame in float32): bounded well below 1 MB per frame
    assert 0 < run["state_bytes_peak"] < 4 * 2**20
    # the box reaches the prompt encoder twice (forward, reverse), scaled by 512 / 64:
    # SAM inclusive [16, 20, 47, 39] -> [128, 160, 376, 312]
    boxes = [c for c, lab in seen if lab[0].tolist() == [2, 3]]
    assert len(boxes) == 2
    for c in boxes:
        np.testing.assert_allclose(c[0], [[128, 160], [376, 312]], atol=1e-4)
    assert not seg.propagate_3d(vol, 4, [[16, 20, 48, 40]]).any()  # key slice out of range
    assert not seg.propagate_3d(vol, 1, [[np.nan, 0, 1, 1]]).any()
    with pytest.raises(ValueError, match="non-empty"):
        seg.propagate_3d(np.zeros((2, 0, 4)), 0, [[0, 0, 1, 1]])


def test_3d_two_boxes_are_two_objects_and_deterministic():
    small = MedSAM2Segmenter.random_init(seed=3, image_size=128)
    vol = np.random.default_rng(0).normal(0, 100, (3, 32, 32))
    a = small.propagate_3d(vol, 0, [[2, 2, 12, 12], [18, 18, 30, 30]])
    assert small.last_run["boxes"] == 2 and small.last_run["frames_encoded"] == 4
    b = small.propagate_3d(vol, 0, [[2, 2, 12, 12], [18, 18, 30, 30]])
    np.testing.assert_array_equal(a, b)
