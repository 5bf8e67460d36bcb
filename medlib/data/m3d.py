"""M3D-RefSeg and M3D-Seg (Bai et al. 2024, github BAAI-DCAI/M3D) as 3D grounding records,
and MedGround-R1's 2D variant of M3D-RefSeg (Sec. 4, "Datasets": "we extract the frontal
slice from each 3D volume and convert the segmentation mask into the bounding box").

**M3D-RefSeg** (HF ``GoodBaiBai88/M3D-RefSeg``): ``root/<case>/ct.nii.gz`` (CT in HU),
``root/<case>/mask.nii.gz`` (one label map; each described region has its own id),
``root/<case>/text.json`` (``{"<id>": "<region description>"}``) and one CSV per split,
``M3D_RefSeg_<split>.csv`` (the repository's code also names the train file
``M3D_RefSeg.csv``), with columns ``Image, Mask, Mask_ID, Question_Type, Question, Answer``
(``Question_Type`` 0 = description-based, 1 = reasoning-based; paths relative to ``root``).
``queries="qa"`` gives one record per CSV row (the query is ``Question``);
``queries="text"`` gives one record per ``text.json`` entry of the split's cases (the query is
the description: MedGround-R1's 2,778 mask-text-volume triplets). Each row's ``Mask`` path
is used as given, so a case may have more than one label map (the synthetic benchmark puts
lesions, which overlap organs, in ``mask_lesions.nii.gz``). medlib extension: an optional
``root/labels.json`` (``{"<id>": "<name>"}``) fills ``label``; the synthetic benchmark
writes it, the real release has none.

**M3D-Seg** (HF ``GoodBaiBai88/M3D-Seg``, SegVol's preprocessing): ``root/<id>/<id>.json``
with ``labels`` (``{"0": "background", "1": name, ...}``) and ``train`` / ``test`` lists of
``{"image", "label"}`` paths relative to ``root``; ``image.npy`` is ``(1, X, Y, Z)``
(nibabel axis order, intensity-normalised, no spacing) and the label is a
``scipy.sparse`` CSR matrix saved as ``mask_(C, X, Y, Z).npz`` (the shape is in the file
name), row ``c`` = label ``c + 1``. Records point to ``[z, y, x]`` copies written once to
``cache_dir``; one record per label present in a case, ``mask_value`` = label id.

**Queries of M3D-Seg.** MedVol-R1 segments from free-form descriptions (KiTS23's test queries are
paraphrased), not label names. M3D-Seg ships ``root/term_dictionary.json``
(``{"<term>": ["<description>", ...]}``, M3D's descriptions of each structure); when it is present
and names the label, the query is one of its descriptions, chosen per (case, label) by a stable
hash. The training split draws from the even-numbered distinct descriptions and the test split from
the odd-numbered ones (``paraphrase_test``), so a test query is a paraphrase the model never saw
in training. A label the dictionary lacks, or a root without the file, keeps the label name as the
query; each record says which in ``meta["query_source"]`` (``term_dictionary`` /
``label_name``), and :func:`m3d_seg_query_note` says it in one sentence (``data check`` output).
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from ..geometry import mask_to_box
from .io import DatasetError
from .records import Grounding2D, Grounding3D

REFSEG = "m3d_refseg"
SEG = "m3d_seg"
REFSEG_COLUMNS = ("Image", "Mask", "Mask_ID", "Question_Type", "Question", "Answer")
_REQUIRED = ("Image", "Mask", "Mask_ID", "Question", "Answer")
#: soft-tissue CT window (level, width) in HU used for the frontal PNGs
SOFT_TISSUE = (40.0, 400.0)


# ------------------------------------------------------------------ M3D-RefSeg


def refseg_csv(root: Path, split: str) -> Path:
    """The split's CSV: ``M3D_RefSeg_<split>.csv`` (train also ``M3D_RefSeg.csv``)."""
    names = [f"M3D_RefSeg_{split}.csv"] + (["M3D_RefSeg.csv"] if split == "train" else [])
    for n in names:
        if (root / n).is_file():
            return root / n
    raise DatasetError(f"{root}: no M3D-RefSeg index for split {split!r} (expected {' or '.join(names)})")


