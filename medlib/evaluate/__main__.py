"""Command line: evaluate a checkpoint on one split of a run config's data.

  python -m medlib.evaluate --config configs/medground/smoke.yaml --model runs/medground_smoke/grpo/final \\
      --split test --out results/eval/medground_smoke

The config gives the paper, the prompt template, the data source and root, and (MedVol-R1) the
slices; ``--model`` defaults to the config's GRPO result, else its SFT result. Writes
``<out>/predictions.jsonl`` and ``<out>/summary.json`` and prints the metrics.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def default_model(cfg) -> Path:
    """The run's GRPO ``final/`` if it exists, else its SFT ``final/``."""
    for stage in ("grpo", "sft"):
        p = cfg.run_dir(stage) / "final"
        if (p / "config.json").is_file():
            return p
    raise FileNotFoundError(f"no trained model under {cfg.run_dir('grpo').parent}: train first "
                            f"(python -m medlib.train all --config ...) or pass --model")


def segmenter_spec(cfg, arg: str | None) -> str | None:
    """``--segmenter`` (``none`` turns it off), else the config's reward segmenter, else LiteMedSAM
    for the papers that segment (MedReasoner, MedVol-R1); MedGround-R1 needs none."""
    if arg is not None:
        return None if arg.lower() == "none" else arg
    if cfg.paper == "medground":
        return None
    spec = cfg.grpo.reward_options.get("segmenter")
    return spec if isinstance(spec, str) and spec else "litemedsam"


def format_summary(s: dict) -> str:
    m = s["metrics"]
    keys = [k for k in ("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU", "DSC_local", "key_hit") if k in m]
    parts = [f"{k} {m[k]['mean']:.2f} [{m[k]['ci_low']:.2f}, {m[k]['ci_high']:.2f}]" for k in keys]
    return f"{s['paper']} ({s['template']}), n {s['n']}, refusals {s['refusals']}: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m medlib.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML run config, e.g. configs/medground/smoke.yaml")
    ap.add_argument("--model", default=None, help="model folder or hub id (default: the run's grpo/final)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", required=True, help="output folder for predictions.jsonl and summary.json")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="default: the config's grpo.max_completion_length")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the 95%% intervals")
    ap.add_argument("--segmenter", default=None, help="segmenter spec (litemedsam, medsam2:CKPT) or none")
    ap.add_argument("--delta", type=int, default=None, help="MedVol-R1: local Dice window (default: config's delta or 5)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N records")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", default=None, help="profile name recorded in the summary (smoke, full)")
    args = ap.parse_args(argv)

    from ..data.io import DatasetError
    from ..models.load import ModelLoadError
    from ..train.config import ConfigError, load_config
    from ..train.datasets import load_records
    from .grounding2d import evaluate_2d
    from .loading import load_for_eval
    from .volume3d import evaluate_3d

    try:
        cfg = load_config(args.config, args.set)
        model_path = Path(args.model) if args.model else default_model(cfg)
        records = load_records(cfg, args.split)[: args.limit]
        model, processor = load_for_eval(model_path, device=args.device, dtype=cfg.model.dtype,
                                         min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    except (ConfigError, DatasetError, ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    spec = segmenter_spec(cfg, args.segmenter)
    segmenter = None
    if spec is not None:
        from ..segment import build_segmenter

        segmenter = build_segmenter(spec)
    common = dict(batch_size=args.batch_size, out_dir=args.out, bootstrap=args.bootstrap, seed=cfg.seed,
                  config=cfg, profile=args.profile, model_path=str(args.model or model_path), split=args.split,
                  progress=cfg.progress, max_new_tokens=args.max_new_tokens or cfg.grpo.max_completion_length)
    if cfg.paper == "medvol":
        if segmenter is None:
            print("error: MedVol-R1 evaluation propagates masks: pass --segmenter litemedsam (or medsam2:CKPT)",
                  file=sys.stderr)
            return 2
        delta = args.delta if args.delta is not None else int(cfg.grpo.reward_options.get("delta", 5))
        s = evaluate_3d(model, processor, records, segmenter=segmenter, n_slices=cfg.data.n_slices,
                        slice_size=cfg.data.slice_size, delta=delta,
                        window=str(cfg.grpo.reward_options.get("window", "sampled")), **common)
    else:
        s = evaluate_2d(model, processor, records, paper=cfg.paper, template=cfg.template, segmenter=segmenter,
                        **common)
    print(format_summary(s))
    print(f"wrote {Path(args.out) / 'summary.json'} and predictions.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
