"""The CPU sampler of GRPO (medlib.train.fast_generation) against ``model.generate`` on a tiny
Qwen2.5-VL: the same next-token logits at every step, the same tokens greedily, and with one seed
the same sampled tokens (it draws as generate does), for the settings TRL passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlib.models.tiny import build_tiny_qwen25vl
from medlib.train.fast_generation import group_rows, process_logits, sample_completions, supports

torch.set_num_threads(1)

TINY = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
        "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500,
        "min_pixels": 3136, "max_pixels": 3136}
G = 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "model", **TINY)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True).eval()
    return model, AutoProcessor.from_pretrained(path, local_files_only=True)


def grpo_batch(processor, texts=("Where is the lesion?", "Find the opacity in the left lung, please.")):
    """Prompts as TRL's sampler hands them to generate: each prompt G times in a row, left-padded."""
    from PIL import Image

    rng = np.random.default_rng(0)
    convs = []
    for text in texts:
        image = Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8))
        convs += [[{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]] * G
    processor.tokenizer.padding_side = "left"
    enc = processor.apply_chat_template(convs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                        padding=True, return_tensors="pt")
    mm = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    return enc["input_ids"], enc["attention_mask"], mm


def settings(model, **kw):
    gen = model.generation_config
    return dict(max_new_tokens=kw.pop("max_new_tokens", 12), eos_token_ids=list(gen.eos_token_id),
                pad_token_id=gen.pad_token_id, suppress_tokens=[model.config.image_token_id], **kw)


def reference(model, ids, mask, mm, s, do_sample, seed=0):
    from transformers import GenerationConfig

    gc = GenerationConfig(max_new_tokens=s["max_new_tokens"], do_sample=do_sample, eos_token_id=s["eos_token_ids"],
                          pad_token_id=s["pad_token_id"], suppress_tokens=s["suppress_tokens"],
                          temperature=s.get("temperature", 1.0), top_k=s.get("top_k", 0), top_p=s.get("top_p", 1.0),
                          repetition_penalty=s.get("repetition_penalty", 1.0), disable_compile=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, **mm, generation_config=gc, output_logits=True,
                             return_dict_in_generate=True)
    return out.sequences, out.logits


def test_prompts_repeated_g_times_share_one_prefill_and_different_images_do_not(tiny):
    _, processor = tiny
    ids, mask, mm = grpo_batch(processor)
    args = (mm["pixel_values"], mm["image_grid_thw"], processor.tokenizer.convert_tokens_to_ids("<|image_pad|>"), 2)
    assert group_rows(ids, mask, *args) == [0, 0, 0, 3, 3, 3]
    pix = mm["pixel_values"].clone()
    per_image = int(mm["image_grid_thw"][0].prod())
    pix[per_image:2 * per_image] += 1.0  # row 1: same text, another image
    assert group_rows(ids, mask, pix, *args[1:]) == [0, 1, 2, 3, 3, 3]


def test_same_logits_at_every_step_and_same_greedy_tokens(tiny):
    model, processor = tiny
    ids, mask, mm = grpo_batch(processor)
    s = settings(model)
    ref_ids, ref_logits = reference(model, ids, mask, mm, s, do_sample=False)
    logits: list[torch.Tensor] = []
    new_ids = sample_completions(model, ids, mask, mm, do_sample=False, logits_out=logits, **s)
    assert torch.equal(new_ids, ref_ids)
    assert len(logits) == len(ref_logits) == s["max_new_tokens"]
    for step, (a, b) in enumerate(zip(logits, ref_logits, strict=True)):
        assert torch.allclose(a, b, atol=1e-5, rtol=0), f"step {step}: max diff {(a - b).abs().max():.2e}"


@pytest.mark.parametrize("opts", [{}, {"temperature": 0.7, "top_k": 50, "top_p": 0.9, "repetition_penalty": 1.2}],
                         ids=["trl-defaults", "warped"])
def test_same_samples_as_generate_for_the_same_seed(tiny, opts):
    model, processor = tiny
    ids, mask, mm = grpo_batch(processor)
    s = settings(model, **opts)
    for seed in (0, 1):
        ref_ids, _ = reference(model, ids, mask, mm, s, do_sample=True, seed=seed)
        torch.manual_seed(seed)
        new_ids = sample_completions(model, ids, mask, mm, do_sample=True, **s)
        assert torch.equal(new_ids, ref_ids), seed
        completions = new_ids[:, ids.shape[1]:]
        assert not torch.equal(completions[0], completions[1])  # the G samples of a prompt are drawn apart
        assert torch.equal(torch.get_rng_state(), _rng_after(model, ids, mask, mm, s, seed))


def _rng_after(model, ids, mask, mm, s, seed):
    reference(model, ids, mask, mm, s, do_sample=True, seed=seed)
    return torch.get_rng_state()


def test_stops_when_every_row_has_ended_and_pads_the_finished(tiny):
    model, processor = tiny
    ids, mask, mm = grpo_batch(processor)
    s = settings(model, max_new_tokens=60)
    s["eos_token_ids"] = list(range(20, 220))  # a third of the vocabulary ends a row: every row ends early
    ref_ids, _ = reference(model, ids, mask, mm, s, do_sample=True, seed=3)
    torch.manual_seed(3)
    new_ids = sample_completions(model, ids, mask, mm, do_sample=True, **s)
    assert torch.equal(new_ids, ref_ids)
    completions = new_ids[:, ids.shape[1]:]
    assert completions.shape[1] < 60
    ended = torch.isin(completions, torch.tensor(s["eos_token_ids"])).int().argmax(-1)
    assert (ended < completions.shape[1] - 1).any()  # some row ended before the last one and was padded
    for row, end in enumerate(ended.tolist()):
        assert (completions[row, end + 1:] == s["pad_token_id"]).all()


def test_process_logits_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    seen = torch.tensor([[0, 1]])
    out = process_logits(logits, seen, repetition_penalty=2.0, suppress=torch.tensor([3]))
    assert out.tolist() == [[1.0, -2.0, 0.5, float("-inf")]]
    # top-p 0.5 keeps the smallest set of most likely tokens whose mass reaches 0.5: token 0 alone (p 0.63)
    out = process_logits(logits, seen, top_p=0.5)
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]
    out = process_logits(logits, seen, top_k=2, temperature=0.5)
    assert out.tolist() == [[4.0, float("-inf"), 1.0, float("-inf")]]


