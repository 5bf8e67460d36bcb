"""The rewards of the three papers, taken apart for notebook 02 (``notebooks/02_rewards.ipynb``).

Every number comes from the reward code of :mod:`medlib.rewards` (nothing is re-derived here):

* :func:`smoothing_curves`: MedReasoner's ``S_log`` / ``S_exp``, official and paper variants
  (paper Eqs. 8-9, Figs. 12-13).
* :func:`reward_landscape`: the rewards of a predicted box slid horizontally across the ground
  truth (MedGround-R1 thresholded IoU, continuous IoU, semantic; MedReasoner smoothed IoU).
* :func:`penalty_effect`: MedReasoner's box IoU term with and without the validity penalty
  (Eq. 10) for boxes of growing size.
* :func:`worked_example`: one completion per paper through every reward component.
* :func:`disagreements`: every place where a paper and its released code disagree, and which
  one medlib uses by default (docs/medground_r1.md, docs/medreasoner.md, docs/medvol_r1.md; the docstrings of medlib.rewards).

Examples: :func:`landscape_example` (an MS-CXR-style test image of the embedded benchmark, or
:func:`synthetic_example` without it) and :func:`synthetic_volume_example` with the stand-in
segmenter :class:`ThresholdFloodSegmenter` for MedVol-R1's cross-slice reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..geometry import box_iou, box_iou_pairs, point_pair_disc_dice
from .medground import (
    MedGroundFormat,
    MedGroundIoU,
    MedGroundSemantic,
    MedGroundSemanticReleased,
    MedGroundSpatial,
)
from .medreasoner import LAMBDA, TERMS, medreasoner_batch, medreasoner_scores
from .medvol import DELTA, SLICE_BASE, MedVolAxial, MedVolCrossSlice, MedVolFormat, MedVolSpatial
from .smoothing import smooth_exp_official, smooth_exp_paper, smooth_log_official, smooth_log_paper

K = 3.0  # MedReasoner's k for both smoothings (Eqs. 8-9)


# ------------------------------------------------------------------------ smoothing
def smoothing_curves(n: int = 201) -> pd.DataFrame:
    """Tidy table (function, variant, c, x, value) of MedReasoner's smoothings.

    ``smooth_log`` on x in [0, 2] (its domain is [0, 1]; the official pDice feeds it up to 2,
    column ``in_domain``); ``smooth_exp`` on d in [0, 2] with c = 1 (alignment, both variants)
    and c = 0.5 (the official box-scale term)."""
    x1, x2 = np.linspace(0.0, 2.0, 2 * n - 1), np.linspace(0.0, 2.0, n)
    parts = [
        ("smooth_log", "official", np.nan, x1, smooth_log_official(x1, K)),
        ("smooth_log", "paper", np.nan, x1, smooth_log_paper(x1, K)),
        ("smooth_exp", "official", 1.0, x2, smooth_exp_official(x2, K, 1.0)),
        ("smooth_exp", "official", 0.5, x2, smooth_exp_official(x2, K, 0.5)),
        ("smooth_exp", "paper", 1.0, x2, smooth_exp_paper(x2, K, 1.0)),
    ]
    frames = [
        pd.DataFrame({"function": f, "variant": v, "c": c, "x": x, "value": y, "in_domain": (x <= 1.0) | (f != "smooth_log")})
        for f, v, c, x, y in parts
    ]
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------- examples
@dataclass
class GroundingExample:
    """One 2D grounding sample: image (uint8 HxW), GT xyxy box, phrase, two key points."""

    image: np.ndarray
    gt_box: np.ndarray  # int64 (4,)
    phrase: str
    gt_points: np.ndarray  # (2, 2); MedReasoner's key points
    source: str

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def key_points_in_box(box: Any) -> np.ndarray:
    """Two interior key points on the box's centre line, at 30 % and 70 % of its longer side
    (U-MRG annotates its own; the chest benchmark has only boxes)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if x2 - x1 >= y2 - y1:
        pts = [[x1 + 0.3 * (x2 - x1), cy], [x1 + 0.7 * (x2 - x1), cy]]
    else:
        pts = [[cx, y1 + 0.3 * (y2 - y1)], [cx, y1 + 0.7 * (y2 - y1)]]
    return np.round(np.array(pts))


