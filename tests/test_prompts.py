"""Prompt templates of the three papers, their SFT answers and TRL's conversational rows."""

from __future__ import annotations

import pytest

from medlib import prompts
from medlib.parsing import parse_chain_of_box, parse_medground, parse_medreasoner, parse_medvol


def test_medground_r1_prompt_is_the_released_codes():
    # docs/medground_r1.md#prompt: "{question} First output the thinking process in <think> </think>
    # tags and then output the final answer in <answer> </answer> tags. Output the final answer in
    # JSON format." with question "Please provide the bounding box coordinate of the region this
    # sentence describes: <phrase>."
    text = prompts.medground_text("small left apical pneumothorax", "r1")
    assert text == (
        "Please provide the bounding box coordinate of the region this sentence describes: "
        "small left apical pneumothorax. First output the thinking process in <think> </think> tags and "
        "then output the final answer in <answer> </answer> tags. Output the final answer in JSON format."
    )
    # a phrase that already ends with a full stop gets no second one
    assert "pneumothorax.." not in prompts.medground_text("pneumothorax.", "r1")


def test_chain_of_box_prompt_and_answer():
    text = prompts.medground_text("right lower lobe opacity", "chain_of_box")
    assert text.startswith(prompts.medground_text("right lower lobe opacity", "r1"))
    assert "[x1, y1, x2, y2]" in text and "region" in text
    ans = prompts.medground_answer([10, 20, 60, 90], "right lower lobe opacity", "chain_of_box")
    # Sec. 2.4: the region text in <think> is followed by its box
    steps = parse_chain_of_box(ans).steps
    assert steps and steps[0][1] == (10.0, 20.0, 60.0, 90.0)
    assert "right lower lobe opacity" in steps[0][0]


@pytest.mark.parametrize("template", ["r1", "chain_of_box"])
def test_medground_answer_has_the_rewarded_format(template):
    ans = prompts.medground_answer([12.4, 34.6, 56, 78], "nodule", template)
    parsed = parse_medground(ans)
    # footnote 7 format (braces) and footnote 8 integer box; floats are rounded to integers
    assert parsed.format_ok and parsed.box == (12.0, 35.0, 56.0, 78.0)


def test_medground_answer_uses_dataset_reasoning():
    ans = prompts.medground_answer([1, 2, 3, 4], "x", "r1", reasoning="Look at the apex.")
    assert parse_medground(ans).think == "Look at the apex."


def test_unknown_template_raises():
    with pytest.raises(ValueError, match="chain_of_box"):
        prompts.medground_text("x", "cob")


def test_medreasoner_prompts_follow_appendix_c2():
    r = prompts.medreasoner_text("Which organ filters the blood?", reasoning=True)
    d = prompts.medreasoner_text("Which organ filters the blood?", reasoning=False)
    # Fig. 10 / Fig. 11 wording, question and example answer filled in
    assert r.startswith("<image>\nThis is a medical image localization task.")
    assert "Question: Which organ filters the blood?\n" in r
    assert "Step-by-step guidelines:" in r and "5. Resolving inconsistencies" in r
    assert r.endswith("<think> thinking process here </think><answer>" + prompts.MEDREASONER_EXAMPLE_ANSWER + "</answer>")
    assert d.startswith("<image>\nPlease answer Which organ filters the blood? with bbox and points.")
    assert "<think>" not in d and "{Question}" not in d and "{Answer}" not in r
    assert not prompts.medreasoner_text("q", image_tag=False).startswith("<image>")


def test_medreasoner_answers_parse():
    a = prompts.medreasoner_answer([10, 20, 50, 60], [[20, 30], [40, 50]], reasoning="kidney")
    p = parse_medreasoner(a)
    assert p.think == "kidney" and p.has_keys and p.box == (10.0, 20.0, 50.0, 60.0)
    assert p.points == ((20.0, 30.0), (40.0, 50.0))
    direct = prompts.medreasoner_answer([10, 20, 50, 60], [[20, 30], [40, 50]], think=False)
    assert direct.startswith("<answer>") and parse_medreasoner(direct).box == (10.0, 20.0, 50.0, 60.0)


def test_medvol_content_puts_a_slice_tag_before_each_image():
    parts = prompts.medvol_content("the liver", 3)
    kinds = [p["type"] for p in parts]
    assert kinds == ["text", "image", "text", "image", "text", "image", "text"]
    assert [parts[i]["text"] for i in (0, 2, 4)] == ["<slice 1>", "<slice 2>", "<slice 3>"]
    assert "Query: the liver" in parts[-1]["text"]
    ans = prompts.medvol_answer(2, [[1, 2, 3, 4], [5, 6, 7, 8]])
    v = parse_medvol(ans)
    assert v.format_ok and v.key_slice == 2 and v.boxes == ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0))


def test_trl_fills_slice_images_in_order():
    """TRL's own placeholder filling puts image k right after <slice k>."""
    from trl.data_utils import prepare_multimodal_messages

    msgs = prompts.conversation(prompts.medvol_content("q", 3), n_images=3)
    filled = prepare_multimodal_messages(msgs, images=["img1", "img2", "img3"])
    content = filled[0]["content"]
    for k in (1, 2, 3):
        i = next(j for j, p in enumerate(content) if p.get("text") == f"<slice {k}>")
        assert content[i + 1] == {"type": "image", "image": f"img{k}"}


def test_conversation_rows_render_with_the_qwen_template():
    from transformers.utils.chat_template_utils import render_jinja_template

    from medlib.models.tokenizer import QWEN_CHAT_TEMPLATE

    conv = prompts.conversation(prompts.medvol_content("q", 2), n_images=2)
    rendered, _ = render_jinja_template([conv], chat_template=QWEN_CHAT_TEMPLATE, add_generation_prompt=True)
    text = rendered[0]
    assert "<slice 1><|vision_start|><|image_pad|><|vision_end|><slice 2><|vision_start|><|image_pad|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="placeholders"):
        prompts.conversation(prompts.medvol_content("q", 2), n_images=3)
    two_d = prompts.conversation("find it", 1)
    assert two_d[0]["content"][0] == {"type": "image"} and two_d[0]["content"][1]["text"] == "find it"
    assert prompts.assistant("a") == [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]


def test_corpus_covers_every_template():
    texts = "\n".join(prompts.corpus_texts())
    for needle in ("Please provide the bounding box", "bbox_2d", "points_1", "<slice 1>", "key_slice",
                   "Step-by-step guidelines", "with bbox and points"):
        assert needle in texts
