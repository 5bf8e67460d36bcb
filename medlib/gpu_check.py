"""``python -m medlib gpu-check``: GRPO at the papers' model size on one GPU, in minutes.

What runs (one command, about 8 minutes on one H100 at ``--size 3b``):

1. A Qwen2.5-VL of the real 3B dimensions (text 2048 x 36 layers, 16 heads / 2 KV heads, MLP
   11008, vocabulary 151,936, tied embeddings: 3.75 B parameters; vision tower 1280 x 32 blocks, full attention at blocks 7, 15, 23,
   31) built from a ``Qwen2_5_VLConfig`` with random weights (no download), saved once under
   ``build/gpu_check/`` so TRL can load the policy and the reference model from it; the
   tokenizer and processor are medlib's small offline ones (a random model's tokens decode to
   nothing the rewards accept: the rewards still run on every completion).
2. ``--steps`` GRPO steps through ``trl.GRPOTrainer`` with bf16, sdpa attention (flash-attention 2
   when ``flash_attn`` imports), gradient checkpointing and MedGround-R1's reward set (format,
   spatial, semantic), every part of the step timed (:mod:`medlib.train.step_timing`); then the
   same with vLLM colocated when ``vllm`` imports.
3. MedSAM2 (random weights, through ``sam2``) propagating a box through a ``--volume-slices``
   slice volume.

The JSON (``results/benchmarks/gpu.json``) holds the step time, its shares, generated tokens per
second, peak GPU memory, and beside them the arithmetic of the generation-bound step: decoding
reads every weight once per token (the batch's sequences share the read), so a step's generation
takes at least ``max_completion_length x weight bytes / memory bandwidth`` (3B in bf16 at the
H100 SXM's 3.35 TB/s: about 2.2 ms a token). ``--size tiny`` runs the same code on a CPU in
seconds (the test).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QWEN25VL_3B = dict(
    hidden_size=2048, num_layers=36, num_heads=16, num_kv_heads=2, intermediate_size=11008,
    vision_hidden_size=1280, vision_depth=32, vision_heads=16, vision_intermediate_size=3420,
    rope_theta=1_000_000.0, mrope_section=(16, 24, 24),
)
QWEN25VL_3B_VOCAB = 151_936
QWEN25VL_3B_FULL_ATTENTION = [7, 15, 23, 31]
BANDWIDTH = {"H100 PCIe": 2.0e12, "H100": 3.35e12, "H200": 4.8e12, "A100": 2.0e12}  # bytes/s, datasheets
PROFILES = {
    # prompts per step, G, completion tokens, image side (pixels), MedSAM2 volume slices
    "3b": {"prompts": 4, "num_generations": 4, "max_completion_length": 128, "image_size": 448,
           "volume_slices": 64},
    "tiny": {"prompts": 2, "num_generations": 2, "max_completion_length": 8, "image_size": 56,
             "volume_slices": 0},
}


def _bandwidth(device_name: str) -> float | None:
    for key in sorted(BANDWIDTH, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return BANDWIDTH[key]
    return None


def qwen25vl_3b_config(tokenizer):
    """``Qwen2_5_VLConfig`` of Qwen2.5-VL-3B's dimensions, special-token ids from ``tokenizer``."""
    from .models.tiny import TinyQwenSpec, tiny_qwen25vl_config

    config = tiny_qwen25vl_config(TinyQwenSpec(**QWEN25VL_3B), tokenizer)
    config.text_config.vocab_size = QWEN25VL_3B_VOCAB
    config.vision_config.fullatt_block_indexes = QWEN25VL_3B_FULL_ATTENTION
    config.tie_word_embeddings = config.text_config.tie_word_embeddings = True  # as the released 3B
    return config


def build_model(out: Path, size: str, attn: str, dtype) -> tuple[Path, int]:
    """Save a random Qwen2.5-VL of ``size`` (and medlib's offline processor) under ``out``;
    returns the folder and its parameter count."""
    import torch
    from transformers import AutoProcessor, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from .models.tiny import build_tiny_qwen25vl

    tiny = build_tiny_qwen25vl(out.parent / "tiny_processor", min_pixels=28 * 28 * 4, max_pixels=512 * 512)
    if size == "tiny":
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny)
        return tiny, sum(p.numel() for p in model.parameters())
    marker = out / "medlib_gpu_check.json"
    processor = AutoProcessor.from_pretrained(tiny)
    config = qwen25vl_3b_config(processor.tokenizer)
    if marker.is_file():
        return out, json.loads(marker.read_text())["parameters"]
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).to(dtype)
    tok = processor.tokenizer
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id, bos_token_id=eos[1])
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    processor.save_pretrained(out)
    marker.write_text(json.dumps({"parameters": n, "attn": attn}))
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out, n


