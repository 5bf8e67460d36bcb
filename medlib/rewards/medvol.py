"""MedVol-R1 rewards (Wang et al. 2026, Sec. 2.5), all weights 1 in the paper.

* ``medvol_format`` R_f in {0, 1}: a think block, then an answer block that parses into the
  key-slice identifier and ``bbox_2d_list`` (schema in :mod:`medlib.parsing`).
* ``medvol_axial`` R_a = F_k / max_t F_t: ground-truth foreground area on the chosen slice over
  the largest one, the maximum taken over the slices the model was shown.
* ``medvol_spatial`` R_s = sum of Hungarian-matched IoUs (cost 1 - IoU) / max(N, N*), against
  the connected-component boxes of the GT mask on the chosen slice (0 when both are empty).
* ``medvol_cross_slice`` R_c = Dice of the volume a :class:`~medlib.segment.base.Segmenter`
  propagates from the matched predicted boxes and the GT, on N(k) = {t : |t - k| <= delta}
  (delta = 5, the paper's best), k and t counted in the slices the model was shown (window
  ``sampled``, default; ``native`` counts the volume's own z instead, see :func:`window_bounds`).

Frames. The answer's slice identifier ``k`` names the ``<slice k>`` shown in the prompt:
``z = slice_indices[k - slice_base]`` (column ``slice_indices``; identity when absent;
``slice_base`` 1 as in the paper's ``<slice 1>``). Boxes are in the frame of the slice images
the model saw, (width, height) in column ``model_size`` (default: the mask's in-plane size),
and are scaled to the mask's pixels. A key slice outside the volume gives 0 for R_a, R_s, R_c.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import Any

import numpy as np

from ..geometry import box_iou_pairs, hungarian_match, mask_to_boxes
from ..metrics import windowed_dice
from ..parsing import parse_medvol
from ._common import Reward, StepMemo, as_size, column, optional_column

DELTA = 5  # Table 2b: |t - k| <= 5 works best
_STEP = StepMemo()
SLICE_BASE = 1  # "<slice 1>" is the first slice (Sec. 2.4)


class VolumeTarget:
    """A ground-truth mask [z, y, x] with cached per-slice foreground areas and boxes."""

    def __init__(self, mask: np.ndarray, connectivity: int = 2):
        m = np.asarray(mask)
        if m.ndim != 3:
            raise ValueError(f"MedVol-R1 ground-truth mask must be 3D [z, y, x], got shape {m.shape}")
        self.mask = m.astype(bool, copy=False)
        self.areas = self.mask.reshape(len(self.mask), -1).sum(axis=1).astype(np.float64)
        self.connectivity = connectivity
        self.max_area = float(self.areas.max()) if len(self.areas) else 0.0
        self._boxes: dict[int, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.mask.shape  # type: ignore[return-value]

    def boxes(self, z: int) -> np.ndarray:
        """Connected-component xyxy boxes of slice ``z`` (MedVol-R1 Sec. 2.4), cached."""
        if z not in self._boxes:
            self._boxes[z] = mask_to_boxes(self.mask[z], connectivity=self.connectivity)
        return self._boxes[z]


@lru_cache(maxsize=16)
def _target_from_path(path: str, mask_value: Any, connectivity: int) -> VolumeTarget:
    from ..data.io import read_volume

    m = read_volume(path)[0]
    return VolumeTarget(m == mask_value if mask_value is not None else m != 0, connectivity)


@lru_cache(maxsize=4)
def _volume_from_path(path: str) -> np.ndarray:
    from ..data.io import read_volume

    return read_volume(path)[0]


_TARGET_CACHE = 16  # about one GRPO batch of prompts
_ARRAY_TARGETS: dict[tuple[int, int], tuple[weakref.ref, VolumeTarget]] = {}


def _target_from_array(cell: Any, connectivity: int) -> VolumeTarget | None:
    """VolumeTarget of an in-memory mask, cached while that very array object is alive (the
    rewards of one GRPO step, and the G completions of a prompt, share it)."""
    if not isinstance(cell, np.ndarray):
        a = None if cell is None else np.asarray(cell)
        return VolumeTarget(a, connectivity) if a is not None and a.ndim == 3 else None
    if cell.ndim != 3:
        return None
    key = (id(cell), connectivity)
    hit = _ARRAY_TARGETS.get(key)
    if hit is not None and hit[0]() is cell:
        return hit[1]
    while len(_ARRAY_TARGETS) >= _TARGET_CACHE:  # the target keeps its mask alive: bound the cache
        del _ARRAY_TARGETS[next(iter(_ARRAY_TARGETS))]
    target = VolumeTarget(cell, connectivity)
    _ARRAY_TARGETS[key] = (weakref.ref(cell), target)
    return target


def clear_target_cache() -> None:
    """Forget cached ground-truth volumes (benchmarks time cold steps with it)."""
    _ARRAY_TARGETS.clear()
    _target_from_path.cache_clear()


def _targets(kwargs: dict, n: int, reward: str, connectivity: int) -> list[VolumeTarget | None]:
    """GT of each row from ``mask`` (array [z, y, x]) or ``mask_path`` (+ ``mask_value``)."""
    if kwargs.get("mask") is not None:
        return [_target_from_array(cell, connectivity) for cell in column(kwargs, "mask", n, reward)]
    paths = column(kwargs, "mask_path", n, reward, alternatives=("mask",))
    values = optional_column(kwargs, "mask_value", n)
    return [
        _target_from_path(str(p), None if v is None else int(v), connectivity) if p is not None else None
        for p, v in zip(paths, values)
    ]


def _slice_list(cell: Any) -> list[int]:
    """A ``slice_indices`` cell as ints; entries that are not integers become -1 (no slice)."""
    try:
        items = list(cell)
    except TypeError:
        return []
    out = []
    for i in items:
        try:
            out.append(int(i) if float(i).is_integer() else -1)
        except (TypeError, ValueError, OverflowError):
            out.append(-1)
    return out


class _MedVolReward(Reward):
    columns = {
        "mask_path": "GT mask volume (or `mask`: array [z, y, x]); `mask_value` picks one label",
        "slice_indices": "optional volume z index of each prompt slice, in prompt order",
        "model_size": "optional (width, height) of the slice images the model saw",
    }

    def __init__(self, name: str, slice_base: int = SLICE_BASE, connectivity: int = 2):
        super().__init__(name)
        self.slice_base = slice_base
        self.connectivity = connectivity

    def _key_z(self, key: int | None, target: VolumeTarget, slice_indices: Any) -> int | None:
        """Volume z of the answer's slice identifier; None when it names no slice."""
        if key is None:
            return None
        pos = key - self.slice_base
        if slice_indices is not None:
            idx = _slice_list(slice_indices)
            if not 0 <= pos < len(idx):
                return None
            pos = idx[pos]
        return pos if 0 <= pos < target.shape[0] else None

    def _scaled_boxes(self, boxes: tuple, target: VolumeTarget, model_size: Any) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        size = as_size(model_size)
        if size is not None:
            _, h, w = target.shape
            with np.errstate(over="ignore"):
                b = b * np.array([w / size[0], h / size[1]] * 2)
        return b

    def _rows(self, texts: list[str], kwargs: dict) -> list[tuple]:
        """(parsed answer, target, key z, slice_indices, model_size) per row, shared per step."""
        refs = (
            texts,
            *(kwargs.get(k) for k in ("mask", "mask_path", "mask_value", "slice_indices", "model_size")),
        )
        return _STEP.get(
            refs, (self.slice_base, self.connectivity), lambda: self._compute_rows(texts, kwargs)
        )

    def _compute_rows(self, texts: list[str], kwargs: dict) -> list[tuple]:
        n = len(texts)
        targets = _targets(kwargs, n, self.__name__, self.connectivity)
        slices = optional_column(kwargs, "slice_indices", n)
        sizes = optional_column(kwargs, "model_size", n)
        rows = []
        for t, target, sl, size in zip(texts, targets, slices, sizes):
            a = parse_medvol(t)
            z = None if target is None else self._key_z(a.key_slice, target, sl)
            rows.append((a, target, z, sl, size))
        return rows


