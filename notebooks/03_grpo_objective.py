# %% [markdown]
# # 03 · The GRPO objective, term by term
#
# MedGround-R1, MedReasoner and MedVol-R1 all train with the GRPO objective of DeepSeekMath. This
# notebook computes every term of it by hand on a toy batch (2 prompts × $G = 4$ completions):
# group-normalised advantages, the per-token importance ratio and its clipping, and the KL
# estimator, then the loss under the four token aggregations TRL offers. Each number is checked
# against TRL 1.16's own `GRPOTrainer` code on the same tensors, value and gradient. The notebook
# ends with the settings where TRL's defaults are not the papers' objective.
#
# **Objective.** For a prompt $q$, $G$ completions $o_i$ are sampled from $\pi_{\theta_\text{old}}$
# and scored, $r_i = R(o_i, q)$. The advantage normalises within the group (MedGround-R1 Eq. 1,
# MedVol-R1 Eq. 2, MedReasoner Eq. 13):
#
# $$A_i = \frac{r_i - \operatorname{mean}(r_1, \dots, r_G)}{\operatorname{std}(r_1, \dots, r_G) + \varepsilon_A},$$
#
# with the unbiased (Bessel) standard deviation and $\varepsilon_A = 10^{-4}$, as in TRL and
# MedGround-R1's released trainer. The ratio is taken per token (MedReasoner Eq. 12),
#
# $$\rho_{i,t} = \frac{\pi_\theta(o_{i,t} \mid q, o_{i,<t})}{\pi_{\theta_\text{old}}(o_{i,t} \mid q, o_{i,<t})},$$
#
# and the objective clips it and subtracts a KL penalty to a frozen reference policy
# (MedGround-R1 Eq. 4, MedVol-R1 Eq. 3, written per token as MedReasoner Eq. 12):
#
# $$\mathcal J(\theta) = \frac{1}{G}\sum_{i=1}^{G} \frac{1}{|o_i|}\sum_{t=1}^{|o_i|}
# \Big[\min\big(\rho_{i,t} A_i,\ \operatorname{clip}(\rho_{i,t}, 1-\epsilon, 1+\epsilon)\, A_i\big)
# - \beta\, \hat D_{i,t}\Big],\qquad
# \hat D_{i,t} = \frac{\pi_\text{ref}(o_{i,t})}{\pi_\theta(o_{i,t})} - \log\frac{\pi_\text{ref}(o_{i,t})}{\pi_\theta(o_{i,t})} - 1 .$$
#
# $\hat D$ is DeepSeekMath's per-token ("k3") estimator of $D_\text{KL}(\pi_\theta \,\|\, \pi_\text{ref})$.
# The loss is $\mathcal L = -\mathcal J$. MedGround-R1 and MedVol-R1 write the ratio of whole
# sequences, $\pi_\theta(s_i \mid q) / \pi_{\theta_\text{old}}(s_i \mid q)$; the released
# trainers and TRL use the per-token form above.
#
# **Check against TRL.** `medlib.grpo_objective.grpo_loss_by_hand` writes the equations out in
# float64. `trl_grpo_loss_on` runs TRL's code on the same numbers. It builds a real `GRPOConfig`, and
# a `GRPOTrainer` subclass that sets only the attributes the two methods below read, the way
# `GRPOTrainer.__init__` sets them; generation is replaced by the fixed toy completions.
# TRL's `_generate_and_score_completions` then computes the advantages (from a reward function
# reading the toy rewards), the reference log-probabilities and, off-policy, the old ones.
# `_compute_loss` computes the loss, which is back-propagated. The policy, old policy and reference
# are bigram language models whose weights encode the chosen per-token log-probabilities
# (`ControlledLogpsLM`), run through TRL's fused float32 LM head, so TRL reads the toy
# log-probabilities from a model, as in training.

