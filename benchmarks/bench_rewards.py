"""Reward cost of one GRPO step: 64 completions (16 prompts x G 4) through every reward.

Side by side, in one run:
* every non-model reward (MedGround-R1 format / spatial / iou; MedReasoner official-hard,
  paper-hard and base terms; MedVol-R1 format / axial / spatial), called once on the batch
  ("vectorised") and once per completion ("per-sample loop"); parse caches are cleared before
  every repeat, so each repeat is a fresh step;
* MedGround-R1's semantic reward with all crops in one scorer call, one CLIP image-tower forward
  per step ("batched"), vs one call and one forward per crop, for each ``--scorers`` spec (the
  small CLIP of ``load_scorer("embedded")`` and the deterministic test scorer by default);
* the one-off cost of preparing MedVol ground truth (foreground areas, component boxes).

Medians over ``--repeats``; writes ``results/benchmarks/rewards.json`` with machine info.

    python benchmarks/bench_rewards.py [--scorers embedded,mean-intensity] [--threads 1] [--repeats 50]

A ``--scorers`` entry is any spec :func:`medlib.semantic.load_scorer` accepts
("embedded" trains the small CLIP first if ``build/semantic/smoke_seed0`` is missing: minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from medlib.parsing import clear_parse_caches as _clear_parses
from medlib.paths import results_dir
from medlib.provenance import provenance
from medlib.rewards._common import clear_step_memos
from medlib.rewards.medground import MedGroundSemantic
from medlib.rewards.medvol import clear_target_cache
from medlib.rewards.registry import build_reward_set
from medlib.semantic import load_scorer

N_PROMPTS, G = 16, 4


def clear_parse_caches() -> None:
    """A fresh GRPO step: no parsed completion and no per-step result is cached."""
    _clear_parses()
    clear_step_memos()


TARGET_MS = 5.0


# ------------------------------------------------------------------------ the batch
def _conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _jitter(rng, box, s):
    return [int(v + rng.integers(-s, s + 1)) for v in box]


#: one referring phrase per prompt (MS-CXR style), so a step encodes 16 distinct texts
PHRASES = (
    "left upper lung opacity",
    "right lower lobe consolidation",
    "small left apical pneumothorax",
    "enlarged cardiac silhouette",
    "right pleural effusion",
    "nodule in the left mid lung zone",
    "bibasilar atelectasis",
    "dense right upper lobe opacity",
    "large left pleural effusion",
    "patchy opacity in the right mid lung",
    "left basilar consolidation",
    "right apical mass",
    "linear atelectasis in the left lower lung",
    "moderate right pneumothorax",
    "rounded opacity over the left hilum",
    "focal consolidation in the right lung base",
)


def medground_batch(rng) -> tuple[list, dict]:
    texts, cols = [], {"solution": [], "phrase": [], "image": []}
    for k in range(N_PROMPTS):
        img = rng.integers(0, 60, size=(512, 512), dtype=np.uint8)
        x, y = rng.integers(20, 300, size=2)
        gt = [int(x), int(y), int(x + rng.integers(40, 180)), int(y + rng.integers(40, 180))]
        img[gt[1] : gt[3], gt[0] : gt[2]] = 220
        variants = [
            f'<think>the opacity [{gt[0]}, {gt[1]}, {gt[2]}, {gt[3]}]</think><answer>{{"bbox": {gt}}}</answer>',
            '<think>look</think><answer>{"bbox": ' + str(_jitter(rng, gt, 30)) + "}</answer>",
            '```json\n[{"bbox_2d": ' + str(_jitter(rng, gt, 60)) + ', "label": "opacity"}]\n```',
            "<think>unsure</think><answer>I cannot tell</answer>",
        ]
        for v in variants[:G]:
            texts.append(_conv(v))
            cols["solution"].append(gt)
            cols["phrase"].append(PHRASES[k % len(PHRASES)])
            cols["image"].append(img)
    return texts, cols


def medreasoner_batch(rng) -> tuple[list, dict]:
    texts, cols = [], {"solution": [], "points": [], "model_size": []}
    for _ in range(N_PROMPTS):
        x, y = (int(v) for v in rng.integers(20, 600, size=2))
        gt = [x, y, x + int(rng.integers(30, 300)), y + int(rng.integers(30, 300))]
        pts = [[int(rng.integers(gt[0], gt[2])), int(rng.integers(gt[1], gt[3]))] for _ in range(2)]

        def js(b, p1, p2):
            return json.dumps({"bbox": b, "points_1": p1, "points_2": p2})

        variants = [
            f"<think>reasoning</think><answer>{js(gt, *pts)}</answer>",
            f"<think>reasoning</think><answer>{js(_jitter(rng, gt, 40), *pts)}</answer>".replace('"', "'"),
            f"<think> </think><answer>{js(_jitter(rng, gt, 120), [1, 2], 'x')}</answer>",
            "<think>refuse</think><answer>no region</answer>",
        ]
        for v in variants[:G]:
            texts.append(_conv(v))
            cols["solution"].append(gt)
            cols["points"].append(pts)
            cols["model_size"].append((896, 896))
    return texts, cols


def medvol_batch(rng) -> tuple[list, dict]:
    texts, cols = [], {"mask": []}
    zz, yy, xx = np.mgrid[0:64, 0:256, 0:256]
    for _ in range(N_PROMPTS):
        cz, cy, cx = int(rng.integers(20, 44)), int(rng.integers(60, 196)), int(rng.integers(60, 196))
        mask = ((zz - cz) / 10.0) ** 2 + ((yy - cy) / 30.0) ** 2 + ((xx - cx) / 25.0) ** 2 <= 1.0
        box = [cx - 25, cy - 30, cx + 26, cy + 31]
        variants = [
            {"key_slice": cz + 1, "bbox_2d_list": [box]},
            {"key_slice": cz + 4, "bbox_2d_list": [_jitter(rng, box, 10), [0, 0, 20, 20]]},
            {"key_slice": 2, "bbox_2d_list": []},
            None,
        ]
        for v in variants[:G]:
            body = "<slice 3> nothing" if v is None else json.dumps(v)
            texts.append(_conv(f"<think>scan</think><answer>{body}</answer>"))
            cols["mask"].append(mask)
    return texts, cols


# ------------------------------------------------------------------------ timing
def _rows(cols: dict, i: int) -> dict:
    return {k: [v[i]] for k, v in cols.items()}


def time_groups(groups: dict, repeats: int) -> tuple[dict, dict]:
    """Per repeat, a fresh step (caches cleared once), then every reward of every group on its
    batch, timed per reward; then, fresh again, every reward called once per completion.
    Also times each group alone from cold caches (the cost of a run that uses only that set)."""
    vec: dict[str, list[float]] = {}
    loop: dict[str, list[float]] = {}
    alone: dict[str, list[float]] = {g: [] for g in groups}
    per_row = {g: [_rows(cols, i) for i in range(len(texts))] for g, (_, texts, cols) in groups.items()}
    for _ in range(repeats):
        clear_parse_caches()
        for g, (funcs, texts, cols) in groups.items():
            for f in funcs:
                t0 = time.perf_counter()
                f(None, texts, **cols)
                vec.setdefault(f"{g}/{f.__name__}", []).append(time.perf_counter() - t0)
        clear_parse_caches()
        for g, (funcs, texts, _) in groups.items():
            for f in funcs:
                t0 = time.perf_counter()
                for c, row in zip(texts, per_row[g]):
                    f(None, [c], **row)
                loop.setdefault(f"{g}/{f.__name__}", []).append(time.perf_counter() - t0)
        for g, (funcs, texts, cols) in groups.items():
            clear_parse_caches()
            t0 = time.perf_counter()
            for f in funcs:
                f(None, texts, **cols)
            alone[g].append(time.perf_counter() - t0)
    ms = lambda xs: 1e3 * statistics.median(xs)  # noqa: E731

    def total(d: dict, prefix: str = "") -> list[float]:
        keys = [k for k in d if k.startswith(prefix)]
        return [sum(d[k][i] for k in keys) for i in range(repeats)]

    res = {}
    for g in groups:
        v, lp = total(vec, g + "/"), total(loop, g + "/")
        res[g] = {
            "alone_cold_ms": ms(alone[g]),
            "in_step_vectorised_ms": ms(v),
            "in_step_per_sample_ms": ms(lp),
            "speedup": statistics.median(lp) / statistics.median(v),
            "rewards": {
                k.split("/", 1)[1]: {"vectorised_ms": ms(vec[k]), "per_sample_ms": ms(loop[k])}
                for k in vec
                if k.startswith(g + "/")
            },
        }
    all_v, all_l = total(vec), total(loop)
    summary = {
        "reward_functions": len(vec),
        "vectorised_ms": ms(all_v),
        "per_sample_ms": ms(all_l),
        "speedup": statistics.median(all_l) / statistics.median(all_v),
        "target_ms": TARGET_MS,
        "meets_target": ms(all_v) < TARGET_MS,
    }
    return res, summary


class _CallCounter:
    """Counts, on one scorer instance, its ``similarity`` calls and (for an open_clip
    :class:`medlib.semantic.ClipScorer`) its image-tower forwards and their batch sizes."""

    def __init__(self, scorer):
        self.scorer, self.calls, self.forwards = scorer, 0, []
        self._patched = []
        self._wrap("similarity", lambda f: lambda *a, **k: (self._call(), f(*a, **k))[1])
        if hasattr(scorer, "encode_pixels"):
            self._wrap("encode_pixels", lambda f: lambda x: (self.forwards.append(int(x.shape[0])), f(x))[1])

    def _call(self):
        self.calls += 1

    def _wrap(self, name, make):
        self._patched.append(name)
        setattr(self.scorer, name, make(getattr(self.scorer, name)))

    def reset(self):
        self.calls, self.forwards = 0, []

    def restore(self):
        for name in self._patched:
            delattr(self.scorer, name)  # back to the class's method


def _fresh_step(scorer) -> None:
    """No parsed completion and no text embedding cached: every phrase of the step is new."""
    clear_parse_caches()
    cache = getattr(scorer, "_text_cache", None)
    if cache is not None:
        cache.clear()


def time_semantic(spec: str, texts, cols, repeats: int) -> dict:
    """MedGround-R1's semantic reward on the 64-completion batch: all crops in one scorer call
    (one image-tower forward) vs one reward call per completion (one forward per crop)."""
    t0 = time.perf_counter()
    scorer = load_scorer(spec, train_if_missing=True)
    load_s = time.perf_counter() - t0
    reward = MedGroundSemantic(scorer)
    per_row = [_rows(cols, i) for i in range(len(texts))]
    reward(None, texts, **cols)  # warm-up (first forward, allocator)
    counter = _CallCounter(scorer)
    batched, per_crop, b_calls, b_fw, p_calls, p_fw = [], [], [], [], [], []
    try:
        for _ in range(repeats):
            _fresh_step(scorer)
            counter.reset()
            t0 = time.perf_counter()
            r_batched = reward(None, texts, **cols)
            batched.append(time.perf_counter() - t0)
            b_calls.append(counter.calls)
            b_fw.append(list(counter.forwards))
            _fresh_step(scorer)
            counter.reset()
            t0 = time.perf_counter()
            r_single = [reward(None, [c], **row)[0] for c, row in zip(texts, per_row)]
            per_crop.append(time.perf_counter() - t0)
            p_calls.append(counter.calls)
            p_fw.append(list(counter.forwards))
    finally:
        counter.restore()
    pairs = [(a, b) for a, b in zip(r_batched, r_single) if a is not None and b is not None]
    info = getattr(scorer, "info", {}) or {}
    return {
        "scorer": spec,
        "scorer_class": type(scorer).__name__,
        "scorer_name": _shown(getattr(scorer, "name", None)),
        "scorer_architecture": info.get("architecture"),
        "scorer_training_steps": (info.get("training") or {}).get("steps"),
        "device": str(getattr(scorer, "device", "cpu")),
        "torch_threads": _torch_threads(),
        "load_seconds": load_s,
        "batched_ms": 1e3 * statistics.median(batched),
        "per_crop_ms": 1e3 * statistics.median(per_crop),
        "speedup": statistics.median(per_crop) / statistics.median(batched),
        # per crop: one call per completion with a usable box, i.e. the number of crops
        "scorer_calls_per_step": {
            "batched": statistics.median(b_calls),
            "per_crop": statistics.median(p_calls),
        },
        "image_forwards_per_step": (
            {
                "batched": statistics.median(map(len, b_fw)),
                "per_crop": statistics.median(map(len, p_fw)),
                "batched_forward_batch_size": b_fw[-1],
            }
            if hasattr(scorer, "encode_pixels")
            else None
        ),
        "max_abs_diff_batched_vs_per_crop": max((abs(a - b) for a, b in pairs), default=0.0),
    }


def _shown(name: str | None) -> str | None:
    """A scorer's name, as a path relative to the repository when it is a folder inside it."""
    from medlib.paths import REPO

    if not name:
        return None
    p = Path(name)
    return str(p.relative_to(REPO)) if p.is_absolute() and p.is_relative_to(REPO) else name


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def time_medvol_gt(cols, funcs, texts, repeats: int) -> float:
    """Cold ground truth: areas and component boxes of 16 volumes, as in a step's first call."""
    axial = next(f for f in funcs if f.__name__ == "medvol_spatial")
    out = []
    for _ in range(max(3, repeats // 10)):
        clear_target_cache()
        clear_parse_caches()
        t0 = time.perf_counter()
        axial(None, texts, **cols)
        out.append(time.perf_counter() - t0)
    clear_parse_caches()
    warm = []
    for _ in range(max(3, repeats // 10)):
        clear_parse_caches()
        t0 = time.perf_counter()
        axial(None, texts, **cols)
        warm.append(time.perf_counter() - t0)
    return 1e3 * (statistics.median(out) - statistics.median(warm))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--scorers",
        default="embedded,mean-intensity",
        help="comma-separated semantic scorer specs (default: the small CLIP trained on the embedded "
        "benchmark, trained first if missing, and the deterministic test scorer; on a GPU box add "
        "'default' for BiomedCLIP)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the CLIP scorer")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(results_dir("benchmarks") / "rewards.json"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    mg_texts, mg_cols = medground_batch(rng)
    mr_texts, mr_cols = medreasoner_batch(rng)
    mv_texts, mv_cols = medvol_batch(rng)
    groups = {
        "medground": (
            build_reward_set("medground", {"format": 1, "spatial": 1, "iou": 1})[0],
            mg_texts,
            mg_cols,
        ),
        "medreasoner_official_hard": (build_reward_set("medreasoner", mode="hard")[0], mr_texts, mr_cols),
        "medreasoner_paper_hard": (
            build_reward_set("medreasoner", mode="hard", variant="paper")[0],
            mr_texts,
            mr_cols,
        ),
        "medreasoner_base": (build_reward_set("medreasoner", mode="base")[0], mr_texts, mr_cols),
        "medvol": (build_reward_set("medvol", {"format": 1, "axial": 1, "spatial": 1})[0], mv_texts, mv_cols),
    }
    for funcs, texts, cols in groups.values():  # warm-up: imports, ground-truth caches
        for f in funcs:
            f(None, texts, **cols)
    res, summary = time_groups(groups, args.repeats)
    out = {
        "benchmark": "rewards",
        "command": " ".join(
            ["python benchmarks/bench_rewards.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": provenance(machine=True),
        "batch": {"completions": N_PROMPTS * G, "prompts": N_PROMPTS, "G": G, "seed": args.seed},
        "repeats": args.repeats,
        "statistic": "median over repeats; every repeat is a fresh step (parse caches and step memos cleared)",
        "definitions": {
            "vectorised": "each reward called once on the 64-completion batch",
            "per_sample": "each reward called once per completion (a batch of one), 64 calls",
            "in_step": "all groups run in one step: MedReasoner's three sets share the parsed completions",
            "alone_cold": "the group's rewards only, from cold caches (a run that uses this set)",
            "semantic_batched": "medground_semantic called once on the batch: all crops in one scorer call, "
            "one image-tower forward",
            "semantic_per_crop": "medground_semantic called once per completion: one forward per crop",
            "semantic_fresh_step": "parse caches and the scorer's text-embedding cache cleared before each "
            "timed call (16 new phrases per step)",
        },
        "groups": res,
        "all_non_model": summary,
        "medvol_ground_truth_cold_extra_ms": time_medvol_gt(
            mv_cols, groups["medvol"][0], mv_texts, args.repeats
        ),
        "semantic": {
            spec: time_semantic(spec, mg_texts, mg_cols, args.repeats)
            for spec in (x.strip() for x in args.scorers.split(","))
            if spec
        },
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(
        json.dumps(
            {k: out[k] for k in ("all_non_model", "semantic", "medvol_ground_truth_cold_extra_ms")}, indent=2
        )
    )
    for name, r in res.items():
        print(
            f"{name:27s} alone {r['alone_cold_ms']:6.3f} ms | in step: vectorised {r['in_step_vectorised_ms']:6.3f} ms,"
            f" per-sample {r['in_step_per_sample_ms']:8.3f} ms"
        )
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
