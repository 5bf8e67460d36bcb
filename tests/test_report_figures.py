"""Figures of notebook 91 from results files only: present files give figures, absent ones None."""

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from medlib.report import figures as rf  # noqa: E402
from medlib.report.tables import side_by_side, write_ours  # noqa: E402


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
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["GRPO: mean reward", "GRPO: KL to the reference", "SFT: training loss",
                      "GRPO: medground spatial reward"]
    # the legend names stage, arm and seed; the SFT arm is not drawn in GRPO panels nor GRPO in SFT's
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["GRPO: G4, seed 0", "SFT: sft_more, seed 0"]
    assert [len(ax.lines) for ax in fig.axes[:4]] == [1, 1, 1, 1]
    assert fig.get_figwidth() <= 7.0
    abl = pd.DataFrame({"variant": ["sft_start", "G4"], "seed": [0, 0], "mIoU": [30.0, 32.0], "mIoU_lo": [25.0, 27.0],
                        "mIoU_hi": [35.0, 37.0], "n": [100, 100]})
    abl.to_csv(results / "medground_ablation_smoke.csv", index=False)
    assert list(rf.ablation_tables()) == ["medground_ablation_smoke"]
    fig = rf.plot_ablation("medground_ablation_smoke", abl)
    assert len([ax for ax in fig.axes if ax.axison]) == 1 and fig.axes[0].get_ylabel() == "mIoU (%)"  # only mIoU
    write_ours([dict(method="tiny Qwen2.5-VL", setting="G=4", beside_method="MedGround-R1", beside_setting="G=4",
                     metric="mIoU", value=32.0, stands_for="MS-CXR", dataset="embedded chest 112 px",
                     profile="smoke", scale="tiny", n=100)], "medground-r1", "2", "nb")
    fig = rf.plot_ours_vs_reported(side_by_side("medground-r1", "2"), "t")
    widths = sorted(round(p.get_width(), 2) for p in fig.axes[0].patches)
    assert widths == [32.0, 79.02]  # ours beside the paper's G=4 mIoU (MedGround-R1 Table 2)


def test_learning_study_figure_from_the_results_file(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from medlib.report import figures as rf
    from medlib.study.learning import summarise

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


def _ablation(results, miou=30.0):
    pd.DataFrame({"variant": ["sft_start", "G4"], "seed": [0, 0], "mIoU": [miou, 32.0], "mIoU_lo": [miou - 5, 27.0],
                  "mIoU_hi": [miou + 5, 37.0], "n": [100, 100]}).to_csv(results / "medground_ablation_smoke.csv",
                                                                          index=False)


def test_save_figure_same_bytes_again_no_timestamp_at_most_a_page_wide(tmp_path):
    import matplotlib.pyplot as plt

    from medlib.report.viz import PAGE_WIDTH_IN, PNG_DPI, save_figure

    def draw():
        fig, ax = plt.subplots(figsize=(14, 3))  # drawn twice a page wide
        ax.plot([0, 1, 2], [1, 3, 2], label="a")
        ax.legend()
        return fig

    a = save_figure(draw(), "f", tmp_path / "a")
    b = save_figure(draw(), "f", tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert b"CreationDate" not in a[1].read_bytes()
    width_px = int.from_bytes(a[0].read_bytes()[16:20], "big")  # PNG IHDR width
    assert width_px <= (PAGE_WIDTH_IN + 0.1) * PNG_DPI


def test_check_figures_finds_stale_missing_and_orphaned_figures(results, tmp_path, monkeypatch):
    figs = tmp_path / "figs"
    monkeypatch.setenv("MEDLIB_FIGURES_DIR", str(figs))
    _ablation(results)
    written = rf.write_figures()
    assert sorted(p.name for p in written) == ["91_medground_ablation_smoke.pdf", "91_medground_ablation_smoke.png"]
    assert rf.check_figures() == []
    _ablation(results, miou=20.0)  # the results file changes, the committed figure does not
    problems = rf.check_figures()
    assert len(problems) == 2 and all("differs from what results/medground_ablation_smoke.csv give" in p
                                      for p in problems)
    rf.write_figures()
    (figs / "91_training_gone.png").write_bytes(b"x")  # a figure whose logs were removed
    (figs / "91_medground_ablation_smoke.pdf").unlink()
    assert rf.check_figures() == [
        "91_medground_ablation_smoke.pdf is missing; results/medground_ablation_smoke.csv feed it: "
        "run `python -m medlib figures` and commit it",
        "91_training_gone.png: no results file feeds it any more (its inputs were removed): delete it"]


def test_learning_study_redraws_its_figure(results, tmp_path, monkeypatch):
    import json

    from medlib.study.learning import redraw_figures, summarise

    monkeypatch.setenv("MEDLIB_FIGURES_DIR", str(tmp_path / "figs"))
    rows = [{"seed": 0, "variant": a, "mIoU": m, "Acc": m} for a, m in (("sft_start", 30.0), ("sft_more", 31.0),
                                                                         ("grpo", 29.0))]
    (results / "learning_study_learning.json").write_text(json.dumps({"per_seed": rows, "summary": summarise(
        pd.DataFrame(rows))}))
    _ablation(results)  # fed by another command: not redrawn by the study
    assert [p.name for p in redraw_figures("learning")] == ["91_learning_study.png", "91_learning_study.pdf"]
    assert rf.check_figures() == [f"91_medground_ablation_smoke.{ext} is missing; results/medground_ablation_smoke.csv "
                                  "feed it: run `python -m medlib figures` and commit it" for ext in ("pdf", "png")]


def test_learning_study_figure_shows_each_seed_as_stored():
    rows = pd.DataFrame([{"seed": s, "variant": a, "mIoU": 30.0, "Acc": acc} for s, accs in ((0, (33, 29, 29)),
                        (1, (32, 35, 30))) for a, acc in zip(("sft_start", "sft_more", "grpo"), accs, strict=True)])
    fig = rf.plot_learning_study(rows)
    acc = fig.axes[1]
    dots = sorted(tuple(map(float, o)) for c in acc.collections for o in c.get_offsets())
    assert dots == [(0, 32), (0, 33), (1, 29), (1, 35), (2, 29), (2, 30)]
    assert acc.get_ylabel() == "Acc@0.5 (%)"


@pytest.mark.slow
def test_committed_figures_are_what_the_committed_results_give(monkeypatch):
    """Every committed figures/91_* file equals what results/ draws now (fails on a stale figure)."""
    monkeypatch.delenv("MEDLIB_RESULTS_DIR", raising=False)
    monkeypatch.delenv("MEDLIB_FIGURES_DIR", raising=False)
    assert rf.check_figures() == []


def test_cli_figures_then_check_figures(results, tmp_path, monkeypatch, capsys):
    from medlib.__main__ import main

    monkeypatch.setenv("MEDLIB_FIGURES_DIR", str(tmp_path / "figs"))
    _ablation(results)
    assert main(["check-figures"]) == 1  # not drawn yet
    assert "91_medground_ablation_smoke.png is missing" in capsys.readouterr().err
    assert main(["figures"]) == 0
    assert main(["check-figures"]) == 0
    assert capsys.readouterr().out.strip().endswith("figures check: ok")
