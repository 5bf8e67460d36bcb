"""The frame a Qwen-VL model sees: the processor's resize, and the resized pixels themselves.

Qwen2/2.5-VL (patch 14) and Qwen3-VL (patch 16) resize every image so that both sides are
multiples of ``patch x merge`` (28 or 32) within the processor's ``[min_pixels, max_pixels]``
(:func:`medlib.geometry.qwen_smart_resize`), and a grounding model answers in pixels of that
resized image. Boxes are written into prompts and answers in this frame and mapped back with
:class:`medlib.geometry.ModelFrame`. :func:`processed_images` undoes the processor's patching so
that tests (and figures) can look at exactly the pixels the model received.
"""

from __future__ import annotations

import numpy as np

from ..geometry import ModelFrame, qwen_smart_resize


def _image_processor(processor):
    return getattr(processor, "image_processor", processor)


def frame_params(processor) -> tuple[int, int, int]:
    """``(factor, min_pixels, max_pixels)`` of a Qwen processor: factor = patch x merge (28 for
    Qwen2/2.5-VL, 32 for Qwen3-VL)."""
    ip = _image_processor(processor)
    factor = int(getattr(ip, "patch_size", 14)) * int(getattr(ip, "merge_size", 2))
    size = getattr(ip, "size", None) or {}
    get = size.get if isinstance(size, dict) else (lambda k, d=None: getattr(size, k, d))
    lo = get("shortest_edge", None) or getattr(ip, "min_pixels", None)
    hi = get("longest_edge", None) or getattr(ip, "max_pixels", None)
    if lo is None or hi is None:
        raise ValueError(f"{type(ip).__name__} has no min/max pixel bounds; is it a Qwen-VL processor?")
    return factor, int(lo), int(hi)


def model_frame(processor, width: int, height: int) -> ModelFrame:
    """The :class:`~medlib.geometry.ModelFrame` in which a model with ``processor`` sees (and
    answers about) an image of ``width`` x ``height`` pixels."""
    factor, lo, hi = frame_params(processor)
    mh, mw = qwen_smart_resize(int(height), int(width), factor=factor, min_pixels=lo, max_pixels=hi)
    return ModelFrame(int(width), int(height), mw, mh)


def frame_from_grid(processor, width: int, height: int, grid_thw) -> ModelFrame:
    """The frame read off a processor output's ``image_grid_thw`` row (VLM-R1's way)."""
    return ModelFrame.from_grid_thw(width, height, grid_thw, patch=int(getattr(_image_processor(processor),
                                                                                 "patch_size", 14)))


def processed_images(processor, pixel_values, image_grid_thw) -> list[np.ndarray]:
    """The resized images (uint8, H x W x 3, first temporal frame) that ``pixel_values`` encode:
    the inverse of the Qwen image processor's patching and normalisation."""
    ip = _image_processor(processor)
    p, m = int(ip.patch_size), int(ip.merge_size)
    tp = int(getattr(ip, "temporal_patch_size", 2))
    mean = np.asarray(ip.image_mean, dtype=np.float64)
    std = np.asarray(ip.image_std, dtype=np.float64)
    rows = np.asarray(pixel_values.float() if hasattr(pixel_values, "float") else pixel_values, dtype=np.float64)
    out, start = [], 0
    for t, gh, gw in np.asarray(image_grid_thw).reshape(-1, 3).tolist():
        n = t * gh * gw
        x = rows[start : start + n].reshape(t, gh // m, gw // m, m, m, 3, tp, p, p)[0, ..., 0, :, :]
        # (gh/m, gw/m, m, m, C, p, p) -> (C, gh/m, m, p, gw/m, m, p) -> (C, H, W)
        img = x.transpose(4, 0, 2, 5, 1, 3, 6).reshape(3, gh * p, gw * p)
        img = (img * std[:, None, None] + mean[:, None, None]) * 255.0
        out.append(np.clip(np.rint(img.transpose(1, 2, 0)), 0, 255).astype(np.uint8))
        start += n
    return out
