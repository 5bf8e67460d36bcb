"""The GRPO step timers: exclusive times (a nested timer is subtracted from the outer one)."""

from __future__ import annotations

import time

import pytest

from medlib.train.step_timing import TimedReward, Timers, summarise


def test_nested_timers_are_exclusive_and_rest_fills_the_step():
    t = Timers()
    inner = t.wrap("inner", lambda: time.sleep(0.05))

    def outer():
        time.sleep(0.02)
        inner()

    t.wrap("outer", outer)()
    assert t.seconds["inner"] == pytest.approx(0.05, abs=0.03)
    assert t.seconds["outer"] == pytest.approx(0.02, abs=0.03)
    assert t.calls == {"outer": 1, "inner": 1}
    s = summarise(t, [0.2, 0.1], skip_first=True)
    assert s["seconds_per_step"] == pytest.approx(0.1)  # the first step is left out of the mean
    assert sum(s["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert s["seconds"]["rest"] == pytest.approx(0.3 - t.seconds["inner"] - t.seconds["outer"], abs=1e-3)


def test_timed_reward_keeps_its_name_and_value():
    t = Timers()

    def medground_format(prompts, completions, **kw):
        return [1.0] * len(completions)

    r = TimedReward(medground_format, t)
    assert r.__name__ == "medground_format" and r(None, ["a", "b"]) == [1.0, 1.0]
    assert t.calls["reward:medground_format"] == 1
