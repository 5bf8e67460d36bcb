"""MedReasoner rewards (Yan et al. 2025, Sec. 4.3 and App. C.3-C.4), vectorised over a batch.

Terms (TRL names ``medreasoner_<term>``; the paper's total is their unweighted sum):

* ``format_think`` {0, 0.2, 1} and ``format_answer`` {0, 0.2, 0.4, 0.6, 1}: graded format.
* box family: ``box_iou`` (IoU -> smooth_log), ``box_align`` (mean corner |difference| / GT
  diagonal -> smooth_exp(k=3, c=1)), ``box_scale`` (sqrt(dlog area^2 + dlog aspect^2) ->
  smooth_exp(k=3, c=0.5 official / 1 paper)); validity: GT points inside the predicted box
  (product of two per-point 1/0.5 checks) and predicted area within (0.5, 2) x GT area.
* points family: ``points_dice`` (pDice -> smooth_log), ``points_align`` (endpoint L1 ->
  smooth_exp), ``points_angle`` (|cos| of the pair vectors -> smooth_log); validity: predicted
  points inside the GT box (product) and points more than 10 px apart.
* every geometric term is penalised: ``0.7 r + 0.3 r (v1 + v2) / 2`` (Eq. 10).

Modes: ``soft`` (IoU + pDice only; align/scale/angle are 0: the public code's and paper's
default), ``hard`` (all terms), ``base`` (a Seg-Zero-like threshold scheme, the public
``med_base.py``: think/answer format, IoU > 0.5, box L1 < 10 px, points L1 < 100 px). The
public ``med_base.py`` calls ``.strip()`` on the already-parsed ground-truth dict, so there
its IoU and box-L1 terms are always 0; ``replicate_base_gt_bug=True`` reproduces that
(default: the terms work as intended).

Variants:

* ``official`` (default): the public code (``verl/utils/reward_score/med_grounding.py``),
  re-derived. Its conventions: smoothing to [0.1, 1] and rounding to 4 places (see
  :mod:`.smoothing`); IoU ``inter / (union + 1e-5)`` with areas clipped at 0; "pDice" is
  ``2 inter / (union + 1e-5)`` of the two discs (twice their IoU, in [0, 2]; smoothing and the
  final clip cap it at 1), radii ``|p1 p2| / 2 + 1e-5``; points alignment is order-free and
  divided by the GT diagonal; a box family or points family that fails anywhere is zeroed as
  a whole, validity flags included (a malformed answer; in hard mode a box whose scale
  logarithm or division fails: zero height, or one negative side). Rows whose ground truth
  is unusable (e.g. no GT points, where the public box family fails too) give None.
* ``paper``: Eqs. 2-10 as printed (the format terms are the public code's in both variants:
  the paper gives no values): plain smooth_log / smooth_exp, true Dice of the discs
  (Eq. 5), points alignment on corresponding points in image-normalised [0, 1] coordinates
  (Eq. 6; needs ``model_size`` or the image), box alignment divided by the GT diagonal (text
  of Sec. 4.3), scale c = 1, no rounding; a degenerate box gets the largest distance (2).

Deviation from the public code, both variants: coordinates that are not finite floats (JSON
``NaN``, ``Infinity``, integers beyond float range) zero their family instead of producing
NaN or an overflow error. Nothing here raises on any completion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..geometry import box_iou_pairs, point_pair_disc_dice
from ..parsing import parse_medreasoner, parse_medreasoner_base
from ._common import (
    Reward,
    StepMemo,
    as_size,
    column,
    first_image,
    image_size_of,
    optional_column,
)
from ._common import gt_boxes as gt_box_array
from ._common import gt_points as gt_point_array
from .smoothing import (
    penalize,
    smooth_exp_official,
    smooth_exp_paper,
    smooth_log_official,
    smooth_log_paper,
)

MODES = ("soft", "hard", "base")
VARIANTS = ("official", "paper")
FORMAT_TERMS = ("format_think", "format_answer")
BOX_TERMS = ("box_iou", "box_align", "box_scale")
POINT_TERMS = ("points_dice", "points_align", "points_angle")
HARD_ONLY = ("box_align", "box_scale", "points_align", "points_angle")
BASE_TERMS = ("base_think_format", "base_answer_format", "base_box_iou", "base_box_l1", "base_points_l1")
TERMS = {
    "soft": FORMAT_TERMS + ("box_iou", "points_dice"),
    "hard": FORMAT_TERMS + BOX_TERMS + POINT_TERMS,
    "base": BASE_TERMS,
}
LAMBDA = 0.7  # Eq. 10
SPREAD_PX = 10.0  # points "more than 10 px apart"
BASE_BOX_L1_PX = 10.0
BASE_POINTS_L1_PX = 100.0


# ------------------------------------------------------------------------ validity
def _inside(p: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Point (n, 2) inside box (n, 4), borders included, corners taken as given."""
    return (b[:, 0] <= p[:, 0]) & (p[:, 0] <= b[:, 2]) & (b[:, 1] <= p[:, 1]) & (p[:, 1] <= b[:, 3])


