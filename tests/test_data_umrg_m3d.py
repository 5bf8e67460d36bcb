"""Adapters for U-MRG-14K, M3D-RefSeg and M3D-Seg on fixtures in each dataset's own format,
error cases, and the frontal (coronal) 2D conversion on volumes whose answer is known."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from PIL import Image

from medlib.data.io import DatasetError, write_volume_nifti
from medlib.data.m3d import (
    frontal_slice,
    load_m3d_refseg,
    load_m3d_seg,
    volume_to_frontal_2d,
    window_to_uint8,
    write_nifti_gz,
    write_seg_case,
)
from medlib.data.records import Grounding3D
from medlib.data.umrg import load_umrg, umrg_row, write_umrg_parquet

FIX = Path(__file__).parent / "fixtures"


# ------------------------------------------------------------------ U-MRG


def _png(path: Path, shape, rgb=False, value=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full(shape + ((3,) if rgb else ()), value, np.uint8)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture
def umrg_root(tmp_path):
    shutil.copy(FIX / "umrg/test.jsonl", tmp_path / "test.jsonl")
    _png(tmp_path / "images/fundus_0001.png", (40, 48), rgb=True, value=90)  # 48 wide, 40 high
    _png(tmp_path / "masks/fundus_0001.png", (40, 48))
    _png(tmp_path / "images/mri_0002.png", (64, 64))
    _png(tmp_path / "masks/mri_0002.png", (64, 64))
    return tmp_path


def test_umrg_jsonl_fixture(umrg_root):
    recs = load_umrg(umrg_root, "test")
    assert [r.sample_id for r in recs] == ["fundus_0001.png", "mri_0002.png"]
    a, b = recs
    assert a.query.startswith("What might be responsible for the bright, round area")
    assert a.boxes == [(20.0, 10.0, 36.0, 22.0)]
    assert a.points == ((28.0, 16.0), (22.0, 13.0))
    assert a.image_size == (48, 40)  # PIL size is (width, height)
    assert a.label == "optic disc" and a.meta["supercategory"] == "eye"
    assert a.reasoning.startswith("In fundus images") and json.loads(a.answer)["bbox"] == [20, 10, 36, 22]
    assert a.mask_path.name == "fundus_0001.png" and a.load_image().shape == (40, 48, 3)
    # second row: "<image>" stripped, ground truth as an object, plain path strings, no CoT
    assert b.query == "Which organ in the upper abdominal region filters blood and lies near the left side?"
    assert b.boxes == [(4.5, 30.0, 18.0, 47.5)] and b.reasoning is None and b.answer is None


def test_umrg_parquet_with_embedded_bytes(tmp_path):
    import io

    img = np.zeros((30, 40), np.uint8)
    img[5:15, 10:30] = 200
    buf, mbuf = io.BytesIO(), io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    Image.fromarray((img > 0).astype(np.uint8) * 255).save(mbuf, format="PNG")
    row = umrg_row("case7.png", 0, "train", "Which bright band?", buf.getvalue(), mbuf.getvalue(),
                   [10, 5, 30, 15], [[20, 10], [12, 8]], "x", "band", "CT", think="t", answer="a")
    # HF hub layout: data/<split>-00000-of-00001.parquet
    write_umrg_parquet(tmp_path / "data/train-00000-of-00001.parquet", [row])
    (r,) = load_umrg(tmp_path, "train", cache_dir=tmp_path / "cache")
    assert r.image_path == tmp_path / "cache/train/case7_image.png"
    assert np.array_equal(r.load_image(), img)
    assert r.load_mask().sum() == 10 * 20 and r.box == (10.0, 5.0, 30.0, 15.0)
    assert r.reasoning == "t" and r.answer == "a" and r.label == "band"
    (r2,) = load_umrg(tmp_path, "train", cache_dir=tmp_path / "cache")  # reuses the extracted files
    assert r2.image_path == r.image_path


def test_umrg_errors(umrg_root, tmp_path):
    with pytest.raises(DatasetError, match="root directory not found"):
        load_umrg(tmp_path / "nope", "test")
    with pytest.raises(DatasetError, match=r"no U-MRG file for split 'val'.*val.parquet"):
        load_umrg(umrg_root, "val")
    shutil.copy(FIX / "umrg/malformed.jsonl", umrg_root / "train.jsonl")
    with pytest.raises(DatasetError, match=r"train.jsonl, row 1: bbox_2d \[36, 10, 20, 22\] has x2 <= x1"):
        load_umrg(umrg_root, "train")
    rows = [json.loads(ln) for ln in (FIX / "umrg/test.jsonl").read_text().splitlines()]

    def check(mutate, pattern):
        bad = json.loads(json.dumps(rows))
        mutate(bad[1])
        (umrg_root / "test.jsonl").write_text("\n".join(json.dumps(r) for r in bad))
        with pytest.raises(DatasetError, match=pattern):
            load_umrg(umrg_root, "test")

    check(lambda r: r["reward_model"].update(ground_truth="{bbox"), r"test.jsonl, row 1: .*not JSON")
    check(lambda r: r["reward_model"].update(ground_truth={"bbox_2d": [1, 2, 3]}), r"row 1: .*'bbox_2d' and 'point_2d'")
    check(lambda r: r["reward_model"].update(ground_truth={"bbox_2d": [1, 2, 90, 9], "point_2d": [[2, 3], [4, 5]]}),
          r"row 1: bbox_2d .* outside the 64x64 image")
    check(lambda r: r["reward_model"].update(ground_truth={"bbox_2d": [1, 2, 9, 9], "point_2d": [[2, 3]]}),
          r"row 1: point_2d must be")
    check(lambda r: r.update(images=["images/missing.png"]), r"row 1: image file 'images/missing.png' not found")
    check(lambda r: r.update(prompt=[]), r"row 1: prompt must be")
    check(lambda r: r["extra_info"].update(id="fundus_0001.png"), "duplicate sample id 'fundus_0001.png'")
    (umrg_root / "test.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match=r"row 0 \(line 1\): not valid JSON"):
        load_umrg(umrg_root, "test")


# ------------------------------------------------------------------ M3D-RefSeg


@pytest.fixture
def refseg_root(tmp_path):
    root = tmp_path / "M3D_RefSeg"
    shutil.copytree(FIX / "m3d/refseg", root)
    ct = np.full((6, 8, 10), -100, np.int16)  # [z, y, x]
    m0 = np.zeros((6, 8, 10), np.uint8)
    m0[1:3, 2:4, 2:5] = 1  # 2*2*3 = 12 voxels
    m0[4, 5:8, 6:8] = 2  # 1*3*2 = 6 voxels
    write_nifti_gz(root / "s0000/ct.nii.gz", ct, (2.5, 0.7, 0.7))
    write_nifti_gz(root / "s0000/mask.nii.gz", m0, (2.5, 0.7, 0.7))
    m1 = np.zeros((6, 8, 10), np.uint8)
    m1[2, 2, 2] = 3
    write_volume_nifti(root / "s0001/ct.nii.gz", ct, (3.0, 0.8, 0.8))  # the shared writer works too
    write_volume_nifti(root / "s0001/mask.nii.gz", m1, (3.0, 0.8, 0.8))
    return root


def test_refseg_qa_rows(refseg_root):
    recs = load_m3d_refseg(refseg_root, "test")
    assert [(r.meta["case"], r.mask_value, r.meta["question_type"]) for r in recs] == [
        ("s0000", 1, "0"), ("s0000", 2, "1"), ("s0001", 3, "0")]
    a, b, c = recs
    assert a.query == "Please segment where the liver cyst appears in the image."
    assert b.answer == 'The largest organ is the liver, where a "hypodense" lesion is present, and the region is [SEG].'
    assert a.spacing == pytest.approx((2.5, 0.7, 0.7)) and c.spacing == pytest.approx((3.0, 0.8, 0.8))
    assert a.load_mask().sum() == 12 and b.load_mask().sum() == 6 and c.load_mask().sum() == 1
    assert a.label is None  # the real release names no mask ids
    # the train split is also found under the repository's name M3D_RefSeg.csv
    (t,) = load_m3d_refseg(refseg_root, "train")
    assert t.mask_value == 3 and t.meta["question_type"] == "1"


def test_refseg_text_queries_and_labels(refseg_root):
    (refseg_root / "labels.json").write_text('{"1": "liver cyst", "2": "liver lesion", "3": "kidney stone"}')
    recs = load_m3d_refseg(refseg_root, "test", queries="text")
    assert [(r.sample_id, r.query) for r in recs] == [
        ("s0000-m1", "A round low-density cyst in the right lobe of the liver."),
        ("s0000-m2", "An irregular hypodense lesion in the left lobe of the liver."),
        ("s0001-m3", "A dense calculus in the left renal pelvis."),
    ]
    assert [r.label for r in recs] == ["liver cyst", "liver lesion", "kidney stone"]


def test_refseg_errors(refseg_root, tmp_path):
    with pytest.raises(DatasetError, match="M3D-RefSeg root directory not found"):
        load_m3d_refseg(tmp_path / "none", "test")
    with pytest.raises(DatasetError, match=r"no M3D-RefSeg index for split 'val' \(expected M3D_RefSeg_val.csv\)"):
        load_m3d_refseg(refseg_root, "val")
    csv_path = refseg_root / "M3D_RefSeg_test.csv"
    good = csv_path.read_text()
    csv_path.write_text(good.replace("s0001/ct.nii.gz,s0001/mask.nii.gz,3,", "s0001/ct.nii.gz,s0001/mask.nii.gz,x3,"))
    with pytest.raises(DatasetError, match=r"M3D_RefSeg_test.csv, line 4 \(data row 3\): Mask_ID 'x3' is not a number"):
        load_m3d_refseg(refseg_root, "test")
    csv_path.write_text(good.replace("s0001/ct.nii.gz,s0001/mask", "s0009/ct.nii.gz,s0001/mask"))
    with pytest.raises(DatasetError, match=r"line 4: file 's0009/ct.nii.gz' not found"):
        load_m3d_refseg(refseg_root, "test")
    csv_path.write_text(good.replace("Mask_ID,", "MaskID,"))
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['Mask_ID'\]"):
        load_m3d_refseg(refseg_root, "test")
    csv_path.write_text(good)
    (refseg_root / "s0000/text.json").write_text('["not", "an", "object"]')
    with pytest.raises(DatasetError, match=r"s0000/text.json: expected an object"):
        load_m3d_refseg(refseg_root, "test", queries="text")


# ------------------------------------------------------------------ M3D-Seg


def _seg_case(root: Path, case: str, overlap=False):
    """A SegVol case: image (1, X, Y, Z), CSR mask (C, X*Y*Z) saved by scipy itself."""
    X, Y, Z = 12, 10, 8
    img = np.arange(X * Y * Z, dtype=np.float32).reshape(1, X, Y, Z)
    m = np.zeros((3, X, Y, Z), np.int32)
    m[0, 1, 2, 3] = 1  # liver at x=1, y=2, z=3
    m[0, 5:7, 5, 5] = 1
    if overlap:
        m[2, 1, 2, 3] = 1  # tumour overlapping the liver voxel
    d = root / "0007" / case
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "image.npy", img)
    scipy.sparse.save_npz(d / "mask_(3, 12, 10, 8).npz", scipy.sparse.csr_matrix(m.reshape(3, -1)))
    return img, m


def test_m3d_seg_layout_and_orientation(tmp_path):
    root = tmp_path / "M3D_Seg"
    shutil.copytree(FIX / "m3d/seg", root)
    img, _ = _seg_case(root, "case_00000")
    _seg_case(root, "case_00001", overlap=True)
    (r,) = load_m3d_seg(root, "0007", "train", queries="label")  # only label 1 present
    assert (r.query, r.label, r.mask_value, r.sample_id) == ("liver", "liver", 1, "0007-case_00000-l1")
    vol, mask = r.load_volume(), r.load_mask()
    assert vol.shape == (8, 10, 12)  # [z, y, x] from (1, X, Y, Z)
    assert vol[3, 2, 1] == img[0, 1, 2, 3]
    assert mask.sum() == 3 and mask[3, 2, 1] and mask[5, 5, 5] and mask[5, 5, 6]
    recs = load_m3d_seg(root, "0007", "test")
    assert [(x.label, x.mask_value) for x in recs] == [("liver", 1), ("liver tumor", None)]
    assert recs[1].load_mask().sum() == 1 and recs[1].load_mask()[3, 2, 1]  # overlapping label: own file
    assert load_m3d_seg(root, "0007", "test")[0].mask_path == recs[0].mask_path  # cached


# M3D-Seg's term dictionary (fixture: its format; "liver" has 4 distinct descriptions, one repeated)
LIVER = ["Primary organ responsible for detoxifying the blood by removing harmful substances.",
         "Produces bile, a fluid that aids in the digestion and absorption of fats.",
         "Large organ in the upper right abdomen with various metabolic functions.",
         "Common site for conditions such as hepatitis and cirrhosis."]


def test_m3d_seg_queries_are_free_form_descriptions_with_paraphrased_test(tmp_path):
    from medlib.data.m3d import describe_label, m3d_seg_query_note, read_term_dictionary

    root = tmp_path / "M3D_Seg"
    shutil.copytree(FIX / "m3d/seg", root)
    _seg_case(root, "case_00000")
    _seg_case(root, "case_00001", overlap=True)
    terms = read_term_dictionary(root)
    assert terms["liver"] == LIVER and terms["kidney right"]  # duplicates dropped, file order kept
    (tr,) = load_m3d_seg(root, "0007", "train")
    assert tr.query in LIVER[0::2] and tr.label == "liver" and tr.meta["query_source"] == "term_dictionary"
    te = load_m3d_seg(root, "0007", "test")
    assert te[0].query in LIVER[1::2] and te[0].meta["query_pool"] == "test paraphrases"
    # a label the dictionary does not describe keeps its name, and the record says so
    assert (te[1].query, te[1].meta["query_source"]) == ("liver tumor", "label_name")
    # every test description differs from every training one: a paraphrase, never a seen query
    train_pool = {describe_label("liver", terms, "train", f"k{i}")[0] for i in range(50)}
    test_pool = {describe_label("liver", terms, "test", f"k{i}")[0] for i in range(50)}
    assert train_pool == set(LIVER[0::2]) and test_pool == set(LIVER[1::2])
    # stable: the same record always gets the same query
    assert [r.query for r in load_m3d_seg(root, "0007", "test")] == [r.query for r in te]
    # without paraphrasing both splits draw from all descriptions; one description serves both
    assert describe_label("kidney right", terms, "test", "x") == describe_label("kidney right", terms, "train", "x")
    assert {describe_label("liver", terms, "test", f"k{i}", paraphrase_test=False)[0] for i in range(80)} == set(LIVER)
    assert "except ['liver tumor']" in m3d_seg_query_note(root, ["liver", "liver tumor"])
    with pytest.raises(DatasetError, match="no description of label 'liver tumor'"):
        load_m3d_seg(root, "0007", "test", queries="description")
    # a root with label names only: the queries are the names, and the note says so
    (root / "term_dictionary.json").unlink()
    (tr,) = load_m3d_seg(root, "0007", "train")
    assert (tr.query, tr.meta["query_source"]) == ("liver", "label_name")
    assert "absent: queries are label names" in m3d_seg_query_note(root)
    with pytest.raises(DatasetError, match="term_dictionary.json: not found"):
        load_m3d_seg(root, "0007", "train", queries="description")
    (root / "term_dictionary.json").write_text('{"liver": "one string"}')
    with pytest.raises(DatasetError, match="term 'liver': expected a list of description strings"):
        load_m3d_seg(root, "0007", "train")


def test_m3d_seg_errors(tmp_path):
    root = tmp_path / "M3D_Seg"
    shutil.copytree(FIX / "m3d/seg", root)
    _seg_case(root, "case_00000")
    with pytest.raises(DatasetError, match=r"no split 'val'; splits present: \['train', 'test'\]"):
        load_m3d_seg(root, "0007", "val")
    with pytest.raises(DatasetError, match=r"0042/0042.json: M3D-Seg split file for dataset '0042' not found"):
        load_m3d_seg(root, "0042", "train")
    with pytest.raises(DatasetError, match=r"test\[0\]: file '0007/case_00001/image.npy' not found"):
        load_m3d_seg(root, "0007", "test")
    meta = json.loads((root / "0007/0007.json").read_text())
    meta["train"][0]["label"] = "0007/case_00000/mask.npz"
    (root / "0007/case_00000/mask.npz").write_bytes(b"")
    (root / "0007/0007.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"mask file name must be 'mask_\(C, X, Y, Z\).npz'"):
        load_m3d_seg(root, "0007", "train", cache_dir=tmp_path / "c2")


def test_write_seg_case_round_trip(tmp_path):
    vol = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)  # [z, y, x]
    masks = np.zeros((2, 4, 5, 6), bool)
    masks[0, 1, 2, 3] = True
    masks[1, 3, 4, 5] = True
    ipath, mpath = write_seg_case(tmp_path / "c", vol, masks)
    assert mpath.name == "mask_(2, 6, 5, 4).npz"
    assert np.array_equal(np.load(ipath)[0], vol.transpose(2, 1, 0))
    sp = scipy.sparse.load_npz(mpath)
    assert np.array_equal(sp.toarray().reshape(2, 6, 5, 4).astype(bool), masks.transpose(0, 3, 2, 1))


# ------------------------------------------------------------------ frontal 2D


def _box_volume(tmp_path, writer, spacing=(1.0, 1.0, 1.0)):
    """A 20x12x40 [z, y, x] CT: air, a body of 40 HU, a 200 HU target at z 10-17, y 4-7,
    x 30-37."""
    v = np.full((20, 12, 40), -1000, np.int16)
    v[:, 2:10, 5:35] = 40
    m = np.zeros(v.shape, np.uint8)
    m[10:18, 4:8, 30:38] = 1
    v[m == 1] = 200
    writer(tmp_path / "ct.nii.gz", v, spacing)
    writer(tmp_path / "mask.nii.gz", m, spacing)
    return Grounding3D("box", "m3d_refseg", "test", tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz", "the bright box",
                       spacing=spacing, mask_value=1, label="box")


def test_frontal_slice_known_answer_lps(tmp_path):
    s = _box_volume(tmp_path, write_nifti_gz)
    f = volume_to_frontal_2d(s, tmp_path / "out", isotropic=False)
    # LPS index order: the image column is the x index (patient's right on the image left);
    # rows run superior -> inferior: row = Z - 1 - z, so z 10..17 -> rows 2..9
    assert f.box == (30.0, 2.0, 38.0, 10.0)
    assert f.image_size == (40, 20)
    img, mask = f.load_image(), f.load_mask()
    assert mask.sum() == 8 * 8
    # soft-tissue window (40, 400): 200 HU -> (200 + 160) / 400 * 255 = 229.5 -> 230; air -> 0
    assert img[5, 33] == 230 and img[0, 0] == 0
    # the coronal plane through the centroid y = 5.5 (rounded in RAS order j = 11 - y)
    assert f.meta["coronal_index_ras"] in (5, 6)
    assert f.dataset == "m3d_refseg_frontal" and f.query == "the bright box"


def test_frontal_slice_honours_the_affine(tmp_path):
    # the same array written with a RAS affine (x toward the patient's right) is mirrored
    s = _box_volume(tmp_path, write_volume_nifti)
    f = volume_to_frontal_2d(s, tmp_path / "out", isotropic=False)
    assert f.box == (40 - 38.0, 2.0, 40 - 30.0, 10.0)


def test_frontal_isotropic_and_arrays(tmp_path):
    s = _box_volume(tmp_path, write_nifti_gz, spacing=(2.0, 1.0, 1.0))
    f = volume_to_frontal_2d(s, tmp_path / "out")
    assert f.image_size == (40, 40)  # 20 slices of 2 mm -> 40 rows of 1 mm
    assert f.box == (30.0, 4.0, 38.0, 20.0)  # rows 2..9 doubled
    # .npy arrays carry no affine: taken as [z, y, x] in LPS order, like medlib writes them
    np.save(tmp_path / "v.npy", np.asarray(s.load_volume()))
    np.save(tmp_path / "m.npy", s.load_mask().astype(np.uint8))
    s2 = Grounding3D("a", "m3d_seg", "test", tmp_path / "v.npy", tmp_path / "m.npy", "q", mask_value=1)
    img, mask, _ = frontal_slice(s2, isotropic=False)
    assert mask.shape == (20, 40) and mask[2:10, 30:38].all() and mask.sum() == 64


def test_window_to_uint8():
    # HU (min < -200) -> soft-tissue window 40 +- 200: 40 HU -> 0.5 * 255 + 0.5 = 128
    assert window_to_uint8(np.array([-1000.0, 40.0, 1000.0])).tolist() == [0, 128, 255]
    # otherwise percentiles 0.5 / 99.5 of 0..1 = 0.005 / 0.995: 0.25 -> 0.245 / 0.99 * 255 + 0.5 = 63.6 -> 63
    assert window_to_uint8(np.linspace(0, 1, 201), None)[[0, 50, 200]].tolist() == [0, 63, 255]
    with pytest.raises(ValueError):
        window_to_uint8(np.zeros(3), "bone")


def test_frontal_empty_mask_is_an_error(tmp_path):
    s = _box_volume(tmp_path, write_nifti_gz)
    s.mask_value = 7
    with pytest.raises(DatasetError, match=r"box: target mask is empty .*value 7"):
        volume_to_frontal_2d(s, tmp_path / "out")