def read_refseg_csv(path: Path) -> list[dict]:
    """Rows of an M3D-RefSeg CSV with ``Mask_ID`` as int and ``line``; one ``DatasetError``
    naming the file and line for a malformed row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; header is {reader.fieldnames}")
    rows = []
    for i, row in enumerate(reader, start=1):
        where = f"{path}, line {reader.line_num} (data row {i})"
        if None in row:
            raise DatasetError(f"{where}: more fields than the header has")
        if not any((v or "").strip() for v in row.values()):
            continue
        for c in ("Image", "Mask", "Question"):
            if not (row.get(c) or "").strip():
                raise DatasetError(f"{where}: empty {c}")
        try:
            mid = float(row["Mask_ID"])
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: Mask_ID {row['Mask_ID']!r} is not a number") from None
        if not mid.is_integer() or mid <= 0:
            raise DatasetError(f"{where}: Mask_ID must be a positive integer, got {row['Mask_ID']!r}")
        qt = (row.get("Question_Type") or "").strip()
        if qt and qt not in ("0", "1"):
            raise DatasetError(f"{where}: Question_Type must be 0 or 1, got {qt!r}")
        rows.append({**{k: (v or "").strip() for k, v in row.items()}, "Mask_ID": int(mid), "line": reader.line_num})
    return rows


def _resolve(root: Path, rel: str, where: str, allow_outside_root: bool = False) -> Path:
    from .checks import inside_root

    p = Path(rel)
    for cand in ([p] if p.is_absolute() else [root / p, root.parent / p]):
        if cand.is_file():
            return inside_root(cand, root, where, allow_outside_root)
    raise DatasetError(f"{where}: file {rel!r} not found under {root}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not readable JSON ({e})") from e


def _nifti_spacing(path: Path) -> tuple[float, float, float]:
    """(z, y, x) spacing from a NIfTI header (only the header is read)."""
    import nibabel as nib

    try:
        zooms = nib.load(str(path)).header.get_zooms()[:3]
    except Exception as e:  # noqa: BLE001 - nibabel raises several types
        raise DatasetError(f"{path}: not a readable NIfTI file ({e})") from e
    return (float(zooms[2]), float(zooms[1]), float(zooms[0]))


def _labels_json(root: Path) -> dict[int, str]:
    p = root / "labels.json"
    if not p.is_file():
        return {}
    d = _read_json(p)
    if not isinstance(d, dict):
        raise DatasetError(f"{p}: expected an object {{id: name}}")
    try:
        return {int(k): str(v) for k, v in d.items()}
    except ValueError as e:
        raise DatasetError(f"{p}: keys must be integer ids ({e})") from e


def _case_texts(case_dir: Path) -> dict[int, str]:
    p = case_dir / "text.json"
    if not p.is_file():
        raise DatasetError(f"{p}: text.json not found")
    d = _read_json(p)
    if not isinstance(d, dict) or not all(isinstance(v, str) for v in d.values()):
        raise DatasetError(f"{p}: expected an object {{mask id: description}}")
    try:
        return {int(k): v for k, v in d.items()}
    except ValueError as e:
        raise DatasetError(f"{p}: keys must be integer mask ids ({e})") from e


def load_m3d_refseg(root: str | Path, split: str, queries: str = "qa", *,
                    allow_outside_root: bool = False) -> list[Grounding3D]:
    """M3D-RefSeg records of ``split`` (see the module docstring for the layout); a volume or
    mask path that leaves ``root`` is an error unless ``allow_outside_root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: M3D-RefSeg root directory not found")
    if queries not in ("qa", "text"):
        raise ValueError(f"queries must be 'qa' or 'text', got {queries!r}")
    path = refseg_csv(root, split)
    rows = read_refseg_csv(path)
    names = _labels_json(root)
    spacing: dict[Path, tuple] = {}
    out: list[Grounding3D] = []
    if queries == "qa":
        for r in rows:
            where = f"{path}, line {r['line']}"
            img = _resolve(root, r["Image"], where, allow_outside_root)
            msk = _resolve(root, r["Mask"], where, allow_outside_root)
            if img not in spacing:
                spacing[img] = _nifti_spacing(img) if img.name.endswith((".nii", ".nii.gz")) else (1.0, 1.0, 1.0)
            case = img.parent.name
            out.append(
                Grounding3D(
                    sample_id=f"{case}-m{r['Mask_ID']}-l{r['line']}",
                    dataset=REFSEG,
                    split=split,
                    volume_path=img,
                    mask_path=msk,
                    query=r["Question"],
                    spacing=spacing[img],
                    label=names.get(r["Mask_ID"]),
                    mask_value=r["Mask_ID"],
                    answer=r["Answer"] or None,
                    meta={"case": case, "question_type": r.get("Question_Type", ""), "csv_line": r["line"]},
                )
            )
        return out
    # one record per text.json description of the split's cases
    cases: dict[Path, dict[int, Path]] = {}
    for r in rows:
        where = f"{path}, line {r['line']}"
        img = _resolve(root, r["Image"], where, allow_outside_root)
        cases.setdefault(img, {})[r["Mask_ID"]] = _resolve(root, r["Mask"], where, allow_outside_root)
    for img, masks in cases.items():
        texts = _case_texts(img.parent)
        sp = _nifti_spacing(img) if img.name.endswith((".nii", ".nii.gz")) else (1.0, 1.0, 1.0)
        for mid, text in sorted(texts.items()):
            msk = masks.get(mid, img.parent / "mask.nii.gz")
            if not msk.is_file():
                raise DatasetError(f"{msk}: mask file for {img.parent / 'text.json'} id {mid} not found")
            out.append(
                Grounding3D(
                    sample_id=f"{img.parent.name}-m{mid}",
                    dataset=REFSEG,
                    split=split,
                    volume_path=img,
                    mask_path=msk,
                    query=text,
                    spacing=sp,
                    label=names.get(mid),
                    mask_value=mid,
                    meta={"case": img.parent.name, "query_source": "text.json"},
                )
            )
    return out


