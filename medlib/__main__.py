"""Command line: ``python -m medlib <command>``.

  reproduce --profile smoke|full [--only 01 02] [--force]   execute the notebook batch
  benchmark --root DIR --profile smoke [--seed 0]            write the embedded benchmark
  check-results [--profile smoke] [--dir results]           results files present, every value in range
  compare-results A B [--abs-tol 0]                          same metrics in two results folders (determinism)
  figures [--out DIR]                                        redraw every figure results/ feeds (figures/91_*)
  check-figures                                              committed figures/91_* equal what results/ gives
  strip-notebooks [DIR]                                      remove notebook outputs
  data fetch NAME --root DATA_ROOT [--hub-id ID]             download a real dataset (or print the steps)
  data check --root DATA_ROOT [--allow-outside-root]         read every real dataset present, open every
                                                             image and volume, report the bad ones
  gpu-check [--size 3b|tiny] [--steps 3] [--out FILE]         GRPO at the 3B size on one GPU (medlib.gpu_check)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .cli import existing_folder, output_folder, profile_name

    ap = argparse.ArgumentParser(prog="medlib", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reproduce", help="execute the notebooks in order with papermill")
    r.add_argument("--profile", default="smoke", type=profile_name)
    r.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 02_rewards")
    r.add_argument("--force", action="store_true", help="rerun notebooks whose inputs are unchanged")
    b = sub.add_parser("benchmark", help="write the embedded synthetic benchmark")
    b.add_argument("--root", required=True, type=output_folder)
    b.add_argument("--profile", default="smoke")
    b.add_argument("--seed", type=int, default=0)
    cr = sub.add_parser("check-results", help="check that results files exist and their values are in range")
    cr.add_argument("--profile", default=None, type=profile_name, help="also require every file the batch writes at this profile")
    cr.add_argument("--dir", default=None, type=existing_folder, help="results folder (default results/)")
    cmp = sub.add_parser("compare-results", help="compare the metrics of two results folders (two runs, same seed)")
    cmp.add_argument("a", type=existing_folder)
    cmp.add_argument("b", type=existing_folder)
    cmp.add_argument("--abs-tol", type=float, default=0.0, help="largest difference accepted (default 0: identical)")
    fg = sub.add_parser("figures", help="redraw every figure the results folder feeds")
    fg.add_argument("--out", default=None, type=Path, help="folder (default figures/)")
    sub.add_parser("check-figures", help="check that the committed figures equal what the results files give")
    s = sub.add_parser("strip-notebooks", help="remove outputs from notebooks")
    s.add_argument("dir", nargs="?", default="notebooks", type=Path)
    d = sub.add_parser("data", help="real datasets: fetch into DATA_ROOT, check with the adapters")
    dsub = d.add_subparsers(dest="data_cmd", required=True)
    f = dsub.add_parser("fetch")
    f.add_argument("name")
    f.add_argument("--root", required=True, type=Path)
    f.add_argument("--hub-id", default=None)
    c = dsub.add_parser("check")
    c.add_argument("--root", required=True, type=Path)
    c.add_argument("--allow-outside-root", action="store_true",
                   help="accept image paths in the annotation files that resolve outside the dataset folder")
    gc = sub.add_parser("gpu-check", help="GRPO steps of a random 3B Qwen2.5-VL and MedSAM2 on one GPU, timed")
    gc.add_argument("--size", default="3b", choices=("3b", "tiny"), help="tiny: the same code on a CPU in seconds")
    gc.add_argument("--steps", type=int, default=3)
    gc.add_argument("--out", type=Path, default=None, help="default results/benchmarks/gpu.json")
    gc.add_argument("--no-vllm", action="store_true", help="skip the vLLM colocate run even when vllm imports")
    gc.add_argument("--volume-slices", type=int, default=None, help="MedSAM2 volume depth (0: skip MedSAM2)")
    args = ap.parse_args(argv)

    if args.cmd == "reproduce":
        from .reproduce import NotebookFailed, list_notebooks, run_batch

        if args.only is not None:
            try:
                list_notebooks(None, args.only)
            except ValueError as e:
                ap.error(f"argument --only: {e}")  # exits with code 2

        try:
            runs = run_batch(args.profile, only=args.only, force=args.force)
        except NotebookFailed as e:
            print(f"\nFAILED: {e}", file=sys.stderr)
            return 1
        from .report.figures import write_figures

        print(f"redrew {len(write_figures())} figure files from results/")
        return _report_results(args.profile, [r.name for r in runs])
    if args.cmd == "check-results":
        return _report_results(args.profile, None, args.dir)
    if args.cmd == "compare-results":
        from .report.compare import compare_results

        out = compare_results(args.a, args.b, abs_tol=args.abs_tol)
        for d in out["differences"]:
            print(d)
        verdict = "identical" if not out["differences"] else f"{len(out['differences'])} difference(s)"
        print(f"compared {out['numbers']} numbers in {out['files']} files: {verdict}")
        return 1 if out["differences"] else 0
    if args.cmd == "figures":
        from .report.figures import write_figures

        written = write_figures(args.out)
        print(f"wrote {len(written)} figure files to {args.out or 'figures/'}")
        return 0
    if args.cmd == "check-figures":
        from .report.figures import check_figures

        problems = check_figures()
        for p in problems:
            print(f"figure problem: {p}", file=sys.stderr)
        print(f"figures check: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    if args.cmd == "benchmark":
        from .synthetic import build_benchmark

        try:
            summary = build_benchmark(args.root, profile=args.profile, seed=args.seed)
        except ValueError as e:  # an unknown benchmark profile, a bad seed
            ap.error(str(e))
        print(summary)
        return 0
    if args.cmd == "strip-notebooks":
        from .reproduce import strip_notebook

        changed = [p for p in sorted(args.dir.glob("*.ipynb")) if strip_notebook(p)]
        print(f"stripped {len(changed)} notebook(s)")
        return 0
    if args.cmd == "gpu-check":
        from .gpu_check import gpu_check

        r = gpu_check(args.size, args.steps, args.out, vllm=not args.no_vllm, volume_slices=args.volume_slices)
        g = r["grpo"]
        print(f"{r['device']}: {r['parameters'] / 1e9:.2f} B parameters, {g['seconds_per_step']:.2f} s a step, "
              f"shares {g['shares']}; wrote {args.out or 'results/benchmarks/gpu.json'}")
        return 0
    if args.cmd == "data":
        from .data.io import DatasetError
        from .data.prepare import check, fetch

        try:
            if args.data_cmd == "fetch":
                print(fetch(args.name, args.root, args.hub_id))
                return 0
            rows = check(args.root, allow_outside_root=args.allow_outside_root)
        except (DatasetError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        for r in rows:
            what = f"{r['records']} records" if r["records"] is not None else r["error"]
            if r["records"] is not None:
                what += f", files opened: {r['records'] - r['bad']} ok, {r['bad']} bad"
                what += f", {r['clipped']} box(es) clipped to their image" if r["clipped"] else ""
            print(f"{r['dataset']:<12} {r['split']:<6} {what}")
            for p in r["problems"]:
                print(f"  bad: {p}")
        return 1 if any(r["error"] not in ("", "absent") or r["bad"] for r in rows) else 0
    return 2


def _report_results(profile: str | None, notebooks: list[str] | None, folder: Path | None = None) -> int:
    """Print the problems :func:`medlib.report.check.check_results` finds; 1 when there are any."""
    from .paths import results_dir
    from .report.check import check_results

    folder = folder or results_dir()
    problems = check_results(folder, profile, notebooks)
    for p in problems:
        print(f"results problem: {p}", file=sys.stderr)
    print(f"results check of {folder}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
