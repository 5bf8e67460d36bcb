"""Vision-language models of the three papers: loading, the tiny CPU model, coordinate frames.

* :func:`load_vlm` (hub id or local folder -> model, processor), :func:`load_processor`;
* :func:`model_frame` (the :class:`~medlib.geometry.ModelFrame` a processor resizes an image to);
* :func:`build_tiny_qwen25vl` (a small random Qwen2.5-VL with a locally trained tokenizer).
"""

from .frames import frame_from_grid, frame_params, model_frame, processed_images
from .load import (
    KNOWN_MODELS,
    ModelLoadError,
    load_processor,
    load_vlm,
    model_family,
    resolve_attn_implementation,
    resolve_dtype,
    resolve_model_source,
    set_pixel_bounds,
)
from .tiny import TinyQwenSpec, build_tiny_qwen25vl
from .tokenizer import QWEN_CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS, train_bpe_tokenizer

__all__ = [
    "KNOWN_MODELS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "ModelLoadError",
    "TinyQwenSpec",
    "build_tiny_qwen25vl",
    "frame_from_grid",
    "frame_params",
    "load_processor",
    "load_vlm",
    "model_family",
    "model_frame",
    "processed_images",
    "resolve_attn_implementation",
    "resolve_dtype",
    "resolve_model_source",
    "set_pixel_bounds",
    "train_bpe_tokenizer",
]
