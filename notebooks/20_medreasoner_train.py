# %% [markdown]
# # 20 · MedReasoner: the three reward designs
#
# MedReasoner (Yan et al. 2025) trains a clinical reasoning model (Lingshu-7B) with GRPO to answer an
# *implicit* question with a box and two key points, which a frozen MedSAM2 turns into a mask. Its
# Table 3 compares three ways to reward the box and the points (derived in `02_rewards`):
#
# * **soft** (the paper's choice): graded format, smoothed box IoU and points Dice, with validity
#   penalties;
# * **hard**: soft plus alignment, scale and angle terms;
# * **base**: the Seg-Zero-style rewards (thresholded IoU and L1 distances);
#
# each against the SFT model they start from. Here every arm starts from one SFT checkpoint and runs
# the same GRPO steps (`medlib.study.ablation.run_ablation`); box IoU and pDice are measured on the
# held-out split, the mask Dice through the segmenter in `21_medreasoner_eval`.
#
# **Scale.** On a CPU (`tiny`, `smoke`) the arms use MedReasoner's *direct* prompt (answer only,
# about 40 tokens): its reasoning prompt makes completions of about 300 tokens, which a small model
# neither learns in minutes nor samples fast enough for GRPO on 2 cores. `full` uses the reasoning
# prompt, as the paper does. The CPU start model is a randomly initialised Qwen2.5-VL
# trained by SFT alone (3,200 answers); `configs/medreasoner/smoke.yaml` records what shorter SFT
# and notebook 10's vision warm-up measured.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny | smoke | full: configs/medreasoner/<PROFILE>.yaml
SEED = 0
SEEDS = [0]
BENCH_ROOT = "build/data"  # not read: the config names its data folder
DATA_ROOT = ""             # full profile: the U-MRG-14K folder
EVAL_LIMIT = None
TEMPLATE = ""              # "": direct on CPU profiles, reasoning on full (see above)

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from medlib.paths import repo_path, results_dir
from medlib.report.figures import plot_ablation
from medlib.report.tables import our_data, our_model, write_ours
from medlib.report.viz import save_figure
from medlib.study.ablation import Variant, mean_over_seeds, run_ablation, start_run
from medlib.study.report import describe_arms
from medlib.train import load_config

template = TEMPLATE or ("reasoning" if PROFILE == "full" else "direct")
overrides = [f"seed={SEED}", f"data.template={template}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
if template == "direct" and PROFILE != "tiny":
    overrides.append("grpo.max_completion_length=64")
cfg = load_config(repo_path(f"configs/medreasoner/{PROFILE}.yaml"), overrides)
print(f"model {cfg.model.name_or_path}, data {cfg.data.source} at {cfg.data.root}, template {cfg.template}; "
      f"GRPO: G {cfg.grpo.num_generations}, beta {cfg.grpo.beta}, {cfg.grpo.max_steps} steps")
start = start_run(cfg)
print(f"SFT: {start['steps']} steps, {start['train_seconds']} s{' (reused)' if start['reused'] else ''}")

# %%
mode = lambda m: {"grpo": {"rewards": None, "reward_options": {**cfg.grpo.reward_options, "mode": m}}}
variants = [Variant("soft", overrides=mode("soft")), Variant("hard", overrides=mode("hard")),
            Variant("base", overrides=mode("base")),
            Variant("sft_more", stage="sft", overrides={"sft": {"max_steps": cfg.grpo.max_steps}})]
group = f"medreasoner_{PROFILE}_{template}"
runs = run_ablation(cfg, start["model_dir"], variants, group=group, seeds=SEEDS, limit=EVAL_LIMIT, profile=PROFILE,
                    include_start="sft_start")
runs.to_csv(results_dir() / f"medreasoner_modes_{PROFILE}.csv", index=False)
display(runs[["variant", "seed", "steps", "train_seconds", "n", "refusals", "mIoU", "mIoU_lo", "mIoU_hi",
              "pDice", "pDice_lo", "pDice_hi"]].round(2))
display(mean_over_seeds(runs, ("mIoU", "pDice")).round(2))

# %% [markdown]
# ## What these numbers say
#
# Each arm against the SFT start it started from, on the first seed's test split (intervals:
# bootstrap 95% over the test images). At this scale (a tiny model, a few GRPO steps, a few dozen test images) overlapping intervals are the
# expected outcome and say only that one seed on a small split cannot tell the arms apart; whether
# the paper's Table 3 ordering (soft above hard and base, RL above SFT) holds is the effect study's question (the last section).

# %%
print(describe_arms(runs, ("IoU", "pDice"), "sft_start", SEEDS[0]))


# %%
fig = plot_ablation(f"medreasoner_modes_{PROFILE}", runs)
save_figure(fig, "20_medreasoner_reward_modes")
plt.show()

# %%
scale = (f"{cfg.model.name_or_path} model, {cfg.data.source} data, {template} prompt, SFT {start['steps']} + "
         f"GRPO {cfg.grpo.max_steps} steps, box metrics only (mask Dice: notebook 21), profile {PROFILE}")
first = runs[runs["seed"] == SEEDS[0]].set_index("variant")
# our model and data name the row; the printed row (the paper's reasoning-prompt Lingshu arms) goes in beside_*
arms = {"sft_start": "w/ SFT", "soft": "w/ RL(Soft)", "hard": "w/ RL(Hard)", "base": "w/ RL(Base)"}
labels = dict(setting=f"{template} prompt", stands_for="U-MRG-14K", dataset=our_data(cfg), profile=PROFILE,
              scale=scale, note=f"IoU, pDice: the {cfg.evaluation.metric_variant} variant")
rows = []
for v, arm in arms.items():
    r = first.loc[v]
    at = dict(method=f"{our_model(cfg)} {arm}", beside_method=f"Lingshu {arm}", beside_setting="reasoning prompt")
    for metric in ("IoU", "pDice"):
        rows.append(dict(**at, **labels, metric=metric, value=float(r[metric]), ci_low=float(r[f"{metric}_lo"]),
                         ci_high=float(r[f"{metric}_hi"]), n=int(r["n"])))
    rows.append(dict(**at, **labels, metric="refusals", value=float(r["refusals"]), n=int(r["n"])))
write_ours(rows, "medreasoner", "3", f"20_medreasoner_train_{PROFILE}")

# %% [markdown]
# ## The effects, with power
#
# The effect study of this paper (several seeds, settings chosen on the validation split, paired
# intervals over seeds and test items, a verdict computed from them) has the same runner as
# MedGround-R1's, `medlib.study`. This cell shows its rows of `results/effects.csv` and what they
# mean when the study has run, and says so when it has not.

# %%
from medlib.study.report import paper_effects

table, meaning = paper_effects("medreasoner", "MedReasoner")
if table is not None:
    display(table)
print(meaning)