# ------------------------------------------------------------------ M3D-Seg

_SHAPE_RE = re.compile(r"mask_(\(.*\))\.npz$")


def seg_mask_shape(path: Path) -> tuple[int, ...]:
    """``(C, X, Y, Z)`` from a SegVol mask name ``mask_(C, X, Y, Z).npz``."""
    m = _SHAPE_RE.search(path.name)
    try:
        shape = tuple(int(s) for s in ast.literal_eval(m.group(1))) if m else ()
    except (ValueError, SyntaxError, TypeError):
        shape = ()
    if len(shape) != 4 or min(shape) <= 0:
        raise DatasetError(f"{path}: mask file name must be 'mask_(C, X, Y, Z).npz'")
    return shape


def _convert_seg_case(image_path: Path, mask_path: Path, out_dir: Path, stem: str) -> dict:
    """Write ``<stem>_image.npy`` ([z, y, x] float32) and a ``[z, y, x]`` label map
    ``<stem>_labels.npy`` (a channel that overlaps earlier ones goes to its own
    ``<stem>_label<k>.npy``); returns ``{label id: (file, mask_value)}``."""
    import scipy.sparse

    shape = seg_mask_shape(mask_path)
    try:
        img = np.load(image_path, allow_pickle=False)
        sp = scipy.sparse.load_npz(mask_path).tocsr()
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{image_path} / {mask_path}: cannot read M3D-Seg case ({e})") from e
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 3 or tuple(img.shape) != shape[1:]:
        raise DatasetError(f"{image_path}: image shape {img.shape} does not match mask shape {shape} of {mask_path}")
    if sp.shape != (shape[0], int(np.prod(shape[1:]))):
        raise DatasetError(f"{mask_path}: sparse matrix shape {sp.shape} does not match the name's {shape}")
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / f"{stem}_image.npy", np.ascontiguousarray(img.transpose(2, 1, 0), dtype=np.float32))
    n = int(np.prod(shape[1:]))
    labels = np.zeros(n, np.uint8 if shape[0] < 255 else np.uint16)
    found: dict[int, tuple[str, int | None]] = {}
    for c in range(shape[0]):
        row = sp.getrow(c)
        idx = row.indices[row.data != 0]
        if idx.size == 0:
            continue
        if np.any(labels[idx]):  # overlaps an earlier channel: own file
            m = np.zeros(n, bool)
            m[idx] = True
            name = f"{stem}_label{c + 1}.npy"
            np.save(out_dir / name, np.ascontiguousarray(m.reshape(shape[1:]).transpose(2, 1, 0)))
            found[c + 1] = (name, None)
        else:
            labels[idx] = c + 1
            found[c + 1] = (f"{stem}_labels.npy", c + 1)
    np.save(out_dir / f"{stem}_labels.npy", np.ascontiguousarray(labels.reshape(shape[1:]).transpose(2, 1, 0)))
    return {str(k): list(v) for k, v in found.items()}