#: Finding kinds tried in order for the example image: bright findings first, which the test
#: scorer's "opacity" words match.
EXAMPLE_KINDS = ("consolidation", "mass", "infiltrate", "nodule", "atelectasis", "effusion")


def _chest_config(profile: str) -> tuple[str, int, dict]:
    """(profile used, image size, split sizes) of the benchmark; unknown profiles use "smoke"."""
    from ..synthetic import PROFILES

    name = profile if profile in PROFILES else "smoke"
    cfg = PROFILES[name]["chest"]
    return name, int(cfg["image_size"]), dict(cfg["sizes"])


def chest_example(
    profile: str = "smoke", seed: int = 0, kinds: tuple[str, ...] = EXAMPLE_KINDS, split: str = "test"
) -> GroundingExample:
    """An MS-CXR-style ``split`` image of the embedded benchmark (``profile``, ``seed``): the
    first whose target is ``kinds[0]``, else ``kinds[1]``, ...; rendered in memory, the same
    pixels and phrase ``generate_chest`` writes for that image."""
    from ..synthetic.chest import draw_sample, kinds_for_split
    from ..synthetic.chest_phrases import referring_phrase

    name, image_size, sizes = _chest_config(profile)
    if sizes.get(split, 0) < 1:
        raise ValueError(f"benchmark profile {name!r} has no {split!r} images; splits: {sizes}")
    all_kinds = kinds_for_split(seed, "ms_cxr", split, sizes[split])
    i = next((all_kinds.index(k) for k in kinds if k in all_kinds), 0)
    smp, rng = draw_sample(seed, "ms_cxr", split, i, all_kinds[i], image_size)
    phrase = referring_phrase(all_kinds[i], smp.target.attrs, smp.target.side, rng)
    box = np.array(smp.target.box, dtype=np.int64)
    src = f"embedded benchmark ({name}, seed {seed}), MS-CXR {split} image {i}: {all_kinds[i]}, {image_size} px"
    return GroundingExample(smp.image, box, phrase, key_points_in_box(box), src)


def synthetic_example(size: int = 224, seed: int = 0) -> GroundingExample:
    """A dark noisy field with one bright elliptical opacity (for installs without the benchmark)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy, rx, ry = 0.35 * size, 0.55 * size, 0.08 * size, 0.06 * size
    blob = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    img = 60.0 + 15.0 * rng.standard_normal((size, size)) + 150.0 * blob
    box = np.array([np.floor(cx - rx), np.floor(cy - ry), np.ceil(cx + rx) + 1, np.ceil(cy + ry) + 1], dtype=np.int64)
    return GroundingExample(
        np.clip(img, 0, 255).astype(np.uint8), box, "dense opacity in the right mid lung zone",
        key_points_in_box(box), f"synthetic image ({size} px, seed {seed})",
    )  # fmt: skip


def landscape_example(profile: str = "smoke", seed: int = 0) -> GroundingExample:
    """:func:`chest_example` when :mod:`medlib.synthetic.chest` is installed, else :func:`synthetic_example`."""
    try:
        return chest_example(profile, seed)
    except ImportError:
        return synthetic_example(224, seed)


# ------------------------------------------------------------------- completions
def medground_completion(box: Any, phrase: str) -> str:
    """A Chain-of-Box MedGround-R1 completion answering ``box`` (``medlib.prompts`` format)."""
    from ..prompts import medground_answer

    return medground_answer(box, phrase, template="chain_of_box")


def medreasoner_completion(box: Any, points: Any) -> str:
    """A MedReasoner completion (think block, JSON answer with bbox / points_1 / points_2)."""
    from ..prompts import medreasoner_answer

    return medreasoner_answer(box, points, reasoning="The target is the bright region in the lung.")


def medvol_completion(key_slice: int, boxes: Any) -> str:
    """A MedVol-R1 completion naming ``<slice key_slice>`` and its boxes."""
    from ..prompts import medvol_answer

    return medvol_answer(key_slice, boxes)


# -------------------------------------------------------------------- landscape
def slid_boxes(gt_box: Any, width: int, max_shift: float = 1.5, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integer horizontal shifts ``dx`` (|dx| <= max_shift x GT width, box kept inside the
    image of ``width``) and the (n, 4) shifted GT boxes."""
    b = np.asarray(gt_box, dtype=np.int64)
    w = int(b[2] - b[0])
    lo, hi = max(-int(max_shift * w), -int(b[0])), min(int(max_shift * w), int(width - b[2]))
    dx = np.arange(lo, hi + 1, step, dtype=np.int64)
    return dx, b[None, :] + dx[:, None] * np.array([1, 0, 1, 0])


