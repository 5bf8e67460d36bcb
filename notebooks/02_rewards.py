# %% [markdown]
# # 02 · Rewards: what each paper rewards, term by term
#
# All three papers train a vision-language model with GRPO and rule-based rewards; the rewards are
# the method. This notebook states every reward as an equation, runs one completion through every
# component of each paper, and plots how the rewards behave: MedReasoner's smoothing curves, the
# reward landscape of a box sliding across the ground truth, and the effect of MedReasoner's validity
# penalty. It ends with every place where a paper and its released code disagree, and which one
# medlib uses by default.
#
# Every number below comes from `medlib.rewards` (the reward functions the trainers call, tested in
# `tests/test_rewards_*.py`); the analyses are in `medlib/rewards/analysis.py`.
#
# | paper | rewards (summed, weights 1) | code |
# |---|---|---|
# | MedGround-R1 | format, spatial (IoU > 0.5), semantic (CLIP crop vs phrase) | released, differs from the paper |
# | MedReasoner | graded format, box IoU / alignment / scale, points pDice / alignment / angle, each smoothed and penalised | released, differs from the paper |
# | MedVol-R1 | format, axial slice choice, 2D Hungarian IoU, cross-slice Dice | none |

# %% tags=["parameters"]
PROFILE = "smoke"          # benchmark size the example image is taken from: tiny (128 px) | smoke (224) | full (448)
SEED = 0
SEMANTIC = "test"          # semantic scorer spec: test (deterministic MeanIntensityScorer, CPU), or a BiomedCLIP hub id / CLIP folder (GPU)
BENCH_ROOT = "build/data"  # not read here: the example image is rendered in memory, identical to the benchmark's file
DATA_ROOT = ""             # not read here

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from medlib.geometry import mask_to_boxes
from medlib.paths import results_dir
from medlib.report.viz import draw_sample, save_figure
from medlib.rewards.analysis import (
    ThresholdFloodSegmenter,
    disagreements,
    landscape_example,
    medground_completion,
    medreasoner_completion,
    medvol_completion,
    penalty_effect,
    pivot_worked,
    reward_landscape,
    smoothing_curves,
    synthetic_volume_example,
    worked_medground,
    worked_medreasoner,
    worked_medvol,
)
from medlib.rewards.smoothing import smooth_exp_official, smooth_exp_paper, smooth_log_official
from medlib.semantic import load_scorer

pd.set_option("display.max_colwidth", 110)
pd.set_option("display.width", 200)
scorer = load_scorer(SEMANTIC, train_if_missing=True)  # 'embedded' trains the small CLIP once
ex = landscape_example(PROFILE, SEED)
print(ex.source)
print("phrase:", repr(ex.phrase), "| GT box:", ex.gt_box.tolist(), "| key points:", ex.gt_points.tolist())
print("semantic scorer:", SEMANTIC, "->", type(scorer).__name__)

# %% [markdown]
# The example is an MS-CXR-style test image of the embedded benchmark (notebook 01). The chest
# benchmark has boxes but no key points; for MedReasoner the two key points are placed on the box's
# centre line at 30 % and 70 % of its longer side (U-MRG-14K annotates its own).
#
# **Semantic scorer.** `SEMANTIC = "test"` selects `MeanIntensityScorer`, a deterministic stand-in
# that embeds a crop as its mean brightness and a phrase by its words ("opacity", "consolidation",
# "mass" = bright; "pneumothorax", "lucency" = dark). It needs no weights and measures nothing
# medical: it only makes the semantic reward's plumbing visible on a CPU. On a GPU set `SEMANTIC` to
# a BiomedCLIP hub id (e.g. `hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224`) or the
# folder of a small CLIP; `medlib.semantic.load_scorer` loads it once per process.
#
# ## 1 · MedGround-R1 (Xu et al. 2025, Sec. 2.2-2.3)
#
# A completion $o$ is `<think>…</think><answer>…</answer>`; $\hat b$ is the first box of the answer
# matching footnote 8, `\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]`, and $b^*$ the ground-truth box.
#
# $$R_{\text{format}}(o) = \mathbb{1}\big[o \text{ fully matches the regex of footnote 7}\big]$$
#
# footnote 7: `<think>.*?</think>\s*<answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>`
#
# $$R_{\text{spatial}}(o) = \mathbb{1}\big[\mathrm{IoU}(\hat b, b^*) > 0.5\big],\qquad
# \mathrm{IoU}(a, b) = \frac{|a \cap b|}{|a \cup b|}$$
#
# $$R_{\text{semantic}}(o) = \cos\!\big(f_I(\mathrm{crop}(I, \hat b)),\; f_T(q)\big) \in [-1, 1]$$
#
# with $f_I, f_T$ the image and text encoders of a frozen medical CLIP and $q$ the referring phrase.
# The three are summed, $R_i = R_{\text{format}} + R_{\text{spatial}} + R_{\text{semantic}}$, and GRPO
# normalises within the group of $G$ completions of a prompt:
# $A_i = (R_i - \operatorname{mean}_j R_j) / \operatorname{std}_j R_j$.
#
# The released code's semantic reward is instead
# $R^{\text{code}}_{\text{semantic}} = \mathbb{1}\big[\cos(f_I(I), f_T(q)) > 0\big]$ on the *whole
# image*: the same for all $G$ completions, so it adds nothing to $A_i$ (`medground_semantic_released`
# keeps it for comparison). Footnote 8 accepts only non-negative integers: a box written with floats
# or with a coordinate below 0 is no box, and earns 0 for format and spatial alike.
#
# ### Worked example
#
# The ground-truth box shifted right by 1/6 of its width and down by 1/8 of its height, written as a
# Chain-of-Box completion (Sec. 2.4: the region text is followed by its box).

