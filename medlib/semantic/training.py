"""Train the small CLIP that stands in for MedGround-R1's frozen MedCLIP on a CPU (Sec. 2.3).

No CLIP weights install offline (docs/offline_assets.md), so medlib trains one with
open_clip's own classes (``open_clip.CLIP``: a small ViT image tower, a small text transformer,
open_clip's BPE ``SimpleTokenizer``, whose vocabulary ships inside the open_clip wheel) on
(crop, phrase) pairs of the embedded chest benchmark:

* positives: the phrase's box, exact and jittered (edges moved by a few % of the box size,
  IoU >= 0.5 with the box), from the image at full and at half resolution (the CPU profiles
  render the benchmark at 112 as well as 224 pixels);
* hard negatives: crops of the same image that cover < 25% of every annotated region (the
  mirror box in the other lung, a box of the same size elsewhere, a random box), and regions
  of one image with their own phrases in the same batch (triplets that share one image);
* loss: symmetric InfoNCE with open_clip's learnable temperature (``logit_scale``); the
  text-to-image direction also ranks the phrase against the negative crops, and texts that
  occur several times in a batch count every crop of theirs as positive.

Embedded model (no hub, no download): ``ensure_embedded_clip(profile, seed)`` trains the small
CLIP of the profile's :data:`EMBEDDED_RECIPES` entry (a fixed step count on a fixed thread count, not a
time budget, so a seed gives the same model again) on the train split of the embedded chest benchmark
``build/data/<profile>_seed<seed>/chest`` (generated if missing) and caches it in
``build/semantic/<profile>_seed<seed>/``. Training is an explicit step: the GRPO stage calls it
(:func:`medlib.semantic.ensure_trained`) before a run that uses ``semantic_scorer: embedded``;
:func:`medlib.semantic.load_scorer` only loads, unless called with ``train_if_missing=True``.
Held-out evaluation is in :mod:`medlib.semantic.evaluation`; ``python -m medlib.semantic_train``
trains and evaluates (:mod:`medlib.semantic.cli`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import box_iou_pairs
from ..random_state import preserved_random_state
from .scorer import INFO_NAME, WEIGHTS_NAME, ClipScorer, as_rgb_uint8, pixel_boxes

Triplet = tuple[np.ndarray, Sequence[float], str]  # (image, xyxy box in its pixels, phrase)


@dataclass
class SmallClipConfig:
    """Architecture of the small CLIP (open_clip ``CLIPVisionCfg`` / ``CLIPTextCfg`` values)."""

    image_size: int = 64  # crops are squashed to image_size x image_size
    patch_size: int = 8
    vision_width: int = 96
    vision_layers: int = 3
    text_width: int = 96
    text_layers: int = 3
    head_width: int = 32
    embed_dim: int = 96
    context_length: int = 32  # BPE tokens; benchmark phrases need at most ~16
    mean: float = 0.5  # grey radiographs: the same normalisation on the three channels
    std: float = 0.25

    def model_cfg(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.vision_width,
                "layers": self.vision_layers,
                "head_width": self.head_width,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": 49408,  # open_clip SimpleTokenizer (bpe_simple_vocab_16e6)
                "width": self.text_width,
                "heads": max(1, self.text_width // self.head_width),
                "layers": self.text_layers,
            },
        }

    def preprocess_cfg(self) -> dict:
        return {
            "size": self.image_size,
            "mode": "RGB",
            "mean": [self.mean] * 3,
            "std": [self.std] * 3,
            "interpolation": "bicubic",
            "resize_mode": "squash",  # keep the whole box (a centre crop would cut tall boxes)
            "fill_color": 0,
        }


def build_small_clip(config: SmallClipConfig, seed: int = 0) -> ClipScorer:
    """A randomly initialised small CLIP wrapped as a :class:`ClipScorer` (CPU)."""
    import open_clip

    torch.manual_seed(seed)
    mcfg, pcfg = config.model_cfg(), config.preprocess_cfg()
    model = open_clip.CLIP(**mcfg)
    open_clip.model.set_model_preprocess_cfg(model, pcfg)
    preprocess = open_clip.image_transform(
        pcfg["size"], is_train=False, mean=pcfg["mean"], std=pcfg["std"],
        resize_mode=pcfg["resize_mode"], interpolation=pcfg["interpolation"],
    )
    tokenizer = open_clip.SimpleTokenizer(context_length=config.context_length)
    return ClipScorer(model, tokenizer, preprocess, model_cfg=mcfg, preprocess_cfg=pcfg,
                      name="medlib small CLIP", device="cpu")


# ----------------------------------------------------------------------------- boxes
def _coverage(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of each box in ``b`` (M, 4) covered by box ``a`` (4,)."""
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    area = np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9, None)
    return iw * ih / area