def reward_landscape(ex: GroundingExample, scorer: Any, max_shift: float = 1.5, step: int = 1) -> pd.DataFrame:
    """Rewards of the GT box slid horizontally across itself (one row per shift ``dx_px``;
    ``shift`` = dx / GT width): IoU, MedGround-R1 spatial (IoU > 0.5), continuous IoU,
    semantic (crop vs phrase, ``scorer``), the released whole-image semantic reward, and
    MedReasoner's soft official box IoU term (smoothed, penalised)."""
    dx, boxes = slid_boxes(ex.gt_box, ex.size[0], max_shift, step)
    n = len(dx)
    texts = [medground_completion(b, ex.phrase) for b in boxes]
    cols = {"solution": [ex.gt_box.tolist()] * n, "phrase": [ex.phrase] * n, "image": [ex.image] * n}
    out = pd.DataFrame({"dx_px": dx, "shift": dx / float(ex.gt_box[2] - ex.gt_box[0])})
    out["iou"] = box_iou_pairs(boxes.astype(np.float64), ex.gt_box.astype(np.float64))
    out["medground_spatial"] = MedGroundSpatial()(completions=texts, **cols)
    out["medground_iou"] = MedGroundIoU()(completions=texts, **cols)
    out["medground_semantic"] = MedGroundSemantic(scorer)(completions=texts, **cols)
    out["medground_semantic_released"] = MedGroundSemanticReleased(scorer)(completions=texts, **cols)
    mr = [medreasoner_completion(b, ex.gt_points) for b in boxes]
    out["medreasoner_box_iou"] = medreasoner_batch(mr, cols["solution"], [ex.gt_points.tolist()] * n,
                                                   families=("box",))["box_iou"]  # fmt: skip
    return out


# ---------------------------------------------------------------------- penalty
def scaled_boxes(gt_box: Any, scales: Any) -> np.ndarray:
    """Integer boxes with the GT centre and each side multiplied by ``scale`` (n, 4)."""
    b = np.asarray(gt_box, dtype=np.float64)
    c, half = (b[:2] + b[2:]) / 2, (b[2:] - b[:2]) / 2
    s = np.asarray(scales, dtype=np.float64)[:, None]
    return np.round(np.hstack([c - s * half, c + s * half]))


def penalty_effect(
    gt_box: Any, gt_points: Any, scales: Any = None, variant: str = "official"
) -> pd.DataFrame:
    """MedReasoner's box IoU term for boxes of growing size centred on the GT: the smoothed
    IoU without penalty, the validity flags, the factor ``lam + (1 - lam) (v1 + v2) / 2`` and
    the penalised term the reward returns (Eq. 10)."""
    scales = np.linspace(0.3, 3.0, 109) if scales is None else np.asarray(scales, dtype=np.float64)
    boxes = scaled_boxes(gt_box, scales)
    n = len(boxes)
    texts = [medreasoner_completion(b, gt_points) for b in boxes]
    gt = np.asarray(gt_box, dtype=np.float64)
    res = medreasoner_batch(texts, [gt.tolist()] * n, [np.asarray(gt_points).tolist()] * n,
                            variant=variant, families=("box",))  # fmt: skip
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    iou = box_iou_pairs(boxes, gt)
    smooth = smooth_log_official if variant == "official" else smooth_log_paper
    v1, v2 = res["box_position_valid"], res["box_area_valid"]
    return pd.DataFrame({
        "scale": scales, "area_ratio": area(boxes) / area(gt), "iou": iou,
        "smoothed": smooth(iou, K), "box_position_valid": v1, "box_area_valid": v2,
        "factor": LAMBDA + (1 - LAMBDA) * (v1 + v2) / 2, "penalised": res["box_iou"],
    })  # fmt: skip


# ----------------------------------------------------------------------- volume
@dataclass
class VolumeExample:
    """A CT-like volume [z, y, x] (HU), its GT mask and the query."""

    volume: np.ndarray
    mask: np.ndarray
    query: str


