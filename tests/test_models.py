"""Model factory: the tiny Qwen2.5-VL, loading from folders and hub ids, attention choice, and the
coordinate frame a processor resizes images to (a box drawn in an image lands on the same pixels
of the resized image the model receives)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from medlib.geometry import ModelFrame
from medlib.models import (
    ModelLoadError,
    TinyQwenSpec,
    build_tiny_qwen25vl,
    frame_from_grid,
    load_processor,
    load_vlm,
    model_family,
    model_frame,
    processed_images,
    resolve_attn_implementation,
)
from medlib.models import load as load_mod

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # the section-10 architecture (defaults): hidden 192, 3 layers, vision 128 x 2, rope base 10
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "model")


def test_tiny_model_reloads_offline_with_auto_classes(tiny_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir, local_files_only=True)
    proc = AutoProcessor.from_pretrained(tiny_dir, local_files_only=True)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(proc).__name__ == "Qwen2_5_VLProcessor"
    tc, vc = model.config.text_config, model.config.vision_config
    assert (tc.hidden_size, tc.num_hidden_layers, tc.num_attention_heads) == (192, 3, 4)
    assert (vc.hidden_size, vc.depth, vc.out_hidden_size) == (128, 2, 192)
    assert tc.rope_parameters["rope_theta"] == 10.0 and tc.rope_parameters["mrope_section"] == [2, 11, 11]
    tok = proc.tokenizer
    for name in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        token = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
                 "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}[name]
        assert getattr(model.config, name) == tok.convert_tokens_to_ids(token)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert model.config.text_config.vocab_size == len(tok)
    assert proc.image_processor.size["shortest_edge"] == TinyQwenSpec().min_pixels
    # the real processor expands one image into its tokens and the model generates from it
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "where?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n") and "<|vision_start|><|image_pad|><|vision_end|>" in text
    inputs = proc(text=[text], images=[Image.new("RGB", (112, 112), 128)], return_tensors="pt")
    # 112 x 112 -> 8 x 8 patches of 14 -> merged 2 x 2 -> 16 image tokens
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 16
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


def test_integers_are_single_tokens(tiny_dir):
    tok = load_processor(tiny_dir).tokenizer
    for n in (0, 7, 42, 100, 511, 999):
        ids = tok(f"[{n}, 3]", add_special_tokens=False)["input_ids"]
        assert str(n) in tok.convert_ids_to_tokens(ids), n
    # digit runs are cut into chunks of three: 1234 -> "123" "4"
    toks = tok.convert_ids_to_tokens(tok("1234", add_special_tokens=False)["input_ids"])
    assert toks == ["123", "4"]
    assert len(tok("<think>", add_special_tokens=False)["input_ids"]) == 1
    s = '<think>a b</think><answer>{"bbox_2d": [12, 345, 67, 890]}</answer>'
    assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s


def test_build_is_reused_and_spec_is_checked(tiny_dir):
    weights = tiny_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_qwen25vl(tiny_dir) == tiny_dir
    assert weights.stat().st_mtime_ns == before  # same spec and corpus: not rebuilt
    with pytest.raises(ValueError, match="mrope_section"):
        build_tiny_qwen25vl(tiny_dir.parent / "bad", mrope_section=(2, 10, 10))
    with pytest.raises(TypeError, match="unknown tiny-model size"):
        build_tiny_qwen25vl(tiny_dir.parent / "bad", hidden=3)


def test_load_vlm_from_folder_uses_sdpa_on_cpu(tiny_dir, monkeypatch):
    monkeypatch.setattr(load_mod, "flash_attention_available", lambda: False)
    assert resolve_attn_implementation("auto") == "sdpa"
    with pytest.raises(ValueError, match="flash-attn"):
        resolve_attn_implementation("flash_attention_2")
    model, proc = load_vlm(tiny_dir, dtype="float32", min_pixels=28 * 28 * 9, max_pixels=28 * 28 * 9)
    assert model.config._attn_implementation == "sdpa"
    assert next(model.parameters()).dtype == torch.float32
    assert proc.image_processor.size["longest_edge"] == 28 * 28 * 9
    monkeypatch.setattr(load_mod, "flash_attention_available", lambda: True)
    assert resolve_attn_implementation("auto") == "flash_attention_2"


def test_unreachable_hub_gives_one_clear_error(monkeypatch):
    monkeypatch.setattr(load_mod, "hub_reachable", lambda timeout=5.0: False)
    t = time.monotonic()
    with pytest.raises(ModelLoadError, match="pass the local folder") as e:
        load_vlm("medlib-tests/Qwen2.5-VL-not-cached")
    assert "medlib-tests/Qwen2.5-VL-not-cached" in str(e.value)
    with pytest.raises(ModelLoadError, match="local_files_only"):
        load_processor("medlib-tests/Qwen2.5-VL-not-cached", local_files_only=True)
    assert time.monotonic() - t < 10  # no minute of retries


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_vlm(tmp_path / "nope" / "model")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_vlm(tmp_path)


def test_model_family_of_the_papers_models(tiny_dir):
    assert model_family("Qwen/Qwen2.5-VL-7B-Instruct") == "qwen2_5_vl"
    assert model_family("lingshu-medical-mllm/Lingshu-7B") == "qwen2_5_vl"
    assert model_family("Qwen/Qwen3-VL-4B-Instruct") == "qwen3_vl"
    assert model_family(str(tiny_dir)) == "qwen2_5_vl"
    with pytest.raises(ValueError, match="architecture"):
        model_family("someone/llama-3")


# ------------------------------------------------------------------------- frames
def _bright_box_image(w: int, h: int, box: tuple[int, int, int, int]) -> np.ndarray:
    img = np.full((h, w, 3), 30, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 230
    return img


@pytest.mark.parametrize(
    ("size", "box", "bounds", "patch"),
    [
        ((150, 97), (40, 20, 95, 61), (3136, 50176), 14),  # rounded down: 140 x 84
        ((40, 30), (10, 6, 30, 22), (3136, 50176), 14),  # below min_pixels: upscaled to 56 x 56
        ((500, 300), (200, 90, 320, 210), (3136, 50176), 14),  # above max_pixels: 280 x 168
        ((300, 200), (60, 40, 180, 150), (1024, 65536), 16),  # Qwen3-VL's patch 16 (factor 32)
    ],
)
def test_gt_box_lands_on_the_same_pixels_the_model_sees(tiny_dir, size, box, bounds, patch):
    """Draw a box into an image, run the real image processor, rebuild the resized pixels from
    pixel_values: the model-frame box covers exactly the bright region there."""
    from transformers import Qwen2VLImageProcessor

    w, h = size
    proc = Qwen2VLImageProcessor(size={"shortest_edge": bounds[0], "longest_edge": bounds[1]}, patch_size=patch)
    frame = model_frame(proc, w, h)
    out = proc(images=[Image.fromarray(_bright_box_image(w, h, box))], return_tensors="pt")
    seen = processed_images(proc, out["pixel_values"], out["image_grid_thw"])[0]
    assert seen.shape[:2] == (frame.model_height, frame.model_width)
    assert frame == frame_from_grid(proc, w, h, out["image_grid_thw"][0])  # VLM-R1's way agrees
    mbox = frame.box_to_model(box)
    ys, xs = np.nonzero(seen.mean(axis=-1) > 130)
    bright = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    # interpolation blurs the edge by at most a pixel either way
    assert np.all(np.abs(bright - mbox) <= 1.0), (bright, mbox)
    # the integer box written into prompts/answers covers the region and stays in the frame
    ib = np.array(frame.box_to_model_int(box))
    assert np.all(ib[:2] <= bright[:2] + 1) and np.all(ib[2:] >= bright[2:] - 1)
    assert ib[2] <= frame.model_width and ib[3] <= frame.model_height
    # and maps back onto the original pixels
    assert np.allclose(frame.box_to_original(mbox), box)


def test_processor_frame_matches_the_full_processor(tiny_dir):
    proc = load_processor(tiny_dir, min_pixels=3136, max_pixels=50176)
    frame = model_frame(proc, 150, 97)
    assert frame == ModelFrame(150, 97, 140, 84)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    out = proc(text=[text], images=[Image.new("RGB", (150, 97))], return_tensors="pt")
    assert frame == frame_from_grid(proc, 150, 97, out["image_grid_thw"][0])
    # 140 x 84 -> 10 x 6 patches of 14 -> 60 / 4 = 15 image tokens
    assert int((out["input_ids"] == proc.image_token_id).sum()) == 15
