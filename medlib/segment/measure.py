"""Measured segmentation quality with ground-truth prompts: what the segmenter itself can do
before any grounding model is in the loop. Writes ``results/segment.json``
and ``results/segment_colin27.json``::

    python -m medlib.segment.measure --profile smoke --seed 0

* **2D**, the embedded U-MRG-14K-style test split: Dice of the mask from the GT box, the two
  GT key points, or both (labels 1), per structure: MedReasoner Table 4 in miniature (the paper
  prompts MedSAM2 with MedReasoner-7B's answers; here the prompts are the ground truth).
* **3D**, the embedded M3D-RefSeg-style CT test split, every (volume, structure) once: boxes
  are the connected components of the GT on its largest axial slice (MedVol-R1's Top-1 key
  slice), propagated through the volume; DSC over the volume, on the GT z-range and within
  ``|t - k| <= 5`` (the window of R_c, MedVol-R1 Sec. 2.5).
* **Colin27 + AAL** (Debian ``mricron-data``, when installed): the same 2D prompt comparison on
  named structures' largest axial slices and 3D propagation from them
  (:mod:`medlib.segment.colin27`).

:data:`PLANS` says how much of each a profile measures. ``--segmenter`` takes any
:func:`~medlib.segment.factory.build_segmenter` spec, e.g. ``medsam2:/path/MedSAM2_latest.pt``
on a GPU (results then go to ``segment_medsam2.json`` / ``segment_colin27_medsam2.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import portable_path, repo_path
from ..provenance import write_json
from .colin27 import DEFAULT_STRUCTURES
from .preprocess import ABDOMEN_WINDOW
from .quality import (
    PROMPTS,
    SegCase2D,
    SegCase3D,
    cases_2d_from_records,
    crop_z,
    key_slice_of,
    measure_2d,
    measure_3d,
    per_structure_table,
    run_info,
    summarise_3d,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class QualityPlan:
    """How much one profile measures."""

    n_2d: int | None = None  # U-MRG-style test images, in file order; None = the whole split
    n_3d_volumes: int | None = None  # CT test volumes; every structure in them is one case
    structures_3d: tuple[str, ...] | None = None  # CT structures kept (labels); None = all
    colin27_structures: tuple[str, ...] = DEFAULT_STRUCTURES  # AAL names; () = skip Colin27
    near_key: int | None = None  # crop 3D cases to |t - k| <= near_key (quick runs); None = whole volume


PLANS: dict[str, QualityPlan] = {
    # notebook tests: a few encoder passes
    "tiny": QualityPlan(n_2d=4, n_3d_volumes=1, structures_3d=("liver",), colin27_structures=("Thalamus_L",), near_key=2),
    # CPU profile: every 2D test image, 4 of the 16 CT test volumes (LiteMedSAM encodes every slice
    # it visits, about 1.6 s each on 2 idle cores), 8 Colin27 structures
    "smoke": QualityPlan(n_3d_volumes=4),
    "full": QualityPlan(),
}
SPLIT = "test"


# ------------------------------------------------------------------------------- cases
def benchmark_cases_2d(bench_dir: str | Path, split: str = SPLIT, n: int | None = None) -> list[SegCase2D]:
    """The first ``n`` records of the U-MRG-style split as 2D cases (GT box, GT key points)."""
    from ..data import load_benchmark

    records = load_benchmark(repo_path(bench_dir), "umrg", split)
    return cases_2d_from_records(records[:n] if n is not None else records)


def benchmark_cases_3d(
    bench_dir: str | Path,
    split: str = SPLIT,
    n_volumes: int | None = None,
    structures: Sequence[str] | None = None,
    window: tuple[float, float] | None = ABDOMEN_WINDOW,
) -> list[SegCase3D]:
    """One 3D case per (volume, structure) of the first ``n_volumes`` CT volumes of the split
    (M3D-RefSeg lists several queries per structure: each structure is measured once). The key
    slice is the largest-area one, its boxes the GT's connected components there."""
    from ..data import load_benchmark

    firsts: dict[tuple[str, int | None], object] = {}
    for r in load_benchmark(repo_path(bench_dir), "m3d_refseg", split):
        if structures is None or r.label in structures:
            firsts.setdefault((str(r.volume_path), r.mask_value), r)
    volumes = list(dict.fromkeys(v for v, _ in firsts))[:n_volumes]
    cases, loaded = [], {}
    for (vol_path, _), r in firsts.items():
        if vol_path not in volumes:
            continue
        if vol_path not in loaded:
            loaded = {vol_path: r.load_volume()}  # records of one volume are consecutive
        mask = r.load_mask()
        if not mask.any():
            continue
        case_id = f"{r.meta.get('case', Path(vol_path).parent.name)}/{r.label}"
        cases.append(SegCase3D(case_id, r.label or r.query, loaded[vol_path], mask, key_slice_of(mask), None, window))
    return cases