def _rows(root: Path, processor, n: int, image_size: int) -> list[dict[str, Any]]:
    from .train.datasets import read_toy, row_2d, write_toy2d

    write_toy2d(root, {"train": n}, image_size=image_size)
    return [row_2d(r, processor, "medground", "r1", False) for r in read_toy(root, "train")[:n]]


def _grpo(model_dir: Path, rows: list, prof: dict, steps: int, device: str, attn: str, run_dir: Path,
          use_vllm: bool) -> dict[str, Any]:
    """``steps`` GRPO steps, timed; peak memory and tokens per second."""
    import torch
    from transformers import AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    from .rewards.registry import build_reward_set
    from .train.common import _checkpointing_arg
    from .train.datasets import to_dataset
    from .train.step_timing import TimedReward, Timers, step_timer_callback, summarise, timed_trainer

    cuda = device == "cuda"
    shutil.rmtree(run_dir, ignore_errors=True)
    processor = AutoProcessor.from_pretrained(model_dir)
    funcs, weights = build_reward_set("medground", None, semantic_scorer="mean-intensity")
    timers = Timers()
    g = prof["num_generations"]
    args = GRPOConfig(
        output_dir=str(run_dir), max_steps=steps, per_device_train_batch_size=prof["prompts"] * g,
        num_generations=g, max_completion_length=prof["max_completion_length"], learning_rate=1e-6,
        beta=0.04, loss_type="grpo", scale_rewards="group", temperature=1.0, bf16=cuda, use_cpu=not cuda,
        **{_checkpointing_arg(): cuda}, logging_steps=1, save_strategy="no", report_to=[], seed=0,
        remove_unused_columns=False, reward_weights=weights, use_vllm=use_vllm, vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.3, dataloader_num_workers=0,
        model_init_kwargs={"dtype": torch.bfloat16 if cuda else torch.float32, "attn_implementation": attn},
    )
    steps_s: list[float] = []
    sync = torch.cuda.synchronize if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with timed_trainer(timers):
        trainer = GRPOTrainer(model=str(model_dir), reward_funcs=[TimedReward(f, timers) for f in funcs], args=args,
                              train_dataset=to_dataset(rows), processing_class=processor,
                              callbacks=[step_timer_callback(steps_s, sync)])
        trainer.train()
    out = summarise(timers, steps_s)
    logged = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    mean_len = sum(h["completions/mean_length"] for h in logged) / len(logged) if logged else None
    gen = out["seconds"].get("generation", 0.0)
    n_tokens = (mean_len or 0) * prof["prompts"] * g * len(steps_s)
    out["completion_mean_tokens"] = mean_len
    out["generated_tokens_per_second"] = round(n_tokens / gen, 1) if gen > 0 else None
    out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
    out["use_vllm"] = use_vllm
    return out


