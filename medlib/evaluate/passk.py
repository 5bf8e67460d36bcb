"""pass@k on the test split: could sampling already find the answer that GRPO learns to give?

For each test item, ``n`` completions are sampled at the GRPO temperature and scored like the
greedy evaluation (a hit is IoU > 0.5 in the original frame). pass@k is the unbiased estimator of
Chen et al. (2021, Eq. 1): ``1 - C(n - c, k) / C(n, k)`` with ``c`` hits among ``n`` samples,
averaged over items. Comparing the SFT start with the GRPO model says whether RL *sharpened*
what sampling could already reach (pass@1 up, pass@16 flat) or found something new (both up).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np

KS = (1, 2, 4, 8, 16)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``c`` correct among ``n`` samples (needs ``k <= n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def passk_table(hits: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"pass@k": %}`` averaged over items of a (items, samples) boolean array."""
    hits = np.asarray(hits, dtype=bool)
    n = hits.shape[1]
    return {f"pass@{k}": round(100.0 * float(np.mean([pass_at_k(n, int(c), k) for c in hits.sum(axis=1)])), 2)
            for k in ks if k <= n}


def sample_completions(model, processor, rows: Sequence[dict[str, Any]], *, n: int, temperature: float,
                       max_new_tokens: int, batch_size: int = 8, seed: int = 0) -> list[list[str]]:
    """``n`` sampled completions per row (top-p 1, no top-k), seeded, in row order."""
    import torch

    from .generation import batch_inputs, decoding

    out: list[list[str]] = []
    with decoding(model, processor) as (tok, pad_id, device):
        torch.manual_seed(seed)
        for s in range(0, len(rows), batch_size):
            batch = list(rows[s: s + batch_size])
            inputs = batch_inputs(processor, batch, device)
            with torch.inference_mode():
                ids = model.generate(**inputs, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                                     num_return_sequences=n, max_new_tokens=max_new_tokens, pad_token_id=pad_id)
            texts = tok.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [texts[i * n:(i + 1) * n] for i in range(len(batch))]
    return out


def evaluate_passk(model, processor, records, *, paper: str, template: str | None, n: int = 16,
                   temperature: float = 1.0, max_new_tokens: int = 48, batch_size: int = 8,
                   seed: int = 0) -> dict[str, Any]:
    """pass@k (k in :data:`KS` up to ``n``) and the per-sample hit rate of ``records``."""
    from .grounding2d import build_rows_2d, resolve_template, score_2d

    if paper == "medreasoner" and template == "r1":
        template = None
    template = resolve_template(paper, template)
    rows = build_rows_2d(records, processor, paper, template)
    samples = sample_completions(model, processor, rows, n=n, temperature=temperature,
                                 max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    rep = [i for i in range(len(records)) for _ in range(n)]
    preds, _ = score_2d([records[i] for i in rep], [rows[i] for i in rep], [c for cs in samples for c in cs],
                        processor=processor, paper=paper, bootstrap=1, seed=seed)
    hits = np.array([p["hit"] for p in preds]).reshape(len(records), n)
    ious = np.array([p["iou"] for p in preds]).reshape(len(records), n)
    return {"n_items": len(records), "n_samples": n, "temperature": temperature, "seed": seed,
            **passk_table(hits), "per_sample_Acc": round(100 * float(hits.mean()), 2),
            "per_sample_mIoU": round(100 * float(ious.mean()), 2),
            "items_never_hit": round(100 * float((hits.sum(axis=1) == 0).mean()), 2)}
