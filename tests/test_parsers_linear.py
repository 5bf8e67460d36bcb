"""The parsers run in linear time on adversarial completions and parse exactly as the
backtracking regexes they replace did."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlib import parsing
from medlib.adversarial import PARSERS, adversarial_completions, non_model_rewards
from medlib.parsing import clear_parse_caches
from medlib.prompts import medground_answer, medreasoner_answer, medvol_answer
from medlib.rewards._common import clear_step_memos

# ------------------------------------------------------------ the old implementation
_OLD_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
OLD = {
    "BOX_INT_RE": re.compile(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]"),
    "_BOX_INT_BARE": re.compile(r"\[\d+,\s*\d+,\s*\d+,\s*\d+\]"),
    "BOX_NUM_RE": re.compile(rf"\[\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*\]"),
    "_BBOX2D_RE": re.compile(
        rf"[\"']bbox(?:_2d)?[\"']\s*:\s*\[\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*,\s*({_OLD_NUM})\s*\]"
    ),
    "_SLICE_TAG_RE": re.compile(r"<\s*slice\s*[_:#]?\s*(-?\d+)\s*>", re.IGNORECASE),
}
_OLD_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


def _old_unfence(s: str) -> str:
    if "```" not in s:
        return s
    m = _OLD_FENCE.search(s)
    return m.group(1) if m else s


def _results(text: str) -> dict:
    clear_parse_caches()
    out = {name: repr(fn(text)) for name, fn in PARSERS.items()}
    out["unfence"] = parsing._unfence(text)
    return out


def _old_results(text: str, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        for name, pattern in OLD.items():
            m.setattr(parsing, name, pattern)
        m.setattr(parsing, "_unfence", _old_unfence)
        return _results(text)


# ------------------------------------------------------------------ realistic texts
def _realistic() -> list[str]:
    out = [
        medground_answer([10, 20, 130, 140], "left lower lobe opacity"),
        medground_answer([10, 20, 130, 140], "nodule", template="chain_of_box",
                         reasoning="The lung [1.5, 2, 30.25, 40] then the lobe [3, 4e1, 50, 60]."),
        medreasoner_answer([12, 30, 90, 100], [[20, 40], [60, 80]]),
        medvol_answer(17, [[1, 2, 30, 40], [5.5, 6, 70, 80]]),
        "<think>x</think><answer><slice 3> [1, 2, 3, 4] [5.0, 6, 7, 8]</answer>",
        "<think>x</think><answer><Slice: 12> [[-1, +2, .5, 4E2]]</answer>",
        "<think>x</think><answer>```json\n[{\"bbox_2d\": [1, 2, 3, 4]}]\n```</answer>",
        "<think>x</think><answer>```json   {'bbox': [1., 2, 3, 4]} ```</answer>",
        "<answer>{\"bbox_2d\": [1, 2, 3]} 'bbox': [1, 2, 3, 4]</answer>",
        "<think></think> <answer>{[12, 13, 14, 15]}</answer>",
        "<think>a</think>\n<answer><slice_-2>[1,2,3,4]</answer>",
        "```",
        "``` unterminated [1, 2, 3, 4]",
    ]
    return out


boxy = st.text(alphabet="[]{}<>,.:;_#-+eE0123456789 \n`'\"abcdeilst/", max_size=120)
frames = st.sampled_from(["{}", "<answer>{}</answer>", "<think>{}</think><answer>{}</answer>",
                          "<think>x</think><answer><slice 3> {}</answer>", "<answer>```json\n{}```</answer>"])


@pytest.mark.parametrize("text", _realistic() + list(adversarial_completions(300).values()))
def test_same_parse_as_the_backtracking_regexes_on_realistic_and_adversarial_text(text, monkeypatch):
    assert _results(text) == _old_results(text, monkeypatch)


@settings(max_examples=300, deadline=None)
@given(frames, boxy)
def test_same_parse_as_the_backtracking_regexes_on_random_text(frame, body):
    import _pytest.monkeypatch

    text = frame.replace("{}", body)
    mp = _pytest.monkeypatch.MonkeyPatch()
    try:
        assert _results(text) == _old_results(text, mp)
    finally:
        mp.undo()


def test_old_regex_is_quadratic_on_a_long_digit_run():
    """The check below can fail: the regex this module replaced takes 16x the time at 4x the size."""
    def old(n):
        text = "<slice 3> [" + "1" * n
        t0 = time.perf_counter()
        OLD["BOX_NUM_RE"].search(text)
        return time.perf_counter() - t0

    assert old(4000) / max(old(1000), 1e-9) > 8


# ------------------------------------------------------------------ linear time
def _best_seconds(fn, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        clear_parse_caches()
        clear_step_memos()
        t0 = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t0)
    return best


N = 40_000
SMALL, LARGE = adversarial_completions(N), adversarial_completions(4 * N)


def _ratio(fn, shape: str) -> float:
    """time(4n) / time(n); linear is about 4, quadratic 16. Times are floored at 2 ms so that timer
    noise on a sub-millisecond parse cannot fail the test, and a ratio above the bound is measured
    again with more repeats (a busy machine can pause one call for tens of milliseconds)."""
    def ratio(repeats: int) -> float:
        return (max(_best_seconds(fn, LARGE[shape], repeats), 2e-3)
                / max(_best_seconds(fn, SMALL[shape], repeats), 2e-3))

    r = ratio(3)
    return r if r <= 9 else ratio(9)


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_every_parser_scales_linearly_on_adversarial_shapes(parser):
    fn = PARSERS[parser]
    slow = {shape: r for shape in SMALL if (r := _ratio(fn, shape)) > 9}
    assert not slow, f"{parser}: time(4n) / time(n) above 9 for {slow}"


def test_every_non_model_reward_scales_linearly_on_adversarial_shapes():
    slow = {}
    for name, fn in non_model_rewards().items():
        for shape in ("slice_digits/framed", "box_digits/framed", "slice_spaces/framed", "unterminated_fence/bare",
                      "repeated_open_box/framed", "bbox_key_digits/open_answer"):
            if (r := _ratio(fn, shape)) > 9:
                slow[f"{name} on {shape}"] = r
    assert not slow, slow


def test_issue_example_16000_digits_parse_fast_and_give_no_box():
    text = "<think>t</think><answer><slice 3> [" + "1" * 16000 + "</answer>"
    clear_parse_caches()
    t0 = time.perf_counter()
    ans = parsing.parse_medvol(text)
    assert time.perf_counter() - t0 < 0.5  # the backtracking regex took seconds
    assert ans.key_slice == 3 and ans.boxes is None and not ans.format_ok
