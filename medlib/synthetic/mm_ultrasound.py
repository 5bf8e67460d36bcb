"""Ultrasound scene of the 2D benchmark: a curvilinear-probe breast B-mode image (skin at the
top, depth increasing downward): skin line, subcutaneous fat with Cooper's ligaments,
fibroglandular tissue, retromammary fat, pectoral muscle and pleural line; hypoechoic
nodules with posterior enhancement or shadowing; speckle, depth attenuation and log
compression. Qualifiers: size, depth, brightness (darker)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .mm_common import Candidate, Scene, blob, coords, smooth_noise, to_uint8


def make(rng: np.random.Generator, size: int) -> Scene:
    x, y = coords(size)
    shape = (size, size)
    apex = -1.55
    r = np.sqrt(x**2 + (y - apex) ** 2)
    th = np.arctan2(x, y - apex)
    r0, r1, tmax = 0.62, 2.5, float(rng.uniform(0.5, 0.6))
    fan = (r >= r0) & (r <= r1) & (np.abs(th) <= tmax)
    d = np.clip((r - r0) / (r1 - r0), 0, 1)  # depth 0 (skin) .. 1
    wav = smooth_noise(rng, shape, 4)
    echo = np.full(shape, 0.62, np.float32)
    b1, b2, b3, b4 = 0.2 + 0.04 * wav, 0.6 + 0.05 * wav, 0.68 + 0.04 * wav, 0.86 + 0.02 * wav
    het = smooth_noise(rng, shape, 18)
    echo = np.where(d < b1, 0.32 + 0.05 * het, 0.62 + 0.12 * het)  # fat / fibroglandular
    cooper = (np.abs(smooth_noise(rng, shape, 10)) < 0.05) & (d < b1 + 0.05)
    echo = np.where(cooper, 0.85, echo)
    echo = np.where((d >= b2) & (d < b3), 0.3, echo)  # retromammary fat
    musc = (d >= b3) & (d < b4)
    echo = np.where(musc, 0.42 + 0.2 * (np.sin(90 * d + 3 * wav) > 0.7), echo)
    echo = np.where(d >= b4, 0.12, echo)
    echo = np.where(np.abs(d - b4) < 0.008, 1.0, echo)  # pleural line
    echo = np.where(d < 0.025, 0.95, echo)  # skin
    # nodules in the fibroglandular layer: sizes 1 : 1.35 : 1.8, distinct echo levels and depths
    n = int(rng.integers(2, 4))
    radii = float(rng.uniform(0.06, 0.085)) * np.array([1.0, 1.35, 1.8][:n])
    rng.shuffle(radii)
    levels = np.array([0.04, 0.14, 0.26][:n])
    rng.shuffle(levels)
    wob = smooth_noise(rng, shape, 14)
    cands, placed = [], []
    for rad, lev in zip(radii, levels):
        for _ in range(300):
            cx, cy = rng.uniform(-0.75, 0.75) * np.sin(tmax) * 1.2, rng.uniform(-0.55, 0.45)
            rr = np.hypot(cx, cy - apex)
            dd = (rr - r0) / (r1 - r0)
            if abs(np.arctan2(cx, cy - apex)) > tmax - 1.3 * rad / rr or dd - rad / (r1 - r0) < 0.2 or dd + rad / (r1 - r0) > 0.62:
                continue
            if all(np.hypot(cx - px, cy - py) > 1.25 * (rad + pr) + 0.03 for px, py, pr in placed):
                break
        else:
            return make(rng, size)
        placed.append((cx, cy, rad))
        tall = bool(rng.random() < 0.4)  # taller-than-wide, irregular: suspicious
        rx, ry = (0.8 * rad, 1.05 * rad) if tall else (1.25 * rad, 0.75 * rad)
        m = (blob(x, y, cx, cy, rx, ry, float(rng.uniform(-0.4, 0.4)), wob, 0.35 if tall else 0.12) <= 1.0) & fan
        echo = np.where(m, lev + 0.06 * het, echo)
        behind = (np.abs(th - np.arctan2(cx, cy - apex)) < rx / np.hypot(cx, cy - apex)) & (r > np.hypot(cx, cy - apex) + ry)
        echo = np.where(behind & (d < b4), echo * (0.55 if tall else 1.35), echo)
        cands.append(m)
    # speckle: anisotropic (laterally elongated) complex Gaussian envelope
    re, im = (gaussian_filter(rng.standard_normal(shape), (0.9, 2.0)) for _ in range(2))
    env = np.hypot(re, im)
    env /= env.mean()
    echo = gaussian_filter(echo, 0.8)
    inten = echo * env * np.exp(-0.9 * d) * (1 + 0.6 * d)  # attenuation with partial time-gain compensation
    img = np.log1p(12 * inten) / np.log1p(12 * 2.2)  # log compression
    img = gaussian_filter(img, 0.5)
    img = np.where(fan, img, 0.0)
    out = to_uint8(img)
    cand = [Candidate(m, intensity=float(out[m].mean() / 255)) for m in cands]
    return Scene(out, "ultrasound", "neoplasm", "breast lesion", "dark nodule", cand, ["size", "depth", "brightness"],
                 {"probe": "curvilinear", "organ": "breast"})
