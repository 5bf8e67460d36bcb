"""Keep the caller's random streams as they were across a block of code.

Models that GRPO loads lazily, inside a reward call (the semantic scorer, the segmenter, the
embedded CLIP trained on first use), initialise layers from the global random streams. Without
this guard the run in which a process first loads such a model would sample different
completions from a run where it was already loaded, so the same config and seed would give
different numbers depending on the entry point (notebook, CLI, learning study)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run the block, then restore Python's, NumPy's and torch's (CPU and, when initialised,
    CUDA) global random states, whether the block returns or raises."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=_cuda_devices()):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _cuda_devices() -> list[int]:
    # fork_rng only needs devices whose generator exists; touching none avoids initialising CUDA
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []
