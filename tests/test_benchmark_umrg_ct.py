"""Synthetic U-MRG and CT benchmarks: round trips through the real-data adapters, geometry of
the annotations, anatomical sides, query referents, and byte-level determinism."""

import hashlib
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from medlib.data.io import read_volume
from medlib.data.m3d import load_m3d_refseg, load_m3d_seg, volume_to_frontal_2d
from medlib.data.umrg import load_umrg
from medlib.geometry import mask_to_box
from medlib.synthetic import ct_anatomy as A
from medlib.synthetic.ct import generate_ct
from medlib.synthetic.ct_text import IMPLICIT, describe, questions
from medlib.synthetic.mm_common import key_points
from medlib.synthetic.mm_text import BRIGHTNESS_GAP, POSITION_GAP, SIZE_RATIO
from medlib.synthetic.multimodal import MODALITIES, generate_umrg, make_sample

UMRG_SIZES = {"train": 8, "test": 4}
CT_SIZES = {"train": 2, "test": 2}
CT_SHAPE = (32, 64, 64)


def _hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every generated file (adapter caches, ``_medlib*``, left out)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not any(q.startswith("_medlib") for q in p.parts)}


@pytest.fixture(scope="module")
def umrg(tmp_path_factory):
    root = tmp_path_factory.mktemp("umrg")
    return root, generate_umrg(root, UMRG_SIZES, image_size=128, seed=3)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("ct")
    return root, generate_ct(root, CT_SIZES, shape=CT_SHAPE, seed=5, seg_copy=True)


# ------------------------------------------------------------------ U-MRG


def test_umrg_round_trip(umrg):
    root, summary = umrg
    assert summary["splits"] == UMRG_SIZES
    assert set(summary["modality"]) == set(MODALITIES)  # 12 samples cycle the 4 modalities
    for split, n in UMRG_SIZES.items():
        recs = load_umrg(root, split)
        assert len(recs) == n
        for r in recs:
            img, mask = r.load_image(), r.load_mask()
            h, w = img.shape[:2]
            assert (w, h) == r.image_size == (128, 128)
            assert mask.shape == (h, w) and mask.any()
            x1, y1, x2, y2 = r.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert tuple(mask_to_box(mask)) == r.box  # the box is the mask's tight box
            (p1, p2) = r.points
            for px, py in r.points:
                assert mask[int(py), int(px)]  # key points inside the target
            # first point: the deepest pixel (distance transform maximum); second well apart
            d = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
            assert d[int(p1[1]), int(p1[0])] == d.max()
            sep = np.hypot(p1[0] - p2[0], p1[1] - p2[1])
            assert sep > 0 and sep >= 0.5 * d.max() - 1  # near the far end of the principal axis
            ans = json.loads(r.answer)
            assert ans == {"bbox": [int(v) for v in r.box], "points_1": [int(v) for v in p1], "points_2": [int(v) for v in p2]}
            assert "[" + ", ".join(str(int(v)) for v in r.box) + "]" in r.reasoning  # Chain-of-Box trace names it
            assert r.label and r.meta["modality"] in MODALITIES and r.query.endswith(("?", "."))


def test_umrg_sides_follow_radiological_convention(umrg):
    root, _ = umrg
    for r in load_umrg(root, "train") + load_umrg(root, "test"):
        m = re.search(r"patient's (left|right)", r.query)
        if not m:
            continue
        cx = (r.box[0] + r.box[2]) / 2
        # the patient's left is on the image right
        assert (cx > 64) == (m.group(1) == "left"), (r.sample_id, r.query, r.box)
        if r.label.endswith("kidney"):
            assert r.label == f"{m.group(1)} kidney"


