"""Tables rebuilt from results/: reported beside ours, alignment, formats, bad rows."""

import pandas as pd
import pytest

from medlib.tables import NOT_RUN, OursDataError, build_tables, load_ours, side_by_side, to_latex, write_ours


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RESULTS_DIR", str(tmp_path))
    return tmp_path


def _row(**kw):
    base = dict(method="MedGround-R1", setting="G=4", metric="mIoU", value=41.5, stands_for="MS-CXR",
                dataset="embedded chest", profile="smoke", scale="tiny Qwen2.5-VL, CPU", n=300,
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
    # G=2 was not run by us
    g2 = df[(df["setting"] == "G=2") & (df["metric"] == "mIoU")]
    assert (g2["ours"] == NOT_RUN).all()


def test_unmatched_ours_rows_are_appended_not_lost(results):
    write_ours([_row(setting="G=3", value=12.0)], "medground-r1", "2", "x")
    df = side_by_side("medground-r1", "2")
    extra = df[df["setting"] == "G=3"]
    assert len(extra) == 1 and extra["reported"].iloc[0] == "–" and extra["ours"].iloc[0].startswith("12.00")


def test_rewriting_a_producer_replaces_its_rows(results):
    write_ours([_row(value=10.0)], "medground-r1", "2", "nb")
    write_ours([_row(value=20.0)], "medground-r1", "2", "nb")
    write_ours([_row(value=30.0, setting="G=8")], "medground-r1", "2", "other")
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
    write_ours([_row(metric="DSC", value=55.0, stands_for="CT-ORG", method="MedVol-R1", setting="Delta=5")],
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
    from medlib.tables import ours_rows

    result = {"mIoU": 40.0, "mIoU_lo": 35.0, "mIoU_hi": 45.0, "pDice": 10.0, "n": 60}
    rows = ours_rows(result, "Lingshu w/ RL(Soft)", "direct prompt", {"mIoU": "IoU", "pDice": "pDice"},
                     stands_for="U-MRG-14K", dataset="embedded umrg", profile="smoke", scale="tiny")
    assert [(r["metric"], r["value"], r["ci_low"], r["n"]) for r in rows] == [("IoU", 40.0, 35.0, 60),
                                                                            ("pDice", 10.0, "", 60)]
    write_ours(rows, "medreasoner", "3", "nb")  # valid rows for the table they name
    assert len(load_ours("medreasoner", "3")) == 2