# %% tags=["parameters"]
PROFILE = "smoke"          # size of the KL Monte-Carlo study: tiny | smoke | full (the toy batch is the same)
SEED = 0                   # seeds the toy batch's log-probabilities and the Monte-Carlo samples
BENCH_ROOT = "build/data"  # not read here: the toy batch is built in memory
DATA_ROOT = ""             # not read here

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from medlib.grpo_objective import (
    LOSS_TYPES,
    TOY_LENGTHS,
    TOY_REWARDS,
    clipped_surrogate,
    compare_with_trl,
    group_advantages,
    grpo_loss_by_hand,
    k3_kl,
    kl_estimators_vs_exact,
    paper_settings_vs_trl_defaults,
    token_weights,
    toy_batch,
    with_provenance,
)
from medlib.paths import results_dir
from medlib.report.viz import save_figure

torch.set_num_threads(1)
pd.set_option("display.width", 200)
N_SAMPLES = {"tiny": 2000, "smoke": 4000, "full": 20000}.get(PROFILE, 4000)
batch = toy_batch(seed=SEED)
G = batch["num_generations"]
names = [f"q{i // G + 1}·o{i % G + 1}" for i in range(len(TOY_REWARDS))]
print("rewards:", TOY_REWARDS, "| completion lengths:", TOY_LENGTHS, "| G =", G)

# %% [markdown]
# ## 1 · Rewards → advantages
#
# Prompt $q_1$ has binary outcomes (two of four completions hit, as with MedGround-R1's format +
# spatial rewards), $q_2$ graded sums. For $q_1$, rewards $[1, 0, 0, 1]$: mean $0.5$, deviations
# $\pm 0.5$, unbiased variance $4 \cdot 0.25 / 3 = 1/3$, std $0.57735$, so
# $A = \pm 0.5 / (0.57735 + 10^{-4}) = \pm 0.8659$ (exactly $\pm\sqrt 3 / 2$ without
# $\varepsilon_A$; a population std would give $\pm 1$).
#
# TRL's `scale_rewards` offers three divisors: `"group"` (the papers: the std of the prompt's
# group), `"batch"` (the std of all rewards in the batch, still centred on the group mean) and
# `"none"` (no division, as Dr. GRPO proposes). A group whose rewards are all equal gets
# $A = 0$ under every variant and contributes nothing to the policy gradient.

# %%
adv = pd.DataFrame({"completion": names, "length": TOY_LENGTHS, "reward": TOY_REWARDS,
                    **{f"A ({s})": group_advantages(batch["rewards"], G, s).numpy() for s in ("group", "batch", "none")}})
display(adv.round(4))
print("group means:", batch["rewards"].view(-1, G).mean(1).tolist(),
      "| group stds (unbiased):", [round(v, 5) for v in batch["rewards"].view(-1, G).std(1).tolist()])

# %% [markdown]
# ## 2 · Importance ratio and clipping
#
# $\pi_\theta$ has moved away from $\pi_{\theta_\text{old}}$ by up to $\pm 0.4$ nats per token, as
# after a few optimiser steps on the same batch (`num_iterations` > 1). The clipped surrogate
# $\min(\rho A, \operatorname{clip}(\rho, 1-\epsilon, 1+\epsilon) A)$ is a pessimistic bound: for
# $A > 0$ it stops rewarding ratios above $1 + \epsilon$, for $A < 0$ it stops penalising ratios
# below $1 - \epsilon$. On those tokens the surrogate is constant in $\theta$, so they pass no
# gradient; everywhere else the unclipped term is kept. The curves show the surrogate divided by
# $|A|$; the dots are the toy batch's tokens, filled where the clip is active ($\epsilon = 0.2$).

# %%
parts = grpo_loss_by_hand(batch["logps"], batch["old_logps"], batch["ref_logps"], batch["mask"], batch["rewards"], G,
                          beta=0.04, eps=0.2, loss_type="grpo")