def crop_near_key(cases: list[SegCase3D], near_key: int | None) -> list[SegCase3D]:
    """Each case cropped to ``|t - k| <= near_key`` around its key slice (None: unchanged)."""
    if near_key is None:
        return cases
    return [crop_z(c, c.key_slice - near_key, c.key_slice + near_key + 1) for c in cases]


# ---------------------------------------------------------------------------- measuring
def measure_benchmark(segmenter, bench_dir: str | Path, plan: QualityPlan, progress: bool = False) -> dict:
    """2D prompt comparison and 3D propagation on the embedded benchmark (see module doc)."""
    c2 = benchmark_cases_2d(bench_dir, n=plan.n_2d)
    rows_2d = measure_2d(segmenter, c2, prompts=PROMPTS, progress=progress)
    c3 = crop_near_key(benchmark_cases_3d(bench_dir, n_volumes=plan.n_3d_volumes, structures=plan.structures_3d), plan.near_key)
    rows_3d = measure_3d(segmenter, c3, progress=progress)
    return {
        "2d": {
            "dataset": "umrg (embedded U-MRG-14K-style benchmark, medlib.synthetic.multimodal)",
            "split": SPLIT,
            "prompts": {
                "points": "the two GT key points (labels 1)",
                "box": "the GT box",
                "box+points": "GT box and the two GT key points",
            },
            "n_cases": len(c2),
            "summary": per_structure_table(rows_2d, by=("prompt",)).to_dict(orient="records"),
            "rows": rows_2d.to_dict(orient="records"),
        },
        "3d": {
            "dataset": "m3d_refseg (embedded M3D-RefSeg-style CT, medlib.synthetic.ct)",
            "split": SPLIT,
            "window_level_width": list(ABDOMEN_WINDOW),
            "prompt": "connected-component boxes of the GT on its largest axial slice (the key slice k)",
            "metrics": {
                "dice": "DSC over the whole volume" + (f" (cropped to |t - k| <= {plan.near_key})" if plan.near_key is not None else ""),
                "dice_gt_z": "DSC on the slices the GT spans",
                "dice_near_key": "DSC on |t - k| <= 5 (MedVol-R1 R_c window)",
            },
            "n_volumes": len({c.case_id.split("/")[0] for c in c3}),
            "n_cases": len(c3),
            "summary": summarise_3d(rows_3d).to_dict(orient="records"),
            "rows": rows_3d.to_dict(orient="records"),
        },
    }


def measure_colin27(segmenter, plan: QualityPlan, root: str | Path | None = None, progress: bool = False) -> dict | None:
    """Colin27/AAL results for ``plan.colin27_structures``; None when mricron-data is absent."""
    from .colin27 import colin27_available, run_check

    if not plan.colin27_structures or not colin27_available(root):
        return None
    return run_check(segmenter, plan.colin27_structures, root=root, near_key=plan.near_key, progress=progress)


def default_segmenter(spec: str | dict | None = "litemedsam"):
    """A segmenter for measuring: LiteMedSAM keeps every slice embedding of a volume cached
    (256 entries, 2 GiB), so the structures of one volume share their encoder passes."""
    from .factory import _split, build_segmenter

    if spec is None or (isinstance(spec, str) and _split(spec)[0] == "litemedsam"):
        name, arg = _split(spec or "litemedsam")
        return build_segmenter({"name": name, "checkpoint": arg, "cache_size": 256, "cache_bytes": 2**31})
    return build_segmenter(spec)


