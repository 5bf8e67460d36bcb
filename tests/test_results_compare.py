"""compare-results: the determinism check of the notebook batch (two runs, same seed)."""

import json
import shutil

import pandas as pd
import pytest

from medlib.__main__ import main
from medlib.report.compare import compare_results


@pytest.fixture()
def two_runs(tmp_path):
    a = tmp_path / "a"
    (a / "eval" / "g").mkdir(parents=True)
    pd.DataFrame({"variant": ["sft", "grpo"], "mIoU": [30.5, 33.25], "train_seconds": [10.0, 12.0]}).to_csv(
        a / "ablation.csv", index=False)
    (a / "eval" / "g" / "summary.json").write_text(json.dumps({
        "n": 100, "metrics": {"mIoU": {"mean": 33.25, "ci_low": 28.0}}, "refused": [False, True],
        "model_path": "runs/x", "wall_seconds": 41.2, "provenance": {"git_commit": "abc", "versions": {"torch": "2"}}}))
    (a / "benchmarks").mkdir()
    (a / "benchmarks" / "speed.json").write_text(json.dumps({"ms": 3.7}))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    return a, b


def test_identical_metrics_pass_and_timings_provenance_and_strings_are_ignored(two_runs):
    a, b = two_runs
    pd.DataFrame({"variant": ["sft", "grpo"], "mIoU": [30.5, 33.25], "train_seconds": [99.0, 1.0]}).to_csv(
        b / "ablation.csv", index=False)
    s = json.loads((b / "eval" / "g" / "summary.json").read_text())
    s |= {"model_path": "/elsewhere/runs/x", "wall_seconds": 7.0, "provenance": {"git_commit": "def", "versions": {}}}
    (b / "eval" / "g" / "summary.json").write_text(json.dumps(s))
    (b / "benchmarks" / "speed.json").write_text(json.dumps({"ms": 9.9}))  # timings folder: not compared
    out = compare_results(a, b)
    assert out["differences"] == []
    assert out["files"] == 2 and out["numbers"] == 2 + 5  # 2 mIoU cells; n, mean, ci_low and the 2 flags


def test_a_changed_metric_a_flipped_flag_and_a_missing_file_are_reported(two_runs, capsys):
    a, b = two_runs
    df = pd.read_csv(b / "ablation.csv")
    df.loc[1, "mIoU"] = 33.2500001
    df.to_csv(b / "ablation.csv", index=False)
    s = json.loads((b / "eval" / "g" / "summary.json").read_text())
    s["refused"] = [False, False]
    (b / "eval" / "g" / "summary.json").write_text(json.dumps(s))
    out = compare_results(a, b)
    where = sorted(f"{d.file} {d.where}" for d in out["differences"])
    assert where == ["ablation.csv row 1 mIoU", "eval/g/summary.json refused[1]"]
    assert compare_results(a, b, abs_tol=1e-3)["differences"][0].where == "refused[1]"  # tolerance: numbers only
    (b / "ablation.csv").unlink()
    assert main(["compare-results", str(a), str(b)]) == 1
    printed = capsys.readouterr().out
    assert "ablation.csv file: 'present' != 'missing'" in printed and "difference(s)" in printed
    assert main(["compare-results", str(a), str(a)]) == 0
    assert "identical" in capsys.readouterr().out