class MedVolFormat(Reward):
    """``medvol_format``: R_f, 1 if the answer parses into key slice + box list, else 0."""

    def __init__(self, name: str = "medvol_format"):
        super().__init__(name)

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        return [1.0 if parse_medvol(t).format_ok else 0.0 for t in texts]


class MedVolAxial(_MedVolReward):
    """``medvol_axial``: R_a = F_k / max_t F_t (None when the GT mask is empty)."""

    def __init__(self, slice_base: int = SLICE_BASE, name: str = "medvol_axial"):
        super().__init__(name, slice_base)

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        for _, target, z, sl, _ in self._rows(texts, kwargs):
            if target is None:
                out.append(None)
                continue
            top = target.max_area
            if sl is not None:
                idx = [i for i in _slice_list(sl) if 0 <= i < len(target.areas)]
                top = float(target.areas[idx].max()) if idx else 0.0
            if top <= 0:
                out.append(None)
            else:
                out.append(0.0 if z is None else min(float(target.areas[z]) / top, 1.0))
        return out


class MedVolSpatial(_MedVolReward):
    """``medvol_spatial``: R_s = sum of Hungarian-matched IoUs / max(N, N*)."""

    def __init__(self, slice_base: int = SLICE_BASE, connectivity: int = 2, name: str = "medvol_spatial"):
        super().__init__(name, slice_base, connectivity)

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        idx, preds, gts = [], [], []
        for i, (a, target, z, _, size) in enumerate(self._rows(texts, kwargs)):
            if target is None:
                out.append(None)
            elif z is None or a.boxes is None:
                out.append(0.0)
            else:
                out.append(0.0)
                idx.append(i)
                preds.append(self._scaled_boxes(a.boxes, target, size))
                gts.append(target.boxes(z))
        for i, v in zip(idx, spatial_rewards(preds, gts)):
            out[i] = v
        return out


