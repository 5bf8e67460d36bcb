"""Synthetic multi-modality reasoning-grounding benchmark in U-MRG-14K format.

``generate_umrg(root, sizes, image_size, seed)`` renders 2D images of four modalities
(:mod:`.mm_ct_slice` CT, :mod:`.mm_mri` brain MRI, :mod:`.mm_ultrasound` breast
ultrasound, :mod:`.mm_fundus` fundus photograph), each holding several instances of the
target class. The implicit question (:mod:`.mm_text`) needs a qualifier (size, side, depth,
brightness, position) to tell the target from its same-class distractors. Each sample gets
the target mask, its box, two interior key points (MedReasoner's: deepest point and a deep
point far from it), a chain-of-thought trace and the ``<answer>`` JSON, written exactly as
the release lays them out (:mod:`medlib.data.umrg`):

* ``root/images/<split>_<i>.png`` (grey, or RGB for fundus), ``root/masks/<split>_<i>.png``
  (0 / 255);
* ``root/<split>.parquet``: one row per sample (``prompt``, ``images`` / ``masks`` as HF
  ``Image`` structs with a relative ``path``, ``reward_model.ground_truth`` JSON with
  ``bbox_2d`` and ``point_2d``, ``extra_info`` with ``id``, ``supercategory``, ``category``,
  ``modality``, ``think``, ``answer``).

Sample ``i`` of a split is drawn from a generator seeded by (seed, split, i) and its
modality cycles CT, MRI, ultrasound, fundus; the same seed gives byte-identical files.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.umrg import umrg_row, write_umrg_parquet
from ..geometry import mask_to_box
from . import mm_ct_slice, mm_fundus, mm_mri, mm_ultrasound
from .mm_common import key_points
from .mm_text import answer_json, choose_target, question, reasoning

MODALITIES = {"CT": mm_ct_slice.make, "MRI": mm_mri.make, "ultrasound": mm_ultrasound.make, "fundus": mm_fundus.make}


def make_sample(modality: str, rng: np.random.Generator, size: int) -> dict:
    """Render one scene and pick a target a qualifier singles out (re-rendering if none)."""
    for _ in range(30):
        scene = MODALITIES[modality](rng, size)
        pick = choose_target(scene, rng)
        if pick is not None:
            break
    else:
        raise RuntimeError(f"no unambiguous target in 30 {modality} scenes")
    t, kind, direction = pick
    boxes = [mask_to_box(c.mask) for c in scene.candidates]
    target = scene.candidates[t]
    pts = key_points(target.mask)
    return {
        "scene": scene,
        "target": t,
        "qualifier": kind,
        "mask": target.mask,
        "box": boxes[t],
        "points": pts,
        "category": target.category or scene.category,
        "question": question(scene, kind, direction, rng),
        "think": reasoning(scene, kind, direction, t, boxes, pts),
        "answer": answer_json(boxes[t], pts),
    }


def generate_umrg(root: str | Path, sizes: dict[str, int], image_size: int = 224, seed: int = 0) -> dict:
    """Write the benchmark under ``root`` (module docstring); returns a summary with counts
    per split, modality, category and qualifier."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    mods = list(MODALITIES)
    summary = {"format": "umrg", "seed": seed, "image_size": image_size, "splits": {}, "modality": Counter(),
               "category": Counter(), "qualifier": Counter(), "distractors": Counter()}
    for split, n in sizes.items():
        rows = []
        for i in range(int(n)):
            rng = np.random.default_rng([seed, zlib.crc32(split.encode()), i])
            modality = mods[i % len(mods)]
            s = make_sample(modality, rng, image_size)
            name = f"{split}_{i:05d}.png"
            Image.fromarray(s["scene"].image).save(root / "images" / name)
            Image.fromarray(s["mask"].astype(np.uint8) * 255).save(root / "masks" / name)
            rows.append(
                umrg_row(
                    sample_id=f"synth_{split}_{i:05d}",
                    index=i,
                    split=split,
                    question=s["question"],
                    image=f"images/{name}",
                    mask=f"masks/{name}",
                    bbox=s["box"],
                    points=s["points"],
                    supercategory=s["scene"].supercategory,
                    category=s["category"],
                    modality=modality,
                    think=s["think"],
                    answer=s["answer"],
                    data_source="medlib-synthetic-umrg",
                )
            )
            summary["modality"][modality] += 1
            summary["category"][s["category"]] += 1
            summary["qualifier"][s["qualifier"]] += 1
            summary["distractors"][str(len(s["scene"].candidates) - 1)] += 1
        write_umrg_parquet(root / f"{split}.parquet", rows)
        summary["splits"][split] = int(n)
    for k in ("modality", "category", "qualifier", "distractors"):
        summary[k] = dict(sorted(summary[k].items()))
    return summary
