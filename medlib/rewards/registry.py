"""Compose each paper's reward set for TRL.

``build_reward_set(paper, weights, **options) -> (reward_funcs, reward_weights)`` gives the
lists to pass as ``GRPOTrainer(reward_funcs=...)`` and ``GRPOConfig(reward_weights=...)``.
Every reward is a picklable callable ``(prompts, completions, **columns) -> list[float | None]``
with a ``__name__`` TRL logs; None marks a row the reward does not apply to (TRL ignores it).

Dataset columns (TRL passes every column of the batch as a keyword argument)
-----------------------------------------------------------------------------
All coordinates are pixels of the frame the model answers in (the "model frame").

==================  =================================================================  ==========
column              meaning                                                            used by
==================  =================================================================  ==========
``solution``        GT box ``[x1, y1, x2, y2]`` (list, array or JSON string)          MG, MR
``phrase``          referring expression / query text for the semantic reward          MG
``image``           the image (PIL or array); or ``images`` (list, first used), or     MG, MR
                    ``image_path`` (read once and cached)
``model_size``      optional ``(width, height)`` of the model frame; default: the      MG, MR, MV
                    image's own size (MG semantic, MR paper points_align) or the
                    mask's in-plane size (MV)
``points``          GT key points ``[[x, y], [x, y]]``                                 MR
``ground_truth``    alternative to solution + points: the public MedReasoner JSON      MR
                    ``{"bbox_2d": [...], "point_2d": [[..], [..]]}``
``mask_path``       GT mask volume (NIfTI / npy, [z, y, x]); or ``mask`` as an array    MV
``mask_value``      optional label id inside a multi-label mask (default: any nonzero)  MV
``volume_path``     CT volume for propagation; or ``volume`` as an array [z, y, x]      MV (R_c)
``slice_indices``   optional volume z of each ``<slice k>`` shown, in prompt order      MV
==================  =================================================================  ==========

MG = MedGround-R1, MR = MedReasoner, MV = MedVol-R1. A missing column raises
:class:`~medlib.rewards._common.RewardInputError` naming it; an unusable cell gives None.

Rewards by paper (name in weights -> TRL name)
----------------------------------------------
* ``medground``: format, spatial, semantic (paper set, weights 1); also iou (continuous IoU)
  and semantic_released (the released code's whole-image variant, comparison only).
* ``medreasoner``: mode ``soft`` (default): format_think, format_answer, box_iou,
  points_dice; ``hard`` adds box_align, box_scale, points_align, points_angle; ``base``:
  base_think_format, base_answer_format, base_box_iou, base_box_l1, base_points_l1.
  Option ``variant``: ``official`` (public code, default) or ``paper``.
* ``medvol``: format, axial, spatial, cross_slice (cross_slice needs ``segmenter=``; option
  ``window``: ``sampled``, R_c's Delta in shown slices, default, or ``native`` volume z).

Models
------
A reward set only holds specs: the MedGround-R1 semantic reward resolves ``semantic_scorer``
through :func:`medlib.semantic.load_scorer` and MedVol-R1's cross-slice reward a segmenter spec
through :func:`medlib.segment.get_segmenter`, each on first use, each cached once there.
"""

from __future__ import annotations

import math
from typing import Any

from .medground import (
    DEFAULT_SCORER,
    MedGroundFormat,
    MedGroundIoU,
    MedGroundSemantic,
    MedGroundSemanticReleased,
    MedGroundSpatial,
)
from .medreasoner import MODES, VARIANTS, MedReasonerReward
from .medreasoner import TERMS as MEDREASONER_TERMS
from .medvol import (
    DEFAULT_WINDOW,
    DELTA,
    SLICE_BASE,
    MedVolAxial,
    MedVolCrossSlice,
    MedVolFormat,
    MedVolSpatial,
)


class RewardConfigError(ValueError):
    """An unknown paper, reward name or option in a reward configuration."""


PAPERS = ("medground", "medreasoner", "medvol")
_ALIASES = {
    "medground-r1": "medground",
    "medground_r1": "medground",
    "medvol-r1": "medvol",
    "medvol_r1": "medvol",
}

_OPTIONS: dict[str, dict[str, Any]] = {
    "medground": {
        "semantic_scorer": DEFAULT_SCORER,
        "braces": True,
        "lenient": False,
        "frame": "image",
        "spatial_threshold": 0.5,
        "min_pixels": None,
        "max_pixels": None,
    },
    "medreasoner": {"mode": "soft", "variant": "official", "replicate_base_gt_bug": False},
    "medvol": {"segmenter": None, "delta": DELTA, "slice_base": SLICE_BASE, "connectivity": 2, "window": DEFAULT_WINDOW},
}
_PAPER_SETS = {
    "medground": ("format", "spatial", "semantic"),
    "medvol": ("format", "axial", "spatial", "cross_slice"),
}
_EXTRA = {"medground": ("iou", "semantic_released"), "medvol": ()}


