"""GRPO runner (trl.GRPOTrainer) in the TRL test style: the paper's reward set from the registry,
per-reward means, KL and completion lengths logged, every trainable parameter changed; a killed
run resumes from its last checkpoint to the planned step count."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import TINY_MODEL
from safetensors.torch import load_file
from transformers import TrainerCallback

from medlib.paths import REPO
from medlib.rewards.registry import build_reward_set
from medlib.train import ConfigError, run_grpo, run_sft
from medlib.train.callbacks import read_metrics

torch.set_num_threads(1)

TINY = TINY_MODEL


def config(tmp_path, name, **grpo):
    return {
        "paper": "medground", "name": name, "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
        "progress": False,
        "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
        "grpo": {"learning_rate": 1e-3, "max_steps": 2, "batch_size": 2, "num_generations": 4, "beta": 0.04,
                 "max_completion_length": 8, "temperature": 1.0, "loss_type": "grpo", "scale_rewards": "group",
                 "logging_steps": 1, "save_steps": 100, "lr_scheduler": "constant",
                 "reward_options": {"semantic_scorer": "mean-intensity"}, **grpo},
    }


def digit_count(prompts, completions, **kwargs):
    """A reward that varies between random completions (the untrained model never earns the
    paper's rewards, so this gives the advantages something to rank)."""
    from medlib.parsing import completion_text

    return [float(sum(ch.isdigit() for ch in completion_text(c))) for c in completions]


@pytest.mark.slow  # trains a model
def test_grpo_logs_rewards_kl_lengths_and_changes_every_parameter(tmp_path):
    funcs, weights = build_reward_set("medground", None, semantic_scorer="mean-intensity")
    res = run_grpo(config(tmp_path, "grpo"), reward_funcs=[*funcs, digit_count], reward_weights=[*weights, 0.5])
    assert res.global_step == 2
    rows = [r for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        for key in ("rewards/medground_format/mean", "rewards/medground_spatial/mean",
                    "rewards/medground_semantic/mean", "rewards/digit_count/mean", "kl",
                    "completions/mean_length", "reward", "reward_std"):
            assert key in r, key
        assert 0 < r["completions/mean_length"] <= 8
    before = load_file(str(tmp_path / "runs" / "grpo" / "tiny_model" / "model.safetensors"))
    after = load_file(str(res.model_dir / "model.safetensors"))
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged}"


@pytest.mark.slow  # trains a model
def test_grpo_uses_the_papers_reward_set_by_default(tmp_path):
    res = run_grpo(config(tmp_path, "paperset", max_steps=1, max_completion_length=4))
    import json

    prov = json.loads((res.run_dir / "provenance.json").read_text())
    assert prov["rewards"] == ["medground_format", "medground_spatial", "medground_semantic"]
    assert prov["reward_weights"] == [1.0, 1.0, 1.0]


@pytest.mark.slow  # trains a model
def test_grpo_from_sft_with_lora(tmp_path):
    cfg = config(tmp_path, "chain", max_steps=1, init_from="sft",
                 lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"})
    cfg["sft"] = {"learning_rate": 1e-2, "max_steps": 2, "batch_size": 4, "logging_steps": 1, "save_steps": 100}
    with pytest.raises(ConfigError, match="run the sft stage first"):
        run_grpo(cfg)
    sft = run_sft(cfg)
    res = run_grpo(cfg, reward_funcs=[digit_count])
    assert res.global_step == 1
    start = load_file(str(sft.model_dir / "model.safetensors"))
    end = load_file(str(res.model_dir / "model.safetensors"))
    # all-linear LoRA, merged: linear weights move, norms and embeddings stay
    changed = {k for k in start if not torch.equal(start[k], end[k])}
    assert any(k.endswith("q_proj.weight") for k in changed) and any("visual" in k for k in changed)
    assert not any("norm" in k or "embed_tokens" in k for k in changed)


class Crash(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("simulated kill")


@pytest.mark.slow  # trains a model
def test_killed_grpo_run_resumes_from_its_last_checkpoint(tmp_path):
    cfg = config(tmp_path, "killed", max_steps=4, save_steps=2)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_grpo(cfg, reward_funcs=[digit_count], callbacks=[Crash(3)])
    run_dir = tmp_path / "runs" / "killed" / "grpo"
    assert (run_dir / "checkpoint-2").is_dir() and not (run_dir / "final").exists()
    ck2 = load_file(str(run_dir / "checkpoint-2" / "model.safetensors"))
    res = run_grpo(cfg, reward_funcs=[digit_count])
    assert res.global_step == 4 and (run_dir / "checkpoint-4").is_dir() and (res.model_dir / "config.json").is_file()
    steps = [r["step"] for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    # training went on from checkpoint-2's weights, not from the initial model
    init = load_file(str(tmp_path / "runs" / "killed" / "tiny_model" / "model.safetensors"))
    end = load_file(str(res.model_dir / "model.safetensors"))
    k = "lm_head.weight"
    assert (end[k] - ck2[k]).abs().max() < (end[k] - init[k]).abs().max()


@pytest.mark.slow
def test_cli_runs_the_smoke_config(tmp_path):
    """``python -m medlib.train all`` on configs/medground/smoke.yaml, shrunk by overrides."""
    over = [f"output_dir={tmp_path / 'runs'}", f"data.root={tmp_path / 'chest'}", "data.sizes={train: 6}",
            "data.image_size=64", "model.max_pixels=4096", f"model.tiny={TINY}".replace("'", ""),
            "sft.max_steps=2", "sft.batch_size=2", "grpo.max_steps=1", "grpo.batch_size=1",
            "grpo.max_completion_length=8", "progress=false", "vision.enabled=true", "vision.steps=2",
            "sft.init_from=vision",
            # the smoke config's "embedded" CLIP trains for minutes on first use (tests/test_semantic.py covers it)
            "grpo.reward_options.semantic_scorer=mean-intensity"]
    out = subprocess.run([sys.executable, "-m", "medlib.train", "all", "--config",
                          str(REPO / "configs/medground/smoke.yaml"), "--set", *over],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "vision: 2 steps" in out.stdout and "sft: 2 steps" in out.stdout and "grpo: 1 steps" in out.stdout
    assert (tmp_path / "runs" / "medground_smoke" / "grpo" / "final" / "model.safetensors").is_file()
