"""The learning study's summary: means per arm and per-seed GRPO differences, by hand."""

import pandas as pd

from medlib.study.learning import study_stem, study_variants, summarise


def test_summary_means_and_differences():
    rows = []
    # seed 0: start 30/20, sft_more 31/22, grpo 33/27; seed 1: start 28/18, sft_more 30/21, grpo 29/20
    for seed, vals in ((0, {"sft_start": (30, 20), "sft_more": (31, 22), "grpo": (33, 27)}),
                       (1, {"sft_start": (28, 18), "sft_more": (30, 21), "grpo": (29, 20)})):
        for arm, (miou, acc) in vals.items():
            rows.append({"seed": seed, "variant": arm, "mIoU": miou, "Acc": acc})
    s = summarise(pd.DataFrame(rows))
    assert s["arms"]["grpo"] == {"mIoU": 31.0, "Acc": 23.5, "seeds": 2}  # (33+29)/2, (27+20)/2
    d = s["differences"]["grpo - sft_more (Acc)"]
    assert d["per_seed"] == [5.0, -1.0] and d["mean"] == 2.0 and d["seeds_positive"] == 1  # 27-22, 20-21
    assert s["differences"]["grpo - sft_start (mIoU)"]["per_seed"] == [3.0, 1.0]


def test_control_runs_as_many_steps_as_grpo():
    sft_more, grpo = study_variants(40)
    assert sft_more.stage == "sft" and sft_more.overrides == {"sft": {"max_steps": 40}}
    assert grpo.stage == "grpo" and grpo.overrides == {"grpo": {"num_generations": 4}}


def test_load_study_reads_the_written_summary(tmp_path, monkeypatch):
    import json

    from medlib.study.learning import load_study

    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    assert load_study("nothing") is None
    rows = [{"seed": 0, "variant": a, "steps": 0, "train_seconds": 1.0, "mIoU": m, "Acc": m} for a, m in
            (("sft_start", 30.0), ("sft_more", 31.0), ("grpo", 33.0))]
    summary = summarise(pd.DataFrame(rows))
    (tmp_path / "learning_study_x.json").write_text(json.dumps({"per_seed": rows, "summary": summary}))
    s = load_study("x")
    assert s["means"].loc["grpo", "mIoU"] == 33.0
    assert s["differences"].loc["grpo - sft_more (mIoU)", "mean"] == 2.0  # 33 - 31
    assert list(s["per_seed"]["variant"]) == ["sft_start", "sft_more", "grpo"]


def test_a_sweep_gets_its_own_stem_so_it_cannot_overwrite_the_studys_results():
    assert study_stem("configs/medground/learning.yaml") == "learning"
    swept = study_stem("configs/medground/learning.yaml", ["grpo.learning_rate=3e-4", "grpo.beta=0"])
    assert swept == "learning+grpo-learning_rate-3e-4+grpo-beta-0"
    assert "." not in study_stem("learning.yaml", ["grpo.learning_rate=1.5e-4"])  # would read as a suffix
    assert swept != study_stem("configs/medground/learning.yaml", ["grpo.learning_rate=2e-5"])