def _half(flag: np.ndarray) -> np.ndarray:
    return np.where(flag, 1.0, 0.5)


def _area0(b: np.ndarray) -> np.ndarray:
    return np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)


def _diag(b: np.ndarray) -> np.ndarray:
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.sqrt(w**2 + h**2)


# ---------------------------------------------------------------------- box family
def box_family(
    pred: np.ndarray,
    gt: np.ndarray,
    gt_pts: np.ndarray,
    ok: np.ndarray,
    mode: str = "soft",
    variant: str = "official",
) -> dict[str, np.ndarray]:
    """Box terms and validity flags for (n, 4) predicted / GT boxes and (n, 2, 2) GT points.
    Rows with ``ok`` False (or that fail, see the module docstring) are all zeros."""
    with np.errstate(all="ignore"):  # huge finite coordinates overflow: such rows are zeroed below
        return _box_family(pred, gt, gt_pts, ok, mode, variant)


def _box_family(pred, gt, gt_pts, ok, mode, variant) -> dict[str, np.ndarray]:
    n = len(pred)
    P = np.where(ok[:, None], pred, 0.0)
    G = np.where(ok[:, None], gt, 0.0)
    GP = np.where(ok[:, None, None], gt_pts, 0.0)
    pos = _half(_inside(GP[:, 0], P)) * _half(_inside(GP[:, 1], P))
    ap, ag = _area0(P), _area0(G)
    area = _half((0.5 * ag < ap) & (ap < 2.0 * ag))
    hard = mode == "hard"
    if variant == "official":
        iw = np.maximum(np.minimum(P[:, 2], G[:, 2]) - np.maximum(P[:, 0], G[:, 0]), 0.0)
        ih = np.maximum(np.minimum(P[:, 3], G[:, 3]) - np.maximum(P[:, 1], G[:, 1]), 0.0)
        inter = iw * ih
        iou = inter / (ap + ag - inter + 1e-5)
        r_iou = smooth_log_official(iou)
    else:
        r_iou = smooth_log_paper(box_iou_pairs(P, G))
    r_align = np.zeros(n)
    r_scale = np.zeros(n)
    fail = np.zeros(n, dtype=bool)
    if hard:
        d = P - G
        l1 = (((np.abs(d[:, 0]) + np.abs(d[:, 1])) + np.abs(d[:, 2])) + np.abs(d[:, 3])) / 4
        w1, h1 = P[:, 2] - P[:, 0], P[:, 3] - P[:, 1]
        w2, h2 = G[:, 2] - G[:, 0], G[:, 3] - G[:, 1]
        if variant == "official":
            norm = np.maximum(np.minimum(l1 / (_diag(G) + 1e-5), 2.0), 0.0)
            r_align = smooth_exp_official(norm, 3.0, 1.0)
            a_den, r_den_h = w2 * h2 + 1e-6, h2
            ra = (w1 * h1 + 1e-6) / a_den
            r_num = w1 / h1 + 1e-6
            r_den = w2 / h2 + 1e-6
            rr = r_num / r_den
            fail = (h1 == 0) | (r_den_h == 0) | (a_den == 0) | (r_den == 0) | ~(ra > 0) | ~(rr > 0)
            ds = np.sqrt(np.log(ra) ** 2 + np.log(rr) ** 2)
            r_scale = smooth_exp_official(np.minimum(ds, 1.0), 3.0, 0.5)
        else:
            diag = _diag(G)
            norm = np.where(diag > 0, l1 / np.where(diag > 0, diag, 1.0), np.where(l1 > 0, 2.0, 0.0))
            r_align = smooth_exp_paper(np.clip(norm, 0.0, 2.0), 3.0, 1.0)
            shape_ok = (w1 > 0) & (h1 > 0) & (w2 > 0) & (h2 > 0)
            ds = np.sqrt(np.log((w1 * h1) / (w2 * h2)) ** 2 + np.log((w1 / h1) / (w2 / h2)) ** 2)
            ds = np.where(shape_ok & np.isfinite(ds), ds, 2.0)
            r_scale = smooth_exp_paper(np.clip(ds, 0.0, 2.0), 3.0, 1.0)
    return _penalised(
        ("box_iou", "box_align", "box_scale"), (r_iou, r_align, r_scale), hard, variant,
        ("box_position_valid", pos), ("box_area_valid", area), ~ok | fail,
    )  # fmt: skip


