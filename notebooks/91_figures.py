# %% [markdown]
# # 91 · Figures: training curves, ablations, ours beside the papers'
#
# Like `90_tables`, this notebook computes nothing: it reads what the other notebooks wrote under
# `results/` (training logs in `results/training/`, per-arm results, our table rows in
# `results/ours/`) and draws them into `figures/` as PNG and PDF. The qualitative panels are drawn
# by the notebooks that evaluate (`11`, `21`, `31`), since they need the images.

# %% tags=["parameters"]
PROFILE = "smoke"   # not read: the figures show whatever results/ holds
SEED = 0
BENCH_ROOT = "build/data"
DATA_ROOT = ""

# %%
from IPython.display import Image, display

from medlib.report.figures import learning_proof, write_figures

# every figure the results folder feeds, drawn as `python -m medlib figures` draws it (and as
# `python -m medlib check-figures` checks it): training curves, ablations, ours beside the
# papers', the learning studies, the effect studies
made = write_figures()
for path in made:
    if path.suffix == ".png":
        display(Image(filename=str(path)))
if (lp := learning_proof()) is not None:
    display(lp)
print(f"{len(made)} files written")

# %% [markdown]
# ## Effect sizes: ours beside the paper's
#
# `91_effects` shows each pooled claim of `results/effects.csv`: our delta (dot) with its 95%
# interval over seeds and test items (line), coloured by verdict, and the paper's own delta (open
# diamond) where it printed both rows. At CPU scale the paper's deltas (7B models, real data,
# thousands of steps) are a direction to compare with, not a size to match. `91_study_<paper>_passk`
# and `91_study_<paper>_grpo_signal` are the studies' pass@k curves and per-step GRPO signal
# (explained in notebook 10).
