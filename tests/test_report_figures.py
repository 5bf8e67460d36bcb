"""Figures of notebook 91 from results files only: present files give figures, absent ones None."""

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from medlib import report_figures as rf  # noqa: E402
from medlib.tables import side_by_side, write_ours  # noqa: E402


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_nothing_yet_gives_no_figures(results):
    assert rf.training_groups() == [] and rf.plot_training_curves("medground_smoke") is None
    assert rf.ablation_tables() == {} and rf.learning_proof() is None


def test_figures_from_logs_ablations_and_ours(results):
    d = results / "training" / "medground_smoke"
    d.mkdir(parents=True)
    pd.DataFrame({"step": [1, 5, 10], "reward": [0.5, 0.8, 1.1], "kl": [0.0, 0.001, 0.002],
                  "rewards/medground_spatial/mean": [0.0, 0.1, 0.2]}).to_csv(d / "G4_seed0.csv", index=False)
    pd.DataFrame({"step": [1, 10], "loss": [3.0, 1.0]}).to_csv(d / "sft_more_seed0.csv", index=False)
    assert rf.training_groups() == ["medground_smoke"]
    fig = rf.plot_training_curves("medground_smoke")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["reward", "kl", "loss", "medground_spatial"]
    abl = pd.DataFrame({"variant": ["sft_start", "G4"], "seed": [0, 0], "mIoU": [30.0, 32.0], "mIoU_lo": [25.0, 27.0],
                        "mIoU_hi": [35.0, 37.0], "n": [100, 100]})
    abl.to_csv(results / "medground_ablation_smoke.csv", index=False)
    assert list(rf.ablation_tables()) == ["medground_ablation_smoke"]
    assert len(rf.plot_ablation("x", abl).axes) == 1  # only mIoU is present
    write_ours([dict(method="MedGround-R1", setting="G=4", metric="mIoU", value=32.0, stands_for="MS-CXR",
                     dataset="embedded chest", profile="smoke", scale="tiny", n=100)], "medground-r1", "2", "nb")
    fig = rf.plot_ours_vs_reported(side_by_side("medground-r1", "2"), "t")
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert heights == [32.0, 79.02]  # ours beside the paper's G=4 mIoU (MedGround-R1 Table 2)


def test_learning_study_figure_from_the_results_file(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from medlib import report_figures as rf
    from medlib.learning_study import summarise

    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    assert rf.learning_proof() is None
    rows = [{"seed": s, "variant": a, "mIoU": m + s, "Acc": m} for s in (0, 1)
            for a, m in (("sft_start", 30.0), ("sft_more", 31.0), ("grpo", 33.0))]
    (tmp_path / "learning_study_learning.json").write_text(
        json.dumps({"per_seed": rows, "summary": summarise(pd.DataFrame(rows))}))
    df = rf.learning_proof()
    assert len(df) == 6 and set(df["variant"]) == {"sft_start", "sft_more", "grpo"}
    fig = rf.plot_learning_study(df)
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert bars == [30.5, 31.5, 33.5]  # mean mIoU over seeds 0 and 1 (m + 0, m + 1)
