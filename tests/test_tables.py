"""Tables rebuilt from results/: reported beside ours, alignment, formats, bad rows."""

import pandas as pd
import pytest

from medlib.report.tables import (
    NOT_RUN,
    OursDataError,
    build_tables,
    load_ours,
    side_by_side,
    to_latex,
    write_ours,
)


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    return tmp_path


def _row(**kw):
    base = dict(method="tiny Qwen2.5-VL", setting="G=4", metric="mIoU", value=41.5, stands_for="MS-CXR",
                beside_method="MedGround-R1", beside_setting="G=4",
                dataset="embedded chest 112 px", profile="smoke", scale="tiny Qwen2.5-VL, CPU", n=300,
                ci_low=38.0, ci_high=45.1)
    base.update(kw)
    return base


def test_ours_sit_beside_the_matching_reported_row(results):
    write_ours([_row(), _row(metric="Acc", value=44.0, ci_low="", ci_high="")], "medground-r1", 2, "10_medground_train")
    df = side_by_side("medground-r1", "2")
    g4 = df[(df["setting"] == "G=4") & (df["dataset"] == "MS-CXR")].set_index("metric")
    # reported G=4 on MS-CXR: mIoU 79.02, Acc 83.12 (MedGround-R1 Table 2)
    assert g4.loc["mIoU", "reported"] == "79.02" and g4.loc["mIoU", "ours"] == "41.50 [38.0, 45.1]"
    assert g4.loc["Acc", "ours"] == "44.00"
    assert "tiny Qwen2.5-VL" in g4.loc["mIoU", "ours_on"] and "n=300" in g4.loc["mIoU", "ours_on"]
    assert g4.loc["mIoU", "ours_is"] == "ours: tiny Qwen2.5-VL, G=4; embedded chest 112 px, n = 300"
    # G=2 was not run by us
    g2 = df[(df["setting"] == "G=2") & (df["metric"] == "mIoU")]
    assert (g2["ours"] == NOT_RUN).all()


def test_unmatched_ours_rows_are_appended_not_lost(results):
    write_ours([_row(setting="G=3", beside_setting="", beside_method="", value=12.0)], "medground-r1", "2", "x")
    df = side_by_side("medground-r1", "2")
    extra = df[df["setting"] == "G=3"]
    assert len(extra) == 1 and extra["reported"].iloc[0] == "–" and extra["ours"].iloc[0].startswith("12.00")


def test_rewriting_a_producer_replaces_its_rows(results):
    write_ours([_row(value=10.0)], "medground-r1", "2", "nb")
    write_ours([_row(value=20.0)], "medground-r1", "2", "nb")
    write_ours([_row(value=30.0, setting="G=8", beside_setting="G=8")], "medground-r1", "2", "other")
    ours = load_ours("medground-r1", "2")
    assert sorted(ours["value"]) == [20.0, 30.0]


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(metric="F1"), "metric"),
        (dict(value="nan"), "value"),
        (dict(value=140.0), "value"),  # percentages live in 0-100
        (dict(colour="red"), "unknown"),
    ],
)
def test_bad_rows_are_refused_naming_the_field(results, bad, field):
    with pytest.raises(OursDataError, match=field):
        write_ours([_row(**bad)], "medground-r1", "2", "nb")


def test_unknown_table_is_refused(results):
    with pytest.raises(OursDataError, match="no table"):
        write_ours([_row()], "medground-r1", "9", "nb")


def test_build_tables_writes_every_table_in_both_formats(results):
    write_ours([_row(metric="DSC", value=55.0, stands_for="CT-ORG", beside_method="MedVol-R1", setting="Delta=5",
                     beside_setting="Delta=5", dataset="embedded ct_synth volumes")],
               "medvol-r1", "2b", "31_medvol_eval")
    index = build_tables()
    assert len(index) == 12
    out = results / "tables"
    assert (out / "medground-r1_table1.md").is_file() and (out / "medvol-r1_table2b.tex").is_file()
    row = index[(index["paper"] == "medvol-r1") & (index["table"] == "2b")].iloc[0]
    assert row["ours"] == 1 and row["produced_by"] == "31_medvol_eval"
    tex = (out / "medvol-r1_table2b.tex").read_text()
    assert r"\toprule" in tex and "55.00" in tex and "84.41" in tex  # reported Delta=2 DSC


