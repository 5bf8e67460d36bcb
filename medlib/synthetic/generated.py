"""Generated data folders that are either complete and of the asked size, or regenerated.

:func:`ensure_generated` writes ``<root>/.medlib_generated.json`` (what was generated: source,
sizes, image size, seed...) *after* the generator returned. A folder without it that holds files
was interrupted mid-generation (or written by an older medlib); a folder whose marker describes
other settings (``data.sizes`` changed) was generated for another config. Both are generated
again in place, and one line says why. The generators only rewrite their own files (the chest
generator refuses a folder it did not write), so nothing of the user's is deleted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = ".medlib_generated.json"


def _normal(spec: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(spec, sort_keys=True, default=str))


def generation_state(root: Path, spec: dict[str, Any]) -> str | None:
    """None when ``root`` holds a complete generation of ``spec``; else why it must be (re)generated."""
    marker = root / MARKER
    if marker.is_file():
        try:
            old = json.loads(marker.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f"its completion marker {MARKER} is unreadable"
        new = _normal(spec)
        if old == new:
            return None
        diff = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return "it was generated with other settings (" + "; ".join(diff) + ")"
    if root.is_dir() and any(p.name != MARKER for p in root.iterdir()):
        return "it holds files but no completion marker (an interrupted generation, or one by an older medlib)"
    return "it is empty"


def ensure_generated(root: str | Path, spec: dict[str, Any], generate: Callable[[], Any], what: str) -> bool:
    """Run ``generate()`` unless ``root`` holds a complete generation of ``spec``; then mark it
    complete. Returns whether it generated."""
    root = Path(root)
    reason = generation_state(root, spec)
    if reason is None:
        return False
    if reason != "it is empty":
        print(f"{root}: generating the {what} again: {reason}", file=sys.stderr)
    (root / MARKER).unlink(missing_ok=True)
    generate()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(_normal(spec), sort_keys=True))
    tmp.replace(root / MARKER)
    return True
