"""Parsers for the answer formats of the three papers. None of them raises on any string.

Each parser returns a small frozen dataclass with the parsed fields (or None) and, when
something is missing, a short ``reason``. Parsers are cached on the completion string, so the
several reward functions of one GRPO step parse each completion once.

Formats
-------
* MedGround-R1 (:func:`parse_medground`): ``<think>..</think><answer>..</answer>``; the box is
  the first match of the paper's integer regex (footnote 8) ``\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)\\]``
  inside the first answer block. Qwen2.5-VL's native ``{"bbox_2d": [...]}`` JSON (a list of
  them, floats, inside ```json fences) is parsed into ``json_boxes`` for lenient use.
* Chain-of-Box (:func:`parse_chain_of_box`): the (region phrase, box) pairs of the think block.
* MedReasoner (:func:`parse_medreasoner`): the answer is JSON with ``bbox``, ``points_1``,
  ``points_2``; single quotes become double quotes before parsing, as the public code does.
* MedVol-R1 (:func:`parse_medvol`), schema defined here::

      <answer>{"key_slice": 23, "bbox_2d_list": [[x1, y1, x2, y2], ...]}</answer>

  ``key_slice`` is the identifier of the ``<slice k>`` the model chose (an integer, an
  integral number, a numeric string, or the string ``"<slice 23>"``); ``bbox_2d_list`` is a
  list of xyxy boxes (4 finite numbers each, or ``{"bbox_2d": [...]}`` objects) on that slice.
  The tag style ``<answer><slice 23> [[x1, y1, x2, y2], ...]</answer>`` is accepted too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

Box = tuple[float, float, float, float]
Points = tuple[tuple[float, float], tuple[float, float]]

#: MedGround-R1 footnote 8 (and VLM-R1's accuracy reward): an integer box. The paper's
#: ``\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]`` written with possessive quantifiers: the same
#: matches, and no backtracking, so a long digit or whitespace run costs linear time.
BOX_INT_RE = re.compile(r"\[(\d++),\s*+(\d++),\s*+(\d++),\s*+(\d++)\]")
#: MedGround-R1 footnote 7 (VLM-R1's format reward), matched with ``re.fullmatch(.., re.DOTALL)``.
#: :func:`medground_format_ok` implements the same language in linear time.
MEDGROUND_FORMAT_PATTERN = r"<think>.*?</think>\s*<answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>"
_BOX_INT_BARE = re.compile(r"\[\d++,\s*+\d++,\s*+\d++,\s*+\d++\]")
#: A signed decimal or float number. Every part is possessive and no two adjacent parts can
#: both match a digit (``\d+(\.\d*)?``, not ``\d+\.?\d*``, whose two digit runs can split a long
#: digit run in quadratically many ways), so a pattern built from it never backtracks.
_NUM = r"[-+]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][-+]?+\d++)?+"
#: A box of any four numbers (floats, signs) for lenient and Chain-of-Box parsing.
BOX_NUM_RE = re.compile(rf"\[\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\]")
_BBOX2D_RE = re.compile(
    rf"[\"']bbox(?:_2d)?+[\"']\s*+:\s*+\[\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+,\s*+({_NUM})\s*+\]"
)
#: ``<slice 23>``, ``<slice_23>``, ``<Slice: 23>``: one optional separator between two
#: whitespace runs written as ``\s*([_:#]\s*)?`` (``\s*[_:#]?\s*`` splits a long run of spaces in
#: quadratically many ways).
_SLICE_TAG_RE = re.compile(r"<\s*+slice\s*+(?:[_:#]\s*+)?+(-?+\d++)\s*+>", re.IGNORECASE)
_FENCE_HEAD_RE = re.compile(r"[A-Za-z0-9_-]*+\s*+")
_THINK_THEN_ANSWER_RE = re.compile(r"</think>\s*+<answer>")
_PHRASE_SPLIT_RE = re.compile(r"[.;:!?\n]")
_CACHE = 4096


# ------------------------------------------------------------------------ helpers
def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a plain string, or a conversational completion
    ``[{"role": "assistant", "content": ...}]`` (content a string or a list of
    ``{"type": "text", "text": ...}`` parts; the last assistant message is used).
    Anything else gives ``""``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        msgs = [m for m in completion if isinstance(m, dict)]
        if not msgs:
            return "".join(m for m in completion if isinstance(m, str))
        assistant = [m for m in msgs if m.get("role", "assistant") == "assistant"]
        return _content_text((assistant or msgs)[-1].get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)
    return ""


_TAGS = {t: (f"<{t}>", f"</{t}>") for t in ("think", "answer")}


def first_block(text: str, tag: str) -> str | None:
    """Content of the first ``<tag>(.*?)</tag>`` (same result as ``re.search`` with DOTALL),
    found with two ``str.find`` calls. None when there is no complete block."""
    open_, close = _TAGS.get(tag) or (f"<{tag}>", f"</{tag}>")
    i = text.find(open_)
    if i < 0:
        return None
    j = text.find(close, i + len(open_))
    return None if j < 0 else text[i + len(open_) : j]


def _finite4(a: Any, b: Any, c: Any, d: Any) -> Box | None:
    """Four numbers (or numeric strings) as finite floats; None when one is not."""
    try:
        t = (float(a), float(b), float(c), float(d))
    except (OverflowError, ValueError, TypeError):  # integers beyond float range, junk
        return None
    fin = math.isfinite
    return t if fin(t[0]) and fin(t[1]) and fin(t[2]) and fin(t[3]) else None


def _box_or_none(v: Any) -> Box | None:
    """Four JSON numbers (bools count, as in Python) as finite floats; else None."""
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        return None
    n = (int, float)
    if isinstance(v[0], n) and isinstance(v[1], n) and isinstance(v[2], n) and isinstance(v[3], n):
        return _finite4(*v)
    return None


def _regex_box(m: re.Match) -> Box | None:
    return _finite4(*m.groups())


_DECODER = json.JSONDecoder()


def _loads(s: str) -> Any:
    """``json.loads`` that returns a sentinel instead of raising (deep nesting included)."""
    try:
        return _DECODER.decode(s)
    except Exception:  # noqa: BLE001 - JSONDecodeError, RecursionError, ValueError (int digits)
        return _FAIL


_FAIL = object()


def _unfence(s: str) -> str:
    """The body of the first fenced block, as ``re.search(r"```[A-Za-z0-9_-]*\\s*\\n?(.*?)```", s,
    re.DOTALL).group(1)`` (``s`` itself when there is none) in linear time: that regex rescans
    the rest of ``s`` once per whitespace character after an unterminated fence."""
    i = s.find("```")
    if i < 0:
        return s
    head = _FENCE_HEAD_RE.match(s, i + 3)  # language name, then whitespace; never None
    p = head.end() if head else i + 3
    j = s.find("```", p)
    return s if j < 0 else s[p:j]


# ------------------------------------------------------------------ MedGround-R1
def medground_format_ok(text: str, braces: bool = True) -> bool:
    """Whether ``text`` fully matches MedGround-R1's format regex; see :func:`medground_format_checks`."""
    return medground_format_checks(text)[0 if braces else 1]


