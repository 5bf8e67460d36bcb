"""Evaluation of trained checkpoints: batched greedy generation, the papers'
parsers, model-frame -> original-frame mapping, segmentation where the paper needs it, metrics
with bootstrap intervals, per-sample JSONL and a summary JSON with provenance.

* :func:`generate` (rows -> greedy completions), :func:`load_for_eval`;
* :func:`evaluate_2d` (MedGround-R1, MedReasoner), :func:`evaluate_3d` (MedVol-R1);
* ``python -m medlib.evaluate --config ... --model ... --split test --out ...``.
"""

from .generation import generate
from .grounding2d import evaluate_2d, score_2d
from .loading import load_for_eval
from .provenance import config_hash, provenance
from .volume3d import evaluate_3d, score_3d

__all__ = ["config_hash", "evaluate_2d", "evaluate_3d", "generate", "load_for_eval", "provenance", "score_2d",
           "score_3d"]
