"""Findings of the synthetic chest benchmark, each placed by anatomy and returned with the
true extent of what it changes (its mask) so that the box is exact.

Kinds and how they look: nodule (small dense disc), mass (large lobulated disc),
consolidation (dense air-space opacity with air bronchograms), infiltrate (patchy
ill-defined opacity), atelectasis (plate-like band at a base), effusion (dependent fluid
with a meniscus, blunting the costophrenic angle), pneumothorax (lucent apical/lateral
rim without lung markings, bounded by the visceral pleural line), cardiomegaly (enlarged
heart; the box is the heart).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt, gaussian_filter

from .chest_anatomy import SIGN, Anatomy, Grid, heart_mask, hemithorax_masks, lung_position

KINDS = (
    "nodule",
    "mass",
    "consolidation",
    "infiltrate",
    "atelectasis",
    "effusion",
    "pneumothorax",
    "cardiomegaly",
)
#: Kinds that can appear in both lungs (a "bilateral" multi-box phrase in MS-CXR).
BILATERAL_KINDS = ("consolidation", "infiltrate", "atelectasis", "effusion")


@dataclass
class Effect:
    """What a finding does to the density layers (see :class:`.chest_render.Layers`)."""

    add: np.ndarray | None = None
    aeration_loss: np.ndarray | None = None
    vessel_keep: np.ndarray | None = None


@dataclass
class Finding:
    kind: str
    side: int | None  # 0 = patient right, 1 = left, None = central (heart)
    mask: np.ndarray  # pixels the finding changes
    effect: Effect
    attrs: dict = field(default_factory=dict)  # size / severity / location facts for phrases

    @property
    def box(self) -> tuple[int, int, int, int]:
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def boxes_touch(a, b, gap: int = 2) -> bool:
    """True when two xyxy boxes overlap or lie within ``gap`` pixels of each other."""
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


class Placer:
    """Lung geometry of one image for placing findings: masks, (t, s) maps, edge distance."""

    def __init__(self, a: Anatomy, g: Grid):
        self.a, self.g = a, g
        self.heart = heart_mask(a, g)
        self.hemi = hemithorax_masks(a, g)
        self.lungs = [m & ~self.heart for m in self.hemi]
        self.edge = [distance_transform_edt(m) / g.size for m in self.lungs]
        S = g.size
        self.t = [np.broadcast_to((g.v - a.apex[k]) / (a.cp[k] - a.apex[k]), (S, S)) for k in (0, 1)]
        self.s = []
        cols = np.arange(S)[None, :]
        for k in (0, 1):
            m = self.lungs[k]
            any_row = m.any(axis=1)
            first = np.where(any_row, m.argmax(axis=1), 0)[:, None]
            last = np.where(any_row, S - 1 - m[:, ::-1].argmax(axis=1), 1)[:, None]
            frac = (cols - first) / np.maximum(last - first, 1)
            self.s.append(frac if SIGN[k] > 0 else 1 - frac)  # 0 = medial, 1 = lateral

    def point(self, rng, side, t_range, s_range, margin: float = 0.0) -> tuple[float, float] | None:
        """A random point (u, v) of the lung on ``side`` inside the (t, s) window at least
        ``margin`` (fraction of the side) from the lung edge."""
        ok = (
            self.lungs[side]
            & (self.t[side] >= t_range[0])
            & (self.t[side] <= t_range[1])
            & (self.s[side] >= s_range[0])
            & (self.s[side] <= s_range[1])
            & (self.edge[side] >= margin)
        )
        ys, xs = np.nonzero(ok)
        if len(xs) == 0:
            return None
        i = int(rng.integers(len(xs)))
        S = self.g.size
        return (xs[i] + 0.5) / S, (ys[i] + 0.5) / S


def _location(a: Anatomy, side: int, box, S: int) -> dict:
    u, v = (box[0] + box[2]) / 2 / S, (box[1] + box[3]) / 2 / S
    t, s = lung_position(a, side, u, v)
    return {"t": t, "s": s, "top_t": (box[1] / S - a.apex[side]) / (a.cp[side] - a.apex[side])}


def _sphere(rho, r):
    return np.sqrt(np.clip(1.0 - (rho / r) ** 2, 0.0, None))


# --------------------------------------------------------------------------- focal lesions
def nodule_or_mass(kind: str, p: Placer, rng, side: int) -> Finding | None:
    g, S = p.g, p.g.size
    r = rng.uniform(0.012, 0.026) if kind == "nodule" else rng.uniform(0.04, 0.07)
    c = p.point(rng, side, (0.12, 0.85), (0.15, 0.9), margin=r * (1.05 if kind == "nodule" else 0.8))
    if c is None:
        return None
    du, dv = g.u - c[0], g.v - c[1]
    rho = np.sqrt(du**2 + dv**2)
    if kind == "mass":
        th = np.arctan2(dv, du)
        rr = r * (
            1 + sum(rng.uniform(0.03, 0.08) * np.cos(k * th + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
        )
    else:
        rr = r
    prof = _sphere(rho, rr)
    amp = rng.uniform(0.35, 0.55) if kind == "nodule" else rng.uniform(0.5, 0.75)
    prof = gaussian_filter(prof.astype(np.float32), 0.5 * S / 224)
    mask = (prof > 0.08) & p.hemi[side]
    if not mask.any():
        return None
    add = amp * prof * mask
    return Finding(kind, side, mask, Effect(add=add.astype(np.float32)), {"radius": r})


def _blob_field(g: Grid, rng, centre, radius, n: int) -> np.ndarray:
    f = np.zeros((g.size, g.size), np.float32)
    for _ in range(n):
        ox, oy = rng.normal(0, radius * 0.5, size=2)
        sx, sy = radius * rng.uniform(0.25, 0.7), radius * rng.uniform(0.25, 0.7)
        f += np.exp(-0.5 * (((g.u - centre[0] - ox) / sx) ** 2 + ((g.v - centre[1] - oy) / sy) ** 2))
    return f


ZONES = {"upper": (0.12, 0.38), "mid": (0.38, 0.62), "lower": (0.62, 0.9)}


def airspace(kind: str, p: Placer, rng, side: int, zone: str | None = None) -> Finding | None:
    """Consolidation (dense, air bronchograms) or infiltrate (patchy, ill-defined)."""
    g, S = p.g, p.g.size
    zone = zone or str(rng.choice(list(ZONES)))
    radius = rng.uniform(0.05, 0.09) if kind == "consolidation" else rng.uniform(0.05, 0.09)
    c = p.point(rng, side, ZONES[zone], (0.15, 0.85), margin=0.015)
    if c is None:
        return None
    f = _blob_field(g, rng, c, radius, int(rng.integers(4, 9)))
    lung = p.lungs[side]
    if kind == "consolidation":
        noise = gaussian_filter(rng.normal(size=(S, S)).astype(np.float32), 1.5 * S / 224)
        ragged = f * (1 + 0.3 * noise / (noise.std() + 1e-6))  # irregular margin
        region = (ragged > 0.5) & lung
        loss = gaussian_filter(region.astype(np.float32), 1.8 * S / 224) * rng.uniform(0.65, 0.9)
        # air bronchograms: short dark branching tubes that stay aerated
        bron = np.zeros_like(loss)
        for _ in range(int(rng.integers(1, 4))):
            ang = rng.uniform(0, 2 * np.pi)
            x0, y0 = c[0] + rng.normal(0, radius * 0.2), c[1] + rng.normal(0, radius * 0.2)
            L = radius * rng.uniform(0.6, 1.0)
            tt = np.clip(((g.u - x0) * np.cos(ang) + (g.v - y0) * np.sin(ang)) / L, 0, 1)
            dist = np.sqrt((g.u - x0 - tt * L * np.cos(ang)) ** 2 + (g.v - y0 - tt * L * np.sin(ang)) ** 2)
            bron = np.maximum(bron, np.exp(-0.5 * (dist / (0.004 * (1.2 - tt))) ** 2))
        loss = loss * (1 - 0.45 * bron * region)
        mask = region
    else:
        noise = gaussian_filter(rng.normal(size=(S, S)).astype(np.float32), 2.5 * S / 224)
        noise = np.clip(noise / (noise.std() + 1e-6) * 0.5 + 0.6, 0, 1)
        env = np.clip(f, 0, 1)
        loss = env * noise * rng.uniform(0.45, 0.65) * lung
        loss = gaussian_filter(loss, 0.8 * S / 224) * lung
        mask = (loss > 0.12) & lung
    if mask.sum() < 6:
        return None
    loss = np.where(p.hemi[side], loss, 0).astype(np.float32)
    mask = mask | ((loss > 0.1) & lung)  # aeration loss shows only where there was lung air
    return Finding(kind, side, mask, Effect(aeration_loss=loss), {"zone": zone})


def atelectasis(p: Placer, rng, side: int) -> Finding | None:
    """Plate-like (discoid) atelectasis: a thin dense band, roughly horizontal, in the
    lower zone."""
    g = p.g
    c = p.point(rng, side, (0.66, 0.9), (0.2, 0.8), margin=0.02)
    if c is None:
        return None
    length = rng.uniform(0.06, 0.13)
    thick = rng.uniform(0.007, 0.014)
    ang = rng.normal(0, 0.2) * SIGN[side]
    du, dv = g.u - c[0], g.v - c[1]
    along = du * np.cos(ang) + dv * np.sin(ang)
    across = -du * np.sin(ang) + dv * np.cos(ang)
    band = np.exp(-0.5 * (across / thick) ** 2) * np.clip(1 - (along / length) ** 2, 0, 1) ** 0.5
    band = band.astype(np.float32)
    region = (band > 0.25) & p.lungs[side]
    if region.sum() < 6:
        return None
    loss = band * rng.uniform(0.8, 0.95) * p.hemi[side]
    mask = (loss > 0.1) & p.lungs[side]
    return Finding(
        "atelectasis", side, mask, Effect(aeration_loss=loss.astype(np.float32)), {"zone": "lower"}
    )


def effusion(p: Placer, rng, side: int) -> Finding | None:
    """Dependent pleural fluid with a meniscus (higher laterally) that fills the
    costophrenic angle and hides the hemidiaphragm."""
    a, g, S = p.a, p.g, p.g.size
    # fluid level relative to the dome top: below it only the costophrenic angle fills
    above_dome = rng.choice([rng.uniform(-0.07, -0.01), rng.uniform(0.02, 0.09), rng.uniform(0.1, 0.22)])
    level = a.dome[side] - above_dome
    rise = rng.uniform(0.02, 0.05)
    s = p.s[side]
    meniscus = level - rise * np.clip(s, 0, 1) ** 1.5
    hemi = p.hemi[side]
    below = g.v > meniscus
    fluid = (below & hemi).astype(np.float32)
    depth = np.clip((g.v - meniscus) / 0.03, 0, 1)
    loss = fluid * (0.55 + 0.45 * depth)
    loss = gaussian_filter(loss, 0.9 * S / 224) * hemi
    mask = (loss > 0.1) & p.lungs[side]
    if mask.sum() < 10:
        return None
    visible = gaussian_filter(p.lungs[side].astype(np.float32), 0.8 * S / 224)
    add = 0.3 * loss * visible  # as dense as the abdomen below: the hemidiaphragm disappears
    frac = (a.cp[side] - (_box_of(mask)[1] / S)) / (a.cp[side] - a.apex[side])
    severity = "small" if frac < 0.2 else ("moderate" if frac < 0.34 else "large")
    keep = 1 - loss
    return Finding(
        "effusion",
        side,
        mask,
        Effect(
            add=add.astype(np.float32),
            aeration_loss=loss.astype(np.float32),
            vessel_keep=keep.astype(np.float32),
        ),
        {"severity": severity, "height": float(frac)},
    )


def pneumothorax(p: Placer, rng, side: int) -> Finding | None:
    """The lung collapses toward the hilum; the rim of pleural air between the visceral
    pleural line and the chest wall is lucent and has no lung markings."""
    a, g, S = p.a, p.g, p.g.size
    c = rng.choice([rng.uniform(0.86, 0.93), rng.uniform(0.76, 0.86), rng.uniform(0.6, 0.76)])
    extent = rng.uniform(0.3, 0.5) if c > 0.86 else rng.uniform(0.5, 0.95)  # apical vs larger
    hx, hy = a.cx + SIGN[side] * (a.med + 0.05), a.hilum_v + 0.05
    lung = p.lungs[side]
    # collapsed lung: q is inside when hilum + (q - hilum) / c lies in the lung
    sx = np.clip(((hx + (g.u - hx) / c) * S).astype(np.int32), 0, S - 1)
    sy = np.clip(((hy + (g.v - hy) / c) * S).astype(np.int32), 0, S - 1)
    collapsed = p.hemi[side][sy, sx] & lung
    v_lim = a.apex[side] + extent * (a.cp[side] - a.apex[side])
    d = SIGN[side] * (g.u - a.cx)
    region = lung & ~collapsed & (g.v < v_lim) & (p.s[side] > 0.25)
    region &= d > a.med + 0.04
    if region.sum() < 12:
        return None
    soft = gaussian_filter(region.astype(np.float32), 0.7 * S / 224)
    edge = collapsed & ~binary_erosion(collapsed, iterations=1)
    near = gaussian_filter(region.astype(np.float32), 1.5 * S / 224) > 0.05
    line = gaussian_filter((edge & near).astype(np.float32), 0.5 * S / 224)
    add = -0.15 * soft + 0.22 * line
    keep = 1 - soft
    mask = region | (line > 0.15)
    severity = "small" if c > 0.86 else ("moderate" if c > 0.76 else "large")
    return Finding(
        "pneumothorax",
        side,
        mask,
        Effect(add=add.astype(np.float32), vessel_keep=keep.astype(np.float32)),
        {"severity": severity, "apical": bool(extent < 0.5)},
    )


def cardiomegaly_box_finding(a: Anatomy, g: Grid, factor: float) -> Finding:
    """The heart of an anatomy already enlarged by ``factor`` (see ``Anatomy.enlarge_heart``)."""
    mask = heart_mask(a, g)
    ctr = a.ctr()
    severity = "mild" if ctr < 0.56 else ("moderate" if ctr < 0.64 else "severe")
    return Finding(
        "cardiomegaly", None, mask, Effect(), {"severity": severity, "ctr": float(ctr), "factor": factor}
    )


def place(kind: str, p: Placer, rng, side: int, zone: str | None = None) -> Finding | None:
    """Place one lung finding of ``kind`` in the lung on ``side`` (None when it cannot fit)."""
    if kind in ("nodule", "mass"):
        f = nodule_or_mass(kind, p, rng, side)
    elif kind in ("consolidation", "infiltrate"):
        f = airspace(kind, p, rng, side, zone)
    elif kind == "atelectasis":
        f = atelectasis(p, rng, side)
    elif kind == "effusion":
        f = effusion(p, rng, side)
    elif kind == "pneumothorax":
        f = pneumothorax(p, rng, side)
    else:
        raise ValueError(f"{kind!r} is not a lung finding")
    if f is not None:
        f.attrs.update(_location(p.a, side, f.box, p.g.size))
    return f