def _suffix(segmenter) -> str:
    return "" if segmenter.name == "litemedsam" else f"_{segmenter.name}"


def run(
    profile: str = "smoke",
    seed: int = 0,
    bench_root: str | Path = "build/data",
    segmenter="litemedsam",
    out: str | Path | None = None,
    colin27_out: str | Path | None = None,
    colin27_root: str | Path | None = None,
    command: str | None = None,
    entry: str = "python -m medlib.segment.measure",
    progress: bool = True,
    reuse: bool = True,
) -> dict:
    """Build (or reuse) the benchmark, measure, write the two results files; returns
    ``{"benchmark": ..., "colin27": ... or None, "paths": [...]}``. ``segmenter`` is a spec or
    a segmenter object; ``out`` / ``colin27_out`` default to ``results/segment{,_colin27}.json``
    (``_<name>`` appended for a segmenter other than LiteMedSAM). ``command`` is recorded as
    given, by default the equivalent command line; ``entry`` names what ran (CLI or notebook).
    With ``reuse``, results files already written for the same profile, seed, plan, segmenter and
    benchmark folder are returned as they are (``"reused": True``) instead of measuring again."""
    import torch

    from ..paths import results_dir
    from ..synthetic import benchmark_dir, build_benchmark

    if profile not in PLANS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PLANS)}")
    plan = PLANS[profile]
    seg = default_segmenter(segmenter) if isinstance(segmenter, str | dict) or segmenter is None else segmenter
    build_benchmark(bench_root, profile=profile, seed=seed, parts=("umrg", "ct"))
    bench = benchmark_dir(bench_root, profile, seed)
    if command is None:
        ckpt = getattr(seg, "checkpoint", None)
        spec = segmenter if isinstance(segmenter, str) else seg.name if seg.name == "litemedsam" or not ckpt else f"{seg.name}:{ckpt}"
        args = ["--profile", profile, "--seed", str(seed), "--bench-root", str(bench_root), "--segmenter", str(spec)]
        command = " ".join(["python -m medlib.segment.measure", *(shlex.quote(a) for a in args)])
    head = {
        "command": command,
        "entry": entry,
        "profile": profile,
        "seed": seed,
        "benchmark_dir": str(Path(bench_root) / bench.name),
        "plan": asdict(plan),
        "segmenter": {
            "spec": segmenter if isinstance(segmenter, str | dict) else None,
            "name": seg.name,
            "checkpoint": portable_path(getattr(seg, "checkpoint", None)),
            "device": str(getattr(seg, "device", "cpu")),
        },
        "threads": torch.get_num_threads(),
        **run_info(),
    }
    out_path = repo_path(out) if out else results_dir() / f"segment{_suffix(seg)}.json"
    col_path = repo_path(colin27_out) if colin27_out else results_dir() / f"segment_colin27{_suffix(seg)}.json"
    if reuse:
        done = _reusable(head, out_path, col_path, colin27_root)
        if done is not None:
            return done
    t0 = time.perf_counter()
    res = {**head, **measure_benchmark(seg, bench, plan, progress), "seconds": time.perf_counter() - t0}
    paths = [write_json(out_path, res)]
    t0 = time.perf_counter()
    col = measure_colin27(seg, plan, colin27_root, progress)
    if col is not None:
        col = {**head, **col, "seconds": time.perf_counter() - t0}
        col.pop("benchmark_dir")
        paths.append(write_json(col_path, col))
    return {"benchmark": res, "colin27": col, "paths": paths, "reused": False}


#: what must match for a results file to stand for a new measurement
SAME_MEASUREMENT = ("profile", "seed", "plan")


def _same(head: dict, old: dict) -> bool:
    keys_match = all(json.loads(json.dumps(old.get(k))) == json.loads(json.dumps(head[k])) for k in SAME_MEASUREMENT)
    seg_old, seg_new = old.get("segmenter") or {}, head["segmenter"]
    return keys_match and all(seg_old.get(k) == seg_new[k] for k in ("name", "checkpoint"))


