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
import matplotlib.pyplot as plt
from IPython.display import display

from medlib.report_figures import (
    ablation_tables,
    learning_proof,
    plot_ablation,
    plot_learning_study,
    plot_ours_vs_reported,
    plot_training_curves,
    training_groups,
)
from medlib.reported import TABLES
from medlib.tables import load_ours, side_by_side
from medlib.viz import save_figure

made = []
for group in training_groups():
    fig = plot_training_curves(group)
    if fig is not None:
        made += save_figure(fig, f"91_training_{group}")
        plt.show()
print(f"training curves: {training_groups() or 'none yet (run notebooks 10, 20, 30)'}")

# %%
for name, df in ablation_tables().items():
    fig = plot_ablation(name, df)
    if fig is not None:
        made += save_figure(fig, f"91_{name}")
        plt.show()

# %%
ours = load_ours()
for paper, tables in TABLES.items():
    for t in tables:
        if ours[(ours["paper"] == paper) & (ours["table"] == t)].empty:
            continue
        fig = plot_ours_vs_reported(side_by_side(paper, t), f"{paper} Table {t}: reported vs ours")
        if fig is not None:
            made += save_figure(fig, f"91_{paper}_table{t}")
            plt.show()
lp = learning_proof()
if lp is not None:
    display(lp)
    made += save_figure(plot_learning_study(lp), "91_learning_study")
    plt.show()
print(f"{len(made)} files written")

# %% [markdown]
# ## Effect sizes: ours beside the paper's
#
# Each pooled claim of `results/effects.csv`: our delta (dot) with its 95% interval over seeds and
# test items (line), coloured by verdict, and the paper's own delta (open diamond) where it printed
# both rows. At CPU scale the paper's deltas (7B models, real data, thousands of steps) are a
# direction to compare with, not a size to match.

# %%
from medlib.effects import load_effects, plot_effects

effects = load_effects()
if effects is None or effects.empty:
    print("no effect study has run yet: python -m medlib.study run --spec configs/studies/<paper>.yaml")
else:
    made += save_figure(plot_effects(effects), "91_effects")
    plt.show()
from medlib.report_figures import effect_study_figures

for spec in effect_study_figures():
    if spec.name != "91_effects":
        made += save_figure(spec.draw(), spec.name)
        plt.show()