def spatial_rewards(preds: list[np.ndarray], gts: list[np.ndarray]) -> list[float]:
    """:func:`spatial_reward` of many (pred, GT) box sets: all IoU matrices in one padded numpy
    call; where either side has one box the matching is the best IoU, otherwise
    :func:`~medlib.geometry.hungarian_match` solves it."""
    n = len(preds)
    if n == 0:
        return []
    ns = np.array([len(p) for p in preds])
    ms = np.array([len(g) for g in gts])
    P = np.full((n, max(int(ns.max()), 1), 4), np.nan)
    G = np.full((n, max(int(ms.max()), 1), 4), np.nan)
    for i, (p, g) in enumerate(zip(preds, gts)):
        P[i, : len(p)] = p
        G[i, : len(g)] = g
    with np.errstate(over="ignore", invalid="ignore"):
        iou = box_iou_pairs(P[:, :, None, :], G[:, None, :, :])  # (n, N, N*), padding -> 0
    total = iou.reshape(n, -1).max(axis=1)
    for i in np.flatnonzero(np.minimum(ns, ms) >= 2):
        with np.errstate(over="ignore", invalid="ignore"):
            total[i] = hungarian_match(preds[i], gts[i])[2].sum()
    denom = np.maximum(ns, ms)
    out = np.where(denom > 0, total / np.maximum(denom, 1), 0.0)
    return np.clip(out, 0.0, 1.0).tolist()


