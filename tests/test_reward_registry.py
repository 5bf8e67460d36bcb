"""The reward registry: each paper's set and weights, clear errors, picklable TRL callables; a
model-backed reward resolves its spec through medlib.semantic / medlib.segment on first use."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from trl.trainer.utils import get_callable_name, is_async_callable

from medlib.rewards.registry import (
    RewardConfigError,
    build_reward_set,
    default_weights,
    reward_names,
)


class StubSegmenter:
    name = "stub"

    def segment_2d(self, image, box=None, points=None):
        return np.zeros(np.asarray(image).shape[:2], dtype=bool)

    def propagate_3d(self, volume, key_slice, boxes):
        return np.zeros(np.asarray(volume).shape, dtype=bool)


def names(funcs):
    return [get_callable_name(f) for f in funcs]


def test_paper_sets_and_default_weights():
    funcs, ws = build_reward_set("medground", semantic_scorer="test")
    assert names(funcs) == ["medground_format", "medground_spatial", "medground_semantic"] and ws == [1.0] * 3
    funcs, ws = build_reward_set("MedReasoner")
    assert names(funcs) == [
        "medreasoner_format_think", "medreasoner_format_answer", "medreasoner_box_iou", "medreasoner_points_dice"
    ]  # fmt: skip
    assert len(build_reward_set("medreasoner", mode="hard")[0]) == 8
    assert len(build_reward_set("medreasoner", mode="base")[0]) == 5
    funcs, ws = build_reward_set("medvol-r1", segmenter=StubSegmenter())
    assert (
        names(funcs) == ["medvol_format", "medvol_axial", "medvol_spatial", "medvol_cross_slice"]
        and ws == [1.0] * 4
    )
    assert default_weights("medvol") == {"format": 1.0, "axial": 1.0, "spatial": 1.0, "cross_slice": 1.0}


def test_weights_select_and_weight_rewards():
    funcs, ws = build_reward_set("medground", {"format": 0.5, "medground_iou": 0.0, "spatial": 2})
    assert names(funcs) == ["medground_format", "medground_iou", "medground_spatial"]
    assert ws == [0.5, 0.0, 2.0]
    funcs, _ = build_reward_set("medvol", {"format": 1, "spatial": 1})  # no segmenter needed without R_c
    assert names(funcs) == ["medvol_format", "medvol_spatial"]


def test_options_reach_the_rewards():
    funcs, _ = build_reward_set("medreasoner", {"box_scale": 1}, mode="hard", variant="paper")
    assert (funcs[0].mode, funcs[0].variant) == ("hard", "paper")
    funcs, _ = build_reward_set("medground", {"format": 1, "spatial": 1}, braces=False, spatial_threshold=0.7)
    text = "<think>t</think><answer>[0, 0, 10, 8]</answer>"  # bare box; IoU 0.8 with the 10x10 GT
    assert [f(None, [text], solution=[[0, 0, 10, 10]])[0] for f in funcs] == [1.0, 1.0]
    funcs, _ = build_reward_set("medvol", {"cross_slice": 1}, segmenter=StubSegmenter(), delta=2)
    assert funcs[0].delta == 2


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: build_reward_set("medgrnd"),
            "unknown paper 'medgrnd'; valid: medground, medreasoner, medvol",
        ),
        (
            lambda: build_reward_set("medground", {"spatail": 1}),
            "valid: format, spatial, semantic, iou, semantic_released",
        ),
        (
            lambda: build_reward_set("medreasoner", {"box_align": 1}),
            "valid: format_think, format_answer, box_iou",
        ),
        (
            lambda: build_reward_set("medground", braces=True, mode="hard"),
            r"unknown medground reward option\(s\) \['mode'\]",
        ),
        (lambda: build_reward_set("medreasoner", mode="medium"), "mode must be one of"),
        (lambda: build_reward_set("medvol"), "needs segmenter="),
        (lambda: build_reward_set("medground", {"format": "heavy"}), "finite number"),
        (lambda: build_reward_set("medground", {}), "empty medground reward set"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(RewardConfigError, match=message):
        call()
    assert reward_names("medreasoner", "hard")[-1] == "points_angle"


def test_every_reward_is_a_picklable_trl_callable():
    sets = [
        build_reward_set("medground", {n: 1 for n in reward_names("medground")}, semantic_scorer="test"),
        build_reward_set("medreasoner", mode="hard"),
        build_reward_set("medreasoner", mode="base", variant="paper"),
        build_reward_set("medvol", segmenter=StubSegmenter()),
    ]
    img = np.full((16, 16), 255, dtype=np.uint8)
    mask = np.zeros((4, 16, 16), dtype=bool)
    mask[1:3, 2:8, 2:8] = True
    cols = dict(
        solution=[[2, 2, 8, 8]],
        phrase=["bright"],
        image=[img],
        points=[[[3, 3], [6, 6]]],
        mask=[mask],
        volume=[mask * 1.0],
    )
    text = (
        '<think>t</think><answer>{"bbox": [2, 2, 8, 8], "points_1": [3, 3], "points_2": [6, 6], '
        '"key_slice": 2, "bbox_2d_list": [[2, 2, 8, 8]]}</answer>'
    )
    seen = set()
    for funcs, _ in sets:
        for f in funcs:
            name = get_callable_name(f)
            assert name not in seen and not is_async_callable(f)
            seen.add(name)
            g = pickle.loads(pickle.dumps(f))
            assert get_callable_name(g) == name
            out = g(prompts=[[{"role": "user", "content": "q"}]], completions=[[{"role": "assistant", "content": text}]],
                    completion_ids=[[0]], **cols)  # fmt: skip
            assert len(out) == 1 and (out[0] is None or np.isfinite(out[0]))


def test_semantic_reward_resolves_its_spec_through_medlib_semantic(monkeypatch):
    loads = []

    class FakeScorer:
        def similarity(self, images, boxes, texts):
            return np.ones(len(texts))

        def image_text_similarity(self, images, texts):
            return np.ones(len(texts))

    import medlib.semantic

    monkeypatch.setattr(medlib.semantic, "load_scorer", lambda spec: loads.append(spec) or FakeScorer())
    (reward,), _ = build_reward_set("medground", {"semantic": 1}, semantic_scorer="biomedclip")
    assert loads == []  # building a reward set loads no model
    text = '<think>t</think><answer>{"bbox": [0, 0, 4, 4]}</answer>'
    img = np.zeros((8, 8), dtype=np.uint8)
    assert reward(None, [text], phrase=["x"], image=[img], solution=[[0, 0, 4, 4]]) == [1.0]
    assert loads == ["biomedclip"]


def test_segmenter_spec_is_resolved_lazily_through_medlib_segment(monkeypatch):
    import medlib.segment

    monkeypatch.setattr(medlib.segment, "get_segmenter", lambda spec: StubSegmenter())
    funcs, _ = build_reward_set("medvol", {"cross_slice": 1}, segmenter="medsam2")
    mask = np.zeros((4, 8, 8), dtype=bool)
    mask[1, 2:5, 2:5] = True
    text = '<think>t</think><answer>{"key_slice": 2, "bbox_2d_list": [[2, 2, 5, 5]]}</answer>'
    # the stub segments nothing: Dice 0, computed through the looked-up segmenter
    assert funcs[0](None, [text], mask=[mask], volume=[mask * 1.0]) == [0.0]


def test_module_level_semantic_rewards_do_not_default_to_the_stand_in():
    from medlib.rewards import medground_semantic, medground_semantic_released

    assert medground_semantic.scorer == medground_semantic_released.scorer == "default"
    assert build_reward_set("medground", {"semantic": 1})[0][0].scorer == "default"


def test_per_step_memo_notices_a_batch_changed_in_place():
    from medlib.rewards.medground import medground_iou

    good = '<think>t</think><answer>{"bbox": [0, 0, 10, 10]}</answer>'
    bad = "<think>t</think><answer>none</answer>"
    completions, solution = [good], [[0, 0, 10, 10]]
    assert medground_iou(None, completions, solution=solution) == [1.0]
    completions[0] = bad  # same list object, new item: must not reuse the cached parse
    assert medground_iou(None, completions, solution=solution) == [0.0]
    solution[0] = [0, 0, 5, 10]  # same for a ground-truth column
    completions[0] = good
    assert medground_iou(None, completions, solution=solution) == [0.5]
