"""Vision-tower warm-up: a dense per-token objective that teaches a small random vision tower where
the findings are before any language-model training (docs/grpo.md#small-models-on-a-cpu).

For every merged image token (the 2 x 2 patch groups that Qwen2.5-VL's merger turns into one
language-model embedding, 28 x 28 pixels of the resized image), a linear head on the merger's
output predicts which finding classes cover the token; the target is the fraction of the token's
area that each class covers (the record's box, or its mask when it has one), plus an "any"
channel for the union. The loss is binary cross-entropy. Only the vision tower (patch embedding,
blocks, merger) and the head train; the language model is not touched. Measured in section 10:
without this stage a 2-20 M-parameter random model trained by SFT alone collapses to the mean
box; with it, SFT learns to read the target's position.

``run_vision_warmup(cfg)`` writes ``<output_dir>/<name>/vision/`` with ``final/`` (the whole
model with the warmed vision tower, plus its processor: the folder SFT starts from with
``sft.init_from: vision``), ``metrics.csv`` (step, loss, token accuracy, learning rate,
seconds), ``head.safetensors`` + ``head.json`` (the linear head and its class names),
``config.yaml`` and ``provenance.json``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.records import Grounding2D
from .common import (
    FINAL,
    StageResult,
    as_config,
    init_distributed,
    main_process_first,
    resolve_init_model,
    stage_processor,
    write_run_files,
)
from .config import ConfigError, RunConfig, check_device

STAGE = "vision"
ANY = "any"
HEAD_FILE = "head.safetensors"
HEAD_INFO = "head.json"


def label_of(rec: Grounding2D) -> str:
    """Class of a record's target: its ``label`` (finding class) or ``"target"`` when it has none."""
    return str(rec.label) if rec.label else "target"


def class_names(records: Sequence[Grounding2D]) -> list[str]:
    """The head's channels: ``"any"`` (every finding) then the records' classes, sorted."""
    return [ANY] + sorted({label_of(r) for r in records})


def box_coverage(box: Sequence[float], grid_h: int, grid_w: int, cell: int) -> np.ndarray:
    """Fraction of each ``cell`` x ``cell`` token of a ``grid_h`` x ``grid_w`` token grid that the
    box ``[x1, y1, x2, y2]`` (pixels of the resized image) covers: an ``(grid_h, grid_w)`` array."""
    x1, y1, x2, y2 = (float(v) for v in box)
    edges_x = np.arange(grid_w + 1, dtype=np.float64) * cell
    edges_y = np.arange(grid_h + 1, dtype=np.float64) * cell
    ox = np.clip(np.minimum(x2, edges_x[1:]) - np.maximum(x1, edges_x[:-1]), 0, None) / cell
    oy = np.clip(np.minimum(y2, edges_y[1:]) - np.maximum(y1, edges_y[:-1]), 0, None) / cell
    return np.outer(oy, ox)


def mask_coverage(mask: np.ndarray, model_w: int, model_h: int, cell: int) -> np.ndarray:
    """Fraction of each token covered by ``mask`` (original frame), the mask resized to the model
    frame (nearest neighbour) and averaged over each ``cell`` x ``cell`` block."""
    from PIL import Image

    m = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255).resize((model_w, model_h), Image.NEAREST)
    a = np.asarray(m, dtype=np.float64) / 255.0
    gh, gw = model_h // cell, model_w // cell
    return a[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell).mean(axis=(1, 3))


def token_major(cov: np.ndarray, sub: int) -> np.ndarray:
    """A sub-cell coverage grid ``(gh * sub, gw * sub)`` regrouped per merged token:
    ``(gh * gw, sub * sub)``, tokens in row-major order, each token's sub-cells row-major."""
    gh, gw = cov.shape[0] // sub, cov.shape[1] // sub
    return cov.reshape(gh, sub, gw, sub).transpose(0, 2, 1, 3).reshape(gh * gw, sub * sub)


@dataclass
class WarmupSample:
    image: object  # PIL RGB, original size
    target: np.ndarray  # (tokens, classes * sub * sub) float32, tokens in row-major order of the merged grid


def token_targets(rec: Grounding2D, processor, classes: Sequence[str], subcells: int = 1) -> WarmupSample:
    """The image of a record and its per-token class coverage (see the module docstring): for
    each merged token and class, the covered fraction of each of its ``subcells`` x ``subcells``
    sub-squares (class-major: channel ``c * subcells**2 + k``)."""
    from ..models.frames import frame_params, model_frame
    from .datasets import _pil_rgb

    image = _pil_rgb(rec.load_image())
    w, h = image.size
    frame = model_frame(processor, w, h)
    factor = frame_params(processor)[0]  # patch x merge: the side of one merged token
    if factor % subcells:
        raise ConfigError(f"vision.subcells: {subcells} does not divide the token side {factor}")
    cell = factor // subcells
    gh, gw = frame.model_height // cell, frame.model_width // cell
    if rec.mask_path is not None:
        cov = mask_coverage(rec.load_mask(), frame.model_width, frame.model_height, cell)
    else:
        cov = np.zeros((gh, gw))
        for b in rec.boxes:
            cov = np.maximum(cov, box_coverage(frame.box_to_model(b), gh, gw, cell))
    per_token = token_major(cov, subcells)
    k = subcells * subcells
    target = np.zeros((per_token.shape[0], len(classes) * k), dtype=np.float32)
    target[:, :k] = per_token
    c = classes.index(label_of(rec))
    target[:, c * k : (c + 1) * k] = per_token
    return WarmupSample(image, target)


