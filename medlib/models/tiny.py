"""A tiny, randomly initialised Qwen2.5-VL for CPU runs, saved like a hub checkpoint.

The architecture and processor classes are the real ones (``Qwen2_5_VLForConditionalGeneration``,
``Qwen2_5_VLProcessor``), only small: a feasibility study (docs/grpo.md#small-models-on-a-cpu) measured that a model of this
size (hidden 192, 3 layers, vision 128 x 2, M-RoPE base 10 with sections 2/11/11, integers as
single tokens) learns to ground on 2 CPU cores. The folder reloads with
``AutoModelForImageTextToText`` / ``AutoProcessor`` offline, so TRL can rebuild its reference
model from the path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..geometry import QWEN_FACTOR
from .tokenizer import MAX_SINGLE_TOKEN_INT, train_bpe_tokenizer

TINY_MARKER = "medlib_tiny.json"


@dataclass
class TinyQwenSpec:
    """Sizes of the tiny Qwen2.5-VL (defaults: docs/grpo.md#small-models-on-a-cpu)."""

    hidden_size: int = 192
    num_layers: int = 3
    num_heads: int = 4  # head_dim 48 = 2 * sum(mrope_section)
    num_kv_heads: int = 2
    intermediate_size: int = 512
    vision_hidden_size: int = 128
    vision_depth: int = 2
    vision_heads: int = 4
    vision_intermediate_size: int = 256
    rope_theta: float = 10.0
    mrope_section: tuple[int, int, int] = (2, 11, 11)
    vocab_size: int = 2000  # BPE merges target; integers and special tokens come on top
    max_int: int = MAX_SINGLE_TOKEN_INT
    min_pixels: int = 28 * 28 * 4  # 56 x 56
    max_pixels: int = 28 * 28 * 64  # 224 x 224
    seed: int = 0

    def check(self) -> None:
        head_dim, rem = divmod(self.hidden_size, self.num_heads)
        if rem:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if 2 * sum(self.mrope_section) != head_dim:
            raise ValueError(
                f"mrope_section {list(self.mrope_section)} must sum to head_dim / 2 = {head_dim // 2} "
                f"(hidden_size {self.hidden_size} / num_heads {self.num_heads} / 2)"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} must be a multiple of num_kv_heads {self.num_kv_heads}")
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError("vision_hidden_size must be divisible by vision_heads")
        if self.min_pixels > self.max_pixels or self.min_pixels < QWEN_FACTOR**2:
            raise ValueError(f"need {QWEN_FACTOR**2} <= min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")


def default_corpus() -> list[str]:
    """Texts the tokenizer is trained on when none are given: every paper's prompt and answer
    template (:func:`medlib.prompts.corpus_texts`). Pass the training rows' texts as well so
    that the dataset's words become single tokens."""
    from .. import prompts

    return prompts.corpus_texts()


def tiny_qwen25vl_config(spec: TinyQwenSpec, tokenizer):
    """The ``Qwen2_5_VLConfig`` of the tiny model, token ids taken from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                            "<|vision_end|>", "<|im_end|>", "<|endoftext|>")}
    vocab = len(tokenizer)
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.intermediate_size,
            "num_hidden_layers": spec.num_layers,
            "num_attention_heads": spec.num_heads,
            "num_key_value_heads": spec.num_kv_heads,
            "max_position_embeddings": 4096,
            "max_window_layers": spec.num_layers,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": float(spec.rope_theta),
                "mrope_section": list(spec.mrope_section),
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_intermediate_size,
            "num_heads": spec.vision_heads,
            "out_hidden_size": spec.hidden_size,
            "fullatt_block_indexes": list(range(spec.vision_depth)),  # tiny images: attend globally
            "window_size": 112,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def tiny_processor(tokenizer, min_pixels: int, max_pixels: int):
    """``Qwen2_5_VLProcessor(image_processor, tokenizer, video_processor)`` for small images."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": int(min_pixels), "longest_edge": int(max_pixels)}
    image_processor = Qwen2VLImageProcessor(size=size)
    video_processor = Qwen2VLVideoProcessor(size=size)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def build_tiny_qwen25vl(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    spec: TinyQwenSpec | None = None,
    overwrite: bool = False,
    **sizes,
) -> Path:
    """Build, save and return the folder of a tiny random Qwen2.5-VL (model, tokenizer, processor).

    ``texts`` is the tokenizer's training corpus (default :func:`default_corpus`); ``sizes``
    override fields of :class:`TinyQwenSpec` (e.g. ``hidden_size=128``). An existing folder built
    with the same spec and corpus is reused unless ``overwrite``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    unknown = sorted(set(sizes) - set(TinyQwenSpec.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown tiny-model size(s) {unknown}; valid: {sorted(TinyQwenSpec.__dataclass_fields__)}")
    if "mrope_section" in sizes:
        sizes["mrope_section"] = tuple(sizes["mrope_section"])
    spec = replace(spec or TinyQwenSpec(), **sizes)
    spec.check()
    corpus = list(texts) if texts is not None else default_corpus()
    out = Path(out_dir)
    key = {"spec": asdict(spec), "corpus_size": len(corpus), "corpus_hash": _hash(corpus)}
    marker = out / TINY_MARKER
    if marker.exists() and not overwrite:
        if json.loads(marker.read_text()) == json.loads(json.dumps(key)):
            return out
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_bpe_tokenizer(corpus, vocab_size=spec.vocab_size, max_int=spec.max_int)
    config = tiny_qwen25vl_config(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, bos_token_id=eos[1], do_sample=False
    )
    model.save_pretrained(out)
    processor = tiny_processor(tokenizer, spec.min_pixels, spec.max_pixels)
    processor.save_pretrained(out)
    marker.write_text(json.dumps(key, indent=1))
    return out


def _hash(texts: list[str]) -> str:
    import hashlib

    h = hashlib.sha1()
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()