def _penalised(
    names: tuple[str, str, str],
    raw: tuple[np.ndarray, np.ndarray, np.ndarray],
    hard: bool,
    variant: str,
    valid1: tuple[str, np.ndarray],
    valid2: tuple[str, np.ndarray],
    bad: np.ndarray,
    may_be_nan: int | None = None,
) -> dict[str, np.ndarray]:
    """Penalise a family's three smoothed terms at once (Eq. 10) and zero its failed rows,
    validity flags included; row ``may_be_nan`` of the terms keeps NaN (term not applicable)."""
    terms = np.stack(raw if hard else raw[:1])
    pen = penalize(terms, valid1[1], valid2[1], LAMBDA, 4 if variant == "official" else None)
    check = pen if may_be_nan is None or not hard else np.delete(pen, may_be_nan, axis=0)
    bad = bad | ~np.isfinite(check).all(axis=0)
    pen[:, bad] = 0.0
    v1, v2 = np.where(bad, 0.0, valid1[1]), np.where(bad, 0.0, valid2[1])
    zeros = np.zeros(len(bad))
    out = {names[0]: pen[0], names[1]: pen[1] if hard else zeros, names[2]: pen[2] if hard else zeros.copy()}
    out[valid1[0]], out[valid2[0]] = v1, v2
    return out


# -------------------------------------------------------------------- points family
def _official_disc_overlap(pp: np.ndarray, gp: np.ndarray) -> np.ndarray:
    """The public code's disc "dice": ``2 inter / (union + 1e-5)`` with radii ``|p1p2|/2 + 1e-5``."""
    cp, cg = (pp[:, 0] + pp[:, 1]) / 2, (gp[:, 0] + gp[:, 1]) / 2
    r1 = np.hypot(*(pp[:, 0] - pp[:, 1]).T) / 2 + 1e-5
    r2 = np.hypot(*(gp[:, 0] - gp[:, 1]).T) / 2 + 1e-5
    d = np.hypot(*(cp - cg).T)
    apart = d >= r1 + r2 - 1e-5
    nested = ~apart & (d <= np.abs(r1 - r2) + 1e-5)
    lens = ~apart & ~nested
    inter = np.where(nested, math.pi * np.minimum(r1, r2) ** 2, 0.0)
    if np.any(lens):
        a, b, c = r1[lens], r2[lens], d[lens]
        x1 = np.clip((c * c + a * a - b * b) / (2 * c * a), -1.0, 1.0)
        x2 = np.clip((c * c + b * b - a * a) / (2 * c * b), -1.0, 1.0)
        part3 = 0.5 * np.sqrt(np.maximum(0.0, (-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b)))
        inter[lens] = a * a * np.arccos(x1) + b * b * np.arccos(x2) - part3
    union = math.pi * r1**2 + math.pi * r2**2 - inter
    return 2 * inter / (union + 1e-5)