# %%
w, h = ex.gt_box[2] - ex.gt_box[0], ex.gt_box[3] - ex.gt_box[1]
pred_box = ex.gt_box + np.array([w // 6, h // 8, w // 6, h // 8])
pred_points = ex.gt_points + np.array([[3, 2], [5, -2]])
mg_text = medground_completion(pred_box, ex.phrase)
print(mg_text)
worked_medground(mg_text, ex, scorer)

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 4))
draw_sample(axes[0], ex.image, boxes=[ex.gt_box], pred_boxes=[pred_box], title="MedGround-R1: GT box (green), completion (red)")
draw_sample(axes[1], ex.image, boxes=[ex.gt_box], points=ex.gt_points, pred_boxes=[pred_box],
            title="MedReasoner: GT box and key points (dots), completion (red, crosses)")
axes[1].plot(pred_points[:, 0], pred_points[:, 1], "x", color="red", ms=6)
fig.tight_layout()
_ = save_figure(fig, "02_worked_example_2d")

# %% [markdown]
# ### Reward landscape: a box sliding across the ground truth
#
# The ground-truth box is shifted horizontally by $\Delta x$ (whole pixels, kept inside the image)
# and every shifted box is scored as a completion. For a pure shift of a box of width $w$,
# $\mathrm{IoU} = (w - |\Delta x|)/(w + |\Delta x|)$, so the spatial reward is a step that switches
# at $|\Delta x| = w/3$ and gives no signal beyond it: a completion one pixel past the step earns the
# same as one on the other side of the image. That is the gap the semantic reward is meant to fill
# (Sec. 2.3: "spatially-negative completions … may be semantically-positive"). MedReasoner's smoothed
# box-IoU term is drawn for comparison: its official smoothing starts at 0.1, so any parsed box
# earns a small reward.

# %%
land = reward_landscape(ex, scorer)
steps = land.loc[land.medground_spatial.diff().abs() > 0, ["dx_px", "shift", "iou"]]
print("spatial reward changes value at (dx, dx / w, IoU):", steps.round(3).values.tolist())
print("continuous IoU peak at dx =", int(land.loc[land.medground_iou.idxmax(), "dx_px"]),
      "| semantic peak at dx / w =", round(float(land.loc[land.medground_semantic.idxmax(), "shift"]), 3),
      "| released semantic takes the values", sorted(land.medground_semantic_released.unique().tolist()))
print("MedReasoner box IoU term where IoU = 0:", sorted(land.loc[land.iou == 0, "medreasoner_box_iou"].unique().tolist()))

fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.8]})
show = [int(np.argmin(np.abs(land["shift"] - s))) for s in (-1.0, -0.34, 0.5)]
draw_sample(a0, ex.image, boxes=[ex.gt_box], pred_boxes=[ex.gt_box + np.array([d, 0, d, 0]) for d in land.dx_px.iloc[show]],
            title=f"slid boxes (red) at dx/w = {', '.join(f'{s:.2f}' for s in land['shift'].iloc[show])}")
for col, style, label in [("medground_spatial", "-", "MedGround-R1 spatial: 1[IoU > 0.5]"), ("medground_iou", "-", "continuous IoU"),
                          ("medground_semantic", "-", f"semantic (crop vs phrase; scorer {SEMANTIC!r})"),
                          ("medground_semantic_released", ":", "released semantic (whole image, cos > 0)"),
                          ("medreasoner_box_iou", "--", "MedReasoner box IoU term (official, penalised)")]:
    a1.plot(land["shift"], land[col], style, label=label, lw=1.6)
