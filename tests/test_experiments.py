"""Ablation runner of the training notebooks: variants from one start model, trained, evaluated,
reused when unchanged, logs copied to results/training."""

import pytest
import torch
from conftest import TINY_MODEL

from medlib.study.ablation import Variant, mean_over_seeds, run_ablation, variant_config
from medlib.train import config_from_dict, run_sft

torch.set_num_threads(1)

TINY = TINY_MODEL


def base(tmp_path):
    return config_from_dict({
        "paper": "medground", "name": "base", "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
        "progress": False, "report_to": [],
        "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 3136, "max_pixels": 3136},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 8, "test": 4},
                 "image_size": 56},
        "sft": {"enabled": True, "learning_rate": 1e-3, "max_steps": 2, "batch_size": 4, "logging_steps": 1,
                "save_steps": 100},
        "grpo": {"learning_rate": 1e-3, "max_steps": 1, "batch_size": 2, "num_generations": 2, "beta": 0.04,
                 "max_completion_length": 8, "temperature": 1.0, "loss_type": "grpo", "scale_rewards": "group",
                 "logging_steps": 1, "save_steps": 100, "lr_scheduler": "constant",
                 "reward_options": {"semantic_scorer": "mean-intensity"}},
    })


def test_variant_config_enables_one_stage_from_the_start_model(tmp_path):
    cfg = variant_config(base(tmp_path), Variant("G4", overrides=["grpo.num_generations=4"]), tmp_path / "m",
                         "abl", seed=3)
    assert cfg.name == "G4_seed3" and cfg.output_dir.endswith("abl") and cfg.seed == 3
    assert cfg.grpo.enabled and not cfg.sft.enabled and cfg.grpo.num_generations == 4
    assert cfg.grpo.init_from == str(tmp_path / "m")
    cont = variant_config(base(tmp_path), Variant("sft_more", stage="sft", overrides={"sft": {"max_steps": 9}}),
                          tmp_path / "m", "abl", seed=0)
    assert cont.sft.enabled and not cont.grpo.enabled and cont.sft.max_steps == 9
    with pytest.raises(ValueError, match="stage"):
        Variant("x", stage="ppo")
    with pytest.raises(ValueError, match="variant name"):
        Variant("G=4")


def test_a_reward_ablation_removes_the_reward(tmp_path):
    """A reward-set override replaces the set (a merge would keep the removed reward: the bug
    that made every "w/o" arm train with all three rewards)."""
    d = base(tmp_path).to_dict()
    d["grpo"]["rewards"] = {"format": 1.0, "spatial": 1.0, "semantic": 1.0}
    full = config_from_dict(d)
    cfg = variant_config(full, Variant("no_format", overrides={"grpo": {"rewards": {"spatial": 1.0, "semantic": 1.0}}}),
                         tmp_path / "m", "abl", seed=0)
    assert cfg.grpo.rewards == {"spatial": 1.0, "semantic": 1.0}
    assert cfg.grpo.reward_options == {"semantic_scorer": "mean-intensity"}  # other mappings still merge
    opts = variant_config(full, Variant("o", overrides={"grpo": {"reward_options": {"spatial_threshold": 0.5}}}),
                          tmp_path / "m", "abl", seed=0)
    assert opts.grpo.reward_options == {"semantic_scorer": "mean-intensity", "spatial_threshold": 0.5}


@pytest.mark.slow  # trains a model
def test_ablation_trains_evaluates_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path / "results"))
    cfg = base(tmp_path)
    start = run_sft(cfg).model_dir
    variants = [Variant("G2"), Variant("no_format", overrides={"grpo": {"rewards": {"spatial": 1.0}}}),
                Variant("sft_more", stage="sft", overrides=["sft.max_steps=1"])]
    df = run_ablation(cfg, start, variants, group="abl", seeds=(0,), limit=2)
    assert list(df["variant"]) == ["start", "G2", "no_format", "sft_more"]
    assert list(df["steps"]) == [0, 1, 1, 1]
    assert df["n"].tolist() == [2, 2, 2, 2] and df["mIoU"].between(0, 100).all()
    assert (tmp_path / "results" / "training" / "abl" / "G2_seed0.csv").is_file()
    # the reward ablation really trained on one reward only
    prov = (tmp_path / "runs" / "abl" / "no_format_seed0" / "grpo" / "provenance.json").read_text()
    assert "medground_spatial" in prov and "medground_format" not in prov
    again = run_ablation(cfg, start, variants[:1], group="abl", seeds=(0,), limit=2)
    assert again["train_seconds"].iloc[1] == df["train_seconds"].iloc[1]  # reused, not retrained
    summary = mean_over_seeds(df)
    assert list(summary["variant"]) == ["start", "G2", "no_format", "sft_more"] and (summary["seeds"] == 1).all()


