"""Colin27 + AAL: a real MRI with real named structure masks, for segmenter checks.

The Debian package ``mricron-data`` installs ``ch2.nii.gz`` (Colin27: one person's T1 MRI,
181x217x181 at 1 mm) and ``aal.nii.gz`` (the AAL atlas on the same grid, 116 regions named in
``aal.nii.txt``, e.g. ``37 Hippocampus_L``). :func:`load_colin27` reads both as [z, y, x]
arrays (z = axial slices), so "left hippocampus" becomes a 3D mask.

The LiteMedSAM measurement on these structures (2D prompt comparison + 3D propagation) runs
with the benchmark one, :mod:`medlib.segment.measure`, and writes
``results/segment_colin27.json``::

    python -m medlib.segment.measure --profile smoke
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MRICRON_DIR_ENV = "MEDLIB_MRICRON_DIR"
DEBIAN_TEMPLATES = Path("/usr/share/mricron/templates")
INSTALL_HINT = "install the Debian package with `apt-get install -y mricron-data`"
DEFAULT_STRUCTURES = (
    "Hippocampus_L",
    "Hippocampus_R",
    "Thalamus_L",
    "Thalamus_R",
    "Caudate_L",
    "Caudate_R",
    "Putamen_L",
    "Putamen_R",
)


def templates_dir(root: str | Path | None = None) -> Path:
    """Folder holding ``ch2.nii.gz`` / ``aal.nii.gz``: ``root``, else ``$MEDLIB_MRICRON_DIR``,
    else the Debian location."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get(MRICRON_DIR_ENV) or DEBIAN_TEMPLATES)


def colin27_available(root: str | Path | None = None) -> bool:
    d = templates_dir(root)
    return all((d / f).is_file() for f in ("ch2.nii.gz", "aal.nii.gz", "aal.nii.txt"))


def read_aal_names(path: str | Path) -> dict[int, str]:
    """``aal.nii.txt`` rows ``index name code`` -> {index: name}."""
    names = {}
    for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{line_no}: expected 'index name code', got {line!r}")
        names[int(parts[0])] = parts[1]
    return names