def medground_format_checks(text: str) -> tuple[bool, bool]:
    """Whether ``text`` fully matches MedGround-R1's format regex (footnote 7, as in VLM-R1):
    ``<think>.*?</think>\\s*<answer>.*?\\{.*\\[\\d+,\\s*\\d+,\\s*\\d+,\\s*\\d+\\].*\\}.*?</answer>``.

    Returns ``(with_braces, bare)``: the linear-time equivalent of
    ``re.fullmatch(MEDGROUND_FORMAT_PATTERN, text, re.DOTALL)`` (tested against it), and the
    same without the ``\\{ .. \\}`` around the box (a bare ``<answer>[x1, y1, x2, y2]</answer>``
    then passes).
    """
    if not isinstance(text, str) or not text.startswith("<think>") or not text.endswith("</answer>"):
        return False, False
    end = len(text) - len("</answer>")
    m = _THINK_THEN_ANSWER_RE.search(text, len("<think>"))  # the earliest leaves the most room
    if m is None:
        return False, False
    start = m.end()
    if start > end:
        return False, False
    first = _BOX_INT_BARE.search(text, start, end)
    if first is None:
        return False, False
    p = text.find("{", start, end)
    m = None if p < 0 else (first if first.start() > p else _BOX_INT_BARE.search(text, p + 1, end))
    return m is not None and text.rfind("}", m.end(), end) >= 0, True


