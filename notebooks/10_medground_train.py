# %% [markdown]
# # 10 · MedGround-R1: training, and the paper's ablations at small scale
#
# MedGround-R1 (Xu et al., MICCAI 2025) trains Qwen2.5-VL-7B with GRPO to answer a referring phrase
# with a box, rewarded by **format** (the `<think>`/`<answer>` template), **spatial** accuracy
# (1 if IoU > 0.5, else 0) and **semantic** consistency (CLIP similarity of the box's crop and the
# phrase), summed with weights 1 and normalised within each group of $G$ completions. Its ablations:
#
# * **Table 2**: the group size $G \in \{2, 4, 6, 8\}$;
# * **Table 3**: removing one reward at a time;
# * **Table 4**: SFT vs GRPO at equal steps, and Chain-of-Box reasoning. This notebook runs the
#   equal-steps pair (`sft_more` vs `G4`); the Chain-of-Box arm needs an SFT start trained on the
#   Chain-of-Box template (`data.template: chain_of_box`) and is not run on the CPU profiles.
#
# This notebook runs the same comparisons with medlib's trainer (TRL `GRPOTrainer` with the paper's
# rewards from `medlib.rewards`) at the scale the profile allows, every arm starting from the same
# SFT checkpoint (the CPU profile needs an SFT cold start: a small model from random initialisation
# cannot find the answer format by sampling; docs/grpo.md). The arms, their training
# and their evaluation are `medlib.study.ablation.run_ablation`; the configs are
# `configs/medground/<profile>.yaml`. Runs are cached in the run folder: rerunning the notebook
# reuses every finished arm and resumes an interrupted one.
#
# **Why a small random model, with a vision warm-up (decided by measurement).** The CPU profile's
# model is a Qwen2.5-VL of the real architecture, built from a config with random weights
# (`medlib.models`), so that the CPU run takes exactly the code path of the full configs (the same
# processor, M-RoPE, TRL trainers). Pretrained parts that ship offline (LiteMedSAM's TinyViT encoder,
# SmolLM2-135M) were the fallback if such a model could not learn in the budget; it can. On the
# benchmark of a feasibility study (docs/grpo.md#small-models-on-a-cpu), SFT alone collapsed to the mean box and a short **dense
# warm-up of the vision tower** fixed it (`python -m medlib.train vision`,
# `medlib/train/vision_warmup.py`: for every merged image token a linear head predicts which finding
# classes cover it; binary cross-entropy; 300 steps in under a minute). On this chest benchmark SFT
# without the warm-up does not collapse: 200 SFT steps from seed 0 give 27.7 mIoU / 24 Acc without it
# and 27.4 / 26 with it (without it over 3 seeds: 26.5-29.4 / 21-27, `results/learning_study_smoke.json`).
# So the smoke config leaves the warm-up out (it would cost 20 s of the batch's 20 minutes) and the
# learning-study config (`configs/medground/learning.yaml`) keeps it as the recipe known to work
# (`vision.enabled: true` switches it on anywhere). Whether GRPO
# improves on SFT is the three-seed learning study (`python -m medlib.study.learning --config
# configs/medground/learning.yaml --seeds 0 1 2`, `results/learning_study_learning.*`), shown at the
# end of this notebook.
#
# **Scale.** `tiny` checks the pipeline only (toy images, a few steps: its numbers mean nothing);
# `smoke` is a small Qwen2.5-VL trained on a CPU on the embedded chest benchmark; `full` is the
# paper's setting (Qwen2.5-VL-7B, MS-CXR, GPUs). Our numbers are written to `results/ours/` labelled
# with their scale, and `90_tables` puts them beside the paper's.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny | smoke | full: picks configs/medground/<PROFILE>.yaml
SEED = 0
SEEDS = [0]                # seeds of every arm (the learning study, results/learning_study_*, uses 3)
BENCH_ROOT = "build/data"  # not read: the config names its data folder
DATA_ROOT = ""             # full profile: the MS-CXR folder, overriding the config's data.root
EVAL_LIMIT = None          # evaluate on the first N test records (None: all)

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from medlib.paths import repo_path, results_dir
from medlib.report.figures import plot_ablation, plot_training_curves
from medlib.report.tables import our_data, our_model, ours_rows, write_ours
from medlib.report.viz import save_figure
from medlib.study.ablation import Variant, mean_over_seeds, run_ablation, start_run
from medlib.train import load_config

