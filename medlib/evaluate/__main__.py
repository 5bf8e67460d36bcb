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


def segmenter_choice(cfg, arg: str | None) -> tuple[str | None, str]:
    """``(spec, where it came from)``: ``--segmenter`` (``none`` turns it off), else the config's
    ``evaluation.segmenter``, else its reward segmenter, else LiteMedSAM for the papers that
    segment (MedReasoner, MedVol-R1); MedGround-R1 needs none."""
    if arg is not None:
        return (None if arg.lower() == "none" else arg), "--segmenter"
    if cfg.paper == "medground":
        return None, "MedGround-R1 scores boxes only"
    if cfg.evaluation.segmenter:
        return cfg.evaluation.segmenter, "evaluation.segmenter"
    spec = cfg.grpo.reward_options.get("segmenter")
    if isinstance(spec, str) and spec:
        return spec, "grpo.reward_options.segmenter"
    return "litemedsam", "no segmenter named in the config (evaluation.segmenter), so the CPU default"


def segmenter_spec(cfg, arg: str | None) -> str | None:
    """The segmenter spec of :func:`segmenter_choice`."""
    return segmenter_choice(cfg, arg)[0]


def format_summary(s: dict) -> str:
    m = s["metrics"]
    keys = [k for k in ("mIoU", "Acc", "pDice", "Dice", "DSC", "IoU", "DSC_local", "key_hit") if k in m]
    parts = [f"{k} {m[k]['mean']:.2f} [{m[k]['ci_low']:.2f}, {m[k]['ci_high']:.2f}]" for k in keys]
    text = f"{s['paper']} ({s['template']}), n {s['n']}, refusals {s['refusals']}: " + "; ".join(parts)
    if s.get("metric_variant"):
        text += f"\nIoU, pDice, Dice: the {s['metric_variant']} variant"
    if s.get("segmenter") or m.get("segmenter"):
        what = "mask Dice" if s["paper"] == "medreasoner" else "masks"
        text += f"\n{what} by segmenter {s.get('segmenter') or m.get('segmenter')}"
    return text


def main(argv: list[str] | None = None) -> int:
    from ..cli import RunConfigParser, output_folder, positive_int, profile_name

    ap = RunConfigParser(prog="python -m medlib.evaluate", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_config_arguments()
    ap.add_argument("--model", default=None, help="model folder or hub id (default: the run's grpo/final)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", required=True, type=output_folder,
                    help="output folder for predictions.jsonl and summary.json")
    ap.add_argument("--batch-size", type=positive_int, default=16)
    ap.add_argument("--max-new-tokens", type=positive_int, default=None,
                    help="default: the config's grpo.max_completion_length")
    ap.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples of the 95%% intervals")
    ap.add_argument("--segmenter", default=None, help="segmenter spec (litemedsam, medsam2:CKPT) or none")
    ap.add_argument("--repetition-penalty", type=float, default=None,
                    help="decoding repetition penalty (default: the config's evaluation.repetition_penalty; "
                         "MedReasoner App. D.1 uses 1.05)")
    ap.add_argument("--metric-variant", default=None, choices=("official", "paper"),
                    help="MedReasoner IoU / pDice / mask Dice: official (its public evaluation, which produced "
                         "its tables) or paper (Eq. 5); default: the config's evaluation.metric_variant")
    ap.add_argument("--delta", type=int, default=None, help="MedVol-R1: local Dice window (default: config's delta or 5)")
    ap.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N records")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", default=None, type=profile_name,
                    help="profile name recorded in the summary (smoke, full)")
    args = ap.parse_args(argv)  # exits with code 2 and one sentence on a bad config, override or argument

    from ..data.io import DatasetError
    from ..models.load import ModelLoadError
    from ..train.config import ConfigError
    from ..train.datasets import load_records
    from ..train.preflight import build_segmenter_at_start
    from .grounding2d import evaluate_2d
    from .loading import load_for_eval
    from .volume3d import evaluate_3d

    cfg = args.run_config
    spec = segmenter_spec(cfg, args.segmenter)
    if cfg.paper == "medvol" and spec is None:
        print("error: MedVol-R1 evaluation propagates masks: pass --segmenter litemedsam (or medsam2:CKPT)",
              file=sys.stderr)
        return 2
    try:  # the segmenter and model load before any record is evaluated
        segmenter = None if spec is None else build_segmenter_at_start(spec, where="--segmenter")
        model_path = Path(args.model) if args.model else default_model(cfg)
        records = load_records(cfg, args.split)[: args.limit]
        if not records:
            raise DatasetError(f"split {args.split!r} of {cfg.data.source} at {cfg.data.root} holds no records")
        model, processor = load_for_eval(model_path, device=args.device, dtype=cfg.model.dtype,
                                         min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    except (ConfigError, DatasetError, ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if spec is not None:
        print(f"segmenter {spec} ({segmenter_choice(cfg, args.segmenter)[1]})")
    penalty = args.repetition_penalty if args.repetition_penalty is not None else cfg.evaluation.repetition_penalty
    if not penalty > 0:
        print(f"error: --repetition-penalty must be > 0, got {penalty}", file=sys.stderr)
        return 2
    common = dict(batch_size=args.batch_size, out_dir=args.out, bootstrap=args.bootstrap, seed=cfg.seed,
                  config=cfg, profile=args.profile, model_path=str(args.model or model_path), split=args.split,
                  progress=cfg.progress, max_new_tokens=args.max_new_tokens or cfg.grpo.max_completion_length)
    if cfg.paper == "medvol":
        delta = args.delta if args.delta is not None else int(cfg.grpo.reward_options.get("delta", 5))
        s = evaluate_3d(model, processor, records, segmenter=segmenter, n_slices=cfg.data.n_slices,
                        slice_size=cfg.data.slice_size, delta=delta,
                        window=str(cfg.grpo.reward_options.get("window", "sampled")), **common)
    else:
        s = evaluate_2d(model, processor, records, paper=cfg.paper, template=cfg.template, segmenter=segmenter,
                        repetition_penalty=penalty, segmenter_spec=spec,
                        metric_variant=args.metric_variant or cfg.evaluation.metric_variant, **common)
    print(format_summary(s))
    print(f"wrote {Path(args.out) / 'summary.json'} and predictions.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
