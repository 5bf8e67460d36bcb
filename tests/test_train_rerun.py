"""A rerun of ``python -m medlib.train`` never resumes a run folder that another config made: it
refuses with what changed and how to go on (``--fresh`` moves the old folder aside, never deleting
it; ``--resume-anyway`` continues and keeps the old config). Run names cannot leave output_dir."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from medlib.train.__main__ import main
from medlib.train.config import ConfigError, config_from_dict
from medlib.train.run_folder import config_change, stage_key

torch.set_num_threads(1)

TINY = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
        "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500}


def _config(tmp_path, name="rerun"):
    d = {"paper": "medground", "name": name, "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
         "progress": False, "report_to": ["none"],
         "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
         "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 4}, "image_size": 56},
         "sft": {"enabled": True, "learning_rate": 1e-2, "max_steps": 2, "batch_size": 2, "logging_steps": 1,
                 "save_steps": 1, "lr_scheduler": "constant"},
         "grpo": {"enabled": False}}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _fake_run(tmp_path, cfg_path, overrides=()):
    """A run folder as a started SFT run leaves it: its config.yaml and a metrics log."""
    from medlib.train.config import load_config

    cfg = load_config(cfg_path, list(overrides))
    run_dir = cfg.run_dir("sft")
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    (run_dir / "metrics.csv").write_text("step,epoch,loss\n1,0.5,3.0\n")
    return run_dir


@pytest.mark.parametrize("change", ["sft.learning_rate=0.001", "data.template=chain_of_box", "data.seed=3"])
def test_a_changed_config_is_refused_with_what_changed_and_how_to_go_on(tmp_path, capsys, change):
    cfg_path = _config(tmp_path)
    run_dir = _fake_run(tmp_path, cfg_path)
    assert main(["sft", "--config", str(cfg_path), "--set", change]) == 2
    err = capsys.readouterr().err
    key = change.split("=")[0]
    assert f"{run_dir} was made by a different config ({key}:" in err
    assert "--fresh" in err and "--resume-anyway" in err and "Traceback" not in err
    assert (run_dir / "metrics.csv").is_file()  # untouched


def test_cosmetic_and_other_stage_changes_do_not_block(tmp_path):
    cfg_path = _config(tmp_path)
    old = config_from_dict(yaml.safe_load(cfg_path.read_text())).to_dict()
    new = config_from_dict(yaml.safe_load(cfg_path.read_text()), ["progress=true", "grpo.learning_rate=0.5"])
    assert config_change(old, new.to_dict(), "sft") == []
    changed = config_change(old, new.to_dict(), "grpo")
    assert len(changed) == 1 and changed[0].startswith("grpo.learning_rate:") and changed[0].endswith("-> 0.5")


def test_stage_key_is_the_one_the_notebooks_used(tmp_path):
    """Moving stage_key to medlib.train.run_folder kept its value (finished notebook runs are reused)."""
    from medlib.evaluate.provenance import config_hash

    cfg = config_from_dict(yaml.safe_load(_config(tmp_path).read_text()))
    d = cfg.to_dict()
    d.pop("vision")
    d.pop("grpo")
    d.pop("evaluation")  # settings added since, left out of the key at their defaults
    d["data"].pop("allow_outside_root")
    assert stage_key(cfg, "sft") == config_hash(d)


def test_resume_anyway_keeps_the_old_config(tmp_path):
    import medlib.train.__main__ as cli
    from medlib.train.config import load_config

    cfg_path = _config(tmp_path)
    run_dir = _fake_run(tmp_path, cfg_path)

    cfg = load_config(cfg_path, ["sft.learning_rate=0.001"])
    assert cli.prepare_run_folder(cfg, "sft", fresh=False, resume_anyway=True) is None
    kept = yaml.safe_load((run_dir / "config.resumed-over-1.yaml").read_text())
    assert kept["sft"]["learning_rate"] == 0.01


@pytest.mark.slow
def test_fresh_moves_the_old_run_aside_and_the_run_files_describe_the_new_run(tmp_path, capsys):
    cfg_path = _config(tmp_path)
    assert main(["sft", "--config", str(cfg_path)]) == 0
    run_dir = tmp_path / "runs" / "rerun" / "sft"
    assert main(["sft", "--config", str(cfg_path), "--set", "sft.learning_rate=0.001"]) == 2
    assert main(["sft", "--config", str(cfg_path), "--set", "sft.learning_rate=0.001", "--fresh"]) == 0
    old = [p for p in run_dir.parent.iterdir() if p.name.startswith("sft.old-")]
    assert len(old) == 1 and (old[0] / "final" / "model.safetensors").is_file()  # moved, not deleted
    assert yaml.safe_load((old[0] / "config.yaml").read_text())["sft"]["learning_rate"] == 0.01
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["sft"]["learning_rate"] == 0.001
    assert json.loads((run_dir / "provenance.json").read_text())["stage"] == "sft"
    # the same config again: no refusal, the finished run is not retrained
    capsys.readouterr()
    assert main(["sft", "--config", str(cfg_path), "--set", "sft.learning_rate=0.001"]) == 0
    assert "sft: 2 steps" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../../x", "a/../../x", "..", "./x"])
def test_run_names_cannot_leave_output_dir(tmp_path, capsys, name):
    cfg_path = _config(tmp_path)
    with pytest.raises(ConfigError, match="name: must stay inside output_dir"):
        config_from_dict(yaml.safe_load(cfg_path.read_text()), [f"name={name}"])
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--config", str(cfg_path), "--set", f"name={name}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "must stay inside output_dir" in err and "Traceback" not in err
    assert not (tmp_path.parent / "x").exists()
