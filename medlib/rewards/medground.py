"""MedGround-R1 rewards (Xu et al. 2025, Sec. 2.2-2.3): format, spatial, semantic.

* :class:`MedGroundFormat` (``medground_format``): 1 if the completion fully matches the
  footnote-7 regex (think block, answer block holding ``{ .. [x1, y1, x2, y2] .. }`` with
  integers), else 0. ``braces=False`` accepts a bare ``[x1, y1, x2, y2]`` answer.
* :class:`MedGroundSpatial` (``medground_spatial``): 1 if IoU(pred, gt) > 0.5, else 0; the box is
  the footnote-8 integer regex inside the first answer block (VLM-R1's accuracy reward).
* :class:`MedGroundIoU` (``medground_iou``): the continuous IoU in [0, 1] (a variant).
* :class:`MedGroundSemantic` (``medground_semantic``): cosine in [-1, 1] between a frozen
  CLIP's embedding of the *crop of the predicted box* and the referring phrase (Sec. 2.3). All
  crops of a batch go through the scorer in one call. No box, or a box with no pixels inside
  the image, gives 0.
* :class:`MedGroundSemanticReleased` (``medground_semantic_released``): the released code's
  variant, for comparison only: the *whole image* against the ground-truth text, 1 if the
  cosine is > 0, else 0. It ignores the completion, so it is constant within a GRPO group.

Boxes are compared in the frame the model answers in (column ``solution``). For the crop,
the predicted box is mapped to the original image with column ``model_size`` (width, height
of the model frame) when present, else with ``frame="qwen"`` (Qwen2.5-VL smart resize of the
image's size), else taken as pixels of the image itself (``frame="image"``).

Scorers implement :class:`SemanticScorer`; a spec string (default :data:`DEFAULT_SCORER`) is
loaded by :func:`medlib.semantic.load_scorer` on first use (``"mean-intensity"`` is its
deterministic stand-in for tests and benchmarks, :mod:`medlib.semantic.stand_in`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..geometry import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, ModelFrame, box_iou_pairs
from ..parsing import parse_medground
from ._common import Reward, StepMemo, as_size, column, first_image, gt_boxes, optional_column

#: the scorer spec a semantic reward uses unless told otherwise: the paper's frozen medical CLIP
#: (BiomedCLIP from the hub, :func:`medlib.semantic.load_scorer`), never the test stand-in
DEFAULT_SCORER = "default"
SPATIAL_IOU_THRESHOLD = 0.5  # Sec. 2.3: "If the IoU exceeds a threshold of 0.5, the reward is 1"
_STEP = StepMemo()


@runtime_checkable
class SemanticScorer(Protocol):
    """A frozen image-text model (MedCLIP / BiomedCLIP / open_clip) behind one batched call.

    * ``similarity(images, boxes, texts)``: ``images`` N arrays (HxW or HxWx3), ``boxes`` (N, 4)
      integer xyxy pixels inside each image with x2 > x1, y2 > y1, ``texts`` N strings; returns
      (N,) cosines in [-1, 1] between the crop of each box and its text.
    * ``image_text_similarity(images, texts)``: (N,) cosines of whole images and texts.
    """

    def similarity(self, images: list[np.ndarray], boxes: np.ndarray, texts: list[str]) -> np.ndarray: ...

    def image_text_similarity(self, images: list[np.ndarray], texts: list[str]) -> np.ndarray: ...


# ---------------------------------------------------------------------------- helpers
def _pred_boxes(texts: list[str], lenient: bool) -> np.ndarray:
    """(N, 4) predicted boxes; NaN rows where no box was parsed."""
    out = np.full((len(texts), 4), np.nan)
    for i, t in enumerate(texts):
        b = parse_medground(t).pred_box(lenient)
        if b is not None:
            out[i] = b
    return out


@lru_cache(maxsize=64)
def _read_image_cached(path: str) -> np.ndarray:
    from ..data.io import read_image

    return read_image(path)


def _image_array(cell: Any) -> np.ndarray | None:
    img = first_image(cell)
    if img is None:
        return None
    if isinstance(img, (str, bytes)) or hasattr(img, "__fspath__"):
        return _read_image_cached(str(img))
    a = np.asarray(img)
    return a if a.ndim in (2, 3) and a.size else None


def _images(kwargs: dict, n: int, reward: str) -> list[np.ndarray | None]:
    """Image of each row from ``image`` / ``images`` (PIL or arrays) or ``image_path``;
    a PIL image repeated over a GRPO group is converted once."""
    rows = column(kwargs, "image", n, reward, alternatives=("images", "image_path"))
    seen: dict[int, np.ndarray | None] = {}
    out = []
    for cell in rows:
        key = id(cell)
        if key not in seen:
            seen[key] = _image_array(cell)
        out.append(seen[key])
    return out


def _resolve_scorer(scorer: Any) -> SemanticScorer:
    """A scorer object as given; a spec through :func:`medlib.semantic.load_scorer` (imported here,
    so that importing the rewards loads no model code)."""
    if isinstance(scorer, str):
        from ..semantic import load_scorer

        return load_scorer(scorer)
    return scorer


# ---------------------------------------------------------------------------- rewards
class MedGroundFormat(Reward):
    """``medground_format``: footnote-7 regex, 1 or 0 (Sec. 2.2)."""

    columns: dict[str, str] = {}

    def __init__(self, braces: bool = True, name: str = "medground_format"):
        super().__init__(name)
        self.braces = braces

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        attr = "format_ok" if self.braces else "format_ok_bare"
        return [1.0 if getattr(parse_medground(t), attr) else 0.0 for t in texts]


class MedGroundIoU(Reward):
    """``medground_iou``: continuous IoU of the predicted and ground-truth box, in [0, 1]."""

    columns = {"solution": "ground-truth xyxy box in the model frame"}

    def __init__(self, lenient: bool = False, name: str = "medground_iou"):
        super().__init__(name)
        self.lenient = lenient

    def ious(self, texts: list[str], **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """IoU of each completion's box with its GT, and the usable-GT mask (shared per step)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            gt, ok = gt_boxes(column(kwargs, "solution", len(texts), self.__name__))
            with np.errstate(over="ignore", invalid="ignore"):  # boxes near 1e308 overflow to area inf
                return box_iou_pairs(_pred_boxes(texts, self.lenient), gt), ok

        return _STEP.get((texts, kwargs.get("solution")), self.lenient, compute)

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        iou, ok = self.ious(texts, **kwargs)
        return [v if k else None for v, k in zip(iou.tolist(), ok.tolist())]