@dataclass(frozen=True)
class Colin27:
    """The T1 volume and the AAL label volume, both [z, y, x]; ``names`` maps label -> name."""

    t1: np.ndarray
    labels: np.ndarray
    names: dict[int, str]
    spacing: tuple[float, float, float]

    def label_of(self, structure: str) -> int:
        """AAL label of ``structure``: an AAL name (``Hippocampus_L``, any case) or plain words
        (``left hippocampus``)."""
        wanted = _normalise_name(structure)
        for idx, name in self.names.items():
            if _normalise_name(name) == wanted:
                return idx
        by_norm = {_normalise_name(n): n for n in self.names.values()}
        close = [by_norm[k] for k in difflib.get_close_matches(wanted, list(by_norm), n=6, cutoff=0.6)]
        raise KeyError(f"no AAL structure named {structure!r}" + (f"; close: {close}" if close else ""))

    def mask(self, structure: str) -> np.ndarray:
        """Bool [z, y, x] mask of one named structure."""
        return self.labels == self.label_of(structure)

    def window(self, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
        """(level, width) spanning the 0.5-99.5 percentiles of the non-zero voxels (MedSAM's MR
        preprocessing clips to these percentiles)."""
        v = self.t1[self.t1 > 0]
        lo, hi = np.percentile(v, [low_pct, high_pct])
        return float((lo + hi) / 2), float(hi - lo)


def _normalise_name(name: str) -> str:
    s = name.strip().lower().replace("-", " ").replace("_", " ")
    words = s.split()
    side = ""
    for w, tag in (("left", "l"), ("right", "r")):
        if w in words:
            words.remove(w)
            side = tag
    if not side and len(words) > 1 and words[-1] in ("l", "r"):
        side = words.pop()
    return "_".join(words) + (f"_{side}" if side else "")


@lru_cache(maxsize=2)
def load_colin27(root: str | Path | None = None) -> Colin27:
    """Colin27 T1 (float32) and AAL labels (int16), [z, y, x], from ``mricron-data``."""
    from ..data.io import read_volume

    d = templates_dir(root)
    if not colin27_available(d):
        raise FileNotFoundError(f"Colin27/AAL templates not found in {d}: {INSTALL_HINT} (or set ${MRICRON_DIR_ENV}).")
    t1, spacing = read_volume(d / "ch2.nii.gz")
    labels, _ = read_volume(d / "aal.nii.gz")
    if t1.shape != labels.shape:
        raise ValueError(f"{d}: ch2.nii.gz {t1.shape} and aal.nii.gz {labels.shape} are not on the same grid")
    return Colin27(t1.astype(np.float32), labels.astype(np.int16), read_aal_names(d / "aal.nii.txt"), spacing)


Z_MODES = ("until_vanish", "gt_z_range", "delta5")


def structure_cases(structures=DEFAULT_STRUCTURES, root: str | Path | None = None, z_mode: str = "until_vanish") -> tuple[list, list]:
    """2D and 3D :mod:`medlib.segment.quality` cases, one per structure.

    2D: the axial slice where the structure is largest, windowed to uint8. 3D: the raw T1 with
    the percentile window, key slice = that same slice, over the slices chosen by ``z_mode``:

    * ``until_vanish``: the whole volume (propagation runs until the mask vanishes);
    * ``gt_z_range``: only the slices the structure spans (the official LiteMedSAM 3D protocol
      gives the segmenter a 3D box, hence the z-range);
    * ``delta5``: the key slice +- 5 (MedVol-R1's cross-slice reward R_c scores |t - k| <= 5).

    :func:`medlib.segment.quality.measure_3d` scores the last two from one ``until_vanish``
    propagation (``dice_gt_z``, ``dice_near_key``); the crops exist for cheaper runs.
    """
    from .preprocess import window_to_uint8
    from .quality import SegCase2D, SegCase3D, crop_z, key_slice_of

    if z_mode not in Z_MODES:
        raise ValueError(f"z_mode must be one of {Z_MODES}, got {z_mode!r}")
    c = load_colin27(root)
    window = c.window()
    u8 = window_to_uint8(c.t1, window)
    cases_2d, cases_3d = [], []
    for s in structures:
        m = c.mask(s)
        k = key_slice_of(m)
        name = c.names[c.label_of(s)]
        cases_2d.append(SegCase2D(f"colin27/{name}/z{k}", name, u8[k], m[k]))
        case = SegCase3D(f"colin27/{name}", name, c.t1, m, key_slice=k, window=window, meta={"z_mode": z_mode})
        zs = np.nonzero(m.any(axis=(1, 2)))[0]
        if z_mode == "gt_z_range":
            case = crop_z(case, int(zs[0]), int(zs[-1]) + 1)
        elif z_mode == "delta5":
            case = crop_z(case, k - 5, k + 6)
        cases_3d.append(case)
    return cases_2d, cases_3d


def run_check(segmenter=None, structures=DEFAULT_STRUCTURES, root=None, near_key: int | None = None, progress: bool = False) -> dict:
    """MedReasoner Table 4 in miniature (points / box / box + points on each structure's largest
    axial slice) and 3D propagation from that slice on real anatomy; the results dict.

    ``near_key`` crops the volume to ``|t - k| <= near_key`` first (a quick run; then every
    3D number is measured within that window); None propagates through the whole volume."""
    from .factory import build_segmenter
    from .quality import PROMPTS, crop_z, measure_2d, measure_3d, per_structure_table, summarise_3d

    seg = segmenter if segmenter is not None else build_segmenter("litemedsam")
    cases_2d, cases_3d = structure_cases(structures, root)
    rows_2d = measure_2d(seg, cases_2d, prompts=PROMPTS, progress=progress)
    if near_key is not None:
        cases_3d = [crop_z(c, c.key_slice - near_key, c.key_slice + near_key + 1) for c in cases_3d]
    rows_3d = measure_3d(seg, cases_3d, progress=progress)
    return {
        "data": "Colin27 T1 (ch2.nii.gz) + AAL labels (aal.nii.gz) from Debian mricron-data",
        "templates_dir": str(templates_dir(root)),
        "window_level_width": list(load_colin27(root).window()),
        "key_slice": "axial slice of largest structure area (2D image and 3D start)",
        "near_key": near_key,
        "summary_2d": per_structure_table(rows_2d, by=("prompt",)).to_dict(orient="records"),
        "summary_3d": summarise_3d(rows_3d).to_dict(orient="records"),
        "rows_2d": rows_2d.to_dict(orient="records"),
        "rows_3d": rows_3d.to_dict(orient="records"),
    }


__all__ = [
    "Colin27",
    "DEFAULT_STRUCTURES",
    "INSTALL_HINT",
    "colin27_available",
    "load_colin27",
    "read_aal_names",
    "structure_cases",
    "run_check",
    "templates_dir",
]
