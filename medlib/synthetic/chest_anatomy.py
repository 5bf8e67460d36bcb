"""Anatomy of a synthetic frontal (PA) chest radiograph: per-image shape parameters, lung
and heart masks, and the tissue-density layers that :mod:`.chest_render` turns into an image.

Coordinates are fractions of the image side (``u`` to the image right, ``v`` down). Sides
are the *patient's*: index 0 = right lung, drawn on the image left (radiological
convention); index 1 = left lung, on the image right. ``SIGN[side]`` is the direction from
the midline on the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SIDES = ("right", "left")
SIGN = (-1.0, 1.0)


@dataclass(frozen=True)
class Anatomy:
    """Shape parameters of one chest (fractions of the image side)."""

    size: int
    cx: float  # midline
    apex: tuple[float, float]  # lung apex level, per side
    cp: tuple[float, float]  # costophrenic angle level (lowest lung point), per side
    dome: tuple[float, float]  # top of the hemidiaphragm dome, per side
    dome_d: tuple[float, float]  # distance of the dome top from the midline, per side
    lat: tuple[float, float]  # widest lateral lung border from the midline, per side
    apex_d: float  # distance of the apex from the midline
    med: float  # half-width of the upper mediastinum
    heart_v: float  # heart centre level
    heart_a: tuple[float, float]  # heart border distance from the midline toward each side
    heart_b: float  # heart vertical semi-axis
    hilum_v: float
    body: float  # half-width of the body at the lung bases
    rib_top: float  # level of the first posterior rib at the spine
    rib_step: float  # posterior rib spacing at the spine
    gastric: bool  # gastric air bubble under the left hemidiaphragm

    def ctr(self) -> float:
        """Cardiothoracic ratio: heart width / inner thoracic width at the bases."""
        return (self.heart_a[0] + self.heart_a[1]) / (self.lat[0] + self.lat[1])

    def enlarge_heart(self, factor: float) -> Anatomy:
        """Cardiomegaly: widen the heart by ``factor`` (height by a third of it)."""
        a0, a1 = self.heart_a
        b = self.heart_b * (1 + (factor - 1) / 3)
        return replace(
            self, heart_a=(a0 * factor, a1 * factor), heart_b=b, heart_v=self.heart_v - (b - self.heart_b)
        )


def sample_anatomy(rng: np.random.Generator, size: int) -> Anatomy:
    """Draw one plausible adult PA chest (normal heart, CTR about 0.4-0.48)."""
    scale = rng.uniform(0.93, 1.04)
    cx = 0.5 + rng.normal(0, 0.012)
    apex = 0.12 + rng.uniform(-0.02, 0.025)
    cp_r = min(0.9, apex + scale * rng.uniform(0.66, 0.72))
    cp = (cp_r, min(0.91, cp_r + rng.uniform(0.0, 0.025)))  # the left base sits a little lower
    dome_r = cp[0] - rng.uniform(0.1, 0.14)
    dome = (dome_r, dome_r + rng.uniform(0.015, 0.035))  # the liver lifts the right dome
    lat = scale * rng.uniform(0.36, 0.40)
    lat_pair = (lat * rng.uniform(0.97, 1.01), lat * rng.uniform(0.99, 1.03))
    heart_a = (scale * rng.uniform(0.105, 0.13), scale * rng.uniform(0.19, 0.22))
    heart_b = rng.uniform(0.15, 0.17)
    heart_v = dome[1] - rng.uniform(0.35, 0.5) * heart_b  # the diaphragm hides the heart's lower part
    return Anatomy(
        size=size,
        cx=cx,
        apex=(apex, apex + rng.uniform(-0.01, 0.01)),
        cp=cp,
        dome=dome,
        dome_d=(lat_pair[0] * rng.uniform(0.45, 0.58), lat_pair[1] * rng.uniform(0.5, 0.62)),
        lat=lat_pair,
        apex_d=scale * rng.uniform(0.15, 0.18),
        med=scale * rng.uniform(0.045, 0.06),
        heart_v=heart_v,
        heart_a=heart_a,
        heart_b=heart_b,
        hilum_v=apex + rng.uniform(0.27, 0.32),
        body=min(0.5, lat * rng.uniform(1.12, 1.22)),
        rib_top=apex - rng.uniform(0.0, 0.02),
        rib_step=scale * rng.uniform(0.058, 0.066),
        gastric=bool(rng.random() < 0.75),
    )


class Grid:
    """Pixel-centre coordinates of an ``size x size`` image as fractions of the side."""

    def __init__(self, size: int):
        c = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.size = size
        self.u = c[None, :]  # (1, S), broadcasts over rows
        self.v = c[:, None]  # (S, 1)
        self.c = c


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def lung_borders(a: Anatomy, side: int, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medial and lateral lung border (distance from the midline) at levels ``v``."""
    t = (v - a.apex[side]) / (a.cp[side] - a.apex[side])
    grow = (1 - (1 - np.clip(t / 0.85, 0, 1)) ** 2.2) ** 0.55
    lateral = a.apex_d + (a.lat[side] - a.apex_d) * grow
    medial = a.apex_d - (a.apex_d - a.med) * np.sin(np.pi / 2 * np.clip(t / 0.3, 0, 1)) ** 0.55
    medial = medial + 0.035 * _smoothstep((t - 0.3) / 0.35)  # mediastinum widens into the heart
    if side == 1:  # aortic knob bulging into the left upper lung
        medial = medial + 0.028 * np.exp(-0.5 * ((v - knob_level(a)) / 0.03) ** 2)
    return medial, lateral