TERM_DICTIONARY = "term_dictionary.json"
QUERY_MODES = ("auto", "description", "label")


def _norm_term(t: str) -> str:
    return re.sub(r"\s+", " ", str(t).replace("_", " ")).strip().lower()


def read_term_dictionary(root: str | Path) -> dict[str, list[str]] | None:
    """M3D-Seg's ``term_dictionary.json`` under ``root`` as ``{normalised term: distinct
    descriptions in file order}``; None when the file is absent. A malformed file is one
    :class:`DatasetError` naming the file and entry."""
    path = Path(root) / TERM_DICTIONARY
    if not path.is_file():
        return None
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object {{term: [descriptions]}}, got {type(data).__name__}")
    out: dict[str, list[str]] = {}
    for term, descs in data.items():
        if not isinstance(descs, list) or not all(isinstance(d, str) for d in descs):
            raise DatasetError(f"{path}, term {term!r}: expected a list of description strings")
        seen = out.setdefault(_norm_term(term), [])
        for d in descs:
            d = d.strip()
            if d and d not in seen:
                seen.append(d)
    return out


def describe_label(label: str, terms: dict[str, list[str]] | None, split: str, key: str,
                   paraphrase_test: bool = True) -> tuple[str, str]:
    """``(query, source)`` for one label: a description from the term dictionary (``source`` =
    ``"term_dictionary"``), else the label name (``"label_name"``). Training draws from the
    even-numbered descriptions, test (with ``paraphrase_test``) from the odd-numbered ones; the
    pick within the pool is a stable hash of ``key`` (the same record always gets the same query)."""
    import hashlib

    descs = (terms or {}).get(_norm_term(label)) or []
    if not descs:
        return label, "label_name"
    pool = descs
    if paraphrase_test and len(descs) > 1:
        pool = descs[1::2] if split == "test" else descs[0::2]
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")
    return pool[h % len(pool)], "term_dictionary"


def m3d_seg_query_note(root: str | Path, labels: list[str] | None = None) -> str:
    """One sentence on what M3D-Seg's queries are under ``root`` (for ``data check``)."""
    terms = read_term_dictionary(root)
    if terms is None:
        return (f"{Path(root) / TERM_DICTIONARY} absent: queries are label names, not the free-form "
                f"descriptions MedVol-R1 uses; put M3D-Seg's term_dictionary.json there")
    missing = sorted({x for x in labels or [] if _norm_term(x) not in terms})
    if missing:
        return (f"queries are term-dictionary descriptions (test: paraphrases unseen in training) except "
                f"{missing}, which the dictionary lacks and keep their label names")
    return "queries are term-dictionary descriptions (test: paraphrases unseen in training)"


