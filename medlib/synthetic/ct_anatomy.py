"""Anatomy of a synthetic contrast-enhanced abdominal CT (portal-venous phase).

Every structure is an implicit shape in normalised patient coordinates, so one case can be
sampled as a whole volume (:mod:`.ct`) or as a single axial slice at any resolution
(:mod:`.mm_scenes`):

* ``u`` in [-1, 1] across the patient, **positive toward the patient's left** (the array's x
  index runs right -> left as in DICOM/LPS, so an axial slice drawn with x to the right is in
  radiological convention: the patient's right on the image left);
* ``v`` in [-1, 1] front to back, **positive toward posterior** (anterior at the top);
* ``w`` in [0, 1] along the body axis, **positive toward superior** (0 = pelvic brim,
  1 = lower thorax).

:func:`tissue_map` paints a tissue class per voxel in anatomical priority order and returns
owner maps of the referable structures; :func:`render_hu` turns tissue classes into
Hounsfield units with texture, partial-volume blur and scanner noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import gaussian_filter

#: Field of view in mm: (cranio-caudal, anterior-posterior, left-right).
FOV_MM = (240.0, 384.0, 384.0)

_TISSUES = [
    "air", "lung", "fat_sc", "fat", "muscle", "bowel", "gas", "bone", "marrow", "disc", "csf", "aorta",
    "ivc", "heart", "liver", "gallbladder", "spleen", "cortex", "medulla", "sinus", "stomach", "fluid",
    "cyst", "tumour", "necrosis", "cartilage", "metastasis", "skin", "rib",
]
T = {n: i for i, n in enumerate(_TISSUES)}
HU = np.zeros(len(T), np.float32)
for _n, _h in {
    "air": -1000, "lung": -860, "fat_sc": -105, "fat": -95, "muscle": 52, "bowel": 42, "gas": -950,
    "bone": 700, "marrow": 220, "disc": 85, "csf": 8, "aorta": 185, "ivc": 140, "heart": 135,
    "liver": 105, "gallbladder": 10, "spleen": 118, "cortex": 190, "medulla": 125, "sinus": -55,
    "stomach": 60, "fluid": 18, "cyst": 6, "tumour": 215, "necrosis": 35, "cartilage": 150,
    "metastasis": 50, "skin": 40, "rib": 480,
}.items():
    HU[T[_n]] = _h
#: standard deviation (HU) of the smooth texture of each tissue
TEXTURE = np.full(len(T), 4.0, np.float32)
for _n, _s in {"liver": 7, "spleen": 6, "tumour": 22, "bowel": 18, "fluid": 10, "fat": 10, "muscle": 9,
               "marrow": 30, "metastasis": 10, "lung": 25}.items():
    TEXTURE[T[_n]] = _s

#: Referable structures (ids in the M3D-RefSeg mask files). Organ masks include the lesions
#: inside them; lesion masks are the lesions only.
ORGANS = {1: "liver", 2: "spleen", 3: "right kidney", 4: "left kidney"}
LESIONS = {5: "cyst", 6: "tumour"}


@dataclass(frozen=True)
class Lesion:
    kind: str  # "cyst", "tumour" (hyper-enhancing, necrotic centre) or "metastasis" (hypodense)
    organ: int  # owner organ id (ORGANS)
    centre: tuple[float, float, float]  # (u, v, w)
    radius: tuple[float, float, float]  # (ru, rv, rw), normalised units


@dataclass(frozen=True)
class Case:
    """Shape parameters of one patient."""

    body_a: float  # lateral semi-axis of the body outline
    body_b: tuple[float, float]  # anterior / posterior semi-axes
    fat: float  # subcutaneous fat thickness (fraction of the radius)
    wall: float  # abdominal-wall muscle thickness
    dome: float  # diaphragm level at the periphery
    liver: tuple[float, float, float]  # inferior-edge level at the right flank, its rise, left-lobe reach
    spleen: tuple  # centre, radii, rotation
    kidneys: tuple  # (right centre, left centre), radii
    disc_phase: float  # mm offset of the intervertebral discs
    bowel: np.ndarray  # (k, 5): plane waves of the small-bowel pattern (wave vector, phase, amplitude)
    colon: tuple  # ((centre, radii, content), ...): colon segments
    waves: np.ndarray  # (k, 5): smooth random field components (freq u, v, w, phase, amplitude)
    lesions: tuple[Lesion, ...] = field(default=())


def sample_case(rng: np.random.Generator) -> Case:
    """Draw one adult abdomen (no lesions; see :func:`with_lesions`)."""
    s = rng.uniform(0.93, 1.04)
    kw = 0.45 + rng.normal(0, 0.02)
    kid_r = (0.12 * rng.uniform(0.9, 1.1), 0.1 * rng.uniform(0.9, 1.1), 0.2 * rng.uniform(0.9, 1.1))
    kidneys = (
        (-0.3 + rng.normal(0, 0.015), 0.25 + rng.normal(0, 0.015), kw - rng.uniform(0.02, 0.05)),
        (0.3 + rng.normal(0, 0.015), 0.25 + rng.normal(0, 0.015), kw + rng.uniform(0.0, 0.03)),
    )
    liver = (rng.uniform(0.4, 0.47), rng.uniform(0.34, 0.42), rng.uniform(0.22, 0.4))
    nb = 12
    ang = rng.uniform(0, 2 * math.pi, nb)
    kk = rng.uniform(26, 36, nb)
    kz = rng.normal(0, 10, nb)
    bowel = np.column_stack([kk * np.cos(ang), kk * np.sin(ang), kz, rng.uniform(0, 2 * math.pi, nb), np.ones(nb)])
    colon = []
    for side in (-1, 1):  # ascending / descending colon in the flanks, transverse colon in front
        colon.append(((side * 0.56, -0.02, 0.26), (0.1, 0.1, 0.28), "gas" if rng.random() < 0.7 else "bowel"))
    colon.append(((0.05, -0.42, 0.52 + rng.normal(0, 0.02)), (0.45, 0.08, 0.06), "gas" if rng.random() < 0.6 else "bowel"))
    k = 7
    waves = np.column_stack(
        [rng.normal(0, 2.2, (k, 3)), rng.uniform(0, 2 * math.pi, k), rng.uniform(0.5, 1.0, k) / math.sqrt(k)]
    )
    return Case(
        body_a=0.8 * s * rng.uniform(0.95, 1.06),
        body_b=(0.6 * s * rng.uniform(0.9, 1.05), 0.56 * s),
        fat=rng.uniform(0.05, 0.13),
        wall=rng.uniform(0.065, 0.085),
        dome=rng.uniform(0.77, 0.81),
        liver=liver,
        spleen=((0.56 + rng.normal(0, 0.02), 0.22 + rng.normal(0, 0.02), 0.74 + rng.normal(0, 0.02)),
                (0.14 * rng.uniform(0.85, 1.2), 0.24 * rng.uniform(0.85, 1.15), 0.12 * rng.uniform(0.85, 1.15)),
                rng.uniform(-0.75, -0.45)),
        kidneys=(kidneys, kid_r),
        disc_phase=rng.uniform(0, 32),
        bowel=bowel,
        colon=tuple(colon),
        waves=waves,
    )


def with_lesions(case: Case, lesions) -> Case:
    return replace(case, lesions=tuple(lesions))


def organ_centre(case: Case, organ: int) -> tuple[float, float, float]:
    """A point well inside ``organ`` (where lesions are placed)."""
    if organ == 1:
        base, rise, _ = case.liver
        return (-0.42, -0.02, min(0.86, base + 0.2 + 0.5 * rise * 0.3))
    if organ == 2:
        return case.spleen[0]
    return case.kidneys[0][organ - 3]


# ---------------------------------------------------------------- grid


class Grid:
    """Voxel-centre coordinates of a volume ``[z, y, x]`` (``w`` a vector) or of an axial
    slice ``[y, x]`` (``w`` a number), with bounding-box views so each structure is
    evaluated only where it can be."""

    def __init__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray | float):
        self.u, self.v = np.asarray(u, np.float32), np.asarray(v, np.float32)
        self.is3d = np.ndim(w) == 1
        self.w = np.asarray(w, np.float32)
        self.shape = ((len(self.w),) if self.is3d else ()) + (len(self.v), len(self.u))

    @staticmethod
    def volume(shape: tuple[int, int, int]) -> Grid:
        Z, Y, X = shape
        return Grid((np.arange(X) + 0.5) / X * 2 - 1, (np.arange(Y) + 0.5) / Y * 2 - 1, (np.arange(Z) + 0.5) / Z)

    @staticmethod
    def slice(size: int, w: float) -> Grid:
        c = (np.arange(size) + 0.5) / size * 2 - 1
        return Grid(c, c, float(w))

    def full(self):
        """(u, v, w) broadcastable to :attr:`shape`."""
        if self.is3d:
            return self.u[None, None, :], self.v[None, :, None], self.w[:, None, None]
        return self.u[None, :], self.v[:, None], self.w

    def box(self, lo, hi):
        """``(index, u, v, w)`` for the part of the grid with lo <= (u, v, w) <= hi, or None."""
        iu = np.nonzero((self.u >= lo[0]) & (self.u <= hi[0]))[0]
        iv = np.nonzero((self.v >= lo[1]) & (self.v <= hi[1]))[0]
        if iu.size == 0 or iv.size == 0:
            return None
        su, sv = slice(iu[0], iu[-1] + 1), slice(iv[0], iv[-1] + 1)
        if self.is3d:
            iw = np.nonzero((self.w >= lo[2]) & (self.w <= hi[2]))[0]
            if iw.size == 0:
                return None
            sw = slice(iw[0], iw[-1] + 1)
            return (sw, sv, su), self.u[su][None, None, :], self.v[sv][None, :, None], self.w[sw][:, None, None]
        if not lo[2] <= float(self.w) <= hi[2]:
            return None
        return (sv, su), self.u[su][None, :], self.v[sv][:, None], self.w


def spacing_mm(shape: tuple[int, int, int]) -> tuple[float, float, float]:
    """Voxel spacing (z, y, x) in mm that keeps the field of view :data:`FOV_MM`."""
    return tuple(float(f / n) for f, n in zip(FOV_MM, shape))


# ---------------------------------------------------------------- implicit shapes


def smooth_field(case: Case, u, v, w, scale: float = 1.0):
    """A smooth random field in about [-1, 1] (a sum of low-frequency plane waves)."""
    out = 0.0
    for fu, fv, fw, ph, amp in case.waves:
        out = out + np.float32(amp) * np.sin(np.float32(scale) * (fu * u + fv * v + fw * w * 2.5) + np.float32(ph))
    return out


def ellipsoid(u, v, w, c, r):
    """Normalised ellipsoid radius (<= 1 inside)."""
    return ((u - c[0]) / r[0]) ** 2 + ((v - c[1]) / r[1]) ** 2 + ((w - c[2]) / r[2]) ** 2


def _bounds(c, r, pad=1.15):
    return [c[i] - pad * r[i] for i in range(3)], [c[i] + pad * r[i] for i in range(3)]


def body_shape(case: Case, u, v, w):
    """(normalised radius: 1 on the skin; fat thickness; wall-muscle thickness) per voxel."""
    b = np.where(v > 0.03, case.body_b[1], case.body_b[0])
    a = case.body_a * (1.0 + 0.05 * (w - 0.5))
    vv = (v - 0.03) / b
    rad = np.sqrt((u / a) ** 2 + np.where(vv > 0, np.abs(vv) ** 3, vv**2))  # flatter back
    phi = np.arctan2(v - 0.03, u)  # sin(phi) > 0 posterior
    post = np.clip(np.sin(phi), 0, None)
    fat = case.fat * (1.25 - 0.75 * post)
    lateral = np.abs(np.cos(phi))
    front = np.clip(-np.sin(phi), 0, None)
    wall = case.wall * (0.7 + 0.7 * lateral + 0.5 * front * (np.abs(u) > 0.025)) * (1 - 0.6 * post)
    return rad, fat, wall


def dome_level(case: Case, u, v):
    """Diaphragm surface height: high centrally, low in the posterolateral recesses."""
    d = case.dome + 0.14 * np.clip(1.0 - (u / 0.78) ** 2 - ((v + 0.1) / 0.75) ** 2, 0.0, None)
    return d + 0.02 * (u < 0)  # right hemidiaphragm a little higher


def liver_inferior(case: Case, u, v=-0.1):
    """Level of the liver's inferior edge: lowest at the right flank, rising to the left (and
    obliquely, so the edge runs from front-left to back-right in an axial slice)."""
    base, rise, _ = case.liver
    ue = u - 0.4 * (v + 0.1) + 0.9 * (v + 0.1) ** 2
    return base + rise * np.clip((ue + 0.75) / 1.05, 0.0, 1.0) ** 1.3 + 0.08 * (v + 0.1) ** 2


def liver_region(case: Case, u, v, w):
    """Right lobe under the right hemidiaphragm against the body wall, a thin left lobe in
    front of the stomach; below the dome, above an inferior edge that rises to the left."""
    base, rise, reach = case.liver
    f = smooth_field(case, u, v, w)
    right = ellipsoid(u, v, w, (-0.3, -0.06, 0.8), (0.62, 0.5, 0.5)) + 0.1 * f <= 1.0
    left = ellipsoid(u, v, w, (0.0, -0.3, 0.84), (0.2 + reach, 0.19, 0.22)) + 0.12 * f <= 1.0
    spine = ((u / 0.22) ** 2 + ((v - 0.32) / 0.2) ** 2) <= 1.0
    return (
        (right | left)
        & ~spine
        & (w <= dome_level(case, u, v) - 0.012 + 0.01 * f)
        & (w >= liver_inferior(case, u, v) + 0.04 * f + 0.03 * smooth_field(case, u, v, w, 2.5))
    )


def kidney_parts(case: Case, side_index: int, u, v, w):
    """(outline, medulla, sinus) of the right (0) or left (1) kidney."""
    centres, r = case.kidneys
    c, side = centres[side_index], (-1, 1)[side_index]
    uu = u + side * 0.35 * (w - c[2])  # upper pole tilted medially
    vv = v - 0.2 * (w - c[2])  # ... and posteriorly
    e = ellipsoid(uu, vv, w, c, r)
    notch = ellipsoid(uu, vv, w, (c[0] - side * r[0], c[1] - 0.35 * r[1], c[2]), (0.55 * r[0], 0.45 * r[1], 0.35 * r[2]))
    kid = (e <= 1.0) & (notch > 1.0)
    sinus = ellipsoid(uu, vv, w, (c[0] - side * 0.45 * r[0], c[1] - 0.1 * r[1], c[2]), (0.4 * r[0], 0.42 * r[1], 0.55 * r[2])) <= 1.0
    ang = np.arctan2(vv - c[1], (uu - c[0]) * side)
    medulla = (e > 0.18) & (e < 0.55) & (np.cos(6 * ang + 3 * (w - c[2]) / r[2]) > -0.2)
    return kid, medulla & kid & ~sinus, sinus & kid


def spleen_region(case: Case, u, v, w):
    c, r, rot = case.spleen
    cs, sn = math.cos(rot), math.sin(rot)
    du, dv = u - c[0], v - c[1]
    e = ellipsoid(c[0] + cs * du - sn * dv, c[1] + sn * du + cs * dv, w, c, r) + 0.1 * smooth_field(case, u, v, w, 1.3)
    return (e <= 1.0) & (w <= dome_level(case, u, v) - 0.01)


def vertebra_parts(case: Case, u, v, w):
    """(cortical bone, marrow, disc, canal) of the lumbar / lower thoracic spine."""
    disc_level = ((w * FOV_MM[0] + case.disc_phase) % 32.0) < 7.0
    body_e = (u / 0.12) ** 2 + ((v - 0.27) / 0.1) ** 2
    canal = (u / 0.048) ** 2 + ((v - 0.42) / 0.045) ** 2 <= 1.0
    arch = ((u / 0.085) ** 2 + ((v - 0.43) / 0.08) ** 2 <= 1.0) & ~canal
    spinous = (u / 0.022) ** 2 + ((v - 0.56) / 0.075) ** 2 <= 1.0
    transverse = ((np.abs(u) - 0.12) / 0.07) ** 2 + ((v - 0.39) / 0.022) ** 2 <= 1.0
    body = body_e <= 1.0
    marrow = (body_e <= 0.72) & ~disc_level
    cortex = (body & ~marrow & ~disc_level) | ((arch | spinous | transverse) & ~disc_level)
    return cortex, marrow, body & disc_level, canal


def rib_parts(case: Case, u, v, w, rad, inner):
    """Ribs: oblique arcs in the body wall, descending from the spine toward the front; the
    lower ribs end in costal cartilage."""
    theta = np.arctan2(np.abs(u), v - 0.03) / math.pi  # 0 posterior .. 1 anterior
    in_wall = (rad > inner - 0.01) & (rad < inner + 0.025)
    ribs = np.zeros(np.broadcast_shapes(np.shape(u), np.shape(v), np.shape(w)), bool)
    cart = np.zeros_like(ribs)
    for k in range(7):
        reach = 0.5 + 0.06 * k  # lower ribs are shorter (floating ribs)
        band = (np.abs(w - (0.55 + 0.085 * k - 0.4 * theta)) < 0.014) & in_wall & (theta > 0.17)
        ribs |= band & (theta < reach - 0.07)
        cart |= band & (theta >= reach - 0.07) & (theta < reach) & (k >= 3)
    return ribs, cart


# ---------------------------------------------------------------- painting


def tissue_map(case: Case, grid: Grid):
    """Tissue class per voxel, the organ-owner map (:data:`ORGANS` ids) and the lesion
    instance map (``k + 1`` for ``case.lesions[k]``), all of ``grid.shape``."""
    tis = np.full(grid.shape, T["air"], np.uint8)
    organ = np.zeros(grid.shape, np.uint8)
    lesion = np.zeros(grid.shape, np.uint8)
    u, v, w = grid.full()

    rad, fat, wall = body_shape(case, u, v, w)
    rad = rad + 0.008 * smooth_field(case, u, v, w, 3.0)
    inner, core = 1.0 - fat, 1.0 - fat - wall
    body = rad <= 1.0
    interior = rad <= core
    tis[body] = T["fat_sc"]
    tis[body & (rad > 0.985)] = T["skin"]
    tis[rad <= inner] = T["muscle"]
    tis[interior] = T["fat"]
    dome = dome_level(case, u, v)
    thorax = interior & (w > dome)
    tis[thorax] = T["lung"]

    def region(lo, hi):
        """Bounding-box view: (index, u, v, w, interior view, tissue view, organ view)."""
        b = grid.box(lo, hi)
        if b is None:
            return None
        idx, bu, bv, bw = b
        return idx, bu, bv, bw, interior[idx] if interior.ndim else interior, tis[idx], organ[idx]

    r = region((-0.5, -0.6, 0.85), (0.7, 0.2, 1.0))
    if r:
        idx, bu, bv, bw, inn, t, _ = r
        t[(ellipsoid(bu, bv, bw, (0.1, -0.22, 1.12), (0.38, 0.32, 0.2)) <= 1.0) & (t == T["lung"])] = T["heart"]

    # gut: packed small-bowel loops (a labyrinth pattern: wall + fluid / gas content) in the
    # front of the abdomen below liver and stomach, colon segments, stomach with an air-fluid level
    r = region((-0.8, -0.7, 0.0), (0.8, 0.3, 0.78))
    if r:
        idx, bu, bv, bw, inn, t, _ = r
        pat = 0.0
        for ku, kv, kz, ph, _a in case.bowel:
            pat = pat + np.cos(np.float32(ku) * bu + np.float32(kv) * bv + np.float32(kz) * bw + np.float32(ph))
        pat = pat / math.sqrt(len(case.bowel) / 2)
        f = smooth_field(case, bu, bv, bw, 2.0)
        zone = inn & ((bu / 0.78) ** 2 + ((bv + 0.2 + 0.25 * np.clip(bw - 0.4, 0, None)) / 0.42) ** 2 + 0.15 * f <= 1.0)
        cap = 0.62 + 0.12 * np.clip(bu / 0.3, 0.0, 1.0)  # the splenic flexure reaches higher on the left
        zone &= bw < np.minimum(liver_inferior(case, bu, bv) - 0.02, cap) + 0.03 * f
        zone &= bw < dome_level(case, bu, bv) - 0.03
        loop = zone & (pat > -0.45)
        t[loop] = T["bowel"]
        lumen = loop & (pat > 0.55)
        t[lumen] = T["fluid"]
        t[lumen & (smooth_field(case, bu * 3, bv * 3, bw * 2, 1.5) > 0.55)] = T["gas"]
    for c, rr, content in case.colon:
        r = region(*_bounds(c, rr, 1.3))
        if not r:
            continue
        idx, bu, bv, bw, inn, t, _ = r
        e = ellipsoid(bu, bv, bw, c, rr) + 0.3 * smooth_field(case, bu, bv, bw, 4.0)
        loop = (e <= 1.0) & inn & (bw <= dome_level(case, bu, bv) - 0.02)
        t[loop] = T["bowel"]
        t[loop & (e <= 0.55)] = T[content] if content != "gas" else T["fluid"]
        if content == "gas":
            t[loop & (e <= 0.55) & (bv < c[1] + 0.01)] = T["gas"]
    c, rr = (0.33, -0.02, 0.72), (0.2, 0.16, 0.13)
    r = region(*_bounds(c, rr, 1.3))
    if r:
        idx, bu, bv, bw, inn, t, _ = r
        e = ellipsoid(bu, bv, bw, c, rr) + 0.15 * smooth_field(case, bu, bv, bw, 2.0)
        st = (e <= 1.0) & inn & (bw <= dome_level(case, bu, bv))
        t[st] = T["stomach"]
        t[st & (e <= 0.7)] = T["fluid"]
        t[st & (e <= 0.7) & (bv < -0.08)] = T["gas"]

    # muscles of the back and psoas
    for side in (-1, 1):
        r = region((side * 0.14 - 0.15, 0.3, 0.0), (side * 0.14 + 0.15, 0.7, 1.0))
        if r:
            idx, bu, bv, bw, inn, t, _ = r
            para = ((bu - side * 0.14) / 0.12) ** 2 + ((bv - 0.44) / 0.1) ** 2 + 0 * bw <= 1.0
            t[para & (t != T["air"]) & (t != T["skin"])] = T["muscle"]
        r = region((side * 0.2 - 0.2, 0.05, 0.0), (side * 0.2 + 0.2, 0.45, 0.56))
        if r:
            idx, bu, bv, bw, inn, t, _ = r
            grow = np.clip(0.55 - bw, 0.0, None)
            ps = ((bu - side * (0.13 + 0.2 * grow)) / (0.03 + 0.18 * grow)) ** 2 + ((bv - 0.24) / (0.03 + 0.12 * grow)) ** 2 <= 1.0
            t[ps & inn] = T["muscle"]

    # vessels
    r = region((-0.2, -0.05, 0.1), (0.15, 0.15, 1.0))
    if r:
        idx, bu, bv, bw, inn, t, _ = r
        t[(((bu - 0.06) / 0.045) ** 2 + ((bv - 0.08) / 0.045) ** 2 + 0 * bw <= 1.0) & inn] = T["aorta"]
        t[(((bu + 0.1) / 0.055) ** 2 + ((bv - 0.05) / 0.04) ** 2 + 0 * bw <= 1.0) & inn] = T["ivc"]

    # liver, gallbladder, spleen, kidneys; the organ-owner map follows the painted tissue
    r = region((-1, -1, case.liver[0] - 0.05), (0.5, 0.4, 1.0))
    if r:
        idx, bu, bv, bw, inn, t, o = r
        liv = liver_region(case, bu, bv, bw) & inn
        t[liv] = T["liver"]
        o[liv] = 1
    gc = (-0.22, -0.26, float(liver_inferior(case, -0.22, -0.26)) + 0.05)
    r = region(*_bounds(gc, (0.07, 0.09, 0.1)))
    if r:
        idx, bu, bv, bw, inn, t, o = r
        gb = (ellipsoid(bu, bv, bw, gc, (0.07, 0.09, 0.1)) <= 1.0) & inn
        t[gb] = T["gallbladder"]
        o[gb] = 0
    c, rr, _ = case.spleen
    r = region(*_bounds(c, (0.3, 0.3, rr[2]), 1.2))
    if r:
        idx, bu, bv, bw, inn, t, o = r
        spl = spleen_region(case, bu, bv, bw) & inn & (o == 0)
        t[spl] = T["spleen"]
        o[spl] = 2
    for k in (0, 1):
        c, rr = case.kidneys[0][k], case.kidneys[1]
        r = region(*_bounds(c, (rr[0] + 0.08, rr[1] + 0.05, rr[2]), 1.1))
        if not r:
            continue
        idx, bu, bv, bw, inn, t, o = r
        kid, med, sinus = kidney_parts(case, k, bu, bv, bw)
        kid, med, sinus = kid & inn, med & inn, sinus & inn
        t[kid] = T["cortex"]
        t[med] = T["medulla"]
        t[sinus] = T["sinus"]
        o[kid] = 3 + k

    # lesions live inside their organ
    for k, lz in enumerate(case.lesions):
        r = region(*_bounds(lz.centre, lz.radius, 1.2))
        if not r:
            continue
        idx, bu, bv, bw, inn, t, o = r
        e = ellipsoid(bu, bv, bw, lz.centre, lz.radius) + 0.06 * smooth_field(case, bu, bv, bw, 6.0)
        m = (e <= 1.0) & (o == lz.organ)
        t[m] = T[lz.kind]
        if lz.kind == "tumour":
            t[m & (e <= 0.3)] = T["necrosis"]
        lesion[idx][m] = k + 1

    # skeleton on top
    r = region((-0.25, 0.1, 0.0), (0.25, 0.7, 1.0))
    if r:
        idx, bu, bv, bw, inn, t, o = r
        cortex, marrow, disc, canal = vertebra_parts(case, bu, bv, bw)
        inside = (t != T["air"]) & (t != T["skin"])
        for m, name in ((marrow, "marrow"), (disc, "disc"), (cortex, "bone"), (canal, "csf")):
            t[m & inside] = T[name]
        skel = (cortex | marrow | disc | canal) & inside
        o[skel] = 0
        lesion[idx][skel] = 0
    if not grid.is3d and float(grid.w) < 0.38:
        return tis, organ, lesion
    ribs, cart = rib_parts(case, u, v, w, rad, inner)
    tis[ribs & body] = T["rib"]
    tis[cart & body] = T["cartilage"]
    organ[(ribs | cart) & body] = 0
    lesion[(ribs | cart) & body] = 0
    return tis, organ, lesion


def render_hu(tis: np.ndarray, case: Case, grid: Grid, rng: np.random.Generator, blur_vox=(0.6, 0.5, 0.5),
              noise_hu: float = 14.0) -> np.ndarray:
    """Hounsfield units of a tissue map: class means + smooth per-tissue texture, partial-volume
    blur (``blur_vox`` sigmas, one per axis) and correlated scanner noise of std ``noise_hu``."""
    hu = HU[tis]
    u, v, w = grid.full()
    tex = np.broadcast_to(smooth_field(case, u * 4.0, v * 4.0, w * 3.0, 2.0), tis.shape)
    hu = hu + TEXTURE[tis] * tex.astype(np.float32)
    hu = gaussian_filter(hu, tuple(blur_vox[-tis.ndim:]))
    noise = gaussian_filter(rng.standard_normal(tis.shape, dtype=np.float32), 0.6)
    return hu + noise * np.float32(noise_hu / max(float(noise.std()), 1e-6))