def points_family(
    pp: np.ndarray,
    gt: np.ndarray,
    gt_pts: np.ndarray,
    ok: np.ndarray,
    mode: str = "soft",
    variant: str = "official",
    sizes: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Point terms and validity flags for (n, 2, 2) predicted / GT point pairs and (n, 4) GT
    boxes; ``sizes`` (n, 2) image (width, height), NaN where unknown (paper alignment only)."""
    with np.errstate(all="ignore"):  # huge finite coordinates overflow: such rows are zeroed below
        return _points_family(pp, gt, gt_pts, ok, mode, variant, sizes)


def _points_family(pp, gt, gt_pts, ok, mode, variant, sizes) -> dict[str, np.ndarray]:
    n = len(pp)
    PP = np.where(ok[:, None, None], pp, 0.0)
    GP = np.where(ok[:, None, None], gt_pts, 0.0)
    G = np.where(ok[:, None], gt, 0.0)
    pos = _half(_inside(PP[:, 0], G)) * _half(_inside(PP[:, 1], G))
    spread = _half(np.hypot(*(PP[:, 0] - PP[:, 1]).T) > SPREAD_PX)
    hard = mode == "hard"
    r_align = np.zeros(n)
    r_angle = np.zeros(n)
    vp, vg = PP[:, 1] - PP[:, 0], GP[:, 1] - GP[:, 0]
    if variant == "official":
        r_dice = smooth_log_official(_official_disc_overlap(PP, GP))
        if hard:
            l1 = lambda a, b: (np.abs(a[:, 0] - b[:, 0]) + np.abs(a[:, 1] - b[:, 1])) / 2  # noqa: E731
            d1 = l1(PP[:, 0], GP[:, 0]) + l1(PP[:, 1], GP[:, 1])
            d2 = l1(PP[:, 0], GP[:, 1]) + l1(PP[:, 1], GP[:, 0])
            norm = np.maximum(np.minimum(np.minimum(d1, d2) / 2 / (_diag(G) + 1e-5), 2.0), 0.0)
            r_align = smooth_exp_official(norm, 3.0, 1.0)
            lg, lp = np.hypot(*vg.T) + 1e-8, np.hypot(*vp.T) + 1e-8
            r_angle = smooth_log_official(np.abs((vg[:, 0] * vp[:, 0] + vg[:, 1] * vp[:, 1]) / (lg * lp)))
    else:
        r_dice = smooth_log_paper(point_pair_disc_dice(PP, GP))
        if hard:
            wh = np.full((n, 2), np.nan) if sizes is None else np.asarray(sizes, dtype=np.float64)
            err = np.abs(PP - GP) / wh[:, None, :]
            d = err.sum(axis=(1, 2)) / 2
            r_align = smooth_exp_paper(np.clip(d, 0.0, 2.0), 3.0, 1.0)  # NaN where the size is unknown
            lg, lp = np.hypot(*vg.T), np.hypot(*vp.T)
            den = lg * lp
            cos = np.where(
                den > 0,
                np.abs(vg[:, 0] * vp[:, 0] + vg[:, 1] * vp[:, 1]) / np.where(den > 0, den, 1.0),
                0.0,
            )
            r_angle = smooth_log_paper(np.clip(cos, 0.0, 1.0))
    return _penalised(
        ("points_dice", "points_align", "points_angle"), (r_dice, r_align, r_angle), hard, variant,
        ("points_position_valid", pos), ("points_spread_valid", spread), ~ok,
        may_be_nan=1 if variant == "paper" else None,  # paper alignment without the image size
    )  # fmt: skip


# --------------------------------------------------------------------------- base
def _base_iou(b1: Any, b2: Any) -> float:
    """``med_base.py`` IoU: inclusive-pixel (+1) intersection and areas."""
    ix1, iy1 = max(b1[0], b2[0]), max(b1[1], b2[1])
    ix2, iy2 = min(b1[2], b2[2]), min(b1[3], b2[3])
    inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0
    a1 = (b1[2] - b1[0] + 1) * (b1[3] - b1[1] + 1)
    a2 = (b2[2] - b2[0] + 1) * (b2[3] - b2[1] + 1)
    return float(inter) / (a1 + a2 - inter)


def base_terms(
    text: str, gt_box: list[float], gt_points: list[list[float]], replicate_gt_bug: bool = False
) -> dict:
    """The five ``base`` terms for one completion, each 0 or 1, with ``med_base.py``'s Python
    semantics (any exception -> 0). ``replicate_gt_bug``: the public code calls ``.strip()`` on
    the already-parsed ground-truth dict, so its IoU and box-L1 terms are always 0."""
    a = parse_medreasoner_base(text)
    data = a.json
    out = {"base_think_format": 1.0 if a.think_ok else 0.0}
    try:
        box, p1, p2 = data["bbox"], data["points_1"], data["points_2"]
        ok = isinstance(box, list) and len(box) == 4
        ok = ok and all(isinstance(p, list) and len(p) == 2 for p in (p1, p2))
    except Exception:  # noqa: BLE001 - mirrors the public code's catch-all
        ok = False
    out["base_answer_format"] = 1.0 if ok else 0.0
    iou = l1 = pts = 0.0
    if not replicate_gt_bug:
        try:
            if len(data["bbox"]) == 4 and _base_iou(data["bbox"], gt_box) > 0.5:
                iou = 1.0
        except Exception:  # noqa: BLE001
            pass
        try:
            b = data["bbox"]
            if len(b) == 4 and sum(abs(b[i] - gt_box[i]) for i in range(4)) / 4 < BASE_BOX_L1_PX:
                l1 = 1.0
        except Exception:  # noqa: BLE001
            pass
    try:
        b = data["bbox"]
        if len(b) != 4:
            raise ValueError
        q1 = [int(data["points_1"][0]), int(data["points_1"][1])]
        q2 = [int(data["points_2"][0]), int(data["points_2"][1])]
        inside = all(b[0] <= q[0] <= b[2] and b[1] <= q[1] <= b[3] for q in (q1, q2))
        g1, g2 = gt_points
        dist = lambda u, v: math.sqrt((u[0] - v[0]) ** 2 + (u[1] - v[1]) ** 2)  # noqa: E731
        d = min(dist(q1, g1) + dist(q2, g2), dist(q1, g2) + dist(q2, g1)) / 2
        if inside and d < BASE_POINTS_L1_PX:
            pts = 1.0
    except Exception:  # noqa: BLE001
        pass
    out.update(base_box_iou=iou, base_box_l1=l1, base_points_l1=pts)
    return out


# -------------------------------------------------------------------------- batch
def _check(mode: str, variant: str) -> None:
    if mode not in MODES:
        raise ValueError(f"MedReasoner mode must be one of {MODES}, got {mode!r}")
    if variant not in VARIANTS:
        raise ValueError(f"MedReasoner variant must be one of {VARIANTS}, got {variant!r}")


def medreasoner_batch(
    texts: list[str],
    gt_boxes: list,
    gt_points: list,
    mode: str = "soft",
    variant: str = "official",
    sizes: list | None = None,
    families: tuple[str, ...] = ("format", "box", "points"),
    replicate_base_gt_bug: bool = False,
) -> dict[str, np.ndarray]:
    """Every term of ``mode`` for a batch, as arrays of length n (NaN where the ground truth
    of a row is unusable). Includes the validity flags and ``score`` (the sum) when all
    families are computed. ``gt_boxes`` / ``gt_points`` / ``sizes``: one cell per row."""
    _check(mode, variant)
    n = len(texts)
    G, box_ok = gt_box_array(list(gt_boxes))
    GP, pts_ok = gt_point_array(list(gt_points))
    gt_ok = box_ok & pts_ok
    out: dict[str, np.ndarray] = {}
    if mode == "base":
        rows = [
            base_terms(t, b, p, replicate_base_gt_bug) if ok else None
            for t, b, p, ok in zip(texts, G.tolist(), GP.tolist(), gt_ok)
        ]
        for key in BASE_TERMS:
            out[key] = np.array([r[key] if r is not None else np.nan for r in rows])
        out["score"] = np.sum([out[k] for k in BASE_TERMS], axis=0)
        return out
    parsed = [parse_medreasoner(t) for t in texts]
    if "format" in families:
        out["format_think"] = np.array([a.think_score for a in parsed])
        out["format_answer"] = np.array([a.answer_score for a in parsed])
    if "box" in families:
        P = np.array([a.box if a.box is not None else (0.0,) * 4 for a in parsed], dtype=np.float64).reshape(
            n, 4
        )
        ok = gt_ok & np.array([a.box is not None for a in parsed], dtype=bool)
        out.update(box_family(P, G, GP, ok, mode, variant))
    if "points" in families:
        PP = np.array(
            [a.points if a.points is not None else ((0.0, 0.0),) * 2 for a in parsed], dtype=np.float64
        )
        PP = PP.reshape(n, 2, 2)
        ok = gt_ok & np.array([a.points is not None for a in parsed], dtype=bool)
        wh = None
        if sizes is not None:
            wh = np.array(
                [s if s is not None else (np.nan, np.nan) for s in sizes], dtype=np.float64
            ).reshape(n, 2)
        out.update(points_family(PP, G, GP, ok, mode, variant, wh))
    if not gt_ok.all():
        for key in BOX_TERMS + POINT_TERMS + tuple(k for k in out if k.endswith("_valid")):
            if key in out:
                out[key] = np.where(gt_ok, out[key], np.nan)
    if all(f in families for f in ("format", "box", "points")):
        out["score"] = np.sum([out[k] for k in FORMAT_TERMS + BOX_TERMS + POINT_TERMS], axis=0)
    return out


def medreasoner_scores(
    text: str,
    solution: Any,
    points: Any,
    mode: str = "soft",
    variant: str = "official",
    model_size: Any = None,
    replicate_base_gt_bug: bool = False,
) -> dict[str, float]:
    """All terms of one completion as floats, keyed like the public ``compute_score``
    (``score``, ``format_think``, ``format_answer``, ``box_iou``, ..., validity flags)."""
    res = medreasoner_batch(
        [text],
        [solution],
        [points],
        mode,
        variant,
        [as_size(model_size)],
        replicate_base_gt_bug=replicate_base_gt_bug,
    )
    return {k: float(v[0]) for k, v in res.items()}


# ----------------------------------------------------------------------- rewards
class MedReasonerReward(Reward):
    """One MedReasoner term as a TRL reward, ``medreasoner_<term>`` (see module docstring).

    Columns: ``solution`` (GT box, model frame) and ``points`` (GT ``[[x, y], [x, y]]``), or
    the public code's ``ground_truth`` JSON (``{"bbox_2d": .., "point_2d": ..}``); the paper
    variant's ``points_align`` also reads ``model_size`` (or the ``image``'s size).
    """

    columns = {
        "solution": "ground-truth xyxy box in the model frame",
        "points": "ground-truth key points [[x, y], [x, y]] in the model frame",
        "model_size": "optional (width, height) of the model frame (paper points_align)",
    }

    def __init__(
        self,
        term: str,
        mode: str = "soft",
        variant: str = "official",
        replicate_base_gt_bug: bool = False,
        name: str | None = None,
    ):
        _check(mode, variant)
        if term not in TERMS[mode]:
            extra = " (use mode='hard')" if term in HARD_ONLY and mode == "soft" else ""
            raise ValueError(
                f"MedReasoner term {term!r} is not part of mode {mode!r}{extra}; valid: {TERMS[mode]}"
            )
        super().__init__(name or f"medreasoner_{term}")
        self.term = term
        self.mode = mode
        self.variant = variant
        self.replicate_base_gt_bug = replicate_base_gt_bug

    def _ground_truth(self, kwargs: dict, n: int) -> tuple[list, list]:
        if "solution" in kwargs or "ground_truth" not in kwargs:
            return column(kwargs, "solution", n, self.__name__), column(kwargs, "points", n, self.__name__)
        rows = column(kwargs, "ground_truth", n, self.__name__)
        return rows, rows  # as_box / as_points read "bbox_2d" / "point_2d" from the JSON

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        if self.term in FORMAT_TERMS:
            attr = "think_score" if self.term == "format_think" else "answer_score"
            return [getattr(parse_medreasoner(t), attr) for t in texts]
        # every term of a step shares one computation of all families
        refs = (
            texts,
            *(kwargs.get(k) for k in ("solution", "points", "ground_truth", "model_size", "image", "images")),
        )
        key = (self.mode, self.variant, self.replicate_base_gt_bug)
        res = _STEP.get(refs, key, lambda: self._all_terms(texts, kwargs))
        return [v if math.isfinite(v) else None for v in res[self.term].tolist()]

    def _all_terms(self, texts: list[str], kwargs: dict) -> dict[str, np.ndarray]:
        n = len(texts)
        boxes, points = self._ground_truth(kwargs, n)
        sizes = None
        if self.variant == "paper" and self.mode == "hard":
            sizes = [as_size(s) for s in optional_column(kwargs, "model_size", n)]
            imgs = optional_column(kwargs, "image" if "image" in kwargs else "images", n)
            sizes = [s if s is not None else image_size_of(first_image(im)) for s, im in zip(sizes, imgs)]
        families = ("format", "box", "points")
        return medreasoner_batch(
            texts, boxes, points, self.mode, self.variant, sizes, families, self.replicate_base_gt_bug
        )


_STEP = StepMemo()


medreasoner_format_think = MedReasonerReward("format_think")
medreasoner_format_answer = MedReasonerReward("format_answer")
medreasoner_box_iou = MedReasonerReward("box_iou")
medreasoner_points_dice = MedReasonerReward("points_dice")
medreasoner_box_align = MedReasonerReward("box_align", mode="hard")
medreasoner_box_scale = MedReasonerReward("box_scale", mode="hard")
medreasoner_points_align = MedReasonerReward("points_align", mode="hard")
medreasoner_points_angle = MedReasonerReward("points_angle", mode="hard")