def test_latex_escapes_specials():
    df = pd.DataFrame([dict(dataset="A&B", subset="all", method="x_y", setting="50%", metric="Dice",
                            reported="1.00", ours=NOT_RUN)])
    tex = to_latex(df, "c", "l")
    assert r"A\&B" in tex and r"x\_y" in tex and r"50\%" in tex


def test_ours_rows_map_metric_names_and_intervals(results):
    from medlib.report.tables import ours_rows

    result = {"mIoU": 40.0, "mIoU_lo": 35.0, "mIoU_hi": 45.0, "pDice": 10.0, "n": 60}
    rows = ours_rows(result, "tiny Qwen2.5-VL w/ RL(Soft)", "direct prompt", {"mIoU": "IoU", "pDice": "pDice"},
                     stands_for="U-MRG-14K", dataset="embedded umrg", profile="smoke", scale="tiny",
                     beside_method="Lingshu w/ RL(Soft)", beside_setting="reasoning prompt")
    assert [(r["metric"], r["value"], r["ci_low"], r["n"]) for r in rows] == [("IoU", 40.0, 35.0, 60),
                                                                            ("pDice", 10.0, "", 60)]
    write_ours(rows, "medreasoner", "3", "nb")  # valid rows for the table they name
    assert len(load_ours("medreasoner", "3")) == 2


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(method="MedGround-R1"), "method"),  # the paper's model is not ours
        (dict(dataset="MS-CXR"), "dataset"),  # nor its dataset
        (dict(dataset=""), "dataset"),
        (dict(beside_setting="G=5"), "beside_method"),  # the paper prints no G=5 row
    ],
)
def test_our_rows_carry_our_names_not_the_papers(results, bad, field):
    with pytest.raises(OursDataError, match=field):
        write_ours([_row(**bad)], "medground-r1", "2", "nb")


def test_official_pdice_may_exceed_100_percent(results):
    row = dict(method="tiny Qwen2.5-VL w/ RL(Soft)", setting="direct prompt", metric="pDice", value=150.0,
               stands_for="U-MRG-14K", dataset="embedded umrg", profile="smoke", scale="tiny", n=60)
    write_ours([row], "medreasoner", "3", "nb")
    with pytest.raises(OursDataError, match="0-200"):
        write_ours([row | {"value": 201.0}], "medreasoner", "3", "nb")


def test_paper_layout_puts_ours_under_the_printed_row(results):
    from medlib.report.tables import paper_layout, to_markdown

    write_ours([_row(), _row(metric="Acc", value=44.0, ci_low="", ci_high="")], "medground-r1", 2, "nb")
    write_ours([_row(setting="G=3", beside_setting="", beside_method="", value=12.0)], "medground-r1", 2, "x")
    df, notes = paper_layout("medground-r1", "2")
    # the paper's rows in its order, its metrics as columns, one dataset: no dataset in the header
    assert list(df.columns[:4]) == ["method", "setting", "mIoU", "Acc"]
    printed = df[~df["_ours"]]
    assert list(printed["setting"]) == ["G=2", "G=4", "G=6", "G=8"]
    i = df.index[(df["setting"] == "G=4") & ~df["_ours"]][0]
    ours = df.loc[i + 1]
    assert ours["_ours"] and ours["method"] == "ours: tiny Qwen2.5-VL, G=4; embedded chest 112 px, n = 300"
    assert ours["mIoU"] == "41.50 [38.0, 45.1]" and ours["Acc"] == "44.00"
    assert df.loc[i, "mIoU"] == "79.02"
    last = df.iloc[-1]
    assert last["_ours"] and "no printed counterpart" in last["method"] and last["mIoU"].startswith("12.00")
    md = to_markdown(df, "t", notes)
    assert "| ↳ ours: tiny Qwen2.5-VL, G=4" in md and "MedGround-R1 | G=4 | 79.02 | 83.12 |" in md
    assert "[1] embedded chest 112 px (smoke, n=300)" in md


