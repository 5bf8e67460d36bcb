"""Reported numbers (results/reported/*.csv): schema, loader, and values checked against the papers.

The paper texts live in the repository's sibling folder ``shared/papers``; the checks that read
them skip (with a reason) where that folder is absent. CI has it.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from medlib.report import reported as rep

PAPERS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "papers"
NUMBER = re.compile(r"^\d+(\.\d+)?$")
KEY = ("paper", "table", "dataset", "subset", "method", "setting", "metric")


def raw_rows(paper: str, table: str) -> list[dict[str, str]]:
    with rep.reported_csv(paper, table).open(newline="") as f:
        return list(csv.DictReader(f))


def paper_lines(paper: str) -> list[str]:
    path = PAPERS_DIR / f"{paper}.paper.txt"
    if not path.is_file():
        pytest.skip(
            f"paper text {path} not found: the sibling folder shared/papers is needed for these checks"
        )
    return path.read_text(encoding="utf-8").replace("\xa0", " ").split("\n")


def block(lines: list[str], header_start: str, caption_start: str) -> list[str]:
    """Lines from the last one starting with ``header_start`` before the first line starting with
    ``caption_start`` (MedReasoner Tables 5 and 6 share a header) up to that caption, exclusive."""
    j = next(k for k, ln in enumerate(lines) if ln.startswith(caption_start))
    i = max(k for k in range(j) if lines[k].startswith(header_start))
    return lines[i:j]


def unmark(cell: str) -> str:
    return re.sub(r"</?u>", "", cell).strip()


@pytest.fixture(autouse=True)
def _fresh_cache():
    rep._read.cache_clear()
    yield
    rep._read.cache_clear()


# --------------------------------------------------------------------------- schema


def test_one_csv_per_table_and_nothing_else():
    names = {p.name for p in rep.reported_dir().glob("*.csv")}
    assert names == {f"{p}_table{t}.csv" for p, t in rep.list_tables()}
    assert len(rep.list_tables()) == 12  # MedGround-R1 1-4, MedReasoner 2-6, MedVol-R1 1, 2a, 2b


@pytest.mark.parametrize(("paper", "table"), rep.list_tables())
def test_schema_of_every_csv(paper, table):
    path = rep.reported_csv(paper, table)
    with path.open(newline="") as f:
        assert next(csv.reader(f)) == list(rep.COLUMNS)
    rows = raw_rows(paper, table)
    assert rows, path
    keys = set()
    for r in rows:
        where = f"{path.name}: {r}"
        assert (r["paper"], r["table"], r["source"]) == (paper, table, "reported"), where
        assert r["metric"] in rep.METRICS and r["unit"] == rep.METRICS[r["metric"]], where
        assert r["dataset"] and r["subset"] and r["method"], where
        if r["value"] == "":
            assert r["note"].startswith(rep.NO_VALUE), where
        else:
            assert NUMBER.match(r["value"]), where
            assert not r["note"].startswith(rep.NO_VALUE), where
            assert 0 <= float(r["value"]) <= (10_000 if r["metric"] == "refusals" else 100), where
        key = tuple(r[k] for k in KEY)
        assert key not in keys, f"duplicate row {key} in {path.name}"
        keys.add(key)


def test_load_reported_all():
    df = rep.load_reported()
    assert tuple(df.columns) == rep.COLUMNS
    assert df["value"].dtype == float
    # row counts: MG T1 8 methods x 3 datasets x 2 metrics = 48; T2 4 G x 2 = 8; T3 4 x 2 = 8;
    # T4 6 regimes x 2 = 12; MR T2 16 models x (3 + 10 super-categories) = 208; T3 5 x 4 = 20;
    # T4 3 x 3 = 9; T5 6 x 3 = 18; T6 8 x 4 = 32; MV T1 5 x 3 x 2 = 30; 2a 7 x 2 = 14; 2b 4 x 2 = 8
    sizes = df.groupby(["paper", "table"]).size().to_dict()
    assert sizes == {
        ("medground-r1", "1"): 48,
        ("medground-r1", "2"): 8,
        ("medground-r1", "3"): 8,
        ("medground-r1", "4"): 12,
        ("medreasoner", "2"): 208,
        ("medreasoner", "3"): 20,
        ("medreasoner", "4"): 9,
        ("medreasoner", "5"): 18,
        ("medreasoner", "6"): 32,
        ("medvol-r1", "1"): 30,
        ("medvol-r1", "2a"): 14,
        ("medvol-r1", "2b"): 8,
    }
    text_cols = [c for c in rep.COLUMNS if c != "value"]
    assert not df[text_cols].isna().any().any()
    # NaN exactly where the note says the paper gives no value: MG T4 SFT-3k, GRPO-5k (4 cells),
    # MR T2 pDice '-' of VLMR1-REC-3B and SAM4MLLM-8B (2), MV T2a RL only (2) = 8
    no_value = df["note"].str.startswith(rep.NO_VALUE)
    assert (df["value"].isna() == no_value).all()
    assert int(no_value.sum()) == 8
    assert (df["source"] == "reported").all()


def test_load_reported_filters():
    assert set(rep.load_reported("medvol-r1", 2)["table"]) == {"2a", "2b"}
    assert set(rep.load_reported("medvol-r1", "Table 2b")["table"]) == {"2b"}
    assert set(rep.load_reported(table=1)["paper"]) == {"medground-r1", "medvol-r1"}
    assert set(rep.load_reported("medreasoner")["table"]) == {"2", "3", "4", "5", "6"}
    with pytest.raises(ValueError, match="unknown paper"):
        rep.load_reported("medground")
    with pytest.raises(ValueError, match="no table"):
        rep.load_reported("medreasoner", 1)  # Table 1 compares datasets; not transcribed


# --------------------------------------------------------------------------- reported_value


def test_hand_chosen_values():
    rv = rep.reported_value
    assert rv("medground-r1", 1, "Ours", "mIoU", dataset="MS-CXR") == 79.02
    assert rv("medground-r1", 1, "Ours", "Acc", dataset="MS-CXR") == 83.12
    assert rv("medground-r1", 1, "BiRD", "Acc", dataset="ChestX-ray8") == 50.12
    assert rv("medground-r1", 2, "MedGround-R1", "Acc", setting="G=8") == 84.01
    assert rv("medground-r1", 3, "MedGround-R1", "mIoU", setting="w/o R_spatial") == 2.66
    assert rv("medvol-r1", 1, "Ours (SFT+RL)", "DSC", dataset="KiTS23") == 45.46
    assert rv("medvol-r1", "2b", "MedVol-R1", "IoU", setting="Delta=15") == 72.40
    assert rv("medreasoner", 2, "MedReasoner-7B", "IoU") == 32.42
    assert rv("medreasoner", 2, "MedReasoner-7B", "IoU", subset="Hist.") == 11.66
    assert rv("medreasoner", 6, "SFT", "refusals", setting="direct prompt") == 1081
    assert rv("medreasoner", 4, "MedSAM", "Dice", setting="BBox & Points") == 19.00
    assert math.isnan(rv("medvol-r1", "2a", "MedVol-R1", "DSC", setting="RL only (w/o SFT)"))
    assert math.isnan(rv("medreasoner", 2, "SAM4MLLM-8B", "pDice"))


def test_reported_value_names_options_when_ambiguous_or_missing():
    with pytest.raises(LookupError, match="direct prompt"):
        rep.reported_value("medreasoner", 5, "MedReasoner-7B", "IoU")
    with pytest.raises(LookupError, match="ChestX-ray8"):
        rep.reported_value("medground-r1", 1, "Ours", "mIoU")
    with pytest.raises(LookupError, match="'2a', '2b'"):
        rep.reported_value("medvol-r1", 2, "MedVol-R1", "DSC", setting=None)
    with pytest.raises(LookupError, match="BiRD"):
        rep.reported_value("medground-r1", 1, "Bird", "mIoU", dataset="MS-CXR")
    with pytest.raises(LookupError, match="no row with metric='Dice'"):
        rep.reported_value("medground-r1", 1, "Ours", "Dice", dataset="MS-CXR")


# --------------------------------------------------------------------------- bad input


def _copy_with(tmp_path: Path, monkeypatch, edit) -> Path:
    """A copy of results/reported with one line of medvol-r1_table2b.csv edited."""
    d = tmp_path / "reported"
    shutil.copytree(rep.reported_dir(), d)
    f = d / "medvol-r1_table2b.csv"
    lines = f.read_text().split("\n")
    lines[3] = edit(lines[3])  # line 4 of the file: Delta=5 DSC 85.43
    f.write_text("\n".join(lines))
    monkeypatch.setenv(rep.ENV_VAR, str(d))
    return f


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s.replace(",DSC,", ",Dsc,"), "metric"),
        (lambda s: s.replace(",85.43,", ",,"), "value"),
        (lambda s: s.replace(",85.43,", ",85.4x,"), "value"),
        (lambda s: s.replace(",reported,", ",measured,"), "source"),
        (lambda s: s.replace("medvol-r1,2b,", "medvol-r1,2a,"), "table"),
        (lambda s: s.replace(",%,", ",count,"), "unit"),
    ],
)
def test_bad_csv_names_file_line_and_field(tmp_path, monkeypatch, edit, field):
    _copy_with(tmp_path, monkeypatch, edit)
    with pytest.raises(rep.ReportedDataError, match=rf"medvol-r1_table2b\.csv, line 4, field '{field}'"):
        rep.load_reported("medvol-r1", "2b")


def test_missing_folder_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(rep.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=rep.ENV_VAR):
        rep.load_reported()


def test_default_folder_is_the_checkouts(monkeypatch):
    monkeypatch.delenv(rep.ENV_VAR, raising=False)
    assert rep.reported_dir() == Path(__file__).resolve().parents[1] / "results" / "reported"


# --------------------------------------------------------------------------- against the papers
# Cleanly extracted tables (tab-separated rows): every CSV value is compared with the paper's cell
# in the row named by the method (and reason mark) and the column named by the paper's header, and
# every numeric cell of the paper's table must appear in the CSV.

REASON = {"direct prompt": "\\times", "reasoning prompt": "\\checkmark"}


def _label(cell: str) -> str:
    return re.sub(r" \[\d+\]$", "", cell.strip())


def _clean_table_spec(paper: str, table: str):
    """(block of paper lines, row finder, column finder) for the tab-separated tables."""
    lines = paper_lines(paper)
    if (paper, table) == ("medground-r1", "1"):
        b = block(lines, "Method\tPublication", "Table 1.")
        head = b[0].split("\t")

        def col(r):
            return head.index(r["dataset"]) + (0 if r["metric"] == "mIoU" else 1)

        return b, lambda r: [r["method"]], col
    if (paper, table) == ("medreasoner", "2"):
        b = block(lines, "Method\tIoU↑\tpDice↑\tDice↑\tSuper", "Table 2:")
        h1, h2 = b[0].split("\t"), b[1].split("\t")

        def col(r):
            return h1.index(r["metric"] + "↑") if r["subset"] == "all" else h2.index(r["subset"])

        return b, lambda r: [r["method"]], col
    if (paper, table) == ("medreasoner", "3"):
        b = block(lines, "Method\tIoU↑\tpDice↑\tDice↑\t# Ref.↓", "Table 3:")
        head = [c.rstrip("↑↓") for c in b[0].split("\t")]
        return (
            b,
            lambda r: [r["method"]],
            lambda r: head.index({"refusals": "# Ref."}.get(r["metric"], r["metric"])),
        )
    if (paper, table) == ("medreasoner", "4"):
        b = block(lines, "Method\tDice \\uparrow", "Table 4:")
        h2 = b[1].split("\t")
        return b, lambda r: [r["method"]], lambda r: h2.index(r["setting"])
    if (paper, table) in {("medreasoner", "5"), ("medreasoner", "6")}:
        b = block(lines, "Method\tReason\tIoU", f"Table {table}:")
        head = [c.split(" ")[0] if c.startswith(("IoU", "pDice", "Dice")) else c for c in b[0].split("\t")]

        def col(r):
            return head.index("# Ref. \\downarrow" if r["metric"] == "refusals" else r["metric"])

        return b, lambda r: [r["method"], REASON[r["setting"]]], col
    raise AssertionError((paper, table))


CLEAN = [
    ("medground-r1", "1"),
    ("medreasoner", "2"),
    ("medreasoner", "3"),
    ("medreasoner", "4"),
    ("medreasoner", "5"),
    ("medreasoner", "6"),
]


@pytest.mark.parametrize(("paper", "table"), CLEAN)
def test_clean_tables_match_the_paper_cell_by_cell(paper, table):
    b, row_key, col = _clean_table_spec(paper, table)
    rows = [ln.split("\t") for ln in b]
    seen = set()
    for r in raw_rows(paper, table):
        key = row_key(r)
        hits = [i for i, cells in enumerate(rows) if [_label(c) for c in cells[: len(key)]] == key]
        assert len(hits) == 1, f"{paper} T{table}: row {key} found {len(hits)} times in the paper"
        c = col(r)
        printed = unmark(rows[hits[0]][c])
        assert r["value"] == ("" if printed == "-" else printed), (paper, table, r)
        assert ("<u>" in rows[hits[0]][c]) == ("underlined" in r["note"]), (paper, table, r)
        seen.add((hits[0], c))
    numeric = {
        (i, c)
        for i, cells in enumerate(rows)
        for c, v in enumerate(cells)
        if NUMBER.match(unmark(v)) or v.strip() == "-"
    }
    assert numeric == seen, f"{paper} T{table}: paper cells not in the CSV: {sorted(numeric - seen)[:5]}"


def test_medvol_table1_matches_the_paper():
    # The extraction prints baseline numbers twice ("58.4458.44"); undo that, then compare in order.
    b = block(paper_lines("medvol-r1"), "Method AbdomenCT-1K", "3.2 ")
    datasets = b[0].split()[1:]
    metrics = b[1].split()[:2]
    assert datasets == ["AbdomenCT-1K", "CT-ORG", "KiTS23"] and metrics == ["DSC", "IoU"]
    table = {}
    for ln in b[2:]:
        m = re.match(r"(.+?)((?:\s+[\d.]+){6})$", ln)
        if not m:
            continue
        vals = []
        for tok in m.group(2).split():
            h = len(tok) // 2
            vals.append(tok[:h] if len(tok) % 2 == 0 and tok[:h] == tok[h:] else tok)
        table[_label(m.group(1))] = vals
    rows = raw_rows("medvol-r1", "1")
    assert {r["method"] for r in rows} == set(table)
    for r in rows:
        c = 2 * datasets.index(r["dataset"]) + metrics.index(r["metric"])
        assert r["value"] == table[r["method"]][c], r


def _row_value(paper, table, setting, metric) -> str:
    (r,) = [r for r in raw_rows(paper, table) if r["setting"] == setting and r["metric"] == metric]
    return r["value"]


def test_medground_tables_2_to_4_against_the_interleaved_lines():
    lines = paper_lines("medground-r1")
    b = block(lines, "Table 2. Number of Sampled Completions", "3.2 Ablation Study")
    text = "\n".join(b)
    # Table 2: the line that starts with G holds "mIoU Acc" in its second cell (G=6 in LaTeX).
    for r in raw_rows("medground-r1", "2"):
        g = r["setting"].removeprefix("G=")
        (ln,) = [ln for ln in b if ln.startswith(g + "\t")]
        pair = ln.split("\t")[1].strip("$").replace("\\ ", " ").split()
        assert r["value"] == pair[["mIoU", "Acc"].index(r["metric"])], r
    # Table 3: reward marks and values are printed together on the interleaved lines
    t3 = {
        "all rewards": "~\t~\t~\t{} {}",
        "w/o R_format": "×\t\\checkmark\t\\checkmark\t{} {}",
        "w/o R_spatial": "√\t×\t√\t{} {}",
        "w/o R_semantic": "\t\t~\t×\t{} {}",
    }
    for setting, pattern in t3.items():
        snippet = pattern.format(*(_row_value("medground-r1", "3", setting, m) for m in ("mIoU", "Acc")))
        assert text.count(snippet) == 1, snippet
    # Table 4: label and value pair on one line, as extracted; two rows have no values
    t4 = {
        "SFT-1k": "SFT-1k\t{} {}",
        "GRPO-1k": "GRPO-1k\t{} {}",
        "GRPO-3k": "GRPO-3k CRPO-5k\t{} {}",
        "GRPO-5k w. Chain-of-Box": "GRPO-5K w. Chain-of-Box {} {}",
    }
    for setting, pattern in t4.items():
        snippet = pattern.format(*(_row_value("medground-r1", "4", setting, m) for m in ("mIoU", "Acc")))
        assert text.count(snippet) == 1, snippet
    for setting in ("SFT-3k", "GRPO-5k"):
        assert _row_value("medground-r1", "4", setting, "mIoU") == ""
    assert "Regime\tmIoU↑ IoU↑" in text  # the header the notes say was read as mIoU / Acc


def test_medvol_table2_against_the_flattened_lines():
    lines = paper_lines("medvol-r1")
    (a,) = [ln for ln in lines if ln.startswith("Setting DSC IoU")]
    (b,) = [ln for ln in lines if ln.startswith("Δ\\Delta DSC IoU")]
    printed = {"SFT only": "SFT only", "Full": "Full"}
    printed |= {f"w/o R_{k}": f"w/o R{k}R_{{{k}}}" for k in "csaf"}  # MathML doubling: "w/o RcR_{c}"
    for setting, label in printed.items():
        d, i = (_row_value("medvol-r1", "2a", setting, m) for m in ("DSC", "IoU"))
        assert f"{label} {d} {i}" in a, setting
    assert "RL only (w/o SFT) SFT only" in a  # the row the paper prints without numbers
    for delta in ("2", "5", "10", "15"):
        d, i = (_row_value("medvol-r1", "2b", f"Delta={delta}", m) for m in ("DSC", "IoU"))
        assert f" {delta} {d} {i}" in b, delta


# Claims in the papers' prose, recomputed from the CSVs (differences of reported values).
PROSE = [
    # "outperforming the previous best method, BiRD, by 5.69 and 7.07": 79.02-73.33, 83.12-76.05
    (
        "medground-r1",
        "BiRD, by 5.69 and 7.07 points",
        1,
        "Ours",
        "BiRD",
        "MS-CXR",
        ["mIoU", "Acc"],
        [5.69, 7.07],
    ),
    # 53.12-48.22 = 4.90, 62.18-50.12 = 12.06
    (
        "medground-r1",
        "surpassing BiRD by 4.90 and 12.06",
        1,
        "Ours",
        "BiRD",
        "ChestX-ray8",
        ["mIoU", "Acc"],
        [4.90, 12.06],
    ),
    # 60.10-52.02 = 8.08, 74.66-70.18 = 4.48
    (
        "medground-r1",
        "outperforming BiRD by 8.08 and 4.48",
        1,
        "Ours",
        "BiRD",
        "M3D-RefSeg",
        ["mIoU", "Acc"],
        [8.08, 4.48],
    ),
    # 32.42-18.32 = 14.10, 26.55-12.39 = 14.16, 37.78-29.71 = 8.07
    (
        "medreasoner",
        "by 14.10 in IoU, 14.16 in pDice, and 8.07 in Dice",
        2,
        "MedReasoner-7B",
        "Qwen2.5-VL-72B",
        None,
        ["IoU", "pDice", "Dice"],
        [14.10, 14.16, 8.07],
    ),
    # 31.69-15.85 = 15.84; 32.42-31.69 = 0.73
    (
        "medreasoner",
        "increasing IoU by 15.84 points",
        3,
        "Lingshu w/ RL(Hard)",
        "Lingshu w/ RL(Base)",
        None,
        ["IoU"],
        [15.84],
    ),
    (
        "medreasoner",
        "surpassing Hard by 0.73 points",
        3,
        "Lingshu w/ RL(Soft)",
        "Lingshu w/ RL(Hard)",
        None,
        ["IoU"],
        [0.73],
    ),
    # 89.86-85.52 = 4.34 (AbdomenCT-1K), 85.43-83.23 = 2.20 (CT-ORG), 45.46-36.21 = 9.25 (KiTS23)
    (
        "medvol-r1",
        "+4.34 DSC on AbdomenCT-1K",
        1,
        "Ours (SFT+RL)",
        "Ours (Pure SFT)",
        "AbdomenCT-1K",
        ["DSC"],
        [4.34],
    ),
    ("medvol-r1", "+2.20 on CT-ORG", 1, "Ours (SFT+RL)", "Ours (Pure SFT)", "CT-ORG", ["DSC"], [2.20]),
    ("medvol-r1", "+9.25 on KiTS23", 1, "Ours (SFT+RL)", "Ours (Pure SFT)", "KiTS23", ["DSC"], [9.25]),
]


@pytest.mark.parametrize(("paper", "phrase", "table", "a", "b", "dataset", "metrics", "diffs"), PROSE)
def test_prose_claims_agree_with_the_tables(paper, phrase, table, a, b, dataset, metrics, diffs):
    assert phrase in "\n".join(paper_lines(paper))
    for metric, diff in zip(metrics, diffs, strict=True):
        got = rep.reported_value(paper, table, a, metric, dataset) - rep.reported_value(
            paper, table, b, metric, dataset
        )
        assert got == pytest.approx(diff, abs=1e-9), (metric, got)


def test_repeated_cells_agree_across_tables():
    rv = rep.reported_value
    for m in ("mIoU", "Acc"):  # default G=4, all rewards and GRPO-5k w. Chain-of-Box are Table 1's model
        t1 = rv("medground-r1", 1, "Ours", m, dataset="MS-CXR")
        assert rv("medground-r1", 2, "MedGround-R1", m, setting="G=4") == t1
        assert rv("medground-r1", 3, "MedGround-R1", m, setting="all rewards") == t1
        assert rv("medground-r1", 4, "MedGround-R1", m, setting="GRPO-5k w. Chain-of-Box") == t1
    for m in ("DSC", "IoU"):
        assert rv("medvol-r1", "2a", "MedVol-R1", m, setting="Full") == rv(
            "medvol-r1", 1, "Ours (SFT+RL)", m, dataset="AbdomenCT-1K"
        )
        assert rv("medvol-r1", "2a", "MedVol-R1", m, setting="SFT only") == rv(
            "medvol-r1", 1, "Ours (Pure SFT)", m, dataset="AbdomenCT-1K"
        )
        assert rv("medvol-r1", "2b", "MedVol-R1", m, setting="Delta=5") == rv(
            "medvol-r1", 1, "Ours (SFT+RL)", m, dataset="CT-ORG"
        )
    t2 = rep.load_reported("medreasoner", 2).query("method == 'MedReasoner-7B' and subset == 'all'")
    t3 = rep.load_reported("medreasoner", 3).query("method == 'Lingshu w/ RL(Soft)' and metric != 'refusals'")
    assert dict(zip(t2.metric, t2.value, strict=True)) == dict(zip(t3.metric, t3.value, strict=True))
    assert isinstance(t2, pd.DataFrame)
