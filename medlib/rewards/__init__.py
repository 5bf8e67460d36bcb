"""Reward functions of MedGround-R1, MedReasoner and MedVol-R1, ready for ``trl.GRPOTrainer``.

``build_reward_set(paper, weights, **options)`` (in :mod:`.registry`) composes a paper's set;
the modules hold the rewards by paper: :mod:`.medground`, :mod:`.medreasoner`, :mod:`.medvol`
(smoothing and penalisation of MedReasoner in :mod:`.smoothing`). Model-backed rewards take
a spec and ask :mod:`medlib.semantic` / :mod:`medlib.segment` for the model on first use.
"""

from ._common import Reward, RewardInputError
from .medground import (
    SemanticScorer,
    medground_format,
    medground_iou,
    medground_semantic,
    medground_semantic_released,
    medground_spatial,
)
from .medreasoner import MedReasonerReward, medreasoner_batch, medreasoner_scores
from .medvol import medvol_axial, medvol_format, medvol_spatial
from .registry import (
    RewardConfigError,
    build_reward_set,
    default_weights,
    reward_names,
)

__all__ = [
    "MedReasonerReward",
    "Reward",
    "RewardConfigError",
    "RewardInputError",
    "SemanticScorer",
    "build_reward_set",
    "default_weights",
    "medground_format",
    "medground_iou",
    "medground_semantic",
    "medground_semantic_released",
    "medground_spatial",
    "medreasoner_batch",
    "medreasoner_scores",
    "medvol_axial",
    "medvol_format",
    "medvol_spatial",
    "reward_names",
]