def jitter_box(box, w: int, h: int, rng: np.random.Generator, scale: float = 0.1, min_iou: float = 0.5):
    """The box with each edge moved by N(0, scale * side), clipped, IoU >= min_iou."""
    b = np.asarray(box, dtype=np.float64)
    bw, bh = b[2] - b[0], b[3] - b[1]
    for _ in range(10):
        c = b + rng.normal(0, scale, 4) * np.array([bw, bh, bw, bh])
        c = np.clip(c, 0, [w, h, w, h])
        if c[2] - c[0] >= 2 and c[3] - c[1] >= 2 and box_iou_pairs(c[None], b[None])[0] >= min_iou:
            return c
    return b


def negative_box(known: np.ndarray, ref, w: int, h: int, rng: np.random.Generator, kind: str,
                 max_cover: float = 0.25) -> np.ndarray:
    """A box of ``kind`` ("mirror": the reference box mirrored left-right; "same_size": the
    reference size at a random place; "random": any size and place) covering less than
    ``max_cover`` of every known region; the least-covering of 30 draws if none qualifies."""
    r = np.asarray(ref, dtype=np.float64)
    rw, rh = max(r[2] - r[0], 2.0), max(r[3] - r[1], 2.0)
    best, best_cover = None, np.inf
    for t in range(30):
        if kind == "mirror" and t == 0:
            c = np.array([w - r[2], r[1], w - r[0], r[3]])
        else:
            if kind == "random" or (kind == "mirror" and t % 2):
                bw, bh = rng.uniform(0.06, 0.6) * w, rng.uniform(0.06, 0.6) * h
            else:
                bw = min(rw * math.exp(rng.uniform(-0.3, 0.3)), w - 1)
                bh = min(rh * math.exp(rng.uniform(-0.3, 0.3)), h - 1)
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            c = np.array([x1, y1, x1 + bw, y1 + bh])
        cover = float(_coverage(c, known).max()) if len(known) else 0.0
        if cover < max_cover:
            return c
        if cover < best_cover:
            best, best_cover = c, cover
    return best


# ----------------------------------------------------------------------------- crop pool
@dataclass
class CropPool:
    """Pre-resized uint8 crops: ``pos`` (T, P, S, S, C), ``neg`` (T, K, S, S, C); C = 1 when
    every image is grey. ``text_id`` (T,) indexes ``texts``; ``siblings[t]``: other triplets of
    the same image."""

    pos: np.ndarray
    neg: np.ndarray
    text_id: np.ndarray
    texts: list[str]
    siblings: list[list[int]]


def _resize_pil(scorer: ClipScorer, arrays: list[np.ndarray]) -> np.ndarray:
    from PIL import Image

    return scorer.pixel_arrays([Image.fromarray(a) for a in arrays])