class MedGroundSpatial(MedGroundIoU):
    """``medground_spatial``: 1 if IoU > 0.5, else 0 (Sec. 2.3)."""

    def __init__(
        self, lenient: bool = False, threshold: float = SPATIAL_IOU_THRESHOLD, name: str = "medground_spatial"
    ):
        super().__init__(lenient=lenient, name=name)
        self.threshold = threshold

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        iou, ok = self.ious(texts, **kwargs)
        return [
            (1.0 if v > self.threshold else 0.0) if k else None for v, k in zip(iou.tolist(), ok.tolist())
        ]


class MedGroundSemantic(Reward):
    """``medground_semantic``: cosine of the predicted box's crop and the phrase (Sec. 2.3)."""

    columns = {
        "phrase": "referring expression",
        "image": "the image (PIL or array; or `images` list, or `image_path`)",
        "model_size": "optional (width, height) of the frame the model answers in",
    }

    def __init__(
        self,
        scorer: Any = DEFAULT_SCORER,
        lenient: bool = False,
        frame: str = "image",
        min_pixels: int = QWEN_MIN_PIXELS,
        max_pixels: int = QWEN_MAX_PIXELS,
        name: str = "medground_semantic",
    ):
        super().__init__(name)
        if frame not in ("image", "qwen"):
            raise ValueError(f"{name}: frame must be 'image' or 'qwen', got {frame!r}")
        self.scorer = scorer
        self.lenient = lenient
        self.frame = frame
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    def _to_image_pixels(self, box: np.ndarray, img: np.ndarray, model_size: Any) -> np.ndarray | None:
        """Predicted box (model frame) -> integer pixel box inside the image, or None."""
        h, w = img.shape[:2]
        size = as_size(model_size)
        if size is not None:
            with np.errstate(over="ignore"):
                box = box * np.array([w / size[0], h / size[1]] * 2)
        elif self.frame == "qwen":
            try:
                box = ModelFrame.for_qwen(w, h, self.min_pixels, self.max_pixels).box_to_original(box)
            except ValueError:  # an image Qwen cannot take (aspect ratio > 200)
                return None
        if not (np.all(np.isfinite(box)) and box[2] > box[0] and box[3] > box[1]):
            return None
        eps = 1e-6  # 56 / 1.12 = 49.999999...: snap such round-off to the intended pixel
        x1, y1 = math.floor(max(box[0], 0.0) + eps), math.floor(max(box[1], 0.0) + eps)
        x2, y2 = math.ceil(min(box[2], w) - eps), math.ceil(min(box[3], h) - eps)
        return np.array([x1, y1, x2, y2], dtype=np.int64) if x2 > x1 and y2 > y1 else None

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        n = len(texts)
        phrases = column(kwargs, "phrase", n, self.__name__)
        images = _images(kwargs, n, self.__name__)
        sizes = optional_column(kwargs, "model_size", n)
        pred = _pred_boxes(texts, self.lenient)
        out: list[float | None] = [0.0] * n
        idx, crops_img, crops_box, crops_txt = [], [], [], []
        for i in range(n):
            if images[i] is None or not isinstance(phrases[i], str):
                out[i] = None
                continue
            b = self._to_image_pixels(pred[i], images[i], sizes[i])
            if b is not None:
                idx.append(i)
                crops_img.append(images[i])
                crops_box.append(b)
                crops_txt.append(phrases[i])
        if idx:  # one batched forward for the whole GRPO batch
            sims = np.asarray(
                _resolve_scorer(self.scorer).similarity(crops_img, np.stack(crops_box), crops_txt),
                dtype=np.float64,
            ).reshape(-1)
            sims = np.clip(np.nan_to_num(sims, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
            for i, s in zip(idx, sims):
                out[i] = float(s)
        return out


class MedGroundSemanticReleased(Reward):
    """``medground_semantic_released``: the released code's semantic reward (whole image vs
    ground-truth text, 1 if cosine > 0); for comparison only."""

    columns = {"phrase": "referring expression", "image": "the image"}

    def __init__(self, scorer: Any = DEFAULT_SCORER, name: str = "medground_semantic_released"):
        super().__init__(name)
        self.scorer = scorer

    def score(self, texts: list[str], **kwargs: Any) -> list[float | None]:
        n = len(texts)
        phrases = column(kwargs, "phrase", n, self.__name__)
        images = _images(kwargs, n, self.__name__)
        out: list[float | None] = [None] * n
        uniq: dict[tuple[int, str], list[int]] = {}
        for i in range(n):
            if images[i] is not None and isinstance(phrases[i], str):
                uniq.setdefault((id(images[i]), phrases[i]), []).append(i)
        if uniq:
            firsts = [rows[0] for rows in uniq.values()]
            sims = np.asarray(
                _resolve_scorer(self.scorer).image_text_similarity(
                    [images[i] for i in firsts], [phrases[i] for i in firsts]
                ),
                dtype=np.float64,
            ).reshape(-1)
            for rows, s in zip(uniq.values(), sims):
                for i in rows:
                    out[i] = 1.0 if s > 0 else 0.0
        return out


medground_format = MedGroundFormat()
medground_spatial = MedGroundSpatial()
medground_iou = MedGroundIoU()
medground_semantic = MedGroundSemantic()
medground_semantic_released = MedGroundSemanticReleased()