m = batch["mask"].bool()
rho = np.linspace(0.3, 1.9, 400)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, sign in zip(axes, (1, -1)):
    a = torch.full((len(rho),), float(sign), dtype=torch.float64)
    ax.plot(rho, sign * rho, ":", color="grey", label="unclipped ρA/|A|")
    ax.plot(rho, clipped_surrogate(torch.tensor(rho), a, 0.2).numpy(), "-", color="C0", label="min(ρA, clip(ρ)A)/|A|")
    sel = m & ((parts.advantages.unsqueeze(1) > 0) if sign > 0 else (parts.advantages.unsqueeze(1) < 0))
    r, y = parts.ratio[sel], (parts.surrogate / parts.advantages.abs().unsqueeze(1))[sel]
    c = parts.clipped[sel]
    ax.scatter(r[~c], y[~c], facecolors="none", edgecolors="C3", label="token, clip inactive")
    ax.scatter(r[c], y[c], color="C3", label="token, clip active (no gradient)")
    for x in (0.8, 1.2):
        ax.axvline(x, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="ratio ρ = π_θ / π_old", title=f"A {'> 0' if sign > 0 else '< 0'}")
axes[0].set_ylabel("surrogate / |A|")
axes[1].legend(fontsize=7, loc="upper right")
fig.tight_layout()
_ = save_figure(fig, "03_ratio_clipping")
s = parts.summary()
print(f"{int(parts.clipped[m].sum())} of {int(m.sum())} tokens clipped ({s['clip_fraction']:.3f}); mean ratio {s['mean_ratio']:.4f}")

# %% [markdown]
# ## 3 · The KL estimator
#
# With $d = \log \pi_\text{ref}(o_t) - \log \pi_\theta(o_t)$ for a token sampled from $\pi_\theta$,
# the plain estimator $k_1 = -d$ is unbiased but takes negative values and has a large variance;
# $k_3 = e^{d} - d - 1$ is also unbiased,
# $\mathbb E_{\pi_\theta}[e^{d} - d - 1] = \sum \pi_\text{ref} - 1 + D_\text{KL} = D_\text{KL}$,
# and is never negative (left: it follows $d^2/2$ near 0). Right: a 16-token categorical
# $\pi_\theta$ and a $\pi_\text{ref}$ whose logits are moved by a growing shift; the exact KL against
# the Monte-Carlo mean ± one standard deviation of both estimators over tokens drawn from
# $\pi_\theta$. $k_3$ has the lower variance while the two policies are close (the regime a KL
# penalty keeps training in); far apart, its variance grows past that of $k_1$ (the cell prints
# where).

# %%
kl = pd.DataFrame(kl_estimators_vs_exact(n_samples=N_SAMPLES, seed=SEED))
d = torch.linspace(-2.5, 2.5, 301, dtype=torch.float64)
fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8))
a0.plot(d, k3_kl(torch.zeros_like(d), d), label="k3 = e^d - d - 1")
a0.plot(d, -d, ":", label="k1 = -d")
a0.plot(d, d**2 / 2, "--", color="grey", label="d²/2")
a0.set(xlabel="d = log π_ref - log π_θ (one token)", ylabel="per-token estimate", ylim=(-2.6, 5), title="per-token KL estimators")
a0.legend(fontsize=8)
for est, color in (("k1", "C1"), ("k3", "C0")):
    a1.plot(kl["exact_kl"], kl[f"{est}_mean"], "o-", color=color, ms=3, label=f"{est}: mean ± std")
    a1.fill_between(kl["exact_kl"], kl[f"{est}_mean"] - kl[f"{est}_std"], kl[f"{est}_mean"] + kl[f"{est}_std"], color=color, alpha=0.15)
a1.plot(kl["exact_kl"], kl["exact_kl"], "k--", lw=0.8, label="exact")
a1.set(xlabel="exact KL(π_θ || π_ref)", ylabel="estimate", title=f"Monte-Carlo, {N_SAMPLES} tokens per point")
a1.legend(fontsize=8)
fig.tight_layout()
_ = save_figure(fig, "03_kl_estimator")
display(kl.round(4))
above = kl[kl.k3_std > kl.k1_std]
print("k3's std exceeds k1's from exact KL =", round(float(above.exact_kl.min()), 3) if len(above) else "never (in this range)",
      "| toy batch, mean k3 over real tokens:", round(parts.summary()["kl"], 5))