def synthetic_volume_example(shape: tuple[int, int, int] = (32, 64, 64), seed: int = 0) -> VolumeExample:
    """Two kidney-like ellipsoids (180 HU) in soft tissue (40 +- 15 HU), centred on different
    slices, so the key slice holds two GT boxes whose areas change from slice to slice."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0 : shape[0], 0 : shape[1], 0 : shape[2]].astype(np.float64)
    Z, Y, X = shape
    mask = np.zeros(shape, dtype=bool)
    for cz, cx, rz in ((0.45 * Z, 0.3 * X, 0.22 * Z), (0.55 * Z, 0.7 * X, 0.2 * Z)):
        mask |= ((z - cz) / rz) ** 2 + ((y - 0.5 * Y) / (0.16 * Y)) ** 2 + ((x - cx) / (0.1 * X)) ** 2 <= 1.0
    vol = 40.0 + 15.0 * rng.standard_normal(shape) + 140.0 * mask
    return VolumeExample(vol.astype(np.float32), mask, "both kidneys")


class ThresholdFloodSegmenter:
    """Deterministic :class:`~medlib.segment.base.Segmenter` standing in for MedSAM2 on CPU:
    voxels above ``threshold`` inside each box on the key slice, then slice by slice outwards
    the voxels above threshold within ``grow`` px of the previous slice's mask, until empty."""

    name = "threshold-flood"

    def __init__(self, threshold: float = 110.0, grow: int = 2):
        self.threshold = threshold
        self.grow = grow

    def segment_2d(self, image: np.ndarray, box: Any = None, points: Any = None) -> np.ndarray:
        fg = np.asarray(image, dtype=np.float64) > self.threshold
        if box is None:
            return fg
        m = np.zeros_like(fg)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        m[max(y1, 0) : y2, max(x1, 0) : x2] = fg[max(y1, 0) : y2, max(x1, 0) : x2]
        return m

    def propagate_3d(self, volume: np.ndarray, key_slice: int, boxes: Any) -> np.ndarray:
        from scipy.ndimage import binary_dilation

        vol = np.asarray(volume, dtype=np.float64)
        out = np.zeros(vol.shape, dtype=bool)
        for b in boxes:
            out[key_slice] |= self.segment_2d(vol[key_slice], b)
        for step in (-1, 1):
            t = key_slice + step
            while 0 <= t < len(vol) and out[t - step].any():
                out[t] |= (vol[t] > self.threshold) & binary_dilation(out[t - step], iterations=self.grow)
                t += step
        return out


# -------------------------------------------------------------------- worked example
def _row(paper: str, reward: str, setting: str, value: float | None, detail: str = "") -> dict:
    return {"paper": paper, "reward": reward, "setting": setting,
            "value": np.nan if value is None else float(value), "detail": detail}  # fmt: skip


def worked_medground(text: str, ex: GroundingExample, scorer: Any) -> pd.DataFrame:
    """Every MedGround-R1 reward of one completion (Sec. 2.2-2.3), paper set and variants."""
    cols = {"solution": [ex.gt_box.tolist()], "phrase": [ex.phrase], "image": [ex.image]}
    from ..parsing import parse_medground

    box = parse_medground(text).box
    iou = box_iou(box, ex.gt_box) if box is not None else 0.0
    vals = {
        "format": MedGroundFormat()([None], [text])[0],
        "spatial": MedGroundSpatial()([None], [text], **cols)[0],
        "semantic": MedGroundSemantic(scorer)([None], [text], **cols)[0],
    }
    rows = [
        _row("MedGround-R1", "format", "paper (footnote 7, braces)", vals["format"], "think + answer + {..[x1, y1, x2, y2]..}"),
        _row("MedGround-R1", "format", "bare box allowed (braces=False)", MedGroundFormat(braces=False)([None], [text])[0]),
        _row("MedGround-R1", "spatial", "paper (IoU > 0.5)", vals["spatial"], f"IoU = {iou:.3f}, box {list(map(int, box or ()))}"),
        _row("MedGround-R1", "iou", "variant (continuous IoU)", MedGroundIoU()([None], [text], **cols)[0]),
        _row("MedGround-R1", "semantic", "paper (crop of the predicted box vs phrase)", vals["semantic"], f"phrase: {ex.phrase!r}"),
        _row("MedGround-R1", "semantic_released", "released code (whole image, cos > 0)",
             MedGroundSemanticReleased(scorer)([None], [text], **cols)[0], "ignores the completion"),
        _row("MedGround-R1", "total", "paper set, weights 1", sum(vals.values()), "format + spatial + semantic"),
    ]  # fmt: skip
    return pd.DataFrame(rows)


