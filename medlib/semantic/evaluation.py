"""Held-out evaluation of a semantic scorer: does it rank a crop's own phrase first, and does it
score the ground-truth box above other boxes of the same image? (What MedGround-R1's semantic
reward, Sec. 2.3, needs from its frozen CLIP; docs/medground_r1.md.)"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .scorer import ClipScorer, as_rgb_uint8
from .training import SmallClipConfig, Triplet, build_small_clip, chest_triplets, negative_box


def normalise_phrase(p: str) -> str:
    """Lower case, single spaces: what open_clip's tokenizer sees (``clean="lower"``)."""
    return " ".join(str(p).lower().split())


def _crop_embeddings(scorer: ClipScorer, triplets: Sequence[Triplet], chunk: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(triplets), chunk):
        part = triplets[i : i + chunk]
        emb, _ = scorer.encode_crops([t[0] for t in part], np.array([t[1] for t in part], float))
        out.append(emb)
    return torch.cat(out)


_SIDES = ("left", "right", "bilateral", "both")


def laterality(phrase: str) -> frozenset[str]:
    """The side words of a phrase ("right-sided" counts as "right"; "both" as "bilateral")."""
    words = set(re.findall(r"[a-z]+", str(phrase).lower()))
    return frozenset("bilateral" if w == "both" else w for w in words & set(_SIDES))


