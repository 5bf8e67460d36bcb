"""One place that turns a semantic scorer spec into a scorer, once per process.

Loading never trains: the embedded small CLIP is trained by an explicit step,
:func:`ensure_trained` (the GRPO stage calls it before a run whose config names
``semantic_scorer: embedded``), or by ``load_scorer(spec, train_if_missing=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..random_state import preserved_random_state
from . import training
from .scorer import DEFAULT_HUB_MODEL, EMBEDDED_HINT, ClipScorer, ScorerLoadError
from .stand_in import STAND_IN_SPECS, MeanIntensityScorer

_SCORERS: dict[tuple[str, str | None], Any] = {}


def load_scorer(spec: str, device: str | None = None, *, train_if_missing: bool = False) -> Any:
    """The scorer for ``spec``, built once per process:

    * ``"default"``: BiomedCLIP from the hub (:data:`DEFAULT_HUB_MODEL`), the paper-faithful choice;
    * ``"hub:<id>"`` / ``"hf-hub:<id>"``: :meth:`ClipScorer.from_hub`;
    * ``"small:<dir>"`` or ``"<dir>"``: :meth:`ClipScorer.from_dir`;
    * ``"embedded"`` = ``"embedded:smoke:0"``, ``"embedded:<profile>"``,
      ``"embedded:<profile>:<seed>"``: the small CLIP trained on that embedded benchmark, from its
      cache (``build/semantic/<profile>_seed<seed>/``); when it is missing this raises, unless
      ``train_if_missing`` (then :func:`ensure_trained` trains it first);
    * ``"mean-intensity"`` / ``"test"``: :class:`~medlib.semantic.stand_in.MeanIntensityScorer`.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ScorerLoadError(f"semantic scorer spec must be a non-empty string, got {spec!r}")
    key = (spec, device)
    if key not in _SCORERS:
        if train_if_missing:
            ensure_trained(spec)
        # often first called inside a GRPO reward: building the network must not move the
        # caller's random streams, or the run's sampling would depend on what was loaded before
        with preserved_random_state():
            _SCORERS[key] = _build(spec.strip(), device)
    return _SCORERS[key]


def ensure_trained(spec: str) -> Path | None:
    """Train what ``spec`` needs before it can be loaded: the embedded small CLIP of an
    ``embedded[:<profile>[:<seed>]]`` spec when its cache is missing or from another recipe
    (smoke: one to two minutes on 2 CPU threads). Returns that model folder; None for specs
    that need no training."""
    if not isinstance(spec, str):
        return None
    spec = spec.strip()
    if spec != "embedded" and not spec.startswith("embedded:"):
        return None
    profile, seed = _embedded_profile_seed(spec)
    return training.ensure_embedded_clip(profile, seed)


def _build(spec: str, device: str | None) -> Any:
    if spec in STAND_IN_SPECS:
        return MeanIntensityScorer()
    if spec == "default":
        return ClipScorer.from_hub(DEFAULT_HUB_MODEL, device=device)
    for prefix in ("hub:", "hf-hub:"):
        if spec.startswith(prefix):
            return ClipScorer.from_hub(spec[len(prefix) :], device=device)
    if spec == "embedded" or spec.startswith("embedded:"):
        return ClipScorer.from_dir(_embedded_dir(spec), device=device)
    if spec.startswith("small:"):
        return ClipScorer.from_dir(_local(spec[len("small:") :]), device=device)
    if _local(spec).is_dir():
        return ClipScorer.from_dir(_local(spec), device=device)
    raise ScorerLoadError(
        f"unknown semantic scorer spec {spec!r}: use 'hub:<hugging face id>', 'default' (BiomedCLIP "
        f"from the hub), 'embedded[:<profile>[:<seed>]]' (small CLIP trained on the embedded benchmark), "
        f"'small:<dir>', an existing model directory (no directory {spec!r} exists), or "
        f"'mean-intensity' (the test stand-in)"
    )


def _embedded_profile_seed(spec: str) -> tuple[str, int]:
    parts = spec.split(":")[1:]
    profile = parts[0] if parts and parts[0] else "smoke"
    seed = parts[1] if len(parts) > 1 else "0"
    if len(parts) > 2 or profile not in training.EMBEDDED_RECIPES or not seed.isdigit():
        raise ScorerLoadError(
            f"bad embedded scorer spec {spec!r}: use 'embedded', 'embedded:<profile>' or "
            f"'embedded:<profile>:<seed>' with profile one of {sorted(training.EMBEDDED_RECIPES)} and an integer seed"
        )
    return profile, int(seed)


def _embedded_dir(spec: str) -> Path:
    """``embedded[:<profile>[:<seed>]]`` -> its cached model folder; raises when it is not trained."""
    profile, seed = _embedded_profile_seed(spec)
    d = training.embedded_model_dir(profile, seed)
    if not training.embedded_clip_is_current(profile, seed):
        raise ScorerLoadError(
            f"semantic scorer {spec!r}: no small CLIP of the current {profile} recipe in {d} "
            f"({EMBEDDED_HINT}); train it with `python -m medlib.semantic_train --profile {profile} "
            f"--seed {seed}` (or medlib.semantic.ensure_trained({spec!r}), or "
            f"load_scorer({spec!r}, train_if_missing=True))"
        )
    return d


def _local(path: str) -> Path:
    """A folder as given, or (when that does not exist) relative to the repository root, so
    that notebooks running in ``notebooks/`` find ``build/semantic/smoke_seed0``."""
    from ..paths import repo_path

    p = Path(path).expanduser()
    return p if p.exists() or p.is_absolute() else repo_path(p)


def clear_cache() -> None:
    """Forget the scorers :func:`load_scorer` built (tests, or to free memory)."""
    _SCORERS.clear()