def spatial_reward(pred: np.ndarray, gt: np.ndarray) -> float:
    """R_s of (N, 4) predicted and (N*, 4) GT boxes: Hungarian on 1 - IoU, matched IoUs summed
    and divided by max(N, N*); 0 when both are empty."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    denom = max(len(pred), len(gt))
    if denom == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        _, _, ious = hungarian_match(pred, gt)
    return float(np.clip(ious.sum() / denom, 0.0, 1.0))


def _sanitise(boxes: np.ndarray, width: int, height: int) -> list[list[float]]:
    """Finite, corner-ordered boxes clipped to the slice, with at least one pixel."""
    out = []
    for b in boxes:
        if not np.all(np.isfinite(b)):
            continue
        x1, x2 = sorted((float(b[0]), float(b[2])))
        y1, y2 = sorted((float(b[1]), float(b[3])))
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            out.append([x1, y1, x2, y2])
    return out


WINDOWS = ("sampled", "native")
DEFAULT_WINDOW = "sampled"


def window_bounds(
    pos: int, delta: int, slice_indices: Any, n_z: int, window: str = DEFAULT_WINDOW
) -> tuple[int, int] | None:
    """Volume z range ``(lo, hi)``, inclusive, of R_c's neighbourhood N(k) = {t : |t - k| <= delta}
    around the key slice at prompt position ``pos`` (``k - slice_base``); None when ``pos``
    names no shown slice inside the volume.

    * ``sampled`` (default): the paper's k and t index the slices the model was shown
      (``<slice k>``), so N(k) is the shown positions ``pos - delta .. pos + delta``, mapped to
      volume z through ``slice_indices``; the window covers the native slices from the first
      to the last of them (64 of 320 slices shown, delta 5: about 51 native slices).
    * ``native``: |t - z| <= delta in the volume's own z (2 delta + 1 native slices).

    Without ``slice_indices`` the shown slices are the volume's, and both agree."""
    idx = list(range(n_z)) if slice_indices is None else _slice_list(slice_indices)
    if window not in WINDOWS:
        raise ValueError(f"unknown R_c window {window!r}; known: {', '.join(WINDOWS)}")
    if not 0 <= pos < len(idx) or not 0 <= idx[pos] < n_z:
        return None
    z, d = idx[pos], max(int(delta), 0)
    if window == "native":
        return max(z - d, 0), min(z + d, n_z - 1)
    near = [i for i in idx[max(pos - d, 0) : pos + d + 1] if 0 <= i < n_z]
    return min(near), max(near)


def dice_in_window(pred: np.ndarray, gt: np.ndarray, k: int, delta: int) -> float:
    """Dice of two [z, y, x] masks on volume slices ``|t - k| <= delta`` (the ``native`` window);
    0 when both are empty there (:data:`medlib.metrics.EMPTY_WINDOW_DICE`)."""
    return windowed_dice(pred, gt, k - delta, k + delta)


def _resolve_segmenter(segmenter: Any) -> Any:
    """A segmenter object as given; a spec through :func:`medlib.segment.get_segmenter` (one shared
    instance per spec per process; imported here, so that importing the rewards loads no model code)."""
    if isinstance(segmenter, str):
        from ..segment import get_segmenter

        return get_segmenter(segmenter)
    return segmenter


