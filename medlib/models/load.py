"""Load the papers' vision-language models from a hub id or a local folder, and their frames.

* MedGround-R1: ``Qwen/Qwen2.5-VL-7B-Instruct`` (paper; the released script trains the 3B);
* MedReasoner: ``lingshu-medical-mllm/Lingshu-7B`` (a Qwen2.5-VL derivative);
* MedVol-R1: ``Qwen/Qwen3-VL-4B-Instruct``.

Hugging Face downloads do not work on every machine: when a hub id cannot be fetched,
:func:`load_vlm` raises one :class:`ModelLoadError` that says to pass a local folder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

#: Hub ids the configs use, and the architecture family of each.
KNOWN_MODELS: dict[str, str] = {
    "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2_5_vl",
    "Qwen/Qwen2.5-VL-3B-Instruct": "qwen2_5_vl",
    "lingshu-medical-mllm/Lingshu-7B": "qwen2_5_vl",
    "lingshu-medical-mllm/Lingshu-32B": "qwen2_5_vl",
    "Qwen/Qwen3-VL-4B-Instruct": "qwen3_vl",
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3_vl",
}
FAMILIES = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")
DTYPES = ("auto", "bfloat16", "float16", "float32")
ATTN_IMPLEMENTATIONS = ("auto", "flash_attention_2", "sdpa", "eager")


class ModelLoadError(RuntimeError):
    """A model or processor could not be loaded; the message says what to pass instead."""


def looks_like_path(name: str) -> bool:
    """True for names that can only be a folder (``./x``, ``/x``, ``~/x``, ``x\\y``, or an existing path);
    hub ids are ``owner/name``."""
    s = str(name)
    return s.startswith((".", "/", "~")) or "\\" in s or s.count("/") > 1 or Path(s).expanduser().exists()


def model_family(name_or_path: str) -> str:
    """``"qwen2_5_vl"``, ``"qwen2_vl"`` or ``"qwen3_vl"``: from ``config.json`` of a local folder,
    else from :data:`KNOWN_MODELS` or the hub id's name. Raises ValueError when unknown."""
    p = Path(str(name_or_path)).expanduser()
    if (p / "config.json").is_file():
        mt = json.loads((p / "config.json").read_text()).get("model_type", "")
        if mt in FAMILIES:
            return mt
        raise ValueError(f"{p}/config.json: model_type {mt!r} is not one of the supported families {FAMILIES}")
    if name_or_path in KNOWN_MODELS:
        return KNOWN_MODELS[name_or_path]
    low = str(name_or_path).lower().replace("_", "").replace("-", "").replace(".", "")
    for key, fam in (("qwen3vl", "qwen3_vl"), ("qwen25vl", "qwen2_5_vl"), ("lingshu", "qwen2_5_vl"),
                     ("qwen2vl", "qwen2_vl")):
        if key in low:
            return fam
    raise ValueError(
        f"cannot tell the architecture of {name_or_path!r}: use a Qwen2-VL / Qwen2.5-VL / Qwen3-VL "
        f"checkpoint (known ids: {', '.join(KNOWN_MODELS)}) or a local folder with its config.json"
    )


def flash_attention_available() -> bool:
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def resolve_attn_implementation(requested: str = "auto") -> str:
    """``"auto"``: flash_attention_2 when the ``flash_attn`` package is installed and CUDA is
    available (the papers train with flash attention), else ``sdpa``."""
    if requested not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {requested!r}")
    if requested == "auto":
        return "flash_attention_2" if flash_attention_available() else "sdpa"
    if requested == "flash_attention_2" and not flash_attention_available():
        raise ValueError(
            "attn_implementation='flash_attention_2' needs a CUDA GPU and the flash-attn package "
            "(pip install flash-attn); use 'auto' or 'sdpa' here"
        )
    return requested


def resolve_dtype(dtype: Any = "auto"):
    """A torch dtype (or ``"auto"``) from a name such as ``"bfloat16"``."""
    import torch

    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or a torch.dtype, got {dtype!r}")
    return getattr(torch, dtype)


