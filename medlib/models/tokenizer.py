"""A small byte-level BPE tokenizer with Qwen's special tokens and chat template, trained locally.

Used by :func:`medlib.models.tiny.build_tiny_qwen25vl`: no tokenizer can be downloaded here, and
a tiny model learns coordinates far better when every integer up to 999 is one token
(docs/grpo.md#small-models-on-a-cpu, point 3). Digit runs are cut into chunks of at most three digits
before the byte-level split, and the chunks are whole vocabulary entries (``ignore_merges``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

#: Qwen2/2.5-VL special tokens, in the order of their ids in the real vocabulary.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Frequent tags of the three papers' answer formats, kept as single (non-special) tokens.
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
MAX_SINGLE_TOKEN_INT = 999
DIGIT_CHUNK = r"\d{1,3}"

#: Qwen2-VL's chat template (system default, images and videos as vision_start/pad/end), keyed on
#: the part ``type`` so that rows stored by ``datasets`` (parts with ``text: None``) render right.
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def number_tokens(max_int: int = MAX_SINGLE_TOKEN_INT) -> list[str]:
    """Every integer 0..max_int as a string, plus the two-digit chunks with a leading zero."""
    return [str(i) for i in range(max_int + 1)] + [f"0{d}" for d in range(10)]


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2000, max_int: int = MAX_SINGLE_TOKEN_INT):
    """Train a byte-level BPE on ``texts`` and return a ``transformers`` fast tokenizer with
    Qwen's special tokens, ``<|im_end|>`` as EOS, ``<|endoftext|>`` as padding, the Qwen chat
    template, and the integers ``0..max_int`` as single tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if max_int > 999:
        raise ValueError(f"max_int must be <= 999 (digit runs are cut into 3-digit chunks), got {max_int}")
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(DIGIT_CHUNK), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)

    # numbers as whole vocabulary entries: with ignore_merges a pre-token found in the vocabulary
    # is one token, so no merges are needed (and none of the learned digit merges can split it)
    spec = json.loads(tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    for s in number_tokens(max_int):
        if s not in vocab:
            vocab[s] = len(vocab)
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_tokens(list(TAG_TOKENS))

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
        model_max_length=32768,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = QWEN_CHAT_TEMPLATE
    return fast
