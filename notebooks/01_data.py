# %% [markdown]
# # 01 · Data: the embedded benchmark and the real datasets
#
# All three papers train and evaluate on credentialed or large downloads (MS-CXR, ChestX-ray8,
# M3D-RefSeg / M3D-Seg, U-MRG-14K). This notebook builds the **embedded synthetic benchmark** that
# stands in for them on a CPU, shows what it looks like, and reads real datasets when `DATA_ROOT`
# points at them. The benchmark is written to disk *in the real datasets' own formats*, so the same
# adapters (`medlib.data`) read both.
#
# | part | imitates | used by |
# |---|---|---|
# | chest radiographs with findings placed by anatomy, MS-CXR-style phrases | MS-CXR, ChestX-ray8 (label-only) | MedGround-R1 |
# | multi-modality 2D images, masks, two key points, implicit questions | U-MRG-14K | MedReasoner |
# | CT-like volumes, organ and lesion masks, explicit and implicit queries | M3D-RefSeg, M3D-Seg CT subsets | MedVol-R1, MedGround-R1 (frontal slices) |

# %% tags=["parameters"]
PROFILE = "smoke"      # benchmark size: tiny | smoke | full
SEED = 0
BENCH_ROOT = "build/data"
DATA_ROOT = ""         # folder with real datasets (ms_cxr/, chestxray8/, umrg/, m3d_refseg/); empty: none
N_SHOW = 8

# %%
import json

import pandas as pd
from IPython.display import display

from medlib.data import find_real_datasets, load_benchmark, load_dataset
from medlib.data.catalog import real_chestxray8_box_table
from medlib.data.chestxray8 import load_chestxray8
from medlib.data.stats import describe_2d, describe_3d
from medlib.paths import results_dir
from medlib.report.viz import plot_records_grid, plot_volume_slices, save_figure
from medlib.synthetic import PROFILES, benchmark_dir, build_benchmark

bench_profile = PROFILE if PROFILE in PROFILES else "smoke"
bench = benchmark_dir(BENCH_ROOT, bench_profile, SEED)
summary = build_benchmark(BENCH_ROOT, profile=bench_profile, seed=SEED)
print(bench)
print(json.dumps({k: v.get("splits", v.get("sizes")) for k, v in summary.items()}, indent=1, default=str))

# %% [markdown]
# ## Chest radiographs (MS-CXR and ChestX-ray8 formats)
#
# Lungs, heart, mediastinum, ribs, clavicles, diaphragm and film noise; one target finding per image
# (nodule, mass, consolidation, infiltrate, atelectasis, effusion, pneumothorax, cardiomegaly),
# sometimes with distractor findings. Phrases carry laterality and location taken from where the
# finding was placed (radiological convention: the patient's right is on the image's left).
# The ChestX-ray8 variant keeps only the finding label as the query, as MedRPG does.

# %%
mscxr_train = load_benchmark(bench, "ms_cxr", "train")
fig = plot_records_grid(mscxr_train[:N_SHOW], title="Embedded MS-CXR-style samples (box = target)")
save_figure(fig, "01_chest_mscxr_samples")
cxr8_test = load_benchmark(bench, "chestxray8", "test")
fig = plot_records_grid(cxr8_test[: N_SHOW // 2], title="Embedded ChestX-ray8-style samples (label-only queries)")
save_figure(fig, "01_chest_chestxray8_samples")

# %% [markdown]
# ## Multi-modality images with masks, key points and implicit questions (U-MRG format)
#
# MedReasoner's reasoner must answer an *implicit* question with a box and two interior key points;
# a frozen segmenter turns them into a mask. Distractor structures of the same class make the
# question's qualifier necessary.

# %%
umrg_train = load_benchmark(bench, "umrg", "train")
fig = plot_records_grid(umrg_train[:N_SHOW], title="Embedded U-MRG-style samples (mask outline, box, key points)")
save_figure(fig, "01_umrg_samples")

# %% [markdown]
# ## CT-like volumes (M3D-RefSeg format)
#
# Volumes in Hounsfield units with body, fat, muscle, spine, liver, spleen and kidneys, and cysts or
# tumours inside organs. Queries are explicit ("the liver") or implicit ("the kidney that contains
# the cyst"). MedVol-R1 shows the model axial slices and asks for a key slice and boxes.

# %%
ct_train = load_benchmark(bench, "m3d_refseg", "train")
for i, rec in enumerate(ct_train[:2]):
    fig = plot_volume_slices(rec.load_volume(), rec.load_mask(), title=rec.query)
    save_figure(fig, f"01_ct_volume_{i}")

# %% [markdown]
# ## Dataset statistics
#
# Box size and position per finding and split; target volume and axial extent per structure.
# Written to `results/data/` for the tables notebook.

# %%
splits = ("train", "val", "test")
recs_2d = [r for name in ("ms_cxr", "chestxray8", "umrg") for s in splits for r in load_benchmark(bench, name, s)]
stats_2d = describe_2d(recs_2d)
recs_3d = [r for s in splits for r in load_benchmark(bench, "m3d_refseg", s)]
stats_3d = describe_3d(recs_3d)
out = results_dir("data")
stats_2d.to_csv(out / f"benchmark_stats_2d_{bench_profile}.csv", index=False)
stats_3d.to_csv(out / f"benchmark_stats_3d_{bench_profile}.csv", index=False)
stats_2d[stats_2d.split == "test"]

# %%
stats_3d

# %% [markdown]
# ## Real annotations available offline: the ChestX-ray8 box table
#
# The real NIH `BBox_List_2017.csv` (984 boxes, no images) ships inside the `torchxrayvision` wheel.
# The same adapter reads it; comparing its relative box sizes per finding with the synthetic
# ChestX-ray8 part checks that the benchmark's boxes are in a realistic range (the real images are
# 1024 x 1024).

# %%
table = real_chestxray8_box_table()
if table is None:
    print("torchxrayvision is not installed: pip install torchxrayvision to compare with the real box table")
else:
    real = load_chestxray8(table)
    real_area = pd.DataFrame(
        {"label": [r.label for r in real], "rel_area": [(b[2] - b[0]) * (b[3] - b[1]) / 1024**2 for r in real for b in r.boxes]}
    ).groupby("label").rel_area.median().rename("real median rel. area")
    synth = load_benchmark(bench, "chestxray8", "train")
    size = synth[0].load_image().shape[0]
    synth_area = pd.DataFrame(
        {"label": [r.label for r in synth], "rel_area": [(b[2] - b[0]) * (b[3] - b[1]) / size**2 for r in synth for b in r.boxes]}
    ).groupby("label").rel_area.median().rename("synthetic median rel. area")
    comparison = pd.concat([real_area, synth_area], axis=1).round(4)
    comparison.to_csv(results_dir("data") / f"chestxray8_box_area_real_vs_synthetic_{bench_profile}.csv")
    display(comparison)

# %% [markdown]
# ## Real datasets
#
# Set `DATA_ROOT` to a folder holding `ms_cxr/`, `chestxray8/`, `umrg/` and `m3d_refseg/` in their
# released layouts (see the README for where each comes from). Missing ones are reported, not fatal.

# %%
found = find_real_datasets(DATA_ROOT)
if not DATA_ROOT:
    print("DATA_ROOT is empty: no real datasets read (the embedded benchmark above stands in for them).")
for name, root in found.items():
    if root is None:
        print(f"{name:12s} not found" + (f" under {DATA_ROOT}" if DATA_ROOT else ""))
        continue
    recs = load_dataset(name, root, "test")
    print(f"{name:12s} {len(recs)} test records from {root}")
