"""The provenance block and strict-JSON writers of evaluation summaries: :mod:`medlib.provenance`
(the one writer of the project), re-exported here for the evaluation modules."""

from __future__ import annotations

from typing import Any

from ..provenance import (
    PACKAGES,
    config_dict,
    config_hash,
    git_commit,
    jsonable,
    package_versions,
    write_json,
    write_jsonl,
)
from ..provenance import provenance as _provenance

__all__ = ["PACKAGES", "config_dict", "config_hash", "git_commit", "jsonable", "package_versions",
           "provenance", "write_json", "write_jsonl"]


def provenance(*, config: Any = None, seed: int = 0, profile: str | None = None, model_path: Any = None) -> dict[str, Any]:
    """Provenance block of an evaluation summary: the config hash, seed, profile and model, then
    what :func:`medlib.provenance.provenance` records."""
    return _provenance(config=config, seed=seed, profile=profile, model_path=model_path)