# %% [markdown]
# ## 4 · The loss by hand and by TRL
#
# Each row runs the hand computation and TRL's code on the same batch: the four loss types, $\beta
# = 0$ (no reference model, TRL's default) and $\beta = 0.04$ (MedGround-R1), off-policy
# ($\pi_\theta \ne \pi_{\theta_\text{old}}$, ratios away from 1) and on-policy
# ($\pi_{\theta_\text{old}} = \pi_\theta$, the usual `num_iterations = 1` case, where TRL takes
# the old log-probabilities as the detached current ones). `kl_ratio_correction` is TRL 1.16's
# `use_bias_correction_kl` (section 6). `max_grad_diff` compares
# $\partial \mathcal L / \partial \log\pi_\theta(o_{i,t})$: autograd on the hand loss against the
# gradient TRL's loss leaves in the bigram model's weights. The residual differences come from
# TRL's float32 arithmetic. Written to `results/grpo_objective_check.csv`.

# %%
check = pd.DataFrame(with_provenance(compare_with_trl(batch), SEED, PROFILE))
check.to_csv(results_dir() / "grpo_objective_check.csv", index=False)
paper_rows = check[(check.policy == "off") & ~check.kl_ratio_correction]
display(paper_rows[["loss_type", "beta", "loss_by_hand", "loss_trl", "abs_diff", "max_grad_diff", "kl_by_hand", "kl_trl",
                    "clip_fraction_by_hand", "clip_fraction_trl"]].reset_index(drop=True))
worst = check.groupby("loss_type")[["abs_diff", "max_grad_diff", "max_adv_diff", "max_logp_diff"]].max()
display(worst)
assert check.abs_diff.max() < 1e-6 and check.max_grad_diff.max() < 1e-6, "hand and TRL disagree"
print(f"{len(check)} configurations; largest |loss difference| {check.abs_diff.max():.1e}, "
      f"largest gradient difference {check.max_grad_diff.max():.1e}")

# %% [markdown]
# ## 5 · Token aggregation: short against long completions
#
# The loss types differ only in how the per-token terms $\ell_{i,t}$ are summed into one number:
#
# | `loss_type` | loss | weight of one token of $o_i$ |
# |---|---|---|
# | `grpo` (the papers, MedReasoner Eq. 12) | $\frac{1}{B}\sum_i \frac{1}{\lvert o_i\rvert}\sum_t \ell_{i,t}$ | $1 / (B\,\lvert o_i\rvert)$ |
# | `bnpo` | $\sum_{i,t} \ell_{i,t} / \sum_i \lvert o_i\rvert$ | $1 / \sum_i \lvert o_i\rvert$ |
# | `dr_grpo` (Dr. GRPO) | $\sum_{i,t} \ell_{i,t} / (B\, T_\text{max})$ | $1 / (B\, T_\text{max})$ |
# | `dapo` (DAPO, TRL's default) | $\sum_{i,t} \ell_{i,t} / N_\text{tokens}$ | $1 / N_\text{tokens}$ of the whole generation batch |
#
# Under `grpo` every completion weighs the same in total, so each token of a short completion
# weighs more than a token of a long one: a long wrong answer is penalised less per token, the
# length bias Dr. GRPO points out. The other three weigh every token the same, so longer completions
# weigh more in total. `dapo` and `bnpo` coincide when the generation batch is one micro-batch, as
# here; with gradient accumulation `dapo` divides by the tokens of the whole generation batch and
# `bnpo` by those of each micro-batch. On-policy with $\beta = 0$ the `grpo` loss is exactly
# $-\operatorname{mean}_i A_i = 0$, whereas `bnpo` gives
# $-\sum_i \lvert o_i\rvert A_i / \sum_i \lvert o_i\rvert \ne 0$: the length of a completion changes its share
# of the update.

