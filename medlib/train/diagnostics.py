"""Why GRPO learns or does not: per-step group diagnostics of the reward set.

GRPO's gradient comes only from groups whose total reward has spread (DeepSeekMath Eq. 3: the
advantage of a completion is its reward minus its group's mean, over the group's standard
deviation), so a step in which every group's G completions score alike teaches nothing. Two
numbers per step say where the signal is:

- ``diag/zero_spread/<reward>``: fraction of the step's groups in which that reward is the same
  for all G completions (``diag/zero_spread/total`` for the weighted sum, the quantity TRL logs
  as ``frac_reward_zero_std``);
- ``diag/adv_share/<reward>``: that reward's share of the within-group variance of the total,
  ``sum_g sum_j (w_i r_ij - mean_g)(R_j - mean_g) / sum_g sum_j (R_j - mean_g)^2``; the shares sum
  to 1 (a covariance decomposition of Var(R) = sum_i Cov(w_i r_i, R)), so they say which reward
  moves the advantages.

They reach TRL's logs (``metrics.csv``) through the ``log_metric`` argument that
``GRPOTrainer`` passes to every reward function, beside TRL's own ``kl``, ``entropy`` and
``completions/mean_length``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def group_diagnostics(rewards: np.ndarray, weights: Sequence[float], names: Sequence[str],
                      num_generations: int) -> dict[str, float]:
    """Diagnostics of one step: ``rewards`` is (completions, rewards) with the G completions of a
    prompt consecutive (TRL's ``RepeatSampler`` order); NaN rewards count as 0 (TRL's nansum)."""
    r = np.nan_to_num(np.asarray(rewards, dtype=np.float64), nan=0.0)
    n, k = r.shape
    if num_generations < 1 or n % num_generations:
        raise ValueError(f"{n} completions are not groups of {num_generations}")
    wr = r * np.asarray(weights, dtype=np.float64)[None, :]
    g = wr.reshape(n // num_generations, num_generations, k)
    centred = g - g.mean(axis=1, keepdims=True)
    total = centred.sum(axis=2)
    out: dict[str, float] = {}
    spread = np.ptp(g, axis=1) > 1e-9
    for i, name in enumerate(names):
        out[f"diag/zero_spread/{name}"] = float((~spread[:, i]).mean())
    out["diag/zero_spread/total"] = float((np.ptp(g.sum(axis=2), axis=1) <= 1e-9).mean())
    var = float((total ** 2).sum())
    for i, name in enumerate(names):
        cov = float((centred[:, :, i] * total).sum())
        out[f"diag/adv_share/{name}"] = cov / var if var > 0 else float("nan")
    return out


def with_group_diagnostics(funcs: Sequence[Callable], weights: Sequence[float],
                           num_generations: int) -> list[Callable]:
    """``funcs`` wrapped so that, once the last of them has scored a step's completions, the
    step's :func:`group_diagnostics` go to TRL's ``log_metric``. Each wrapper returns exactly what
    its reward returned (same name, same values)."""
    names = [getattr(f, "__name__", f"reward{i}") for i, f in enumerate(funcs)]
    pending: dict[int, list[float]] = {}

    def wrap(i: int, f: Callable) -> Callable:
        @functools.wraps(f)
        def scored(*args: Any, **kwargs: Any):
            out = f(*args, **kwargs)
            pending[i] = [np.nan if v is None else float(v) for v in out]
            log = kwargs.get("log_metric")
            if i == len(funcs) - 1 and log is not None and len(pending) == len(funcs):
                lengths = {len(v) for v in pending.values()}
                if len(lengths) == 1:
                    table = np.array([pending[j] for j in range(len(funcs))]).T
                    for key, value in group_diagnostics(table, weights, names, num_generations).items():
                        log(key, value)
                pending.clear()
            return out

        return scored

    return [wrap(i, f) for i, f in enumerate(funcs)]