@pytest.mark.parametrize("modality", list(MODALITIES))
def test_qualifier_singles_out_the_target(modality):
    """The question's qualifier picks the target among same-class distractors with margin."""
    kinds = set()
    for seed in range(6):
        s = make_sample(modality, np.random.default_rng([11, seed]), 128)
        sc, t, kind = s["scene"], s["target"], s["qualifier"]
        kinds.add(kind)
        c = sc.candidates
        assert len(c) >= 2  # at least one distractor of the same class
        for i, other in enumerate(c):
            if i != t:
                assert not (other.mask & c[t].mask).any()
        others = [o for i, o in enumerate(c) if i != t]
        if kind == "size":
            a = c[t].area
            assert all(a >= SIZE_RATIO * o.area for o in others) or all(o.area >= SIZE_RATIO * a for o in others)
        elif kind == "side":
            side = re.search(r"patient's (left|right)", s["question"]).group(1)
            assert c[t].side == side and all(o.side != side for o in others)
            assert (c[t].centroid[0] > 64) == (side == "left")
        elif kind == "depth":
            y = c[t].centroid[1]
            assert all(abs(y - o.centroid[1]) >= POSITION_GAP * 128 for o in others)
            assert (y < min(o.centroid[1] for o in others)) == ("superficial" in s["question"])
        elif kind == "brightness":
            v = c[t].intensity
            assert all(abs(v - o.intensity) >= BRIGHTNESS_GAP for o in others)
        elif kind == "vertical":
            up = "upper" in s["question"]
            fy = sc.context["fovea"][1]
            assert (c[t].centroid[1] < fy) == up and all((o.centroid[1] < fy) != up for o in others)
        elif kind == "proximity":
            fx, fy = sc.context["fovea"]
            dist = [np.hypot(o.centroid[0] - fx, o.centroid[1] - fy) for o in c]
            assert all(SIZE_RATIO * dist[t] <= dist[i] for i in range(len(c)) if i != t)
        assert s["question"].count("?") >= 1 and s["category"]
    assert kinds  # at least one qualifier kind exercised


def test_key_points_on_a_known_mask():
    m = np.zeros((20, 40), bool)
    m[5:15, 4:36] = True  # 10 x 32 bar: deepest row 9 or 10, the second point near an end
    (x1, y1), (x2, y2) = key_points(m)
    assert 9 <= y1 <= 10 and m[y1, x1] and m[y2, x2]
    assert abs(x2 - x1) >= 12  # along the long (principal) axis


def test_umrg_is_deterministic(umrg, tmp_path):
    root, _ = umrg
    again = generate_umrg(tmp_path / "a", UMRG_SIZES, image_size=128, seed=3)
    assert _hashes(tmp_path / "a") == _hashes(root) and again == umrg[1]
    generate_umrg(tmp_path / "b", {"train": 2}, image_size=128, seed=4)
    h3, hb = _hashes(root), _hashes(tmp_path / "b")
    assert hb["images/train_00000.png"] != h3["images/train_00000.png"]
    assert hb["train.parquet"] != h3["train.parquet"]


# ------------------------------------------------------------------ CT


def test_ct_round_trip_counts_and_masks(ct):
    root, summary = ct
    for split, n in CT_SIZES.items():
        recs = load_m3d_refseg(root, split)
        assert len(recs) == summary["splits"][split]["queries"]
        assert len({r.meta["case"] for r in recs}) == n
        assert {r.meta["question_type"] for r in recs} == {"0", "1"}
        for r in recs:
            m = r.load_mask()
            assert m.shape == CT_SHAPE and m.sum() >= 8
            assert r.label == {**A.ORGANS, **A.LESIONS}[r.mask_value]
            assert r.spacing == pytest.approx(A.spacing_mm(CT_SHAPE))
    texts = load_m3d_refseg(root, "test", queries="text")
    assert len(texts) == len({(r.meta["case"], r.mask_value) for r in load_m3d_refseg(root, "test")})


def _centroid_world(path: Path, mask_zyx: np.ndarray) -> np.ndarray:
    """Centroid of a [z, y, x] mask in the file's RAS world coordinates (mm)."""
    z, y, x = np.nonzero(mask_zyx)
    aff = nib.load(str(path)).affine
    return aff @ np.array([x.mean(), y.mean(), z.mean(), 1.0])


def test_ct_anatomy_sides_and_intensities(ct):
    root, _ = ct
    for case in sorted({r.meta["case"] for r in load_m3d_refseg(root, "train") + load_m3d_refseg(root, "test")}):
        organ, _ = read_volume(root / case / "mask.nii.gz")
        hu, _ = read_volume(root / case / "ct.nii.gz")
        world = {k: _centroid_world(root / case / "mask.nii.gz", organ == k) for k in A.ORGANS}
        # RAS: +x is the patient's right. The right kidney and the liver are to the right of
        # the left kidney and the spleen; the array's x index runs the other way (LPS).
        assert world[3][0] > world[4][0] and world[1][0] > world[2][0]
        assert np.nonzero(organ == 3)[2].mean() < np.nonzero(organ == 4)[2].mean()
        assert world[1][2] > world[3][2]  # the liver sits above the right kidney
        assert 70 < np.median(hu[organ == 1]) < 140  # enhanced liver
        assert np.median(hu[organ == 3]) > np.median(hu[organ == 1])  # kidney cortex enhances more
        assert hu[0, 0, 0] < -900 and hu.dtype == np.int16  # air outside the body


