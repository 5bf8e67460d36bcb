"""MS-CXR and ChestX-ray8 adapters: fixture files in each real format, the real NIH box list
shipped by torchxrayvision, and one clear error per malformed input."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from medlib.data.chestxray8 import FINDINGS, load_chestxray8, patient_of, patient_split
from medlib.data.io import DatasetError
from medlib.data.mscxr import load_mscxr, phrase_from_problem

FIX = Path(__file__).parent / "fixtures"
MS = FIX / "ms_cxr"
CXR8 = FIX / "chestxray8"


def _copy(src: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(src / n, dst / n)
    return dst


# ============================================================================ MS-CXR
def test_medrpg_json_objects():
    recs = load_mscxr(MS, "train")
    assert [r.sample_id for r in recs] == ["mscxr_11", "mscxr_12", "mscxr_13"]
    r = recs[0]
    # bbox [412, 40, 120, 96] xywh -> [412, 40, 412+120, 40+96] = [412, 40, 532, 136]
    assert r.boxes == [(412.0, 40.0, 532.0, 136.0)]
    assert r.query == "Small left apical pneumothorax"
    assert r.label == "Pneumothorax"  # MedRPG ID_Categories[7]
    assert r.dataset == "ms_cxr" and r.split == "train"
    # MedRPG's width/height are the DICOM size, not the box frame: kept aside, size unknown
    assert r.image_size is None and r.meta["annotated_size"] == (2544, 3056)
    assert (
        r.image_path == MS / "files/p10/p10000101/s50000101/aaaa0001-00000000-00000000-00000000-00000001.jpg"
    )
    # fractional xywh: [60.5, 350.25, 140, 110.75] -> x2 = 200.5, y2 = 461.0
    assert recs[2].boxes == [(60.5, 350.25, 200.5, 461.0)]
    assert recs[1].label == "Cardiomegaly" and recs[2].label == "Pneumonia"


def test_medrpg_json_lists_and_image_root(tmp_path):
    recs = load_mscxr(MS, "test", image_root=tmp_path / "ln_data")
    assert len(recs) == 2
    # [30, 380, 160, 150] -> [30, 380, 190, 530]
    assert recs[0].boxes == [(30.0, 380.0, 190.0, 530.0)]
    assert recs[0].label == "Pleural Effusion" and recs[1].label == "Consolidation"
    assert recs[0].image_path.parent.parent.parent.parent.parent == tmp_path / "ln_data"


def test_medrpg_pth_equals_json(tmp_path):
    torch = pytest.importorskip("torch")
    rows = json.loads((MS / "MS_CXR_train.json").read_text())
    keys = ("anno_id", "image_id", "category_id", "img_file", "bbox", "width", "height", "phrase")
    torch.save(
        [tuple(tuple(r[k]) if k == "bbox" else r[k] for k in keys) for r in rows],
        tmp_path / "MS_CXR_train.pth",
    )
    from_pth = load_mscxr(tmp_path, "train", image_root=MS)
    from_json = load_mscxr(MS, "train")
    assert [(r.query, r.boxes, r.label, r.image_path) for r in from_pth] == [
        (r.query, r.boxes, r.label, r.image_path) for r in from_json
    ]


def test_official_csv_split_column_and_one_box_filter():
    recs = load_mscxr(MS, "train", format="csv")
    # train rows: 1 pneumothorax phrase, 1 two-box "bilateral" phrase, 1 one-box effusion phrase
    # MedRPG's filter drops the two-box phrase -> 2 records
    assert sorted(r.query for r in recs) == [
        "Small left apical pneumothorax",
        "moderate right pleural effusion",
    ]
    ptx = next(r for r in recs if "pneumothorax" in r.query)
    # x, y, w, h = 1650, 160, 480, 384 -> [1650, 160, 2130, 544]; size from the CSV
    assert ptx.boxes == [(1650.0, 160.0, 2130.0, 544.0)] and ptx.image_size == (2544, 3056)
    assert ptx.label == "Pneumothorax" and ptx.meta["subject_id"] == "12000301"
    unfiltered = load_mscxr(MS, "train", format="csv", one_box_per_phrase=False)
    both = next(r for r in unfiltered if r.query == "bilateral pleural effusions")
    # two boxes: [120, 2100, 760, 2700] and [1800, 2150, 2400, 2710]
    assert both.boxes == [(120.0, 2100.0, 760.0, 2700.0), (1800.0, 2150.0, 2400.0, 2710.0)]
    assert len(unfiltered) == 3
    assert [r.query for r in load_mscxr(MS, "val", format="csv")] == ["cardiomegaly"]
    assert [r.query for r in load_mscxr(MS, "test", format="csv")] == ["left lower lobe consolidation"]


def test_auto_prefers_medrpg_json_over_csv():
    assert load_mscxr(MS, "train")[0].meta["source"] == "MS_CXR_train.json"
    # no MS_CXR_val.json / val.json in the fixture: auto falls back to the official CSV
    assert load_mscxr(MS, "val")[0].meta["source"] == "MS_CXR_Local_Alignment_v1.1.0.csv"


def test_csv_without_split_column_uses_patient_split():
    root = MS / "v1.0"
    by_split = {s: load_mscxr(root, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in by_split.values()) == 6  # every row lands in exactly one split
    for split, recs in by_split.items():
        for r in recs:
            assert patient_split(r.meta["subject_id"]) == split
    assert {r.meta["subject_id"] for r in by_split["test"]} == {"13000404"}


def test_medground_rows():
    recs = load_mscxr(MS / "medground", "test")
    assert [r.query for r in recs] == ["small left apical pneumothorax", "enlarged cardiac silhouette"]
    assert recs[0].boxes == [(345.0, 70.0, 486.0, 115.0)]  # already xyxy pixels
    assert recs[0].image_size is None and recs[0].label is None
    assert phrase_from_problem("describe it: x.") == "describe it: x"  # only the known prefix is cut


def test_mscxr_errors(tmp_path):
    with pytest.raises(DatasetError, match="no_such_dir"):
        load_mscxr(tmp_path / "no_such_dir", "train")
    with pytest.raises(DatasetError, match="split 'val'"):
        load_mscxr(MS / "medground", "val")
    rows = json.loads((MS / "MS_CXR_train.json").read_text())
    rows[2]["bbox"] = [10, 10, 0, 5]
    (tmp_path / "MS_CXR_train.json").write_text(json.dumps(rows))
    with pytest.raises(
        DatasetError, match=r"MS_CXR_train.json, row 2 \(0-based\): box width and height must be > 0"
    ):
        load_mscxr(tmp_path, "train")
    del rows[2]["bbox"]
    (tmp_path / "MS_CXR_train.json").write_text(json.dumps(rows))
    with pytest.raises(DatasetError, match=r"row 2 \(0-based\): missing key\(s\) \['bbox'\]"):
        load_mscxr(tmp_path, "train")
    (tmp_path / "MS_CXR_train.json").write_text("[{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_mscxr(tmp_path, "train")

    lines = (MS / "MS_CXR_Local_Alignment_v1.1.0.csv").read_text().splitlines()
    bad = tmp_path / "csv"
    bad.mkdir()
    lines[2] = lines[2].replace(",640,600,", ",six,600,")  # line 3 of the file = data row 2
    assert "six" in lines[2]
    (bad / "MS_CXR_Local_Alignment_v1.1.0.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"line 3 \(data row 2\): bbox\[2\] 'six' is not a number"):
        load_mscxr(bad, "train")
    header = lines[0].replace("image_width,", "")
    (bad / "MS_CXR_Local_Alignment_v1.1.0.csv").write_text(header + "\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['image_width'\]"):
        load_mscxr(bad, "train")

    mg = json.loads((MS / "medground" / "cxr_test.json").read_text())
    mg[1]["solution"] = [500, 10, 400, 20]
    (tmp_path / "cxr_test.json").write_text(json.dumps(mg))
    with pytest.raises(DatasetError, match=r"cxr_test.json, row 1 \(0-based\): solution needs x2 > x1"):
        load_mscxr(tmp_path, "test", format="medground")
    with pytest.raises(DatasetError, match="images not found"):
        load_mscxr(MS, "train", check_images=True)


# ============================================================================ ChestX-ray8
def test_chestxray8_fixture_rows():
    recs = load_chestxray8(CXR8)
    assert len(recs) == 5
    r = recs[1]
    # 363.0, 379.25, 547.5, 371.75 -> [363.0, 379.25, 910.5, 751.0]
    assert r.boxes == [(363.0, 379.25, 910.5, 751.0)]
    assert r.query == "cardiomegaly" and r.label == "Cardiomegaly" and r.split == "all"
    assert r.image_path == CXR8 / "images" / "00000101_003.png" and r.image_size is None
    assert r.meta["patient_id"] == "00000101" and r.meta["line"] == 3
    assert recs[2].label == "Effusion"  # the row with empty trailing fields ",,," is accepted


def test_chestxray8_split_lists():
    test = load_chestxray8(CXR8, "test")  # root/test_list.txt
    assert [r.sample_id for r in test] == [
        "cxr8_00000202_001_effusion",
        "cxr8_00000202_001_infiltrate",
        "cxr8_00000303_010_nodule",
    ]
    assert {r.split for r in test} == {"test"}
    trval = load_chestxray8(CXR8, "train_val")  # NIH's other list; 00000404_000 has no box
    assert [r.label for r in trval] == ["Atelectasis", "Cardiomegaly"]
    mine = load_chestxray8(CXR8, "val", split_files={"val": CXR8 / "test_list.txt"})
    assert len(mine) == 3 and mine[0].split == "val"
    with pytest.raises(DatasetError, match="no entry for split 'train'"):
        load_chestxray8(CXR8, "train", split_files={"val": CXR8 / "test_list.txt"})


def test_chestxray8_patient_split_without_lists(tmp_path):
    root = _copy(CXR8, tmp_path / "cxr8", ["BBox_List_2017.csv"])
    by_split = {s: load_chestxray8(root, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in by_split.values()) == 5
    for split, recs in by_split.items():
        assert all(patient_split(patient_of(r.image_path.name)) == split for r in recs)
    with pytest.raises(DatasetError, match="not one of the patient splits"):
        load_chestxray8(root, "holdout")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("00000999_000.png,Mass,1,2,3", r"line 3 \(data row 2\): expected 6 fields"),
        ("00000999_000.png,Mass,1,2,x3,4", r"line 3 \(data row 2\): w 'x3' is not a number"),
        ("00000999_000.png,Mass,1,2,0,4", r"line 3 \(data row 2\): box width and height must be > 0"),
        ("00000999_000.png,Mass,1,2,3,-4", r"line 3 \(data row 2\): box width and height must be > 0"),
        ("00000999_000.png,Mass,1,2,3,nan", r"line 3 \(data row 2\): h 'nan' is not finite"),
        ("00000999_000.png,,1,2,3,4", r"line 3 \(data row 2\): empty Image Index or Finding Label"),
        ("00000999_000.png,Mass,1,2,3,4,7", r"line 3 \(data row 2\): unexpected non-empty field"),
    ],
)
def test_chestxray8_malformed_row_named(tmp_path, row, message):
    lines = (CXR8 / "BBox_List_2017.csv").read_text().splitlines()
    lines.insert(2, row)
    (tmp_path / "BBox_List_2017.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=message) as e:
        load_chestxray8(tmp_path)
    assert "BBox_List_2017.csv" in str(e.value)


def test_chestxray8_missing_root_file_header(tmp_path):
    with pytest.raises(DatasetError, match="nope: ChestX-ray8 root directory not found"):
        load_chestxray8(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no BBox_List_2017.csv"):
        load_chestxray8(tmp_path)
    (tmp_path / "BBox_List_2017.csv").write_text("image,label,x,y,w,h\n")
    with pytest.raises(DatasetError, match="header must start with 'Image Index,Finding Label"):
        load_chestxray8(tmp_path)
    with pytest.raises(DatasetError, match="split list file not found"):
        load_chestxray8(CXR8, "test", split_files={"test": tmp_path / "missing.txt"})


# ---------------------------------------------------------------- the real NIH box list
def _torchxrayvision_csv() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None:
        pytest.skip(
            "torchxrayvision is not installed (pip install torchxrayvision) - it ships the real box list"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "BBox_List_2017.csv.gz"
    assert path.is_file(), f"torchxrayvision no longer ships {path.name}"
    return path


def test_real_chestxray8_box_list():
    path = _torchxrayvision_csv()
    recs = load_chestxray8(path)  # the .csv.gz itself (its folder has no images)
    assert len(recs) == 984  # MedGround-R1 Sec. 4: 984 hand-labelled boxes
    assert set(Counter(r.label for r in recs)) == set(FINDINGS)
    assert len({r.image_path.name for r in recs}) == 880
    first, last = recs[0], recs[-1]
    # first data row: 00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661
    assert first.image_path.name == "00013118_008.png" and first.query == "atelectasis"
    assert first.boxes[0] == pytest.approx(
        (
            225.084745762712,
            547.019216763771,
            225.084745762712 + 86.7796610169491,
            547.019216763771 + 79.1864406779661,
        )
    )
    # last row: 00026920_000.png,Atelectasis,343.438229166667,446.198524305556,120.604444444444,53.4755555555556
    assert last.image_path.name == "00026920_000.png"
    assert last.boxes[0] == pytest.approx(
        (343.438229166667, 446.198524305556, 464.042673611111, 499.6740798611116)
    )
    # every box lies in the 1024 x 1024 PNG
    assert all(0 <= b[0] < b[2] <= 1024 and 0 <= b[1] < b[3] <= 1024 for r in recs for b in r.boxes)
    # patient split: disjoint, complete, no patient in two splits
    splits = {s: load_chestxray8(path, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in splits.values()) == 984
    patients = {s: {r.meta["patient_id"] for r in v} for s, v in splits.items()}
    assert not (
        patients["train"] & patients["val"]
        or patients["train"] & patients["test"]
        or patients["val"] & patients["test"]
    )
    assert 0.6 < len(splits["train"]) / 984 < 0.8 and len(splits["val"]) > 50 and len(splits["test"]) > 100
