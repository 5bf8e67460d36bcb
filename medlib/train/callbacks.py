"""Trainer callbacks: CSV metrics log, TensorBoard in the run folder, per-rank reports.

* :class:`CSVMetricsCallback` writes every ``Trainer`` log (loss, per-reward means, KL, completion
  lengths, learning rate...) to ``<run>/metrics.csv``, one row per logging step. On resume the
  rows after the checkpoint's step are dropped, so a killed and resumed run has each step once.
* :func:`tensorboard_callback` logs the same values to ``<run>/tensorboard``.
* :class:`RankReportCallback` writes ``<run>/ranks/rank_<i>.json`` per process at the end
  (rank, world size, optimizer steps, micro-batches seen): evidence that every rank trained.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

FIRST_COLUMNS = ("step", "epoch")


def _scalar(v: Any) -> Any:
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class CSVMetricsCallback(TrainerCallback):
    """Append each log of the main process to a CSV file (columns grow as new keys appear)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = list(FIRST_COLUMNS)

    def _read(self) -> None:
        self.rows, self.columns = [], list(FIRST_COLUMNS)
        if not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            for c in reader.fieldnames or []:
                if c not in self.columns:
                    self.columns.append(c)
            for r in reader:
                self.rows.append({k: v for k, v in r.items() if v != ""})

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(self.rows)
        tmp.replace(self.path)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self._read()
        # a resumed run starts at the checkpoint's step: forget what was logged after it
        keep = [r for r in self.rows if float(r.get("step", 0)) <= state.global_step]
        if len(keep) != len(self.rows) or not self.path.is_file():
            self.rows = keep
            self._rewrite()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": state.epoch}
        row.update({k: _scalar(v) for k, v in logs.items() if _scalar(v) is not None})
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new or not self.path.is_file():
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)


def tensorboard_callback(log_dir: str | Path):
    """A ``TensorBoardCallback`` writing to ``log_dir`` (main process only; None elsewhere)."""
    from accelerate import PartialState
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    if not PartialState().is_main_process:
        return None
    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(log_dir)))


class RankReportCallback(TrainerCallback):
    """Each process writes ``<dir>/rank_<i>.json`` when training ends."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.micro_steps = 0
        self.optimizer_steps = 0

    def on_substep_end(self, args, state, control, **kwargs):
        self.micro_steps += 1

    def on_step_end(self, args, state, control, **kwargs):
        self.micro_steps += 1
        self.optimizer_steps += 1

    def on_train_end(self, args, state, control, **kwargs):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "rank": args.process_index,
            "world_size": args.world_size,
            "global_step": state.global_step,
            "optimizer_steps_this_run": self.optimizer_steps,
            "micro_batches_this_run": self.micro_steps,
            "device": str(args.device),
        }
        (self.out_dir / f"rank_{args.process_index}.json").write_text(json.dumps(info, indent=1))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics CSV with numbers as floats (empty cells left out)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for k, v in r.items():
                if v == "":
                    continue
                try:
                    row[k] = float(v)
                except ValueError:
                    row[k] = v
            out.append(row)
    return out
