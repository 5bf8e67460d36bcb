"""Checkpoints that always resume: a completion marker written last, and resume from the newest
checkpoint that verifies.

The Trainer writes ``checkpoint-N/`` file by file (weights, optimizer, scheduler, RNG state,
``trainer_state.json``); a kill in between leaves a folder that ``resume_from_checkpoint`` cannot
load. :class:`CheckpointMarkerCallback` writes ``checkpoint-N/medlib_complete.json`` (every file
and its size) from ``on_save``, which the Trainer calls after it wrote everything.
:func:`newest_complete_checkpoint` checks each checkpoint, newest first: the marker's sizes, and
the files themselves (``trainer_state.json`` parses, each safetensors file is as long as its
header says, ``optimizer.pt`` / ``scheduler.pt`` / RNG files are whole zip archives). A checkpoint
without a marker but whose files all verify (written by an older medlib, or killed between the
last file and the marker) is used. Checkpoints that fail are moved aside to
``<run>/incomplete_checkpoints/`` (never deleted) and one line says which checkpoint was used and
why the newer ones were skipped.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

from transformers import TrainerCallback

MARKER = "medlib_complete.json"
ASIDE = "incomplete_checkpoints"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "adapter_model.bin")
ZIP_FILES = ("optimizer.pt", "scheduler.pt")


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER}


def write_marker(folder: Path) -> Path:
    """Write ``folder/medlib_complete.json`` (every file and its size) through a temporary file."""
    marker = folder / MARKER
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"files": _files(folder)}, indent=1))
    tmp.replace(marker)
    return marker


class CheckpointMarkerCallback(TrainerCallback):
    """Mark ``checkpoint-<step>/`` complete once the Trainer has written all of it (``on_save``
    runs after the weights, optimizer, scheduler, RNG and trainer state are on disk)."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                write_marker(folder)


def _safetensors_problem(p: Path) -> str | None:
    size = p.stat().st_size
    if size < 8:
        return f"{p.name} truncated ({size} bytes)"
    with open(p, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n <= 0 or 8 + n > size:
            return f"{p.name} truncated (header of {n} bytes, file of {size})"
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return f"{p.name} has an unreadable header"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{p.name} truncated ({size} of {need} bytes)"
    return None


def _zip_problem(p: Path) -> str | None:
    try:
        with zipfile.ZipFile(p) as z:
            z.infolist()
    except (zipfile.BadZipFile, OSError):
        return f"{p.name} truncated or unreadable"
    return None


def checkpoint_problem(ckpt: Path, *, need_optimizer: bool = True) -> str | None:
    """Why ``ckpt`` cannot be resumed from (None when it can); see the module docstring."""
    if not ckpt.is_dir():
        return "not a folder"
    present = {p.name for p in ckpt.iterdir()}
    if not present:
        return "empty folder"
    marker = ckpt / MARKER
    if marker.is_file():
        try:
            listed = json.loads(marker.read_text())["files"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return f"unreadable {MARKER}"
        for name, size in listed.items():
            f = ckpt / name
            if not f.is_file():
                return f"{name} missing"
            if f.stat().st_size != size:
                return f"{name} truncated ({f.stat().st_size} of {size} bytes)"
    state = ckpt / "trainer_state.json"
    if not state.is_file():
        return "trainer_state.json missing"
    try:
        int(json.loads(state.read_text())["global_step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return "trainer_state.json truncated or unreadable"
    weights = [w for w in WEIGHT_FILES if w in present]
    if not weights:
        return "model weights missing"
    shards = []
    if "model.safetensors.index.json" in weights:
        try:
            index = json.loads((ckpt / "model.safetensors.index.json").read_text())
            shards = sorted(set(index["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError):
            return "model.safetensors.index.json truncated or unreadable"
    for name in [w for w in weights if w.endswith(".safetensors")] + shards:
        if not (ckpt / name).is_file():
            return f"{name} missing"
        problem = _safetensors_problem(ckpt / name)
        if problem:
            return problem
    if need_optimizer:
        for name in ZIP_FILES:
            if name not in present:
                return f"{name} missing"
    for name in sorted(present):
        if name in ZIP_FILES or (name.startswith("rng_state") and name.endswith(".pth")):
            problem = _zip_problem(ckpt / name)
            if problem:
                return problem
    return None


def checkpoints(run_dir: Path) -> list[Path]:
    """``checkpoint-<N>`` folders of ``run_dir``, newest (largest N) first."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)), reverse=True)


def move_aside(ckpt: Path) -> Path:
    """Move ``ckpt`` to ``<run>/incomplete_checkpoints/<name>`` (``<name>-2``... when taken)."""
    dest_dir = ckpt.parent / ASIDE
    dest_dir.mkdir(exist_ok=True)
    target, n = dest_dir / ckpt.name, 1
    while target.exists():
        n += 1
        target = dest_dir / f"{ckpt.name}-{n}"
    ckpt.rename(target)
    return target


def newest_complete_checkpoint(run_dir: Path, *, need_optimizer: bool = True,
                               move: bool = True) -> tuple[Path | None, str]:
    """The newest checkpoint of ``run_dir`` that verifies, and one line saying which one and why
    newer ones were skipped (those are moved aside when ``move``); ``(None, "")`` when there are
    no checkpoints."""
    skipped: list[str] = []
    chosen = None
    for ck in checkpoints(run_dir):
        problem = checkpoint_problem(ck, need_optimizer=need_optimizer)
        if problem is None:
            chosen = ck
            break
        where = move_aside(ck) if move else ck
        skipped.append(f"{ck.name} ({problem}; moved to {where.relative_to(run_dir)})" if move
                       else f"{ck.name} ({problem})")
    if chosen is None and not skipped:
        return None, ""
    used = f"resuming from {chosen.name}" if chosen is not None else "no complete checkpoint, starting from step 0"
    line = f"{run_dir}: {used}"
    if skipped:
        line += "; skipped newer: " + ", ".join(skipped)
    return chosen, line
