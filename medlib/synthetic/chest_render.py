"""Tissue-density layers of a synthetic chest radiograph and the film model that turns
them into an 8-bit image.

The image is an attenuation picture: each pixel's density ``D`` (soft tissue + bone - lung
air + vessels + findings) becomes brightness ``1 - exp(-k D)``; then per-image window,
gamma, unsharpness and film noise. Bright = dense (bone, heart, fluid), dark = air.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .chest_anatomy import SIGN, Anatomy, Grid, diaphragm, heart_mask, hemithorax_masks, lung_borders


@dataclass
class Layers:
    """Density layers; findings edit ``add``, ``aeration_loss`` and ``vessel_keep``."""

    tissue: np.ndarray  # soft tissue, mediastinum, heart, abdomen, bone
    air: np.ndarray  # density removed by lung air
    vessels: np.ndarray  # bronchovascular markings
    add: np.ndarray  # extra density of findings
    aeration_loss: np.ndarray  # 0..1: share of the lung air replaced by fluid / tissue
    vessel_keep: np.ndarray  # 0..1: markings left (0 inside a pneumothorax)


def _gauss(x, s):
    return np.exp(-0.5 * (x / s) ** 2)


def _tube(z, half):
    """Projected density of a bone of half-thickness ``half`` at offset ``z``: a solid tube
    plus a brighter cortex near its rims."""
    r = np.clip(1.0 - (z / half) ** 2, 0.0, None)
    return 0.65 * np.sqrt(r) + 0.35 * np.clip(1.0 - np.abs(np.abs(z) - 0.8 * half) / (0.3 * half), 0, None)


def _body_half_width(a: Anatomy, v: np.ndarray) -> np.ndarray:
    shoulder = a.apex[0] - 0.06
    neck = 0.085
    return neck + (a.body + 0.02 - neck) * np.clip((v - shoulder + 0.1) / 0.12, 0, 1) ** 0.5


def _add_band(
    out: np.ndarray, g: Grid, cols: np.ndarray, yc: np.ndarray, half: float, amp: np.ndarray
) -> None:
    """Add a bone band of half-thickness ``half`` centred on the curve ``yc`` (one value per
    column in ``cols``), evaluated only on the rows it can touch."""
    S = g.size
    lo = int(max(0, np.floor((yc.min() - half) * S)))
    hi = int(min(S, np.ceil((yc.max() + half) * S) + 1))
    if hi <= lo:
        return
    z = g.c[lo:hi, None] - yc[None, :]
    band = _tube(z, half) * (np.abs(z) < half)
    out[lo:hi, cols] += band * amp[None, :]


def _ribs(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Posterior ribs (bright arcs, convex upward, curving down along the lateral wall) and
    fainter anterior ribs (running down and in from the lateral wall)."""
    bone = np.zeros((g.size, g.size), np.float32)
    for side in (0, 1):
        d_all = SIGN[side] * (g.c - a.cx)
        lat = a.lat[side]
        cols = np.nonzero((d_all > 0.025) & (d_all < lat + 0.09))[0]
        dc = d_all[cols]
        fade = np.clip((lat + 0.07 - dc) / 0.06, 0, 1)  # ribs end in the lateral chest wall
        for k in range(11):
            y0 = a.rib_top + k * a.rib_step * (1 + 0.04 * k) + rng.normal(0, 0.004)
            if y0 > a.cp[side] + 0.02:
                break
            curve = (0.9 - 0.04 * k) * rng.uniform(0.9, 1.1)  # upper ribs are more curved
            yc = y0 - 0.13 * dc + curve * np.clip(dc - 0.1, 0, None) ** 2 * (1.3 / lat)
            amp = 0.2 * rng.uniform(0.8, 1.1) * fade * (1 - 0.25 * np.clip((0.1 - dc) / 0.07, 0, 1))
            _add_band(bone, g, cols, yc, (0.009 + 0.0012 * k) * rng.uniform(0.9, 1.15), amp)
        reach = np.clip((dc - 0.1) / 0.06, 0, 1) * np.clip((lat + 0.02 - dc) / 0.03, 0, 1)
        for k in range(6):  # anterior ribs: thin, faint, oblique
            y_lat = a.apex[side] + 0.08 + k * 0.075
            yc = y_lat + 0.55 * (lat - dc) - 0.5 * np.clip(lat - dc - 0.22, 0, None)
            _add_band(bone, g, cols, yc, 0.009, 0.11 * reach)
    return bone


