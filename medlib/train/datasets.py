"""Turn :class:`~medlib.data.records.Grounding2D` / :class:`~medlib.data.records.Grounding3D`
records into TRL dataset rows (conversational ``prompt``, images, reward columns, SFT ``completion``).

Every coordinate in a row is in the model frame (:func:`medlib.models.model_frame`): the box the
model must answer, the SFT target and the reward's ``solution`` all name the same pixels of the
resized image the model sees. Columns follow :mod:`medlib.rewards.registry`:

* 2D (MedGround-R1, MedReasoner): ``prompt``, ``image`` (PIL, original size), ``solution``
  (GT xyxy, model frame, integers), ``phrase``, ``model_size`` ``[w, h]``, ``points``
  (MedReasoner: two key points, model frame), ``sample_id``, ``image_path``, ``orig_box``.
* 3D (MedVol-R1): ``prompt`` (``<slice k>`` + image per slice), ``images`` (the slices, each
  ``slice_size`` square), ``mask_path``, ``mask_value``, ``volume_path``, ``slice_indices``
  (volume z of each shown slice), ``model_size``, ``phrase``, ``sample_id``.
* SFT adds ``completion`` (one assistant message in the paper's answer format).

Sources: ``load_records(cfg, split)`` reads the configured source; ``toy2d`` / ``toy3d`` write
small bright-shape datasets in the records' own JSON (fast tests and demonstrations).
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import prompts
from ..data.io import DatasetError
from ..data.records import Grounding2D, Grounding3D
from ..geometry import mask_to_boxes
from .config import RunConfig


# ---------------------------------------------------------------------------- sources
def load_records(cfg: RunConfig, split: str) -> list:
    """Records of ``split`` from ``cfg.data``; the synthetic sources (chest, umrg_synth, ct_synth,
    toy2d, toy3d) are generated first unless the folder holds a complete generation of the same
    settings (:func:`medlib.synthetic.generated.ensure_generated`: an interrupted generation or
    changed ``data.sizes`` are generated again); truncated to ``data.max_samples`` for the
    training split."""
    from ..synthetic.generated import ensure_generated

    d = cfg.data
    root = cfg.data_root()
    spec = {"source": d.source, "sizes": d.sizes, "image_size": d.image_size, "seed": d.seed}
    spec3d = {"source": d.source, "sizes": d.sizes, "volume_shape": list(d.volume_shape), "seed": d.seed}
    if d.source == "chest":
        from ..data.mscxr import load_mscxr
        from ..synthetic.chest import generate_chest

        ensure_generated(root, spec, lambda: generate_chest(root, d.sizes, image_size=d.image_size, seed=d.seed,
                                                            progress=cfg.progress), "chest benchmark")
        recs = load_mscxr(root / "ms_cxr", split)
    elif d.source == "umrg_synth":
        from ..data.umrg import load_umrg
        from ..synthetic.multimodal import generate_umrg

        ensure_generated(root, spec, lambda: generate_umrg(root, d.sizes, image_size=d.image_size, seed=d.seed),
                         "U-MRG-format benchmark")
        recs = load_umrg(root, split)
    elif d.source == "ct_synth":
        from ..data.m3d import load_m3d_refseg
        from ..synthetic.ct import generate_ct

        ensure_generated(root, spec3d, lambda: generate_ct(root, d.sizes, shape=tuple(d.volume_shape), seed=d.seed),
                         "CT benchmark")
        recs = load_m3d_refseg(root, split)
    elif d.source in ("mscxr", "chestxray8", "umrg", "m3d_refseg"):
        from ..data.catalog import load_dataset

        recs = load_dataset("ms_cxr" if d.source == "mscxr" else d.source, root, split,
                            allow_outside_root=d.allow_outside_root)
    elif d.source == "m3d_seg":
        from ..data.m3d import load_m3d_seg

        recs = [r for sub in d.subsets for r in load_m3d_seg(root, sub, split, allow_outside_root=d.allow_outside_root)]
    elif d.source == "toy2d":
        ensure_generated(root, spec, lambda: write_toy2d(root, d.sizes, d.image_size, d.seed), "toy data")
        recs = read_toy(root, split)
    elif d.source == "toy3d":
        ensure_generated(root, spec3d, lambda: write_toy3d(root, d.sizes, d.volume_shape, d.seed), "toy data")
        recs = read_toy(root, split)
    else:
        mod_name, fn_name = d.source.split(":")
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise DatasetError(f"data.source {d.source!r}: cannot import {fn_name} from {mod_name} ({e})") from e
        recs = list(fn(root, split))
    if not recs:
        raise DatasetError(f"{root}: no {split!r} records for data.source {d.source!r}")
    if split == d.train_split and d.max_samples:
        recs = recs[: d.max_samples]
    want = Grounding3D if cfg.paper == "medvol" else Grounding2D
    if not isinstance(recs[0], want):
        raise DatasetError(f"data.source {d.source!r} gives {type(recs[0]).__name__} records; "
                           f"{cfg.paper} needs {want.__name__}")
    return recs


def _rng(seed: int, split: str, i: int) -> np.random.Generator:
    import zlib

    return np.random.default_rng([seed, zlib.crc32(split.encode()), i])


def _write_json(root: Path, split: str, recs: list) -> None:
    (root / f"{split}.json").write_text(json.dumps([r.to_dict() for r in recs], indent=1, default=list))


def write_toy2d(root: str | Path, sizes: dict[str, int], image_size: int = 112, seed: int = 0) -> Path:
    """Grey noisy images with one bright rectangle (the target, phrase names its position) and
    sometimes a dimmer distractor; masks, boxes and two interior key points, as Grounding2D JSON."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    s = int(image_size)
    for split, n in sizes.items():
        recs = []
        for i in range(n):
            rng = _rng(seed, split, i)
            img = rng.normal(60, 12, (s, s)).clip(0, 255)
            w, h = (int(v) for v in rng.integers(s // 8, s // 3, size=2))
            x, y = int(rng.integers(0, s - w)), int(rng.integers(0, s - h))
            mask = np.zeros((s, s), np.uint8)
            mask[y : y + h, x : x + w] = 255
            if rng.random() < 0.5:  # a dimmer distractor elsewhere
                dw, dh = (int(v) for v in rng.integers(s // 10, s // 5, size=2))
                dx, dy = int(rng.integers(0, s - dw)), int(rng.integers(0, s - dh))
                img[dy : dy + dh, dx : dx + dw] = 120
            img[mask > 0] = 220
            vert = "upper" if y + h / 2 < s / 2 else "lower"
            horiz = "left" if x + w / 2 < s / 2 else "right"
            stem = f"{split}_{i:05d}"
            Image.fromarray(img.astype(np.uint8)).save(root / "images" / f"{stem}.png")
            Image.fromarray(mask).save(root / "images" / f"{stem}_mask.png")
            box = (float(x), float(y), float(x + w), float(y + h))
            recs.append(Grounding2D(
                sample_id=f"toy2d_{stem}", dataset="toy2d", split=split, image_path=root / "images" / f"{stem}.png",
                query=f"the bright rectangle in the {vert} {horiz} part", boxes=[box], image_size=(s, s),
                mask_path=root / "images" / f"{stem}_mask.png", points=derive_key_points(box, mask > 0),
                label="rectangle"))
        _write_json(root, split, recs)
    return root


def write_toy3d(root: str | Path, sizes: dict[str, int], shape: list[int] | tuple = (32, 64, 64), seed: int = 0) -> Path:
    """CT-like volumes (HU-like background) with one bright ellipsoid target and its mask, as
    Grounding3D JSON with ``.npy`` volumes."""
    root = Path(root)
    (root / "volumes").mkdir(parents=True, exist_ok=True)
    Z, Y, X = (int(v) for v in shape)
    zz, yy, xx = np.mgrid[:Z, :Y, :X]
    for split, n in sizes.items():
        recs = []
        for i in range(n):
            rng = _rng(seed, split, i)
            vol = rng.normal(-50, 30, (Z, Y, X))
            r = np.array([rng.uniform(0.15, 0.3) * Z, rng.uniform(0.1, 0.25) * Y, rng.uniform(0.1, 0.25) * X])
            c = np.array([rng.uniform(r[0], Z - r[0]), rng.uniform(r[1], Y - r[1]), rng.uniform(r[2], X - r[2])])
            m = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= 1
            vol[m] = rng.normal(150, 15, int(m.sum()))
            stem = f"{split}_{i:05d}"
            np.save(root / "volumes" / f"{stem}.npy", vol.astype(np.float32))
            np.save(root / "volumes" / f"{stem}_mask.npy", m.astype(np.uint8))
            side = "left" if c[2] > X / 2 else "right"  # patient's side is the image's opposite
            recs.append(Grounding3D(
                sample_id=f"toy3d_{stem}", dataset="toy3d", split=split,
                volume_path=root / "volumes" / f"{stem}.npy", mask_path=root / "volumes" / f"{stem}_mask.npy",
                query=f"the bright lesion on the {side} side", label="lesion"))
        _write_json(root, split, recs)
    return root


def read_toy(root: str | Path, split: str) -> list:
    """Records written by :func:`write_toy2d` / :func:`write_toy3d`."""
    p = Path(root) / f"{split}.json"
    if not p.is_file():
        raise DatasetError(f"{p}: toy split file not found")
    out = []
    for i, d in enumerate(json.loads(p.read_text())):
        try:
            if "volume_path" in d:
                d["volume_path"], d["mask_path"] = Path(d["volume_path"]), Path(d["mask_path"])
                d["spacing"] = tuple(d["spacing"])
                out.append(Grounding3D(**d))
            else:
                d["image_path"] = Path(d["image_path"])
                d["mask_path"] = Path(d["mask_path"]) if d.get("mask_path") else None
                d["boxes"] = [tuple(b) for b in d["boxes"]]
                d["image_size"] = tuple(d["image_size"]) if d.get("image_size") else None
                d["points"] = tuple(tuple(q) for q in d["points"]) if d.get("points") else None
                out.append(Grounding2D(**d))
        except (TypeError, KeyError) as e:
            raise DatasetError(f"{p}, row {i}: not a record ({e})") from e
    return out


# ------------------------------------------------------------------------ key points
def derive_key_points(box, mask: np.ndarray | None = None) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two distinct interior key points for datasets that have none (MedReasoner's format needs
    them). With a mask: the pixel farthest from the boundary (U-MRG's first point, Appendix A)
    and, among pixels at least half as deep, the one farthest from it. Without: the box centre
    +- a quarter of the longer side along that side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if mask is not None and np.asarray(mask).any():
        from scipy.ndimage import distance_transform_edt

        m = np.asarray(mask).astype(bool)
        edt = distance_transform_edt(m)
        y, x = np.unravel_index(int(np.argmax(edt)), edt.shape)
        deep = edt >= 0.5 * edt.max()
        ys, xs = np.nonzero(deep)
        j = int(np.argmax((ys - y) ** 2 + (xs - x) ** 2))
        if (ys[j], xs[j]) != (y, x):
            return (float(x) + 0.5, float(y) + 0.5), (float(xs[j]) + 0.5, float(ys[j]) + 0.5)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if w >= h:
        return (cx - w / 4, cy), (cx + w / 4, cy)
    return (cx, cy - h / 4), (cx, cy + h / 4)


# ------------------------------------------------------------------ reasoning in frame
_BOX_IN_TEXT = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\]")
_POINT_IN_TEXT = re.compile(r"([\[(])\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*([\])])")


def reframe_text(text: str, frame) -> str:
    """Coordinates written in a dataset's reasoning text (boxes ``[x1, y1, x2, y2]``, points
    ``(x, y)`` / ``[x, y]``, pixels of the original image) moved into the model frame, so that
    an SFT target's think block and answer use one frame. Identity frames return ``text``."""
    if (frame.orig_width, frame.orig_height) == (frame.model_width, frame.model_height):
        return text

    def box(m: re.Match) -> str:
        return json.dumps(frame.box_to_model_int([float(g) for g in m.groups()]))

    def point(m: re.Match) -> str:
        x, y = frame.points_to_model([float(m.group(2)), float(m.group(3))])
        return f"{m.group(1)}{int(round(x))}, {int(round(y))}{m.group(4)}"

    return _POINT_IN_TEXT.sub(point, _BOX_IN_TEXT.sub(box, text))


# --------------------------------------------------------------------------- 2D rows
def _pil_rgb(arr: np.ndarray):
    from PIL import Image

    a = np.asarray(arr)
    if a.dtype != np.uint8:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = ((a - lo) / (hi - lo + 1e-8) * 255).clip(0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return Image.fromarray(a).convert("RGB")


def row_2d(rec: Grounding2D, processor, paper: str, template: str, with_completion: bool) -> dict[str, Any]:
    """One TRL row of a 2D record (see the module docstring for the columns)."""
    from ..models.frames import model_frame

    image = _pil_rgb(rec.load_image())
    w, h = image.size
    if rec.image_size is not None and tuple(rec.image_size) != (w, h):
        raise DatasetError(f"{rec.sample_id}: record says image_size {tuple(rec.image_size)}, file is {w}x{h}")
    frame = model_frame(processor, w, h)
    box = frame.box_to_model_int(rec.box)
    row: dict[str, Any] = {
        "image": image,
        "solution": box,
        "phrase": rec.query,
        "model_size": [frame.model_width, frame.model_height],
        "sample_id": rec.sample_id,
        "image_path": str(rec.image_path),
        "orig_box": [float(v) for v in rec.box],
    }
    if paper == "medground":
        text = prompts.medground_text(rec.query, template)
        reasoning = reframe_text(rec.reasoning, frame) if rec.reasoning else None
        answer = prompts.medground_answer(box, rec.query, template, reasoning)
    elif paper == "medreasoner":
        pts = rec.points
        if pts is None:
            pts = derive_key_points(rec.box, rec.load_mask() if rec.mask_path else None)
        pts_m = np.rint(frame.points_to_model(np.asarray(pts, dtype=float))).astype(int)
        pts_m = np.clip(pts_m, 0, [frame.model_width - 1, frame.model_height - 1]).tolist()
        row["points"] = pts_m
        reasoning = template == "reasoning"
        text = prompts.medreasoner_text(rec.query, reasoning=reasoning)
        cot = reframe_text(rec.reasoning, frame) if rec.reasoning else None
        answer = prompts.medreasoner_answer(box, pts_m, cot, think=reasoning)
    else:
        raise ValueError(f"row_2d serves medground and medreasoner, not {paper!r}")
    row["prompt"] = prompts.conversation(text, n_images=1)
    if with_completion:
        row["completion"] = prompts.assistant(answer)
    return row


# --------------------------------------------------------------------------- 3D rows
def uniform_slices(depth: int, n: int) -> list[int]:
    """``n`` axial indices spread uniformly over ``depth`` slices (all of them when n >= depth)."""
    if n >= depth:
        return list(range(depth))
    return [int(v) for v in np.round(np.linspace(0, depth - 1, n))]


def slice_image(sl: np.ndarray, lo: float, hi: float, size: int):
    """One axial slice, intensity window ``[lo, hi]`` -> uint8 -> RGB, resized to ``size`` square."""
    from PIL import Image

    a = ((np.asarray(sl, dtype=np.float64) - lo) / max(hi - lo, 1e-8) * 255).clip(0, 255).astype(np.uint8)
    return Image.fromarray(a).convert("RGB").resize((size, size), Image.BILINEAR)


def top_k_key_slice(areas: np.ndarray, k: int, rng: np.random.Generator) -> int | None:
    """Top-K visibility sampling (MedVol-R1 Sec. 2.4): rank slices by foreground area and draw
    one of the K largest (only slices with foreground); None when no slice has any."""
    order = [int(i) for i in np.argsort(-areas, kind="stable") if areas[i] > 0][:k]
    return int(rng.choice(order)) if order else None


def row_3d(rec: Grounding3D, processor, n_slices: int, slice_size: int, top_k: int,
           rng: np.random.Generator, with_completion: bool, slice_base: int = 1) -> dict[str, Any] | None:
    """One TRL row of a volume: ``n_slices`` uniformly sampled axial slices, each after its
    ``<slice k>`` tag; SFT target = Top-K key slice and its connected-component boxes. None
    when the target appears on none of the sampled slices (no reward or target can see it)."""
    from ..models.frames import model_frame

    vol = rec.load_volume()
    mask = rec.load_mask()
    if vol.ndim != 3:
        raise DatasetError(f"{rec.sample_id}: volume must be 3D [z, y, x], got shape {vol.shape}")
    if mask.shape != vol.shape:
        raise DatasetError(f"{rec.sample_id}: mask shape {mask.shape} differs from volume shape {vol.shape}")
    z_idx = uniform_slices(vol.shape[0], n_slices)
    areas = mask[z_idx].reshape(len(z_idx), -1).sum(axis=1).astype(float)
    if not areas.any():
        return None
    lo, hi = np.percentile(vol, [0.5, 99.5])
    images = [slice_image(vol[z], lo, hi, slice_size) for z in z_idx]
    frame = model_frame(processor, slice_size, slice_size)
    row: dict[str, Any] = {
        "images": images,
        "prompt": prompts.conversation(prompts.medvol_content(rec.query, len(z_idx), slice_base), len(z_idx)),
        "phrase": rec.query,
        "mask_path": str(rec.mask_path),
        "mask_value": rec.mask_value,
        "volume_path": str(rec.volume_path),
        "slice_indices": z_idx,
        "model_size": [frame.model_width, frame.model_height],
        "sample_id": rec.sample_id,
    }
    if with_completion:
        pos = top_k_key_slice(areas, top_k, rng)
        sx, sy = frame.model_width / mask.shape[2], frame.model_height / mask.shape[1]
        boxes = [[int(np.floor(b[0] * sx)), int(np.floor(b[1] * sy)), int(np.ceil(b[2] * sx)), int(np.ceil(b[3] * sy))]
                 for b in mask_to_boxes(mask[z_idx[pos]])]
        row["completion"] = prompts.assistant(prompts.medvol_answer(pos + slice_base, boxes))
    return row


# ----------------------------------------------------------------------------- datasets
def build_rows(cfg: RunConfig, records: list, processor, with_completion: bool) -> list[dict[str, Any]]:
    """TRL rows of ``records`` for ``cfg.paper`` (``with_completion`` for SFT)."""
    from tqdm.auto import tqdm

    it = tqdm(records, desc=f"{cfg.paper} rows", disable=not cfg.progress, leave=False)
    if cfg.paper == "medvol":
        rng = np.random.default_rng(cfg.data.seed)
        rows = [row_3d(r, processor, cfg.data.n_slices, cfg.data.slice_size, cfg.data.top_k, rng, with_completion)
                for r in it]
        kept = [r for r in rows if r is not None]
        if len(kept) < len(rows):
            warnings.warn(f"skipped {len(rows) - len(kept)} of {len(rows)} volumes whose target appears on none of "
                          f"the {cfg.data.n_slices} sampled slices", stacklevel=2)
        if not kept:
            raise DatasetError(f"no volume's target appears on the {cfg.data.n_slices} sampled slices; raise data.n_slices")
        return kept
    return [row_2d(r, processor, cfg.paper, cfg.template, with_completion) for r in it]


def to_dataset(rows: list[dict[str, Any]]):
    """A ``datasets.Dataset`` of the rows (images stored as PNG, decoded to PIL on access)."""
    import datasets

    return datasets.Dataset.from_list(rows)


def build_dataset(cfg: RunConfig, processor, split: str, with_completion: bool):
    """``load_records`` + ``build_rows`` + ``to_dataset`` for one split."""
    return to_dataset(build_rows(cfg, load_records(cfg, split), processor, with_completion))
