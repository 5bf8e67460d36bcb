"""Sampling GRPO completions on a CPU without ``model.generate``'s per-token machinery.

GRPO samples ``G`` completions of each prompt (MedGround-R1 Sec. 2.1: a group of G outputs per
query), and TRL's sampler repeats every prompt G times in a row, so ``generate`` encodes each image
and pre-fills each prompt G times. :func:`sample_completions` pre-fills every distinct prompt once,
copies its KV cache G times and then runs a lean decoding loop over the model's ``forward``: the
causal mask of the one new token is built here (no mask construction per layer call), positions
advance by one (Qwen2.5-VL's M-RoPE deltas come from the pre-fill), and the logits are processed by
the same rules as ``generate`` (repetition penalty, suppressed tokens, temperature, top-k, top-p, in
``generate``'s order), then sampled with one ``torch.multinomial`` over the whole batch per token,
as ``generate`` draws. Same logits, same random draws: with one seed the completions equal
``generate``'s (tested); only the floating-point rounding of a smaller pre-fill batch differs.

Anything this loop does not reproduce exactly (min-p, beam search, a ``generation_kwargs`` entry it
does not know, a model other than a decoder with a ``Cache``) falls back to ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

SUPPORTED_KWARGS = frozenset({
    "max_new_tokens", "do_sample", "pad_token_id", "bos_token_id", "eos_token_id", "temperature", "top_p",
    "top_k", "min_p", "repetition_penalty", "cache_implementation", "suppress_tokens",
})


def supports(generation_kwargs: dict[str, Any]) -> bool:
    """Whether :func:`sample_completions` reproduces ``generate`` for these settings (TRL's
    ``generation_kwargs``): sampling or greedy, no min-p, the default dynamic cache."""
    if set(generation_kwargs) - SUPPORTED_KWARGS:
        return False
    return generation_kwargs.get("min_p") is None and generation_kwargs.get("cache_implementation") in (None, "dynamic")


def group_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None,
               image_grid_thw: torch.Tensor | None, image_token_id: int | None, merge_size: int) -> list[int]:
    """For each row, the index of the first row of its run of identical consecutive rows (same
    tokens, same mask, same pixels): the rows that one pre-fill can serve. Rows whose images cannot
    be told apart from the layout are each their own run."""
    n = input_ids.shape[0]
    pixels: list[torch.Tensor | None] = [None] * n
    if pixel_values is not None:
        if image_grid_thw is None or image_token_id is None:
            return list(range(n))
        tokens_per_image = (image_grid_thw.prod(-1) // merge_size**2).tolist()
        patches_per_image = image_grid_thw.prod(-1).tolist()
        image_tokens = (input_ids == image_token_id).sum(-1).tolist()
        image, patch = 0, 0
        for row in range(n):
            start, need = patch, image_tokens[row]
            while need > 0 and image < len(tokens_per_image):
                need -= tokens_per_image[image]
                patch += patches_per_image[image]
                image += 1
            if need != 0:
                return list(range(n))
            pixels[row] = pixel_values[start:patch]
        if patch != pixel_values.shape[0]:
            return list(range(n))
    first = list(range(n))
    for row in range(1, n):
        head = first[row - 1]
        same = (torch.equal(input_ids[row], input_ids[head]) and torch.equal(attention_mask[row], attention_mask[head])
                and (pixels[row] is None) == (pixels[head] is None)
                and (pixels[row] is None or torch.equal(pixels[row], pixels[head])))
        if same:
            first[row] = head
    return first


def process_logits(logits: torch.Tensor, input_ids: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0,
                   top_p: float = 1.0, repetition_penalty: float = 1.0,
                   suppress: torch.Tensor | None = None) -> torch.Tensor:
    """The next-token scores ``generate`` samples from, in its processor order: repetition penalty
    (CTRL, scores of seen tokens divided, or multiplied when negative), suppressed tokens to -inf,
    then the warpers temperature, top-k, top-p (each keeps at least one token)."""
    scores = logits
    if repetition_penalty != 1.0:
        seen = torch.gather(scores, 1, input_ids)
        seen = torch.where(seen < 0, seen * repetition_penalty, seen / repetition_penalty)
        scores = scores.scatter(1, input_ids, seen)
    if suppress is not None and suppress.numel():
        scores = scores.index_fill(1, suppress, float("-inf"))
    if temperature != 1.0:
        scores = scores / temperature
    if top_k and top_k > 0:
        k = min(top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = 0
        remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores


def _text_and_rope_positions(model, input_ids, attention_mask, multimodal: dict[str, Any]) -> torch.Tensor:
    """Position ids as ``generate`` builds them: text positions from the mask, and for an M-RoPE
    model (Qwen2-VL family) the three rotary rows from ``get_rope_index`` on top: [4, B, S]."""
    text = attention_mask.long().cumsum(-1) - 1
    text = text.masked_fill(attention_mask == 0, 0)
    inner = getattr(model, "model", None)
    if hasattr(inner, "get_rope_index") and multimodal.get("image_grid_thw") is not None \
            and multimodal.get("mm_token_type_ids") is not None:
        rope, _ = inner.get_rope_index(input_ids, attention_mask=attention_mask, **{
            k: v for k, v in multimodal.items() if k in ("mm_token_type_ids", "image_grid_thw", "video_grid_thw")})
        return torch.cat([text[None], rope], dim=0)
    if hasattr(inner, "get_rope_index"):  # text-only rows of an M-RoPE model
        return torch.cat([text[None], text[None].expand(3, -1, -1)], dim=0)
    return text


@torch.no_grad()
def sample_completions(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, multimodal: dict[str, Any], *,
                       max_new_tokens: int, eos_token_ids: Sequence[int], pad_token_id: int, do_sample: bool = True,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                       repetition_penalty: float = 1.0, suppress_tokens: Sequence[int] | None = None,
                       share_prefill: bool = True, logits_out: list | None = None) -> torch.Tensor:
    """Prompt and completion ids [B, S + T], as ``model.generate(input_ids, attention_mask=...,
    **multimodal)`` returns them (left-padded prompts; finished rows padded with ``pad_token_id``;
    stops when every row has emitted an EOS or after ``max_new_tokens``). ``logits_out``, when
    given, receives each step's raw next-token logits [B, V] (``generate``'s ``output_logits``)."""
    from transformers import DynamicCache

    device = input_ids.device
    config = model.config
    text_config = getattr(config, "text_config", config)
    image_token_id = getattr(config, "image_token_id", None)
    merge = getattr(getattr(config, "vision_config", None), "spatial_merge_size", 2)
    known = {"pixel_values", "image_grid_thw", "mm_token_type_ids"}
    can_share = share_prefill and set(multimodal) <= known
    heads = (group_rows(input_ids, attention_mask, multimodal.get("pixel_values"), multimodal.get("image_grid_thw"),
                        image_token_id, merge) if can_share else list(range(input_ids.shape[0])))
    unique = sorted(set(heads))
    prefill_inputs = dict(multimodal)
    if len(unique) < len(heads):
        prefill_inputs = _unique_multimodal(multimodal, input_ids, unique, image_token_id, merge)
    u_ids, u_mask = input_ids[unique], attention_mask[unique]
    positions = _text_and_rope_positions(model, u_ids, u_mask, prefill_inputs)
    cache = DynamicCache(config=text_config)
    out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1, **prefill_inputs)
    logits = out.logits[:, -1].float()
    if len(unique) < len(heads):
        expand = torch.tensor([unique.index(h) for h in heads], device=device)
        cache.reorder_cache(expand)
        logits = logits.index_select(0, expand)
        positions = positions.index_select(positions.dim() - 2, expand)
    del out
    next_pos = positions[..., -1:] + 1
    eos = torch.tensor(list(eos_token_ids), device=device)
    suppress = torch.tensor(list(suppress_tokens), device=device, dtype=torch.long) if suppress_tokens else None
    pad = torch.tensor(pad_token_id, device=device)
    ids, mask = input_ids, attention_mask
    unfinished = torch.ones(ids.shape[0], dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        if logits_out is not None:
            logits_out.append(logits)
        scores = process_logits(logits, ids, temperature=temperature, top_k=top_k, top_p=top_p,
                                repetition_penalty=repetition_penalty, suppress=suppress) if do_sample else \
            process_logits(logits, ids, repetition_penalty=repetition_penalty, suppress=suppress)
        if do_sample:
            tokens = torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        tokens = torch.where(unfinished, tokens, pad)
        ids = torch.cat([ids, tokens[:, None]], dim=-1)
        unfinished = unfinished & ~torch.isin(tokens, eos)
        if step + 1 == max_new_tokens or not bool(unfinished.any()):
            break
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
        step_mask = mask[:, None, None, :].bool()  # one query token: it sees every unpadded key
        out = model(input_ids=tokens[:, None], attention_mask={"full_attention": step_mask}, position_ids=next_pos,
                    cache=cache, use_cache=True)
        logits = out.logits[:, -1].float()
        next_pos = next_pos + 1
    return ids


def _unique_multimodal(multimodal: dict[str, Any], input_ids: torch.Tensor, unique: list[int],
                       image_token_id: int | None, merge: int) -> dict[str, Any]:
    """The multimodal inputs of rows ``unique`` only (images are laid out row after row)."""
    out = dict(multimodal)
    if "mm_token_type_ids" in multimodal:
        out["mm_token_type_ids"] = multimodal["mm_token_type_ids"][unique]
    pix, grid = multimodal.get("pixel_values"), multimodal.get("image_grid_thw")
    if pix is not None:
        tokens_per_image = (grid.prod(-1) // merge**2).tolist()
        patches_per_image = grid.prod(-1).tolist()
        image_tokens = (input_ids == image_token_id).sum(-1).tolist()
        keep_images, keep_patches = [], []
        image, patch = 0, 0
        for row in range(input_ids.shape[0]):
            start, first_image, need = patch, image, image_tokens[row]
            while need > 0:
                need -= tokens_per_image[image]
                patch += patches_per_image[image]
                image += 1
            if row in unique:
                keep_images.extend(range(first_image, image))
                keep_patches.append((start, patch))
        out["pixel_values"] = torch.cat([pix[a:b] for a, b in keep_patches]) if keep_patches else pix[:0]
        out["image_grid_thw"] = grid[keep_images]
    return out


class FastGenerationMixin:
    """A ``trl.GRPOTrainer`` mixin whose CPU generation goes through :func:`sample_completions`
    (one pre-fill per distinct prompt, a lean decoding loop); TRL does everything else as before.
    The vLLM, continuous-batching and GPU paths are TRL's own, untouched."""

    def _fast_generation_applies(self, has_tool_images: bool) -> bool:
        return (not self.use_vllm and not self.use_transformers_continuous_batching and not has_tool_images
                and self.accelerator.device.type == "cpu" and self.accelerator.num_processes == 1
                and supports(self.generation_kwargs))

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self._fast_generation_applies(has_tool_images):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        target = self.accelerator.unwrap_model(self.model_wrapped)
        model = target.get_base_model() if hasattr(target, "get_base_model") else target
        kw = self.generation_kwargs

        def generate(input_ids, attention_mask, generation_config=None, **multimodal):
            return sample_completions(
                model, input_ids, attention_mask, multimodal, max_new_tokens=kw["max_new_tokens"],
                eos_token_ids=self.eos_token_ids, pad_token_id=kw["pad_token_id"], do_sample=kw.get("do_sample", True),
                temperature=kw.get("temperature") or 1.0, top_k=kw.get("top_k") or 0, top_p=kw.get("top_p") or 1.0,
                repetition_penalty=kw.get("repetition_penalty") or 1.0, suppress_tokens=kw.get("suppress_tokens"))

        target.generate = generate  # TRL's own padding and EOS masking around it stay as they are
        try:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        finally:
            del target.generate


def grpo_trainer_class(fast_generation: bool):
    """``trl.GRPOTrainer``, or with ``fast_generation`` the same trainer with
    :class:`FastGenerationMixin`'s CPU sampling (``grpo.fast_generation``)."""
    from trl import GRPOTrainer

    if not fast_generation:
        return GRPOTrainer
    return type("FastGenerationGRPOTrainer", (FastGenerationMixin, GRPOTrainer), {"__module__": __name__})
