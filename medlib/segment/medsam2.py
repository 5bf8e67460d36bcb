"""MedSAM2 (github bowang-lab/MedSAM2) through the PyPI ``sam2`` package.

The segmenter of MedReasoner (2D: box + two positive points, multimask output, keep the
highest-scoring mask) and of MedVol-R1 (3D: key-slice boxes propagated through the volume).

3D follows the official ``medsam2_infer_3D_CT.py``: clip to the window, min-max the volume to
uint8, each slice grey -> RGB and resized to 512 (PIL, bicubic), /255, ImageNet mean/std;
init the video state; add the box on the key slice; propagate forward; reset; add the box
again; propagate in reverse; union of ``logits > 0``; largest connected component; bf16
autocast on CUDA only. medlib differences, all memory or multi-box bookkeeping:

* frames are preprocessed lazily, one at a time, when the predictor asks for them (the
  official script holds the whole volume at 512x512x3 in float64, 6 MB per slice);
* several boxes are tracked as separate objects of one state (SAM2.1 tracks objects
  independently, so this equals one run per box while encoding each frame once); the largest
  component is taken per box, then the union over boxes (the official script applies it to
  the running union over lesions);
* SAM2's small-hole filling (``fill_hole_area=8``) uses a CUDA extension that the PyPI wheel
  does not build; medlib fills the same holes (8-connected background components of at most 8
  low-resolution pixels) with scipy, so results match a build with the extension.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..geometry import largest_component
from .cache import EmbeddingCache, image_key, nbytes_of
from .medsam2_config import build_model, load_config
from .preprocess import ABDOMEN_WINDOW, check_volume, to_rgb_uint8, valid_key_slice, window_to_uint8
from .prompts import box_to_sam_indices, iter_boxes, sanitize_box, sanitize_points

try:
    from sam2.sam2_video_predictor import SAM2VideoPredictor
except ImportError as e:  # pragma: no cover - sam2 is a declared dependency
    raise ImportError("MedSAM2 needs the `sam2` package: pip install sam2") from e

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_HELP = (
    "Download MedSAM2_latest.pt from https://huggingface.co/wanglab/MedSAM2 (see github "
    "bowang-lab/MedSAM2, download.sh) and pass its path, e.g. build_segmenter('medsam2:/path/MedSAM2_latest.pt')."
)
_DEFAULT = object()


# --------------------------------------------------------------------- preprocessing
def preprocess_frame(slice_u8: np.ndarray, image_size: int = 512) -> torch.Tensor:
    """One uint8 slice -> (3, S, S) float32: grey -> RGB, PIL resize to S x S (bicubic, PIL's
    default), /255, ImageNet mean/std (official ``resize_grayscale_to_rgb_and_resize``)."""
    from PIL import Image

    rgb = Image.fromarray(np.asarray(slice_u8, dtype=np.uint8)).convert("RGB")
    rgb = rgb.resize((image_size, image_size), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


class VolumeFrames:
    """The video frames of a uint8 volume, made on demand: ``frames[t]`` preprocesses slice t.

    Stands in for the (T, 3, S, S) tensor SAM2's video state expects (it only indexes it and
    takes its length), so memory does not grow with the number of slices."""

    def __init__(self, volume_u8: np.ndarray, image_size: int):
        self.volume = volume_u8
        self.image_size = image_size
        self.accesses = 0

    def __len__(self) -> int:
        return int(self.volume.shape[0])

    def __getitem__(self, t: int) -> torch.Tensor:
        self.accesses += 1
        return preprocess_frame(self.volume[int(t)], self.image_size)


def fill_small_holes(mask_scores: torch.Tensor, max_area: int) -> torch.Tensor:
    """SAM2 ``fill_holes_in_mask_scores`` on CPU: background (score <= 0) 8-connected
    components of at most ``max_area`` pixels get score 0.1. Input (N, 1, H, W)."""
    from scipy.ndimage import label

    bg = (mask_scores <= 0).cpu().numpy()
    fill = np.zeros_like(bg)
    for i in range(bg.shape[0]):
        lab, n = label(bg[i, 0], structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())
        small = sizes <= max_area
        small[0] = False
        fill[i, 0] = small[lab]
    if not fill.any():
        return mask_scores
    return torch.where(torch.from_numpy(fill).to(mask_scores.device), torch.tensor(0.1, dtype=mask_scores.dtype, device=mask_scores.device), mask_scores)


# ------------------------------------------------------------------------ predictor
class MedSAM2VideoPredictor(SAM2VideoPredictor):
    """SAM2.1 video predictor that takes preprocessed frames instead of a JPEG folder
    (what MedSAM2's ``SAM2VideoPredictorNPZ.init_state(images, h, w)`` adds)."""

    @torch.inference_mode()
    def init_state_from_frames(self, frames, video_height: int, video_width: int, offload_state_to_cpu: bool = False):
        """An inference state over ``frames`` (indexable, ``frames[t]`` -> (3, S, S)); the
        same keys as ``SAM2VideoPredictor.init_state`` of sam2 1.1.0."""
        device = self.device
        state = {
            "images": frames,
            "num_frames": len(frames),
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": offload_state_to_cpu,
            "video_height": int(video_height),
            "video_width": int(video_width),
            "device": device,
            "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        return state

    def _run_single_frame_inference(self, *args, **kwargs):
        area, self.fill_hole_area = self.fill_hole_area, 0
        try:
            compact, pred = super()._run_single_frame_inference(*args, **kwargs)
        finally:
            self.fill_hole_area = area
        if area > 0:
            pred = fill_small_holes(pred, area)
            compact["pred_masks"] = pred.to(compact["pred_masks"].device)
        return compact, pred


@contextlib.contextmanager
def _quiet_sam2():
    """Silence sam2's per-call progress bar and hole-filling warning inside one call."""
    import sam2.sam2_video_predictor as svp

    orig = svp.tqdm
    svp.tqdm = partial(orig, disable=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Skipping the post-processing step.*")
            yield
    finally:
        svp.tqdm = orig


# ------------------------------------------------------------------------ checkpoint
def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a MedSAM2 checkpoint (``{"model": state_dict}`` or a bare state dict) safely."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"MedSAM2 checkpoint not found: {p}. {CHECKPOINT_HELP}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise ValueError(f"{p}: not a loadable MedSAM2 checkpoint ({type(e).__name__}: {e}). {CHECKPOINT_HELP}") from e
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"{p}: expected a state dict (or {{'model': state_dict}}), found {type(state).__name__}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{p}: does not match the sam2.1 hiera-tiny 512 architecture ({len(missing)} missing keys, e.g. "
            f"{list(missing)[:3]}; {len(unexpected)} unexpected, e.g. {list(unexpected)[:3]}). Is it a MedSAM2 checkpoint?"
        )


# ------------------------------------------------------------------------ segmenter
class MedSAM2Segmenter:
    """:class:`~medlib.segment.base.Segmenter` backed by MedSAM2.

    ``checkpoint`` is required (``random_init`` builds random weights for tests); ``config`` a
    YAML path (default: the shipped ``sam2.1_hiera_t512``); ``window`` (level, width) for
    :meth:`propagate_3d` (None = min-max of the volume); ``multimask`` keeps the best of three
    masks in 2D (MedReasoner); 2D embeddings are cached by image content.
    """

    name = "medsam2"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        config: str | Path | None = None,
        image_size: int | None = None,
        device: str | None = None,
        window: tuple[float, float] | None = ABDOMEN_WINDOW,
        multimask: bool = True,
        largest_component: bool = True,
        offload_state_to_cpu: bool = False,
        cache_size: int = 16,
        cache_bytes: int = 256 * 2**20,
        _random_seed: int | None = None,
    ):
        if checkpoint is None and _random_seed is None:
            raise ValueError(f"MedSAM2 needs a checkpoint. {CHECKPOINT_HELP}")
        if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
            raise FileNotFoundError(f"MedSAM2 checkpoint not found: {checkpoint}. {CHECKPOINT_HELP}")
        cfg = load_config(config, image_size)
        model = build_model(cfg, seed=_random_seed)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model: MedSAM2VideoPredictor = model.to(self.device).eval()
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.image_size = int(cfg.model.image_size)
        self.window = window
        self.multimask = multimask
        self.keep_largest_component = largest_component
        self.offload_state_to_cpu = offload_state_to_cpu
        self.cache = EmbeddingCache(cache_size, cache_bytes)
        self.encoder_calls = 0
        self.last_run: dict = {}
        self._image_predictor = None

    @classmethod
    def random_init(cls, seed: int = 0, **kwargs) -> MedSAM2Segmenter:
        """MedSAM2's architecture with random weights (seeded): tests and timing only."""
        return cls(None, _random_seed=seed, **kwargs)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ----------------------------------------------------------------- 2D
    @property
    def image_predictor(self):
        """``SAM2ImagePredictor`` sharing the model; its backbone feature sizes follow the
        model's image size (sam2 1.1.0 hard-codes those of 1024; MedSAM2's fork derives them)."""
        if self._image_predictor is None:
            from sam2.sam2_image_predictor import SAM2ImagePredictor

            with warnings.catch_warnings():  # SAM2Transforms scripts its transforms with torch.jit
                warnings.simplefilter("ignore", FutureWarning)
                pred = SAM2ImagePredictor(self.model)
            hires = self.image_size // 4
            pred._bb_feat_sizes = [(hires // 2**k, hires // 2**k) for k in range(3)]
            self._image_predictor = pred
        return self._image_predictor

    @torch.inference_mode()
    def _set_image(self, rgb: np.ndarray) -> None:
        pred = self.image_predictor
        key = image_key(rgb, f"{self.name}{self.image_size}")
        hit = self.cache.get(key)
        if hit is None:
            with self._autocast():
                pred.set_image(rgb)
            self.encoder_calls += 1
            self.cache.put(key, {"features": pred._features, "orig_hw": list(pred._orig_hw)})
            return
        pred.reset_predictor()
        pred._features, pred._orig_hw = hit["features"], list(hit["orig_hw"])
        pred._is_image_set, pred._is_batch = True, False

    def segment_2d(self, image: np.ndarray, box=None, points=None, *, return_score: bool = False):
        """Bool HxW mask from a box and/or positive points (labels 1); with ``multimask`` the
        highest-scoring of the three masks (MedReasoner). Unusable box -> empty mask; neither
        prompt -> ValueError. ``return_score`` also returns the predicted IoU of that mask."""
        if box is None and points is None:
            raise ValueError("segment_2d needs a box or points; both were None")
        rgb = to_rgb_uint8(image)
        h, w = rgb.shape[:2]
        b = sanitize_box(box, w, h)
        p = sanitize_points(points, w, h)
        if (box is not None and b is None) or (b is None and p is None):
            empty = np.zeros((h, w), dtype=bool)
            return (empty, 0.0) if return_score else empty
        self._set_image(rgb)
        with torch.inference_mode(), self._autocast():
            masks, scores, _ = self.image_predictor.predict(
                point_coords=p,
                point_labels=None if p is None else np.ones(len(p), dtype=np.int32),
                box=None if b is None else box_to_sam_indices(b),
                multimask_output=self.multimask,
            )
        best = int(np.argmax(scores))
        mask = np.asarray(masks[best]) > 0
        return (mask, float(scores[best])) if return_score else mask

    # ----------------------------------------------------------------- 3D
    def propagate_3d(self, volume: np.ndarray, key_slice: int, boxes, *, window=_DEFAULT) -> np.ndarray:
        """Bool [z, y, x] mask: the official forward + reverse propagation from the boxes on
        ``key_slice`` (union over boxes, largest component per box). Unusable boxes are
        skipped; an out-of-range key slice gives an empty mask; an empty volume raises."""
        vol = check_volume(volume)
        n, h, w = vol.shape
        out = np.zeros(vol.shape, dtype=bool)
        k = valid_key_slice(key_slice, n)
        valid = [b for b in (sanitize_box(bx, w, h) for bx in iter_boxes(boxes)) if b is not None]
        self.last_run = {"frames": n, "boxes": len(valid), "frames_encoded": 0, "state_bytes_peak": 0}
        if k is None or not valid:
            return out
        frames = VolumeFrames(window_to_uint8(vol, self.window if window is _DEFAULT else window), self.image_size)
        per_box = np.zeros((len(valid), *vol.shape), dtype=bool)
        peak = 0
        with _quiet_sam2(), torch.inference_mode(), self._autocast():
            state = self.model.init_state_from_frames(frames, h, w, offload_state_to_cpu=self.offload_state_to_cpu)
            for reverse in (False, True):
                for i, b in enumerate(valid):
                    self.model.add_new_points_or_box(state, frame_idx=k, obj_id=i + 1, box=box_to_sam_indices(b))
                for t, _, logits in self.model.propagate_in_video(state, reverse=reverse):
                    per_box[:, t] |= (logits[:, 0] > 0).cpu().numpy()
                peak = max(peak, nbytes_of({kk: v for kk, v in state.items() if kk != "cached_features"}))
                self.model.reset_state(state)
            state.clear()
        for i in range(len(valid)):
            m = largest_component(per_box[i]) if self.keep_largest_component else per_box[i]
            out |= m
        self.encoder_calls += frames.accesses
        self.last_run.update(frames_encoded=frames.accesses, state_bytes_peak=peak)
        return out
