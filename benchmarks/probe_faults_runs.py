"""Fault probes of runs and data: kills and corrupted checkpoints, changed-config reruns, run names
leaving output_dir, boxes outside their image, NaN voxels, U-MRG mask / key-point errors, paths
leaving the dataset root, interrupted or resized benchmark generation.

Each probe is classified as ``clear_error`` (one sentence naming the file / field, no traceback),
``correct`` (e.g. a resume that ends at the planned step with the metrics log continuous and the
weights of an uninterrupted run), ``traceback``, ``silent_wrong`` or ``data_lost`` (something a
user had on disk is gone). Writes ``results/benchmarks/faults_runs.json``. Tiny configs on CPU,
a few minutes: ``python benchmarks/probe_faults_runs.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medlib.data.io import DatasetError  # noqa: E402
from medlib.train.config import ConfigError  # noqa: E402

FAULTS = REPO / "tests" / "fixtures" / "faults"
OUT = REPO / "results" / "benchmarks" / "faults_runs.json"
COMMAND = "python benchmarks/probe_faults_runs.py"
TINY = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
        "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500}
PROBES: list[dict] = []
HIDE: dict[str, str] = {str(REPO): "<repo>"}  # no paths of this machine in the committed results


def sft_config(tmp: Path, name: str, **sft) -> dict:
    return {"paper": "medground", "name": name, "output_dir": str(tmp / "runs"), "seed": 0, "device": "cpu",
            "progress": False, "report_to": ["none"],
            "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
            "data": {"source": "toy2d", "root": str(tmp / "toy2d"), "sizes": {"train": 8}, "image_size": 56},
            "sft": {"enabled": True, "learning_rate": 1e-2, "max_steps": 4, "batch_size": 2, "logging_steps": 1,
                    "save_steps": 1, "lr_scheduler": "constant", **sft},
            "grpo": {"enabled": False}}


def probe(name: str, kind: str):
    """Run the decorated function as a probe: it returns ``(outcome, detail)``; a medlib error
    raised out of it is a ``clear_error``, anything else a ``traceback``."""

    def wrap(fn):
        t0 = time.perf_counter()
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                outcome, detail = fn()
        except (DatasetError, ConfigError) as e:
            outcome, detail = "clear_error", str(e)
        except Exception:  # noqa: BLE001 - a probe records what escaped
            outcome, detail = "traceback", traceback.format_exc(limit=3)[-600:]
        PROBES.append({"name": name, "kind": kind, "outcome": outcome, "detail": _short(detail),
                       "seconds": round(time.perf_counter() - t0, 1)})
        print(f"{outcome:<12} {name}: {_short(detail)[:150]}", flush=True)
        return fn

    return wrap


def _short(s: str) -> str:
    s = " ".join(str(s).split())
    for path, name in HIDE.items():
        s = s.replace(path, name)
    return s[:400] + ("..." if len(s) > 400 else "")


def cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    out = subprocess.run([sys.executable, "-m", "medlib.train", *args], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env=os.environ | {"PYTHONPATH": str(REPO)})
    return out.returncode, out.stdout, out.stderr


def cli_outcome(rc: int, err: str) -> tuple[str, str]:
    if "Traceback" in err:
        return "traceback", err[-400:]
    lines = [ln for ln in err.strip().splitlines() if ln.startswith(("error", "config error"))]
    if rc == 2 and lines:
        return "clear_error", lines[-1]
    return "silent_wrong", f"exit {rc}: {err[-300:]}"


# ------------------------------------------------------------------ checkpoints
def resumed_ok(res, run_dir: Path, ref_weights: dict) -> tuple[str, str]:
    import torch
    from safetensors.torch import load_file

    from medlib.train.callbacks import read_metrics

    steps = [int(r["step"]) for r in read_metrics(res.metrics_csv) if "loss" in r]
    end = load_file(str(res.model_dir / "model.safetensors"))
    same = all(torch.allclose(end[k], ref_weights[k], atol=1e-6) for k in ref_weights)
    if res.global_step != 4 or steps != [1, 2, 3, 4] or not same:
        return "silent_wrong", f"ended at step {res.global_step}, logged steps {steps}, weights as reference: {same}"
    return "correct", f"ended at step 4, steps logged {steps}, weights equal an uninterrupted run"


def checkpoint_probes(tmp: Path) -> None:
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from medlib.train import run_sft

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise RuntimeError("simulated kill")

    ref = run_sft(sft_config(tmp, "ref"))
    ref_w = load_file(str(ref.model_dir / "model.safetensors"))
    try:
        run_sft(sft_config(tmp, "killed"), callbacks=[Crash()])
    except RuntimeError:
        pass

    def corrupt_and_resume(name: str, corrupt) -> tuple[str, str]:
        shutil.copytree(tmp / "runs" / "killed", tmp / "runs" / name)
        run_dir = tmp / "runs" / name / "sft"
        ck = run_dir / "checkpoint-3"
        corrupt(ck)
        kept = {p.name for p in ck.iterdir()}
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            res = run_sft(sft_config(tmp, name))
        aside = run_dir / "incomplete_checkpoints" / "checkpoint-3"
        if not aside.is_dir() or {p.name for p in aside.iterdir()} != kept:
            return "data_lost", "the broken checkpoint was not kept"
        outcome, detail = resumed_ok(res, run_dir, ref_w)
        said = next((ln for ln in err.getvalue().splitlines() if "resuming from" in ln), "")
        return outcome, f"{detail}; said: {said.split(': ', 1)[-1]}"

    def trunc(p: Path) -> None:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    cases = {
        "weights truncated": lambda c: trunc(c / "model.safetensors"),
        "weights missing": lambda c: (c / "model.safetensors").unlink(),
        "optimizer truncated": lambda c: trunc(c / "optimizer.pt"),
        "optimizer missing": lambda c: (c / "optimizer.pt").unlink(),
        "scheduler missing": lambda c: (c / "scheduler.pt").unlink(),
        "trainer_state missing": lambda c: (c / "trainer_state.json").unlink(),
        "trainer_state truncated": lambda c: trunc(c / "trainer_state.json"),
        "empty checkpoint folder": lambda c: [p.unlink() for p in c.iterdir()],
    }
    for label, fn in cases.items():
        probe(f"newest checkpoint: {label}", "checkpoint")(lambda fn=fn, label=label: corrupt_and_resume(
            label.replace(" ", "_"), fn))

    @probe("process killed (SIGKILL) while writing checkpoint-3", "checkpoint")
    def _():
        cfg = sft_config(tmp, "sigkill")
        script = textwrap.dedent(f"""
            import os, signal, sys
            sys.path.insert(0, {str(REPO)!r})
            from transformers import Trainer
            from medlib.train import run_sft
            orig = Trainer._save_optimizer_and_scheduler
            def die(self, out):
                orig(self, out)
                if self.state.global_step == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            Trainer._save_optimizer_and_scheduler = die
            run_sft({cfg!r})
        """)
        rc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600).returncode
        run_dir = tmp / "runs" / "sigkill" / "sft"
        if rc != -9 or (run_dir / "final").exists():
            return "silent_wrong", f"the child was not killed mid-save (exit {rc})"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            res = run_sft(cfg)
        outcome, detail = resumed_ok(res, run_dir, ref_w)
        said = next((ln for ln in err.getvalue().splitlines() if "resuming from" in ln), "")
        return outcome, f"killed with SIGKILL after the optimizer was written; {detail}; said: {said.split(': ', 1)[-1]}"


# ------------------------------------------------------------------ changed config, run names
def rerun_probes(tmp: Path) -> None:
    base = sft_config(tmp, "rerun", max_steps=2)
    cfg_path = tmp / "rerun.yaml"
    cfg_path.write_text(yaml.safe_dump(base))
    rc, _, err = cli(["sft", "--config", str(cfg_path)], tmp)
    if rc != 0:
        raise RuntimeError(f"the first run failed: {err[-500:]}")
    for label, over in (("learning rate", "sft.learning_rate=0.001"), ("template", "data.template=chain_of_box"),
                        ("data", "data.seed=7")):
        probe(f"rerun into a run folder made with another {label}", "changed_config")(
            lambda over=over: cli_outcome(*cli(["sft", "--config", str(cfg_path), "--set", over], tmp)[::2]))

    @probe("rerun with another learning rate and --fresh", "changed_config")
    def _():
        rc, out, err = cli(["sft", "--config", str(cfg_path), "--set", "sft.learning_rate=0.001", "--fresh"], tmp)
        run_dir = tmp / "runs" / "rerun" / "sft"
        old = [p for p in run_dir.parent.iterdir() if p.name.startswith("sft.old-")]
        if "Traceback" in err:
            return "traceback", err[-300:]
        if len(old) != 1 or not (old[0] / "final" / "model.safetensors").is_file():
            return "data_lost", "the old run folder is gone"
        lr = yaml.safe_load((run_dir / "config.yaml").read_text())["sft"]["learning_rate"]
        prov = json.loads((run_dir / "provenance.json").read_text())
        if rc != 0 or lr != 0.001 or prov.get("stage") != "sft":
            return "silent_wrong", f"exit {rc}, config.yaml lr {lr}"
        return "correct", f"old run moved to {old[0].name}; config.yaml and provenance.json describe the new run (lr {lr})"

    for name in ("../../x", "a/../../x"):
        probe(f"run name {name}", "run_name")(lambda name=name: cli_outcome(
            *cli(["sft", "--config", str(cfg_path), "--set", f"name={name}"], tmp)[::2]))


# ------------------------------------------------------------------ data
def data_probes(tmp: Path) -> None:
    from medlib.data.chestxray8 import load_chestxray8
    from medlib.data.m3d import load_m3d_refseg
    from medlib.data.mscxr import load_mscxr
    from medlib.data.umrg import load_umrg

    for layout in ("ms_cxr_medrpg", "ms_cxr_medground", "ms_cxr_csv"):
        probe(f"box outside the image ({layout})", "data")(lambda layout=layout: (
            "silent_wrong", f"loaded {len(load_mscxr(FAULTS / layout, 'val'))} record(s)"))

        @probe(f"box partly outside the image ({layout})", "data")
        def _(layout=layout):
            recs = [r for r in load_mscxr(FAULTS / layout, "test") if r.meta.get("clipped")]
            if len(recs) != 1:
                return "silent_wrong", "no record says its box was clipped"
            return "correct", f"clipped and noted: {recs[0].meta['notes'][0]}"

    probe("box outside the image (ChestX-ray8)", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_chestxray8(FAULTS / 'chestxray8', 'val'))} record(s)"))
    probe("image path leaving the dataset root (MS-CXR)", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_mscxr(FAULTS / 'ms_cxr_medrpg', 'train'))} record(s)"))
    probe("image path leaving the dataset root (ChestX-ray8)", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_chestxray8(FAULTS / 'chestxray8', 'train'))} record(s)"))
    probe("image path leaving the dataset root (U-MRG)", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_umrg(FAULTS / 'umrg', 'train'))} record(s)"))
    probe("U-MRG mask of another size than its image", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_umrg(FAULTS / 'umrg', 'test'))} record(s)"))
    probe("U-MRG key point outside its box", "data")(lambda: (
        "silent_wrong", f"loaded {len(load_umrg(FAULTS / 'umrg', 'val'))} record(s)"))

    @probe("NaN voxel in an M3D-RefSeg volume", "data")
    def _():
        (rec,) = load_m3d_refseg(FAULTS / "m3d_refseg", "test")
        v = rec.load_volume()
        return "silent_wrong", f"volume read, {int(np.isnan(v).sum())} NaN voxel(s) kept"

    @probe("data check over a folder with bad files", "data")
    def _():
        root = tmp / "DATA_ROOT"
        for src, name in (("ms_cxr_medrpg", "ms_cxr"), ("chestxray8", "chestxray8"), ("umrg", "umrg"),
                          ("m3d_refseg", "m3d_refseg")):
            shutil.copytree(FAULTS / src, root / name)
        (root / "chestxray8" / "images" / "00000001_000.png").write_bytes(b"\x89PNG truncated")
        out = subprocess.run([sys.executable, "-m", "medlib", "data", "check", "--root", str(root)], cwd=REPO,
                             capture_output=True, text=True, timeout=300, env=os.environ | {"PYTHONPATH": str(REPO)})
        if "Traceback" in out.stderr:
            return "traceback", out.stderr[-300:]
        bad = [ln.strip() for ln in out.stdout.splitlines() if ln.strip().startswith("bad:")]
        if out.returncode != 1 or len(bad) < 2 or "clipped" not in out.stdout:
            return "silent_wrong", out.stdout[-300:]
        return "clear_error", f"exit 1, {len(bad)} bad file(s) reported, e.g. {bad[0]}"

    from medlib.train.config import config_from_dict
    from medlib.train.datasets import load_records

    def chest_cfg(sizes):
        return config_from_dict({"paper": "medground", "name": "t", "output_dir": str(tmp / "runs"),
                                 "data": {"source": "chest", "root": str(tmp / "chest"), "image_size": 64,
                                          "sizes": sizes, "seed": 0}, "progress": False})

    @probe("benchmark generation interrupted, then rerun", "benchmark")
    def _():
        import medlib.synthetic.chest as chest

        real = chest._write_chestxray8
        chest._write_chestxray8 = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt("killed"))
        try:
            load_records(chest_cfg({"train": 4, "val": 2, "test": 2}), "train")
        except KeyboardInterrupt:
            pass
        finally:
            chest._write_chestxray8 = real
        if (tmp / "chest" / "chestxray8" / "BBox_List_2017.csv").exists():
            return "silent_wrong", "the interruption did not happen"
        n = len(load_records(chest_cfg({"train": 4, "val": 2, "test": 2}), "train"))
        if not (tmp / "chest" / "chestxray8" / "BBox_List_2017.csv").is_file():
            return "silent_wrong", "the half-written benchmark was used as it was"
        return "correct", f"detected (no completion marker) and generated again: {n} train records"

    @probe("data.sizes changed over an existing benchmark folder", "benchmark")
    def _():
        n1 = len(load_records(chest_cfg({"train": 4, "val": 2, "test": 2}), "test"))
        n2 = len(load_records(chest_cfg({"train": 4, "val": 2, "test": 6}), "test"))
        if n2 <= n1:
            return "silent_wrong", f"test records {n1} -> {n2}: the old folder was reused"
        return "correct", f"generated again: test records {n1} -> {n2}"


def main() -> int:
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medlib_faults_") as d:
        tmp = Path(d)
        HIDE[str(tmp.resolve())] = "<tmp>"
        HIDE[str(tmp)] = "<tmp>"
        data_probes(tmp)
        rerun_probes(tmp)
        checkpoint_probes(tmp)
    kinds = ("clear_error", "correct", "traceback", "silent_wrong", "data_lost")
    counts = {"tried": len(PROBES), **{k: sum(p["outcome"] == k for p in PROBES) for k in kinds}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"probes": PROBES, "counts": counts, "command": COMMAND,
                               "seconds": round(time.perf_counter() - t0, 1)}, indent=1) + "\n")
    print(json.dumps(counts), f"-> {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
