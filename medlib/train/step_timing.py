"""Where a GRPO step's time goes: exclusive timers around ``trl.GRPOTrainer``'s parts.

Wrapped: ``_generate`` (generation), ``_get_per_token_logps_and_entropies`` (policy, old and
reference log-probs), ``compute_loss`` (the loss less its log-probs), ``torch.Tensor.backward``,
``_calculate_rewards`` (TRL's reward bookkeeping), each reward callable (:class:`TimedReward`)
and anything else passed to :meth:`Timers.wrap` (a segmenter's propagation). A timer inside
another is subtracted from the outer one; "rest" is the steps' wall time less all of them
(optimizer, collation, callbacks, logging). Used by ``benchmarks/bench_grpo_step.py`` and
``python -m medlib gpu-check``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

TRAINER_PARTS = (
    ("_generate", "generation"),
    ("_get_per_token_logps_and_entropies", "log_probs"),
    ("compute_loss", "loss"),
    ("_calculate_rewards", "reward_bookkeeping"),
)


class Timers:
    """Exclusive wall-clock seconds and call counts per category."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []

    def wrap(self, category: str, fn):
        """``fn`` timed under ``category`` (its own time, nested timers subtracted)."""
        timers = self

        def timed(*args, **kwargs):
            timers._stack.append([0.0])
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - t0
                children = timers._stack.pop()[0]
                timers.seconds[category] += total - children
                timers.calls[category] += 1
                if timers._stack:
                    timers._stack[-1][0] += total

        timed.__name__ = getattr(fn, "__name__", category)
        timed.__wrapped__ = fn
        return timed


class TimedReward:
    """A reward callable under a ``reward:<name>`` timer, keeping the ``__name__`` TRL logs."""

    def __init__(self, fn, timers: Timers):
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.fn = fn
        self._timed = timers.wrap(f"reward:{self.__name__}", fn)

    def __call__(self, *args, **kwargs):
        return self._timed(*args, **kwargs)


@contextmanager
def timed_trainer(timers: Timers):
    """GRPOTrainer's parts and ``Tensor.backward`` under ``timers`` inside the block."""
    import torch
    from trl import GRPOTrainer

    patched = [(GRPOTrainer, name, getattr(GRPOTrainer, name)) for name, _ in TRAINER_PARTS]
    patched.append((torch.Tensor, "backward", torch.Tensor.backward))
    try:
        for name, cat in TRAINER_PARTS:
            setattr(GRPOTrainer, name, timers.wrap(cat, getattr(GRPOTrainer, name)))
        torch.Tensor.backward = timers.wrap("backward", torch.Tensor.backward)
        yield timers
    finally:
        for owner, name, orig in reversed(patched):
            setattr(owner, name, orig)


def step_timer_callback(step_seconds: list[float], sync=None):
    """A TrainerCallback appending each optimizer step's wall seconds to ``step_seconds``
    (``sync()`` first, e.g. ``torch.cuda.synchronize``, where the device runs asynchronously)."""
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if sync:
                sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if sync:
                sync()
            step_seconds.append(time.perf_counter() - self.t0)

    return StepTimes()


def summarise(timers: Timers, steps: list[float], skip_first: bool = True) -> dict:
    """Seconds per step (the first, warming caches, left out of the mean when there are more)
    and every category's share of all steps' wall time."""
    total = sum(steps)
    measured = steps[1:] if skip_first and len(steps) > 1 else steps
    cats = dict(timers.seconds)
    cats["rest"] = max(total - sum(cats.values()), 0.0)
    return {
        "step_seconds": [round(s, 3) for s in steps],
        "seconds_per_step": sum(measured) / len(measured) if measured else None,
        "seconds_per_step_incl_first": total / len(steps) if steps else None,
        "shares": {k: round(v / total, 4) for k, v in sorted(cats.items())} if total > 0 else {},
        "seconds": {k: round(v, 3) for k, v in sorted(cats.items())},
        "calls": dict(sorted(timers.calls.items())),
    }