@dataclass(frozen=True)
class GroundingAnswer:
    """A parsed MedGround-R1 completion."""

    think: str | None  # content of the first think block
    answer: str | None  # stripped content of the first answer block
    box: Box | None  # first integer box (footnote 8) in the answer
    boxes: tuple[Box, ...]  # every integer box in the answer
    format_ok: bool  # footnote 7, with braces
    format_ok_bare: bool  # footnote 7 without the braces
    reason: str | None = None  # why ``box`` is None
    text: str = field(default="", repr=False)

    @cached_property
    def json_boxes(self) -> tuple[Box, ...]:
        """Qwen-native JSON boxes (floats allowed) in the answer, or anywhere when there is no
        answer block (computed on first use)."""
        return qwen_json_boxes(self.answer if self.answer is not None else self.text)

    def pred_box(self, lenient: bool = False) -> Box | None:
        """The predicted box: the paper's integer box; ``lenient`` falls back to the first
        Qwen-native JSON box (floats, no answer tags needed)."""
        if self.box is not None or not lenient:
            return self.box
        return self.json_boxes[0] if self.json_boxes else None


def _collect_json_boxes(obj: Any, out: list[Box], depth: int = 0) -> None:
    if depth > 6 or len(out) >= 64:
        return
    if isinstance(obj, dict):
        for key in ("bbox_2d", "bbox", "box"):
            b = _box_or_none(obj.get(key))
            if b is not None:
                out.append(b)
                return
    elif isinstance(obj, list):
        b = _box_or_none(obj)
        if b is not None:
            out.append(b)
            return
        for x in obj[:64]:
            _collect_json_boxes(x, out, depth + 1)


def qwen_json_boxes(text: str) -> tuple[Box, ...]:
    """Boxes of Qwen2.5-VL's native grounding JSON: ``{"bbox_2d": [..]}``, a list of them, or
    bare lists, optionally inside ```json fences; falls back to a ``"bbox_2d": [..]`` regex
    when the JSON does not parse. Non-finite numbers are dropped."""
    body = _unfence(text).strip()
    out: list[Box] = []
    obj = _loads(body)
    if obj is _FAIL and "'" in body:  # quote repair; without a quote the same text would fail again
        obj = _loads(body.replace("'", '"'))
    if obj is not _FAIL:
        _collect_json_boxes(obj, out)
    if not out:
        for m in _BBOX2D_RE.finditer(body):
            b = _regex_box(m)
            if b is not None:
                out.append(b)
    return tuple(out)


@lru_cache(maxsize=_CACHE)
def parse_medground(text: str) -> GroundingAnswer:
    """Parse a MedGround-R1 completion (see :class:`GroundingAnswer`)."""
    if not isinstance(text, str):
        text = ""
    think = first_block(text, "think")
    raw = first_block(text, "answer")
    answer = None if raw is None else raw.strip()
    boxes: list[Box] = []
    reason = None
    if answer is None:
        reason = "no <answer>...</answer> block"
    else:
        for m in BOX_INT_RE.finditer(answer):
            b = _regex_box(m)
            if b is not None:
                boxes.append(b)
            elif reason is None:
                reason = "box coordinate does not fit a float"
            if len(boxes) >= 64:
                break
        if not boxes and reason is None:
            reason = "no integer box [x1, y1, x2, y2] in the answer"
    fmt = medground_format_checks(text)
    return GroundingAnswer(
        think=think,
        answer=answer,
        box=boxes[0] if boxes else None,
        boxes=tuple(boxes),
        format_ok=fmt[0],
        format_ok_bare=fmt[1],
        reason=None if boxes else reason,
        text=text,
    )


# ------------------------------------------------------------------- Chain-of-Box
@dataclass(frozen=True)
class ChainOfBox:
    """The (region phrase, box) pairs a Chain-of-Box think block mentions (MedGround-R1 Sec. 2.4)."""

    steps: tuple[tuple[str, Box], ...]
    reason: str | None = None


@lru_cache(maxsize=_CACHE)
def parse_chain_of_box(text: str) -> ChainOfBox:
    """Pairs ``(phrase, [x1, y1, x2, y2])`` from the think block: each box that follows a
    region mention; the phrase is the text between the previous box or sentence break and the
    box. Numbers may be floats; boxes with non-finite numbers are skipped."""
    if not isinstance(text, str):
        text = ""
    think = first_block(text, "think")
    if think is None:
        return ChainOfBox((), "no <think>...</think> block")
    steps: list[tuple[str, Box]] = []
    prev = 0
    for m in BOX_NUM_RE.finditer(think):
        b = _regex_box(m)
        seg = _PHRASE_SPLIT_RE.split(think[prev : m.start()])[-1]
        phrase = seg.strip(" \t,()-:").strip()
        prev = m.end()
        if b is None:
            continue
        steps.append((phrase, b))
        if len(steps) >= 64:
            break
    return ChainOfBox(tuple(steps), None if steps else "no [x1, y1, x2, y2] box in the think block")