def vision_tower(model):
    """The vision tower (patch embedding, blocks, merger) of a Qwen2/2.5-VL model."""
    inner = getattr(model, "model", model)
    visual = getattr(inner, "visual", None)
    if visual is None:
        raise ConfigError(f"vision.enabled: {type(model).__name__} has no vision tower (model.visual)")
    return visual


def merged_features(visual, image_processor, images: list):
    """Merger outputs of ``images``: ``(total merged tokens, hidden)`` in row-major token order."""
    import torch

    enc = image_processor(images=images, return_tensors="pt")
    dev = next(visual.parameters()).device
    pv = enc["pixel_values"].to(dev, dtype=next(visual.parameters()).dtype)
    out = visual(pv, grid_thw=enc["image_grid_thw"].to(dev))
    return out.pooler_output if not isinstance(out, torch.Tensor) else out


def _done(run_dir: Path, steps: int) -> bool:
    info = run_dir / HEAD_INFO
    if not (run_dir / FINAL / "config.json").is_file() or not info.is_file():
        return False
    return int(json.loads(info.read_text()).get("steps", -1)) == steps


def run_vision_warmup(
    cfg: RunConfig | str | Path | dict,
    overrides: dict | list[str] | None = None,
    *,
    records: Sequence[Grounding2D] | None = None,
) -> StageResult:
    """Run the vision warm-up of ``cfg`` (``cfg.vision``); returns where the warmed model is.

    A finished warm-up (``final/`` and ``head.json`` with the configured steps) is reused when
    ``cfg.resume``; an unfinished one restarts (it takes a minute or two)."""
    import torch
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoModelForImageTextToText

    from .common import model_init_kwargs
    from .datasets import load_records

    cfg = as_config(cfg, overrides)
    v = cfg.vision
    if not v.enabled:
        raise ConfigError(f"vision.enabled: the vision warm-up of {cfg.name} is off; set vision.enabled: true")
    device = check_device(cfg)
    init_distributed(device)
    run_dir = cfg.run_dir(STAGE)
    with main_process_first():
        recs = list(records) if records is not None else load_records(cfg, cfg.data.train_split)
    if not recs or not isinstance(recs[0], Grounding2D):
        raise ConfigError("vision.enabled: the warm-up needs 2D records (Grounding2D) with boxes or masks")
    model_path = resolve_init_model(cfg, v, STAGE, recs)
    final = run_dir / FINAL
    if cfg.resume and _done(run_dir, v.steps):
        return StageResult(STAGE, run_dir, final, v.steps, run_dir / "metrics.csv", len(recs))

    processor = stage_processor(cfg, model_path)
    classes = class_names(recs)
    sub = v.subcells
    samples = [token_targets(r, processor, classes, sub) for r in
               tqdm(recs, desc="vision targets", disable=not cfg.progress, leave=False)]
    write_run_files(cfg, STAGE, run_dir, {"model": model_path, "train_samples": len(recs), "classes": classes})

    torch.manual_seed(cfg.seed)
    kw = model_init_kwargs(cfg)
    model = AutoModelForImageTextToText.from_pretrained(model_path, **kw).to(device)
    visual = vision_tower(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in visual.parameters():
        p.requires_grad_(True)
    model.train()
    hidden = int(visual.merger.mlp[-1].out_features) if hasattr(visual, "merger") else None
    if hidden is None:  # pragma: no cover - every Qwen2/2.5-VL vision tower has a merger
        raise ConfigError(f"vision.enabled: {type(visual).__name__} has no merger")
    head = torch.nn.Linear(hidden, len(classes) * sub * sub).to(device)
    params = [p for p in visual.parameters()] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=v.learning_rate, weight_decay=v.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    rng = np.random.default_rng(cfg.seed)
    order: list[int] = []
    metrics_csv = run_dir / "metrics.csv"
    rows = []
    t0 = time.perf_counter()
    run_loss = run_acc = 0.0
    n_run = 0
    for step in tqdm(range(1, v.steps + 1), desc="vision warm-up", disable=not cfg.progress, leave=False):
        if len(order) < v.batch_size:
            order += rng.permutation(len(samples)).tolist()
        idx, order = order[: v.batch_size], order[v.batch_size:]
        batch = [samples[i] for i in idx]
        target = torch.from_numpy(np.concatenate([s.target for s in batch])).to(device)
        feats = merged_features(visual, processor.image_processor, [s.image for s in batch])
        if feats.shape[0] != target.shape[0]:
            raise RuntimeError(f"{feats.shape[0]} merged tokens but {target.shape[0]} targets: the processor's "
                               f"frame and the vision tower disagree")
        logits = head(feats.float())
        loss = loss_fn(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, v.max_grad_norm)
        opt.step()
        with torch.no_grad():  # accuracy of the "any" channels (each sub-square covered more than half or not)
            k = sub * sub
            acc = ((logits[:, :k] > 0) == (target[:, :k] > 0.5)).float().mean()
        run_loss += float(loss.detach())
        run_acc += float(acc)
        n_run += 1
        if step == 1 or step % v.logging_steps == 0 or step == v.steps:
            rows.append({"step": step, "loss": run_loss / n_run, "token_accuracy": run_acc / n_run,
                         "learning_rate": v.learning_rate, "seconds": round(time.perf_counter() - t0, 3)})
            run_loss = run_acc = 0.0
            n_run = 0
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(metrics_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    model.eval()
    model.save_pretrained(str(final))
    processor.save_pretrained(str(final))
    save_file({k: t.detach().cpu().contiguous() for k, t in head.state_dict().items()}, str(run_dir / HEAD_FILE))
    (run_dir / HEAD_INFO).write_text(json.dumps({"classes": classes, "subcells": sub, "steps": v.steps,
                                                      "hidden": hidden}, indent=1))
    return StageResult(STAGE, run_dir, final, v.steps, metrics_csv, len(recs))
