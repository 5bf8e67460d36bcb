"""Property tests: no reward raises on any completion or ground truth, and every value is
None (does not apply) or finite and inside its documented range."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medlib.rewards.medground import (
    MedGroundFormat,
    MedGroundIoU,
    MedGroundSemantic,
    MedGroundSemanticReleased,
    MedGroundSpatial,
)
from medlib.rewards.medreasoner import TERMS, MedReasonerReward
from medlib.rewards.medvol import MedVolAxial, MedVolCrossSlice, MedVolFormat, MedVolSpatial
from medlib.semantic.stand_in import MeanIntensityScorer

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class BoxFillSegmenter:
    """Segmenter stub: fills each box on the key slice and its two neighbours."""

    name = "box-fill"

    def segment_2d(self, image, box=None, points=None):
        return np.zeros(np.asarray(image).shape[:2], dtype=bool)

    def propagate_3d(self, volume, key_slice, boxes):
        out = np.zeros(np.asarray(volume).shape, dtype=bool)
        for x1, y1, x2, y2 in boxes:
            out[
                max(key_slice - 1, 0) : key_slice + 2,
                int(y1) : int(math.ceil(y2)),
                int(x1) : int(math.ceil(x2)),
            ] = True
        return out


# ----------------------------------------------------------------------- strategies
weird_number = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**40), 10**40),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e3),
)
weird_value = st.one_of(
    weird_number, st.text(max_size=4), st.booleans(), st.none(), st.lists(weird_number, max_size=5)
)
sane = st.one_of(st.integers(0, 120), st.floats(0, 120))
box = st.one_of(
    st.lists(sane, min_size=4, max_size=4).map(
        lambda b: [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])]
    ),
    st.lists(weird_number, min_size=4, max_size=4),
)
point = st.one_of(st.lists(sane, min_size=2, max_size=2), st.lists(weird_number, min_size=2, max_size=2))
tag_sep = st.sampled_from(["", " ", "\n", "x", "</think>", "<answer>"])


def _dump(obj) -> str:
    try:
        return json.dumps(obj)
    except (ValueError, TypeError):
        return str(obj)


reasoner_answer = st.one_of(
    st.fixed_dictionaries({"bbox": box, "points_1": point, "points_2": point}),
    st.fixed_dictionaries(
        {},
        optional={
            "bbox": st.one_of(box, weird_value),
            "points_1": st.one_of(point, weird_value),
            "points_2": point,
        },
    ),
).map(_dump)
vol_answer = st.one_of(
    st.fixed_dictionaries({"key_slice": st.integers(0, 13), "bbox_2d_list": st.lists(box, max_size=4)}),
    st.fixed_dictionaries(
        {},
        optional={
            "key_slice": st.one_of(st.integers(-5, 40), weird_value),
            "bbox_2d_list": st.lists(box, max_size=4),
        },
    ),
).map(_dump)
int_box = st.lists(
    st.one_of(st.integers(0, 300), st.just(10**30), st.just(int("9" * 330))), min_size=4, max_size=4
)


def framed(body):
    return st.tuples(
        st.text(max_size=20), tag_sep, body, st.sampled_from(["", "\n", "<answer>", "junk"])
    ).map(lambda t: f"<think>{t[0]}</think>{t[1]}<answer>{t[2]}</answer>{t[3]}")


medground_text = st.one_of(
    st.text(max_size=200),
    framed(int_box.map(lambda b: "{[" + ", ".join(map(str, b)) + "]}")),
    framed(st.lists(box, max_size=3).map(lambda bs: _dump([{"bbox_2d": b} for b in bs]))),
)
reasoner_text = st.one_of(st.text(max_size=200), framed(reasoner_answer), reasoner_answer)
vol_text = st.one_of(
    st.text(max_size=200),
    framed(vol_answer),
    framed(st.integers(-3, 30).map(lambda k: f"<slice {k}> [[1, 2, 3, 4]]")),
)
gt_box = st.one_of(
    st.lists(st.floats(-50, 400), min_size=4, max_size=4),  # swapped, outside, zero-area boxes included
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
    st.none(),
    st.text(max_size=10),
)
gt_points = st.one_of(
    st.lists(st.lists(st.floats(-50, 400), min_size=2, max_size=2), min_size=2, max_size=2), st.none()
)


def check(values, n, lo, hi, allowed=None):
    assert len(values) == n
    for v in values:
        if v is None:
            continue
        assert isinstance(v, float) and math.isfinite(v), v
        assert lo <= v <= hi, v
        if allowed is not None:
            assert any(abs(v - a) < 1e-12 for a in allowed), v


# ---------------------------------------------------------------------------- tests
IMG = np.zeros((64, 96), dtype=np.uint8)
IMG[10:40, 20:60] = 200


@SETTINGS
@given(st.lists(medground_text, min_size=1, max_size=4), gt_box, st.sampled_from(["x", "bright opacity", ""]))
def test_medground_rewards_never_raise(texts, gt, phrase):
    n = len(texts)
    cols = dict(solution=[gt] * n, phrase=[phrase] * n, image=[IMG] * n, model_size=[(48, 32)] * n)
    check(MedGroundFormat()(None, texts, **cols), n, 0, 1, {0.0, 1.0})
    check(MedGroundFormat(braces=False)(None, texts, **cols), n, 0, 1, {0.0, 1.0})
    check(MedGroundSpatial()(None, texts, **cols), n, 0, 1, {0.0, 1.0})
    check(MedGroundIoU(lenient=True)(None, texts, **cols), n, 0, 1)
    scorer = MeanIntensityScorer()
    check(MedGroundSemantic(scorer, lenient=True)(None, texts, **cols), n, -1, 1)
    check(MedGroundSemantic(scorer, frame="qwen")(None, texts, **cols), n, -1, 1)
    check(MedGroundSemanticReleased(scorer)(None, texts, **cols), n, 0, 1, {0.0, 1.0})


@SETTINGS
@given(
    st.lists(reasoner_text, min_size=1, max_size=4), gt_box, gt_points, st.sampled_from(["official", "paper"])
)
def test_medreasoner_rewards_never_raise(texts, gt, pts, variant):
    n = len(texts)
    cols = dict(solution=[gt] * n, points=[pts] * n, model_size=[(320, 240)] * n)
    for mode in ("soft", "hard", "base"):
        for term in TERMS[mode]:
            out = MedReasonerReward(term, mode, variant)(None, texts, **cols)
            if term == "format_think":
                check(out, n, 0, 1, {0.0, 0.2, 1.0})
            elif term == "format_answer":
                check(out, n, 0, 1, {0.0, 0.2, 0.4, 0.6, 1.0})
            elif mode == "base":
                check(out, n, 0, 1, {0.0, 1.0})
            else:
                check(out, n, 0, 1)


MASK = np.zeros((12, 24, 24), dtype=bool)
MASK[3:8, 5:15, 6:12] = True
MASK[5, 18:22, 18:22] = True


@SETTINGS
@given(
    st.lists(vol_text, min_size=1, max_size=4),
    st.sampled_from([None, [0, 3, 5, 7, 11], [], [2, 99], ["x", 1.5, float("nan"), -4, 10**30], 7]),
    st.sampled_from([None, (48, 48), (0, 5)]),
)
def test_medvol_rewards_never_raise(texts, shown, size):
    n = len(texts)
    cols = dict(mask=[MASK] * n, volume=[MASK * 1.0] * n, slice_indices=[shown] * n, model_size=[size] * n)
    check(MedVolFormat()(None, texts, **cols), n, 0, 1, {0.0, 1.0})
    check(MedVolAxial()(None, texts, **cols), n, 0, 1)
    check(MedVolSpatial()(None, texts, **cols), n, 0, 1)
    check(MedVolCrossSlice(BoxFillSegmenter(), delta=2)(None, texts, **cols), n, 0, 1)


@SETTINGS
@given(
    st.lists(
        st.one_of(
            st.text(max_size=50),
            st.none(),
            st.integers(),
            st.lists(
                st.dictionaries(
                    st.sampled_from(["role", "content"]),
                    st.one_of(st.text(max_size=30), st.none(), st.integers()),
                    max_size=2,
                ),
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_odd_completion_objects_never_raise(completions):
    n = len(completions)
    check(MedGroundSpatial()(None, completions, solution=[[0, 0, 5, 5]] * n), n, 0, 1)
    check(MedReasonerReward("format_answer")(None, completions), n, 0, 1)
    check(MedVolFormat()(None, completions), n, 0, 1)