def test_table4s_show_the_committed_measurements(results):
    """MedReasoner Table 4 from the segmenter measurement, MedGround-R1 Table 4 from the
    learning studies: no notebook writes them into results/ours/."""
    import json

    from medlib.report.tables import paper_layout

    rows = [{"case_id": f"c{i}", "prompt": p, "dice": d} for i in range(2)
            for p, d in (("points", 0.2 + 0.1 * i), ("box", 0.8), ("box+points", 0.9))]
    (results / "segment.json").write_text(json.dumps({
        "profile": "smoke", "segmenter": {"name": "litemedsam", "device": "cpu"},
        "2d": {"split": "test", "rows": rows}}))
    df, _ = paper_layout("medreasoner", "4")
    i = df.index[(df["method"] == "MedSAM") & (df["setting"] == "w/ Points")][0]
    line = df.loc[i + 1]
    assert line["_ours"] and line["method"].startswith("ours: LiteMedSAM, ground-truth prompts, w/ Points")
    assert line["Dice"].startswith("25.00")  # mean of 20 and 30
    cfg = {"model": {"name_or_path": "tiny"}, "data": {"source": "chest", "image_size": 112}, "grpo": {}}
    per_seed = [{"variant": v, "seed": s, "steps": st, "sft_start_steps": 200, "n": 100, "mIoU": m, "Acc": a}
                for s in (0, 1) for v, st, m, a in (("sft_start", 0, 30.0 + s, 20.0), ("grpo", 12, 40.0 + s, 30.0))]
    (results / "learning_study_smoke.json").write_text(json.dumps({
        "command": "python -m medlib.study.learning", "resolved_config": cfg, "per_seed": per_seed}))
    df, notes = paper_layout("medground-r1", "4")
    mine = df[df["_ours"]].set_index("method")
    key = "ours: tiny Qwen2.5-VL, SFT-200 + GRPO-12; embedded chest 112 px, n = 200 (no printed counterpart)"
    assert mine.loc[key, "mIoU"] == "40.50" and mine.loc[key, "Acc"] == "30.00"
    assert any("mean of seeds 0, 1" in v for v in notes.values())
    # a measurement without the field its table needs: one sentence naming file and field
    (results / "learning_study_smoke.json").write_text(json.dumps({"resolved_config": cfg}))
    from medlib.report.tables_measured import MeasuredDataError

    with pytest.raises(MeasuredDataError, match="learning_study_smoke.json: no field 'per_seed'"):
        paper_layout("medground-r1", "4")


def test_our_model_and_data_names_come_from_the_config():
    from medlib.paths import REPO
    from medlib.report.tables import our_data, our_model
    from medlib.train.config import load_config

    smoke = load_config(REPO / "configs" / "medground" / "smoke.yaml")
    assert (our_model(smoke), our_data(smoke)) == ("tiny Qwen2.5-VL", "embedded chest 112 px")
    vol = load_config(REPO / "configs" / "medvol" / "smoke.yaml")
    assert our_data(vol) == "embedded ct_synth volumes, 8 slices"
    full = load_config(REPO / "configs" / "medreasoner" / "full.yaml")
    assert our_model(full) == "Lingshu-7B" and our_data(full) == "U-MRG-14K (our copy, test split)"


def test_medreasoner_prompt_table_shows_notebook_20s_study(results):
    """Table 5 (prompt types): our soft-reward arm beside MedReasoner-7B with the same prompt,
    read from the reward-design study's CSV; Table 3 gains its SFT-continued control."""
    from medlib.report.tables import paper_layout

    rows = [dict(variant=v, seed=0, steps=12, n=60, refusals=r, mIoU=m, mIoU_lo=m - 5, mIoU_hi=m + 5, pDice=p)
            for v, r, m, p in (("sft_start", 1, 10.0, 8.0), ("soft", 0, 11.0, 6.0), ("sft_more", 0, 9.5, 7.5))]
    pd.DataFrame(rows).to_csv(results / "medreasoner_modes_smoke.csv", index=False)
    df, notes = paper_layout("medreasoner", "5")
    i = df.index[(df["method"] == "MedReasoner-7B") & (df["setting"] == "direct prompt")][0]
    line = df.loc[i + 1]
    assert line["_ours"] and line["method"].startswith("ours: tiny Qwen2.5-VL w/ RL(Soft), direct prompt")
    assert (line["IoU"], line["pDice"], line["refusals"]) == ("11.00 [6.0, 16.0]", "6.00", "0")
    assert any("paper variant" in v for v in notes.values())
    t3, _ = paper_layout("medreasoner", "3")
    assert any("w/ SFT continued, 12 steps" in m for m in t3["method"])