# -------------------------------------------------------------------- MedReasoner
_REASONER_KEYS = ("bbox", "points_1", "points_2")


_NUMBER_TYPES = (int, float)


def _typed_box(v: Any) -> bool:
    """The public code's check: a list of 4 ``int``/``float`` (unrolled: this is a hot path)."""
    return (
        isinstance(v, list)
        and len(v) == 4
        and isinstance(v[0], _NUMBER_TYPES)
        and isinstance(v[1], _NUMBER_TYPES)
        and isinstance(v[2], _NUMBER_TYPES)
        and isinstance(v[3], _NUMBER_TYPES)
    )


def _typed_point(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], _NUMBER_TYPES)
        and isinstance(v[1], _NUMBER_TYPES)
    )


@dataclass(frozen=True)
class ReasonerAnswer:
    """A parsed MedReasoner completion, with the checks its public reward code makes.

    ``bbox_typed`` / ``points_typed`` are the public code's type checks (a list of 4 / 2
    ``int`` or ``float``; JSON ``true`` counts, as in Python). ``box`` / ``points`` are the
    same values as finite floats, None when malformed or not representable as finite floats.
    The Seg-Zero-like "base" mode reads :func:`parse_medreasoner_base` instead.
    """

    think: str | None
    answer: str | None
    json_ok: bool
    is_dict: bool
    has_keys: bool
    bbox_typed: bool
    points_typed: bool
    box: Box | None
    points: Points | None
    reason: str | None = None

    @property
    def think_score(self) -> float:
        """Public code: 0 no think block, 0.2 empty, 1 otherwise."""
        if self.think is None:
            return 0.0
        return 0.2 if not self.think.strip() else 1.0

    @property
    def answer_score(self) -> float:
        """Public code: 0 no block, 0.2 not a JSON object, 0.4 missing keys or box and points
        both malformed, 0.6 one of them malformed, 1 otherwise."""
        if self.answer is None:
            return 0.0
        if not (self.json_ok and self.is_dict):
            return 0.2
        if not self.has_keys:
            return 0.4
        if not self.bbox_typed and not self.points_typed:
            return 0.4
        return 0.6 if not (self.bbox_typed and self.points_typed) else 1.0


def _base_format_ok(text: str) -> bool:
    """Linear-time ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.DOTALL)``."""
    if not text.startswith("<think>") or not text.endswith("</answer>"):
        return False
    m = _THINK_THEN_ANSWER_RE.search(text, len("<think>"))
    return m is not None and m.end() <= len(text) - len("</answer>")


def _first_brace_object(text: str) -> str | None:
    """Leftmost match of ``re.search(r"{[^}]+}", text)`` in linear time."""
    i = text.find("{")
    while i >= 0:
        if i + 1 < len(text) and text[i + 1] != "}":
            j = text.find("}", i + 1)
            return None if j < 0 else text[i : j + 1]
        i = text.find("{", i + 1)
    return None


@lru_cache(maxsize=_CACHE)
def parse_medreasoner(text: str) -> ReasonerAnswer:
    """Parse a MedReasoner completion (see :class:`ReasonerAnswer`)."""
    if not isinstance(text, str):
        text = ""
    think = first_block(text, "think")
    answer = first_block(text, "answer")
    obj: Any = _FAIL
    if answer is not None:
        obj = _loads(answer.strip().replace("'", '"'))
    json_ok = obj is not _FAIL
    is_dict = isinstance(obj, dict)
    has_keys = is_dict and "bbox" in obj and "points_1" in obj and "points_2" in obj
    bbox_typed = is_dict and _typed_box(obj.get("bbox"))
    points_typed = is_dict and _typed_point(obj.get("points_1")) and _typed_point(obj.get("points_2"))
    box = _finite4(*obj["bbox"]) if bbox_typed else None
    points = None
    if points_typed:
        p = _finite4(*obj["points_1"], *obj["points_2"])
        if p is not None:
            points = ((p[0], p[1]), (p[2], p[3]))
    if answer is None:
        reason = "no <answer>...</answer> block"
    elif not json_ok:
        reason = "answer is not JSON"
    elif not is_dict:
        reason = "answer JSON is not an object"
    elif box is None or points is None:
        reason = "bbox / points_1 / points_2 missing, malformed or non-finite"
    else:
        reason = None
    return ReasonerAnswer(
        think=think,
        answer=answer,
        json_ok=json_ok,
        is_dict=is_dict,
        has_keys=has_keys,
        bbox_typed=bbox_typed,
        points_typed=points_typed,
        box=box,
        points=points,
        reason=reason,
    )


