"""Image and volume normalisation shared by the segmenters.

* 2D images of any numeric type become HxWx3 uint8 (grey is repeated to RGB; non-uint8
  input is min-max scaled over its finite values).
* Volumes are raw intensities (CT in HU); a window ``(level, width)`` clips them to
  ``[level - width/2, level + width/2]`` and the clipped volume is min-max scaled to uint8,
  exactly as MedSAM2's ``medsam2_infer_3D_CT.py`` does (clip, ``(v - min) / (max - min) * 255``,
  ``np.uint8`` truncation). ``window=None`` skips the clip (MRI, already-scaled data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ABDOMEN_WINDOW = (40.0, 400.0)  # (level, width) in HU: abdominal soft tissue


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 / HxWx4 array of any numeric dtype -> HxWx3 uint8."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., :3] if a.shape[-1] != 1 else a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image must be HxW or HxWxC with C in (1, 3, 4) and H, W > 0; got shape {np.shape(image)}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"image must be numeric, got dtype {a.dtype}")
        a = minmax_to_uint8(a)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def minmax_to_uint8(a: np.ndarray) -> np.ndarray:
    """``(a - min) / (max - min) * 255`` over the finite values, truncated to uint8; non-finite
    values and a constant array give 0."""
    x = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, dtype=np.uint8)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint8)
    out = np.where(finite, (x - lo) / (hi - lo) * 255.0, 0.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def window_bounds(window: Sequence[float] | None) -> tuple[float, float] | None:
    """``(level, width)`` -> ``(lo, hi)``; None stays None. Width must be positive."""
    if window is None:
        return None
    try:
        level, width = (float(v) for v in window)
    except (TypeError, ValueError) as e:
        raise ValueError(f"window must be (level, width) or None, got {window!r}") from e
    if not (np.isfinite(level) and np.isfinite(width) and width > 0):
        raise ValueError(f"window must have a finite level and a positive width, got {window!r}")
    return level - width / 2.0, level + width / 2.0


def window_to_uint8(volume: np.ndarray, window: Sequence[float] | None = ABDOMEN_WINDOW) -> np.ndarray:
    """Clip to the window, min-max the clipped array to [0, 255], truncate to uint8
    (MedSAM2 3D recipe). Works on a slice or a whole volume; min and max are taken over the
    whole input, as the official script does for the volume."""
    x = np.asarray(volume, dtype=np.float64)
    bounds = window_bounds(window)
    if bounds is not None:
        x = np.clip(x, *bounds)
    return minmax_to_uint8(x)


def check_volume(volume) -> np.ndarray:
    """A numeric [z, y, x] array with at least one voxel, or one clear ValueError."""
    try:
        v = np.asarray(volume)
    except Exception as e:  # noqa: BLE001 - anything unconvertible is a caller error
        raise ValueError(f"volume must be a [z, y, x] array, got {type(volume).__name__}") from e
    if v.ndim != 3 or min(v.shape) == 0:
        raise ValueError(f"volume must be a non-empty [z, y, x] array, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.number) and v.dtype != bool:
        raise ValueError(f"volume must be numeric, got dtype {v.dtype}")
    return v


def valid_key_slice(key_slice, n_slices: int) -> int | None:
    """The key slice as an int in ``[0, n_slices)``, or None (a model's out-of-range or
    non-integer answer: the caller returns an empty mask)."""
    try:
        k = float(key_slice)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(k) or k != int(k) or not 0 <= int(k) < n_slices:
        return None
    return int(k)
