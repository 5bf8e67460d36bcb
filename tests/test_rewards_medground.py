"""MedGround-R1 rewards: format (footnote 7), spatial (IoU > 0.5), continuous IoU, semantic
(crop of the predicted box vs phrase, one batched scorer call) and the released variant."""

from __future__ import annotations

import numpy as np
import pytest

from medlib.rewards._common import RewardInputError
from medlib.rewards.medground import (
    MedGroundFormat,
    MedGroundIoU,
    MedGroundSemantic,
    MedGroundSemanticReleased,
    MedGroundSpatial,
    medground_format,
    medground_iou,
    medground_spatial,
)
from medlib.semantic.stand_in import MeanIntensityScorer, text_intensity


def done(box: str, think: str = "region") -> str:
    return f'<think>{think}</think><answer>{{"bbox": {box}}}</answer>'


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# -------------------------------------------------------------------------- spatial
def test_iou_and_spatial_hand_computed():
    gt = [0, 0, 10, 10]
    completions = [
        done("[0, 0, 10, 10]"),  # identical: IoU 1
        done("[5, 0, 15, 10]"),  # inter 5*10 = 50, union 100 + 100 - 50 = 150: IoU 1/3
        done("[0, 0, 10, 8]"),  # inter 80, union 100: IoU 0.8
        done("[0, 0, 10, 5]"),  # inter 50, union 100: IoU 0.5, not > 0.5
        done("[20, 20, 30, 30]"),  # disjoint: 0
        done("[10, 10, 0, 0]"),  # swapped corners: an empty box, IoU 0
        "<think>x</think><answer>no box</answer>",  # missing box -> [0,0,0,0] -> 0
    ]
    iou = medground_iou(None, completions, solution=[gt] * len(completions))
    assert iou == pytest.approx([1.0, 50 / 150, 0.8, 0.5, 0.0, 0.0, 0.0])
    spatial = medground_spatial(None, completions, solution=[gt] * len(completions))
    assert spatial == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_spatial_reads_the_answer_block_only_and_its_first_box():
    # A box in the think block (Chain-of-Box) does not count; the first answer box does.
    text = "<think>heart [0, 0, 10, 10]</think><answer>{[50, 50, 60, 60], [0, 0, 10, 10]}</answer>"
    assert medground_spatial(None, [text], solution=[[0, 0, 10, 10]]) == [0.0]
    assert medground_spatial(None, [text], solution=[[50, 50, 60, 60]]) == [1.0]


def test_ground_truth_cells_in_several_forms():
    text = done("[0, 0, 10, 10]")
    for sol in (
        [0, 0, 10, 10],
        (0, 0, 10, 10),
        np.array([0, 0, 10, 10]),
        "[0, 0, 10, 10]",
        "[[0, 0, 10, 10]]",
    ):
        assert medground_spatial(None, [text], solution=[sol]) == [1.0]
    # an unusable GT cell: the reward does not apply (None), it does not raise
    assert medground_spatial(None, [text, text], solution=[None, "garbage"]) == [None, None]


def test_conversational_completions_and_trl_keywords():
    text = done("[0, 0, 10, 10]")
    out = medground_spatial(
        prompts=[[{"role": "user", "content": "q"}]],
        completions=[conv(text)],
        completion_ids=[[1, 2, 3]],
        solution=[[0, 0, 10, 10]],
        trainer_state=object(),
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
    )
    assert out == [1.0]


def test_lenient_reads_qwen_native_float_json():
    qwen = '```json\n[{"bbox_2d": [0.0, 0.0, 10.5, 10.0], "label": "opacity"}]\n```'
    # 10x10 GT vs 10.5x10 prediction: inter 100, union 105 -> IoU 0.952
    assert MedGroundIoU(lenient=True)(None, [qwen], solution=[[0, 0, 10, 10]]) == [pytest.approx(100 / 105)]
    assert medground_iou(None, [qwen], solution=[[0, 0, 10, 10]]) == [0.0]  # the paper's regex finds none