for s in (-1 / 3, 1 / 3):
    a1.axvline(s, color="grey", lw=0.7, ls=":")
a1.set_xlabel("horizontal shift dx / GT width (IoU = 0.5 at ±1/3)")
a1.set_ylabel("reward")
a1.legend(fontsize=7, loc="lower left")
a1.set_title(ex.phrase, fontsize=9)
fig.tight_layout()
_ = save_figure(fig, "02_reward_landscape")

# %% [markdown]
# With the test scorer the semantic reward follows brightness, not anatomy: it peaks wherever the
# crop is brightest, which need not be the finding. The paper relies
# on a medical CLIP to do better; whether a given CLIP does is measured on a GPU by setting
# `SEMANTIC`. The released semantic reward is flat by construction.
#
# ## 2 · MedReasoner (Yan et al. 2025, Sec. 4.3, App. C.3-C.4)
#
# The answer is JSON `{"bbox": [x1, y1, x2, y2], "points_1": [x, y], "points_2": [x, y]}`; a frozen
# MedSAM2 turns box and points into a mask. Format: $R_{\text{think}} \in \{0, 0.2, 1\}$ (no block /
# empty / present), $R_{\text{answer}} \in \{0, 0.2, 0.4, 0.6, 1\}$ (no block / not a JSON object /
# missing keys or box and points both malformed / one malformed / well formed); the paper only says
# "discrete values in [0, 1]", the values are the code's.
#
# Box terms, predicted $\mathcal B_p$, ground truth $\mathcal B_g$ (Eqs. 2-4):
# $$R_{iou} = \frac{|\mathcal B_p \cap \mathcal B_g|}{|\mathcal B_p \cup \mathcal B_g|},\qquad
# R_{align} = \frac{1}{4}\sum_{i=1}^{4}\big|\mathcal B_p^{(i)} - \mathcal B_g^{(i)}\big| \,/\, \operatorname{diag}(\mathcal B_g),\qquad
# R_{scale} = \sqrt{(\Delta \log A)^2 + (\Delta \log R)^2}$$
# Point terms, discs $O$ whose diameters are the point pairs, $\mathbf v = \mathbf p_2 - \mathbf p_1$ (Eqs. 5-7):
# $$R_{pdice} = \frac{2\,|O_p \cap O_g|}{|O_p| + |O_g|},\qquad
# R_{align}^{pts} = \frac{1}{2}\sum_{i=1}^{2}\big(|x_i^p - x_i^g| + |y_i^p - y_i^g|\big),\qquad
# R_{angle} = \left|\frac{\langle \mathbf v_p, \mathbf v_g\rangle}{\|\mathbf v_p\|\,\|\mathbf v_g\|}\right|$$
# Smoothing, $k = 3$, $c = 1$ (Eqs. 8-9): overlaps ($R_{iou}, R_{pdice}, R_{angle}$) go through
# $\mathcal S_{\log}$, distances ($R_{align}, R_{scale}$, $d \in [0, 2]$) through $\mathcal S_{\exp}$:
# $$\mathcal S_{\log}(r) = \frac{\log(k r + 1)}{\log(k + 1)},\qquad \mathcal S_{\exp}(d) = \frac{1}{1 + e^{k(d - c)}}$$
# Penalty (Eq. 10), $\lambda = 0.7$, validity scores $v_1, v_2$:
# $$\mathcal N(r; v_1, v_2) = \lambda r + (1 - \lambda)\, r\, \frac{v_1 + v_2}{2}$$
# The paper describes $v_1, v_2$ only in words; the code's rules, with $h(\text{true}) = 1$,
# $h(\text{false}) = 0.5$: box $v_1 = h(\mathbf g_1 \in \mathcal B_p)\,h(\mathbf g_2 \in \mathcal B_p)$,
# $v_2 = h(0.5 < A_p / A_g < 2)$; points $v_1 = h(\mathbf p_1 \in \mathcal B_g)\,h(\mathbf p_2 \in \mathcal B_g)$,
# $v_2 = h(\|\mathbf p_1 - \mathbf p_2\| > 10\,\text{px})$. The total is the unweighted sum of the
# terms: **soft** (the paper's default, Sec. 5.1) keeps format, IoU and pDice; **hard** all eight;
# **base** is a Seg-Zero-like threshold scheme.
#
# The public code (variant `official`, medlib's default) differs: $0.9\,\mathcal S_{\log} + 0.1$;
# $\mathcal S_{\exp}$ min-max normalised over $[0, 2]$ then $0.9\,s + 0.1$; scale term with
# $c = 0.5$ and $d \le 1$; "pDice" $= 2|O_p \cap O_g| / |O_p \cup O_g|$ (twice the discs' IoU);
# order-free point alignment divided by the GT diagonal; $\mathcal N$ clipped to $[0, 1]$ and rounded
# to 4 places. Variant `paper` implements Eqs. 2-10 as printed.
#
# ### Worked example
#
# The same predicted box as above, with key points moved a few pixels, scored in every mode and
# variant. `base (GT bug)` replicates the public `med_base.py`, which calls `.strip()` on the parsed
# ground truth so its IoU and box-L1 terms are always 0. NaN: not a term of that mode.