@dataclass(frozen=True)
class BaseAnswer:
    """What MedReasoner's Seg-Zero-like "base" rewards (``med_base.py``) read."""

    think_ok: bool  # fullmatch <think>.*?</think>\s*<answer>.*?</answer>
    json: Any  # first "{[^}]+}" of the whole text, parsed without quote repair; None if none parses


@lru_cache(maxsize=_CACHE)
def parse_medreasoner_base(text: str) -> BaseAnswer:
    """Parse a completion as MedReasoner's base mode does (see :class:`BaseAnswer`)."""
    if not isinstance(text, str):
        text = ""
    brace = _first_brace_object(text)
    obj = None if brace is None else _loads(brace)
    return BaseAnswer(_base_format_ok(text), None if obj is _FAIL else obj)


# ---------------------------------------------------------------------- MedVol-R1
@dataclass(frozen=True)
class VolumeAnswer:
    """A parsed MedVol-R1 completion: the key-slice identifier and the boxes on it."""

    think: str | None
    answer: str | None
    key_slice: int | None
    boxes: tuple[Box, ...] | None  # None when the box list is missing or malformed
    format_ok: bool  # think block, then an answer block that parses to slice + box list
    reason: str | None = None


def _slice_id(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v.is_integer() and abs(v) < 2**53 else None
    if isinstance(v, str):
        s = v.strip()
        m = _SLICE_TAG_RE.fullmatch(s)
        s = m.group(1) if m else s
        if re.fullmatch(r"-?\d{1,18}", s):
            return int(s)
    return None


def _box_list(v: Any) -> tuple[Box, ...] | None:
    if not isinstance(v, list) or len(v) > 256:
        return None
    out = []
    for item in v:
        if isinstance(item, dict):
            item = item.get("bbox_2d", item.get("bbox"))
        b = _box_or_none(item)
        if b is None:
            return None
        out.append(b)
    return tuple(out)


@lru_cache(maxsize=_CACHE)
def parse_medvol(text: str) -> VolumeAnswer:
    """Parse a MedVol-R1 completion (schema in the module docstring)."""
    if not isinstance(text, str):
        text = ""
    think = first_block(text, "think")
    raw = first_block(text, "answer")
    answer = None if raw is None else raw.strip()
    if answer is None:
        return VolumeAnswer(think, None, None, None, False, "no <answer>...</answer> block")
    key: int | None = None
    boxes: tuple[Box, ...] | None = None
    tag = _SLICE_TAG_RE.search(answer) if "<" in answer else None
    body = _unfence(_SLICE_TAG_RE.sub(" ", answer) if tag is not None else answer).strip()
    obj = _loads(body)
    if obj is _FAIL and "'" in body:  # quote repair; without a quote the same text would fail again
        obj = _loads(body.replace("'", '"'))
    if isinstance(obj, dict):
        key = _slice_id(obj.get("key_slice"))
        if "bbox_2d_list" in obj:
            boxes = _box_list(obj["bbox_2d_list"])
    elif isinstance(obj, list):
        boxes = _box_list(obj)
        if boxes is None and len(obj) == 4:  # a single bare box
            b = _box_or_none(obj)
            boxes = None if b is None else (b,)
    if key is None and tag is not None:
        key = _slice_id(tag.group(1))
    if boxes is None and obj is _FAIL and tag is not None:  # "<slice k> [a, b, c, d] [..]" free text
        found = [_regex_box(m) for m in BOX_NUM_RE.finditer(body)]
        if found and None not in found:
            boxes = tuple(found)  # type: ignore[arg-type]
    if key is None:
        reason = "no key slice (key_slice or <slice k>) in the answer"
    elif boxes is None:
        reason = "no well-formed bbox_2d_list in the answer"
    elif think is None or text.find("<think>") > text.find("<answer>"):
        reason = "no <think>...</think> block before the answer"
    else:
        reason = None
    return VolumeAnswer(think, answer, key, boxes, reason is None, reason)


def clear_parse_caches() -> None:
    """Forget cached parses (benchmarks use it to time cold batches)."""
    for f in (parse_medground, parse_chain_of_box, parse_medreasoner, parse_medreasoner_base, parse_medvol):
        f.cache_clear()
