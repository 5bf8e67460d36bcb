"""Frozen image-text scorer behind MedGround-R1's semantic consistency reward (Sec. 2.3).

MedGround-R1: "a frozen MedCLIP ... compute the cosine semantic similarity between the cropped
bounding box ROI feature of the completion and the referring expression feature". Here the
scorer is any open_clip model:

* ``ClipScorer.from_hub("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")``
  (a medical CLIP for GPU boxes with hub access; MedCLIP itself is not an open_clip model);
* ``ClipScorer.from_dir(folder)``: a folder in open_clip's ``local-dir`` layout
  (``open_clip_config.json`` with ``model_cfg`` / ``preprocess_cfg`` plus the weights), as
  :meth:`ClipScorer.save` writes it, e.g. the small CLIP that :mod:`medlib.semantic.training`
  trains on the embedded chest benchmark (CPU default, since no CLIP weights ship on PyPI).

``similarity`` embeds the crop of each box (one batched forward of the image tower) and each
text (cached), and returns their cosines; ``image_text_similarity`` is the whole-image variant of
the released code (its ``medclip_reward`` scores the whole image, docs/medground_r1.md).
A box that is not usable (NaN, empty after clipping to the image) scores 0.0 and never raises.
Specs (``"default"``, ``"embedded"``, a folder) are resolved by :func:`medlib.semantic.load_scorer`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..geometry import clip_box, order_corners

DEFAULT_HUB_MODEL = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "model.safetensors"
INFO_NAME = "medlib_semantic.json"
EMBEDDED_HINT = "build/semantic/<profile>_seed<seed>/"
#: weight files :meth:`ClipScorer.from_dir` accepts, in order of preference
WEIGHT_FILES = (
    "model.safetensors",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "pytorch_model.bin",
    "model.pt",
    "model.pth",
    "open_clip_pytorch_model.pth",
)


class ScorerLoadError(RuntimeError):
    """A semantic scorer that cannot be built; the message says what to pass instead."""


# ----------------------------------------------------------------------------- pixels
def image_array(image: Any) -> np.ndarray | None:
    """The image as an array, unconverted (grey HxW, or HxWxC with C in 1, 3, 4), or None when
    it is not an image with at least one pixel."""
    try:
        a = np.asarray(image)
    except Exception:  # noqa: BLE001 - anything that is not array-like is "no image"
        return None
    if a.dtype == object or a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1:
        return None
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        return None
    return a


def as_rgb_uint8(image: Any) -> np.ndarray | None:
    """HxWx3 uint8 view of an image (grey, RGB, RGBA, PIL, float in [0, 1] or any integer
    range), or None when it is not an image with at least one pixel."""
    a = image_array(image)
    if a is None:
        return None
    if a.ndim == 3:
        a = a[..., 0] if a.shape[2] == 1 else a[..., :3]
    if a.dtype != np.uint8:
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if a.dtype == bool:
            f = f * 255.0
        elif np.issubdtype(a.dtype, np.floating) and f.max(initial=0.0) <= 1.0:
            f = f * 255.0
        elif f.max(initial=0.0) > 255.0:  # e.g. uint16 radiographs: min-max to [0, 255]
            lo, hi = f.min(), f.max()
            f = (f - lo) * (255.0 / (hi - lo))
        a = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a)


def _box_rows(boxes: Any, n: int) -> np.ndarray:
    """(n, 4) float array; rows that are not 4 numbers become NaN (invalid)."""
    try:
        b = np.asarray(boxes, dtype=np.float64)
        if b.shape == (n, 4):
            return b
    except (TypeError, ValueError):
        pass
    out = np.full((n, 4), np.nan)
    for i in range(n):
        try:
            row = np.asarray(boxes[i], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if row.shape == (4,):
            out[i] = row
    return out


def pixel_boxes(boxes: Any, sizes: Sequence[tuple[int, int] | None]) -> tuple[np.ndarray, np.ndarray]:
    """Integer crop windows of xyxy pixel boxes, one per image of size ``(height, width)``.

    Corners are ordered, the box is clipped to the image and must keep a positive area
    (continuous convention of :mod:`medlib.geometry`); the window is then widened to whole
    pixels (floor of x1, y1, ceil of x2, y2). Returns ``(windows (N, 4) int, valid (N,) bool)``;
    invalid rows (non-finite, empty, no image) are all zero.
    """
    n = len(sizes)
    b = _box_rows(boxes, n)
    windows = np.zeros((n, 4), dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    for i, hw in enumerate(sizes):
        if hw is None or not np.all(np.isfinite(b[i])):
            continue
        h, w = hw
        x1, y1, x2, y2 = clip_box(order_corners(b[i]), w, h)
        if not (x2 > x1 and y2 > y1):
            continue
        win = (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))
        windows[i] = win
        valid[i] = True
    return windows, valid


# ----------------------------------------------------------------------------- scorer
class ClipScorer:
    """An open_clip model, its tokenizer and its image transform, frozen, behind the
    :class:`medlib.rewards.medground.SemanticScorer` protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable,
        preprocess: Callable,
        *,
        model_cfg: dict | None = None,
        preprocess_cfg: dict | None = None,
        name: str = "",
        device: str | torch.device | None = None,
        info: dict | None = None,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.model_cfg = model_cfg
        self.preprocess_cfg = preprocess_cfg
        self.name = name
        self.info = dict(info or {})
        self._text_cache: dict[str, torch.Tensor] = {}
        self._pil_stage, self._tensor_stage = _split_transform(preprocess)

    def __repr__(self) -> str:
        return f"ClipScorer({self.name or type(self.model).__name__}, device={self.device})"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_hub(cls, model_id: str = DEFAULT_HUB_MODEL, device: str | None = None) -> ClipScorer:
        """Load ``model_id`` (``hf-hub:org/name`` or ``org/name``) with
        ``open_clip.create_model_from_pretrained``; needs Hugging Face Hub access."""
        import open_clip

        name = model_id if model_id.startswith("hf-hub:") else f"hf-hub:{model_id}"
        try:
            model, preprocess = open_clip.create_model_from_pretrained(name, device="cpu")
            tokenizer = open_clip.get_tokenizer(name)
        except Exception as e:  # noqa: BLE001 - network, hub and parsing errors all mean "not here"
            raise ScorerLoadError(
                f"could not load the CLIP model {name} from the Hugging Face Hub "
                f"({type(e).__name__}: {str(e)[:300]}). Without hub access, copy the model's folder "
                f"({CONFIG_NAME} + weights, e.g. saved by ClipScorer.save on a machine with access) "
                f"here and pass that local directory instead: load_scorer('<dir>') or "
                f"ClipScorer.from_dir('<dir>'); or pass 'embedded' (semantic_scorer: embedded) for the "
                f"small CLIP medlib trains on its embedded chest benchmark (CPU, a few minutes once, "
                f"then cached in {EMBEDDED_HINT})"
            ) from e
        try:
            model_cfg = open_clip.get_model_config(name)
        except Exception:  # noqa: BLE001 - only needed by save()
            model_cfg = None
        return cls(
            model,
            tokenizer,
            preprocess,
            model_cfg=model_cfg,
            preprocess_cfg=dict(open_clip.get_model_preprocess_cfg(model)),
            name=name,
            device=device,
        )

    @classmethod
    def from_dir(cls, path: str | Path, device: str | None = None) -> ClipScorer:
        """Load a folder in open_clip's ``local-dir`` layout: ``open_clip_config.json``
        (``model_cfg``, ``preprocess_cfg``; the tokenizer follows ``model_cfg["text_cfg"]``:
        open_clip's BPE ``SimpleTokenizer`` unless ``hf_tokenizer_name`` is set, whose files
        must then be in the folder) and one weight file of :data:`WEIGHT_FILES` (safetensors,
        or a torch state dict read with ``weights_only=True``)."""
        import open_clip

        d = Path(path).expanduser()
        if not d.is_dir():
            raise ScorerLoadError(
                f"{d}: semantic scorer directory not found; train one with "
                f"`python -m medlib.semantic_train --out {d}`, pass an existing model folder, or pass "
                f"'embedded' (the small CLIP cached in {EMBEDDED_HINT})"
            )
        cfg_path = d / CONFIG_NAME
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScorerLoadError(f"{cfg_path}: missing; a model folder needs {CONFIG_NAME} and weights") from None
        except json.JSONDecodeError as e:
            raise ScorerLoadError(f"{cfg_path}: not valid JSON ({e})") from e
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model_cfg"), dict):
            raise ScorerLoadError(f"{cfg_path}: expected an object with a 'model_cfg' object")
        weights = next((d / n for n in WEIGHT_FILES if (d / n).is_file()), None)
        if weights is None:
            raise ScorerLoadError(f"{d}: no weight file (looked for {', '.join(WEIGHT_FILES)})")
        try:
            logging.disable(logging.WARNING)  # open_clip warns "initialized randomly": the weights load next
            try:
                model = open_clip.create_model(
                    f"local-dir:{d}", load_weights=False, pretrained_text=False, device="cpu"
                )
            finally:
                logging.disable(logging.NOTSET)
            open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
        except Exception as e:  # noqa: BLE001 - config / state-dict mismatch, unpickling refused
            raise ScorerLoadError(f"{weights}: cannot build the model of {cfg_path} from it ({e})") from e
        try:
            tokenizer = open_clip.get_tokenizer(f"local-dir:{d}")
        except Exception as e:  # noqa: BLE001
            raise ScorerLoadError(f"{d}: cannot build the tokenizer that {cfg_path} names ({e})") from e
        pcfg = dict(open_clip.get_model_preprocess_cfg(model))
        preprocess = open_clip.image_transform(
            pcfg.get("size", 224),
            is_train=False,
            mean=pcfg.get("mean"),
            std=pcfg.get("std"),
            resize_mode=pcfg.get("resize_mode"),
            interpolation=pcfg.get("interpolation"),
            fill_color=pcfg.get("fill_color", 0),
        )
        info_path = d / INFO_NAME
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
        return cls(
            model,
            tokenizer,
            preprocess,
            model_cfg=cfg["model_cfg"],
            preprocess_cfg=pcfg,
            name=str(d),
            device=device,
            info=info,
        )

    def save(self, path: str | Path) -> Path:
        """Write the folder :meth:`from_dir` reads (config, ``model.safetensors``, tokenizer
        files when the tokenizer has them, and ``medlib_semantic.json`` with :attr:`info`)."""
        from safetensors.torch import save_file

        if self.model_cfg is None:
            raise ScorerLoadError(f"{self.name}: model config unknown, so it cannot be saved as a folder")
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        pcfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in (self.preprocess_cfg or {}).items()}
        (d / CONFIG_NAME).write_text(
            json.dumps({"model_cfg": self.model_cfg, "preprocess_cfg": pcfg}, indent=1, sort_keys=True) + "\n"
        )
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(d / WEIGHTS_NAME))
        if hasattr(self.tokenizer, "save_pretrained"):
            self.tokenizer.save_pretrained(str(d))
        (d / INFO_NAME).write_text(json.dumps(self.info, indent=1, sort_keys=True, default=str) + "\n")
        return d

    # ------------------------------------------------------------------ embeddings
    @property
    def embed_dim(self) -> int:
        return int(self.encode_texts([""]).shape[-1])

    def pixel_arrays(self, pils: Sequence) -> np.ndarray:
        """The transform's PIL stage (resize, mode) of each image, stacked as uint8 (N, H, W, 3)."""
        return np.stack([np.asarray(self._pil_stage(p), dtype=np.uint8) for p in pils])

    def pixels_to_tensor(self, arrays: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> normalised float (N, 3, H, W): the transform's tensor stage."""
        x = torch.as_tensor(arrays).permute(0, 3, 1, 2).float().div_(255.0)
        return self._tensor_stage(x)

    def _batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        from PIL import Image

        return self.pixels_to_tensor(self.pixel_arrays([Image.fromarray(a) for a in arrays]))

    @torch.inference_mode()
    def encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings of a preprocessed batch: one forward of the tower."""
        return self.model.encode_image(x.to(self.device), normalize=True).float()

    def encode_crops(self, images: Sequence, boxes: Any) -> tuple[torch.Tensor, np.ndarray]:
        """Embeddings (N, D) of the crops of ``boxes`` (xyxy pixels in each image's own frame)
        and the mask of usable boxes (unusable rows are zero vectors). One batched forward."""
        arrays: dict[int, np.ndarray | None] = {}  # one array per image object (a GRPO group shares one)
        for im in images:
            if id(im) not in arrays:
                arrays[id(im)] = image_array(im)
        sizes = [None if arrays[id(im)] is None else arrays[id(im)].shape[:2] for im in images]
        windows, valid = pixel_boxes(boxes, sizes)
        whole: dict[int, np.ndarray] = {}
        crops = []
        for i in np.flatnonzero(valid):
            a, (x1, y1, x2, y2) = arrays[id(images[i])], windows[i]
            if a.dtype in (np.uint8, np.bool_):  # pixel-wise conversion: crop first, same pixels, less work
                crops.append(as_rgb_uint8(a[y1:y2, x1:x2]))
            else:  # the value range of the whole image sets the conversion
                if id(images[i]) not in whole:
                    whole[id(images[i])] = as_rgb_uint8(a)
                crops.append(whole[id(images[i])][y1:y2, x1:x2])
        return self._scatter(crops, valid), valid

    def encode_images(self, images: Sequence) -> tuple[torch.Tensor, np.ndarray]:
        """Whole-image embeddings (N, D) and the mask of readable images; one forward."""
        rgb = [as_rgb_uint8(im) for im in images]
        valid = np.array([a is not None for a in rgb], dtype=bool)
        return self._scatter([a for a in rgb if a is not None], valid), valid

    def _scatter(self, arrays: list[np.ndarray], valid: np.ndarray) -> torch.Tensor:
        if not arrays:
            return torch.zeros(len(valid), 0)
        emb = self.encode_pixels(self._batch(arrays)).cpu()
        out = torch.zeros(len(valid), emb.shape[1])
        out[torch.as_tensor(valid)] = emb
        return out

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings (N, D); each distinct text is encoded once per scorer
        (cache keyed by the text), on its own: a batched forward rounds a row differently
        depending on the batch around it (~1e-7), and what shares a batch depends on what the
        cache already held, so a GRPO arm's rewards would depend on which arms the process
        ran before."""
        texts = [str(t) for t in texts]
        new = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if new:
            tokens = self.tokenizer(new).to(self.device)
            for text, row in zip(new, tokens):
                emb = self.model.encode_text(row[None], normalize=True).float().cpu()
                self._text_cache[text] = emb[0]
        if not texts:
            return torch.zeros(0, 0)
        return torch.stack([self._text_cache[t] for t in texts])

    # ------------------------------------------------------------------ scores
    def similarity(self, images: Sequence, boxes: Any, texts: Sequence[str]) -> np.ndarray:
        """(N,) cosine in [-1, 1] between the crop of box i of image i and text i (MedGround-R1
        Sec. 2.3, R_semantic); 0.0 for an unusable box or image."""
        _same_length(images=images, texts=texts)
        crops, valid = self.encode_crops(images, boxes)
        return self._cosines(crops, valid, texts)

    def image_text_similarity(self, images: Sequence, texts: Sequence[str]) -> np.ndarray:
        """(N,) cosine between whole image i and text i (the released ``medclip_reward``);
        0.0 for an unreadable image."""
        _same_length(images=images, texts=texts)
        emb, valid = self.encode_images(images)
        return self._cosines(emb, valid, texts)

    def _cosines(self, emb: torch.Tensor, valid: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(valid), dtype=np.float64)
        if valid.any():
            t = self.encode_texts([t for t, v in zip(texts, valid) if v])
            cos = (emb[torch.as_tensor(valid)] * t).sum(-1).double().numpy()
            out[valid] = np.clip(np.nan_to_num(cos, nan=0.0), -1.0, 1.0)
        return out


def _same_length(**seqs: Sequence) -> None:
    lengths = {k: len(v) for k, v in seqs.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"one text per image is needed, got lengths {lengths}")


def _split_transform(preprocess: Callable) -> tuple[Callable, Callable]:
    """Split an open_clip eval transform (Compose of PIL steps, ToTensor, Normalize) into its
    PIL stage and its tensor stage, so crops are resized once and batched as uint8."""
    steps = list(getattr(preprocess, "transforms", []))
    idx = [i for i, s in enumerate(steps) if "ToTensor" in type(s).__name__]
    if len(idx) != 1:
        raise ScorerLoadError(f"unexpected image transform {preprocess!r}: no single ToTensor step")
    from PIL import Image

    pil_steps, tensor_steps = steps[: idx[0]], steps[idx[0] + 1 :]

    def pil_stage(img: Image.Image) -> Image.Image:
        for s in pil_steps:
            img = s(img)
        return img.convert("RGB")

    def tensor_stage(x: torch.Tensor) -> torch.Tensor:
        for s in tensor_steps:
            x = s(x)
        return x

    return pil_stage, tensor_stage
