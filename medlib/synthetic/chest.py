"""Synthetic chest-radiograph grounding benchmark, written in the MS-CXR and ChestX-ray8
formats so that :func:`medlib.data.mscxr.load_mscxr` and
:func:`medlib.data.chestxray8.load_chestxray8` read it exactly as they read the real data.

``generate_chest(root, sizes, image_size, seed)`` writes::

    root/ms_cxr/MS_CXR_{split}.json            MedRPG split rows (one box per phrase)
    root/ms_cxr/MS_CXR_Local_Alignment_v1.1.0.csv   official-style CSV, all phrases and boxes
    root/ms_cxr/files/p1X/p<subject>/s<study>/<dicom_id>.png
    root/chestxray8/BBox_List_2017.csv         NIH box list, finding label = query
    root/chestxray8/{split}_list.txt           image names of each split
    root/chestxray8/images/<patient>_<followup>.png

The two parts are independent draws (different images). Every image holds one target
finding (placed by anatomy, its box the exact extent of what it changes) and, in some
images, a distractor finding of another class. In MS-CXR some targets have a twin in the
other lung; the CSV then also holds a "bilateral ..." phrase with two boxes, which MedRPG's
one-box-per-phrase filter removes, so the filtered CSV equals the JSON split.

Deterministic: each image has its own ``numpy`` Generator seeded by (seed, part, split,
index); PNGs carry no timestamps; JSON has sorted keys. Same seed -> byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.mscxr import CSV_COLUMNS, MEDRPG_FIELDS, MSCXR_CATEGORIES
from .chest_anatomy import Anatomy, Grid, sample_anatomy
from .chest_findings import (
    BILATERAL_KINDS,
    KINDS,
    Finding,
    Placer,
    boxes_touch,
    cardiomegaly_box_finding,
    place,
)
from .chest_phrases import bilateral_phrase, referring_phrase
from .chest_render import base_layers, density, film

#: MS-CXR category of each synthetic kind (consolidation is labelled either way in MS-CXR).
MSCXR_CATEGORY = {
    "nodule": "Lung Opacity",
    "mass": "Lung Opacity",
    "consolidation": "Consolidation",
    "infiltrate": "Lung Opacity",
    "atelectasis": "Atelectasis",
    "effusion": "Pleural Effusion",
    "pneumothorax": "Pneumothorax",
    "cardiomegaly": "Cardiomegaly",
}
#: ChestX-ray8 finding label of each synthetic kind.
CXR8_LABEL = {
    "nodule": "Nodule",
    "mass": "Mass",
    "consolidation": "Pneumonia",
    "infiltrate": "Infiltrate",
    "atelectasis": "Atelectasis",
    "effusion": "Effusion",
    "pneumothorax": "Pneumothorax",
    "cardiomegaly": "Cardiomegaly",
}
_CATEGORY_ID = {name: i for i, name in MSCXR_CATEGORIES.items()}
MARKER = ".medlib_chest"
CXR8_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
PARTS = ("ms_cxr", "chestxray8")


@dataclass
class ChestSample:
    image: np.ndarray  # uint8, size x size
    anatomy: Anatomy
    target: Finding
    partner: Finding | None  # the same kind in the other lung (bilateral), or None
    distractors: list[Finding]


def render_sample(
    rng: np.random.Generator,
    size: int,
    kind: str,
    *,
    bilateral: bool = False,
    distractor_rate: float = 0.35,
    omit_target: bool = False,
) -> ChestSample:
    """Draw one chest radiograph with a target finding of ``kind``.

    ``omit_target`` renders the identical image (same random draws) without the target's
    effect: the tests use it to check that the box covers what the finding changed.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown finding kind {kind!r}; choose from {KINDS}")
    a = normal = sample_anatomy(rng, size)
    side = int(rng.integers(2))
    others = [k for k in KINDS if k != kind]
    distractor_kinds = [str(rng.choice(others))] if rng.random() < distractor_rate else []
    factor = float(rng.uniform(1.35, 1.7))
    if kind == "cardiomegaly" or "cardiomegaly" in distractor_kinds:
        a = a.enlarge_heart(factor)
    g = Grid(size)
    # without its target a cardiomegaly image keeps the normal heart; everything else is
    # placed on the same (enlarged-heart) geometry so that only the heart differs
    drawn = a if not (omit_target and kind == "cardiomegaly") else normal
    layers = base_layers(drawn, g, rng)
    p = Placer(a, g)

    if kind == "cardiomegaly":
        target = cardiomegaly_box_finding(a, g, factor)
    else:
        target = None
        for attempt in range(10):
            target = place(kind, p, rng, side if attempt < 5 else 1 - side)
            if target is not None:
                break
        if target is None:
            raise RuntimeError(f"could not place a {kind} in either lung")
    partner = None
    if bilateral and kind in BILATERAL_KINDS and target.side is not None:
        for _ in range(4):
            partner = place(kind, p, rng, 1 - target.side)
            if partner is not None:
                break
    taken = [target.box] + ([partner.box] if partner else [])
    distractors = []
    for dk in distractor_kinds:
        if dk == "cardiomegaly":
            f = cardiomegaly_box_finding(a, g, factor)
            distractors.append(f)  # the heart is enlarged whether or not its box overlaps
            continue
        for _ in range(4):
            f = place(dk, p, rng, int(rng.integers(2)))
            if f is not None and not any(boxes_touch(f.box, b) for b in taken):
                distractors.append(f)
                break
    for f in ([] if omit_target else [target]) + ([partner] if partner else []) + distractors:
        e = f.effect
        if e.add is not None:
            layers.add += e.add
        if e.aeration_loss is not None:
            np.maximum(layers.aeration_loss, e.aeration_loss, out=layers.aeration_loss)
        if e.vessel_keep is not None:
            np.minimum(layers.vessel_keep, e.vessel_keep, out=layers.vessel_keep)
    image = film(density(layers), rng)
    return ChestSample(image, drawn, target, partner, distractors)


