"""Shared plumbing for the TRL reward callables: the base class, dataset columns, ground truth."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..parsing import BOX_NUM_RE, completion_text


class RewardInputError(ValueError):
    """A reward was called without a dataset column it needs; the message names both."""


_MEMOS: list[StepMemo] = []


def clear_step_memos() -> None:
    """Forget every step memo (benchmarks time each repeat as a fresh GRPO step)."""
    for m in _MEMOS:
        m.clear()


def _snapshot(refs: tuple) -> tuple:
    """The objects and, for lists, their items: a list changed in place no longer matches."""
    return tuple((r, tuple(r)) if isinstance(r, list) else (r, None) for r in refs)


def _same(snap: tuple, refs: tuple) -> bool:
    if len(snap) != len(refs):
        return False
    for (obj, items), r in zip(snap, refs):
        if obj is not r:
            return False
        if items is not None and (len(items) != len(r) or not all(map(operator.is_, items, r))):
            return False
    return True


class StepMemo:
    """A few-entry memo for work shared by the reward functions of one GRPO step.

    TRL calls every reward function of a step with the *same* ``completions`` list and the
    same column lists, so a result is keyed on the identity of those objects and of their
    items (held, so their ids cannot be reused; a list whose items were replaced or appended
    does not match) plus a hashable ``key`` of options.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self._entries: list[tuple[tuple, Any, Any]] = []
        _MEMOS.append(self)

    def get(self, refs: tuple, key: Any, compute: Any) -> Any:
        for snap, k, v in self._entries:
            if k == key and _same(snap, refs):
                return v
        value = compute()
        self._entries.insert(0, (_snapshot(refs), key, value))
        del self._entries[self.size :]
        return value

    def clear(self) -> None:
        self._entries.clear()


_TEXTS = StepMemo()


def completion_texts(completions: Sequence[Any]) -> list[str]:
    """Plain texts of a batch of completions (memoised per batch object)."""
    if not isinstance(completions, list):
        completions = list(completions)
    return _TEXTS.get((completions,), None, lambda: [completion_text(c) for c in completions])


class Reward:
    """A picklable TRL reward: ``reward(prompts, completions, **columns) -> list[float | None]``.

    Subclasses implement :meth:`score` on plain completion strings. ``__name__`` is the name
    TRL logs (``rewards/<name>/mean``).
    """

    #: dataset columns (name -> description) the reward reads; documented in registry.py
    columns: dict[str, str] = {}

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, prompts: Any = None, completions: Sequence[Any] | None = None, **kwargs: Any) -> list:
        if completions is None:
            raise RewardInputError(f"{self.__name__}: called without completions")
        return self.score(completion_texts(completions), **kwargs)

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if k != "__name__" and not k.startswith("_")
        )
        return f"{type(self).__name__}({self.__name__!r}{', ' if opts else ''}{opts})"


def column(kwargs: dict, name: str, n: int, reward: str, alternatives: tuple[str, ...] = ()) -> list:
    """Column ``name`` (or the first present alternative) as a list of ``n`` rows.

    Raises :class:`RewardInputError` naming the reward and the column when it is missing or
    has the wrong length: that is a dataset/config bug, not a bad completion.
    """
    for key in (name, *alternatives):
        if key in kwargs and kwargs[key] is not None:
            v = kwargs[key]
            rows = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] * n
            if len(rows) != n:
                raise RewardInputError(f"{reward}: column {key!r} has {len(rows)} rows for {n} completions")
            return rows
    have = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric"))
    names = " or ".join(repr(k) for k in (name, *alternatives))
    raise RewardInputError(f"{reward}: needs the dataset column {names}; the batch has columns {have}")


def optional_column(kwargs: dict, name: str, n: int) -> list:
    """Column ``name`` as ``n`` rows, or ``n`` Nones when absent."""
    v = kwargs.get(name)
    if v is None:
        return [None] * n
    rows = list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v] * n
    return rows if len(rows) == n else [None] * n


def _finite_floats(v: Any, n: int) -> list[float] | None:
    try:
        vals = [float(x) for x in v]
    except (TypeError, ValueError, OverflowError):
        return None
    if len(vals) != n or not all(map(math.isfinite, vals)):
        return None
    return vals


