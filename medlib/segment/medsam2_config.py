"""The MedSAM2 model config (``sam2.1_hiera_t512``) and building the model from it.

MedSAM2 checkpoints need SAM2.1 hiera-tiny at image size 512, a config the PyPI ``sam2``
package does not ship. medlib ships its values (``configs/sam2.1_hiera_t512.yaml``) and builds
the model with OmegaConf + ``hydra.utils.instantiate`` (no global Hydra state), applying the
same post-processing overrides as ``sam2.build_sam.build_sam2_video_predictor`` (and MedSAM2's
``build_sam2_video_predictor_npz``).
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "sam2.1_hiera_t512.yaml"
PREDICTOR_TARGET = "medlib.segment.medsam2.MedSAM2VideoPredictor"

# sam2.build_sam.build_sam2_video_predictor(apply_postprocessing=True)
VIDEO_POSTPROCESSING = {
    "sam_mask_decoder_extra_args": {
        "dynamic_multimask_via_stability": True,
        "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98,
    },
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 8,
}


class ConfigError(ValueError):
    """A MedSAM2 config that cannot be read or built; the message names the file."""


def load_config(path: str | Path | None = None, image_size: int | None = None):
    """The model config as an OmegaConf ``DictConfig`` (root key ``model``), targeted at
    :class:`~medlib.segment.medsam2.MedSAM2VideoPredictor`, with the video post-processing
    overrides. ``image_size`` overrides the YAML's (memory-attention RoPE sizes follow:
    ``image_size / 16``); it must be a positive multiple of 32."""
    from omegaconf import OmegaConf

    p = DEFAULT_CONFIG if path is None else Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"MedSAM2 config not found: {p} (leave config unset to use {DEFAULT_CONFIG.name})")
    try:
        cfg = OmegaConf.load(p)
    except Exception as e:  # noqa: BLE001 - yaml / omegaconf errors
        raise ConfigError(f"{p}: not a readable YAML config ({e})") from e
    if not hasattr(cfg, "get") or cfg.get("model") is None or "image_size" not in cfg.model:
        raise ConfigError(f"{p}: expected a SAM2 model config with a `model` section holding `image_size`")
    if image_size is not None:
        cfg.model.image_size = int(image_size)
    size = cfg.model.image_size
    if not isinstance(size, int) or size <= 0 or size % 32:
        raise ConfigError(f"{p}: model.image_size must be a positive multiple of 32, got {size!r}")
    try:
        layer = cfg.model.memory_attention.layer
        layer.self_attention.feat_sizes = [size // 16, size // 16]
        layer.cross_attention.feat_sizes = [size // 16, size // 16]
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"{p}: no memory_attention.layer.{{self,cross}}_attention section ({e})") from e
    cfg.model._target_ = PREDICTOR_TARGET
    cfg.model = OmegaConf.merge(cfg.model, VIDEO_POSTPROCESSING)
    OmegaConf.resolve(cfg)
    return cfg


def build_model(cfg, seed: int | None = None):
    """Instantiate the predictor from a config (random weights, eval mode, on CPU).
    ``seed`` fixes the random initialisation."""
    import torch
    from hydra.utils import instantiate

    if seed is not None:
        torch.manual_seed(int(seed))
    try:
        model = instantiate(cfg.model, _recursive_=True)
    except Exception as e:  # noqa: BLE001 - hydra wraps constructor errors
        raise ConfigError(f"cannot build the MedSAM2 model from its config: {e}") from e
    return model.eval()
