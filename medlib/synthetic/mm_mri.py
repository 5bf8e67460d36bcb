"""MRI scene of the 2D benchmark: an axial FLAIR-like brain slice (radiological convention:
the patient's left hemisphere on the image right) with scalp, skull, CSF, gyri and sulci,
grey and white matter, ventricles and deep grey nuclei, several bright lesions with oedema,
bias field and Rician noise. Qualifiers: size, side, brightness."""

from __future__ import annotations

import numpy as np

from .mm_common import Candidate, Scene, blob, coords, smooth_noise, soften, to_uint8


def make(rng: np.random.Generator, size: int) -> Scene:
    x, y = coords(size)
    shape = (size, size)
    cy = float(rng.uniform(-0.02, 0.03))
    a, b = float(rng.uniform(0.64, 0.72)), float(rng.uniform(0.8, 0.87))
    rho = np.sqrt(np.clip(blob(x, y, 0.0, cy, a, b, float(rng.uniform(-0.06, 0.06)), smooth_noise(rng, shape, 5), 0.02), 0, None))
    img = np.zeros(shape, np.float32)
    img[rho <= 1.0] = 0.42  # scalp
    img[rho <= 0.94] = 0.04  # skull (cortical bone: no signal)
    img[rho <= 0.88] = 0.1  # CSF over the convexity (dark on FLAIR)
    brain = rho <= 0.855
    gyri = smooth_noise(rng, shape, 26)
    wm = rho <= 0.7 + 0.07 * gyri
    img[brain] = 0.56
    img[wm] = 0.43
    sulci = brain & (np.abs(smooth_noise(rng, shape, 22)) < 0.09) & (rho > 0.62)
    img[sulci] = 0.12
    fissure = (np.abs(x - 0.01 * smooth_noise(rng, shape, 4)) < 0.012) & ((y < cy - 0.3) | (y > cy + 0.38)) & brain
    img[fissure] = 0.1
    for s in (-1, 1):  # deep grey nuclei, lateral ventricles (frontal horns diverge forward)
        img[blob(x, y, s * 0.2, cy + 0.04, 0.08, 0.13, s * 0.2) <= 1.0] = 0.5
        img[blob(x, y, s * 0.085, cy - 0.02, 0.04, 0.2, -s * 0.22, gyri, 0.1) <= 1.0] = 0.07
        img[blob(x, y, s * 0.14, cy + 0.3, 0.035, 0.09, s * 0.5) <= 1.0] = 0.07
    img[blob(x, y, 0.0, cy + 0.08, 0.012, 0.05) <= 1.0] = 0.07  # third ventricle
    # lesions in the white matter: sizes 1 : 1.35 : 1.8, distinct brightness, both hemispheres
    n = int(rng.integers(2, 4))
    radii = float(rng.uniform(0.045, 0.065)) * np.array([1.0, 1.35, 1.8][:n])
    rng.shuffle(radii)
    levels = np.array([0.76, 0.88, 1.0][:n])
    rng.shuffle(levels)
    sides = np.array([1, -1] + [int(rng.choice([-1, 1]))] * (n - 2))
    rng.shuffle(sides)
    wob = smooth_noise(rng, shape, 12)
    cands, placed = [], []
    for r, lev, s in zip(radii, levels, sides):
        for _ in range(200):
            cx, cyy = s * rng.uniform(0.2, 0.5), cy + rng.uniform(-0.5, 0.55)
            if np.hypot(cx / a, (cyy - cy) / b) + 1.4 * r > 0.66:
                continue
            if abs(cx) < 0.16 and abs(cyy - cy) < 0.3:  # ventricles, nuclei
                continue
            if all(np.hypot(cx - px, cyy - py) > 1.6 * (r + pr) for px, py, pr in placed):
                break
        else:
            return make(rng, size)
        placed.append((cx, cyy, r))
        ang = float(rng.uniform(0, np.pi))
        img[(blob(x, y, cx, cyy, 1.7 * r, 1.4 * r, ang, wob, 0.3) <= 1.0) & brain] = 0.68  # oedema
        core = (blob(x, y, cx, cyy, r, 0.8 * r, ang, wob, 0.25) <= 1.0) & brain
        img[core] = lev
        cands.append((core, "left" if cx > 0 else "right"))
    img = soften(img, 0.7) * (1.0 + 0.12 * smooth_noise(rng, shape, 3))
    sig = 0.025
    img = np.sqrt((img + sig * rng.standard_normal(shape)) ** 2 + (sig * rng.standard_normal(shape)) ** 2)
    out = to_uint8(img / 1.05)
    cand = [Candidate(m, side=sd, intensity=float(out[m].mean() / 255)) for m, sd in cands]
    return Scene(out, "MRI", "brain", "brain lesion", "bright lesion", cand, ["size", "side", "brightness"],
                 {"sequence": "FLAIR"})