def knob_level(a: Anatomy) -> float:
    return a.apex[1] + 0.19


def diaphragm(a: Anatomy, side: int, d: np.ndarray) -> np.ndarray:
    """Level of the hemidiaphragm at distance ``d`` from the midline (dome, lower laterally
    down to the costophrenic angle at ``lat``)."""
    dd, lat = a.dome_d[side], a.lat[side]
    outer = a.dome[side] + (a.cp[side] - a.dome[side]) * np.clip((d - dd) / (lat - dd), 0, None) ** 2
    inner = a.dome[side] + 0.35 * (a.cp[side] - a.dome[side]) * np.clip((dd - d) / dd, 0, 1) ** 2
    return np.where(d >= dd, outer, inner)


def heart_mask(a: Anatomy, g: Grid) -> np.ndarray:
    du = g.u - a.cx
    y = (g.v - a.heart_v) / a.heart_b
    ax = np.where(du < 0, a.heart_a[0], a.heart_a[1]) * (1 + 0.12 * np.clip(y, -1, 1))  # widest low down
    inside = (du / ax) ** 2 + y**2 <= 1.0
    floor = np.where(du < 0, diaphragm(a, 0, -du), diaphragm(a, 1, du)) + 0.01
    return inside & (g.v <= floor)


def hemithorax_masks(a: Anatomy, g: Grid) -> list[np.ndarray]:
    """Per side, the lung outline before the heart is drawn over it."""
    out = []
    for side in (0, 1):
        d = SIGN[side] * (g.u - a.cx)
        medial, lateral = lung_borders(a, side, g.v)
        m = (g.v >= a.apex[side]) & (d >= medial) & (d <= lateral) & (g.v <= diaphragm(a, side, d))
        out.append(m)
    return out


def lung_masks(a: Anatomy, g: Grid) -> list[np.ndarray]:
    """Per side, the visible lung field (hemithorax minus the heart)."""
    heart = heart_mask(a, g)
    return [m & ~heart for m in hemithorax_masks(a, g)]


def lung_position(a: Anatomy, side: int, u: float, v: float) -> tuple[float, float]:
    """(t, s) of a point in a lung: t = 0 at the apex .. 1 at the costophrenic angle;
    s = 0 at the medial border .. 1 at the lateral border."""
    d = SIGN[side] * (u - a.cx)
    t = (v - a.apex[side]) / (a.cp[side] - a.apex[side])
    medial, lateral = lung_borders(a, side, np.float32(v))
    heart_border = 0.0
    if abs(v - a.heart_v) < a.heart_b:
        heart_border = a.heart_a[side] * np.sqrt(1 - ((v - a.heart_v) / a.heart_b) ** 2)
    inner = max(float(medial), heart_border)
    s = (d - inner) / max(float(lateral) - inner, 1e-6)
    return float(t), float(np.clip(s, 0, 1))