def _hub_error(name: str, err: BaseException) -> ModelLoadError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelLoadError(
        f"could not load {name!r} from the Hugging Face Hub ({reason}). Download it on a machine that "
        f"can reach the Hub (e.g. `hf download {name} --local-dir DIR`) and pass the local folder DIR "
        f"instead of the hub id."
    )


def hub_reachable(timeout: float = 5.0) -> bool:
    """True when a TCP connection to the Hugging Face endpoint opens within ``timeout`` seconds
    (one quick probe instead of the hub client's minute of retries)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model_source(name_or_path: str | Path, local_files_only: bool = False) -> str:
    """The local folder to load from: the folder itself, or the hub cache's snapshot of a hub id.
    A hub id that is neither cached nor downloadable raises :class:`ModelLoadError`."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{p} is a folder but holds no config.json: pass a saved model folder")
        return str(p)
    if looks_like_path(s):
        raise ModelLoadError(f"model folder {p} does not exist: pass an existing local folder or a hub id")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(s, local_files_only=True)
    except Exception as cached_err:  # noqa: BLE001 - not in the cache, in any of the hub client's ways
        if local_files_only or not hub_reachable():
            why = "local_files_only is set" if local_files_only else "the Hub is unreachable"
            raise _hub_error(s, OSError(f"not in the local cache and {why}")) from cached_err
    try:
        return snapshot_download(s, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model"])
    except Exception as e:  # noqa: BLE001 - network, auth, missing repo
        raise _hub_error(s, e) from e


def load_processor(name_or_path: str | Path, min_pixels: int | None = None, max_pixels: int | None = None,
                   local_files_only: bool = False, **kwargs):
    """``AutoProcessor`` of a model, with the image size bounds overridden when given."""
    from transformers import AutoProcessor

    src = resolve_model_source(name_or_path, local_files_only)
    try:
        proc = AutoProcessor.from_pretrained(src, local_files_only=True, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{src}: the processor could not be loaded ({e})") from e
    set_pixel_bounds(proc, min_pixels, max_pixels)
    return proc


def set_pixel_bounds(processor, min_pixels: int | None, max_pixels: int | None) -> None:
    """Set the processor's ``min_pixels`` / ``max_pixels`` (Qwen's ``size`` shortest / longest edge)."""
    for part in (getattr(processor, "image_processor", None), getattr(processor, "video_processor", None)):
        if part is None:
            continue
        size = dict(getattr(part, "size", None) or {})
        if min_pixels is not None:
            size["shortest_edge"] = int(min_pixels)
        if max_pixels is not None:
            size["longest_edge"] = int(max_pixels)
        if min_pixels is not None or max_pixels is not None:
            part.size = type(part.size)(**size) if not isinstance(part.size, dict) else size


def load_vlm(
    model_id_or_path: str | Path,
    dtype: Any = "auto",
    attn_implementation: str = "auto",
    *,
    device_map: Any = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    local_files_only: bool = False,
    **model_kwargs,
):
    """Load ``(model, processor)`` of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Lingshu checkpoint from
    a hub id or a local folder (:class:`ModelLoadError` with one clear sentence when neither works).

    ``attn_implementation="auto"`` picks flash_attention_2 on CUDA with flash-attn installed, else
    sdpa; ``min_pixels`` / ``max_pixels`` set the processor's resize bounds.
    """
    from transformers import AutoModelForImageTextToText

    src = resolve_model_source(model_id_or_path, local_files_only)
    try:
        model_family(src)
    except ValueError as e:
        raise ModelLoadError(str(e)) from e
    attn = resolve_attn_implementation(attn_implementation)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            src, dtype=resolve_dtype(dtype), attn_implementation=attn, device_map=device_map,
            local_files_only=True, **model_kwargs,
        )
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{src}: the model could not be loaded ({e})") from e
    processor = load_processor(src, min_pixels, max_pixels, local_files_only=True)
    return model, processor
