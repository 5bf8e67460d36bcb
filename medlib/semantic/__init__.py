"""The semantic scorer of MedGround-R1's semantic reward (Sec. 2.3; docs/medground_r1.md).

* :mod:`.scorer`: :class:`ClipScorer`, a frozen open_clip model scoring (crop, phrase) pairs;
* :mod:`.stand_in`: :class:`MeanIntensityScorer`, the deterministic test stand-in;
* :mod:`.training`: the small CLIP trained on the embedded chest benchmark (no weights ship offline);
* :mod:`.evaluation`: its held-out retrieval and GT-vs-other-box numbers;
* :mod:`.loading`: :func:`load_scorer` (spec -> scorer, once per process; never trains unless
  asked) and :func:`ensure_trained` (the explicit training step);
* :mod:`.cli`: ``python -m medlib.semantic_train`` (train, evaluate, write results/semantic_clip.json).

Imports run one way: rewards ask this package for a scorer; nothing here imports the rewards.
"""

from .loading import clear_cache, ensure_trained, load_scorer
from .scorer import (
    CONFIG_NAME,
    DEFAULT_HUB_MODEL,
    INFO_NAME,
    WEIGHTS_NAME,
    ClipScorer,
    ScorerLoadError,
    as_rgb_uint8,
    image_array,
    pixel_boxes,
)
from .stand_in import STAND_IN_SPECS, MeanIntensityScorer, text_intensity

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_HUB_MODEL",
    "INFO_NAME",
    "STAND_IN_SPECS",
    "WEIGHTS_NAME",
    "ClipScorer",
    "MeanIntensityScorer",
    "ScorerLoadError",
    "as_rgb_uint8",
    "clear_cache",
    "ensure_trained",
    "image_array",
    "load_scorer",
    "pixel_boxes",
    "text_intensity",
]
