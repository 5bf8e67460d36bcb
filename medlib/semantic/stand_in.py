"""A deterministic stand-in for the semantic scorer (spec ``"mean-intensity"``, alias ``"test"``):
no model, no torch, the same numbers on every machine. For tests, benchmarks, the tiny test
config and notebook examples: it scores brightness, not meaning."""

from __future__ import annotations

import math
import zlib

import numpy as np

#: spec strings that name the stand-in
STAND_IN_SPECS = ("mean-intensity", "test")

_BRIGHT = ("bright", "opacity", "opacities", "consolidation", "dense", "hyperdense", "white", "mass")
_DARK = ("dark", "lucent", "lucency", "air", "black", "hypodense", "pneumothorax")


def text_intensity(text: str) -> float:
    """The test scorer's text "embedding": 1.0 for a phrase with a bright-finding word, 0.0 for
    a dark one, else a stable hash of the text in [0, 1)."""
    t = str(text).lower()
    if any(w in t for w in _BRIGHT):
        return 1.0
    if any(w in t for w in _DARK):
        return 0.0
    return zlib.crc32(t.encode("utf-8", "replace")) / 2**32


def _gray01(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    scale = 255.0 if a.dtype == np.uint8 or (a.size and float(np.nanmax(a)) > 1.0) else 1.0  # per crop
    a = a.astype(np.float64) / scale
    return a.mean(axis=-1) if a.ndim == 3 else a


class MeanIntensityScorer:
    """Deterministic semantic scorer (:class:`medlib.rewards.medground.SemanticScorer`) for tests: a crop embeds as the angle
    ``pi * mean intensity`` (in [0, 1]), a text as ``pi * text_intensity(text)``; the cosine
    is ``cos(pi * (m - t))``. A bright crop and a "bright opacity" phrase score 1, a dark crop
    -1. Counts calls and crops so tests can check batching."""

    def __init__(self) -> None:
        self.calls = 0
        self.crops = 0

    def similarity(self, images: list[np.ndarray], boxes: np.ndarray, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.crops += len(texts)
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        out = np.empty(len(texts))
        for i, (img, b, t) in enumerate(zip(images, boxes, texts)):
            crop = _gray01(np.asarray(img)[b[1] : b[3], b[0] : b[2]])
            m = float(crop.mean()) if crop.size else 0.5
            out[i] = math.cos(math.pi * (m - text_intensity(t)))
        return out

    def image_text_similarity(self, images: list[np.ndarray], texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array(
            [
                math.cos(math.pi * (float(_gray01(im).mean()) - text_intensity(t)))
                for im, t in zip(images, texts)
            ]
        )