def build_crop_pool(
    scorer: ClipScorer,
    triplets: Sequence[Triplet],
    *,
    pos_views: int = 4,
    neg_views: int = 2,
    jitter: float = 0.08,
    half_res_prob: float = 0.5,
    seed: int = 0,
) -> CropPool:
    """Crops of every triplet through the scorer's own transform (see module docstring)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    by_image: dict[int, list[int]] = defaultdict(list)
    for t, (img, _, _) in enumerate(triplets):
        by_image[id(img)].append(t)
    texts = list(dict.fromkeys(str(p) for _, _, p in triplets))
    index = {p: i for i, p in enumerate(texts)}
    pos_list, neg_list, grey = [], [], True
    half_cache: dict[int, np.ndarray] = {}
    for t, (img, box, _) in enumerate(triplets):
        full = as_rgb_uint8(img)
        if full is None:
            raise ValueError(f"triplet {t}: image is not an HxW or HxWx3 array")
        h, w = full.shape[:2]
        known = np.array([triplets[s][1] for s in by_image[id(img)]], dtype=np.float64).reshape(-1, 4)
        _, ok = pixel_boxes([box], [(h, w)])
        if not ok[0]:
            raise ValueError(f"triplet {t}: box {list(box)} is empty inside the {w}x{h} image")
        boxes = [np.asarray(box, float)] + [jitter_box(box, w, h, rng, jitter) for _ in range(pos_views - 1)]
        kinds = ["mirror", "same_size", "random"]
        boxes += [negative_box(known, box, w, h, rng, kinds[k % 3]) for k in range(neg_views)]
        crops = []
        for b in boxes:
            src, f = full, 1.0
            if rng.random() < half_res_prob and min(h, w) >= 64:
                if id(img) not in half_cache:
                    half_cache = {id(img): np.asarray(Image.fromarray(full).resize((w // 2, h // 2), Image.BILINEAR))}
                src, f = half_cache[id(img)], 0.5
            wins, ok = pixel_boxes([b * f], [src.shape[:2]])
            win = wins[0] if ok[0] else (0, 0, src.shape[1], src.shape[0])
            crops.append(src[win[1] : win[3], win[0] : win[2]])
        arr = _resize_pil(scorer, crops)
        grey = grey and bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all())
        pos_list.append(arr[:pos_views])
        neg_list.append(arr[pos_views:])
    pos, neg = np.stack(pos_list), np.stack(neg_list)
    if grey:
        pos, neg = pos[..., :1].copy(), neg[..., :1].copy()
    siblings = [[s for s in by_image[id(triplets[t][0])] if s != t] for t in range(len(triplets))]
    text_id = np.array([index[str(p)] for _, _, p in triplets])
    return CropPool(pos, neg, text_id, texts, siblings)


# ----------------------------------------------------------------------------- training
def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, img_text: torch.Tensor, n_pos: int,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP, Radford et al. 2021) with several positives per text.

    ``img`` (n_pos + n_neg, D) normalised crops, the first ``n_pos`` with text index
    ``img_text`` into ``txt`` (T, D); the rest are negatives for every text. Image->text:
    cross-entropy over the T texts. Text->image: -log of the softmax mass on the text's own
    crops, over all crops.
    """
    logits = logit_scale.exp().clamp(max=100.0) * img @ txt.T  # (n_img, T)
    i2t = F.cross_entropy(logits[:n_pos], img_text)
    pos = torch.zeros_like(logits, dtype=torch.bool)
    pos[torch.arange(n_pos), img_text] = True
    t_logits = logits.T  # (T, n_img)
    t2i = (torch.logsumexp(t_logits, 1) - torch.logsumexp(t_logits.masked_fill(~pos.T, -torch.inf), 1)).mean()
    return 0.5 * (i2t + t2i)


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def _batch_pixels(scorer: ClipScorer, arr: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """uint8 crops -> normalised tensor, with a small per-crop contrast/brightness jitter."""
    x = torch.from_numpy(arr)
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    n = x.shape[0]
    c = torch.from_numpy(rng.uniform(0.85, 1.15, (n, 1, 1, 1))).float()
    b = torch.from_numpy(rng.uniform(-0.06, 0.06, (n, 1, 1, 1))).float()
    x = ((x - 0.5) * c + 0.5 + b).clamp_(0, 1)
    return scorer._tensor_stage(x)


def train_small_clip(
    triplets: Sequence[Triplet],
    out_dir: str | Path | None,
    *,
    config: SmallClipConfig | None = None,
    steps: int | None = None,
    minutes: float = 5.0,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup: int = 20,
    pos_views: int = 4,
    neg_views: int = 2,
    half_res_prob: float = 0.5,
    seed: int = 0,
    threads: int | None = 1,
    progress: bool = True,
) -> ClipScorer:
    """Train a small CLIP on (image, xyxy box, phrase) triplets and save it to ``out_dir``
    (the folder :meth:`ClipScorer.from_dir` reads; None: do not save).

    ``steps=None`` runs as many steps as fit in ``minutes`` (timed over the first steps; the
    step count is recorded in ``scorer.info`` so ``steps=`` repeats the run exactly). Triplets
    that share one image array (the same object) are regions of one image: negatives avoid
    all of them, and each is put in a batch with a sibling when it has one.
    """
    if len(triplets) < 2:
        raise ValueError(f"need at least 2 triplets to train a contrastive model, got {len(triplets)}")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(triplets, out_dir, config=config or SmallClipConfig(), steps=steps, minutes=minutes,
                      batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup=warmup,
                      pos_views=pos_views, neg_views=neg_views, half_res_prob=half_res_prob, seed=seed,
                      progress=progress)
    finally:
        torch.set_num_threads(before)  # a notebook that triggers training keeps its own setting


def _train(triplets: Sequence[Triplet], out_dir: str | Path | None, *, config: SmallClipConfig,
           steps: int | None, minutes: float, batch_size: int, lr: float, weight_decay: float, warmup: int,
           pos_views: int, neg_views: int, half_res_prob: float, seed: int, progress: bool) -> ClipScorer:
    from tqdm.auto import tqdm

    scorer = build_small_clip(config, seed)
    t0 = time.time()
    pool = build_crop_pool(scorer, triplets, pos_views=pos_views, neg_views=neg_views,
                           half_res_prob=half_res_prob, seed=seed)
    pool_s = time.time() - t0
    tokens = scorer.tokenizer(pool.texts)
    model = scorer.model
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)
    rng = np.random.default_rng(seed + 1)
    T = len(triplets)
    B = min(batch_size, T)
    total = steps if steps is not None else 10**9
    budget = minutes * 60.0
    losses: list[float] = []
    bar = tqdm(desc="small CLIP", total=steps, disable=not progress, leave=False)
    t_start, stopped_by_time, step = time.time(), False, 0
    while step < total:
        anchors = rng.choice(T, size=max(1, B // 2), replace=False)
        chosen = dict.fromkeys(int(a) for a in anchors)
        for a in anchors:
            if pool.siblings[a] and len(chosen) < B:
                chosen.setdefault(int(rng.choice(pool.siblings[a])))
        while len(chosen) < B:
            chosen.setdefault(int(rng.integers(T)))
        idx = np.fromiter(chosen, dtype=np.int64)
        pos = pool.pos[idx, rng.integers(pos_views, size=len(idx))]
        neg = pool.neg[anchors, rng.integers(neg_views, size=len(anchors))] if neg_views else pos[:0]
        x = _batch_pixels(scorer, np.concatenate([pos, neg]), rng)
        uniq, img_text = np.unique(pool.text_id[idx], return_inverse=True)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, total if steps is not None else max(total, warmup + 1), lr, warmup)
        img = model.encode_image(x, normalize=True)
        txt = model.encode_text(tokens[torch.from_numpy(uniq)], normalize=True)
        loss = contrastive_loss(img, txt, torch.from_numpy(img_text), len(idx), model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100.0))
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        elapsed = time.time() - t_start
        if steps is None and step == 5:  # calibrate the step count to the time budget
            total = max(warmup + 1, int(budget / (elapsed / 5)))
        if steps is None and elapsed > 1.15 * budget:  # a given step count is never cut short
            stopped_by_time = True
            break
    bar.close()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    scorer._text_cache.clear()
    scorer.info = {
        "architecture": asdict(config),
        "tokenizer": "open_clip SimpleTokenizer (BPE bpe_simple_vocab_16e6.txt.gz, shipped in the open_clip wheel)",
        "training": {
            "triplets": T, "distinct_phrases": len(pool.texts), "steps": step, "batch_size": B,
            "lr": lr, "weight_decay": weight_decay, "warmup": warmup, "pos_views": pos_views,
            "neg_views": neg_views, "half_res_prob": half_res_prob, "seed": seed,
            "threads": torch.get_num_threads(), "pool_seconds": round(pool_s, 1),
            "train_seconds": round(time.time() - t_start, 1), "stopped_by_time": stopped_by_time,
            "loss_first10": float(np.mean(losses[:10])), "loss_last10": float(np.mean(losses[-10:])),
            "logit_scale": float(model.logit_scale.exp()),
        },
    }
    if out_dir is not None:
        scorer.save(out_dir)
    return scorer


