"""Batched greedy decoding of TRL-style rows (the evaluation protocol of all three papers).

MedGround-R1's released evaluation decodes greedily (docs/medground_r1.md#metrics); MedReasoner and
MedVol-R1 report greedy numbers too. Rows are those of :func:`medlib.train.datasets.build_rows`:
a conversational ``prompt`` and the images in ``image`` (2D) or ``images`` (3D, one per
``<slice k>``). Prompts are left-padded so that every generated token follows its own prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any


def row_images(row: dict[str, Any]) -> list:
    """The images of one row in prompt order: ``images`` (a list) or ``[image]``."""
    if row.get("images") is not None:
        return list(row["images"])
    if row.get("image") is not None:
        return [row["image"]]
    return []


def prompt_texts(processor, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Chat-template text of each row's ``prompt`` with the assistant turn opened."""
    out = []
    for i, row in enumerate(rows):
        if "prompt" not in row:
            raise KeyError(f"row {i} ({row.get('sample_id', '?')}): no 'prompt' column")
        out.append(processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False))
    return out


def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


@contextmanager
def decoding(model, processor):
    """Left padding and eval mode while decoding (restored after); yields ``(tokenizer, pad_id,
    device)``."""
    tok = _tokenizer(processor)
    old_side = getattr(tok, "padding_side", "left")
    tok.padding_side = "left"
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    was_training = model.training
    model.eval()
    try:
        yield tok, pad_id, next(model.parameters()).device
    finally:
        tok.padding_side = old_side
        model.train(was_training)


def batch_inputs(processor, batch: Sequence[dict[str, Any]], device) -> dict[str, Any]:
    """The processor's padded tensors of a batch of rows (prompt texts and their images), on ``device``."""
    images = [im for r in batch for im in row_images(r)]
    inputs = processor(text=prompt_texts(processor, batch), images=images or None, padding=True, return_tensors="pt")
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in inputs.items()}


def generate(model, processor, rows: Sequence[dict[str, Any]], *, batch_size: int = 16,
             max_new_tokens: int = 64, repetition_penalty: float = 1.0, progress: bool = False) -> list[str]:
    """Greedy completions (``do_sample=False``) of ``rows``, special tokens stripped, in row order.
    ``repetition_penalty`` divides the logits of tokens already in the sequence (CTRL's penalty,
    as ``transformers`` applies it; MedReasoner App. D.1 decodes with 1.05; 1: off).

    Batches of ``batch_size`` prompts are left-padded; the result does not depend on the batch
    size beyond floating-point ties (tested on the tiny model)."""
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {repetition_penalty}")
    out: list[str] = []
    with decoding(model, processor) as (tok, pad_id, device):
        for s in tqdm(range(0, len(rows), batch_size), desc="generate", disable=not progress, leave=False):
            inputs = batch_inputs(processor, list(rows[s : s + batch_size]), device)
            with torch.inference_mode():
                ids = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens,
                                     temperature=None, top_p=None, top_k=None, pad_token_id=pad_id,
                                     repetition_penalty=float(repetition_penalty))
            out += tok.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return out
