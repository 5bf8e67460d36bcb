"""Paired effects and verdicts (medlib.study.effects): hand-computed cases."""

import json

import numpy as np
import pytest

from medlib.study import effects


def test_paired_bootstrap_mean_is_the_mean_paired_difference_and_the_interval_brackets_it():
    arm = np.array([1.0, 1.0, 0.0, 1.0])
    ctrl = np.array([0.0, 1.0, 0.0, 0.0])
    d, lo, hi = effects.paired_bootstrap(arm * 100, ctrl * 100, n_boot=4000, seed=1)
    assert d == pytest.approx(50.0)
    assert 0.0 <= lo <= d <= hi <= 100.0


def test_a_constant_paired_difference_has_a_zero_width_interval():
    # pairing matters: the two arms vary a lot over items but differ by exactly 5 on each
    rng = np.random.default_rng(0)
    ctrl = rng.uniform(0, 90, 50)
    d, lo, hi = effects.paired_bootstrap(ctrl + 5, ctrl, n_boot=500)
    assert (d, lo, hi) == pytest.approx((5.0, 5.0, 5.0))


def test_pooled_interval_widens_with_the_spread_between_seeds():
    same = [(np.full(40, 10.0), np.zeros(40))] * 4
    spread = [(np.full(40, v), np.zeros(40)) for v in (0.0, 5.0, 15.0, 20.0)]
    d1, lo1, hi1 = effects.pooled_bootstrap(same, n_boot=500)
    d2, lo2, hi2 = effects.pooled_bootstrap(spread, n_boot=500)
    assert d1 == d2 == pytest.approx(10.0)
    assert hi1 - lo1 == pytest.approx(0.0)
    assert hi2 - lo2 > 5.0  # seeds resampled: an item-only bootstrap would give width 0 here


@pytest.mark.parametrize("lo,hi,direction,expected", [
    (0.5, 3.0, 1, "shown"), (-3.0, -0.5, 1, "reversed"), (-1.0, 2.0, 1, "not shown"),
    (-3.0, -0.5, -1, "shown"), (0.5, 3.0, -1, "reversed"), (0.0, 2.0, 1, "not shown"),
])
def test_verdict_reads_the_interval_in_the_papers_direction(lo, hi, direction, expected):
    assert effects.verdict(lo, hi, direction) == expected


def _write_preds(d, hits):
    d.mkdir(parents=True)
    with (d / "predictions.jsonl").open("w") as fh:
        for i, h in enumerate(hits):
            fh.write(json.dumps({"sample_id": f"s{i}", "hit": bool(h), "iou": 0.6 if h else 0.1}) + "\n")


def test_claim_rows_pair_items_by_id_and_write_a_pooled_and_per_seed_rows(tmp_path):
    dirs = {}
    for seed, (a, c) in enumerate([([1, 1, 0, 1], [0, 1, 0, 0]), ([1, 0, 0, 1], [1, 0, 0, 0])]):
        for arm, hits in (("grpo", a), ("sft_more", c)):
            dirs[(arm, seed)] = tmp_path / f"{arm}_{seed}"
            _write_preds(dirs[(arm, seed)], hits)
    claim = {"paper": "P", "table": 4, "claim": "GRPO > SFT", "arm": "grpo", "control": "sft_more",
             "metrics": ["Acc", "mIoU"], "paper_delta": {"Acc": 2.0}}
    rows = effects.claim_rows(claim, dirs, [0, 1], n_boot=300)
    pooled = [r for r in rows if r["scope"] == "pooled"]
    assert [r["metric"] for r in pooled] == ["Acc", "mIoU"]
    acc = pooled[0]
    assert acc["delta"] == pytest.approx((50.0 + 25.0) / 2)  # seed 0: +2 of 4, seed 1: +1 of 4
    assert acc["paper_delta"] == 2.0 and acc["n_test"] == 4 and acc["selected_on"] == "val"
    per_seed = [r for r in rows if r["scope"] == "seed" and r["metric"] == "mIoU"]
    assert [r["delta"] for r in per_seed] == pytest.approx([25.0, 12.5])
    csv = effects.write_effects(rows, "P", tmp_path)
    effects.write_effects([r | {"paper": "Q"} for r in rows[:1]], "Q", tmp_path)
    import pandas as pd

    df = pd.read_csv(csv)
    assert set(df["paper"]) == {"P", "Q"} and len(df) == len(rows) + 1


def test_arm_and_control_on_different_items_is_an_error(tmp_path):
    _write_preds(tmp_path / "a", [1, 0, 1])
    _write_preds(tmp_path / "c", [1, 0])
    a, c = (effects.item_values(tmp_path / x, "Acc") for x in "ac")
    with pytest.raises(ValueError, match="different items"):
        effects.paired_arrays(a, c)


def test_describe_arms_reads_overlap_from_the_intervals():
    import pandas as pd

    from medlib.study.report import describe_arms

    runs = pd.DataFrame([
        {"variant": "sft_start", "seed": 0, "DSC": 20.0, "DSC_lo": 15.0, "DSC_hi": 25.0},
        {"variant": "full", "seed": 0, "DSC": 30.0, "DSC_lo": 26.0, "DSC_hi": 34.0},
        {"variant": "no_Rc", "seed": 0, "DSC": 22.0, "DSC_lo": 18.0, "DSC_hi": 27.0},
        {"variant": "full", "seed": 1, "DSC": 10.0, "DSC_lo": 5.0, "DSC_hi": 12.0},
    ])
    text = describe_arms(runs, ("DSC",), "sft_start", seed=0).splitlines()
    assert text[0].startswith("full: DSC 30.0 [26.0, 34.0] vs sft_start 20.0") and "above it, intervals apart" in text[0]
    assert "not distinguishable" in text[1] and len(text) == 2
    assert describe_arms(runs, ("DSC",), "sft_only") == "no 'sft_only' row to compare with"