def retrieval_metrics(
    scorer: ClipScorer,
    triplets: Sequence[Triplet],
    labels: Sequence[str] | None = None,
    class_prompts: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Held-out retrieval: is each crop's own phrase ranked first among the distinct phrases
    of the set (``phrase_top1``, chance 1 / number of phrases)? And, with ``labels``, is its
    class ranked first among the classes (each class a mean of the text embeddings of
    ``class_prompts[label]``, e.g. the training phrases of that class; ``class_name_top1``
    uses the class name itself as the prompt)? The benchmark words one finding in many ways
    ("cardiomegaly", "enlarged cardiac silhouette"), so ``phrase_top1_same_class_side`` also
    counts a first-ranked phrase of the same class and the same side words as a hit (chance:
    the mean fraction of such candidates)."""
    crops = _crop_embeddings(scorer, triplets)
    norm = [normalise_phrase(t[2]) for t in triplets]
    cands = sorted(set(norm))
    pos = {p: i for i, p in enumerate(cands)}
    sims = crops @ scorer.encode_texts(cands).T
    own = sims[torch.arange(len(norm)), torch.tensor([pos[p] for p in norm])]
    rank = 1 + (sims > own[:, None]).sum(1).numpy()
    out: dict[str, Any] = {
        "n": len(triplets),
        "phrase_candidates": len(cands),
        "phrase_top1": float(np.mean(rank == 1)),
        "phrase_top5": float(np.mean(rank <= 5)),
        "phrase_mrr": float(np.mean(1.0 / rank)),
        "phrase_median_rank": float(np.median(rank)),
        "phrase_chance_top1": 1.0 / len(cands),
        "phrase_chance_top5": min(1.0, 5.0 / len(cands)),
    }
    if labels is not None:
        classes = sorted(set(labels))
        y = torch.tensor([classes.index(c) for c in labels])
        counts = Counter(labels)
        out |= {"classes": classes, "class_chance": 1.0 / len(classes),
                "class_majority": max(counts.values()) / len(labels)}
        name_emb = scorer.encode_texts([c.lower() for c in classes])
        out["class_name_top1"] = float(((crops @ name_emb.T).argmax(1) == y).float().mean())
        cand_labels: dict[str, set[str]] = defaultdict(set)
        for p, c in zip(norm, labels):
            cand_labels[p].add(c)
        side = {p: laterality(p) for p in cands}
        equivalent = np.array([[bool(cand_labels[p] & cand_labels[q]) and side[p] == side[q] for q in cands]
                               for p in norm])  # (n, candidates)
        first = sims.argmax(1).numpy()
        out["phrase_top1_same_class_side"] = float(equivalent[np.arange(len(norm)), first].mean())
        out["phrase_chance_same_class_side"] = float(equivalent.mean())
        if class_prompts:
            protos = torch.stack([F.normalize(scorer.encode_texts(class_prompts[c]).mean(0), dim=0)
                                  for c in classes])
            pred = (crops @ protos.T).argmax(1)
            out["class_top1"] = float((pred == y).float().mean())
            out["class_top1_per_class"] = {c: float((pred[y == k] == k).float().mean())
                                           for k, c in enumerate(classes)}
    return out


def gt_vs_random_box(scorer: ClipScorer, triplets: Sequence[Triplet], seed: int = 0,
                     chunk: int = 128) -> dict[str, Any]:
    """What the reward needs: for each held-out (image, box, phrase), is the similarity of the
    ground-truth crop higher than that of another box in the same image that covers < 25% of
    the ground truth? Three kinds of other box (see :func:`negative_box`); the scores come
    from :meth:`ClipScorer.similarity`, the reward's own call."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    gt_sim = []
    for i in range(0, len(triplets), chunk):
        part = triplets[i : i + chunk]
        gt_sim.append(scorer.similarity([t[0] for t in part], np.array([t[1] for t in part], float),
                                        [t[2] for t in part]))
    gt = np.concatenate(gt_sim)
    out["mean_similarity_gt"] = float(gt.mean())
    for kind in ("mirror", "same_size", "random"):
        sims = []
        for i in range(0, len(triplets), chunk):
            part = triplets[i : i + chunk]
            boxes = []
            for img, box, _ in part:
                h, w = np.asarray(img).shape[:2]
                boxes.append(negative_box(np.asarray(box, float)[None], box, w, h, rng, kind))
            sims.append(scorer.similarity([t[0] for t in part], np.array(boxes), [t[2] for t in part]))
        s = np.concatenate(sims)
        out[kind] = {"gt_higher_fraction": float(np.mean(gt > s)), "mean_similarity": float(s.mean()),
                     "mean_gap": float(np.mean(gt - s))}
    return out


def half_resolution(triplets: Sequence[Triplet]) -> list[Triplet]:
    """The same triplets with images halved (224 -> 112) and boxes scaled with them."""
    from PIL import Image

    out = []
    for img, box, phrase in triplets:
        a = as_rgb_uint8(img)
        h, w = a.shape[:2]
        small = np.asarray(Image.fromarray(a).resize((w // 2, h // 2), Image.BILINEAR))
        out.append((small, tuple(float(v) * 0.5 for v in box), phrase))
    return out


# ----------------------------------------------------------------------------- report
def evaluate_small_clip(scorer: ClipScorer, chest_root: str | Path, seed: int = 0, *,
                        parts: Sequence[str] = ("ms_cxr", "chestxray8"), eval_split: str = "test",
                        ) -> dict[str, Any]:
    """Held-out numbers of ``scorer`` and of the same architecture untrained: MS-CXR phrase
    and class retrieval and GT-vs-other-box similarity at full and at half resolution, and
    ChestX-ray8 label retrieval."""
    prompts: dict[str, set[str]] = defaultdict(set)
    for (_, _, p), c in zip(*chest_triplets(chest_root, "train", "ms_cxr")):
        prompts[c].add(p)
    class_prompts = {c: sorted(v) for c, v in prompts.items()}
    test, test_labels = chest_triplets(chest_root, eval_split, "ms_cxr")
    half = half_resolution(test)
    untrained = build_small_clip(SmallClipConfig(**scorer.info["architecture"]), seed)
    out: dict[str, Any] = {}
    for name, sc in (("trained", scorer), ("untrained", untrained)):
        r = {
            "ms_cxr_retrieval": retrieval_metrics(sc, test, test_labels, class_prompts),
            "ms_cxr_retrieval_half_resolution": retrieval_metrics(sc, half, test_labels, class_prompts),
            "ms_cxr_gt_vs_other_box": gt_vs_random_box(sc, test, seed=seed),
            "ms_cxr_gt_vs_other_box_half_resolution": gt_vs_random_box(sc, half, seed=seed),
        }
        if "chestxray8" in parts:
            r["chestxray8_label_retrieval"] = retrieval_metrics(sc, chest_triplets(chest_root, eval_split,
                                                                                   "chestxray8")[0])
        out[name] = r
    return out


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers a reader wants first, copied from the full report."""
    t, g = report["trained"]["ms_cxr_retrieval"], report["trained"]["ms_cxr_gt_vs_other_box"]
    u = report["untrained"]["ms_cxr_retrieval"]
    tr = report["model"]["training"]
    return {
        "eval": "MS-CXR-format test split of the embedded chest benchmark (held out from training)",
        "n": t["n"], "phrase_candidates": t["phrase_candidates"],
        "phrase_top1": t["phrase_top1"], "phrase_top5": t["phrase_top5"],
        "chance_top1": t["phrase_chance_top1"], "chance_top5": t["phrase_chance_top5"],
        "untrained_top1": u["phrase_top1"], "untrained_top5": u["phrase_top5"],
        "phrase_top1_same_class_side": t["phrase_top1_same_class_side"],
        "chance_same_class_side": t["phrase_chance_same_class_side"],
        "gt_minus_random_box_similarity": g["random"]["mean_gap"],
        "gt_higher_than_random_box": g["random"]["gt_higher_fraction"],
        "gt_higher_than_mirror_box": g["mirror"]["gt_higher_fraction"],
        "train_seconds": tr["train_seconds"], "steps": tr["steps"], "threads": tr["threads"],
    }
