"""Load a checkpoint for evaluation: a hub id, a saved model folder (``<run>/<stage>/final``,
LoRA already merged by :func:`medlib.train.common.save_final`), a stage folder holding
``final/``, or a bare LoRA adapter folder (merged into its base model here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models.load import ModelLoadError, load_processor, load_vlm


def resolve_eval_path(path_or_id: str | Path) -> str:
    """A stage folder (``runs/x/grpo``) resolves to its ``final/``; anything else is returned as is."""
    p = Path(str(path_or_id)).expanduser()
    if p.is_dir() and not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
        if (p / "final" / "config.json").is_file():
            return str(p / "final")
    return str(path_or_id)


def load_for_eval(path_or_id: str | Path, device: str = "cpu", dtype: Any = "auto",
                  attn_implementation: str = "auto", **kwargs):
    """``(model, processor)`` in eval mode on ``device`` (see the module docstring for what
    ``path_or_id`` may be). ``kwargs`` go to :func:`medlib.models.load_vlm` (``min_pixels``, ...)."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was requested but no CUDA GPU is visible; use device='cpu'")
    if device == "cpu" and attn_implementation == "auto":
        attn_implementation = "sdpa"
    src = resolve_eval_path(path_or_id)
    adapter = Path(src) / "adapter_config.json"
    if adapter.is_file():
        from peft import PeftModel

        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if not base:
            raise ModelLoadError(f"{adapter}: no base_model_name_or_path; cannot tell which model the adapter is for")
        model, processor = load_vlm(base, dtype=dtype, attn_implementation=attn_implementation, **kwargs)
        model = PeftModel.from_pretrained(model, src).merge_and_unload()
        if any((Path(src) / f).is_file() for f in ("preprocessor_config.json", "processor_config.json")):
            processor = load_processor(src, kwargs.get("min_pixels"), kwargs.get("max_pixels"), local_files_only=True)
    else:
        model, processor = load_vlm(src, dtype=dtype, attn_implementation=attn_implementation, **kwargs)
    model.to(device)
    model.eval()
    return model, processor