# %%
w = {lt: token_weights(batch["mask"], lt) for lt in LOSS_TYPES}
index = pd.MultiIndex.from_arrays([names, TOY_LENGTHS], names=["completion", "length"])
print("weight of one token of the completion:")
display(pd.DataFrame({lt: w[lt][:, 0].numpy() for lt in LOSS_TYPES}, index=index).round(4))
print("total weight of the completion (sum over its tokens):")
display(pd.DataFrame({lt: w[lt].sum(1).numpy() for lt in LOSS_TYPES}, index=index).round(4))
fig, ax = plt.subplots(figsize=(9, 3.6))
x = np.arange(len(names))
for k, lt in enumerate(LOSS_TYPES):
    ax.bar(x + (k - 1.5) * 0.2, w[lt].sum(1).numpy(), width=0.2, label=lt)
ax.set_xticks(x, [f"{n}\n|o| = {L}" for n, L in zip(names, TOY_LENGTHS)], fontsize=8)
ax.set(ylabel="total weight of the completion in the loss", title="how each loss type weighs short and long completions")
ax.legend(fontsize=8, ncols=4)
fig.tight_layout()
_ = save_figure(fig, "03_loss_type_weights")
on = check[(check.policy == "on") & (check.beta == 0)].set_index("loss_type")[["loss_by_hand", "loss_trl"]]
display(on)

# %% [markdown]
# ## 6 · The papers' settings against TRL 1.16's defaults
#
# A config that inherits a library default where the paper fixes a value silently changes the
# objective (docs/grpo.md). The table gives, for each GRPO setting, TRL 1.16's
# `GRPOConfig` default, what the papers' equations fix, and what medlib's GRPO runner
# (`medlib.train.grpo.grpo_kwargs`) passes to `GRPOConfig` for each paper's `full` config. The
# per-paper values are hyper-parameters: MedGround-R1 $\beta = 0.04$, $G = 4$; MedVol-R1
# $\beta = 0.01$, $G = 4$; MedReasoner a KL of 0.01 and $n = 16$.
#
# Three TRL defaults are not the papers' objective: `loss_type="dapo"` (the papers average per
# completion, `grpo`), `beta=0.0` (the papers keep the KL term), and `use_bias_correction_kl=True`.
# The last multiplies the KL term by the ratio, $\beta\,\rho_{i,t}\,\hat D_{i,t}$ (DeepSeek-V3.2's
# unbiased reverse-KL gradient). On-policy $\rho = 1$, so the logged loss is unchanged, but the
# gradient is not, because $\nabla(\rho \hat D) = \hat D\, \nabla \log \pi_\theta + \nabla \hat D$.
# The cell measures this on the toy batch with $\beta = 0.04$. A run meant to follow the papers must
# pass `use_bias_correction_kl=False`; a row showing "(TRL default)" there means the runner does not.

# %%
settings = pd.DataFrame(paper_settings_vs_trl_defaults())
display(settings)
grads = {}
for corr in (False, True):
    lp = batch["logps"].clone().requires_grad_(True)
    p = grpo_loss_by_hand(lp, None, batch["ref_logps"], batch["mask"], batch["rewards"], G, beta=0.04, loss_type="grpo",
                          kl_ratio_correction=corr)
    p.loss.backward()
    grads[corr] = (p.loss.item(), lp.grad[m])
print(f"on-policy, beta 0.04: loss {grads[False][0]:.6f} without and {grads[True][0]:.6f} with the KL ratio correction")
print(f"gradient: max |difference| {(grads[True][1] - grads[False][1]).abs().max():.2e}, "
      f"relative to max |gradient| {(grads[True][1] - grads[False][1]).abs().max() / grads[False][1].abs().max():.1%}")