# ----------------------------------------------------------------------------- writing
def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _xywh(box) -> list[int]:
    x1, y1, x2, y2 = (int(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _rng(seed: int, part: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(part.encode()), zlib.crc32(split.encode()), index])


def draw_sample(
    seed: int,
    part: str,
    split: str,
    index: int,
    kind: str,
    image_size: int,
    *,
    distractor_rate: float = 0.35,
    bilateral_rate: float = 0.15,
    omit_target: bool = False,
) -> tuple[ChestSample, np.random.Generator]:
    """The sample ``generate_chest`` writes as image ``index`` of ``split`` in ``part``
    (``"ms_cxr"`` or ``"chestxray8"``), and its generator for the phrase draws after it."""
    rng = _rng(seed, part, split, index)
    bilateral = part == "ms_cxr" and bool(rng.random() < bilateral_rate)
    smp = render_sample(
        rng, image_size, kind, bilateral=bilateral, distractor_rate=distractor_rate, omit_target=omit_target
    )
    return smp, rng


def kinds_for_split(seed: int, part: str, split: str, n: int) -> list[str]:
    """Balanced kinds: each kind equally often (up to n mod 8), in a seeded random order."""
    kinds = [KINDS[j % len(KINDS)] for j in range(n)]
    order = _rng(seed, part, split, -1 % 2**32).permutation(n)
    return [kinds[j] for j in order]


def _prepare_dir(d: Path) -> None:
    if d.exists():
        if any(d.iterdir()) and not (d / MARKER).exists():
            raise FileExistsError(f"{d} exists and was not written by generate_chest; choose an empty root")
        shutil.rmtree(d)
    d.mkdir(parents=True)


def _dicom_id(seed: int, split: str, i: int) -> str:
    h = hashlib.sha1(f"medlib-chest/{seed}/{split}/{i}".encode()).hexdigest()
    return "-".join(h[k : k + 8] for k in range(0, 40, 8))


def generate_chest(
    root: str | Path,
    sizes: dict[str, int],
    image_size: int = 224,
    seed: int = 0,
    *,
    distractor_rate: float = 0.35,
    bilateral_rate: float = 0.15,
    progress: bool = True,
) -> dict:
    """Write the synthetic chest benchmark under ``root`` (see the module docstring) and
    return a summary: samples per split, kinds / labels per split, distractors, bilateral
    phrases. ``sizes`` maps split name to the number of samples of each part."""
    from tqdm.auto import tqdm

    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 pixels, got {image_size}")
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < 0}
    if bad:
        raise ValueError(f"sizes must map split names to non-negative integers, got {bad}")
    root = Path(root)
    total = 2 * sum(sizes.values())
    bar = tqdm(total=total, desc="chest benchmark", disable=not progress, leave=False)
    summary = {"seed": seed, "image_size": image_size, "sizes": dict(sizes)}
    summary["ms_cxr"] = _write_mscxr(
        root / "ms_cxr", sizes, image_size, seed, distractor_rate, bilateral_rate, bar
    )
    summary["chestxray8"] = _write_chestxray8(
        root / "chestxray8", sizes, image_size, seed, distractor_rate, bar
    )
    bar.close()
    return summary


