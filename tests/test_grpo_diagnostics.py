"""GRPO group diagnostics (medlib.train.diagnostics) and pass@k (medlib.evaluate.passk)."""

import numpy as np
import pytest

from medlib.evaluate.passk import pass_at_k, passk_table
from medlib.train.diagnostics import group_diagnostics, with_group_diagnostics


def test_zero_spread_and_advantage_shares_by_hand():
    # two groups of G = 2; rewards (format, spatial); weights 1, 2
    r = np.array([[1, 0], [1, 1],    # group 1: format flat, spatial 0 -> 1
                  [0, 0], [1, 0]])   # group 2: format 0 -> 1, spatial flat
    d = group_diagnostics(r, [1.0, 2.0], ["format", "spatial"], 2)
    assert d["diag/zero_spread/format"] == 0.5 and d["diag/zero_spread/spatial"] == 0.5
    assert d["diag/zero_spread/total"] == 0.0
    # centred weighted rewards: g1 spatial +-1 (total +-1), g2 format +-0.5 (total +-0.5)
    # var = 2*1 + 2*0.25 = 2.5; cov spatial = 2, cov format = 0.5
    assert d["diag/adv_share/spatial"] == pytest.approx(0.8)
    assert d["diag/adv_share/format"] == pytest.approx(0.2)


def test_shares_sum_to_one_and_are_nan_when_no_group_has_spread():
    rng = np.random.default_rng(0)
    r = rng.integers(0, 2, size=(32, 3)).astype(float)
    d = group_diagnostics(r, [1, 1, 0.5], ["a", "b", "c"], 4)
    assert sum(d[f"diag/adv_share/{k}"] for k in "abc") == pytest.approx(1.0)
    flat = group_diagnostics(np.ones((8, 2)), [1, 1], ["a", "b"], 4)
    assert flat["diag/zero_spread/total"] == 1.0 and np.isnan(flat["diag/adv_share/a"])


def test_groups_that_do_not_divide_the_batch_are_an_error():
    with pytest.raises(ValueError, match="groups of 4"):
        group_diagnostics(np.zeros((6, 1)), [1], ["a"], 4)


def test_wrapped_rewards_return_the_same_values_and_log_after_the_last():
    logged = {}

    def fmt(completions, **kw):
        return [1.0, 0.0, 1.0, 1.0]

    def spatial(completions, **kw):
        return [0.0, 0.0, None, 1.0]

    wrapped = with_group_diagnostics([fmt, spatial], [1.0, 1.0], 2)
    assert [w.__name__ for w in wrapped] == ["fmt", "spatial"]
    log = logged.__setitem__
    assert wrapped[0](completions=[""] * 4, log_metric=log) == [1.0, 0.0, 1.0, 1.0]
    assert logged == {}
    assert wrapped[1](completions=[""] * 4, log_metric=log) == [0.0, 0.0, None, 1.0]
    assert logged["diag/zero_spread/fmt"] == 0.5 and logged["diag/zero_spread/spatial"] == 0.5


def test_pass_at_k_unbiased_estimator_by_hand():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)   # 1 - C(3,2)/C(4,2)
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 3, 2) == 1.0
    hits = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], bool)
    assert passk_table(hits, (1, 2, 4)) == {"pass@1": 12.5, "pass@2": 25.0, "pass@4": 50.0}
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