def load_m3d_seg(
    root: str | Path, dataset_id: str, split: str, cache_dir: str | Path | None = None, *,
    allow_outside_root: bool = False, queries: str = "auto", paraphrase_test: bool = True,
) -> list[Grounding3D]:
    """M3D-Seg subset ``dataset_id`` (e.g. ``"0011"``): one record per (case, label present).
    ``queries``: ``auto`` (a free-form description from ``root/term_dictionary.json`` when it
    names the label, else the label name), ``description`` (the dictionary must name every
    label present) or ``label`` (label names). Cases are converted once to ``[z, y, x]`` ``.npy``
    files in ``cache_dir`` (default ``root/<id>/_medlib_zyx``)."""
    if queries not in QUERY_MODES:
        raise ValueError(f"queries must be one of {QUERY_MODES}, got {queries!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: M3D-Seg root directory not found")
    jpath = root / dataset_id / f"{dataset_id}.json"
    if not jpath.is_file():
        raise DatasetError(f"{jpath}: M3D-Seg split file for dataset {dataset_id!r} not found")
    meta = _read_json(jpath)
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), dict):
        raise DatasetError(f"{jpath}: expected an object with 'labels' and split lists")
    if not isinstance(meta.get(split), list):
        keys = [k for k, v in meta.items() if isinstance(v, list)]
        raise DatasetError(f"{jpath}: no split {split!r}; splits present: {keys}")
    names = {str(k): str(v) for k, v in meta["labels"].items()}
    terms = None if queries == "label" else read_term_dictionary(root)
    if queries == "description" and terms is None:
        raise DatasetError(f"{root / TERM_DICTIONARY}: not found; queries='description' needs M3D-Seg's term "
                           f"dictionary (or use queries='auto' to fall back to label names)")
    cache = Path(cache_dir) if cache_dir is not None else root / dataset_id / "_medlib_zyx"
    out = []
    for i, entry in enumerate(meta[split]):
        where = f"{jpath}, {split}[{i}]"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("image", "label")):
            raise DatasetError(f"{where}: expected {{'image': path, 'label': path}}, got {entry!r}")
        img = _resolve(root, entry["image"], where, allow_outside_root)
        msk = _resolve(root, entry["label"], where, allow_outside_root)
        case = img.parent.name
        side = cache / split / f"{case}.json"
        if side.is_file():
            found = _read_json(side)
        else:
            found = _convert_seg_case(img, msk, cache / split, case)
            side.write_text(json.dumps(found, sort_keys=True))
        for lid, (fname, mval) in sorted(found.items(), key=lambda kv: int(kv[0])):
            if lid not in names:
                raise DatasetError(f"{where}: label {lid} present in {msk} but not named in {jpath} 'labels'")
            sid = f"{dataset_id}-{case}-l{lid}"
            query, source = describe_label(names[lid], terms, split, sid, paraphrase_test)
            if queries == "description" and source != "term_dictionary":
                raise DatasetError(f"{root / TERM_DICTIONARY}: no description of label {names[lid]!r} ({where}); "
                                   f"add it or use queries='auto'")
            out.append(
                Grounding3D(
                    sample_id=sid,
                    dataset=SEG,
                    split=split,
                    volume_path=cache / split / f"{case}_image.npy",
                    mask_path=cache / split / fname,
                    query=query,
                    label=names[lid],
                    mask_value=mval,
                    meta={"dataset_id": dataset_id, "case": case, "label_id": int(lid), "source_image": str(img),
                          "source_mask": str(msk), "spacing_known": False, "query_source": source,
                          "query_pool": ("test paraphrases" if split == "test" and paraphrase_test else split)
                          if source == "term_dictionary" else "label name"},
                )
            )
    return out


# ------------------------------------------------------------------ writers (deterministic)


