"""Checkpoints that always resume: every way a newest checkpoint can be broken (a kill mid-save,
truncated weights, truncated or missing optimizer, missing trainer state, an empty folder) makes
the run fall back to the newest complete one, move the broken one aside, say so, and end at the
planned step with each step logged once and the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback

from medlib.train import run_sft
from medlib.train.callbacks import read_metrics
from medlib.train.checkpoints import MARKER, checkpoint_problem, newest_complete_checkpoint, write_marker

torch.set_num_threads(1)

TINY = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
        "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500}


def config(tmp_path, name, **sft):
    return {
        "paper": "medground", "name": name, "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
        "progress": False, "report_to": ["none"],
        "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
        "sft": {"learning_rate": 1e-2, "max_steps": 3, "batch_size": 2, "logging_steps": 1, "save_steps": 100,
                "lr_scheduler": "constant", **sft},
        "grpo": {"enabled": False},
    }


class Crash(TrainerCallback):
    """Simulates a killed job: raises once the given optimizer step has finished."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("simulated kill")


# ------------------------------------------------------------------ the checker alone (fast)
def _fake_checkpoint(folder, step, marker=True):
    folder.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(folder / "model.safetensors"))
    torch.save({"state": {0: torch.ones(16)}}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    torch.save({"python": 1}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if marker:
        write_marker(folder)
    return folder


def _truncate(p, keep=0.5):
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])


CORRUPTIONS = {
    "weights truncated": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors truncated"),
    "optimizer truncated": (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt truncated"),
    "optimizer missing": (lambda c: (c / "optimizer.pt").unlink(), "optimizer.pt missing"),
    "trainer_state missing": (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json missing"),
    "empty folder": (lambda c: [p.unlink() for p in c.iterdir()], "empty folder"),
}


@pytest.mark.parametrize("marker", [True, False], ids=["marker", "no-marker"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_checker_names_each_corruption(tmp_path, name, marker):
    ck = _fake_checkpoint(tmp_path / "checkpoint-3", 3, marker=marker)
    assert checkpoint_problem(ck) is None
    corrupt, reason = CORRUPTIONS[name]
    corrupt(ck)
    assert reason in checkpoint_problem(ck)


def test_weights_truncated_by_one_byte_are_caught_even_without_marker(tmp_path):
    ck = _fake_checkpoint(tmp_path / "checkpoint-1", 1, marker=False)
    p = ck / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-1])
    assert "model.safetensors truncated" in checkpoint_problem(ck)


def test_fallback_moves_newer_broken_checkpoints_aside_and_says_why(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2, 3):
        _fake_checkpoint(run / f"checkpoint-{step}", step)
    (run / "checkpoint-3" / "optimizer.pt").unlink()
    (run / "checkpoint-2" / MARKER).unlink()  # no marker but every file verifies: still usable
    ck, line = newest_complete_checkpoint(run)
    assert ck == run / "checkpoint-2"
    assert "resuming from checkpoint-2" in line and "checkpoint-3 (optimizer.pt missing" in line
    assert not (run / "checkpoint-3").exists()
    assert (run / "incomplete_checkpoints" / "checkpoint-3" / "model.safetensors").is_file()  # kept, not deleted
    # a second broken checkpoint-3 goes beside the first
    _fake_checkpoint(run / "checkpoint-3", 3)
    (run / "checkpoint-3" / "trainer_state.json").unlink()
    newest_complete_checkpoint(run)
    assert (run / "incomplete_checkpoints" / "checkpoint-3-2").is_dir()


def test_no_complete_checkpoint_starts_fresh(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-1").mkdir(parents=True)
    ck, line = newest_complete_checkpoint(run)
    assert ck is None and "starting from step 0" in line and "empty folder" in line
    assert newest_complete_checkpoint(tmp_path / "none") == (None, "")


# ------------------------------------------------------------------ real SFT runs (tiny model)
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 4-step run, and a run killed during step 4, after checkpoint-3 was saved."""
    tmp = tmp_path_factory.mktemp("ckpt")
    ref = run_sft(config(tmp, "ref", max_steps=4, save_steps=1))
    killed = config(tmp, "killed", max_steps=4, save_steps=1)
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_sft(killed, callbacks=[Crash(4)])
    return tmp, load_file(str(ref.model_dir / "model.safetensors"))


def _copy_run(tmp, name):
    shutil.copytree(tmp / "runs" / "killed", tmp / "runs" / name)
    cfg = config(tmp, name, max_steps=4, save_steps=1)
    return cfg, tmp / "runs" / name / "sft"


def _assert_resumed_like_reference(res, ref_weights, run_dir):
    assert res.global_step == 4
    steps = [r["step"] for r in read_metrics(res.metrics_csv) if "loss" in r]
    assert steps == [1, 2, 3, 4]  # continuous: no step missing, none twice
    end = load_file(str(res.model_dir / "model.safetensors"))
    assert all(torch.allclose(end[k], ref_weights[k], atol=1e-6) for k in ref_weights)
    assert (run_dir / "checkpoint-4" / MARKER).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupted_newest_checkpoint_falls_back_and_ends_at_the_planned_step(runs, name, capsys):
    tmp, ref_weights = runs
    cfg, run_dir = _copy_run(tmp, name.replace(" ", "_"))
    corrupt, reason = CORRUPTIONS[name]
    corrupt(run_dir / "checkpoint-3")
    res = run_sft(cfg)
    err = capsys.readouterr().err
    assert "resuming from checkpoint-2" in err and reason in err
    assert (run_dir / "incomplete_checkpoints" / "checkpoint-3").is_dir()
    assert json.loads((run_dir / "provenance.json").read_text())["resumed_from"] == "checkpoint-2"
    _assert_resumed_like_reference(res, ref_weights, run_dir)


@pytest.mark.slow
def test_kill_mid_save_falls_back_to_the_previous_checkpoint(runs, monkeypatch, capsys):
    tmp, ref_weights = runs
    cfg = config(tmp, "midsave", max_steps=4, save_steps=1)
    original = Trainer._save_optimizer_and_scheduler

    def save_then_die(self, output_dir):
        original(self, output_dir)  # weights and optimizer are on disk, trainer state not yet
        if self.state.global_step == 3:
            raise RuntimeError("simulated kill mid-save")

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", save_then_die)
    with pytest.raises(RuntimeError, match="mid-save"):
        run_sft(cfg)
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", original)
    run_dir = tmp / "runs" / "midsave" / "sft"
    assert (run_dir / "checkpoint-3" / "optimizer.pt").is_file() and not (run_dir / "checkpoint-3" / MARKER).exists()
    res = run_sft(cfg)
    assert "checkpoint-3 (trainer_state.json missing" in capsys.readouterr().err
    _assert_resumed_like_reference(res, ref_weights, run_dir)
