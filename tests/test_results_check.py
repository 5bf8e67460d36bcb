"""The results check: missing files and out-of-range values are reported, good files pass, and
the committed ``results/`` passes it."""

import json
from pathlib import Path

import pandas as pd

from medlib.report.check import check_results, expected_files

ROOT = Path(__file__).resolve().parents[1]


def test_committed_results_are_in_range():
    assert check_results(ROOT / "results") == []


def _summary(mean, lo, hi, n=10, refusals=0):
    return {"n": n, "refusals": refusals, "metrics": {"mIoU": {"mean": mean, "ci_low": lo, "ci_high": hi}}}


def test_bad_values_are_named(tmp_path):
    (tmp_path / "eval" / "a").mkdir(parents=True)
    (tmp_path / "eval" / "a" / "summary.json").write_text(json.dumps(_summary(140.0, 10.0, 150.0)))
    (tmp_path / "eval" / "b").mkdir()
    (tmp_path / "eval" / "b" / "summary.json").write_text(json.dumps(_summary(50.0, 60.0, 70.0)))
    (tmp_path / "eval" / "c").mkdir()
    (tmp_path / "eval" / "c" / "summary.json").write_text(json.dumps(_summary(50.0, 40.0, 60.0, n=0)))
    pd.DataFrame({"abs_diff": [1e-8, 3e-3]}).to_csv(tmp_path / "grpo_objective_check.csv", index=False)
    pd.DataFrame({"variant": ["x"], "Acc": [-1.0]}).to_csv(tmp_path / "abl.csv", index=False)
    (tmp_path / "broken.json").write_text("{not json")
    problems = check_results(tmp_path)
    text = "\n".join(problems)
    assert "eval/a/summary.json: mIoU.mean = 140.0 is outside 0-100" in text
    assert "eval/b/summary.json: mIoU interval [60.0, 70.0] does not hold its mean 50.0" in text
    assert "eval/c/summary.json: n = 0" in text
    assert "grpo_objective_check.csv: hand-computed GRPO loss differs from TRL's by 0.003" in text
    assert "abl.csv: row 2 Acc = -1.0 is outside 0-100" in text
    assert "broken.json: unreadable" in text
    assert len(problems) == 6


def test_good_values_pass_and_missing_files_are_listed(tmp_path):
    (tmp_path / "eval" / "a").mkdir(parents=True)
    (tmp_path / "eval" / "a" / "summary.json").write_text(json.dumps(_summary(50.0, 40.0, 60.0)))
    pd.DataFrame({"abs_diff": [1e-8]}).to_csv(tmp_path / "grpo_objective_check.csv", index=False)
    assert check_results(tmp_path) == []
    missing = check_results(tmp_path, profile="smoke", notebooks=["03_grpo_objective", "10_medground_train"])
    assert missing == [f"{f}: missing" for f in expected_files("smoke", ["10_medground_train"])]
