"""The study runner end to end on the tiny config: selection on val only, arms on test, effects."""

import pandas as pd
import pytest
import yaml

from medlib import study


def _spec(tmp_path):
    spec = {
        "paper": "medground", "paper_name": "MedGround-R1", "config": "configs/medground/tiny.yaml",
        "set": [f"output_dir={tmp_path / 'runs'}"], "seeds": [0, 1], "jobs": 1, "threads": 1,
        "passk": {"seeds": [0], "n": 2, "arms": ["grpo"]},
        "arms": {"sft_more": {"stage": "sft", "set": ["sft.max_steps=1"]},
                 "grpo": {"stage": "grpo", "set": ["grpo.max_steps=1"]}},
        "claims": [{"table": "4", "claim": "GRPO > SFT continued", "arm": "grpo", "control": "sft_more",
                    "metrics": ["Acc", "mIoU"], "paper_delta": {"Acc": 1.0}}],
        "selection": {"split": "val", "seeds": [0], "grpo": {"t07": ["grpo.temperature=0.7"]}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_spec_errors_name_the_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"paper": "medground", "config": "x", "seeds": [0],
                                 "arms": {"a": {"stage": "dpo"}}}))
    with pytest.raises(SystemExit, match="arm 'a': stage must be sft or grpo"):
        study.load_spec(p)
    p.write_text(yaml.safe_dump({"paper": "medground", "config": "x", "seeds": [0], "arms": {},
                                 "claims": [{"claim": "c", "arm": "grpo", "control": "sft_start"}]}))
    with pytest.raises(SystemExit, match="arm 'grpo' is not an arm"):
        study.load_spec(p)


def test_selection_must_not_use_the_test_split(tmp_path):
    path = tmp_path / "s.yaml"
    spec = yaml.safe_load(open(_spec(tmp_path)))
    spec["selection"]["split"] = "test"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SystemExit, match="must differ from the test split"):
        study.select(str(path), "grpo")


@pytest.mark.slow
def test_select_then_run_writes_arms_passk_diagnostics_and_effects(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MEDLIB_FIGURES_DIR", str(tmp_path / "figures"))  # the study redraws its figures
    spec = _spec(tmp_path)
    sel = study.select(spec, "grpo")
    assert set(sel["split"]) == {"val"} and set(sel["variant"]) == {"sft_start", "sel-grpo-t07"}
    assert (tmp_path / "results/study/medground/selection_grpo.csv").is_file()
    summary = study.run(spec, n_boot=50)
    out = tmp_path / "results/study/medground"
    arms = pd.read_csv(out / "arms.csv")
    assert {(v, s) for v, s in zip(arms["variant"], arms["seed"])} == {
        (a, s) for a in ("sft_start", "sft_more", "grpo") for s in (0, 1)}
    passk = pd.read_csv(out / "passk.csv")
    assert set(passk["arm"]) == {"sft_start", "grpo"} and {"pass@1", "pass@2"} <= set(passk.columns)
    diag = pd.read_csv(out / "diagnostics.csv")
    assert any(c.startswith("diag/zero_spread/") for c in diag.columns)
    eff = pd.read_csv(tmp_path / "results/effects.csv")
    pooled = eff[eff["scope"] == "pooled"]
    assert list(pooled["metric"]) == ["Acc", "mIoU"] and set(pooled["selected_on"]) == {"val"}
    assert set(eff["verdict"]) <= {"shown", "not shown", "reversed"}
    assert len(eff[eff["scope"] == "seed"]) == 4 and summary["effects"]
    assert {"91_effects.png", "91_study_medground_passk.png", "91_study_medground_grpo_signal.png"} <= {
        p.name for p in (tmp_path / "figures").iterdir()}
    # rerun: every stage and evaluation is reused, the numbers are the same
    again = study.run(spec, n_boot=50)
    assert [e["delta"] for e in again["effects"]] == [e["delta"] for e in summary["effects"]]