def _reusable(head: dict, out_path: Path, col_path: Path, colin27_root) -> dict | None:
    """The results already written for the same profile, seed, plan and segmenter (and the same
    benchmark folder), or None. A measurement takes minutes to a quarter of an hour on a CPU."""
    from .colin27 import colin27_available

    try:
        res = json.loads(out_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not _same(head, res) or res.get("benchmark_dir") != head["benchmark_dir"]:
        return None
    col = None
    if colin27_available(colin27_root):
        try:
            col = json.loads(col_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not _same(head, col):
            return None
    return {"benchmark": res, "colin27": col, "paths": [out_path] + ([col_path] if col else []), "reused": True}


def overall(summary: Sequence[dict], prompt: str | None = None) -> dict:
    """The ``ALL`` row of a summary (of one ``prompt`` for a 2D summary)."""
    for r in summary:
        if r["structure"] == "ALL" and (prompt is None or r.get("prompt") == prompt):
            return r
    raise KeyError(f"no ALL row{f' for prompt {prompt!r}' if prompt else ''} in the summary")


# ------------------------------------------------------------------- paper comparison
TABLE4_SETTINGS = {"points": "w/ Points", "box": "w/ BBox", "box+points": "BBox & Points"}


def table4_comparison(summary_2d: Sequence[dict], label: str = "LiteMedSAM") -> pd.DataFrame:
    """MedReasoner Table 4 (Dice %, segmenters x prompt types, reported) with our row added:
    the ``ALL`` means of a 2D summary, in %. The paper's prompts are MedReasoner-7B's answers on
    U-MRG-14K; ours are ground-truth prompts on the embedded benchmark (an upper bound)."""
    import pandas as pd

    from ..report.reported import load_reported

    rep = load_reported("medreasoner", 4)
    rep = rep[rep.metric == "Dice"].pivot_table(index="method", columns="setting", values="value", sort=False)
    rep["source"] = "reported: U-MRG-14K, MedReasoner-7B prompts"
    ours = {TABLE4_SETTINGS[r["prompt"]]: 100 * r["dice_mean"] for r in summary_2d if r["structure"] == "ALL"}
    ours["source"] = "medlib: embedded benchmark, ground-truth prompts"
    table = pd.concat([rep, pd.DataFrame([ours], index=[label])])
    return table[[*TABLE4_SETTINGS.values(), "source"]]


def summary_lines(res: dict) -> list[str]:
    """Short per-structure lines of a :func:`run` result (what the CLI prints)."""
    lines = []
    for part, key in (("2d", "dice_mean"), ("3d", "dice_mean")):
        block = res["benchmark"][part]
        for r in block["summary"]:
            extra = f" prompt={r['prompt']:<10}" if "prompt" in r else f" gt_z={r['dice_gt_z_mean']:.3f} near_key={r['dice_near_key_mean']:.3f}"
            lines.append(f"bench {part} {r['structure']:<20}{extra} dice={r[key]:.3f} n={r['n']}")
    col = res.get("colin27")
    if col:
        for r in col["summary_2d"]:
            lines.append(f"colin27 2d {r['structure']:<15} prompt={r['prompt']:<10} dice={r['dice_mean']:.3f}")
        for r in col["summary_3d"]:
            lines.append(f"colin27 3d {r['structure']:<15} dice={r['dice_mean']:.3f} gt_z={r['dice_gt_z_mean']:.3f} near_key={r['dice_near_key_mean']:.3f}")
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke", choices=sorted(PLANS))
    ap.add_argument("--seed", type=int, default=0, help="seed of the embedded benchmark")
    ap.add_argument("--bench-root", default="build/data")
    ap.add_argument("--segmenter", default="litemedsam", help="spec for medlib.segment.build_segmenter")
    ap.add_argument("--out", default=None, help="default results/segment.json")
    ap.add_argument("--colin27-out", default=None, help="default results/segment_colin27.json")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--force", action="store_true", help="measure again even if the results files match")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    argv = sys.argv[1:] if argv is None else argv
    cmd = " ".join(["python -m medlib.segment.measure", *(shlex.quote(a) for a in argv)])
    res = run(args.profile, args.seed, args.bench_root, args.segmenter, args.out, args.colin27_out, command=cmd,
              reuse=not args.force)
    for line in summary_lines(res):
        print(line)
    for p in res["paths"]:
        print(f"wrote {p}")
    return res


if __name__ == "__main__":
    main()
