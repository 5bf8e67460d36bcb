# %% [markdown]
# # 11 · MedGround-R1: evaluation
#
# The MedRPG protocol MedGround-R1 follows (Sec. 3): greedy decoding, the box parsed from
# `<answer>` with the paper's integer regex, mapped from the model's resized frame back to the
# image, and scored against the ground truth by **mIoU** (mean IoU over all phrases, a missing box
# scoring 0) and **Acc** (the fraction with IoU > 0.5), each with a bootstrap 95% interval. Answers
# without a usable box are counted as refusals.
#
# This notebook evaluates the GRPO model of notebook 10 (the paper's setting, G = 4, all three
# rewards) and the SFT checkpoint it started from on the whole test split, writes per-sample
# predictions (`predictions.jsonl`) and a summary with provenance, draws qualitative examples like
# the paper's Fig. 2, and writes our row of Table 1.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny | smoke | full: configs/medground/<PROFILE>.yaml, as in notebook 10
SEED = 0
BENCH_ROOT = "build/data"  # not read: the config names its data folder
DATA_ROOT = ""             # full profile: the MS-CXR folder
EVAL_LIMIT = None

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from medlib.paths import repo_path, results_dir
from medlib.report.tables import our_data, our_model, write_ours
from medlib.report.viz import plot_prediction_examples, save_figure
from medlib.study.ablation import Variant, evaluate_model, start_run, train_variant, variant_config
from medlib.train import load_config
from medlib.train.datasets import load_records

overrides = [f"seed={SEED}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
cfg = load_config(repo_path(f"configs/medground/{PROFILE}.yaml"), overrides)
group = f"medground_{PROFILE}"
start = start_run(cfg)  # reused from notebook 10 when it ran with this config
grpo_cfg = variant_config(cfg, Variant("G4", overrides={"grpo": {"num_generations": 4}}), start["model_dir"], group, SEED)
grpo = train_variant(grpo_cfg, "grpo")
print(f"SFT model: {start['model_dir']}\nGRPO model: {grpo['model_dir']}")

# %%
out = results_dir("eval", group)
summaries = {}
for name, c, model_dir in (("SFT", cfg, start["model_dir"]), ("GRPO", grpo_cfg, grpo["model_dir"])):
    summaries[name] = evaluate_model(c, model_dir, out / name, limit=EVAL_LIMIT, profile=PROFILE)
table = pd.DataFrame({k: {"n": s["n"], "refusals": s["refusals"],
                          **{f"{m} (%)": f"{s['metrics'][m]['mean']:.2f} [{s['metrics'][m]['ci_low']:.1f}, "
                                         f"{s['metrics'][m]['ci_high']:.1f}]" for m in ("mIoU", "Acc")}}
                      for k, s in summaries.items()}).T
display(table)

# %% [markdown]
# ## Qualitative examples
#
# Solid: ground truth; dashed: the GRPO model's box (mapped back to the image). Rows: the best, a
# typical and the worst predictions by IoU.

# %%
preds = [json.loads(line) for line in (out / "GRPO" / "predictions.jsonl").read_text().splitlines()]
records = {r.sample_id: r for r in load_records(grpo_cfg, "test")}
fig = plot_prediction_examples(preds, records, key="iou", label="IoU",
                               title="MedGround-R1 GRPO (G = 4), test split: best, median and worst IoU")
save_figure(fig, "11_medground_qualitative")
plt.show()

# %%
s = summaries["GRPO"]
scale = f"{cfg.model.name_or_path} model, {cfg.data.source} data, SFT {start['steps']} + GRPO {grpo['steps']} steps, profile {PROFILE}"
write_ours([dict(method=f"{our_model(cfg)} (SFT + GRPO)", setting="", beside_method="Ours", metric=m, value=s["metrics"][m]["mean"], ci_low=s["metrics"][m]["ci_low"],
                 ci_high=s["metrics"][m]["ci_high"], n=s["n"], stands_for="MS-CXR", dataset=our_data(cfg), profile=PROFILE,
                 scale=scale) for m in ("mIoU", "Acc")],
           "medground-r1", "1", f"11_medground_eval_{PROFILE}")
print(json.dumps({k: v["metrics"] for k, v in summaries.items()}, indent=1)[:600])
