"""Wrong data is an error naming the file and row, never a silent target: boxes outside their
image (every MS-CXR layout, ChestX-ray8), U-MRG masks of another size and key points outside
their box, NaN voxels, image paths leaving the dataset root; boxes partly outside are clipped and
noted; ``data check`` opens every file and reports the bad ones; an interrupted or resized
generation of the embedded benchmark is generated again. Fixtures: tests/fixtures/faults/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medlib.data.checks import fit_box
from medlib.data.chestxray8 import load_chestxray8
from medlib.data.io import DatasetError, read_volume
from medlib.data.m3d import load_m3d_refseg
from medlib.data.mscxr import load_mscxr
from medlib.data.umrg import load_umrg

FAULTS = Path(__file__).parent / "fixtures" / "faults"


def test_fit_box_clips_partly_outside_and_rejects_fully_outside():
    assert fit_box([50, 40, 80, 50], 64, 64, "f, row 1") == ((50, 40, 64, 50), True)
    assert fit_box([1, 2, 3, 4], 64, 64, "f, row 1") == ((1, 2, 3, 4), False)
    for box in ([64, 10, 80, 20], [-20, -20, 0, 5], [70, 70, 90, 90]):
        with pytest.raises(DatasetError, match=r"f, row 1: box .* lies outside the 64x64 image"):
            fit_box(box, 64, 64, "f, row 1")


@pytest.mark.parametrize("layout", ["ms_cxr_medrpg", "ms_cxr_medground", "ms_cxr_csv"])
def test_mscxr_partly_outside_box_is_clipped_and_noted(layout):
    (rec,) = [r for r in load_mscxr(FAULTS / layout, "test") if r.meta.get("clipped")]
    size = (1000, 1000) if layout == "ms_cxr_csv" else (64, 64)
    x1, y1, x2, y2 = rec.box
    assert x2 == size[0] and x1 < x2 and y1 < y2  # clipped at the right edge, area kept
    assert "clipped to the" in rec.meta["notes"][0]


@pytest.mark.parametrize("layout,where", [("ms_cxr_medrpg", "MS_CXR_val.json, row 0"),
                                          ("ms_cxr_medground", "val.json, row 0"),
                                          ("ms_cxr_csv", "MS_CXR_Local_Alignment_v1.1.0.csv, line 3")])
def test_mscxr_box_outside_the_image_is_an_error_with_file_and_row(layout, where):
    with pytest.raises(DatasetError, match=rf"{where}.*: box .* lies outside the"):
        load_mscxr(FAULTS / layout, "val")


def test_chestxray8_boxes_checked_against_the_png():
    (rec,) = load_chestxray8(FAULTS / "chestxray8", "test")
    assert rec.box == (40.0, 50.0, 64.0, 64.0) and rec.meta["clipped"] == 1
    with pytest.raises(DatasetError, match=r"BBox_List_2017.csv, line 3: box \[70.0, 10.0, 80.0, 20.0\] lies outside"):
        load_chestxray8(FAULTS / "chestxray8", "val")


def test_a_box_is_checked_when_the_image_is_read_if_it_was_absent_at_load(tmp_path):
    d = tmp_path / "cxr8"
    shutil.copytree(FAULTS / "chestxray8", d)
    img = (d / "images" / "00000002_000.png").read_bytes()
    (d / "images" / "00000002_000.png").unlink()
    (rec,) = load_chestxray8(d, "val")  # the image is not there yet: nothing to check against
    (d / "images" / "00000002_000.png").write_bytes(img)
    with pytest.raises(DatasetError, match="line 3: box .* lies outside the 64x64 image 00000002_000.png"):
        rec.load_image()


def test_image_paths_leaving_the_root_are_refused_unless_allowed():
    with pytest.raises(DatasetError, match=r"MS_CXR_train.json, row 0 .*leaves the dataset root"):
        load_mscxr(FAULTS / "ms_cxr_medrpg", "train")
    assert len(load_mscxr(FAULTS / "ms_cxr_medrpg", "train", allow_outside_root=True)) == 1
    with pytest.raises(DatasetError, match=r"line 4: image path .* leaves the dataset root"):
        load_chestxray8(FAULTS / "chestxray8", "train")
    with pytest.raises(DatasetError, match=r"train.jsonl, row 0: image path .* leaves the dataset root"):
        load_umrg(FAULTS / "umrg", "train", cache_dir=None)
    assert len(load_umrg(FAULTS / "umrg", "train", allow_outside_root=True)) == 1


def test_umrg_mask_of_another_size_and_point_outside_its_box_are_errors():
    with pytest.raises(DatasetError, match=r"test.jsonl, row 0: mask a_small.png is 32x32 but its image a.png is 64x64"):
        load_umrg(FAULTS / "umrg", "test")
    with pytest.raises(DatasetError, match=r"val.jsonl, row 0: key point \(50.0, 50.0\) lies outside its box"):
        load_umrg(FAULTS / "umrg", "val")


def test_nan_voxels_are_an_error_naming_the_file(tmp_path):
    (rec,) = load_m3d_refseg(FAULTS / "m3d_refseg", "test")
    with pytest.raises(DatasetError, match=r"ct.npy: 1 of 256 voxels are not finite"):
        rec.load_volume()
    from medlib.data.io import write_volume_nifti

    vol = np.zeros((3, 4, 4), np.float32)
    vol[0, 0, 0] = np.inf
    p = write_volume_nifti(tmp_path / "v.nii.gz", vol)
    with pytest.raises(DatasetError, match=r"v.nii.gz: 1 of 48 voxels are not finite"):
        read_volume(p)


def _data_root(tmp_path):
    root = tmp_path / "DATA_ROOT"
    for src, name in (("ms_cxr_medrpg", "ms_cxr"), ("chestxray8", "chestxray8"), ("umrg", "umrg"),
                      ("m3d_refseg", "m3d_refseg")):
        shutil.copytree(FAULTS / src, root / name)
    return root


def test_data_check_opens_every_file_and_reports_bad_ones_and_clipped_boxes(tmp_path, capsys):
    from medlib.__main__ import main
    from medlib.data.prepare import check

    root = _data_root(tmp_path)
    (root / "chestxray8" / "images" / "00000001_000.png").write_bytes(b"\x89PNG truncated")
    rows = {(r["dataset"], r["split"]): r for r in check(root)}
    assert rows[("ms_cxr", "test")]["records"] == 2 and rows[("ms_cxr", "test")]["clipped"] == 1
    assert rows[("ms_cxr", "test")]["bad"] == 0
    assert "lies outside" in rows[("ms_cxr", "val")]["error"]
    assert rows[("chestxray8", "test")]["bad"] == 1 and "not a readable image" in rows[("chestxray8", "test")]["problems"][0]
    m3d = rows[("m3d_refseg", "test")]
    assert m3d["records"] == 1 and m3d["bad"] == 1 and "not finite" in m3d["problems"][0]
    assert main(["data", "check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "1 box(es) clipped to their image" in out and "bad: " in out and "Traceback" not in out


# ------------------------------------------------------------------ generated benchmark folders
def _toy_cfg(tmp_path, **data):
    from medlib.train.config import config_from_dict

    return config_from_dict({"paper": "medground", "name": "t", "output_dir": str(tmp_path / "runs"),
                             "data": {"source": "chest", "root": str(tmp_path / "chest"), "image_size": 64,
                                      "sizes": {"train": 4, "val": 2, "test": 2}, **data}})


def test_an_interrupted_generation_is_detected_and_generated_again(tmp_path, monkeypatch, capsys):
    import medlib.synthetic.chest as chest
    from medlib.synthetic.generated import MARKER
    from medlib.train.datasets import load_records

    cfg = _toy_cfg(tmp_path)
    real = chest._write_chestxray8

    def killed(*a, **k):
        raise KeyboardInterrupt("killed mid-generation")

    monkeypatch.setattr(chest, "_write_chestxray8", killed)  # MS-CXR written, ChestX-ray8 not
    with pytest.raises(KeyboardInterrupt):
        load_records(cfg, "train")
    assert (tmp_path / "chest" / "ms_cxr" / "MS_CXR_train.json").is_file()
    assert not (tmp_path / "chest" / MARKER).exists()
    monkeypatch.setattr(chest, "_write_chestxray8", real)
    assert len(load_records(cfg, "train")) > 0
    assert "no completion marker" in capsys.readouterr().err
    assert (tmp_path / "chest" / "chestxray8" / "BBox_List_2017.csv").is_file()
    assert json.loads((tmp_path / "chest" / MARKER).read_text())["sizes"]["train"] == 4


def test_changed_sizes_over_an_existing_benchmark_generate_it_again(tmp_path, capsys):
    from medlib.train.datasets import load_records

    n4 = len(load_records(_toy_cfg(tmp_path), "test"))
    capsys.readouterr()
    n8 = len(load_records(_toy_cfg(tmp_path, sizes={"train": 4, "val": 2, "test": 8}), "test"))
    assert "generated with other settings (sizes" in capsys.readouterr().err
    assert n8 > n4
    assert len(load_records(_toy_cfg(tmp_path, sizes={"train": 4, "val": 2, "test": 8}), "test")) == n8
    assert capsys.readouterr().err == ""  # same settings: reused, nothing said