def test_ct_questions_name_the_lesion_kidney():
    facts = {1: {"contains": []}, 2: {"contains": []}, 3: {"contains": [5]}, 4: {"contains": []},
             5: {"owner": 3, "diameter_mm": 20, "position": "upper pole"}}
    rng = np.random.default_rng(0)
    explicit, implicit = questions(3, facts, rng)
    assert (explicit["Question_Type"], implicit["Question_Type"]) == ("0", "1")
    assert "the right kidney" in explicit["Question"]
    assert "the kidney that contains the cyst" in implicit["Question"]
    assert implicit["Answer"].endswith("is the right kidney.")
    assert "the kidney on the same side as the spleen" in questions(4, facts, rng)[1]["Question"]
    assert "the cyst in the right kidney" in questions(5, facts, rng)[0]["Question"]
    assert describe(3, facts[3]).endswith("containing a cyst.")
    assert describe(5, facts[5]) == "A well-defined round water-density cyst, about 20 mm, in the upper pole of the right kidney."


def test_ct_query_referent_is_the_mask(ct):
    root, _ = ct
    for r in load_m3d_refseg(root, "train") + load_m3d_refseg(root, "test"):
        sid, q = r.mask_value, r.query
        case = root / r.meta["case"]
        lesion_path = case / "mask_lesions.nii.gz"
        lesion = read_volume(lesion_path)[0] if lesion_path.exists() else np.zeros(CT_SHAPE, np.uint8)
        organ = read_volume(case / "mask.nii.gz")[0]
        if r.meta["question_type"] == "0":
            assert r.label in q, (q, r.label)
        elif "kidney that contains the" in q:
            kind = 5 if "cyst" in q else 6
            other = 7 - sid  # 3 <-> 4
            assert sid in (3, 4) and ((organ == sid) & (lesion == kind)).any()
            assert not ((organ == other) & (lesion == kind)).any()
        elif "organ that contains the" in q:
            kind = 5 if "cyst" in q else 6
            assert ((organ == sid) & (lesion == kind)).any()
        else:
            assert any(p in q for p in IMPLICIT[sid]), q
        if sid in A.LESIONS:
            m = lesion == sid
            owner = np.bincount(organ[m]).argmax()
            assert owner in A.ORGANS and (organ[m] == owner).all()  # lesions lie inside their organ
            hu = read_volume(case / "ct.nii.gz")[0]
            organ_hu = np.median(hu[(organ == owner) & ~m])
            if sid == 5:  # water-like cyst, far below the enhanced parenchyma
                assert np.median(hu[m]) < 60 and hu[m].mean() < organ_hu - 40
            else:  # enhancing tumour: brighter than its (enhanced) organ despite partial volume
                assert hu[m].mean() > max(organ_hu, 120)


def test_ct_frontal_2d_kidneys_in_radiological_view(ct, tmp_path):
    root, _ = ct
    recs = [r for r in load_m3d_refseg(root, "test") if r.meta["question_type"] == "0" and r.mask_value in (3, 4)]
    by_case = {}
    for r in recs:
        f = volume_to_frontal_2d(r, tmp_path)
        by_case.setdefault(r.meta["case"], {})[r.mask_value] = (f.box[0] + f.box[2]) / 2
        assert f.load_mask().sum() > 0 and f.image_size[0] == CT_SHAPE[2]
    for centres in by_case.values():
        assert centres[3] < centres[4]  # right kidney on the image left


def test_ct_seg_copy(ct):
    root, summary = ct
    recs = load_m3d_seg(root / "M3D_Seg", "ct_synth", "test")
    assert {r.label for r in recs} >= {"liver", "spleen", "right kidney", "left kidney"}
    case = recs[0].meta["case"]
    organ = read_volume(root / case / "mask.nii.gz")[0]
    lesion_path = root / case / "mask_lesions.nii.gz"
    lesion = read_volume(lesion_path)[0] if lesion_path.exists() else np.zeros_like(organ)
    liver = next(r for r in recs if r.meta["case"] == case and r.label == "liver")
    assert np.array_equal(liver.load_mask(), (organ == 1) & (lesion == 0))  # disjoint channels
    v = liver.load_volume()
    assert v.shape == CT_SHAPE and abs(float(v[v > v.mean()].mean())) < 0.6  # z-scored foreground


def test_ct_is_deterministic(ct, tmp_path):
    root, summary = ct
    again = generate_ct(tmp_path / "a", CT_SIZES, shape=CT_SHAPE, seed=5, seg_copy=True)
    assert again == summary
    assert _hashes(tmp_path / "a") == _hashes(root)
    generate_ct(tmp_path / "b", {"train": 1}, shape=CT_SHAPE, seed=6)
    assert _hashes(tmp_path / "b")["s0000/ct.nii.gz"] != _hashes(root)["s0000/ct.nii.gz"]