# %%
mr_text = medreasoner_completion(pred_box, pred_points)
print(mr_text)
mr_table = worked_medreasoner(mr_text, ex)
display(pivot_worked(mr_table).round(4))
mr_table[mr_table.detail != ""].drop_duplicates(["reward", "detail"])

# %% [markdown]
# ### Smoothing curves (analogues of the paper's Figs. 12-13)
#
# Left: $\mathcal S_{\log}$ on its domain $[0, 1]$ (solid) and beyond (dotted), where the official
# "pDice" $= 2\,\mathrm{IoU}$ can reach; the final clip to 1 then makes the term saturate once the
# discs' IoU reaches 0.5. Right: $\mathcal S_{\exp}$; the official scale term uses $c = 0.5$ and clips
# $d$ at 1 (dotted beyond), so it never falls below its value at $d = 1$.

# %%
curves = smoothing_curves()
fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8))
for (var, in_dom), g in curves[curves.function == "smooth_log"].groupby(["variant", "in_domain"]):
    a0.plot(g.x, g.value, "-" if in_dom else ":", color="C0" if var == "official" else "C1", label=f"{var}" if in_dom else None)
a0.axhline(1.0, color="grey", lw=0.7, ls="--")
a0.set(xlabel="r (IoU, pDice, |cos|)", ylabel="S_log(r; k=3)", title="log smoothing (Eq. 8)")
a0.legend(fontsize=8)
for (var, c), g in curves[curves.function == "smooth_exp"].groupby(["variant", "c"]):
    cut = g.x > 1 if c == 0.5 else g.x > 2
    color = {("official", 1.0): "C0", ("official", 0.5): "C2", ("paper", 1.0): "C1"}[(var, c)]
    a1.plot(g.x[~cut], g.value[~cut], "-", color=color, label=f"{var}, c = {c}")
    a1.plot(g.x[cut], g.value[cut], ":", color=color)
a1.set(xlabel="d (normalised distance)", ylabel="S_exp(d; k=3, c)", title="exponential smoothing (Eq. 9)")
a1.legend(fontsize=8)
fig.tight_layout()
_ = save_figure(fig, "02_smoothing_curves")
print("official S_log: 0 ->", smooth_log_official(0.0), "| 1 ->", smooth_log_official(1.0), "| 2 ->", round(float(smooth_log_official(2.0)), 4))
print("official S_exp: 0 ->", round(float(smooth_exp_official(0.0)), 4), "| 2 ->", round(float(smooth_exp_official(2.0)), 4),
      "| scale floor S_exp(1; c=0.5) =", round(float(smooth_exp_official(1.0, 3.0, 0.5)), 4))
print("paper S_exp (Eq. 9, unnormalised): 0 ->", round(float(smooth_exp_paper(0.0)), 4), "| 2 ->", round(float(smooth_exp_paper(2.0)), 4))

# %% [markdown]
# ### The validity penalty
#
# Boxes centred on the ground truth with both sides scaled by $s$: the box IoU term without the
# penalty ($\mathcal S_{\log}(\mathrm{IoU})$) and with it ($\mathcal N$), against the area ratio.
# The area check halves $v_2$ outside $(0.5, 2)$; a small box also loses the key points ($v_1$ down
# to 0.25). The penalty removes at most $(1 - \lambda)\cdot(1 - \tfrac{0.25 + 0.5}{2}) = 18.75\,\%$.

# %%
pen = {v: penalty_effect(ex.gt_box, ex.gt_points, variant=v) for v in ("official", "paper")}
fig, (a0, a1) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
for i, (var, p) in enumerate(pen.items()):
    a0.plot(p.area_ratio, p.smoothed, ":", color=f"C{i}", label=f"{var}: S_log(IoU), no penalty")
    a0.plot(p.area_ratio, p.penalised, "-", color=f"C{i}", label=f"{var}: penalised (reward)")
p = pen["official"]
for col in ("box_position_valid", "box_area_valid", "factor"):
    a1.step(p.area_ratio, p[col], where="mid", label=col)
