"""Run configs: every YAML in configs/ validates offline, the full configs carry the papers'
hyper-parameters into TRL's arguments, and bad keys or values fail naming the field."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from medlib.paths import REPO
from medlib.train.__main__ import main as cli
from medlib.train.config import ConfigError, check_device, config_from_dict, load_config, parse_overrides
from medlib.train.grpo import grpo_kwargs
from medlib.train.sft import sft_kwargs

CONFIGS = sorted(p for p in (REPO / "configs").glob("med*/*.yaml"))


def test_there_is_a_smoke_and_a_full_config_per_paper():
    names = {(p.parent.name, p.stem) for p in CONFIGS}
    # smoke and full for every paper; other sizes (tiny for CI, study configs) may sit beside them
    assert {(paper, kind) for paper in ("medground", "medreasoner", "medvol") for kind in ("smoke", "full")} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_config_validates_without_downloads(path):
    cfg = load_config(path)
    assert cfg.paper == path.parent.name
    # every GRPO setting the papers rely on is written in the file, not inherited (docs/grpo.md)
    import yaml

    raw = yaml.safe_load(path.read_text())["grpo"]
    for key in ("num_generations", "beta", "learning_rate", "max_completion_length", "loss_type",
                "scale_rewards", "temperature"):
        assert key in raw, f"{path.name}: grpo.{key} must be set explicitly"
    # the released MedReasoner profile aggregates tokens as its veRL script does (token-mean)
    assert cfg.grpo.loss_type == ("dapo" if path.stem == "released" else "grpo") and cfg.grpo.scale_rewards == "group"
    if path.stem == "smoke":
        assert cfg.model.name_or_path == "tiny" and cfg.device == "cpu" and not cfg.bf16
        assert check_device(cfg) == "cpu"


# the papers' numbers (docs/medground_r1.md, medreasoner.md, medvol_r1.md, grpo.md), written once here, read from the files
PAPER = {
    "medground": dict(model="Qwen/Qwen2.5-VL-7B-Instruct", G=4, beta=0.04, lr=1e-6, completion=256, max_steps=5000,
                      batch=1, accum=2, source="mscxr", template="chain_of_box"),
    "medreasoner": dict(model="lingshu-medical-mllm/Lingshu-7B", G=16, beta=0.01, lr=1e-6, source="umrg",
                        template="reasoning"),
    "medvol": dict(model="Qwen/Qwen3-VL-4B-Instruct", G=4, beta=0.01, lr=2e-6, completion=256, epochs=3, batch=1,
                   warmup=0.1, scheduler="cosine", source="m3d_seg", template="slices"),
}


@pytest.mark.parametrize("paper", sorted(PAPER))
def test_full_configs_carry_the_papers_hyperparameters_into_trl(paper):
    cfg = load_config(REPO / "configs" / paper / "full.yaml")
    want = PAPER[paper]
    assert cfg.model.name_or_path == want["model"]
    assert cfg.data.source == want["source"] and cfg.template == want["template"]
    assert cfg.bf16 and cfg.gradient_checkpointing and cfg.model.attn_implementation == "auto"
    kw = grpo_kwargs(cfg, Path("/tmp/x"), "cuda", [1.0])
    assert kw["num_generations"] == want["G"] and kw["beta"] == want["beta"] and kw["learning_rate"] == want["lr"]
    assert kw["loss_type"] == "grpo" and kw["scale_rewards"] == "group" and kw["temperature"] == 1.0
    assert kw["use_bias_correction_kl"] is False  # the papers' k3 KL, not TRL 1.16's ratio-weighted default
    assert kw["bf16"] is True and kw["use_cpu"] is False
    # batch_size counts prompts; TRL's per-device batch counts completions
    assert kw["per_device_train_batch_size"] == cfg.grpo.batch_size * want["G"]
    if "completion" in want:
        assert kw["max_completion_length"] == want["completion"]
    if "max_steps" in want:
        assert kw["max_steps"] == want["max_steps"]
    if "accum" in want:
        assert (cfg.grpo.batch_size, kw["gradient_accumulation_steps"]) == (want["batch"], want["accum"])
    if "epochs" in want:
        assert kw["num_train_epochs"] == want["epochs"] and cfg.grpo.batch_size == want["batch"]
        assert kw["warmup_steps"] == want["warmup"] and kw["lr_scheduler_type"] == want["scheduler"]


def test_medvol_full_sft_is_the_papers_cold_start():
    cfg = load_config(REPO / "configs" / "medvol" / "full.yaml")
    s = cfg.sft
    assert s.enabled and s.lora.enabled and s.lora.r == 128 and s.lora.target_modules == "all-linear"
    kw = sft_kwargs(cfg, Path("/tmp/x"), "cuda")
    assert (kw["learning_rate"], kw["num_train_epochs"], kw["per_device_train_batch_size"]) == (2e-5, 1.0, 2)
    assert (kw["warmup_steps"], kw["lr_scheduler_type"], kw["optim"]) == (0.1, "cosine", "adamw_torch")
    assert cfg.grpo.init_from == "sft"
    assert (cfg.data.n_slices, cfg.data.slice_size) == (64, 256)
    assert cfg.data.subsets == ["0003", "0004", "0012"]  # AbdomenCT-1k, KiTS23, CT-ORG in M3D-Seg
    assert set(cfg.grpo.rewards) == {"format", "axial", "spatial", "cross_slice"} and cfg.grpo.reward_options["delta"] == 5


def test_smoke_config_builds_real_trl_arguments(tmp_path):
    from trl import GRPOConfig, SFTConfig

    cfg = load_config(REPO / "configs" / "medground" / "smoke.yaml")
    g = GRPOConfig(**grpo_kwargs(cfg, tmp_path, "cpu", [1.0, 1.0, 1.0]))
    assert (g.loss_type, g.scale_rewards, g.beta, g.num_generations) == ("grpo", "group", 0.04, 4)
    assert g.per_device_train_batch_size == 32 and g.generation_batch_size == 32
    assert g.use_cpu and not g.bf16 and not g.gradient_checkpointing
    s = SFTConfig(**sft_kwargs(cfg, tmp_path, "cpu"))
    assert s.per_device_train_batch_size == 16 and s.completion_only_loss


def test_medreasoner_released_profile_reaches_grpo_config(tmp_path):
    """The public script: 128 prompts x 16 rollouts per rollout batch, two updates of 64 prompts,
    2,048 response tokens, 5 epochs, token-mean loss, weight decay 0.01."""
    from trl import GRPOConfig

    cfg = load_config(REPO / "configs" / "medreasoner" / "released.yaml")
    kw = grpo_kwargs(cfg, tmp_path, "cpu", [1.0] * 4, world_size=1) | {"bf16": False}
    g = GRPOConfig(**kw)
    assert g.per_device_train_batch_size == 16 and g.gradient_accumulation_steps == 64
    assert g.generation_batch_size == 128 * 16 and g.steps_per_generation == 2 * g.gradient_accumulation_steps
    assert g.num_iterations == 1
    assert (g.max_completion_length, g.num_train_epochs, g.loss_type, g.weight_decay) == (2048, 5.0, "dapo", 0.01)
    assert (g.beta, g.learning_rate, g.num_generations) == (0.01, 1e-6, 16)
    assert g.use_vllm and g.vllm_importance_sampling_correction is False
    # on 8 GPUs the same prompts per update: accumulation 8, still two updates per rollout batch
    kw8 = grpo_kwargs(cfg, tmp_path, "cuda", [1.0] * 4, world_size=8)
    assert kw8["gradient_accumulation_steps"] == 8 and kw8["generation_batch_size"] == 2048
    assert kw8["generation_batch_size"] // (kw8["per_device_train_batch_size"] * 8 * 8) == 2
    # 64 prompts per update cannot be split over 3 GPUs of one prompt each: one clear sentence
    with pytest.raises(ConfigError, match="update_batch_prompts.*batch_size x devices = 1 x 3"):
        grpo_kwargs(cfg, tmp_path, "cuda", [1.0] * 4, world_size=3)
    # the written recipe keeps TRL's one rollout per optimizer step
    full = grpo_kwargs(load_config(REPO / "configs" / "medreasoner" / "full.yaml"), tmp_path, "cuda", [1.0] * 4)
    assert "generation_batch_size" not in full and full["max_completion_length"] == 1024


@pytest.mark.parametrize("flag", [True, False])
def test_vllm_importance_sampling_correction_comes_from_the_config(tmp_path, flag):
    """TRL 1.16 turns the vLLM importance-sampling correction on by default; the config decides."""
    from trl import GRPOConfig

    cfg = load_config(REPO / "configs" / "medground" / "smoke.yaml",
                      ["grpo.use_vllm=true", f"grpo.vllm_importance_sampling_correction={str(flag).lower()}"])
    kw = grpo_kwargs(cfg, tmp_path, "cpu", [1.0, 1.0, 1.0])
    assert kw["use_vllm"] is True and kw["vllm_importance_sampling_correction"] is flag
    assert GRPOConfig(**kw).vllm_importance_sampling_correction is flag
    default = grpo_kwargs(load_config(REPO / "configs" / "medground" / "smoke.yaml", ["grpo.use_vllm=true"]),
                          tmp_path, "cpu", [1.0, 1.0, 1.0])
    assert default["vllm_importance_sampling_correction"] is False  # the papers' objective


BASE = {"paper": "medground", "name": "t"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"grpo": {"lr": 1e-6}}, "grpo.lr"),
        ({"grpo": {"lora": {"rank": 8}}}, "grpo.lora.rank"),
        ({"grpo": {"beta": "a lot"}}, "grpo.beta"),
        ({"grpo": {"beta": -0.1}}, "grpo.beta"),
        ({"grpo": {"num_generations": 1}}, "grpo.num_generations"),
        ({"grpo": {"num_generations": 2.5}}, "grpo.num_generations"),
        ({"grpo": {"loss_type": "ppo"}}, "grpo.loss_type"),
        ({"grpo": {"scale_rewards": True}}, "grpo.scale_rewards"),
        ({"grpo": {"rewards": {"spatail": 1}}}, "grpo.rewards"),
        ({"grpo": {"lora": {"target_modules": 7}}}, "grpo.lora.target_modules"),
        ({"sft": {"warmup_ratio": 1.5}}, "sft.warmup_ratio"),
        ({"data": {"template": "reasoning"}}, "data.template"),
        ({"data": {"source": "imagenet"}}, "data.source"),
        ({"model": {"dtype": "int8"}}, "model.dtype"),
        ({"model": {"tiny": {"hidden": 3}}}, "model.tiny"),
        ({"bf16": "yes"}, "bf16"),
        ({"paper": "medgroundr1"}, "paper"),
    ],
)
def test_bad_keys_and_values_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict({**BASE, **data})


def test_paper_specific_requirements():
    with pytest.raises(ConfigError, match="segmenter"):  # MedVol-R1's R_c needs a segmenter
        config_from_dict({"paper": "medvol", "name": "t", "data": {"source": "toy3d"}})
    with pytest.raises(ConfigError, match="data.subsets"):
        config_from_dict({"paper": "medvol", "name": "t", "data": {"source": "m3d_seg"},
                          "grpo": {"reward_options": {"segmenter": "litemedsam"}}})
    with pytest.raises(ConfigError, match="missing required config key"):
        config_from_dict({"name": "t"})


def test_numbers_in_yaml_strings_and_overrides():
    cfg = config_from_dict({**BASE, "grpo": {"learning_rate": "1e-6"}}, ["grpo.beta=0", "data.sizes={train: 8}"])
    assert cfg.grpo.learning_rate == 1e-6 and cfg.grpo.beta == 0.0 and cfg.data.sizes == {"train": 8}
    assert parse_overrides(["a.b.c=[1, 2]"]) == {"a": {"b": {"c": [1, 2]}}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["grpo.beta"])
    # writing an sft section turns the stage on unless it says otherwise
    assert config_from_dict({**BASE, "sft": {"learning_rate": 1e-3}}).sft.enabled
    assert not config_from_dict({**BASE, "sft": {"enabled": False}}).sft.enabled


def test_gpu_options_on_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="bf16"):
        check_device(config_from_dict({**BASE, "bf16": True}))
    with pytest.raises(ConfigError, match="use_vllm"):
        check_device(config_from_dict({**BASE, "grpo": {"use_vllm": True}}))
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        check_device(config_from_dict({**BASE, "device": "cuda"}))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert check_device(config_from_dict({**BASE, "gradient_checkpointing": True})) == "cpu"
    assert any("gradient_checkpointing" in str(x.message) for x in w)


def _exit_code(argv) -> int:
    try:
        return cli(argv)
    except SystemExit as e:  # argparse and the config check exit with code 2
        return e.code


def test_cli_check_prints_the_plan_and_rejects_bad_overrides(capsys):
    # the full config's plan is printed; its real data is not on this machine, which check reports
    assert _exit_code(["check", "--config", str(REPO / "configs/medground/full.yaml")]) == 2
    out, err = capsys.readouterr()
    assert "G 4, beta 0.04, lr 1e-06, loss grpo, scale_rewards group" in out
    assert "data.root" in err and "does not exist" in err
    assert _exit_code(["check", "--config", str(REPO / "configs/medground/smoke.yaml")]) == 0
    assert _exit_code(["check", "--config", str(REPO / "configs/medground/full.yaml"), "--set", "grpo.betta=0"]) == 2
    assert "grpo.betta" in capsys.readouterr().err
    assert _exit_code(["check", "--config", "no/such.yaml"]) == 2
