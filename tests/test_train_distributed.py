"""Real two-process data parallelism: the GRPO runner under ``accelerate launch`` with
configs/accelerate/cpu_2proc.yaml (two gloo CPU ranks). Both ranks train every step on
different prompts and the run ends at the planned global step."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_MODEL

from medlib.paths import REPO

SCRIPT = '''
import json, os, sys
import torch
torch.set_num_threads(1)
from accelerate import PartialState
import medlib.models.tiny as tiny_mod
from medlib.train import run_grpo

out = sys.argv[1]
_build = tiny_mod.build_tiny_qwen25vl

def build_and_record(out_dir, *args, **kwargs):
    """Records, per rank, whether the tiny model already existed when this rank got to it."""
    existed = (out_dir / tiny_mod.TINY_MARKER).exists()
    with open(os.path.join(out, f"built_{PartialState().process_index}.json"), "w") as f:
        json.dump({"existed": existed}, f)
    return _build(out_dir, *args, **kwargs)

tiny_mod.build_tiny_qwen25vl = build_and_record

def seen_prompts(prompts, completions, sample_id, **kwargs):
    """Records which rows this rank scored (rewards run on each rank's own completions)."""
    rank = PartialState().process_index
    with open(os.path.join(out, f"seen_{rank}.jsonl"), "a") as f:
        f.write(json.dumps(sorted(set(sample_id))) + "\\n")
    return [float(sum(ch.isdigit() for ch in str(c))) for c in completions]

tiny = json.loads(sys.argv[2])  # tests/conftest.py TINY_MODEL
cfg = {"paper": "medground", "name": "ddp", "output_dir": out, "device": "cpu", "progress": False,
       "model": {"name_or_path": "tiny", "tiny": tiny, "min_pixels": 3136, "max_pixels": 3136},
       "data": {"source": "toy2d", "root": os.path.join(out, "toy2d"), "sizes": {"train": 16}, "image_size": 56},
       "grpo": {"learning_rate": 1e-4, "max_steps": 3, "batch_size": 1, "num_generations": 4, "beta": 0.04,
                "max_completion_length": 6, "temperature": 1.0, "loss_type": "grpo", "scale_rewards": "group",
                "logging_steps": 1, "save_steps": 2}}
res = run_grpo(cfg, reward_funcs=[seen_prompts])
rank = PartialState().process_index
with open(os.path.join(out, f"finished_{rank}.json"), "w") as f:
    json.dump({"rank": rank, "global_step": res.global_step, "model": str(res.model_dir)}, f)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_grpo_under_accelerate_with_two_cpu_processes(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    launcher = [str(accelerate)] if accelerate.exists() else [shutil.which("accelerate") or "accelerate"]
    script = tmp_path / "ddp_grpo.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [*launcher, "launch", "--config_file", str(REPO / "configs/accelerate/cpu_2proc.yaml"),
           "--num_processes", "2", "--main_process_port", str(_free_port()), str(script), str(out),
           json.dumps(TINY_MODEL)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for r in (0, 1):  # both processes returned from run_grpo at the planned step
        assert json.loads((out / f"finished_{r}.json").read_text())["global_step"] == 3
    # files are built once: rank 0 builds the tiny model, rank 1 waits for it and finds it
    built = [json.loads((out / f"built_{r}.json").read_text())["existed"] for r in (0, 1)]
    assert built == [False, True]

    ranks = [json.loads((out / "ddp" / "grpo" / "ranks" / f"rank_{r}.json").read_text()) for r in (0, 1)]
    for r, info in enumerate(ranks):
        # each rank ran every one of the 3 optimizer steps in a world of 2
        assert (info["rank"], info["world_size"], info["global_step"], info["optimizer_steps_this_run"]) == (r, 2, 3, 3)
    seen = [[json.loads(line) for line in (out / f"seen_{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 3  # one generation batch per step on each rank
    for a, b in zip(*seen):
        # the sampler gives each rank its own prompt (all G completions of a prompt stay on one rank)
        assert len(a) == len(b) == 1 and a != b
    grpo = out / "ddp" / "grpo"
    assert (grpo / "metrics.csv").is_file() and (grpo / "checkpoint-2").is_dir()
    assert (grpo / "final" / "model.safetensors").is_file()
