"""Command lines under bad input: every ``--set`` applies, in order; a bad config, override or
argument gives exit code 2 and one sentence naming it (no traceback); one merge everywhere; a
model the rewards cannot load fails when the stage starts."""

from __future__ import annotations

import pytest

from medlib.data.io import DatasetError
from medlib.paths import REPO
from medlib.study.ablation import Variant, variant_config
from medlib.train.config import ConfigError, load_config, merge_config

TINY = REPO / "configs/medground/tiny.yaml"
TINY_VOL = REPO / "configs/medvol/tiny.yaml"


def run_cli(main, argv, capsys) -> tuple[int, str, str]:
    """Exit code, stdout, stderr of ``main(argv)``; argparse exits count as their code."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_sentence(err: str, *needles: str) -> str:
    line = err.strip().splitlines()[-1]
    for n in needles:
        assert n in line, (n, err)
    return line


def _train(argv, capsys):
    from medlib.train.__main__ import main

    return run_cli(main, argv, capsys)


# -------------------------------------------------------------------- one config merge
def test_merge_replaces_a_reward_set_whole_and_merges_other_mappings():
    base = {"grpo": {"rewards": {"format": 1, "spatial": 1, "semantic": 1}, "beta": 0.04},
            "data": {"sizes": {"train": 8, "test": 4}}}
    out = merge_config(base, {"grpo": {"rewards": {"format": 1, "spatial": 1}}, "data": {"sizes": {"train": 2}}})
    assert out["grpo"] == {"rewards": {"format": 1, "spatial": 1}, "beta": 0.04}
    assert out["data"]["sizes"] == {"train": 2, "test": 4}
    assert base["grpo"]["rewards"]["semantic"] == 1  # inputs untouched


def test_cli_override_of_the_reward_set_drops_the_semantic_reward(capsys):
    rc, out, _ = _train(["check", "--config", str(TINY), "--set", "grpo.rewards={format: 1, spatial: 1}"], capsys)
    assert rc == 0 and "rewards {'format': 1.0, 'spatial': 1.0} " in out
    assert load_config(TINY, ["grpo.rewards={format: 1, spatial: 1}"]).grpo.rewards == {"format": 1, "spatial": 1}
    # a dotted override into the set changes one weight and keeps the others
    assert load_config(TINY, ["grpo.rewards.spatial=2"]).grpo.rewards == {"format": 1, "spatial": 2, "semantic": 1}


@pytest.mark.parametrize("overrides", [["grpo.rewards={format: 1, spatial: 1}"],
                                       {"grpo": {"rewards": {"format": 1, "spatial": 1}}}])
def test_variant_config_merges_as_the_cli_does(overrides, tmp_path):
    base = load_config(TINY)
    cfg = variant_config(base, Variant("no_sem", overrides=overrides), tmp_path, "g", 0)
    assert cfg.grpo.rewards == load_config(TINY, ["grpo.rewards={format: 1, spatial: 1}"]).grpo.rewards
    one = variant_config(base, Variant("w", overrides=["grpo.rewards.spatial=2"]), tmp_path, "g", 0)
    assert one.grpo.rewards == load_config(TINY, ["grpo.rewards.spatial=2"]).grpo.rewards


def test_dotted_override_into_the_papers_default_set_asks_for_the_whole_set():
    from medlib.train.config import config_from_dict

    with pytest.raises(ConfigError, match=r"grpo.rewards=\{format: 1"):
        config_from_dict({"paper": "medground", "name": "t"}, ["grpo.rewards.semantic=0"])


# ------------------------------------------------------------------ repeated --set per CLI
@pytest.mark.parametrize("sets", [["--set", "grpo.beta=0", "--set", "seed=1"], ["--set", "grpo.beta=0", "seed=1"]])
def test_train_applies_every_set(sets, capsys):
    rc, out, _ = _train(["check", "--config", str(TINY), *sets], capsys)
    assert rc == 0 and "seed 1" in out and "beta 0," in out


def test_a_later_set_wins():
    assert load_config(TINY, ["grpo.beta=0.5", "grpo.beta=0"]).grpo.beta == 0


@pytest.mark.parametrize("sets", [["--set", "grpo.beta=0", "--set", "seed=1"], ["--set", "grpo.beta=0", "seed=1"]])
def test_evaluate_applies_every_set(sets, capsys, monkeypatch, tmp_path):
    import medlib.train.datasets as datasets
    from medlib.evaluate.__main__ import main

    seen = {}

    def stop(cfg, split):
        seen["cfg"] = cfg
        raise DatasetError("stopped before loading")

    monkeypatch.setattr(datasets, "load_records", stop)
    rc, _, err = run_cli(main, ["--config", str(TINY), "--model", str(tmp_path), "--out", str(tmp_path / "o"),
                                "--segmenter", "none", *sets], capsys)
    assert rc == 2 and "stopped before loading" in err
    assert seen["cfg"].seed == 1 and seen["cfg"].grpo.beta == 0


@pytest.mark.parametrize("sets", [["--set", "grpo.beta=0", "--set", "seed=1"], ["--set", "grpo.beta=0", "seed=1"]])
def test_learning_study_applies_every_set(sets, capsys, monkeypatch):
    import medlib.study.learning as ls

    seen = {}

    def stop(config, seeds, overrides, limit, group=None):
        seen["overrides"] = list(overrides)
        raise SystemExit(0)

    monkeypatch.setattr(ls, "run_study", stop)
    rc, _, _ = run_cli(ls.main, ["--config", str(TINY), "--seeds", "0", *sets], capsys)
    assert rc == 0 and seen["overrides"] == ["grpo.beta=0", "seed=1"]


def test_reproduce_takes_no_set_and_says_so(capsys):
    from medlib.__main__ import main

    rc, _, err = run_cli(main, ["reproduce", "--set", "seed=1"], capsys)
    assert rc == 2 and "unrecognized arguments: --set" in err


# -------------------------------------------------------------- bad config input, per CLI
def _bad_inputs(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(TINY.read_bytes().replace(b"# MedGround-R1", b"# MedGround-R1 r\xe9sum\xe9"))
    return {
        "malformed value": ([str(TINY)], ["grpo.rewards={format: 1"], ("grpo.rewards", "not valid YAML")),
        "non-UTF-8 config": ([str(latin1)], [], ("latin1.yaml", "not UTF-8")),
        "unknown data.source": ([str(TINY)], ["data.source=nope"], ("data.source", "'nope'")),
        "source module missing": ([str(TINY)], ["data.source=no_such_pkg.mod:fn"], ("data.source", "no_such_pkg")),
        "negative model size": ([str(TINY)], ["model.tiny.hidden_size=-4"], ("model.tiny.hidden_size", ">= 1")),
        "unknown key": ([str(TINY)], ["grpo.betta=0"], ("grpo.betta",)),
        "wrong value type": ([str(TINY)], ["grpo.beta=abc"], ("grpo.beta", "number")),
        "no such file": (["no/such.yaml"], [], ("no/such.yaml", "not found")),
    }


CASES = ["malformed value", "non-UTF-8 config", "unknown data.source", "source module missing",
         "negative model size", "unknown key", "wrong value type", "no such file"]


def _cli_argv(cli: str, config: str, sets: list[str], tmp_path) -> tuple:
    set_args = ["--set", *sets] if sets else []
    if cli == "train":
        from medlib.train.__main__ import main

        return main, ["check", "--config", config, *set_args]
    if cli == "evaluate":
        from medlib.evaluate.__main__ import main

        return main, ["--config", config, "--out", str(tmp_path / "o"), *set_args]
    from medlib.study.learning import main

    return main, ["--config", config, "--seeds", "0", *set_args]


@pytest.mark.parametrize("cli", ["train", "evaluate", "learning_study"])
@pytest.mark.parametrize("case", CASES)
def test_bad_config_input_is_one_sentence_and_exit_code_2(cli, case, tmp_path, capsys):
    (config,), sets, needles = _bad_inputs(tmp_path)[case]
    main, argv = _cli_argv(cli, config, sets, tmp_path)
    rc, _, err = run_cli(main, argv, capsys)
    assert rc == 2
    one_sentence(err, *needles)


# -------------------------------------------------------------------------- CLI edges
@pytest.mark.parametrize("flag, value, needle", [
    ("--limit", "0", ">= 1"), ("--batch-size", "0", ">= 1"), ("--bootstrap", "0", ">= 1"),
    ("--limit", "two", "whole number"), ("--profile", "nope", "unknown profile 'nope'"),
])
def test_evaluate_edges(flag, value, needle, tmp_path, capsys):
    from medlib.evaluate.__main__ import main

    rc, _, err = run_cli(main, ["--config", str(TINY), "--out", str(tmp_path / "o"), flag, value], capsys)
    assert rc == 2
    one_sentence(err, flag, needle)


def test_evaluate_out_pointing_at_a_file(tmp_path, capsys):
    from medlib.evaluate.__main__ import main

    f = tmp_path / "summary.json"
    f.write_text("{}")
    rc, _, err = run_cli(main, ["--config", str(TINY), "--out", str(f)], capsys)
    assert rc == 2
    one_sentence(err, "--out", "is an existing file")
    assert f.read_text() == "{}"


def test_learning_study_edges(tmp_path, capsys):
    from medlib.study.learning import main

    rc, _, err = run_cli(main, ["--config", str(TINY), "--limit", "0"], capsys)
    assert rc == 2
    one_sentence(err, "--limit", ">= 1")
    rc, _, err = run_cli(main, ["--config", str(TINY), "--out", str(tmp_path)], capsys)
    assert rc == 2
    one_sentence(err, "--out", "is a folder")


@pytest.mark.parametrize("argv, needle", [
    (["reproduce", "--profile", "nope"], "unknown profile 'nope'"),
    (["reproduce", "--only", "99"], "no notebook matches ['99']"),
    (["check-results", "--profile", "nope"], "unknown profile 'nope'"),
    (["benchmark", "--root", "build/x", "--profile", "nope"], "unknown benchmark profile 'nope'"),
    (["compare-results", "no/such", "no/such2"], "does not exist"),
])
def test_medlib_command_edges(argv, needle, capsys):
    from medlib.__main__ import main

    rc, _, err = run_cli(main, argv, capsys)
    assert rc == 2
    one_sentence(err, needle)


def test_benchmark_root_pointing_at_a_file(tmp_path, capsys):
    from medlib.__main__ import main

    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = run_cli(main, ["benchmark", "--root", str(f)], capsys)
    assert rc == 2
    one_sentence(err, "--root", "is an existing file")


# ------------------------------------------------------------------ check and fail early
def test_check_validates_configured_paths_and_loads_nothing(capsys, monkeypatch):
    import medlib.segment.factory as factory

    monkeypatch.setattr(factory, "build_segmenter", lambda *a, **k: pytest.fail("check built a segmenter"))
    rc, _, err = _train(["check", "--config", str(TINY)], capsys)
    assert rc == 0 and not err
    rc, _, err = _train(["check", "--config", str(TINY), "--set", "grpo.reward_options.semantic_scorer=small:no/clip"],
                        capsys)
    assert rc == 2
    one_sentence(err, "grpo.reward_options.semantic_scorer", "no/clip", "does not exist")
    rc, _, err = _train(["check", "--config", str(TINY_VOL), "--set", "grpo.reward_options.segmenter=medsam2:no/ck.pt"],
                        capsys)
    assert rc == 2
    one_sentence(err, "grpo.reward_options.segmenter", "no/ck.pt")
    rc, _, err = _train(["check", "--config", str(TINY), "--set", "grpo.init_from=no/model"], capsys)
    assert rc == 2
    one_sentence(err, "grpo.init_from", "no config.json")


def _no_data(*a, **k):
    pytest.fail("the stage loaded data before the models its rewards need")


def test_grpo_fails_at_stage_start_when_the_scorer_cannot_load(tmp_path, monkeypatch, capsys):
    import medlib.train.datasets as datasets
    from medlib.models.load import ModelLoadError
    from medlib.train import run_grpo

    monkeypatch.setattr(datasets, "load_records", _no_data)
    empty = tmp_path / "clip"
    empty.mkdir()  # exists, so check passes; holds no model, so loading fails
    cfg = load_config(TINY, [f"grpo.reward_options.semantic_scorer=small:{empty}", "grpo.init_from=base"])
    with pytest.raises(ModelLoadError, match="grpo.reward_options.semantic_scorer: cannot load"):
        run_grpo(cfg)
    rc, _, err = _train(["grpo", "--config", str(TINY), "--set", f"grpo.reward_options.semantic_scorer=small:{empty}",
                         "grpo.init_from=base"], capsys)
    assert rc == 2
    one_sentence(err, "grpo.reward_options.semantic_scorer", "cannot load")


def test_grpo_fails_at_stage_start_when_the_segmenter_cannot_build(monkeypatch):
    import medlib.train.datasets as datasets
    from medlib.models.load import ModelLoadError
    from medlib.train import run_grpo

    monkeypatch.setattr(datasets, "load_records", _no_data)
    cfg = load_config(TINY_VOL, ["grpo.reward_options.segmenter={name: nosuch}", "grpo.init_from=base"])
    with pytest.raises(ModelLoadError, match="grpo.reward_options.segmenter: cannot build"):
        run_grpo(cfg)


def test_evaluate_fails_before_loading_when_the_segmenter_cannot_build(tmp_path, capsys, monkeypatch):
    import medlib.train.datasets as datasets
    from medlib.evaluate.__main__ import main

    monkeypatch.setattr(datasets, "load_records", _no_data)
    rc, _, err = run_cli(main, ["--config", str(TINY_VOL), "--out", str(tmp_path / "o"), "--segmenter",
                                "medsam2:no/such.pt"], capsys)
    assert rc == 2
    one_sentence(err, "--segmenter", "cannot build")
