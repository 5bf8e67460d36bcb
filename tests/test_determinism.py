"""Two runs with the same seed give identical results: SFT then
GRPO, each from scratch in its own folder, end with bit-identical weights, identical logged losses
and rewards, and identical evaluation outputs; another seed gives other weights."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_MODEL
from safetensors.torch import load_file

from medlib.study.ablation import evaluate_model
from medlib.train import config_from_dict, run_grpo, run_sft
from medlib.train.callbacks import read_metrics

torch.set_num_threads(1)

TINY = TINY_MODEL


def run(tmp_path, folder: str, seed: int):
    cfg = config_from_dict({
        "paper": "medground", "name": "det", "output_dir": str(tmp_path / folder), "seed": seed, "device": "cpu",
        "progress": False, "report_to": ["none"],
        "model": {"name_or_path": "tiny", "tiny": {**TINY, "seed": seed}, "min_pixels": 3136, "max_pixels": 3136,
                  "image_backend": "pil"},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
        "sft": {"enabled": True, "learning_rate": 1e-2, "max_steps": 3, "batch_size": 4, "logging_steps": 1,
                "save_steps": 100},
        "grpo": {"init_from": "sft", "learning_rate": 1e-3, "max_steps": 2, "batch_size": 2, "num_generations": 4,
                 "max_completion_length": 12, "temperature": 1.0, "logging_steps": 1, "save_steps": 100,
                 "reward_options": {"semantic_scorer": "mean-intensity"}},
    })
    run_sft(cfg)
    res = run_grpo(cfg)
    summary = evaluate_model(cfg, res.model_dir, tmp_path / folder / "eval", split="train", batch_size=4,
                             max_new_tokens=12)
    preds = [json.loads(line) for line in (tmp_path / folder / "eval" / "predictions.jsonl").read_text().splitlines()]
    clock = ("time", "runtime", "per_second", "seconds")  # wall-clock columns differ run to run
    logged = [{k: v for k, v in r.items() if not any(c in k for c in clock)}
              for r in read_metrics(res.metrics_csv) if "loss" in r]
    return load_file(str(res.model_dir / "model.safetensors")), logged, summary, preds


@pytest.mark.slow  # trains a model
def test_same_seed_same_weights_logs_and_metrics_other_seed_differs(tmp_path):
    w1, log1, s1, p1 = run(tmp_path, "a", seed=3)
    w2, log2, s2, p2 = run(tmp_path, "b", seed=3)
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert log1 == log2 and len(log1) == 2
    assert s1["metrics"] == s2["metrics"] and s1["n"] == 8
    assert [p["completion"] for p in p1] == [p["completion"] for p in p2]
    w3, _, _, _ = run(tmp_path, "c", seed=4)
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)