def _clavicles_spine(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    bone = np.zeros((g.size, g.size), np.float32)
    u, v = g.u, g.v
    y_med = a.apex[0] + rng.uniform(0.03, 0.06)
    for side in (0, 1):
        d = SIGN[side] * (u - a.cx)
        yc = y_med - 0.16 * d + 0.35 * np.clip(d - 0.2, 0, None) ** 2 + 0.01 * np.sin(d * 12)
        z = v - yc
        reach = np.clip((d - 0.03) / 0.02, 0, 1) * np.clip((a.body + 0.04 - d) / 0.05, 0, 1)
        bone += 0.55 * _tube(z, 0.016) * (np.abs(z) < 0.016) * reach
        scap = np.clip((d - (a.lat[side] - 0.05)) / 0.03, 0, 1) * _gauss(v - (a.apex[0] + 0.16), 0.12)
        bone += 0.07 * scap
    # spine: vertebral bodies with darker disc spaces, pedicles as paired dots
    du = u - a.cx
    col = np.clip(1 - (du / 0.032) ** 2, 0, None) ** 0.5
    disc = 0.75 + 0.25 * np.cos(2 * np.pi * (v - a.rib_top) / a.rib_step)
    bone += 0.55 * col * disc * (v > a.apex[0] - 0.1)
    return bone


def _vessels(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Bronchovascular markings: vessel trees branching from each hilum, thinning and
    fading toward the periphery (drawn as anti-aliased lines, then softened)."""
    from PIL import Image, ImageDraw

    S = g.size
    canvas = Image.new("L", (S, S), 0)
    draw = ImageDraw.Draw(canvas)
    px = S / 224.0

    def grow(x, y, ang, length, width, level):
        if level > 4 or length * S < 2.5:
            return
        nx, ny = x + math.cos(ang) * length, y + math.sin(ang) * length
        shade = int(min(255, max(40, 60 + 195 * width / (2.4 * px))))
        draw.line([(x * S, y * S), (nx * S, ny * S)], fill=shade, width=max(1, int(round(width))))
        n_child = 2 if rng.random() < 0.9 else 3
        for k in range(n_child):
            spread = rng.uniform(0.25, 0.6) * (1 if k % 2 else -1)
            grow(
                nx,
                ny,
                ang + spread + rng.normal(0, 0.08),
                length * rng.uniform(0.7, 0.88),
                width * 0.72,
                level + 1,
            )

    for side in (0, 1):
        hx, hy = a.cx + SIGN[side] * (a.med + 0.055), a.hilum_v
        # main trunks: upper lobe (up and out), middle (out), lower lobe (down and out)
        for base in (-1.3, -0.8, -0.3, 0.2, 0.6, 0.95, 1.25):
            ang_img = base + rng.normal(0, 0.15)
            ang = ang_img if SIGN[side] > 0 else np.pi - ang_img
            sx = hx + SIGN[side] * rng.uniform(-0.01, 0.02)
            sy = hy + 0.05 * np.sin(ang_img) + rng.normal(0, 0.01)
            grow(sx, sy, ang, rng.uniform(0.035, 0.07), 2.4 * px, 0)
    tree = np.asarray(canvas, dtype=np.float32) / 255.0
    tree = gaussian_filter(tree, 0.6 * px)
    hilar = np.zeros((S, S), np.float32)
    for side in (0, 1):
        hx, hy = a.cx + SIGN[side] * (a.med + 0.05), a.hilum_v
        hilar += _gauss(np.sqrt((g.u - hx) ** 2 + ((g.v - hy) / 1.6) ** 2), 0.025)
    fine = gaussian_filter(rng.normal(size=(S, S)).astype(np.float32), max(0.8, px))
    return 0.2 * tree + 0.3 * hilar + 0.035 * fine


def central_mask(a: Anatomy, g: Grid) -> np.ndarray:
    """Mediastinum and heart: everything between the two lungs' medial borders above the
    diaphragm, plus the heart."""
    du = g.u - a.cx
    m = np.zeros((g.size, g.size), bool)
    for side in (0, 1):
        d = SIGN[side] * du
        medial, _ = lung_borders(a, side, g.v)
        medial = np.where(g.v < a.apex[side] + 0.04, a.med, medial)  # neck above the apices
        m |= (d >= 0) & (d < medial) & (g.v <= diaphragm(a, side, d) + 0.01)
    return m | heart_mask(a, g)


def base_layers(a: Anatomy, g: Grid, rng: np.random.Generator) -> Layers:
    """Every normal structure of the chest as density layers."""
    S = g.size
    u, v = g.u, g.v
    du = u - a.cx
    half = _body_half_width(a, v)
    body = np.sqrt(np.clip(1 - (du / half) ** 2, 0, None))
    tissue = 0.85 * body
    if rng.random() < 0.3:  # arms beside the chest in some films
        arm = (np.abs(du) > half + 0.01) * (v > a.apex[0] + 0.02)
        tissue = tissue + 0.5 * arm * _gauss(np.abs(du) - half - 0.06, 0.05)
    below = np.zeros((S, S), bool)
    for side in (0, 1):
        d = SIGN[side] * du
        below |= (d >= -1e-6) & (v > diaphragm(a, side, np.abs(d)))
    tissue += 0.32 * below * body
    central = gaussian_filter((central_mask(a, g) & ~below).astype(np.float32), 0.6 * S / 224)
    central *= np.clip((v - a.apex[0] + 0.1) / 0.12, 0, 1)  # fades into the neck
    tissue += 0.42 * central
    # lung air (thickest in the mid and lower zones), trachea and main bronchi, gastric bubble
    hemi = hemithorax_masks(a, g)
    lung_field = (hemi[0] | hemi[1]) & ~heart_mask(a, g)
    lungs = lung_field.astype(np.float32)
    depth = 0.75 + 0.25 * np.clip((v - a.apex[0]) / 0.3, 0, 1)
    lateral_thin = 1 - 0.3 * np.clip((np.abs(du) - 0.28) / 0.12, 0, 1)
    edge_taper = 0.55 + 0.45 * gaussian_filter(lungs, 2.5 * S / 224)  # thin lung at its borders
    air = 0.62 * gaussian_filter(lungs, 0.7 * S / 224) * edge_taper * depth * lateral_thin
    carina = a.hilum_v - 0.05
    air += 0.3 * (np.abs(du) < 0.011) * (v < carina) * (v > 0.02)
    for side in (0, 1):
        t = (v - carina) / 0.07
        line = SIGN[side] * du - 0.6 * (v - carina)
        air += 0.18 * (np.abs(line) < 0.007) * (t > 0) * (t < 1)
    # bowel gas: soft dark mottling under the diaphragm
    gas = gaussian_filter(rng.normal(size=(S, S)).astype(np.float32), 4.0 * S / 224)
    gas = gaussian_filter(np.clip(gas / (gas.std() + 1e-6) - 1.0, 0, None), 1.5 * S / 224)
    air += 0.12 * gas * below * np.clip((v - a.dome[1] - 0.05) / 0.08, 0, 1)
    if a.gastric:
        gx, gy = a.cx + 0.17, a.dome[1] + 0.06
        e = ((u - gx) / 0.055) ** 2 + ((v - gy) / 0.035) ** 2
        air += 0.45 * ((e < 1) & (v < gy + 0.01))
    if rng.random() < 0.6:  # breast / pectoral soft tissue over the lower lateral lungs
        amp = rng.uniform(0.08, 0.2)
        for side in (0, 1):
            bx, by = a.cx + SIGN[side] * 0.25, a.cp[side] - 0.1
            tissue += amp * _gauss(np.sqrt(((u - bx) / 1.3) ** 2 + (v - by) ** 2), 0.09)
    soft_lung = gaussian_filter(lungs, 2.0 * S / 224)
    bone = (_ribs(a, g, rng) + _clavicles_spine(a, g, rng)) * (0.55 + 0.45 * soft_lung) * (1 - 0.5 * below)
    vessels = _vessels(a, g, rng) * lungs
    z = np.zeros((S, S), np.float32)
    return Layers(
        tissue=(tissue + bone).astype(np.float32),
        air=air.astype(np.float32),
        vessels=vessels.astype(np.float32),
        add=z.copy(),
        aeration_loss=z.copy(),
        vessel_keep=np.ones((S, S), np.float32),
    )


def density(layers: Layers) -> np.ndarray:
    keep_air = 1.0 - np.clip(layers.aeration_loss, 0, 1)
    return (
        layers.tissue
        - layers.air * keep_air
        + layers.vessels * layers.vessel_keep * (0.3 + 0.7 * keep_air)
        + layers.add
    )


def film(dens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Attenuation -> brightness with per-image exposure, contrast, gamma, blur and noise."""
    S = dens.shape[0]
    px = S / 224.0
    k = rng.uniform(0.85, 1.15)
    img = 1.0 - np.exp(-k * np.clip(dens, 0, None))
    img = gaussian_filter(img, rng.uniform(0.5, 0.9) * px)
    lo = np.percentile(img, 1) - rng.uniform(0.0, 0.05)
    hi = np.percentile(img, 99.5) + rng.uniform(0.04, 0.1)
    img = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    img = img ** rng.uniform(0.85, 1.3)
    mottle = gaussian_filter(rng.normal(size=(S, S)), 3 * px) * 6 * px
    img = img + rng.uniform(0.008, 0.02) * rng.normal(size=(S, S)) + 0.01 * mottle
    img = img * rng.uniform(0.88, 1.0) + rng.uniform(0.0, 0.05)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
