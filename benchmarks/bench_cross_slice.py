"""MedVol-R1's R_c per GRPO step: the step-batched path against one propagation per completion.

The MedVol-R1 smoke config's training volumes, ``--prompts`` a step x G 4 completions each, written
as an SFT start answers (a key slice among the 3 shown slices with the most target, that slice's
ground-truth component boxes in the model frame, each corner moved by up to 2 px; seeded). Steps
take the volumes in order; ``--recur`` more steps repeat the first ones, as the next epoch does.

* ``per_completion``: the code before the step batching: ``propagate_3d`` per completion, the
  config's ``max_propagation_distance``, a 64-entry embedding cache;
* ``batched``: :class:`~medlib.rewards.medvol.MedVolCrossSlice` as it is (``propagate_many``:
  each slice encoded at most once a step, the decoder batched, propagation cut at the window,
  a 512 MB cache).

Per step: seconds, LiteMedSAM encoder calls, distinct (volume, slice) pairs in the windows, and
whether the two paths' rewards are equal. Writes ``results/benchmarks/cross_slice.json``.

    python benchmarks/bench_cross_slice.py [--steps 2] [--recur 1] [--prompts 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

import numpy as np

from medlib.paths import repo_path, results_dir
from medlib.provenance import write_json

G = 4
_VOLUMES: dict[str, np.ndarray] = {}


def completions(records, n_slices: int, slice_size: int, rng) -> tuple[list[str], dict]:
    """G SFT-like answers per record and the reward columns."""
    from medlib import prompts
    from medlib.geometry import mask_to_boxes
    from medlib.train.datasets import uniform_slices

    texts, cols = [], {"mask": [], "volume": [], "slice_indices": [], "model_size": []}
    for rec in records:
        if str(rec.volume_path) not in _VOLUMES:  # one array per file, as the reward's volume_path reader
            _VOLUMES[str(rec.volume_path)] = np.asarray(rec.load_volume())
        vol = _VOLUMES[str(rec.volume_path)]
        gt = np.asarray(rec.load_mask(), dtype=bool)
        shown = uniform_slices(vol.shape[0], n_slices)
        areas = gt[shown].reshape(len(shown), -1).sum(axis=1)
        top = [int(i) for i in np.argsort(-areas)[:3] if areas[i] > 0] or [int(np.argmax(areas))]
        scale = np.array([slice_size / vol.shape[2], slice_size / vol.shape[1]] * 2)
        for _ in range(G):
            pos = int(rng.choice(top))
            boxes = mask_to_boxes(gt[shown[pos]]) * scale + rng.integers(-2, 3, size=(1, 4))
            texts.append(prompts.medvol_answer(pos + 1, np.rint(boxes).astype(int).tolist()))
            cols["mask"].append(gt)
            cols["volume"].append(vol)
            cols["slice_indices"].append(shown)
            cols["model_size"].append([slice_size, slice_size])
    return texts, cols


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="configs/medvol/smoke.yaml")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--recur", type=int, default=1, help="steps repeating the first steps' volumes")
    ap.add_argument("--prompts", type=int, default=2, help="prompts a step (the smoke config's batch)")
    ap.add_argument("--out", default=str(results_dir() / "benchmarks" / "cross_slice.json"))
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    import torch

    from medlib.rewards.medvol import MedVolCrossSlice
    from medlib.segment import LiteMedSAMSegmenter
    from medlib.train.config import load_config
    from medlib.train.datasets import load_records

    cfg = load_config(repo_path(args.config))
    opts = cfg.grpo.reward_options
    delta, window = int(opts.get("delta", 5)), str(opts.get("window", "sampled"))
    cap = (opts.get("segmenter") or {}).get("max_propagation_distance") if isinstance(opts.get("segmenter"), dict) else None
    records = load_records(cfg, cfg.data.train_split)
    rng = np.random.default_rng(0)
    order = list(range(args.steps)) + list(range(min(args.recur, args.steps)))
    old_seg = LiteMedSAMSegmenter(max_propagation_distance=cap, cache_size=64)
    new_seg = LiteMedSAMSegmenter()
    old = MedVolCrossSlice(old_seg, delta, window=window, batched=False)
    new = MedVolCrossSlice(new_seg, delta, window=window)
    load0 = os.getloadavg()
    steps = []
    for i, s in enumerate(order):
        recs = records[s * args.prompts : (s + 1) * args.prompts]
        texts, cols = completions(recs, cfg.data.n_slices, cfg.data.slice_size, rng)
        row = {"step": i, "volumes": [r.sample_id for r in recs], "recurring": i >= args.steps}
        for name, reward, seg in (("per_completion", old, old_seg), ("batched", new, new_seg)):
            calls0, t0 = seg.encoder_calls, time.perf_counter()
            vals = reward(None, texts, **cols)
            row[name] = {"seconds": round(time.perf_counter() - t0, 2), "encoder_calls": seg.encoder_calls - calls0,
                         "rewards": [None if v is None else round(v, 6) for v in vals]}
        row["distinct_window_slices"] = new.last_stats["distinct_window_slices"]
        row["propagations"] = new.last_stats["propagations"]
        row["boxes"] = new.last_stats["boxes"]
        row["rewards_equal"] = row["per_completion"]["rewards"] == row["batched"]["rewards"]
        steps.append(row)
        print(json.dumps({k: row[k] for k in ("step", "distinct_window_slices", "rewards_equal")}
                         | {p: {k: row[p][k] for k in ("seconds", "encoder_calls")} for p in ("per_completion", "batched")}),
              flush=True)
    result = {"benchmark": "cross_slice", "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/bench_cross_slice.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "config": args.config, "delta": delta, "window": window, "completions_per_step": args.prompts * G,
              "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "note": args.note, "steps": steps}
    print(f"wrote {write_json(args.out, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