# ----------------------------------------------------------------------------- benchmark
def chest_triplets(bench_root: str | Path, split: str, part: str = "ms_cxr") -> tuple[list[Triplet], list[str]]:
    """(image, box, phrase) triplets and class labels of one split of the chest benchmark
    (``part`` "ms_cxr": phrase = referring phrase, label = MS-CXR category; "chestxray8":
    phrase = finding label in lower case, label = finding label)."""
    root = Path(bench_root)
    if part == "ms_cxr":
        from ..data.mscxr import load_mscxr

        records = load_mscxr(root / "ms_cxr", split)
    elif part == "chestxray8":
        from ..data.chestxray8 import load_chestxray8

        records = load_chestxray8(root / "chestxray8", split)
    else:
        raise ValueError(f"part must be 'ms_cxr' or 'chestxray8', got {part!r}")
    trip, labels = [], []
    for r in records:
        img = r.load_image()
        for box in r.boxes:
            trip.append((img, tuple(box), r.query))
            labels.append(r.label or r.query)
    return trip, labels


# ----------------------------------------------------------------------------- embedded model
@dataclass(frozen=True)
class EmbeddedRecipe:
    """How the embedded small CLIP of one benchmark profile is trained: a fixed step count (not
    a time budget) on a fixed number of CPU threads (a thread count splits float sums its own
    way), so a seed gives the same model again."""

    config: SmallClipConfig
    steps: int
    threads: int = 2  # 2 trains the smoke model in about half the time of 1 on a 2-core machine
    batch_size: int = 128
    lr: float = 1e-3
    pos_views: int = 4
    neg_views: int = 2
    half_res_prob: float = 0.5
    parts: tuple[str, ...] = ("ms_cxr", "chestxray8")

    def train_kwargs(self) -> dict[str, Any]:
        return {"config": self.config, "steps": self.steps, "threads": self.threads, "batch_size": self.batch_size,
                "lr": self.lr, "pos_views": self.pos_views, "neg_views": self.neg_views, "half_res_prob": self.half_res_prob}

    def describe(self, profile: str, seed: int) -> dict[str, Any]:
        """What identifies a cached model (stored in its ``medlib_semantic.json``)."""
        d = asdict(self)
        d["parts"] = list(self.parts)
        return {"profile": profile, "seed": seed, **d}


