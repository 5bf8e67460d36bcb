"""MedReasoner's smoothing and penalisation (paper Sec. 4.3, Eqs. 8-10 and App. C.4, Eqs. 21-23).

Two variants:

* ``official``: the public code (``verl/utils/reward_score/med_grounding.py``). ``smooth_log``
  maps to ``[0.1, 1]`` with ``0.9 * s + 0.1``; ``smooth_exp`` is min-max normalised over
  ``d in [0, 2]`` and then mapped to ``[0.1, 1]``; the penalised reward is clipped to [0, 1]
  and rounded to 4 decimals. These match the paper's Figs. 12-13 ("from 0.1 to 1.0").
* ``paper``: Eqs. 8-10 as printed: ``log(k r + 1) / log(k + 1)``, ``1 / (1 + exp(k (d - c)))``
  and ``lam r + (1 - lam) r (v1 + v2) / 2`` with no affine map, no normalisation, no rounding
  (the result is clipped to [0, 1] so the reward stays in range).

All functions are vectorised over numpy arrays.
"""

from __future__ import annotations

import numpy as np


def smooth_log_official(v: np.ndarray, k: float = 3.0) -> np.ndarray:
    """``0.9 * ln(k v + 1) / ln(k + 1) + 0.1`` (public code; v = IoU, pDice or |cos|)."""
    v = np.asarray(v, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.9 * (np.log(k * v + 1.0) / np.log(k + 1.0)) + 0.1


def smooth_exp_official(v: np.ndarray, k: float = 3.0, c: float = 1.0) -> np.ndarray:
    """Sigmoid ``1 / (1 + exp(k (v - c)))`` min-max normalised over ``v in [0, 2]``, then
    ``0.9 * s + 0.1`` (public code; v = a normalised distance)."""
    v = np.asarray(v, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        raw = 1.0 / (1.0 + np.exp(k * (v - c)))
    lo = 1.0 / (1.0 + np.exp(k * (2.0 - c)))
    hi = 1.0 / (1.0 + np.exp(k * (0.0 - c)))
    return (raw - lo) / (hi - lo + 1e-8) * 0.9 + 0.1


def smooth_log_paper(r: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Eq. 8 / 21: ``S_log(r; k) = log(k r + 1) / log(k + 1)``, r in [0, 1] -> [0, 1]."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(k * r + 1.0) / np.log(k + 1.0)


def smooth_exp_paper(d: np.ndarray, k: float = 3.0, c: float = 1.0) -> np.ndarray:
    """Eq. 9 / 22: ``S_exp(d; k, c) = 1 / (1 + exp(k (d - c)))``, d in [0, 2]."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(k * (d - c)))


def round_like_python(x: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Python's ``round(x, decimals)`` element-wise (correctly rounded decimal, ties to even).

    ``np.round`` (scale, rint, unscale) agrees except near a tie, where the scaled value's
    own rounding error can flip the result; those few elements are rounded by Python."""
    x = np.asarray(x, dtype=np.float64)
    scaled = x * 10.0**decimals
    out = np.round(x, decimals)
    near_tie = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6
    if np.any(near_tie):
        out[near_tie] = [round(float(v), decimals) for v in x[near_tie]]
    return out


def penalize(
    r: np.ndarray, valid1: np.ndarray, valid2: np.ndarray, lam: float = 0.7, decimals: int | None = 4
) -> np.ndarray:
    """Eq. 10 / 23: ``N(r; v1, v2) = lam r + (1 - lam) r (v1 + v2) / 2``, clipped to [0, 1];
    rounded to ``decimals`` places like the public code (``None``: no rounding)."""
    r = np.asarray(r, dtype=np.float64)
    out = lam * r + (1.0 - lam) * r * ((np.asarray(valid1) + np.asarray(valid2)) / 2.0)
    out = np.minimum(np.maximum(out, 0.0), 1.0)
    return round_like_python(out, decimals) if decimals is not None else out
