"""Parsers of the four answer formats: tables of valid/invalid completions, and the linear-time
matchers checked against the papers' own regular expressions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlib.parsing import (
    MEDGROUND_FORMAT_PATTERN,
    _base_format_ok,
    _first_brace_object,
    completion_text,
    first_block,
    medground_format_ok,
    parse_chain_of_box,
    parse_medground,
    parse_medreasoner,
    parse_medreasoner_base,
    parse_medvol,
)

# Token soup: every token the matchers care about, so random strings hit all branches.
TOKENS = [
    "<think>", "</think>", "<answer>", "</answer>", "{", "}", "[1, 2, 3, 4]", "[10,20,30,40]",
    "[1, 2, 3]", "[", "]", "7", ",", " ", "\n", "x", "'", '"', "<think", "answer>",
]  # fmt: skip
soup = st.lists(st.sampled_from(TOKENS), max_size=14).map("".join)
# Near-valid completions: the tags in place with soup around and between them, so that the
# matchers are compared on many positives too.
inner = st.lists(
    st.sampled_from(["{", "}", "[1, 2, 3, 4]", "[1, 2, 3]", " ", "x", "</answer>", "<answer>", "</think>"]),
    max_size=8,
).map("".join)
framed = st.tuples(
    soup, inner, st.sampled_from(["", " ", "\n", "x"]), inner, st.sampled_from(["", "x", "}"])
).map(lambda t: f"<think>{t[0]}</think>{t[2]}<answer>{t[1]}{t[3]}</answer>{t[4]}")
# Valid by construction, then one character deleted (or none): positives and near misses.
near_valid = st.tuples(
    soup, st.sampled_from(["", " ", "\n"]), inner, inner, inner, inner, st.integers(-1, 80)
).map(
    lambda t: (lambda v, i: v if i < 0 or i >= len(v) else v[:i] + v[i + 1 :])(
        f"<think>{t[0]}</think>{t[1]}<answer>{t[2]}{{{t[3]}[1, 2, 3, 4]{t[4]}}}{t[5]}</answer>", t[6]
    )
)
texts = st.one_of(soup, framed, near_valid)
BARE_PATTERN = r"<think>.*?</think>\s*<answer>.*?\[\d+,\s*\d+,\s*\d+,\s*\d+\].*?</answer>"


# ------------------------------------------------------------- matchers vs the regexes
@settings(max_examples=400, deadline=None)
@given(texts)
def test_format_matcher_equals_footnote7_regex(text):
    assert medground_format_ok(text, braces=True) == bool(
        re.fullmatch(MEDGROUND_FORMAT_PATTERN, text, re.DOTALL)
    )
    assert medground_format_ok(text, braces=False) == bool(re.fullmatch(BARE_PATTERN, text, re.DOTALL))


@settings(max_examples=300, deadline=None)
@given(texts)
def test_block_and_brace_finders_equal_regex_search(text):
    for tag in ("think", "answer"):
        m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
        assert first_block(text, tag) == (m.group(1) if m else None)
    m = re.search(r"{[^}]+}", text)
    assert _first_brace_object(text) == (m.group(0) if m else None)
    base = re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", text, re.DOTALL)
    assert _base_format_ok(text) == bool(base)


def test_format_matcher_is_linear_on_adversarial_input():
    import time

    text = "<think></think><answer>" + "{[1, 2, 3" * 20000 + "</answer>"
    t0 = time.perf_counter()
    assert medground_format_ok(text) is False
    assert time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------- completion text
@pytest.mark.parametrize(
    "completion, text",
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "conv"}], "conv"),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
            "ab",
        ),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "last"}], "last"),
        ({"role": "assistant", "content": "dict"}, "dict"),
        (None, ""),
        (42, ""),
        ([{"role": "assistant", "content": None}], ""),
    ],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text


# ------------------------------------------------------------------ MedGround-R1 table
T, A = "<think>the opacity is in the left lower lobe</think>", "</answer>"
MEDGROUND_TABLE = [
    # completion, format_ok (braces), format_ok_bare, box
    (f'{T}<answer>{{"bbox": [10, 20, 30, 40]}}{A}', True, True, (10, 20, 30, 40)),
    (f"{T}\n <answer>{{[1,2,3,4]}}{A}", True, True, (1, 2, 3, 4)),
    (f"{T}<answer>[10, 20, 30, 40]{A}", False, True, (10, 20, 30, 40)),  # footnote 7 needs {..}
    (f'{T}<answer>```json\n[{{"bbox_2d": [5, 6, 7, 8], "label": "x"}}]\n```{A}', True, True, (5, 6, 7, 8)),
    (f'{T}<answer>{{"bbox": [10.5, 20, 30, 40]}}{A}', False, False, None),  # not integers
    (f'{T}<answer>{{"bbox": [-1, 20, 30, 40]}}{A}', False, False, None),  # a sign is not \d
    (f'{T}<answer>{{"bbox": [10, 20, 30]}}{A}', False, False, None),
    (f'<answer>{{"bbox": [10, 20, 30, 40]}}{A}', False, False, (10, 20, 30, 40)),  # no think
    (f'{T}<answer>{{"bbox": [10, 20, 30, 40]}}{A} trailing', False, False, (10, 20, 30, 40)),  # fullmatch
    (f' {T}<answer>{{"bbox": [10, 20, 30, 40]}}{A}', False, False, (10, 20, 30, 40)),
    (f"{T}text<answer>{{[1, 2, 3, 4]}}{A}", False, False, (1, 2, 3, 4)),  # only \s between blocks
    (f'{T}<answer>{{"bbox": [10, 20, 30, 40]}}', False, False, None),  # unclosed answer
    ("", False, False, None),
]


@pytest.mark.parametrize("text, fmt, bare, box", MEDGROUND_TABLE)
def test_medground_table(text, fmt, bare, box):
    a = parse_medground(text)
    assert a.format_ok is fmt
    assert a.format_ok_bare is bare
    assert a.box == box
    assert (a.reason is None) == (box is not None)


def test_medground_qwen_native_json_is_parsed_leniently():
    # Real Qwen2.5-VL grounding output: fenced JSON list, float coordinates, no tags.
    text = '```json\n[\n  {"bbox_2d": [12.5, 30, 100, 200.25], "label": "opacity"},\n  {"bbox_2d": [1, 2, 3, 4]}\n]\n```'
    a = parse_medground(text)
    assert a.box is None and a.format_ok is False
    assert a.json_boxes == ((12.5, 30.0, 100.0, 200.25), (1.0, 2.0, 3.0, 4.0))
    assert a.pred_box(lenient=True) == (12.5, 30.0, 100.0, 200.25)
    assert a.pred_box(lenient=False) is None
    # single quotes and a broken JSON tail still give the box via the "bbox_2d" regex
    assert parse_medground("<answer>[{'bbox_2d': [1, 2, 3, 4]}, {</answer>").json_boxes == ((1, 2, 3, 4),)


def test_medground_huge_integer_box_is_rejected_not_raised():
    a = parse_medground("<think>t</think><answer>{[" + "9" * 400 + ", 1, 2, 3]}</answer>")
    assert a.box is None and "float" in a.reason


def test_chain_of_box_pairs():
    text = (
        "<think>The left lung [10, 20, 110, 220] is clear. The opacity near the heart border "
        "[40.5, 60, 90, 120]; compare with right lung [120,20,220,220]</think><answer>{[40, 60, 90, 120]}</answer>"
    )
    steps = parse_chain_of_box(text).steps
    assert [s[0] for s in steps] == [
        "The left lung",
        "The opacity near the heart border",
        "compare with right lung",
    ]
    assert steps[1][1] == (40.5, 60.0, 90.0, 120.0)
    assert parse_chain_of_box("<think>no boxes here</think>").steps == ()
    assert parse_chain_of_box("no think").reason.startswith("no <think>")


# -------------------------------------------------------------------- MedReasoner table
J = '{"bbox": [10, 20, 30, 40], "points_1": [15, 25], "points_2": [25, 35]}'
REASONER_TABLE = [
    # completion, think score, answer score, box parsed, points parsed
    (f"<think>reason</think><answer>{J}</answer>", 1.0, 1.0, True, True),
    (f"<think>   </think><answer>{J}</answer>", 0.2, 1.0, True, True),
    (f"<answer>{J}</answer>", 0.0, 1.0, True, True),
    ("<think>r</think>", 1.0, 0.0, False, False),
    ("<think>r</think><answer>not json</answer>", 1.0, 0.2, False, False),
    ("<think>r</think><answer>[1, 2, 3, 4]</answer>", 1.0, 0.2, False, False),  # JSON, not an object
    ("<think>r</think><answer>{'bbox': [1, 2, 3, 4], 'points_1': [1, 2], 'points_2': [3, 4]}</answer>", 1.0, 1.0, True, True),
    ("<think>r</think><answer>{\"bbox\": [1, 2, 3, 4], \"note\": \"it's\"}</answer>", 1.0, 0.2, False, False),
    ('<think>r</think><answer>{"bbox": [1, 2, 3, 4]}</answer>', 1.0, 0.4, True, False),  # keys missing
    ('<think>r</think><answer>{"bbox": "x", "points_1": 1, "points_2": [1]}</answer>', 1.0, 0.4, False, False),
    ('<think>r</think><answer>{"bbox": [1, 2, 3, 4], "points_1": [1], "points_2": [1, 2]}</answer>', 1.0, 0.6, True, False),
    ('<think>r</think><answer>{"bbox": [1, 2, 3], "points_1": [1, 2], "points_2": [1, 2]}</answer>', 1.0, 0.6, False, True),
    ('<think>r</think><answer>{"bbox": [1, 2, 3, "4"], "points_1": [1, 2], "points_2": [1, 2]}</answer>', 1.0, 0.6, False, True),
    # true is an int in Python, so the public type check passes it
    ('<think>r</think><answer>{"bbox": [true, 2, 3, 4], "points_1": [1, 2], "points_2": [1, 2]}</answer>', 1.0, 1.0, True, True),
    # NaN parses and passes the type check (format 1) but is no usable coordinate
    ('<think>r</think><answer>{"bbox": [NaN, 2, 3, 4], "points_1": [1, 2], "points_2": [1, 2]}</answer>', 1.0, 1.0, False, True),
]  # fmt: skip


@pytest.mark.parametrize("text, think, answer, has_box, has_points", REASONER_TABLE)
def test_medreasoner_table(text, think, answer, has_box, has_points):
    a = parse_medreasoner(text)
    assert a.think_score == think
    assert a.answer_score == answer
    assert (a.box is not None) is has_box
    assert (a.points is not None) is has_points


def test_medreasoner_values():
    a = parse_medreasoner(f"<think>r</think><answer>{J}</answer>")
    assert a.box == (10.0, 20.0, 30.0, 40.0)
    assert a.points == ((15.0, 25.0), (25.0, 35.0))
    b = parse_medreasoner_base(f"<think>r</think><answer>{J}</answer>")
    assert b.think_ok and b.json["points_2"] == [25, 35]


# ------------------------------------------------------------------------ MedVol table
VOL_TABLE = [
    # completion, format_ok, key_slice, boxes
    ('<think>t</think><answer>{"key_slice": 23, "bbox_2d_list": [[1, 2, 3, 4], [5, 6, 7, 8]]}</answer>', True, 23,
     ((1, 2, 3, 4), (5, 6, 7, 8))),
    ("<think>t</think><answer><slice 7> [[1, 2, 3, 4]]</answer>", True, 7, ((1, 2, 3, 4),)),
    ("<think>t</think><answer><slice 7> [1.5, 2, 3, 4] and [5, 6, 7, 8]</answer>", True, 7,
     ((1.5, 2, 3, 4), (5, 6, 7, 8))),
    ('<think>t</think><answer>{"key_slice": "<slice 9>", "bbox_2d_list": [{"bbox_2d": [1, 2, 3, 4]}]}</answer>',
     True, 9, ((1, 2, 3, 4),)),
    ("<think>t</think><answer>```json\n{'key_slice': '12', 'bbox_2d_list': []}\n```</answer>", True, 12, ()),
    ('<think>t</think><answer>{"key_slice": 3.0, "bbox_2d_list": [[1, 2, 3, 4]]}</answer>', True, 3, ((1, 2, 3, 4),)),
    ('<think>t</think><answer>{"key_slice": 3.5, "bbox_2d_list": [[1, 2, 3, 4]]}</answer>', False, None,
     ((1, 2, 3, 4),)),
    ('<think>t</think><answer>{"key_slice": 3, "bbox_2d_list": [[1, 2, 3]]}</answer>', False, 3, None),
    ('<think>t</think><answer>{"key_slice": 3, "bbox_2d_list": [[1, 2, 3, Infinity]]}</answer>', False, 3, None),
    ('<think>t</think><answer>{"key_slice": 3}</answer>', False, 3, None),
    ('<answer>{"key_slice": 3, "bbox_2d_list": [[1, 2, 3, 4]]}</answer>', False, 3, ((1, 2, 3, 4),)),  # no think
    ('<answer>{"key_slice": 3, "bbox_2d_list": [[1, 2, 3, 4]]}</answer><think>t</think>', False, 3, ((1, 2, 3, 4),)),
    ("<think>t</think>slice 4", False, None, None),
]  # fmt: skip


@pytest.mark.parametrize("text, ok, key, boxes", VOL_TABLE)
def test_medvol_table(text, ok, key, boxes):
    a = parse_medvol(text)
    assert a.format_ok is ok
    assert a.key_slice == key
    assert a.boxes == boxes
    assert (a.reason is None) is ok


# ---------------------------------------------------------------------- never raises
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), texts))
def test_parsers_never_raise(text):
    for parse in (
        parse_medground,
        parse_chain_of_box,
        parse_medreasoner,
        parse_medreasoner_base,
        parse_medvol,
    ):
        parse(text)
    assert isinstance(parse_medground(text).json_boxes, tuple)  # computed lazily
