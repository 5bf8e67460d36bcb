"""Synthetic chest benchmark: written in the MS-CXR / ChestX-ray8 formats, read back by the
real adapters, deterministic, and every box covers exactly what its finding changed."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from medlib.data.chestxray8 import load_chestxray8
from medlib.data.mscxr import load_mscxr
from medlib.synthetic.chest import (
    CXR8_LABEL,
    MSCXR_CATEGORY,
    draw_sample,
    generate_chest,
    kinds_for_split,
    render_sample,
)
from medlib.synthetic.chest_anatomy import Grid, heart_mask, lung_masks
from medlib.synthetic.chest_findings import KINDS
from medlib.synthetic.chest_phrases import laterality

SIZES = {"train": 16, "val": 4, "test": 8}
S = 128
SEED = 3


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("chest")
    summary = generate_chest(root, SIZES, image_size=S, seed=SEED, progress=False)
    return root, summary


def test_same_seed_same_bytes_other_seed_differs(bench, tmp_path):
    root, _ = bench
    again = generate_chest(tmp_path / "a", SIZES, image_size=S, seed=SEED, progress=False)
    assert _tree_hash(tmp_path / "a") == _tree_hash(root)
    assert again == bench[1]
    generate_chest(tmp_path / "b", SIZES, image_size=S, seed=SEED + 1, progress=False)
    assert _tree_hash(tmp_path / "b") != _tree_hash(root)
    # rewriting over an earlier build of the same root is allowed and gives the same bytes
    generate_chest(tmp_path / "b", SIZES, image_size=S, seed=SEED, progress=False)
    assert _tree_hash(tmp_path / "b") == _tree_hash(root)


def test_written_layout(bench):
    root, summary = bench
    ms, c8 = root / "ms_cxr", root / "chestxray8"
    for split in SIZES:
        assert (ms / f"MS_CXR_{split}.json").is_file() and (c8 / f"{split}_list.txt").is_file()
    assert (ms / "MS_CXR_Local_Alignment_v1.1.0.csv").read_text().splitlines()[0] == (
        "dicom_id,category_name,label_text,path,x,y,w,h,image_width,image_height,split"
    )
    assert (c8 / "BBox_List_2017.csv").read_text().splitlines()[
        0
    ] == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    assert len(list((c8 / "images").glob("*.png"))) == sum(SIZES.values())
    assert len(list((ms / "files").rglob("*.png"))) == sum(SIZES.values())
    assert summary["ms_cxr"]["splits"] == SIZES and summary["chestxray8"]["splits"] == SIZES


def test_round_trip_counts_labels_and_boxes(bench):
    root, summary = bench
    for split, n in SIZES.items():
        ms = load_mscxr(root / "ms_cxr", split, check_images=True)
        c8 = load_chestxray8(root / "chestxray8", split, check_images=True)
        assert len(ms) == n and len(c8) == n
        # balanced kinds: 16 samples over 8 kinds -> 2 each; 4 -> 4 distinct kinds
        kinds = kinds_for_split(SEED, "ms_cxr", split, n)
        assert Counter(kinds) == Counter(summary["ms_cxr"]["kinds"][split])
        assert max(Counter(kinds).values()) - min(Counter(kinds).values()) <= 1
        assert Counter(r.label for r in c8) == Counter(summary["chestxray8"]["labels"][split])
        for r in ms:
            assert r.label in set(MSCXR_CATEGORY.values()) | {"Pneumonia"}
        for r in ms + c8:
            x1, y1, x2, y2 = r.box
            assert 0 <= x1 < x2 <= S and 0 <= y1 < y2 <= S
            assert r.load_image().shape == (S, S)
        # ChestX-ray8 query = finding label, lower case
        assert all(r.query == r.label.lower() for r in c8)


def test_csv_with_medrpg_filter_equals_json_split(bench):
    root, summary = bench
    for split in SIZES:
        js = load_mscxr(root / "ms_cxr", split)
        cs = load_mscxr(root / "ms_cxr", split, format="csv")
        assert [(r.query, r.boxes, str(r.image_path)) for r in js] == [
            (r.query, r.boxes, str(r.image_path)) for r in cs
        ]
        everything = load_mscxr(root / "ms_cxr", split, format="csv", one_box_per_phrase=False)
        multi = [r for r in everything if len(r.boxes) > 1]
        assert len(multi) == summary["ms_cxr"]["bilateral_phrases"][split]
        for r in multi:  # a bilateral phrase has one box in each half of the image
            cx = sorted((b[0] + b[2]) / 2 for b in r.boxes)
            assert len(r.boxes) == 2 and cx[0] < S / 2 < cx[1]
    assert sum(summary["ms_cxr"]["bilateral_phrases"].values()) >= 1


def test_laterality_words_match_box_side(bench):
    root, _ = bench
    checked = 0
    for split in SIZES:
        for r in load_mscxr(root / "ms_cxr", split):
            side = laterality(r.query)
            cx = (r.box[0] + r.box[2]) / 2
            if r.label == "Cardiomegaly":
                assert side is None
                continue
            assert side is not None, r.query
            # radiological convention: the patient's right is on the image's left
            assert (cx < S / 2) if side == "right" else (cx > S / 2), (r.query, r.box)
            checked += 1
    assert checked >= 20


def _changed_inside_box(with_img, without_img, box, tol=10, pad=2):
    diff = np.abs(with_img.astype(int) - without_img.astype(int))
    changed = diff > tol
    x1, y1, x2, y2 = (int(v) for v in box)
    inside = np.zeros_like(changed)
    inside[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad] = True
    signed = with_img.astype(float)[y1:y2, x1:x2].mean() - without_img.astype(float)[y1:y2, x1:x2].mean()
    return changed.sum(), (changed & inside).sum(), signed


def test_box_covers_what_the_finding_changed_in_the_written_files(bench):
    """Re-draw every written MS-CXR / ChestX-ray8 image without its target finding (same
    random draws): the pixels that change lie in the target box, and the box region
    changes in the direction the finding implies (opacities brighter, pneumothorax darker)."""
    root, _ = bench
    for part, loader in (("ms_cxr", load_mscxr), ("chestxray8", load_chestxray8)):
        for split, n in SIZES.items():
            recs = loader(root / part, split)
            for i, (r, kind) in enumerate(zip(recs, kinds_for_split(SEED, part, split, n))):
                without, _ = draw_sample(SEED, part, split, i, kind, S, omit_target=True)
                with_img = r.load_image()
                n_changed, n_inside, signed = _changed_inside_box(with_img, without.image, r.box)
                assert n_changed > 0, (part, split, i, kind)
                assert n_inside / n_changed >= 0.95, (part, split, i, kind, n_inside, n_changed)
                if kind == "pneumothorax":
                    assert signed < -2, (kind, signed)  # lucent rim without markings
                else:
                    assert signed > 2, (kind, signed)  # denser than the normal lung it replaced


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_only_its_box(kind):
    for seed in range(3):
        a = render_sample(np.random.default_rng([seed, 1]), S, kind, distractor_rate=0.0)
        b = render_sample(np.random.default_rng([seed, 1]), S, kind, distractor_rate=0.0, omit_target=True)
        n_changed, n_inside, _ = _changed_inside_box(a.image, b.image, a.target.box)
        assert n_changed > 0 and n_inside / n_changed >= 0.95, (kind, seed, n_inside, n_changed)
        if kind == "cardiomegaly":
            assert a.target.attrs["ctr"] > 0.5 > b.anatomy.ctr()  # cardiothoracic ratio above 0.5


def test_anatomy_is_chest_like():
    """Lungs dark, heart bright; the heart bulges to the patient's left (image right)."""
    g = Grid(S)
    for seed in range(4):
        smp = render_sample(np.random.default_rng(seed), S, "nodule", distractor_rate=0.0)
        lungs = lung_masks(smp.anatomy, g)
        heart = heart_mask(smp.anatomy, g)
        img = smp.image.astype(float)
        assert img[heart].mean() > img[lungs[0] | lungs[1]].mean() + 50
        hx = np.nonzero(heart)[1]
        assert hx.mean() > smp.anatomy.cx * S  # more heart to the image right = patient's left
        assert (
            np.nonzero(lungs[0])[1].mean() < S / 2 < np.nonzero(lungs[1])[1].mean()
        )  # right lung on the left


def test_phrases_vary_and_labels_map(bench):
    root, _ = bench
    queries = [r.query for s in SIZES for r in load_mscxr(root / "ms_cxr", s)]
    assert len(set(q.lower() for q in queries)) >= 0.7 * len(queries)
    assert set(CXR8_LABEL.values()) == {
        "Atelectasis",
        "Cardiomegaly",
        "Effusion",
        "Infiltrate",
        "Mass",
        "Nodule",
        "Pneumonia",
        "Pneumothorax",
    }


def test_generate_rejects_bad_input(tmp_path):
    (tmp_path / "ms_cxr").mkdir()
    (tmp_path / "ms_cxr" / "mine.txt").write_text("not generated")
    with pytest.raises(FileExistsError, match="not written by generate_chest"):
        generate_chest(tmp_path, {"train": 1}, image_size=S, progress=False)
    with pytest.raises(ValueError, match="non-negative integers"):
        generate_chest(tmp_path / "x", {"train": -1}, image_size=S, progress=False)
    with pytest.raises(ValueError, match="at least 64"):
        generate_chest(tmp_path / "x", {"train": 1}, image_size=32, progress=False)
    with pytest.raises(ValueError, match="unknown finding kind"):
        render_sample(np.random.default_rng(0), S, "edema")