class MedVolCrossSlice(_MedVolReward):
    """``medvol_cross_slice``: R_c, Dice on the key slice's neighbourhood N(k) (``window``:
    ``sampled`` shown-slice units, default, or ``native`` volume z; :func:`window_bounds`) of the
    volume a segmenter propagates from the Hungarian-matched predicted boxes.

    Cost: the rewards of a step are computed together. A segmenter with ``propagate_many``
    (LiteMedSAM) gets every completion on a volume in one call, propagating each exactly as far
    as its window reaches (the masks inside the window are those of an unbounded propagation,
    which goes outward slice by slice), so each (volume, slice) pair is encoded at most once a
    step and the decoder runs batched over boxes and completions; its embedding cache carries
    recurring volumes across steps. Other segmenters get ``propagate_3d`` per completion.
    :attr:`last_stats` counts encoder calls against the distinct slices in the windows."""

    columns = dict(_MedVolReward.columns, volume_path="the CT volume (or `volume`: array [z, y, x])")

    def __init__(
        self,
        segmenter: Any,
        delta: int = DELTA,
        slice_base: int = SLICE_BASE,
        connectivity: int = 2,
        name: str = "medvol_cross_slice",
        window: str = DEFAULT_WINDOW,
        batched: bool = True,
    ):
        super().__init__(name, slice_base, connectivity)
        if segmenter is None:
            raise ValueError(f"{name}: needs a segmenter (a medlib.segment Segmenter or its spec)")
        if window not in WINDOWS:
            raise ValueError(f"{name}: unknown window {window!r}; known: {', '.join(WINDOWS)}")
        self.segmenter = segmenter
        self.delta = int(delta)
        self.window = window
        self.batched = bool(batched)
        self.last_stats: dict[str, int] = {}

    def _volumes(self, kwargs: dict, n: int) -> list:
        if kwargs.get("volume") is not None:
            return column(kwargs, "volume", n, self.__name__)
        paths = column(kwargs, "volume_path", n, self.__name__, alternatives=("volume",))
        return [None if p is None else _volume_from_path(str(p)) for p in paths]

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        vols = self._volumes(kwargs, len(texts))
        out: list[float | None] = []
        jobs: list[tuple[int, Any, VolumeTarget, int, list, tuple[int, int]]] = []
        for i, ((a, target, z, sl, size), vol) in enumerate(zip(self._rows(texts, kwargs), vols)):
            if target is None or vol is None:
                out.append(None)
                continue
            out.append(0.0)
            if z is None or a.boxes is None:
                continue
            pred = self._scaled_boxes(a.boxes, target, size)
            with np.errstate(over="ignore", invalid="ignore"):
                rows, _, _ = hungarian_match(pred, target.boxes(z))
            _, h, w = target.shape
            prompts = _sanitise(pred[rows], w, h)
            bounds = window_bounds(a.key_slice - self.slice_base, self.delta, sl, target.shape[0], self.window)
            if prompts and bounds is not None:
                jobs.append((i, vol, target, z, prompts, bounds))
        seg = _resolve_segmenter(self.segmenter) if jobs else None
        calls0 = getattr(seg, "encoder_calls", 0)
        for (i, _, target, _z, _, (lo, hi)), mask in zip(jobs, self._propagate(seg, jobs)):
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != target.shape:
                raise ValueError(
                    f"{self.__name__}: segmenter {getattr(seg, 'name', seg)!r} returned a mask of shape "
                    f"{mask.shape} for a ground truth of shape {target.shape}"
                )
            out[i] = windowed_dice(mask, target.mask, lo, hi)
        window_slices = {(id(v), t) for _, v, _, _, _, (lo, hi) in jobs for t in range(lo, hi + 1)}
        self.last_stats = {
            "completions": len(texts),
            "propagations": len(jobs),
            "boxes": sum(len(j[4]) for j in jobs),
            "volumes": len({id(j[1]) for j in jobs}),
            "distinct_window_slices": len(window_slices),
            "encoder_calls": getattr(seg, "encoder_calls", 0) - calls0,
        }
        return out

    def _propagate(self, seg: Any, jobs: list) -> list:
        """Masks of the jobs, grouped by volume through ``propagate_many`` where it exists."""
        if not jobs:
            return []
        if not (self.batched and hasattr(seg, "propagate_many")):
            return [seg.propagate_3d(np.asarray(vol), z, prompts) for _, vol, _, z, prompts, _ in jobs]
        masks: list = [None] * len(jobs)
        groups: dict[int, list[int]] = {}
        for j, job in enumerate(jobs):
            groups.setdefault(id(job[1]), []).append(j)
        for js in groups.values():
            vol = np.asarray(jobs[js[0]][1])
            reqs = [(jobs[j][3], jobs[j][4], (jobs[j][3] - jobs[j][5][0], jobs[j][5][1] - jobs[j][3])) for j in js]
            for j, m in zip(js, seg.propagate_many(vol, reqs)):
                masks[j] = m
        return masks


medvol_format = MedVolFormat()
medvol_axial = MedVolAxial()
medvol_spatial = MedVolSpatial()
