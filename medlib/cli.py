"""Argument checks shared by the command lines: a bad argument exits with code 2 and one
sentence naming it, before any model or data is loaded.

* :class:`RunConfigParser`: commands with ``--config FILE`` and ``--set KEY=VALUE``. ``--set``
  may repeat (``--set a=1 --set b=2``) and take several values (``--set a=1 b=2``); every
  override applies, in order. Once parsed, the config is read and validated
  (:func:`medlib.train.config.load_config`) and kept as ``args.run_config``.
* argparse ``type=`` checks: :func:`positive_int`, :func:`output_folder`, :func:`results_stem`,
  :func:`existing_folder`, :func:`profile_name`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .train.config import ConfigError, check_override, load_config


def override_item(item: str) -> str:
    """argparse type of one ``--set`` value: ``section.key=value`` with a known key and a value
    of the field's type (the whole config is validated once parsed)."""
    try:
        check_override(item)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return item


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def output_folder(text: str) -> Path:
    """argparse type: a folder to write into (created later); refuses an existing file."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{p} is an existing file, not a folder; give a folder to write into")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is a file, so {p} cannot be a folder; give another path")
    return p


def results_stem(text: str) -> Path:
    """argparse type: a results stem ``DIR/NAME`` (``NAME.csv`` and ``NAME.json`` are written)."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{p} is a folder; give a file stem such as {p / 'study'} "
                                         "(NAME.csv and NAME.json are written)")
    output_folder(str(p.parent))
    return p


def existing_folder(text: str) -> Path:
    """argparse type: a folder that exists."""
    p = Path(text)
    if not p.is_dir():
        what = "is a file" if p.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{p} {what}; give an existing folder")
    return p


def profile_name(text: str) -> str:
    """argparse type: a profile of ``configs/profiles/<name>.yaml``."""
    from .paths import REPO

    names = sorted(p.stem for p in (REPO / "configs" / "profiles").glob("*.yaml"))
    if text not in names:
        raise argparse.ArgumentTypeError(f"unknown profile {text!r}; available: {', '.join(names)}")
    return text


class RunConfigParser(argparse.ArgumentParser):
    """An ArgumentParser for a command that runs one config: ``add_config_arguments`` adds
    ``--config`` and ``--set``; parsing also loads and validates the config (``resolve`` maps
    the ``--config`` argument to a path) and exits with code 2 and the ConfigError's sentence."""

    def __init__(self, *args: Any, resolve: Callable[[str], Path] = Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolve = resolve

    def add_config_arguments(self, config_default: str | None = None, set_help: str = "config overrides") -> None:
        self.add_argument("--config", required=config_default is None, default=config_default,
                          help="YAML run config, e.g. configs/medground/smoke.yaml")
        add_override_argument(self, set_help)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        if getattr(ns, "config", None) is not None:
            try:
                ns.run_config = load_config(self._resolve(ns.config), list(getattr(ns, "set", None) or []))
            except ConfigError as e:
                self.exit(2, f"{self.prog}: config error: {e}\n")
        return ns, rest


def add_override_argument(ap: argparse.ArgumentParser, help: str = "config overrides") -> None:
    """``--set KEY=VALUE [KEY=VALUE ...]``, repeatable; all of them apply, in order."""
    ap.add_argument("--set", action="extend", nargs="+", default=[], type=override_item, metavar="KEY=VALUE",
                    help=f"{help}, e.g. grpo.max_steps=10 data.max_samples=32 (repeatable; applied in order)")