def _write_mscxr(d: Path, sizes, S, seed, distractor_rate, bilateral_rate, bar) -> dict:
    _prepare_dir(d)
    (d / MARKER).write_text(f"medlib.synthetic.chest ms_cxr seed={seed} image_size={S}\n")
    csv_rows, k = [], 0
    info = {
        "dir": "ms_cxr",
        "splits": {},
        "kinds": {},
        "categories": {},
        "distractors": {},
        "bilateral_phrases": {},
    }
    for split, n in sizes.items():
        rows, kinds, cats = [], Counter(), Counter()
        n_dis = n_bil = 0
        for i, kind in enumerate(kinds_for_split(seed, "ms_cxr", split, n)):
            smp, rng = draw_sample(
                seed,
                "ms_cxr",
                split,
                i,
                kind,
                S,
                distractor_rate=distractor_rate,
                bilateral_rate=bilateral_rate,
            )
            phrase = referring_phrase(kind, smp.target.attrs, smp.target.side, rng)
            subject, study = 10_000_001 + k, 50_000_001 + k
            dicom = _dicom_id(seed, split, i)
            rel = f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.png"
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(_png_bytes(smp.image))
            cat = MSCXR_CATEGORY[kind]
            if kind == "consolidation" and rng.random() < 0.5:
                cat = "Pneumonia"
            box = _xywh(smp.target.box)
            rows.append(dict(zip(MEDRPG_FIELDS, [k, k, _CATEGORY_ID[cat], rel, box, S, S, phrase])))
            csv_rows.append([dicom, cat, phrase, rel, *box, S, S, split])
            if smp.partner is not None:
                both = bilateral_phrase(kind, rng)
                for f in (smp.target, smp.partner):
                    csv_rows.append([dicom, cat, both, rel, *_xywh(f.box), S, S, split])
                n_bil += 1
            kinds[kind] += 1
            cats[cat] += 1
            n_dis += len(smp.distractors)
            k += 1
            bar.update(1)
        (d / f"MS_CXR_{split}.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
        info["splits"][split] = n
        info["kinds"][split] = dict(sorted(kinds.items()))
        info["categories"][split] = dict(sorted(cats.items()))
        info["distractors"][split] = n_dis
        info["bilateral_phrases"][split] = n_bil
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CSV_COLUMNS, "split"])
    w.writerows(csv_rows)
    (d / "MS_CXR_Local_Alignment_v1.1.0.csv").write_text(buf.getvalue())
    return info


def _write_chestxray8(d: Path, sizes, S, seed, distractor_rate, bar) -> dict:
    _prepare_dir(d)
    (d / MARKER).write_text(f"medlib.synthetic.chest chestxray8 seed={seed} image_size={S}\n")
    (d / "images").mkdir()
    lines, k = [CXR8_HEADER], 0
    info = {"dir": "chestxray8", "splits": {}, "labels": {}, "distractors": {}}
    for split, n in sizes.items():
        names, labels = [], Counter()
        n_dis = 0
        for i, kind in enumerate(kinds_for_split(seed, "chestxray8", split, n)):
            smp, rng = draw_sample(seed, "chestxray8", split, i, kind, S, distractor_rate=distractor_rate)
            name = f"{k + 1:08d}_{int(rng.integers(0, 12)):03d}.png"
            (d / "images" / name).write_bytes(_png_bytes(smp.image))
            x, y, w, h = _xywh(smp.target.box)
            label = CXR8_LABEL[kind]
            lines.append(f"{name},{label},{float(x)!r},{float(y)!r},{float(w)!r},{float(h)!r}")
            names.append(name)
            labels[label] += 1
            n_dis += len(smp.distractors)
            k += 1
            bar.update(1)
        (d / f"{split}_list.txt").write_text("".join(f"{nm}\n" for nm in sorted(names)))
        info["splits"][split] = n
        info["labels"][split] = dict(sorted(labels.items()))
        info["distractors"][split] = n_dis
    (d / "BBox_List_2017.csv").write_text("\n".join(lines) + "\n")
    return info