MEDREASONER_SETTINGS = (("soft", "official"), ("hard", "official"), ("hard", "paper"), ("base", "official"))


def worked_medreasoner(text: str, ex: GroundingExample) -> pd.DataFrame:
    """Every MedReasoner term and validity flag of one completion in each mode / variant
    (Sec. 4.3, App. C.3-C.4); ``base`` also with the public code's GT bug replicated."""
    from ..parsing import parse_medreasoner

    a = parse_medreasoner(text)
    rows = []
    for mode, variant in MEDREASONER_SETTINGS + (("base (GT bug)", "official"),):
        m = mode.split()[0]
        res = medreasoner_scores(text, ex.gt_box.tolist(), ex.gt_points.tolist(), m, variant,
                                 model_size=ex.size, replicate_base_gt_bug=mode != m)  # fmt: skip
        setting = f"{mode} / {variant}" + (" (default)" if (mode, variant) == ("soft", "official") else "")
        for term in (*TERMS[m], *(k for k in res if k.endswith("_valid")), "score"):
            detail = ""
            if term == "box_iou" and a.box is not None:
                detail = f"IoU = {box_iou(a.box, ex.gt_box):.3f}"
            elif term == "points_dice" and a.points is not None:
                d = float(point_pair_disc_dice(np.array(a.points), ex.gt_points))
                detail = f"disc Dice = {d:.3f}" + (f"; code's 2 inter/union = {2 * d / (2 - d):.3f}" if variant == "official" else "")
            rows.append(_row("MedReasoner", term, setting, res[term], detail))
    return pd.DataFrame(rows)


def pivot_worked(table: pd.DataFrame) -> pd.DataFrame:
    """A worked-example table as reward x setting (settings in their order of appearance, rewards
    in the order: format, box, points, validity, base terms, others, score)."""
    order = [*TERMS["hard"], "box_position_valid", "box_area_valid", "points_position_valid",
             "points_spread_valid", *TERMS["base"]]  # fmt: skip
    rewards = list(dict.fromkeys(table.reward))
    rewards.sort(key=lambda r: (r == "score", order.index(r) if r in order else len(order)))
    wide = table.pivot_table(index="reward", columns="setting", values="value", sort=False, dropna=False)
    return wide.reindex(index=rewards, columns=list(dict.fromkeys(table.setting)))


def worked_medvol(text: str, ex: VolumeExample, segmenter: Any = None, delta: int = DELTA) -> pd.DataFrame:
    """Every MedVol-R1 reward of one completion (Sec. 2.5) with ``segmenter`` for R_c
    (default :class:`ThresholdFloodSegmenter`)."""
    from ..parsing import parse_medvol

    seg = segmenter if segmenter is not None else ThresholdFloodSegmenter()
    cols = {"mask": [ex.mask], "volume": [ex.volume]}
    a = parse_medvol(text)
    areas = ex.mask.reshape(len(ex.mask), -1).sum(axis=1)
    z = None if a.key_slice is None else a.key_slice - SLICE_BASE
    vals = {
        "R_f format": MedVolFormat()([None], [text])[0],
        "R_a axial": MedVolAxial()([None], [text], **cols)[0],
        "R_s spatial": MedVolSpatial()([None], [text], **cols)[0],
        "R_c cross-slice": MedVolCrossSlice(seg, delta)([None], [text], **cols)[0],
    }
    from ..geometry import mask_to_boxes

    in_vol = z is not None and 0 <= z < len(areas)
    n_gt = len(mask_to_boxes(ex.mask[z])) if in_vol else 0
    details = {
        "R_f format": "think + answer with key_slice and bbox_2d_list",
        "R_a axial": f"F_k / max F = {areas[z]} / {areas.max()} (slice z = {z})" if in_vol else "no slice",
        "R_s spatial": f"Hungarian on 1 - IoU, sum / max(N = {len(a.boxes or ())}, N* = {n_gt})",
        "R_c cross-slice": f"Dice on |t - k| <= {delta}, segmenter {getattr(seg, 'name', seg)!r}",
    }
    rows = [_row("MedVol-R1", k, "paper (weights 1)", v, details[k]) for k, v in vals.items()]
    rows.append(_row("MedVol-R1", "total", "paper (weights 1)", sum(v for v in vals.values() if v is not None)))
    return pd.DataFrame(rows)