def test_missing_solution_column_is_a_clear_error():
    with pytest.raises(RewardInputError, match="solution"):
        medground_spatial(None, [done("[0, 0, 1, 1]")], phrase=["x"])


# --------------------------------------------------------------------------- format
@pytest.mark.parametrize(
    "text, braces, bare",
    [
        (done("[1, 2, 3, 4]"), 1.0, 1.0),
        ("<think>t</think><answer>[1, 2, 3, 4]</answer>", 0.0, 1.0),
        ("<think>t</think><answer>{[1.0, 2, 3, 4]}</answer>", 0.0, 0.0),
        ("<answer>{[1, 2, 3, 4]}</answer>", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_format(text, braces, bare):
    assert medground_format(None, [text]) == [braces]
    assert MedGroundFormat(braces=False)(None, [text]) == [bare]


def test_correct_answer_gets_the_maximal_reward():
    # format 1 + spatial 1 + semantic 1 (bright crop, "bright" phrase) = 3, the paper's maximum
    img = np.zeros((64, 64), dtype=np.uint8)
    img[16:48, 16:48] = 255
    text = done("[16, 16, 48, 48]")
    cols = dict(solution=[[16, 16, 48, 48]], phrase=["bright opacity"], image=[img])
    total = sum(
        f(None, [text], **cols)[0]
        for f in (medground_format, medground_spatial, MedGroundSemantic(MeanIntensityScorer()))
    )
    assert total == pytest.approx(3.0)


# ------------------------------------------------------------------------- semantic
class SpyScorer(MeanIntensityScorer):
    def __init__(self):
        super().__init__()
        self.boxes = []

    def similarity(self, images, boxes, texts):
        self.boxes.append(np.asarray(boxes).copy())
        return super().similarity(images, boxes, texts)


def test_test_scorer_arithmetic():
    s = MeanIntensityScorer()
    img = np.zeros((10, 10), dtype=np.uint8)
    img[:, 5:] = 255
    # crop means: 1.0 (right half), 0.0 (left half), 0.5 (all); "bright" phrase -> t = 1
    sims = s.similarity(
        [img] * 3, np.array([[5, 0, 10, 10], [0, 0, 5, 10], [0, 0, 10, 10]]), ["bright mass"] * 3
    )
    # cos(pi * (m - t)): cos(0) = 1, cos(-pi) = -1, cos(-pi/2) = 0
    assert sims == pytest.approx([1.0, -1.0, 0.0], abs=1e-12)
    assert text_intensity("dark air") == 0.0 and 0.0 <= text_intensity("left lower lobe") < 1.0


def test_semantic_crops_the_predicted_box_in_one_batched_call():
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[0:32, 0:32] = 255  # bright top-left quadrant
    spy = SpyScorer()
    reward = MedGroundSemantic(spy)
    completions = [
        done("[0, 0, 32, 32]"),  # bright crop: cos 0 = 1
        done("[32, 32, 64, 64]"),  # dark crop: cos(-pi) = -1
        done("[16, 0, 48, 32]"),  # half bright: mean 0.5 -> cos(-pi/2) = 0
        "<think>t</think><answer>none</answer>",  # no box: 0, and no crop
        done("[100, 100, 120, 120]"),  # outside the image: no pixels -> 0
        done("[30, 30, 10, 10]"),  # swapped corners: not a box -> 0
    ]
    n = len(completions)
    out = reward(None, completions, phrase=["bright opacity"] * n, image=[img] * n)
    assert out == pytest.approx([1.0, -1.0, 0.0, 0.0, 0.0, 0.0], abs=1e-12)
    assert spy.calls == 1 and spy.crops == 3  # one forward for the whole batch, 3 valid crops


def test_semantic_maps_the_model_frame_to_the_image():
    img = np.zeros((100, 200), dtype=np.uint8)  # H 100, W 200
    spy = SpyScorer()
    # model frame 100x50 (w x h): x scales by 200/100 = 2, y by 100/50 = 2
    MedGroundSemantic(spy)(
        None, [done("[25, 10, 50, 20]")], phrase=["p"], image=[img], model_size=[(100, 50)]
    )
    assert spy.boxes[-1].tolist() == [[50, 20, 100, 40]]
    # frame="qwen": a 100x100 image is seen at 112x112 (round(100/28) = 4 patches of 28), so
    # [56, 56, 112, 112] in the model frame is [50, 50, 100, 100] of the image
    sq = np.zeros((100, 100), dtype=np.uint8)
    MedGroundSemantic(spy, frame="qwen")(None, [done("[56, 56, 112, 112]")], phrase=["p"], image=[sq])
    assert spy.boxes[-1].tolist() == [[50, 50, 100, 100]]
    # fractional boxes are widened to whole pixels and clipped to the image
    MedGroundSemantic(spy, lenient=True)(
        None, ['{"bbox_2d": [-5.5, 10.2, 20.7, 300]}'], phrase=["p"], image=[sq]
    )
    assert spy.boxes[-1].tolist() == [[0, 10, 21, 100]]


def test_semantic_without_image_or_phrase_does_not_apply():
    img = np.zeros((8, 8), dtype=np.uint8)
    out = MedGroundSemantic(MeanIntensityScorer())(
        None, [done("[0, 0, 4, 4]")] * 2, phrase=["x", None], image=[None, img]
    )
    assert out == [None, None]
    with pytest.raises(RewardInputError, match="phrase"):
        MedGroundSemantic(MeanIntensityScorer())(None, [done("[0, 0, 4, 4]")], image=[img])


def test_released_variant_ignores_the_completion():
    bright = np.full((8, 8), 255, dtype=np.uint8)
    dark = np.zeros((8, 8), dtype=np.uint8)
    s = MeanIntensityScorer()
    r = MedGroundSemanticReleased(s)
    # whole image vs text: bright image + "bright" text: cos 0 = 1 > 0 -> 1; dark: cos(-pi) = -1 -> 0
    out = r(
        None,
        [done("[0, 0, 1, 1]"), "garbage", done("[0, 0, 1, 1]")],
        phrase=["bright"] * 3,
        image=[bright, bright, dark],
    )
    assert out == [1.0, 1.0, 0.0]
    assert s.calls == 1  # the repeated (image, text) pair is scored once


def test_semantic_reward_by_spec_uses_the_scorer_cache_of_medlib_semantic():
    from medlib.semantic import load_scorer

    img = np.full((8, 8), 255, dtype=np.uint8)
    r = MedGroundSemantic("mean-intensity")
    assert r(None, [done("[0, 0, 8, 8]")], phrase=["bright"], image=[img]) == [pytest.approx(1.0)]
    assert load_scorer("mean-intensity") is load_scorer("mean-intensity")
    assert isinstance(load_scorer("test"), MeanIntensityScorer)


def test_spatial_threshold_option():
    text = done("[0, 0, 10, 8]")  # IoU 0.8 with the 10x10 GT
    assert MedGroundSpatial(threshold=0.9)(None, [text], solution=[[0, 0, 10, 10]]) == [0.0]


def test_semantic_reads_pil_images_and_image_paths(tmp_path):
    from PIL import Image

    arr = np.zeros((32, 32), dtype=np.uint8)
    arr[:16, :16] = 255
    pil = Image.fromarray(arr)
    path = tmp_path / "img.png"
    pil.save(path)
    text = done("[0, 0, 16, 16]")  # the bright quadrant: cos 0 = 1
    reward = MedGroundSemantic(MeanIntensityScorer())
    assert reward(None, [text], phrase=["bright"], image=[pil]) == [pytest.approx(1.0)]
    assert reward(None, [text], phrase=["bright"], images=[[pil]]) == [pytest.approx(1.0)]
    assert reward(None, [text], phrase=["bright"], image_path=[str(path)]) == [pytest.approx(1.0)]