for ax in (a0, a1):
    ax.axvspan(p.area_ratio.min(), 0.5, color="grey", alpha=0.12)
    ax.axvspan(2.0, p.area_ratio.max(), color="grey", alpha=0.12)
a0.set(xscale="log", ylabel="box IoU term", title="MedReasoner box IoU term vs box size (grey: area check fails)")
a1.set(xlabel="predicted / GT box area", ylabel="validity")
a0.legend(fontsize=7)
a1.legend(fontsize=7)
fig.tight_layout()
_ = save_figure(fig, "02_validity_penalty")
print("largest reduction by the penalty (official):", round(float((p.smoothed - p.penalised).max()), 4),
      "| smallest factor:", float(p.factor.min()))

# %% [markdown]
# ## 3 · MedVol-R1 (Wang et al. 2026, Sec. 2.5) — no public code
#
# The answer names a key slice $\hat k$ (`<slice k>` identifiers from 1) and boxes $\hat{\mathcal B}$
# on it: `{"key_slice": k, "bbox_2d_list": [[x1, y1, x2, y2], ...]}` (schema: `medlib.parsing`).
# $F_t$ is the ground-truth foreground area on slice $t$, $\mathcal B^*$ the connected-component boxes
# of the ground-truth mask on slice $\hat k$, $\hat{\mathbf Y}$ the volume a frozen MedSAM2 propagates
# from the matched boxes.
#
# $$R_f = \mathbb{1}[\text{think and answer blocks, answer parses}],\qquad R_a = \frac{F_{\hat k}}{\max_t F_t}$$
# $$C_{ij} = 1 - \mathrm{IoU}(\hat b_i, b^*_j),\qquad
# R_s = \frac{1}{\max(N, N^*)} \sum_{(i,j) \in \mathcal M} \mathrm{IoU}(\hat b_i, b^*_j)\quad(\mathcal M\text{: Hungarian on } C)$$
# $$R_c = \mathrm{Dice}\big(\hat{\mathbf Y}_{\mathcal N(\hat k)}, \mathbf Y^*_{\mathcal N(\hat k)}\big),\qquad
# \mathcal N(\hat k) = \{t : |t - \hat k| \le \Delta\},\ \Delta = 5,\qquad R = R_f + R_a + R_s + R_c$$
#
# ### Worked example
#
# A synthetic CT-like volume with two kidney-like ellipsoids ("both kidneys"). The completion picks
# a slice two below the largest cross-section, gives one exact box and one shifted by a few pixels.
# $R_c$ needs a segmenter: here `ThresholdFloodSegmenter`, a deterministic CPU stand-in (threshold
# inside the boxes, then flood slice by slice); with a GPU, `medlib.segment` provides MedSAM2 /
# LiteMedSAM behind the same interface.

# %%
vol = synthetic_volume_example(seed=SEED)
areas = vol.mask.sum(axis=(1, 2))
z = int(areas.argmax()) + 2
gt_boxes_z = mask_to_boxes(vol.mask[z])
pred_boxes_z = [gt_boxes_z[0], gt_boxes_z[1] + np.array([3, 2, 3, 2])]
mv_text = medvol_completion(z + 1, pred_boxes_z)
print(mv_text)
worked_medvol(mv_text, vol)

# %%
seg_mask = ThresholdFloodSegmenter().propagate_3d(vol.volume, z, pred_boxes_z)
fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
draw_sample(a0, vol.volume[z], mask=vol.mask[z], pred_boxes=pred_boxes_z, title=f"key slice z = {z}: GT (cyan), boxes (red), stand-in mask (yellow)")
a0.contour(seg_mask[z].astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
a1.plot(areas, label="GT area F_t")
a1.plot(seg_mask.sum(axis=(1, 2)), "--", label="propagated mask area")
a1.axvline(z, color="red", lw=1, label="chosen key slice")
a1.axvspan(z - 5, z + 5, color="grey", alpha=0.15, label="R_c window |t - k| <= 5")
a1.set(xlabel="slice t", ylabel="voxels")
a1.legend(fontsize=7)
fig.tight_layout()
_ = save_figure(fig, "02_worked_example_medvol")

# %% [markdown]
# ## 4 · Where the papers and their released code disagree
#
# Each row names the component, what the paper says, what the code does, which one medlib uses by
# default (`default`: paper, code, or medlib's own choice where neither can be followed) and why.
# Written to `results/reward_disagreements.csv`.

# %%
table = disagreements()
table.to_csv(results_dir() / "reward_disagreements.csv", index=False)
print(table.groupby(["paper", "default"]).size().to_string())
table.drop(columns=["id", "source"])
