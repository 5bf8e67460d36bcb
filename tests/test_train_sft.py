"""SFT runner (trl.SFTTrainer) in the TRL test style: a tiny model, a few steps, the loss logged,
every trainable parameter changed; LoRA touches only its target modules; a killed run resumes
from its last checkpoint and ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_MODEL
from safetensors.torch import load_file
from transformers import TrainerCallback

from medlib.train import load_config, run_sft
from medlib.train.callbacks import read_metrics

torch.set_num_threads(1)

TINY = TINY_MODEL


def config(tmp_path, name, **sft):
    return {
        "paper": "medground", "name": name, "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
        "progress": False,
        "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
        "sft": {"learning_rate": 1e-2, "max_steps": 3, "batch_size": 2, "logging_steps": 1, "save_steps": 100,
                "lr_scheduler": "constant", **sft},
        "grpo": {"enabled": False},
    }


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow  # trains a model
def test_sft_logs_loss_and_changes_every_parameter(tmp_path):
    res = run_sft(config(tmp_path, "sft"))
    assert res.global_step == 3 and res.train_samples == 8
    rows = [r for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["loss"] > 0 for r in rows)
    before = _weights(tmp_path / "runs" / "sft" / "tiny_model")
    after = _weights(res.model_dir)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not trained: {unchanged}"
    # run folder: TensorBoard events, the resolved config, provenance
    assert list((res.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(res.run_dir / "config.yaml").sft.max_steps == 3
    prov = json.loads((res.run_dir / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["stage"] == "sft" and prov["versions"]["trl"]
    # the trained folder is a complete model + processor for the next stage
    from medlib.models import load_vlm

    model, proc = load_vlm(res.model_dir)
    assert proc.image_processor.size["longest_edge"] == 3136


@pytest.mark.slow  # trains a model
def test_lora_sft_trains_only_its_targets_and_merges(tmp_path):
    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    res = run_sft(config(tmp_path, "lora", max_steps=2, lora=lora))
    before = _weights(tmp_path / "runs" / "lora" / "tiny_model")
    after = _weights(res.model_dir)
    assert before.keys() == after.keys()  # merged: no adapter tensors left in the model
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    targets = {k for k in before if k.endswith(("q_proj.weight", "v_proj.weight"))}
    assert changed == targets and len(targets) == 3 * 2  # 3 language layers x (q, v)
    assert (res.run_dir / "adapter" / "adapter_config.json").is_file()


class Crash(TrainerCallback):
    """Simulates a killed job: raises once the given optimizer step has finished."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("simulated kill")


@pytest.mark.slow  # trains a model
def test_killed_run_resumes_to_the_same_end(tmp_path):
    # uninterrupted reference: 4 steps, checkpoints every 2
    ref = run_sft(config(tmp_path, "ref", max_steps=4, save_steps=2))
    cfg = config(tmp_path, "killed", max_steps=4, save_steps=2)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_sft(cfg, callbacks=[Crash(3)])
    run_dir = tmp_path / "runs" / "killed" / "sft"
    assert (run_dir / "checkpoint-2").is_dir() and not (run_dir / "final").exists()
    res = run_sft(cfg)  # resumes from checkpoint-2
    assert res.global_step == 4 and (run_dir / "checkpoint-4").is_dir()
    steps = [r["step"] for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert steps == [1, 2, 3, 4]  # step 3, logged before the kill, is not counted twice
    # nothing lost: optimizer, scheduler, RNG and data order restored -> same weights as the reference
    a, b = _weights(ref.model_dir), _weights(res.model_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # running a finished stage again trains no further step
    again = run_sft(cfg)
    c = _weights(again.model_dir)
    assert again.global_step == 4 and all(torch.equal(b[k], c[k]) for k in b)
