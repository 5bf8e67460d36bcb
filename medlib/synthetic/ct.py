"""Synthetic CT benchmark in M3D-RefSeg format (and optionally an M3D-Seg-style copy).

``generate_ct(root, sizes, shape, seed)`` writes CT-like volumes in HU (``[z, y, x]``:
body outline, fat, muscle, spine and ribs, bowel, liver, spleen, kidneys, optionally a
water-density cyst and an enhancing tumour inside an organ; see :mod:`.ct_anatomy`) with
explicit and implicit queries (:mod:`.ct_text`), laid out exactly as the real release so
:func:`medlib.data.m3d.load_m3d_refseg` reads both:

* ``root/<case>/ct.nii.gz`` (int16 HU) and ``root/<case>/mask.nii.gz`` (uint8 organ label
  map: 1 liver, 2 spleen, 3 right kidney, 4 left kidney; an organ's mask includes the lesions
  inside it), ``root/<case>/mask_lesions.nii.gz`` (5 cyst, 6 tumour; only when the case has a
  lesion; lesions overlap organs, so they need their own label map, which the CSV's ``Mask``
  column names), ``root/<case>/text.json`` (``{"<id>": description}``);
* ``root/M3D_RefSeg_<split>.csv`` (``Image, Mask, Mask_ID, Question_Type, Question,
  Answer``; one explicit (0) and one implicit (1) question per structure present);
* ``root/labels.json`` (``{"<id>": name}``, a medlib extension naming the mask ids);
* with ``seg_copy``: ``root/M3D_Seg/ct_synth/ct_synth.json`` and per case ``image.npy`` +
  ``mask_(6, X, Y, Z).npz`` (SegVol layout; channels liver, spleen, right kidney, left
  kidney, cyst, tumour, disjoint as in a single label map).

NIfTI files are gzip'd with mtime 0 and the index order is LPS (x toward the patient's
left), so the same seed gives byte-identical files and the affine knows left from right.
Each case is drawn from its own generator seeded by (seed, split, index).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from ..data.m3d import write_nifti_gz, write_refseg_csv, write_seg_case
from . import ct_anatomy as A
from .ct_text import describe, lesion_position, questions, structure_name

#: M3D-Seg-style copy: dataset id and channel names (label id = channel + 1)
SEG_ID = "ct_synth"
SEG_LABELS = ["liver", "spleen", "right kidney", "left kidney", "cyst", "tumour"]
MIN_VOXELS = 8


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def _lesions(case: A.Case, rng: np.random.Generator) -> list[A.Lesion]:
    """None, a cyst, a tumour or both; each centred inside its organ (checked on a 3x3x3
    probe grid), at most one of each kind so "the kidney that contains the cyst" is unique."""
    kinds = [["cyst"], ["tumour"], ["cyst", "tumour"], []][int(rng.choice(4, p=[0.3, 0.25, 0.2, 0.25]))]
    out: list[A.Lesion] = []
    for kind in kinds:
        organs, p = ([1, 3, 4], [0.4, 0.3, 0.3]) if kind == "cyst" else ([1, 3, 4, 2], [0.45, 0.25, 0.25, 0.05])
        for _ in range(20):
            organ = int(rng.choice(organs, p=p))
            big = organ == 1
            r_mm = rng.uniform(9, 20) if big else rng.uniform(7, 13)
            if kind == "tumour":
                r_mm *= 1.25
            rad = (r_mm / 192.0, r_mm / 192.0, r_mm / 240.0)
            c0 = A.organ_centre(case, organ)
            spread = (0.12, 0.1, 0.1) if big else (0.03, 0.03, 0.07)
            c = tuple(float(c0[i] + rng.uniform(-spread[i], spread[i])) for i in range(3))
            if any(np.linalg.norm(np.subtract(c, o.centre) / 0.12) < 1.0 for o in out):
                continue
            probe = A.Grid(*[np.array([c[i] - 0.7 * rad[i], c[i], c[i] + 0.7 * rad[i]]) for i in range(3)])
            owner = A.tissue_map(case, probe)[1]
            if all(owner[k] == organ for k in [(1, 1, 1), (0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]):
                out.append(A.Lesion(kind, organ, c, rad))
                break
    return out


def _normalise_m3d(a: np.ndarray) -> np.ndarray:
    """M3D-Seg's intensity normalisation: clip to the 0.05-99.95 percentiles of the voxels
    above the mean, then z-score with their mean and std."""
    fg = a[a > a.mean()]
    lo, hi = np.percentile(fg, [0.05, 99.95])
    return ((np.clip(a, lo, hi) - fg.mean()) / max(float(fg.std()), 1e-8)).astype(np.float32)


def make_case(shape, rng: np.random.Generator):
    """(hu int16, organ map, lesion map, facts per present structure) of one case."""
    case = A.sample_case(rng)
    case = A.with_lesions(case, _lesions(case, rng))
    grid = A.Grid.volume(shape)
    tis, organ, inst = A.tissue_map(case, grid)
    kind_ids = np.array([0] + [5 if lz.kind == "cyst" else 6 for lz in case.lesions], np.uint8)
    lesion = kind_ids[inst]
    hu = np.clip(np.rint(A.render_hu(tis, case, grid, rng)), -1024, 3071).astype(np.int16)
    facts: dict[int, dict] = {}
    for oid in A.ORGANS:
        if (organ == oid).sum() >= MIN_VOXELS:
            facts[oid] = {"contains": []}
    for lz in case.lesions:
        sid = 5 if lz.kind == "cyst" else 6
        m = lesion == sid
        if m.sum() < MIN_VOXELS or lz.organ not in facts:
            lesion[m] = 0
            continue
        zs = np.nonzero((organ == lz.organ).any(axis=(1, 2)))[0]
        ow = ((zs.min() + 0.5) / shape[0], (zs.max() + 0.5) / shape[0])
        facts[sid] = {"owner": lz.organ, "diameter_mm": int(round(2 * lz.radius[2] * 240.0 / 5) * 5) or 5,
                      "position": lesion_position(lz.organ, lz.centre[2], ow)}
        facts[lz.organ]["contains"].append(sid)
    return hu, organ, lesion, facts


def generate_ct(
    root: str | Path,
    sizes: dict[str, int],
    shape: tuple[int, int, int] = (48, 96, 96),
    seed: int = 0,
    seg_copy: bool = False,
) -> dict:
    """Write the benchmark under ``root`` (see the module docstring); returns a summary with
    volume and query counts per split and counts per structure and question type."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(s) for s in shape)
    spacing = A.spacing_mm(shape)
    names = {**A.ORGANS, **A.LESIONS}
    (root / "labels.json").write_text(json.dumps({str(k): v for k, v in names.items()}, indent=1) + "\n")
    summary = {"format": "m3d_refseg", "seed": seed, "shape": list(shape), "spacing_mm": list(spacing),
               "splits": {}, "structures": Counter(), "question_types": Counter(), "lesion_owner": Counter()}
    seg_lists: dict[str, list] = {}
    idx = 0
    for split, n in sizes.items():
        rows = []
        seg_lists[split] = []
        for i in range(int(n)):
            name = f"s{idx:04d}"
            idx += 1
            rng = _rng(seed, split, i)
            hu, organ, lesion, facts = make_case(shape, rng)
            cdir = root / name
            write_nifti_gz(cdir / "ct.nii.gz", hu, spacing)
            write_nifti_gz(cdir / "mask.nii.gz", organ, spacing)
            has_lesion = any(s in A.LESIONS for s in facts)
            if has_lesion:
                write_nifti_gz(cdir / "mask_lesions.nii.gz", lesion, spacing)
            texts = {str(s): describe(s, f) for s, f in sorted(facts.items())}
            (cdir / "text.json").write_text(json.dumps(texts, indent=1) + "\n")
            for sid in sorted(facts):
                mfile = "mask_lesions.nii.gz" if sid in A.LESIONS else "mask.nii.gz"
                for q in questions(sid, facts, rng):
                    rows.append({"Image": f"{name}/ct.nii.gz", "Mask": f"{name}/{mfile}", "Mask_ID": sid, **q})
                    summary["question_types"][q["Question_Type"]] += 1
                summary["structures"][structure_name(sid)] += 1
                if sid in A.LESIONS:
                    summary["lesion_owner"][f"{A.LESIONS[sid]} in {A.ORGANS[facts[sid]['owner']]}"] += 1
            if seg_copy:
                chans = np.stack([(organ == k) & (lesion == 0) for k in A.ORGANS] + [lesion == k for k in A.LESIONS])
                rel = f"{SEG_ID}/{name}"
                _, mpath = write_seg_case(root / "M3D_Seg" / rel, _normalise_m3d(hu.astype(np.float32)), chans)
                seg_lists[split].append({"image": f"{rel}/image.npy", "label": f"{rel}/{mpath.name}"})
        write_refseg_csv(root / f"M3D_RefSeg_{split}.csv", rows)
        summary["splits"][split] = {"volumes": int(n), "queries": len(rows)}
    if seg_copy:
        meta = {"name": f"{SEG_ID} Dataset", "description": "medlib synthetic CT (M3D-Seg layout)",
                "tensorImageSize": "4D", "modality": {"0": "CT"},
                "labels": {"0": "background", **{str(i + 1): n for i, n in enumerate(SEG_LABELS)}},
                **{f"num{k.capitalize()}": len(v) for k, v in seg_lists.items()}, **seg_lists}
        (root / "M3D_Seg" / SEG_ID / f"{SEG_ID}.json").write_text(json.dumps(meta, indent=1) + "\n")
        summary["seg_copy"] = str(Path("M3D_Seg") / SEG_ID)
    for k in ("structures", "question_types", "lesion_owner"):
        summary[k] = dict(sorted(summary[k].items()))
    return summary
