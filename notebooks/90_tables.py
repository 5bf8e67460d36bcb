# %% [markdown]
# # 90 · Tables: every table of the three papers, reported beside ours
#
# This notebook computes nothing. It reads the papers' numbers (`results/reported/`, typed in from
# the papers and checked against their text by `tests/test_reported.py`) and the numbers our
# notebooks wrote (`results/ours/`), and puts them side by side, one file per table, as Markdown and
# LaTeX under `results/tables/`.
#
# How to read a row: **reported** is the paper's number as printed (on MS-CXR, ChestX-ray8,
# U-MRG-14K, AbdomenCT-1K, CT-ORG, with 7B models on GPUs). **ours** is what medlib measured, and its
# footnote says on what: which data (the embedded synthetic benchmark stands in for the paper's
# dataset unless a real root was given), which profile, how many samples, which model and hardware.
# A small CPU model on synthetic data is not expected to reach the papers' numbers; what the small
# runs can reproduce is the *direction* of each comparison (GRPO vs SFT, G, reward ablations,
# prompt types, Delta). A cell reading `not run` names a comparison no notebook has produced yet at
# this profile.

# %% tags=["parameters"]
PROFILE = "smoke"   # not read: the tables show whatever results/ holds, each number labelled with its profile
SEED = 0
BENCH_ROOT = "build/data"
DATA_ROOT = ""

# %%
from IPython.display import Markdown, display

from medlib.paths import results_dir
from medlib.report.tables import build_tables, load_ours

ours = load_ours()
print(f"{len(ours)} numbers of ours in results/ours/ from: {sorted(set(ours['produced_by']))}")
index = build_tables()
display(index)

# %% [markdown]
# ## The tables
#
# Each table below is also in `results/tables/<paper>_table<id>.md` and `.tex`.

# %%
out = results_dir("tables")
for row in index.itertuples():
    display(Markdown((out / f"{row.paper}_table{row.table}.md").read_text()))

# %% [markdown]
# ## The effects table
#
# One row per claim of the papers that a study has judged (`results/effects.csv`, written by
# `python -m medlib.study run`): our paired delta with its 95% interval over seeds and test items,
# the paper's own delta beside it where the paper printed both rows, and the verdict computed from
# the interval (`shown`, `not shown`, `reversed`). Also in `results/tables/effects.md`.

# %%
from medlib.study.effects import effects_markdown, load_effects

effects = load_effects()
if effects is None or effects.empty:
    print("no effect study has run yet: python -m medlib.study run --spec configs/studies/<paper>.yaml")
else:
    (out / "effects.md").write_text(effects_markdown(effects))
    display(Markdown(effects_markdown(effects)))