def write_nifti_gz(path: str | Path, array_zyx: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)) -> Path:
    """Write a ``[z, y, x]`` array as ``.nii.gz`` whose bytes depend only on the data.

    Index order is LPS (x toward the patient's left, y toward posterior, z toward superior),
    so the RAS affine is ``diag(-sx, -sy, sz)``; the gzip header carries mtime 0 and no name.
    """
    import nibabel as nib

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sz, sy, sx = (float(s) for s in spacing_zyx)
    img = nib.Nifti1Image(np.ascontiguousarray(np.transpose(array_zyx, (2, 1, 0))), np.diag([-sx, -sy, sz, 1.0]))
    img.header.set_xyzt_units("mm")
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    p.write_bytes(gzip.compress(img.to_bytes(), compresslevel=6, mtime=0))
    return p


def write_npz_deterministic(path: str | Path, **arrays) -> Path:
    """``np.savez_compressed`` without the zip entries' wall-clock timestamps."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    return p


def write_seg_case(case_dir: str | Path, image_zyx: np.ndarray, masks_czyx: np.ndarray) -> tuple[Path, Path]:
    """Write one SegVol-style case: ``image.npy`` ``(1, X, Y, Z)`` and the CSR label matrix
    ``mask_(C, X, Y, Z).npz`` (scipy ``load_npz`` reads it)."""
    import scipy.sparse

    d = Path(case_dir)
    d.mkdir(parents=True, exist_ok=True)
    img = np.ascontiguousarray(np.transpose(image_zyx, (2, 1, 0))[None], dtype=np.float32)
    np.save(d / "image.npy", img)
    m = np.transpose(np.asarray(masks_czyx), (0, 3, 2, 1)).astype(np.int32)
    sp = scipy.sparse.csr_matrix(m.reshape(m.shape[0], -1))
    mpath = d / f"mask_{tuple(m.shape)}.npz"
    write_npz_deterministic(mpath, indices=sp.indices, indptr=sp.indptr, format=np.array(b"csr"),
                            shape=np.array(sp.shape), data=sp.data)
    return d / "image.npy", mpath


def write_refseg_csv(path: str | Path, rows: list[dict]) -> Path:
    """Write an M3D-RefSeg CSV (columns :data:`REFSEG_COLUMNS`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=REFSEG_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in REFSEG_COLUMNS})
    p.write_text(buf.getvalue(), encoding="utf-8")
    return p


# ------------------------------------------------------------------ frontal (coronal) 2D variant


