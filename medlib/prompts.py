"""Prompt templates of the three papers and the conversational ``prompt`` column TRL expects.

Every coordinate written into a prompt or an answer is in the model's input frame (see
:class:`medlib.geometry.ModelFrame`); callers convert boxes before they call these functions.

* MedGround-R1 (:func:`medground_text`): the released code's question and R1 suffix
  (docs/medground_r1.md#prompt), and the Chain-of-Box variant (paper Sec. 2.4).
* MedReasoner (:func:`medreasoner_text`): the reasoning and direct user prompts of the paper's
  Appendix C.2 (Figs. 10, 11), with the line breaks of the public evaluation code.
* MedVol-R1 (:func:`medvol_content`): ``<slice k>`` before each slice image (Sec. 2.4), then the
  query and the answer schema of :func:`medlib.parsing.parse_medvol`.

:func:`conversation` wraps text (and image placeholders) into TRL's conversational format; the
trainer fills the placeholders from the ``image`` / ``images`` column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .data.mscxr import MEDGROUND_QUESTION

# ----------------------------------------------------------------------------- MedGround-R1
#: VLM-R1 / MedGround-R1 released suffix (docs/medground_r1.md#prompt).
MEDGROUND_R1_SUFFIX = (
    " First output the thinking process in <think> </think> tags and then output the final answer in "
    "<answer> </answer> tags. Output the final answer in JSON format."
)
#: Chain-of-Box instruction (paper Sec. 2.4: "whenever the model references a ROI region in the
#: image, it explicitly appends the corresponding bounding box coordinates [x1, y1, x2, y2] after
#: the region text"). The paper shows it only in its Fig. 1 and the code has none: this wording is
#: medlib's, stating exactly that rule.
CHAIN_OF_BOX_INSTRUCTION = (
    " In the thinking process, whenever you mention a region of the image, write its bounding box "
    "[x1, y1, x2, y2] right after the region text."
)
MEDGROUND_TEMPLATES = ("r1", "chain_of_box")


def medground_question(phrase: str) -> str:
    """The released code's question: ``"Please provide the bounding box coordinate of the region
    this sentence describes: <phrase>."`` (docs/medground_r1.md#prompt)."""
    p = str(phrase).strip()
    return f"{MEDGROUND_QUESTION}{p}{'' if p.endswith('.') else '.'}"


def medground_text(phrase: str, template: str = "r1") -> str:
    """User text of MedGround-R1: question + R1 suffix (``"r1"``, the released code's prompt) or
    question + R1 suffix + Chain-of-Box rule (``"chain_of_box"``, paper Sec. 2.4)."""
    if template not in MEDGROUND_TEMPLATES:
        raise ValueError(f"unknown MedGround-R1 template {template!r}; valid: {MEDGROUND_TEMPLATES}")
    text = medground_question(phrase) + MEDGROUND_R1_SUFFIX
    return text + CHAIN_OF_BOX_INSTRUCTION if template == "chain_of_box" else text


def _box_str(box: Sequence[float]) -> str:
    return json.dumps([int(round(float(v))) for v in box])


def medground_answer(box: Sequence[float], phrase: str, template: str = "r1", reasoning: str | None = None) -> str:
    """SFT target in the MedGround-R1 format (footnotes 7, 8): a think block, then
    ``<answer>{"bbox_2d": [x1, y1, x2, y2]}</answer>`` (Qwen2.5-VL's JSON, integers).

    The think text is ``reasoning`` when the dataset has one, else a one-line statement naming
    the region; with ``"chain_of_box"`` the region text is followed by its box (Sec. 2.4)."""
    if template not in MEDGROUND_TEMPLATES:
        raise ValueError(f"unknown MedGround-R1 template {template!r}; valid: {MEDGROUND_TEMPLATES}")
    b = _box_str(box)
    p = str(phrase).strip().rstrip(".")
    if reasoning:
        think = reasoning.strip()
    elif template == "chain_of_box":
        think = f"The region described is the {p} {b}."
    else:
        think = f"The region described is the {p}."
    return f"<think>{think}</think><answer>{{\"bbox_2d\": {b}}}</answer>"