overrides = [f"seed={SEED}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
cfg = load_config(repo_path(f"configs/medground/{PROFILE}.yaml"), overrides)
print(f"model {cfg.model.name_or_path}, data {cfg.data.source} at {cfg.data.root}; "
      f"GRPO: G {cfg.grpo.num_generations}, beta {cfg.grpo.beta}, lr {cfg.grpo.learning_rate}, "
      f"{cfg.grpo.max_steps} steps of {cfg.grpo.batch_size} prompts")

# %% [markdown]
# ## The SFT checkpoint every arm starts from

# %%
start = start_run(cfg)
print(f"SFT: {start['steps']} steps, {start['train_seconds']} s{' (reused)' if start['reused'] else ''}")
start_model = start["model_dir"]

# %% [markdown]
# ## The arms
#
# All GRPO arms run the same number of steps from the same checkpoint; `sft_more` continues SFT for
# as many steps instead (the equal-steps control of Table 4). Rewards are the paper's set unless the
# arm removes one.

# %%
paper_rewards = dict(cfg.grpo.rewards or {"format": 1.0, "spatial": 1.0, "semantic": 1.0})
G4 = {"grpo": {"num_generations": 4}}  # the paper's G, for every arm that does not vary G
without = lambda name: {"grpo": {"num_generations": 4,
                                 "rewards": {k: v for k, v in paper_rewards.items() if k != name}}}
variants = [
    Variant("G2", overrides={"grpo": {"num_generations": 2}}),
    Variant("G4", overrides=G4),  # the paper's setting: also Table 3's "all rewards" arm
    Variant("G8", overrides={"grpo": {"num_generations": 8}}),
    Variant("no_format", overrides=without("format")),
    Variant("no_spatial", overrides=without("spatial")),
    Variant("no_semantic", overrides=without("semantic")),
    Variant("sft_more", stage="sft", overrides={"sft": {"max_steps": cfg.grpo.max_steps, "init_from": start_model}}),
]
runs = run_ablation(cfg, start_model, variants, group=f"medground_{PROFILE}", seeds=SEEDS, limit=EVAL_LIMIT,
                    profile=PROFILE, include_start="sft_start")
runs.to_csv(results_dir() / f"medground_ablation_{PROFILE}.csv", index=False)
summary = mean_over_seeds(runs, ("mIoU", "Acc"))
display(runs[["variant", "seed", "stage", "steps", "train_seconds", "n", "refusals", "mIoU", "mIoU_lo", "mIoU_hi",
              "Acc", "Acc_lo", "Acc_hi"]].round(2))

# %%
fig = plot_ablation(f"medground_ablation_{PROFILE}", runs)
save_figure(fig, "10_medground_ablations")
plt.show()

# %% [markdown]
# ## Training curves
#
# Per-reward means logged by the trainer at every logging step (`results/training/`).

# %%
fig = plot_training_curves(f"medground_{PROFILE}")
save_figure(fig, "10_medground_training_curves")
plt.show()

# %% [markdown]
# ## Our rows for the paper's tables
#
# Each number is labelled with what produced it; `90_tables` shows them beside the paper's.

# %%
scale = (f"{cfg.model.name_or_path} model, {cfg.data.source} data, {cfg.grpo.max_steps} GRPO steps "
         f"from {start['steps']} SFT steps, profile {PROFILE}")
first = runs[runs["seed"] == SEEDS[0]].set_index("variant")
labels = dict(stands_for="MS-CXR", dataset=our_data(cfg), profile=PROFILE, scale=scale)
# our model and data name the row; the printed row it sits beside goes in beside_* (none for Table 4's step counts)
rows_for = lambda arm, setting, beside=True: ours_rows(
    first.loc[arm], our_model(cfg), setting, ("mIoU", "Acc"), beside_method="MedGround-R1" if beside else "",
    beside_setting=setting if beside else "", **labels)
write_ours(rows_for("G2", "G=2") + rows_for("G4", "G=4") + rows_for("G8", "G=8"),
           "medground-r1", "2", f"10_medground_train_{PROFILE}")
write_ours(rows_for("G4", "all rewards") + rows_for("no_format", "w/o R_format")
           + rows_for("no_spatial", "w/o R_spatial") + rows_for("no_semantic", "w/o R_semantic"),
           "medground-r1", "3", f"10_medground_train_{PROFILE}")
write_ours(rows_for("sft_start", f"SFT-{start['steps']}", False)
           + rows_for("sft_more", f"SFT-{start['steps'] + cfg.grpo.max_steps}", False)
           + rows_for("G4", f"SFT-{start['steps']} + GRPO-{cfg.grpo.max_steps}", False),
           "medground-r1", "4", f"10_medground_train_{PROFILE}")
print("written to", results_dir("ours"))

# %% [markdown]
# ## Does GRPO improve on SFT? The three-seed learning study
#
# Per seed: vision warm-up and SFT (the start), then from that checkpoint both GRPO with the paper's
# rewards and, as the control, SFT continued for as many steps; all three evaluated on the held-out
# split. The study is a command of its own (it takes about half an hour on 2 cores); this cell only
# reads its results. Intervals are bootstrap 95% over the 100 test images of one seed; the
# differences are paired per seed.

# %%
from medlib.study.learning import load_study

study = load_study("learning")
if study is None:
    print("no results/learning_study_learning.json yet: python -m medlib.study.learning "
          "--config configs/medground/learning.yaml --seeds 0 1 2")
else:
    display(study["per_seed"])
    display(study["means"])
    display(study["differences"])

# %% [markdown]
# ## The effects, with power: five seeds, 300 test images, settings chosen on validation
#
# The study (`python -m medlib.study run --spec configs/studies/medground_r1.yaml`; its spec says
# how each setting was chosen) trains, per seed, one SFT start and from it every arm: GRPO with the
# paper's three rewards, SFT continued for as many steps (Table 4's control) and for about GRPO's
# wall time, and Table 3's arms without one reward. Every hyper-parameter of GRPO and of the
# control was chosen on the 200 validation images (`results/study/medground/selection_*.csv`); the
# test split is read only here. A claim's delta is paired (same seed, same test images); its
# interval resamples seeds and images, and the verdict is `shown` only when that interval excludes
# zero in the paper's direction. This cell reads the committed results; it trains nothing.

# %%
from medlib.study.effects import load_effects
from medlib.study.report import arm_means, explain, plot_passk, plot_signal, selection_table, study_files

files = study_files("medground")
if "arms" not in files:
    print("no study results yet: python -m medlib.study run --spec configs/studies/medground_r1.yaml")
else:
    for name in ("selection_grpo", "selection_sft_more"):
        if name in files:
            display(selection_table(files[name]))
    display(arm_means(files["arms"]))
    effects = load_effects("MedGround-R1")
    if effects is not None:
        display(effects[["table", "claim", "metric", "seeds", "n_test", "delta", "ci_lo", "ci_hi", "paper_delta",
                         "verdict"]])

# %% [markdown]
# ### Why: what sampling could already find, and where the GRPO signal came from
#
# pass@k samples 16 answers per test image at the GRPO temperature: if GRPO raises pass@1 but not
# pass@16, it *sharpened* answers the SFT start could already sample. The per-step diagnostics
# (logged by every GRPO run, `medlib.train.diagnostics`) say how often a group's completions all
# earned the same spatial reward (then only the other rewards move the advantages) and each
# reward's share of the advantage variance.

# %%
if "passk" in files:  # saved as figures/91_study_medground_passk.* by the study command and notebook 91
    plot_passk(files["passk"])
    plt.show()
if "diagnostics" in files:  # figures/91_study_medground_grpo_signal.*
    plot_signal("medground")
    plt.show()
print(explain("medground", "MedGround-R1"))