def _canonical(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Array in RAS+ index order ``[i (->right), j (->anterior), k (->superior)]`` and its
    spacing. NIfTI is reoriented with its affine; a ``.npy``/``.npz`` array has no affine
    and is taken as ``[z, y, x]`` in LPS index order (medlib's convention)."""
    import nibabel as nib

    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        try:
            img = nib.as_closest_canonical(nib.load(str(path)))
            a = np.asanyarray(img.dataobj)
        except Exception as e:  # noqa: BLE001
            raise DatasetError(f"{path}: not a readable NIfTI volume ({e})") from e
        if a.ndim == 4 and a.shape[3] == 1:
            a = a[..., 0]
        if a.ndim != 3:
            raise DatasetError(f"{path}: expected a 3D volume, got shape {a.shape}")
        from .checks import require_finite

        require_finite(a, path)
        z = img.header.get_zooms()[:3]
        return a, (float(z[0]), float(z[1]), float(z[2]))
    from .io import read_volume

    a, (sz, sy, sx) = read_volume(path)
    return np.transpose(a, (2, 1, 0))[::-1, ::-1, :], (sx, sy, sz)


def window_to_uint8(a: np.ndarray, window: tuple[float, float] | str | None = "auto") -> np.ndarray:
    """Map intensities to uint8: ``(level, width)`` in HU, ``"auto"`` (soft-tissue window
    when the values look like HU, i.e. go below -200, else ``None``) or ``None`` (0.5-99.5
    percentiles)."""
    a = np.asarray(a, np.float32)
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be (level, width), 'auto' or None, got {window!r}")
        window = SOFT_TISSUE if a.size and float(a.min()) < -200 else None
    if window is None:
        lo, hi = (np.percentile(a, [0.5, 99.5]) if a.size else (0.0, 1.0))
    else:
        lo, hi = window[0] - window[1] / 2, window[0] + window[1] / 2
    return (np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255 + 0.5).astype(np.uint8)


def frontal_slice(sample: Grounding3D, isotropic: bool = True):
    """The coronal slice through the target: ``(image2d, mask2d, info)``.

    Rows run superior -> inferior and columns from the patient's right to left (radiological
    convention, as a frontal radiograph is read). The slice is the coronal plane through
    the target mask's centroid (the nearest plane that contains target voxels when the
    centroid plane has none). With ``isotropic`` the rows are resampled so a pixel is as
    tall as it is wide (linear for the image, nearest for the mask).
    """
    from scipy.ndimage import zoom

    vol, sp = _canonical(Path(sample.volume_path))
    lab, _ = _canonical(Path(sample.mask_path))
    if lab.shape != vol.shape:
        raise DatasetError(f"{sample.mask_path}: mask shape {lab.shape} differs from volume {sample.volume_path} {vol.shape}")
    tgt = (lab == sample.mask_value) if sample.mask_value is not None else (lab != 0)
    js = np.nonzero(tgt.any(axis=(0, 2)))[0]
    if js.size == 0:
        raise DatasetError(f"{sample.sample_id}: target mask is empty in {sample.mask_path} (value {sample.mask_value})")
    jc = int(round(float(np.nonzero(tgt)[1].mean())))
    j = int(js[np.argmin(np.abs(js - jc))])
    img = np.asarray(vol[::-1, j, ::-1], np.float32).T
    m = tgt[::-1, j, ::-1].T
    row_mm = float(sp[2])
    factor = sp[2] / sp[0]
    if isotropic and abs(factor - 1.0) > 1e-3:
        f = (max(1, int(round(img.shape[0] * factor))) / img.shape[0], 1.0)
        img_r, m_r = zoom(img, f, order=1), zoom(m.astype(np.uint8), f, order=0).astype(bool)
        if m_r.any():  # a one-voxel-thin target can vanish: then keep the voxel grid
            img, m, row_mm = img_r, m_r, float(sp[0])
    info = {"coronal_index_ras": j, "centroid_index_ras": jc, "n_coronal": int(vol.shape[1]),
            "pixel_mm": (float(sp[0]), row_mm)}  # (column, row) pixel size
    return img, m, info


def volume_to_frontal_2d(
    sample: Grounding3D, out_dir: str | Path, window: tuple[float, float] | str | None = "auto", isotropic: bool = True
) -> Grounding2D:
    """MedGround-R1's 2D M3D-RefSeg sample: the coronal slice through the target
    (:func:`frontal_slice`), windowed to a uint8 PNG, and the box of the target's mask on
    that slice (:func:`medlib.geometry.mask_to_box`). The coronal plane is the one a frontal
    radiograph shows, and the plane through the target's centre keeps the most of it."""
    from PIL import Image

    img, m, info = frontal_slice(sample, isotropic=isotropic)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", sample.sample_id)
    ipath, mpath = out / f"{stem}.png", out / f"{stem}_mask.png"
    Image.fromarray(window_to_uint8(img, window)).save(ipath)
    Image.fromarray(m.astype(np.uint8) * 255).save(mpath)
    box = mask_to_box(m)
    return Grounding2D(
        sample_id=sample.sample_id,
        dataset=f"{sample.dataset}_frontal",
        split=sample.split,
        image_path=ipath,
        query=sample.query,
        boxes=[tuple(float(v) for v in box)],
        image_size=(int(img.shape[1]), int(img.shape[0])),
        mask_path=mpath,
        answer=sample.answer,
        label=sample.label,
        meta={**sample.meta, **info, "source_volume": str(sample.volume_path), "window": window,
              "orientation": "rows superior->inferior, columns patient right->left"},
    )


def frontal_2d_dataset(samples, out_dir: str | Path, **kw) -> list[Grounding2D]:
    """:func:`volume_to_frontal_2d` for every sample (PNG files under ``out_dir/<split>``)."""
    return [volume_to_frontal_2d(s, Path(out_dir) / s.split, **kw) for s in samples]
