"""Fundus scene of the 2D benchmark: a colour photograph of the retina: circular field on
black, orange-red background with vignetting and choroidal texture, optic disc with cup on
the nasal side, darker macula with foveal reflex, branching arteries and veins leaving the
disc in arcades, dark-red haemorrhages (the candidates) and small yellow exudates.
Qualifiers: size, vertical (upper / lower retina), proximity (closest to the fovea)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from .mm_common import Candidate, Scene, blob, coords, smooth_noise, to_uint8


def _vessels(rng: np.random.Generator, size: int, disc, macula, R: float) -> tuple[np.ndarray, np.ndarray]:
    """(artery, vein) opacity maps: random walks from the disc, arching around the macula."""
    ss = 3  # supersampling
    maps = []
    for kind in ("artery", "vein"):
        im = Image.new("L", (size * ss, size * ss), 0)
        dr = ImageDraw.Draw(im)
        toward_mac = np.arctan2(macula[1] - disc[1], macula[0] - disc[0])
        stack = []
        for side in (-1, 1):  # temporal arcades: leave the disc up / down, curve around the macula
            stack.append((disc[0], disc[1], toward_mac + side * rng.uniform(1.15, 1.35), 4.2 if kind == "vein" else 3.2,
                          -side * rng.uniform(0.028, 0.036), 0, int(rng.integers(55, 75))))
        for a in (-0.6, 0.0, 0.6):  # nasal vessels: shorter, radiating
            stack.append((disc[0], disc[1], toward_mac + np.pi + a + rng.normal(0, 0.1), 2.6 if kind == "vein" else 2.0,
                          0.0, 1, int(rng.integers(22, 36))))
        while stack:
            px, py, ang, wid, bend, depth, steps = stack.pop()
            pts = [(px, py)]
            for step in range(steps):
                ang += bend + rng.normal(0, 0.04)
                px, py = px + 2.5 * np.cos(ang) * size / 224, py + 2.5 * np.sin(ang) * size / 224
                pts.append((px, py))
                if np.hypot(px - size / 2, py - size / 2) > R:
                    break
                if depth < 2 and step > 8 and rng.random() < 0.05:
                    side = rng.choice([-1, 1])
                    stack.append((px, py, ang + side * rng.uniform(0.5, 0.9), wid * 0.65, bend * 0.3, depth + 1,
                                  int(rng.integers(15, 35))))
                    wid *= 0.88
            dr.line([(p[0] * ss, p[1] * ss) for p in pts], fill=255, width=max(1, int(round(wid * ss * size / 224))), joint="curve")
        maps.append(np.asarray(im.resize((size, size), Image.BILINEAR), np.float32) / 255)
    return maps[0], maps[1]


def make(rng: np.random.Generator, size: int) -> Scene:
    x, y = coords(size)
    shape = (size, size)
    px = (np.arange(size) + 0.5)[None, :]
    py = (np.arange(size) + 0.5)[:, None]
    R = 0.46 * size
    rho = np.hypot(px - size / 2, py - size / 2) / R
    fov = rho <= 1.0
    eye = str(rng.choice(["right", "left"]))
    sgn = 1.0 if eye == "right" else -1.0  # the disc is on the nasal side: image right for a right eye
    disc = (size / 2 + sgn * R * rng.uniform(0.34, 0.42), size / 2 + R * rng.normal(0, 0.04))
    macula = (size / 2 - sgn * R * rng.uniform(0.2, 0.3), size / 2 + R * rng.normal(0, 0.04))
    rd = R * rng.uniform(0.13, 0.16)
    base = np.array([0.86, 0.38, 0.15]) * rng.uniform(0.9, 1.05, 3)
    tex = smooth_noise(rng, shape, 12)
    shade = (1 - 0.38 * rho**2.5) * (1 + 0.05 * tex)
    img = base[None, None, :] * shade[..., None]
    dm = np.hypot(px - macula[0], py - macula[1]) / R
    img *= (1 - 0.35 * np.exp(-(dm / 0.16) ** 2))[..., None]
    dd = np.hypot(px - disc[0], py - disc[1]) / rd
    disc_a = np.clip((1.1 - dd) / 0.25, 0, 1) * (0.85 + 0.15 * np.clip(1 - dd, 0, 1))
    img = img * (1 - disc_a[..., None]) + np.array([0.97, 0.74, 0.46])[None, None, :] * disc_a[..., None]
    cup = np.clip((0.5 - dd) / 0.2, 0, 1)
    img = img * (1 - cup[..., None]) + np.array([1.0, 0.93, 0.78])[None, None, :] * cup[..., None]
    art, vein = _vessels(rng, size, disc, macula, R)
    for m, col in ((vein, (0.42, 0.07, 0.05)), (art, (0.6, 0.13, 0.07))):
        img = img * (1 - m[..., None]) + np.array(col)[None, None, :] * m[..., None]
    # haemorrhages: sizes 1 : 1.35 : 1.8 (+ one more for 4), away from disc and fovea
    n = int(rng.integers(2, 5))
    radii = R * float(rng.uniform(0.04, 0.055)) * np.array([1.0, 1.35, 1.8, 2.4][:n])
    rng.shuffle(radii)
    wob = smooth_noise(rng, shape, 16)
    cands, placed = [], []
    for r in radii:
        for _ in range(300):
            cx, cy = size / 2 + R * rng.uniform(-0.8, 0.8), size / 2 + R * rng.uniform(-0.8, 0.8)
            if np.hypot(cx - size / 2, cy - size / 2) + 1.3 * r > 0.92 * R or np.hypot(cx - disc[0], cy - disc[1]) < rd + 1.5 * r:
                continue
            if abs(cy - size / 2) < 0.08 * R:  # keep upper / lower clearly apart
                continue
            if all(np.hypot(cx - qx, cy - qy) > 1.3 * (r + qr) + 4 for qx, qy, qr in placed):
                break
        else:
            return make(rng, size)
        placed.append((cx, cy, r))
        m = blob(px, py, cx, cy, r * rng.uniform(1.0, 1.3), r * rng.uniform(0.75, 1.0), float(rng.uniform(0, np.pi)), wob, 0.3) <= 1.0
        a = gaussian_filter(m.astype(np.float32), 0.8)
        img = img * (1 - 0.92 * a[..., None]) + 0.92 * a[..., None] * np.array([0.4, 0.05, 0.04])[None, None, :]
        cands.append(m)
    for _ in range(int(rng.integers(3, 9))):  # hard exudates: small yellow dots (clutter)
        ex, ey = size / 2 + R * rng.uniform(-0.7, 0.7), size / 2 + R * rng.uniform(-0.7, 0.7)
        if any(np.hypot(ex - qx, ey - qy) < qr + 6 for qx, qy, qr in placed):
            continue
        a = gaussian_filter((np.hypot(px - ex, py - ey) < R * rng.uniform(0.012, 0.022)).astype(np.float32), 0.6)
        img = img * (1 - a[..., None]) + a[..., None] * np.array([0.95, 0.82, 0.38])[None, None, :]
    img = gaussian_filter(img, (0.5, 0.5, 0)) + rng.normal(0, 0.012, img.shape)
    img = np.where(fov[..., None], img, 0.0)
    out = to_uint8(img)
    lum = out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255
    cand = [Candidate(m, intensity=float(lum[m].mean())) for m in cands]
    return Scene(out, "fundus", "eye", "retinal hemorrhage", "dark red blot", cand, ["size", "vertical", "proximity"],
                 {"eye": eye, "disc": (float(disc[0]), float(disc[1])), "fovea": (float(macula[0]), float(macula[1]))})