def worked_example(
    mg_text: str, mr_text: str, mv_text: str, ex: GroundingExample, vol: VolumeExample, scorer: Any,
    segmenter: Any = None,
) -> pd.DataFrame:
    """Tidy table (paper, reward, setting, value, detail) of the three worked examples."""
    return pd.concat([worked_medground(mg_text, ex, scorer), worked_medreasoner(mr_text, ex),
                      worked_medvol(mv_text, vol, segmenter)], ignore_index=True)  # fmt: skip


# -------------------------------------------------------------- paper vs code
DISAGREEMENT_COLUMNS = ("id", "paper", "component", "paper_says", "code_does", "default", "medlib_default", "why", "source")
#: Who medlib follows by default: the paper, the released code, or its own choice (neither).
DEFAULT_CHOICES = ("paper", "code", "medlib")

_MG, _MR, _MV = "MedGround-R1", "MedReasoner", "MedVol-R1"
_MG_SRC = "docs/medground_r1.md; github bio-mlhui/MedGround-R1"
_MR_SRC = "docs/medreasoner.md; PRIS-CV/MedReasoner verl/utils/reward_score/med_grounding.py"
DISAGREEMENTS: tuple[tuple[str, ...], ...] = (
    ("mg_semantic_region", _MG, "semantic reward: what is scored",
     "Cosine of a frozen MedCLIP's embeddings of the crop of the predicted box and the referring expression (Sec. 2.3); continuous, one value per completion.",
     "medclip_reward scores the whole image against the ground-truth text and returns 1 if cosine > 0, else 0; it never reads the completion.",
     "paper", "medground_semantic crops the predicted box; medground_semantic_released reproduces the code for comparison.",
     "The code's value is the same for all G completions of a prompt, so it adds nothing to the group-normalised advantage.",
     _MG_SRC + " grpo_rec.py"),
    ("mg_semantic_plumbing", _MG, "semantic reward: running it",
     "A frozen MedCLIP scores every completion during training.",
     "Reloads MedCLIP on every call and its signature does not match the trainer's call (TypeError; issues #4, #5, #7).",
     "paper", "medlib.semantic.load_scorer loads one scorer per spec per process; all crops of a batch go through it in one call.",
     "The released function raises before it returns a reward, so it cannot have produced the reported numbers.",
     _MG_SRC + " issues #4, #5, #7"),
    ("mg_format_braces", _MG, "format reward: answer syntax",
     "Sec. 2.2 text: the <answer> must contain a box [x1, y1, x2, y2].",
     "Footnote 7 / VLM-R1 regex also requires braces around it: <answer>..{..[x1, y1, x2, y2]..}..</answer>; a bare box scores 0.",
     "code", "medground_format(braces=True) is footnote 7's regex; braces=False accepts a bare box.",
     "The paper prints this regex and the prompt asks for JSON; Qwen2.5-VL's {\"bbox_2d\": [..]} matches it.",
     _MG_SRC + "; paper footnotes 7-8"),
    ("mg_spatial_threshold", _MG, "spatial reward: thresholded or continuous",
     "Sec. 2 overview: R_spatial 'calculates the IoU'; Sec. 2.3: 1 if IoU > 0.5, else 0.",
     "VLM-R1 accuracy reward: 1 if IoU > 0.5, else 0 (as Sec. 2.3).",
     "paper", "medground_spatial (IoU > 0.5, Sec. 2.3); medground_iou gives the continuous IoU as a variant.",
     "Sec. 2.3 and the code agree; only the overview reads as continuous.",
     _MG_SRC + "; paper Secs. 2, 2.3"),
    ("mg_reward_set", _MG, "reward set",
     "format + spatial + semantic, summed then group-normalised (Sec. 2, Table 3).",
     "The run script enables accuracy + format only (no semantic reward).",
     "paper", "default_weights('medground') = format, spatial, semantic, each weight 1.",
     "Table 3 attributes part of the result to the semantic reward.",
     _MG_SRC + " run_grpo_rec.sh"),
    ("mg_training_config", _MG, "backbone and GRPO settings",
     "Qwen2.5-VL-7B, G = 4, beta = 0.04, lr 1e-6, 5K steps, max completion 256.",
     "Run script: Qwen2.5-VL-3B, 8 generations; lr, beta and completion length left at library defaults.",
     "paper", "The paper's G, beta, lr and completion length (training configs); the CPU profile swaps in a small model.",
     "The paper states the settings behind its tables.",
     _MG_SRC + " run_grpo_rec.sh"),
    ("mg_chain_of_box", _MG, "Chain-of-Box prompt",
     "Sec. 2.4: the think text appends [x1, y1, x2, y2] after every region it mentions.",
     "No Chain-of-Box prompt exists in the code; the prompt is the plain R1 suffix.",
     "code", "medlib.prompts.medground_text(template='r1') is the released prompt; template='chain_of_box' adds the paper's rule.",
     "The paper shows the template only in Fig. 1; medlib's wording of it is its own, so it is opt-in.",
     _MG_SRC),
    ("mg_reported_numbers", _MG, "reported results",
     "MS-CXR mIoU 79.02 / Acc 83.12 (Table 1, README).",
     "The log the README cites records Acc 37.13 on 167 samples.",
     "medlib", "Notebooks show medlib's measurements next to the paper's numbers, labelled 'reported' (results/reported/).",
     "The released artefacts cannot reproduce the paper's numbers.",
     _MG_SRC + " eval/logs"),
    ("mr_format_values", _MR, "format rewards: values",
     "R_think and R_answer take 'discrete values in [0, 1]' (Sec. 4.3); no values given.",
     "think 0 (no block) / 0.2 (empty) / 1; answer 0 / 0.2 (not a JSON object) / 0.4 (missing keys or both malformed) / 0.6 (one malformed) / 1.",
     "code", "format_think, format_answer use the code's values in both variants.",
     "The paper gives no values.",
     _MR_SRC),
    ("mr_smooth_log_affine", _MR, "S_log (Eq. 8)",
     "S_log(r) = log(k r + 1) / log(k + 1), from 0 to 1.",
     "0.9 S_log(r) + 0.1, from 0.1 to 1.",
     "code", "variant='official'; variant='paper' uses Eq. 8 as printed.",
     "Fig. 12 plots 0.1 to 1.0, the code's curve; the code presumably produced the numbers. A box with IoU 0 still earns 0.1 (times the penalty).",
     _MR_SRC + "; paper Eq. 8, Fig. 12"),
    ("mr_smooth_exp_normalised", _MR, "S_exp (Eq. 9)",
     "S_exp(d) = 1 / (1 + exp(k (d - c))), unnormalised: 0.953 at d = 0 to 0.047 at d = 2 (k = 3, c = 1).",
     "The sigmoid min-max normalised over d in [0, 2], then 0.9 s + 0.1: exactly 1.0 to 0.1.",
     "code", "variant='official'; variant='paper' uses Eq. 9 as printed.",
     "Fig. 13 plots 1.0 to 0.1, the code's curve.",
     _MR_SRC + "; paper Eq. 9, Fig. 13"),
    ("mr_scale_centre", _MR, "box scale term: centre c",
     "S_exp with default c = 1 for R_scale (Eq. 9).",
     "c = 0.5, and the scale distance is clipped at 1, so the term never falls below S_exp(1; c=0.5) = 0.291.",
     "code", "variant='official' (c = 0.5, d <= 1); variant='paper' (c = 1, d in [0, 2]).",
     "Follows the code that produced the numbers.",
     _MR_SRC),
    ("mr_box_align_norm", _MR, "box alignment (Eq. 3)",
     "Eq. 3: mean |corner difference| of [0, 1]-normalised coordinates; the text says 'normalized by the diagonal of B_g'.",
     "Mean |corner difference| in pixels / GT-box diagonal, clipped to [0, 2].",
     "code", "Both variants divide by the GT diagonal (the text's and the code's reading).",
     "Eq. 3 alone has no normaliser; the text and the code agree.",
     _MR_SRC + "; paper Eq. 3"),
    ("mr_pdice_double", _MR, "points pDice (Eq. 5)",
     "Dice of the two discs: 2 |O_p and O_g| / (|O_p| + |O_g|), in [0, 1].",
     "2 inter / (union + 1e-5), twice the discs' IoU, in [0, 2]; after S_log the final clip caps the term at 1.",
     "code", "variant='official'; variant='paper' is the true Dice (geometry.point_pair_disc_dice).",
     "Follows the code. Consequence: the term saturates at 1 once the discs' IoU reaches 0.5, where the validity penalty no longer lowers it.",
     _MR_SRC + "; paper Eq. 5"),
    ("mr_points_align", _MR, "points alignment (Eq. 6)",
     "Mean L1 between corresponding points, coordinates normalised to [0, 1] by the image size.",
     "Order-free (the better of the two pairings), divided by the GT-box diagonal, clipped to [0, 2].",
     "code", "variant='official'; variant='paper' needs the image size (model_size).",
     "Follows the code that produced the numbers.",
     _MR_SRC + "; paper Eq. 6"),
    ("mr_validity_rules", _MR, "validity scores v1, v2",
     "Qualitative (App. C.4): GT points 'largely contained' in the box, box area plausible, points within the GT box or image, points neither too close nor too far; 1 or 0.5.",
     "Box: product of two per-point inside checks (1, 0.5 or 0.25) and 0.5 < area ratio < 2; points: product of inside-GT-box checks and > 10 px apart (no upper bound).",
     "code", "The code's rules in both variants.",
     "The paper gives no rule to implement.",
     _MR_SRC + "; paper App. C.4"),
    ("mr_penalty_clip_round", _MR, "penalised reward (Eq. 10)",
     "lam r + (1 - lam) r (v1 + v2) / 2, no clipping or rounding.",
     "Clipped to [0, 1] and rounded to 4 decimals.",
     "code", "variant='official'; variant='paper' clips (to stay in range) but does not round.",
     "Follows the code.",
     _MR_SRC + "; paper Eq. 10"),
    ("mr_coordinates", _MR, "coordinate frame",
     "All box and point coordinates normalised to [0, 1] (Sec. 4.3).",
     "Pixels of the frame the model answers in; the 10 px spread check is absolute.",
     "code", "Pixels of the model frame in both variants.",
     "IoU, Dice, the angle and the diagonal-normalised distances do not depend on the scale; the spread check does.",
     _MR_SRC),
    ("mr_failure_handling", _MR, "malformed answers",
     "Not specified.",
     "One try/except per family: any failure zeroes the whole box or points family, validity flags included; in hard mode a box with zero height or one negative side fails the scale term and zeroes the box family.",
     "code", "Reproduced in both variants; medlib also zeroes a family with non-finite numbers, where the code gives NaN or an overflow error.",
     "Follows the code; non-finite rewards would break training.",
     _MR_SRC),
    ("mr_base_gt_bug", _MR, "base mode (Seg-Zero-like)",
     "'Base': a hard-threshold scheme (Table 3, IoU 15.85).",
     "med_base.py calls .strip() on the already-parsed ground-truth dict, so its IoU > 0.5 and box-L1 terms are always 0.",
     "paper", "base terms work as intended; replicate_base_gt_bug=True reproduces the code.",
     "The paper describes a working scheme; if its Base row was trained with this code, its IoU and box-L1 terms never fired.",
     _MR_SRC.replace("med_grounding.py", "med_base.py") + "; paper Table 3"),
    ("mv_no_code", _MV, "all rewards",
     "R_f, R_a = F_k / max F_t, R_s (Hungarian on 1 - IoU, / max(N, N*)), R_c (Dice within |t - k| <= Delta), weights 1 (Sec. 2.5).",
     "No public code exists.",
     "paper", "Sec. 2.5 as printed; the answer schema (key_slice, bbox_2d_list) is medlib's (medlib.parsing).",
     "Nothing to compare with.",
     "docs/medvol_r1.md"),
)  # fmt: skip


def disagreements() -> pd.DataFrame:
    """The paper-vs-code disagreements (:data:`DISAGREEMENTS`) as a DataFrame."""
    return pd.DataFrame(list(DISAGREEMENTS), columns=list(DISAGREEMENT_COLUMNS))