def _flat(v: Any) -> Any:
    """A (nested) list/tuple/array as a flat sequence; None when ragged or not a sequence."""
    if isinstance(v, np.ndarray):
        return v.reshape(-1) if v.dtype != object else _flat(v.tolist())
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (list, tuple, np.ndarray)) for x in v):
            out = []
            for x in v:
                fx = _flat(x)
                if fx is None:
                    return None
                out.extend(fx)
            return out
        return v
    return None


def as_box(v: Any) -> np.ndarray | None:
    """A ground-truth xyxy box from a dataset cell: a list/tuple/array of 4 numbers, a JSON
    string of one, a dict with ``bbox_2d``/``bbox``, or a single-box list ``[[..]]``.
    None when unusable (the reward then returns None for that row)."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except Exception:  # noqa: BLE001 - JSONDecodeError, RecursionError
            m = BOX_NUM_RE.search(v)
            v = [m.group(i) for i in range(1, 5)] if m else None
            if v is None:
                return None
    if isinstance(v, dict):
        v = v.get("bbox_2d", v.get("bbox"))
    flat = _flat(v)
    vals = None if flat is None else _finite_floats(flat, 4)
    return None if vals is None else np.array(vals, dtype=np.float64)


def as_points(v: Any) -> np.ndarray | None:
    """Two ground-truth points ``[[x, y], [x, y]]`` (list, array, JSON string or a dict with
    ``point_2d``/``points``) as a (2, 2) array; None when unusable."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except Exception:  # noqa: BLE001 - JSONDecodeError, RecursionError
            return None
    if isinstance(v, dict):
        v = v.get("point_2d", v.get("points"))
    flat = _flat(v)
    vals = None if flat is None else _finite_floats(flat, 4)
    return None if vals is None else np.array(vals, dtype=np.float64).reshape(2, 2)


def _column_array(rows: list, shape: tuple[int, ...], convert: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a GT column as one float array of ``(n, *shape)`` and an (n,) usable mask: one
    numpy conversion when the column is regular, else ``convert`` row by row."""
    n = len(rows)
    try:
        a = np.asarray(rows, dtype=np.float64)
        if a.shape == (n, *shape):
            ok = np.isfinite(a.reshape(n, -1)).all(axis=1)
            return np.where(ok.reshape((n,) + (1,) * len(shape)), a, 0.0), ok
    except (TypeError, ValueError, OverflowError):
        pass
    out = np.zeros((n, *shape))
    ok = np.zeros(n, dtype=bool)
    for i, v in enumerate(rows):
        b = convert(v)
        if b is not None:
            out[i], ok[i] = b, True
    return out, ok


def gt_boxes(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """A column of GT boxes as (n, 4) floats (0 where unusable) and the (n,) usable mask."""
    return _column_array(rows, (4,), as_box)


def gt_points(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """A column of GT point pairs as (n, 2, 2) floats and the (n,) usable mask."""
    return _column_array(rows, (2, 2), as_points)


def as_size(v: Any) -> tuple[float, float] | None:
    """``(width, height)`` from a cell (pair of positive numbers), or None."""
    if v is None or isinstance(v, str):
        return None
    try:
        vals = _finite_floats(list(v), 2)
    except TypeError:
        return None
    if vals is None or vals[0] <= 0 or vals[1] <= 0:
        return None
    return vals[0], vals[1]


def image_size_of(img: Any) -> tuple[float, float] | None:
    """``(width, height)`` of a PIL image or an HxW[xC] array; None otherwise."""
    if img is None:
        return None
    if hasattr(img, "size") and isinstance(getattr(img, "size", None), tuple):
        w, h = img.size
        return float(w), float(h)
    shape = getattr(img, "shape", None)
    if shape is not None and len(shape) >= 2:
        return float(shape[1]), float(shape[0])
    return None


def first_image(cell: Any) -> Any:
    """The image of an ``image`` cell, or the first of an ``images`` list cell."""
    if isinstance(cell, (list, tuple)):
        return cell[0] if cell else None
    return cell