@pytest.mark.slow  # trains a model
def test_a_changed_config_never_resumes_another_runs_checkpoints(tmp_path):
    from medlib.study.ablation import start_run, train_variant

    cfg = base(tmp_path)
    first = start_run(cfg)
    run_dir = tmp_path / "runs" / "base_seed0" / "sft"
    assert first["model_dir"] == str(run_dir / "final") and not first["reused"]
    assert start_run(cfg)["reused"]
    other_seed = start_run(config_from_dict({**cfg.to_dict(), "seed": 1}))
    assert "base_seed1" in other_seed["model_dir"]  # its own folder per seed
    changed = config_from_dict({**cfg.to_dict(), "name": "base_seed0", "sft": {**cfg.to_dict()["sft"], "max_steps": 1}})
    res = train_variant(changed, "sft")
    assert res["steps"] == 1 and not res["reused"]
    assert any(p.name.startswith("sft.old-") for p in run_dir.parent.iterdir())  # moved aside, not lost
    # back and forth: the first config's run is moved aside a second time beside its first copy
    assert not start_run(cfg)["reused"] and not train_variant(changed, "sft")["reused"]
    old = sorted(p.name for p in run_dir.parent.iterdir() if p.name.startswith("sft.old-"))
    assert len(old) == 3 and sum(name.endswith("-2") for name in old) == 1


@pytest.mark.slow  # trains a model
def test_a_grpo_setting_does_not_retrain_the_sft_start_but_an_sft_setting_retrains_what_follows(tmp_path):
    """A GRPO sweep (``--set grpo.learning_rate=...``) reuses the SFT start it begins from; a change
    to the SFT recipe, or to the warm-up it starts from, gives the start and every arm from it a
    new key (the stale-cache bug a key over too little would make)."""
    import json

    from medlib.study.ablation import stage_key, start_run

    cfg = base(tmp_path)
    first = start_run(cfg)
    swept = config_from_dict({**cfg.to_dict(), "grpo": {**cfg.to_dict()["grpo"], "learning_rate": 3e-4}})
    assert start_run(swept)["reused"]  # the old key covered the GRPO section: this retrained

    def with_(c, **sections):
        d = c.to_dict()
        for section, kv in sections.items():
            d[section] = {**d[section], **kv}
        return config_from_dict(d)

    warm = with_(cfg, vision={"enabled": True, "steps": 3}, sft={"init_from": "vision"})
    assert stage_key(warm, "vision") == stage_key(with_(warm, sft={"learning_rate": 5e-4}), "vision")
    assert stage_key(warm, "sft") != stage_key(with_(warm, vision={"steps": 4}), "sft")
    assert stage_key(warm, "sft") != stage_key(with_(warm, sft={"learning_rate": 5e-4}), "sft")
    # an arm starting from the SFT folder carries that run's key: retrained when the start was
    arm = variant_config(cfg, Variant("G2"), first["model_dir"], "abl", seed=0)
    before = stage_key(arm, "grpo")
    done = tmp_path / "runs" / "base_seed0" / "sft" / "done.json"
    info = json.loads(done.read_text())
    done.write_text(json.dumps({**info, "config_hash": "another start"}))
    assert stage_key(arm, "grpo") != before
    assert stage_key(arm, "grpo") != stage_key(with_(arm, grpo={"learning_rate": 3e-4}), "grpo")


def test_stage_key_ignores_evaluation_and_new_grpo_settings_at_their_defaults():
    """Runs cached before the evaluation section and the rollout / update batch settings existed
    keep their key (no retraining); a setting that changes training changes it."""
    import dataclasses

    from medlib.evaluate.provenance import config_hash
    from medlib.paths import REPO
    from medlib.study.ablation import GRPO_KEY_EXEMPT_AT_DEFAULT, stage_key
    from medlib.train.config import load_config
    from medlib.train.run_folder import DATA_KEY_EXEMPT_AT_DEFAULT

    cfg = load_config(REPO / "configs" / "medground" / "smoke.yaml", ["sft.init_from=base", "vision.enabled=false"])
    assert cfg.grpo.init_from == "sft"
    old = cfg.to_dict()  # the config as it was before these settings existed: what the cached runs hashed
    old.pop("evaluation")
    old.pop("vision")
    for k in GRPO_KEY_EXEMPT_AT_DEFAULT:
        old["grpo"].pop(k)
    for k in DATA_KEY_EXEMPT_AT_DEFAULT:
        old["data"].pop(k)
    key = stage_key(cfg, "grpo")
    assert key == config_hash(old)
    assert key == stage_key(dataclasses.replace(cfg, evaluation=dataclasses.replace(
        cfg.evaluation, repetition_penalty=1.05, metric_variant="paper")), "grpo")
    changed = dataclasses.replace(cfg, grpo=dataclasses.replace(cfg.grpo, update_batch_prompts=4))
    assert stage_key(changed, "grpo") != key
    outside = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, allow_outside_root=True))
    assert stage_key(outside, "grpo") != key