# ---------------------------------------------------------------------------- sets
def _paper(paper: str) -> str:
    p = str(paper).strip().lower()
    p = _ALIASES.get(p, p)
    if p not in PAPERS:
        raise RewardConfigError(f"unknown paper {paper!r}; valid: {', '.join(PAPERS)}")
    return p


def reward_names(paper: str, mode: str = "soft") -> tuple[str, ...]:
    """Names accepted in ``weights`` for ``paper`` (and MedReasoner ``mode``)."""
    p = _paper(paper)
    if p == "medreasoner":
        if mode not in MODES:
            raise RewardConfigError(f"unknown MedReasoner mode {mode!r}; valid: {', '.join(MODES)}")
        return MEDREASONER_TERMS[mode]
    return _PAPER_SETS[p] + _EXTRA[p]


def default_weights(paper: str, mode: str = "soft") -> dict[str, float]:
    """The paper's own reward set, every weight 1 (all three papers sum their rewards)."""
    p = _paper(paper)
    names = MEDREASONER_TERMS[mode] if p == "medreasoner" else _PAPER_SETS[p]
    return {n: 1.0 for n in names}


def _make(p: str, name: str, o: dict[str, Any]) -> Any:
    if p == "medground":
        px = {k: o[k] for k in ("min_pixels", "max_pixels") if o[k] is not None}
        return {
            "format": lambda: MedGroundFormat(braces=o["braces"]),
            "spatial": lambda: MedGroundSpatial(lenient=o["lenient"], threshold=o["spatial_threshold"]),
            "iou": lambda: MedGroundIoU(lenient=o["lenient"]),
            "semantic": lambda: MedGroundSemantic(
                o["semantic_scorer"], lenient=o["lenient"], frame=o["frame"], **px
            ),
            "semantic_released": lambda: MedGroundSemanticReleased(o["semantic_scorer"]),
        }[name]()
    if p == "medreasoner":
        return MedReasonerReward(name, o["mode"], o["variant"], o["replicate_base_gt_bug"])
    if name == "format":
        return MedVolFormat()
    if name == "axial":
        return MedVolAxial(slice_base=o["slice_base"])
    if name == "spatial":
        return MedVolSpatial(slice_base=o["slice_base"], connectivity=o["connectivity"])
    if o["segmenter"] is None:
        raise RewardConfigError(
            "medvol reward 'cross_slice' needs segmenter= (a Segmenter or its spec), "
            "or leave it out of the weights"
        )
    return MedVolCrossSlice(o["segmenter"], o["delta"], o["slice_base"], o["connectivity"], window=o["window"])


def build_reward_set(
    paper: str, weights: dict[str, float] | None = None, **options: Any
) -> tuple[list, list[float]]:
    """Reward callables and their weights for ``paper`` (see module docstring).

    ``weights`` maps reward names (``"spatial"`` or ``"medground_spatial"``) to weights and
    defines the set; None gives :func:`default_weights`. Unknown papers, names or options
    raise :class:`RewardConfigError` listing the valid ones.
    """
    p = _paper(paper)
    unknown = sorted(set(options) - set(_OPTIONS[p]))
    if unknown:
        raise RewardConfigError(f"unknown {p} reward option(s) {unknown}; valid: {sorted(_OPTIONS[p])}")
    o = {**_OPTIONS[p], **options}
    if p == "medreasoner":
        if o["mode"] not in MODES or o["variant"] not in VARIANTS:
            raise RewardConfigError(
                f"medreasoner mode must be one of {MODES} and variant one of {VARIANTS}, "
                f"got mode={o['mode']!r}, variant={o['variant']!r}"
            )
    valid = reward_names(p, o.get("mode", "soft"))
    weights = default_weights(p, o.get("mode", "soft")) if weights is None else dict(weights)
    funcs, ws = [], []
    for key, w in weights.items():
        name = key[len(p) + 1 :] if str(key).startswith(p + "_") else key
        if name not in valid:
            raise RewardConfigError(f"unknown {p} reward {key!r}; valid: {', '.join(valid)}")
        try:
            w = float(w)
        except (TypeError, ValueError):
            w = math.nan
        if not math.isfinite(w):
            raise RewardConfigError(
                f"{p} reward {key!r}: weight must be a finite number, got {weights[key]!r}"
            )
        funcs.append(_make(p, name, o))
        ws.append(w)
    if not funcs:
        raise RewardConfigError(f"empty {p} reward set; valid names: {', '.join(valid)}")
    return funcs, ws
