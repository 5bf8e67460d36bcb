"""Checks before a stage runs, so that a missing file fails at once with one sentence instead of
deep into a run.

* :func:`missing_paths`: the folders and files a config names (model, ``init_from``, real data,
  semantic scorer, segmenter checkpoint) that do not exist; loads nothing
  (``python -m medlib.train check``).
* :func:`load_reward_models`: loads the semantic scorer a GRPO reward set scores with, at stage
  start, through :func:`medlib.semantic.load_scorer` (the same cached object the reward uses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import REAL_SOURCES, ConfigError, RunConfig

#: scorer specs that name no folder (hub ids, the embedded benchmark's CLIP, the test scorer)
_NON_PATH_SCORERS = ("default", "hub:", "hf-hub:", "embedded", "mean-intensity", "test")


def _scorer_folder(spec: str) -> Path | None:
    from ..paths import repo_path

    if spec.startswith(_NON_PATH_SCORERS):
        return None
    return repo_path(spec[len("small:"):] if spec.startswith("small:") else spec)


def _segmenter_checkpoint(spec: Any) -> str | None:
    if isinstance(spec, dict):
        ckpt = spec.get("checkpoint")
    elif isinstance(spec, str) and ":" in spec:
        ckpt = spec.split(":", 1)[1].strip()
    else:
        return None
    return None if not ckpt or ckpt == "random" else str(ckpt)


def missing_paths(cfg: RunConfig) -> list[str]:
    """One sentence per configured path that does not exist (nothing is loaded or built)."""
    from ..models.load import looks_like_path
    from ..paths import repo_path

    out = []
    name = cfg.model.name_or_path
    if name != "tiny" and looks_like_path(name) and not Path(name).expanduser().exists():
        out.append(f"model.name_or_path: the folder {name} does not exist")
    for stage in ("vision", "sft", "grpo"):
        s = getattr(cfg, stage)
        if s.enabled and s.init_from not in ("base", "vision", "sft"):
            p = repo_path(s.init_from)
            if not (p / "config.json").is_file():
                out.append(f"{stage}.init_from: {p} is not a saved model folder (no config.json)")
    if cfg.data.source in REAL_SOURCES and not cfg.data_root().is_dir():
        out.append(f"data.root: {cfg.data_root()} does not exist; fetch the data first "
                   f"(python -m medlib data fetch {cfg.data.source} --root {cfg.data.root})")
    if cfg.grpo.enabled:
        opts = cfg.grpo.reward_options
        scorer = opts.get("semantic_scorer")
        folder = _scorer_folder(scorer) if isinstance(scorer, str) else None
        if folder is not None and not folder.is_dir():
            out.append(f"grpo.reward_options.semantic_scorer: the folder {folder} does not exist")
        ckpt = _segmenter_checkpoint(opts.get("segmenter"))
        if ckpt is not None and not repo_path(ckpt).is_file():
            out.append(f"grpo.reward_options.segmenter: the checkpoint {repo_path(ckpt)} does not exist")
    return out


def check_paths(cfg: RunConfig) -> None:
    """:func:`missing_paths` as a ConfigError (the first problem, and how many more)."""
    problems = missing_paths(cfg)
    if problems:
        more = f" (and {len(problems) - 1} more: python -m medlib.train check lists them)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)


def load_reward_models(funcs: list[Any]) -> None:
    """Load the semantic scorer of every reward in ``funcs`` that names one by spec, now rather
    than at the first completion with a parseable box; ModelLoadError in one sentence."""
    from ..models.load import ModelLoadError
    from ..semantic import STAND_IN_SPECS

    for f in funcs:
        spec = getattr(f, "scorer", None)
        if not isinstance(spec, str) or spec in STAND_IN_SPECS:
            continue
        from ..semantic import load_scorer

        try:
            load_scorer(spec)
        except Exception as e:  # noqa: BLE001 - hub, file and format errors alike become one sentence
            raise ModelLoadError(f"grpo.reward_options.semantic_scorer: cannot load {spec!r} "
                                 f"({type(e).__name__}: {e})") from e


def build_segmenter_at_start(spec: Any, where: str = "grpo.reward_options.segmenter") -> Any:
    """:func:`medlib.segment.build_segmenter` for a reward or evaluation segmenter, with any
    failure as ModelLoadError in one sentence naming the option."""
    from ..models.load import ModelLoadError
    from ..random_state import preserved_random_state
    from ..segment import build_segmenter

    try:
        with preserved_random_state():
            return build_segmenter(spec)
    except Exception as e:  # noqa: BLE001 - missing checkpoint, unknown name, bad keyword alike
        raise ModelLoadError(f"{where}: cannot build the segmenter {spec!r} ({type(e).__name__}: {e})") from e
