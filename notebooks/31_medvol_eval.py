# %% [markdown]
# # 31 · MedVol-R1: volumetric evaluation
#
# MedVol-R1 scores the final 3D mask, not the boxes: the model's key slice and boxes go to the
# segmenter, which propagates them through the whole volume (forward, then backward from the key
# slice), and the result is compared with the ground-truth mask by volumetric **DSC** and **IoU**
# (Table 1). Notebook 30 trained the arms and evaluated them with `medlib.evaluate.evaluate_3d`
# (per-volume predictions in `runs/medvol_<profile>/_eval/<arm>_seed<s>/predictions.jsonl`); this
# notebook shows one propagation slice by slice, reads the arms' numbers and writes our rows of
# Tables 1 and 2a/2b.

# %% tags=["parameters"]
PROFILE = "smoke"
SEED = 0
BENCH_ROOT = "build/data"
DATA_ROOT = ""             # full profile: the M3D-Seg folder, as in notebook 30
EVAL_LIMIT = 0             # 0: 4 test volumes on CPU profiles, all on full (as notebook 30, whose evaluations this reuses)

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from medlib.paths import repo_path
from medlib.report.tables import our_data, our_model, ours_rows, write_ours
from medlib.report.viz import plot_propagated_slices, save_figure
from medlib.segment import build_segmenter
from medlib.study.ablation import MEDVOL_CPU_ARMS, medvol_arms, medvol_segmenter, run_ablation, start_run
from medlib.study.report import describe_arms
from medlib.train import load_config
from medlib.train.datasets import load_records

overrides = [f"seed={SEED}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
cfg = load_config(repo_path(f"configs/medvol/{PROFILE}.yaml"), overrides)
# notebook 30's arms: every run and evaluation is reused from its run folders (trained here only if missing)
arms = medvol_arms(cfg)
names = list(arms) if PROFILE == "full" else list(MEDVOL_CPU_ARMS)
start = start_run(cfg)
runs = run_ablation(cfg, start["model_dir"], [arms[a] for a in names], group=f"medvol_{PROFILE}", seeds=[SEED],
                    limit=EVAL_LIMIT or (None if PROFILE == "full" else 4), profile=PROFILE, include_start="sft_only",
                    segmenter=medvol_segmenter())
display(runs.round(2))

# %% [markdown]
# ## What these numbers say
#
# Each arm against the SFT-only model it started from, on the first seed's test split (intervals:
# bootstrap 95% over the test volumes). At this scale (a tiny model, two GRPO steps, four test volumes) overlapping intervals are the
# expected outcome and say only that one seed on a small split cannot tell the arms apart; whether
# the paper's Table 1 and 2a directions (SFT+RL above pure SFT) holds is the effect study's question (the last section).

# %%
print(describe_arms(runs, ("DSC", "IoU"), "sft_only", SEED))


# %% [markdown]
# ## One volume, slice by slice
#
# The full arm's answer on the first test volume: its key slice and boxes, and the mask the segmenter
# propagates from them, against the ground truth, on slices around the key slice.

# %%
pred_path = repo_path(cfg.output_dir) / f"medvol_{PROFILE}" / "_eval" / f"full_seed{SEED}" / "predictions.jsonl"
preds = [json.loads(line) for line in pred_path.read_text().splitlines()]
records = {r.sample_id: r for r in load_records(cfg, "test")}
p = max(preds, key=lambda q: q.get("dsc", 0.0))
rec = records[p["sample_id"]]
vol, gt = rec.load_volume(), rec.load_mask() > 0
print({k: p[k] for k in p if k in ("sample_id", "query", "key_slice", "key_z", "boxes", "dsc", "iou", "refused")})
# the figure shows |t - k| <= 4: propagating 4 slices out from the key slice gives those slices' masks
# exactly as the evaluation's whole-volume propagation did (slice by slice outward), at a fraction of the cost
seg = build_segmenter({"name": "litemedsam", "max_propagation_distance": 4})
z = p.get("key_z")
if z is not None and p.get("boxes"):
    pred = seg.propagate_3d(vol, int(z), p["boxes"])
    zs = [t for t in range(int(z) - 4, int(z) + 5, 2) if 0 <= t < vol.shape[0]]
else:
    pred, zs = np.zeros_like(gt), list(np.linspace(0, vol.shape[0] - 1, 5).astype(int))
fig = plot_propagated_slices(vol, gt, pred, zs, key_z=None if z is None else int(z), window=(40, 400),
                             boxes=p.get("boxes") or [], title=p.get("query", ""))
save_figure(fig, "31_medvol_propagation")
plt.show()

# %%
first = runs[runs["seed"] == SEED].set_index("variant")
scale = (f"{cfg.model.name_or_path} model, {cfg.data.source} volumes, {cfg.data.n_slices} slices, LiteMedSAM propagation, "
         f"profile {PROFILE}")
labels = dict(stands_for="AbdomenCT-1K", dataset=our_data(cfg), profile=PROFILE, scale=scale)
# our model and data name the row; the printed row it sits beside goes in beside_*
rows = lambda arm, method, setting, beside, beside_setting: ours_rows(
    first.loc[arm], method, setting, ("DSC", "IoU"), beside_method=beside, beside_setting=beside_setting, **labels)
write_ours(rows("sft_only", f"{our_model(cfg)} (Pure SFT)", "", "Ours (Pure SFT)", "")
           + rows("full", f"{our_model(cfg)} (SFT+RL)", "", "Ours (SFT+RL)", ""),
           "medvol-r1", "1", f"31_medvol_eval_{PROFILE}")
settings = {"full": "Full", "sft_only": "SFT only", "rl_only": "RL only (w/o SFT)", "no_Rf": "w/o R_f",
            "no_Ra": "w/o R_a", "no_Rs": "w/o R_s", "no_Rc": "w/o R_c"}
write_ours([row for arm, s in settings.items() if arm in first.index
            for row in rows(arm, our_model(cfg), s, "MedVol-R1", s)],
           "medvol-r1", "2a", f"31_medvol_eval_{PROFILE}")
deltas = {"delta2": "Delta=2", "delta5": "Delta=5"}
if any(a in first.index for a in deltas):
    write_ours([row for arm, s in deltas.items() if arm in first.index
                for row in rows(arm, our_model(cfg), s, "MedVol-R1", s)],
               "medvol-r1", "2b", f"31_medvol_eval_{PROFILE}")