#: one recipe per benchmark profile (:data:`medlib.synthetic.PROFILES`); "smoke" is the CPU
#: default (one to two minutes on 2 CPU threads, see results/semantic_clip.json)
EMBEDDED_RECIPES: dict[str, EmbeddedRecipe] = {
    "tiny": EmbeddedRecipe(SmallClipConfig(image_size=32, patch_size=8, vision_width=64, vision_layers=2,
                                           text_width=64, text_layers=2, head_width=32, embed_dim=64,
                                           context_length=20),
                           steps=60, batch_size=32, lr=2e-3, pos_views=4, neg_views=2, half_res_prob=0.0),
    "smoke": EmbeddedRecipe(SmallClipConfig(), steps=180),
    "full": EmbeddedRecipe(SmallClipConfig(), steps=600),
}
#: where embedded models are cached (``<EMBEDDED_DIR>/<profile>_seed<seed>/``) and where the
#: benchmark they train on is written (``<BENCH_ROOT>/<profile>_seed<seed>/chest``), relative to
#: the repository root (the ``BENCH_ROOT`` of ``configs/profiles``)
EMBEDDED_DIR = "build/semantic"
BENCH_ROOT = "build/data"


def recipe_for(profile: str) -> EmbeddedRecipe:
    if profile not in EMBEDDED_RECIPES:
        raise ValueError(f"no embedded small-CLIP recipe for profile {profile!r}; choose one of "
                         f"{sorted(EMBEDDED_RECIPES)}")
    return EMBEDDED_RECIPES[profile]


