"""Reading images, masks and volumes from disk, with one clear error per bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A dataset file or row that cannot be used; the message names the file (and row)."""


def _require(path: Path | str) -> Path:
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: file not found")
    return p


def read_image(path: Path | str) -> np.ndarray:
    """Read a PNG/JPEG/TIFF (PIL) or DICOM (pydicom) image as uint8, HxW or HxWx3."""
    p = _require(path)
    if p.suffix.lower() in {".dcm", ".dicom"}:
        return _read_dicom(p)
    from PIL import Image

    try:
        with Image.open(p) as im:
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB") if im.mode in ("RGBA", "P", "CMYK") else im.convert("L")
            return np.asarray(im).copy()
    except OSError as e:
        raise DatasetError(f"{p}: not a readable image ({e})") from e


def _read_dicom(p: Path) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(p)
        a = ds.pixel_array.astype(np.float32)
    except Exception as e:  # noqa: BLE001 - pydicom raises many types
        raise DatasetError(f"{p}: not a readable DICOM image ({e})") from e
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        a = a.max() - a
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return a.astype(np.uint8)


def read_mask(path: Path | str) -> np.ndarray:
    """Read a 2D mask (PNG or .npy) as a boolean array."""
    p = _require(path)
    if p.suffix == ".npy":
        m = np.load(p, allow_pickle=False)
    else:
        m = read_image(p)
    if m.ndim == 3:
        m = m[..., 0]
    return m > 0


def read_volume(path: Path | str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a volume as (array indexed [z, y, x], spacing (z, y, x) in mm); NaN or infinite
    voxels are an error naming the file (:func:`require_finite`).

    NIfTI (``.nii``/``.nii.gz``, via nibabel, stored [x, y, z]) is transposed to [z, y, x];
    ``.npy`` / ``.npz`` (key ``arr_0`` or the only key) are taken as already [z, y, x].
    """
    p = _require(path)
    name = p.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            img = nib.load(str(p))
            a = np.asanyarray(img.dataobj)
            if a.ndim == 4 and a.shape[3] == 1:
                a = a[..., 0]
            if a.ndim != 3:
                raise DatasetError(f"{p}: expected a 3D volume, got shape {a.shape}")
            zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
            require_finite(a, p)
            return np.ascontiguousarray(np.transpose(a, (2, 1, 0))), (zooms[2], zooms[1], zooms[0])
        if name.endswith(".npy"):
            a = np.load(p, allow_pickle=False)
        elif name.endswith(".npz"):
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                a = z["arr_0"] if "arr_0" in keys else z[keys[0]]
        else:
            raise DatasetError(f"{p}: unknown volume format (use .nii, .nii.gz, .npy or .npz)")
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{p}: not a readable volume ({e})") from e
    if a.ndim != 3:
        raise DatasetError(f"{p}: expected a 3D volume, got shape {a.shape}")
    return require_finite(a, p), (1.0, 1.0, 1.0)


def write_volume_nifti(path: Path | str, array_zyx: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)) -> Path:
    """Write a [z, y, x] array as NIfTI ([x, y, z] on disk, spacing in the affine)."""
    import nibabel as nib

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    a = np.transpose(np.asarray(array_zyx), (2, 1, 0))
    affine = np.diag([spacing_zyx[2], spacing_zyx[1], spacing_zyx[0], 1.0])
    img = nib.Nifti1Image(a, affine)
    img.header.set_zooms((spacing_zyx[2], spacing_zyx[1], spacing_zyx[0]))
    nib.save(img, str(p))
    return p


def require_finite(a: np.ndarray, path: str | Path) -> np.ndarray:
    """``a`` unchanged when every value is finite; else :class:`DatasetError` naming ``path``."""
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise DatasetError(f"{path}: {bad} of {a.size} voxels are not finite (NaN or inf); replace them "
                               f"(e.g. with the volume's minimum) or drop this volume")
    return a