def test_settings_it_cannot_reproduce_fall_back_to_generate():
    base = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.0, "min_p": None, "cache_implementation": None}
    assert supports(base)
    assert not supports(base | {"min_p": 0.1})
    assert not supports(base | {"cache_implementation": "static"})
    assert not supports(base | {"num_beams": 2})


def test_grpo_trains_the_same_with_and_without_fast_generation(tmp_path, monkeypatch):
    """The real trainer path: a GRPO step with grpo.fast_generation on goes through the sampler and
    logs the same rewards, lengths, KL and loss as TRL's generate (same seed)."""
    from medlib.train import fast_generation, run_grpo
    from medlib.train.callbacks import read_metrics

    calls = []
    real = fast_generation.sample_completions
    monkeypatch.setattr(fast_generation, "sample_completions", lambda *a, **k: calls.append(1) or real(*a, **k))
    tiny = {k: v for k, v in TINY.items() if k not in ("min_pixels", "max_pixels")}
    logged = {}
    for fast in (False, True):
        cfg = {"paper": "medground", "name": f"fast{fast}", "output_dir": str(tmp_path / "runs"), "seed": 0,
               "device": "cpu", "progress": False,
               "model": {"name_or_path": "tiny", "tiny": tiny, "min_pixels": 3136, "max_pixels": 3136},
               "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
               "grpo": {"learning_rate": 1e-3, "max_steps": 2, "batch_size": 2, "num_generations": 4,
                        "max_completion_length": 8, "logging_steps": 1, "save_steps": 100,
                        "fast_generation": fast, "reward_options": {"semantic_scorer": "mean-intensity"}}}
        n = len(calls)
        res = run_grpo(cfg)
        assert (len(calls) - n == 2) is fast  # one sampler call per step when on, none when off
        logged[fast] = [{k: r[k] for k in ("reward", "completions/mean_length", "kl", "loss", "entropy")}
                        for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert len(logged[True]) == 2
    assert logged[True] == logged[False]