def embedded_model_dir(profile: str = "smoke", seed: int = 0, root: str | Path | None = None) -> Path:
    """``build/semantic/<profile>_seed<seed>`` (or under ``root``)."""
    from ..paths import repo_path

    return repo_path(root if root is not None else EMBEDDED_DIR) / f"{profile}_seed{seed}"


def embedded_chest_root(profile: str = "smoke", seed: int = 0, bench_root: str | Path | None = None) -> Path:
    """The chest part of the embedded benchmark, written first if it is not there."""
    from ..synthetic import benchmark_dir, build_benchmark

    root = bench_root if bench_root is not None else BENCH_ROOT
    build_benchmark(root, profile=profile, seed=seed, parts=("chest",))
    return benchmark_dir(root, profile, seed) / "chest"


def train_embedded_clip(profile: str = "smoke", seed: int = 0, *, out_dir: str | Path | None = None,
                        bench_root: str | Path | None = None, steps: int | None = None,
                        progress: bool = True) -> ClipScorer:
    """Train the small CLIP of ``profile``'s recipe on the train split of the embedded chest
    benchmark (generated if missing) and save it to ``out_dir`` (default
    :func:`embedded_model_dir`; written to a temporary folder and renamed, so a reader never
    sees half a model). ``steps`` overrides the recipe's step count."""
    import dataclasses
    import shutil

    recipe = recipe_for(profile)
    if steps is not None:
        recipe = dataclasses.replace(recipe, steps=steps)
    chest = embedded_chest_root(profile, seed, bench_root)
    train: list[Triplet] = []
    for part in recipe.parts:
        train += chest_triplets(chest, "train", part)[0]
    t0 = time.time()
    scorer = train_small_clip(train, None, seed=seed, progress=progress, **recipe.train_kwargs())
    scorer.info["embedded"] = recipe.describe(profile, seed)
    scorer.info["training"]["seconds_with_pool"] = round(time.time() - t0, 1)
    out = Path(out_dir) if out_dir is not None else embedded_model_dir(profile, seed)
    tmp, old = (out.with_name(f".{out.name}.{tag}{os.getpid()}") for tag in ("tmp", "old"))
    shutil.rmtree(tmp, ignore_errors=True)
    scorer.save(tmp)
    try:
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except OSError:
        if not (out / WEIGHTS_NAME).is_file():  # not a concurrent run that finished first
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    scorer.name = str(out)
    return scorer


def embedded_clip_is_current(profile: str = "smoke", seed: int = 0, *, root: str | Path | None = None) -> bool:
    """True when the cache folder holds weights trained by ``profile``'s current recipe."""
    recipe = recipe_for(profile)
    d = embedded_model_dir(profile, seed, root)
    try:
        info = json.loads((d / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    wanted = json.loads(json.dumps(recipe.describe(profile, seed)))  # tuples as JSON lists
    return info.get("embedded") == wanted and (d / WEIGHTS_NAME).is_file()


def ensure_embedded_clip(profile: str = "smoke", seed: int = 0, *, root: str | Path | None = None,
                         bench_root: str | Path | None = None, progress: bool = True) -> Path:
    """The folder of the embedded small CLIP of ``profile`` and ``seed``, trained there first
    when it is missing or was made by another recipe (smoke: 180 steps, one to two minutes on
    2 CPU threads; tiny: seconds). What ``load_scorer("embedded[:<profile>[:<seed>]]")`` loads."""
    d = embedded_model_dir(profile, seed, root)
    if embedded_clip_is_current(profile, seed, root=root):
        return d
    # trained on first use, often inside a GRPO reward call: keep the caller's random streams as
    # they were, so that a run gives the same completions whether or not the model was cached
    with preserved_random_state():
        train_embedded_clip(profile, seed, out_dir=d, bench_root=bench_root, progress=progress)
    return d