# ------------------------------------------------------------------------------ MedReasoner
#: Fig. 10 "Reasoning User Prompt" (used in RL training and with-reasoning evaluation); line
#: breaks as in the public evaluation code (PRIS-CV/MedReasoner). ``{Question}`` and ``{Answer}``
#: are filled by :func:`medreasoner_text`.
MEDREASONER_REASONING = (
    "<image>\n"
    "This is a medical image localization task. Modalities include X-ray, CT, MRI, ultrasound, endoscopy, "
    "fundus, pathology, dermoscopy, and mammography.\n"
    "The question provides only implicit cues about the target region. Begin by inferring its likely focus "
    "as a clinician would.\n"
    "Your goal is to use rigorous visual reasoning to identify the anatomical or pathological region implied "
    "by the question and precisely locate it in the image.\n\n"
    "Think step by step to answer the question and accurately ground the target in the image.\n"
    "Question: {Question}\n\n"
    "Step-by-step guidelines:\n"
    "1. Interpreting the vague question: The question may not explicitly describe the target. Start by "
    "hypothesizing its implied intent using prior clinical knowledge and general context.\n"
    "2. Gathering visual evidence: Systematically inspect the image and extract relevant visual "
    "features\u2014such as shape, edge definition, brightness or density, symmetry, texture, and structural "
    "heterogeneity\u2014to validate or revise your initial hypothesis.\n"
    "3. Inferring the most likely target region: Integrate your clinical hypothesis with visual "
    "observations. Narrow down to a single region that best matches the implied intent of the question, "
    "guided by the most salient visual cues.\n"
    "4. Delivering precise localization: Express your conclusion by providing only spatial location details "
    "(bounding box and points). Omit diagnosis or classification.\n"
    "5. Resolving inconsistencies: If earlier reasoning conflicts with visible evidence, revise your "
    "interpretation and prioritize the observed visual data.\n\n"
    "Output Formats:\n"
    "Your response must adhere to a strict format, containing exactly one <think> block followed "
    "immediately by one <answer> block:\n"
    "- <think>...</think>: Use clinical reasoning to precisely explain how the observed visual features and "
    "relevant medical context were integrated to determine the target region in the image.\n"
    "- <answer>...</answer>: This section must contain a JSON object with the following keys and values:\n"
    '    "bbox": the tightest bounding box enclosing the target region.\n'
    '    "points_1": a primary key point within the bbox, on the target region.\n'
    '    "points_2": a second, distinct key point within the target region.\n\n'
    "Response Rules:\n"
    "- The entire output must be a single continuous string, containing precisely one <think> block and one "
    "<answer> block, with no additional text or formatting.\n"
    "- The <think> section must exclusively reflect confident clinical reasoning focused on precise "
    "localization, without any hedging, ambiguity, or expressions of uncertainty.\n"
    "- The <answer> block must not be empty. You must always output a valid bounding box and two key points.\n"
    "- The bounding box must be the tightest possible rectangle that completely encloses the target region, "
    "excluding any background pixels.\n"
    "- The two key points must have distinct coordinates, lie strictly within the target region, and "
    "correspond to different salient visual cues.\n\n"
    "Example Output:\n"
    "<think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
#: Fig. 11 "Direct User Prompt" (the without-reasoning baseline).
MEDREASONER_DIRECT = (
    "<image>\n"
    "Please answer {Question} with bbox and points.\n\n"
    "Output Formats:\n"
    "Your response must adhere to a strict format, containing exactly one <answer> block:\n"
    "- <answer>...</answer>: This section must contain a JSON object with the following keys and values:\n"
    '    "bbox": the tightest bounding box enclosing the target region.\n'
    '    "points_1": a primary key point within the bbox, on the target region.\n'
    '    "points_2": a second, distinct key point within the target region.\n\n'
    "Example Output:\n"
    "<answer>{Answer}</answer>"
)
#: The example answer the public code substitutes for ``{Answer}`` (single quotes, as released).
MEDREASONER_EXAMPLE_ANSWER = "{'bbox': [xmin, ymin, xmax, ymax], 'points_1': [x1, y1], 'points_2': [x2, y2]}"


def medreasoner_text(question: str, reasoning: bool = True, image_tag: bool = True) -> str:
    """MedReasoner user text, reasoning (Fig. 10) or direct (Fig. 11). The released prompts start
    with a literal ``"<image>\\n"`` line besides the real image; ``image_tag=False`` drops it."""
    tpl = MEDREASONER_REASONING if reasoning else MEDREASONER_DIRECT
    text = tpl.replace("{Question}", str(question).strip()).replace("{Answer}", MEDREASONER_EXAMPLE_ANSWER)
    return text if image_tag else text.removeprefix("<image>\n")


def medreasoner_answer(
    box: Sequence[float], points: Sequence[Sequence[float]], reasoning: str | None = None, think: bool = True
) -> str:
    """SFT target in MedReasoner's format: ``<think>..</think><answer>{"bbox": [..],
    "points_1": [x, y], "points_2": [x, y]}</answer>`` (the direct prompt: answer only)."""
    p1, p2 = ([int(round(float(v))) for v in p] for p in points)
    ans = json.dumps({"bbox": [int(round(float(v))) for v in box], "points_1": p1, "points_2": p2})
    if not think:
        return f"<answer>{ans}</answer>"
    t = reasoning.strip() if reasoning else "The target region is located from the visible features."
    return f"<think>{t}</think><answer>{ans}</answer>"


# -------------------------------------------------------------------------------- MedVol-R1
#: MedVol-R1 has no released code; the instruction restates Sec. 2.4-2.5 (key-slice index and the
#: 2D boxes on it, inside <answer>, after a <think> block) with the JSON schema medlib parses.
MEDVOL_INSTRUCTION = (
    "The images above are axial slices of a CT volume, in order; each follows its identifier <slice k>. "
    "Query: {Query}\n"
    "Find the slice where the target is most visible and every bounding box [x1, y1, x2, y2] of the target "
    "on that slice. First output the thinking process in <think> </think> tags and then output the final "
    'answer in <answer> </answer> tags as JSON: {"key_slice": k, "bbox_2d_list": [[x1, y1, x2, y2], ...]}.'
)


def slice_tag(k: int) -> str:
    """``<slice k>`` (MedVol-R1 Sec. 2.4, e.g. ``<slice 1>``)."""
    return f"<slice {int(k)}>"


def medvol_text(query: str) -> str:
    """The MedVol-R1 instruction that follows the slices."""
    return MEDVOL_INSTRUCTION.replace("{Query}", str(query).strip())


def medvol_content(query: str, n_slices: int, slice_base: int = 1) -> list[dict[str, Any]]:
    """Structured user content: ``<slice k>`` text then an image placeholder for each of the
    ``n_slices`` slices (identifiers from ``slice_base``), then :func:`medvol_text`."""
    if n_slices < 1:
        raise ValueError(f"n_slices must be >= 1, got {n_slices}")
    parts: list[dict[str, Any]] = []
    for k in range(slice_base, slice_base + n_slices):
        parts += [{"type": "text", "text": slice_tag(k)}, {"type": "image"}]
    parts.append({"type": "text", "text": "\n" + medvol_text(query)})
    return parts


def medvol_answer(key_slice: int, boxes: Sequence[Sequence[float]], reasoning: str | None = None) -> str:
    """SFT target: ``<think>..</think><answer>{"key_slice": k, "bbox_2d_list": [[..], ..]}</answer>``
    (schema of :func:`medlib.parsing.parse_medvol`)."""
    ans = json.dumps({"key_slice": int(key_slice),
                      "bbox_2d_list": [[int(round(float(v))) for v in b] for b in boxes]})
    t = reasoning.strip() if reasoning else f"The target is most visible on {slice_tag(key_slice)}."
    return f"<think>{t}</think><answer>{ans}</answer>"


# ------------------------------------------------------------------------ conversational rows
def conversation(text: str | list[dict[str, Any]], n_images: int = 1) -> list[dict[str, Any]]:
    """TRL conversational ``prompt``: one user message whose content is ``n_images`` image
    placeholders then ``text`` (or the structured ``text`` list as given). TRL fills the
    placeholders from the row's ``image`` / ``images`` column."""
    if isinstance(text, list):
        n = sum(1 for p in text if p.get("type") == "image")
        if n != n_images:
            raise ValueError(f"content holds {n} image placeholders, expected {n_images}")
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}]


def assistant(text: str) -> list[dict[str, Any]]:
    """TRL conversational ``completion``: one assistant message."""
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def corpus_texts() -> list[str]:
    """Every template with example fillings: a tokenizer trained on these tokenises the prompts
    and answers of all three papers compactly (:func:`medlib.models.build_tiny_qwen25vl`)."""
    ph = "a bright opacity in the right lower lung"
    box, pts = [12, 34, 56, 78], [[20, 40], [30, 50]]
    return [
        medground_text(ph, "r1"),
        medground_text(ph, "chain_of_box"),
        medground_answer(box, ph, "r1"),
        medground_answer(box, ph, "chain_of_box"),
        medreasoner_text(ph, True),
        medreasoner_text(ph, False),
        medreasoner_answer(box, pts),
        medreasoner_answer(box, pts, think=False),
        "".join(p.get("text", "") for p in medvol_content(ph, 3)),
        medvol_answer(2, [box, box]),
    ]