def _medsam2(n_slices: int, device: str) -> dict[str, Any]:
    """MedSAM2 (random weights) propagating one box through an ``n_slices`` volume."""
    import numpy as np
    import torch

    try:
        from .segment.medsam2 import MedSAM2Segmenter

        seg = MedSAM2Segmenter.random_init(seed=0, device=device)
    except ImportError as e:
        return {"ran": False, "reason": f"sam2 is not installed ({e})"}
    z, y, x = np.mgrid[:n_slices, :256, :256]
    vol = np.where(((z - n_slices / 2) / (n_slices / 3)) ** 2 + ((y - 128) / 60) ** 2 + ((x - 128) / 70) ** 2 <= 1,
                   60.0, -100.0)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    mask = seg.propagate_3d(vol, n_slices // 2, [[58, 68, 198, 188]])
    if device == "cuda":
        torch.cuda.synchronize()
    s = time.perf_counter() - t0
    return {"ran": True, "slices": n_slices, "seconds": round(s, 3), "slices_per_second": round(n_slices / s, 2),
            "mask_slices": int(mask.any(axis=(1, 2)).sum()), "encoder_calls": seg.encoder_calls}


def gpu_check(size: str = "3b", steps: int = 3, out: str | Path | None = None, vllm: bool = True,
              volume_slices: int | None = None, work_dir: str | Path = "build/gpu_check") -> dict[str, Any]:
    """Run the check (see the module docstring) and write its JSON; returns it."""
    import torch
    import transformers
    import trl

    from .paths import repo_path, results_dir

    if size not in PROFILES:
        raise ValueError(f"--size {size!r}: choose one of {', '.join(PROFILES)}")
    prof = dict(PROFILES[size])
    if volume_slices is not None:
        prof["volume_slices"] = int(volume_slices)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2" if cuda else "sdpa"
    except ImportError:
        attn = "sdpa"
    work = repo_path(work_dir)
    t0 = time.time()
    dtype = torch.bfloat16 if cuda else torch.float32
    model_dir, n_params = build_model(work / f"qwen25vl_{size}", size, attn, dtype)
    from transformers import AutoProcessor

    rows = _rows(work / f"rows_{prof['image_size']}", AutoProcessor.from_pretrained(model_dir),
                 prof["prompts"] * max(steps, 1), prof["image_size"])
    name = torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine()
    bw = _bandwidth(name) if cuda else None
    weight_bytes = n_params * (2 if cuda else 4)
    result: dict[str, Any] = {
        "check": "gpu", "size": size, "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m medlib gpu-check --size {size} --steps {steps}",
        "device": name, "cuda": cuda, "torch": torch.__version__, "transformers": transformers.__version__,
        "trl": trl.__version__, "attn_implementation": attn, "dtype": str(dtype).replace("torch.", ""),
        "gradient_checkpointing": cuda, "parameters": n_params, "profile": prof,
        "rewards": "medground format, spatial, semantic (semantic through the deterministic test scorer: the "
                   "CLIP needs training data this check does not build)",
        "model_build_seconds": round(time.time() - t0, 1), "nproc": os.cpu_count(),
    }
    result["grpo"] = _grpo(model_dir, rows, prof, steps, device, attn, work / "run", use_vllm=False)
    tokens = prof["max_completion_length"]
    estimate = {"weight_bytes": weight_bytes, "bandwidth_bytes_per_s": bw,
                "decode_token_seconds": None if bw is None else weight_bytes / bw,
                "generation_seconds_per_step": None if bw is None else tokens * weight_bytes / bw,
                "note": "a step generates max_completion_length tokens for all sequences together; each decoded "
                        "token reads every weight once: the floor is tokens x weight bytes / bandwidth"}
    gen = result["grpo"]["seconds"].get("generation")
    n_steps = len(result["grpo"]["step_seconds"])
    if gen and n_steps and estimate["generation_seconds_per_step"]:
        estimate["measured_generation_seconds_per_step"] = round(gen / n_steps, 3)
        estimate["measured_over_floor"] = round(gen / n_steps / estimate["generation_seconds_per_step"], 2)
    result["generation_bound_estimate"] = estimate
    vllm_ok = False
    if vllm and cuda:
        try:
            import vllm as _vllm  # noqa: F401

            vllm_ok = True
        except ImportError as e:
            result["grpo_vllm"] = {"ran": False, "reason": f"vllm does not import ({e})"}
    if vllm_ok:
        try:
            result["grpo_vllm"] = _grpo(model_dir, rows, prof, steps, device, attn, work / "run_vllm", use_vllm=True)
        except Exception as e:  # noqa: BLE001 - the check reports what failed and goes on
            result["grpo_vllm"] = {"ran": False, "reason": f"{type(e).__name__}: {e}"}
    elif "grpo_vllm" not in result:
        result["grpo_vllm"] = {"ran": False, "reason": "no GPU" if not cuda else "--no-vllm"}
    if prof["volume_slices"] > 0:
        result["medsam2"] = _medsam2(prof["volume_slices"], device)
    else:
        result["medsam2"] = {"ran": False, "reason": "--volume-slices 0"}
    result["wall_seconds"] = round(time.time() - t0, 1)
    path = Path(out) if out is not None else results_dir() / "benchmarks" / "gpu.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result
