"""Adversarial completions for the parsers' linear-time checks: the shapes that make a
backtracking regex quadratic (long digit runs after ``[``, runs of spaces between optional
parts, repeated openers, nested brackets, unterminated tags and fences).

``adversarial_completions(n)`` -> ``{shape: text}``, each text about ``n`` characters, used by
the fast-tier fuzz test (small ``n``, comparing ``n`` with ``4 n``), by
``benchmarks/bench_parsers_adversarial.py`` (1 MB and 10 MB) and by the fault probes.
"""

from __future__ import annotations

from collections.abc import Callable

from .parsing import (
    medground_format_checks,
    parse_chain_of_box,
    parse_medground,
    parse_medreasoner,
    parse_medreasoner_base,
    parse_medvol,
    qwen_json_boxes,
)


def _fill(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


#: payload makers: ``n`` -> text; each is also tried inside think and answer blocks
PAYLOADS: dict[str, Callable[[int], str]] = {
    "slice_digits": lambda n: "<slice 3> [" + "1" * n,
    "box_digits": lambda n: "[1, 2, 3, " + "7" * n,
    "float_digits": lambda n: "[1." + "5" * n,
    "exponent_digits": lambda n: "[1e" + "5" * n,
    "bbox_key_digits": lambda n: '{"bbox_2d": [' + "9" * n,
    "repeated_open_bracket": lambda n: _fill("[", n),
    "repeated_open_box": lambda n: _fill("[1, ", n),
    "repeated_slice_tag": lambda n: _fill("<slice ", n),
    "slice_spaces": lambda n: "<slice" + " " * n,
    "slice_separator_spaces": lambda n: "<slice " + " " * n + ":" + " " * 4,
    "nested_brackets": lambda n: "[" * (n // 2) + "1, 2, 3, 4" + "]" * (n // 2 - 1),
    "box_spaces": lambda n: "[1," + " " * n,
    "huge_whitespace": lambda n: " " * n,
    "unterminated_fence": lambda n: "```json" + " " * n,
    "repeated_think_close": lambda n: _fill("</think>  ", n),
    "repeated_open_tags": lambda n: _fill("<think><answer>", n),
    "repeated_braces": lambda n: _fill("{[1, 2, 3", n),
}


def adversarial_completions(n: int) -> dict[str, str]:
    """``{shape: completion}`` for every payload, bare and framed as
    ``<think>P</think><answer>P</answer>`` (and with an unterminated answer block)."""
    out: dict[str, str] = {}
    for name, make in PAYLOADS.items():
        half = make(max(1, n // 2))
        out[f"{name}/bare"] = make(n)
        out[f"{name}/framed"] = f"<think>{half}</think><answer>{half}</answer>"
        out[f"{name}/open_answer"] = f"<think></think><answer>{make(n)}"
    return out


def _lenient_medground(text: str) -> object:
    return parse_medground(text).pred_box(lenient=True)


#: every text parser of :mod:`medlib.parsing`, by name
PARSERS: dict[str, Callable[[str], object]] = {
    "parse_medground": parse_medground,
    "parse_medground+lenient": _lenient_medground,
    "medground_format_checks": medground_format_checks,
    "qwen_json_boxes": qwen_json_boxes,
    "parse_chain_of_box": parse_chain_of_box,
    "parse_medreasoner": parse_medreasoner,
    "parse_medreasoner_base": parse_medreasoner_base,
    "parse_medvol": parse_medvol,
}


def non_model_rewards() -> dict[str, Callable[[str], object]]:
    """Every reward that needs no model (semantic scorer or segmenter), as ``text -> rewards``
    of a one-completion batch with plausible ground-truth columns."""
    import numpy as np

    from .rewards.medground import MedGroundFormat, MedGroundIoU, MedGroundSpatial
    from .rewards.medreasoner import TERMS, MedReasonerReward
    from .rewards.medvol import MedVolAxial, MedVolFormat, MedVolSpatial

    mask = np.zeros((12, 24, 24), dtype=bool)
    mask[3:8, 5:15, 6:12] = True
    cols2d = dict(solution=[[10, 10, 60, 40]], points=[[[20, 20], [40, 30]]], model_size=[(224, 224)])
    cols3d = dict(mask=[mask], slice_indices=[list(range(12))], model_size=[(24, 24)])
    rewards: dict[str, Callable[..., object]] = {
        "medground.format": MedGroundFormat(),
        "medground.format_bare": MedGroundFormat(braces=False),
        "medground.spatial": MedGroundSpatial(),
        "medground.iou_lenient": MedGroundIoU(lenient=True),
        "medvol.format": MedVolFormat(),
        "medvol.axial": MedVolAxial(),
        "medvol.spatial": MedVolSpatial(),
    }
    for mode, terms in TERMS.items():
        for term in terms:
            rewards[f"medreasoner.{mode}.{term}"] = MedReasonerReward(term, mode)
    out: dict[str, Callable[[str], object]] = {}
    for name, fn in rewards.items():
        cols = cols3d if name.startswith("medvol") else cols2d
        out[name] = lambda text, fn=fn, cols=cols: fn(None, [text], **cols)
    return out
