"""``python -m medlib gpu-check --size tiny``: the GPU check's code path on a CPU, in seconds."""

from __future__ import annotations

import json

import pytest

from medlib.__main__ import main
from medlib.gpu_check import QWEN25VL_3B, QWEN25VL_3B_VOCAB, _bandwidth


def test_gpu_check_tiny_runs_grpo_steps_and_writes_the_json(tmp_path):
    out = tmp_path / "gpu.json"
    assert main(["gpu-check", "--size", "tiny", "--steps", "2", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    g = r["grpo"]
    assert len(g["step_seconds"]) == 2 and g["seconds_per_step"] > 0
    assert {"generation", "log_probs", "backward", "rest"} <= set(g["shares"])
    assert any(k.startswith("reward:") and "semantic" in k for k in g["shares"])
    assert sum(g["shares"].values()) == pytest.approx(1.0, abs=0.01)
    assert g["generated_tokens_per_second"] > 0 and r["parameters"] > 0
    assert r["grpo_vllm"]["ran"] is False and r["medsam2"]["ran"] is False  # no GPU, --volume-slices 0


def test_the_3b_dimensions_and_the_bandwidth_table():
    # Qwen2.5-VL-3B: head_dim 128 = 2 * sum(mrope_section); 16 query heads on 2 KV heads
    assert QWEN25VL_3B["hidden_size"] // QWEN25VL_3B["num_heads"] == 2 * sum(QWEN25VL_3B["mrope_section"]) == 128
    assert QWEN25VL_3B_VOCAB == 151_936 and QWEN25VL_3B["num_layers"] == 36
    assert _bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12 and _bandwidth("NVIDIA H100 PCIe") == 2.0e12
    assert _bandwidth("NVIDIA H200") == 4.8e12 and _bandwidth("a CPU") is None


def test_the_3b_config_has_the_released_parameter_count(tmp_path):
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from medlib.gpu_check import qwen25vl_3b_config
    from medlib.models.tiny import build_tiny_qwen25vl

    tok = AutoProcessor.from_pretrained(build_tiny_qwen25vl(tmp_path / "tok")).tokenizer
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(qwen25vl_3b_config(tok))
    n = sum(p.numel() for p in model.parameters())
    assert 3.70e9 < n < 3.80e9  # Qwen2.5-VL-3B-Instruct: 3.75 B
