"""Evaluator: greedy generation is deterministic and batch-size invariant; predictions are mapped
from the model frame back to the original image before scoring; unparseable answers are refusals
scoring IoU 0; predictions JSONL and a summary with provenance are written; the 3D path keys the
slice, maps the boxes and scores the propagated volume."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from medlib import prompts
from medlib.data.records import Grounding2D
from medlib.evaluate import evaluate_2d, generate, load_for_eval, score_2d
from medlib.evaluate import grounding2d as g2d
from medlib.evaluate.generation import prompt_texts as g2d_texts
from medlib.models import ModelLoadError, build_tiny_qwen25vl
from medlib.paths import REPO
from medlib.train.datasets import read_toy, row_2d, write_toy2d

torch.set_num_threads(1)

SMALL = {"hidden_size": 64, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 128, "vision_hidden_size": 32,
         "vision_heads": 2, "vision_intermediate_size": 64, "mrope_section": [2, 7, 7], "vocab_size": 500}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny") / "model", **SMALL)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    # min_pixels 56 x 56: a 56 x 56 image stays 56 x 56 (identity frame), 70 x 70 becomes 56 x 56
    return load_for_eval(tiny_dir, device="cpu", dtype="float32", min_pixels=3136, max_pixels=50176)


@pytest.fixture(scope="module")
def toy56(tmp_path_factory):
    root = write_toy2d(tmp_path_factory.mktemp("toy") / "toy2d", {"test": 4}, image_size=56, seed=3)
    return read_toy(root, "test")


def _image_record(tmp_path, sid, w, h, box, mask=True):
    """A record on a w x h image with a bright rectangle ``box`` (and its mask)."""
    img = np.full((h, w), 40, np.uint8)
    m = np.zeros((h, w), np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    img[y1:y2, x1:x2], m[y1:y2, x1:x2] = 200, 255
    Image.fromarray(img).save(tmp_path / f"{sid}.png")
    Image.fromarray(m).save(tmp_path / f"{sid}_mask.png")
    return Grounding2D(sample_id=sid, dataset="hand", split="test", image_path=tmp_path / f"{sid}.png",
                       query="the bright rectangle", boxes=[tuple(float(v) for v in box)], image_size=(w, h),
                       mask_path=(tmp_path / f"{sid}_mask.png") if mask else None)


def _fake_generate(texts):
    """A stand-in for ``generate`` that returns hand-written completions, checking the call."""
    def fake(model, processor, rows, *, batch_size=16, max_new_tokens=64, repetition_penalty=1.0, progress=False):
        assert len(rows) == len(texts)
        return list(texts)
    return fake


# ----------------------------------------------------------------------------- generation
def test_generate_is_deterministic_and_batch_size_invariant(tiny, toy56):
    model, proc = tiny
    recs = list(toy56)
    recs[1].query += " close to the border of the whole image"  # a longer prompt: left padding is exercised
    rows = [row_2d(r, proc, "medground", "r1", False) for r in recs]
    lens = {len(proc.tokenizer(t)["input_ids"]) for t in g2d_texts(proc, rows)}
    assert len(lens) > 1, "prompts of one length would not test the padding"
    a = generate(model, proc, rows, batch_size=4, max_new_tokens=8)
    b = generate(model, proc, rows, batch_size=4, max_new_tokens=8)
    c = generate(model, proc, rows, batch_size=1, max_new_tokens=8)
    assert len(a) == 4 and all(isinstance(t, str) and t for t in a)
    assert a == b == c
    assert not any("<|im_end|>" in t or "<|endoftext|>" in t for t in a)  # special tokens stripped
    assert proc.tokenizer.padding_side == "left"


# ------------------------------------------------------------------------------- scoring
def test_perfect_answers_score_miou_and_acc_100(tiny, toy56, monkeypatch, tmp_path):
    model, proc = tiny
    rows = [row_2d(r, proc, "medground", "r1", False) for r in toy56]
    # 56 x 56 images in a 56 x 56 frame: the GT box in the model frame is the original box
    assert all(r["model_size"] == [56, 56] and r["solution"] == [int(v) for v in r["orig_box"]] for r in rows)
    texts = [prompts.medground_answer(r["solution"], r["phrase"]) for r in rows]
    monkeypatch.setattr(g2d, "generate", _fake_generate(texts))
    s = evaluate_2d(model, proc, toy56, out_dir=tmp_path / "ev", bootstrap=200)
    m = s["metrics"]
    assert m["mIoU"]["mean"] == pytest.approx(100.0) and m["Acc"]["mean"] == 100.0
    assert m["mIoU"]["ci_low"] == pytest.approx(100.0)  # every resample of all-100 is 100
    assert s["refusals"] == 0 and s["n"] == 4


def test_answers_in_the_model_frame_are_mapped_back_per_axis(tmp_path, tiny):
    model, proc = tiny
    # 70 x 70 -> 56 x 56 (70/28 = 2.5 rounds to 2): scale 0.8 on both axes.
    #   model box [8, 16, 40, 48] / 0.8 = [10, 20, 50, 60] = the GT box -> IoU 1.
    #   Scored without the mapping: [8,16,40,48] vs [10,20,50,60]: inter 30 x 28 = 840,
    #   union 32*32 + 40*40 - 840 = 1784, IoU 0.471 < 0.5: a miss. So Acc 100 proves the mapping.
    # 70 wide x 98 high -> 56 x 112 (98/28 = 3.5 rounds to 4): sx = 0.8, sy = 112/98 = 8/7.
    #   model box [8, 16, 40, 48] -> x / 0.8 = [10, 50], y * 7/8 = [14, 42]: GT [10, 14, 50, 42].
    recs = [_image_record(tmp_path, "sq", 70, 70, (10, 20, 50, 60)),
            _image_record(tmp_path, "tall", 70, 98, (10, 14, 50, 42))]
    rows = g2d.build_rows_2d(recs, proc, "medground", "r1")
    assert [r["model_size"] for r in rows] == [[56, 56], [56, 112]]
    text = '<think>x</think><answer>{"bbox_2d": [8, 16, 40, 48]}</answer>'
    preds, m = score_2d(recs, rows, [text, text], processor=proc, bootstrap=100)
    assert preds[0]["box"] == pytest.approx([10, 20, 50, 60])
    assert preds[1]["box"] == pytest.approx([10, 14, 50, 42])
    assert preds[0]["box_model"] == [8, 16, 40, 48]
    assert [p["iou"] for p in preds] == pytest.approx([1.0, 1.0])
    assert m["Acc"]["mean"] == 100.0 and m["mIoU"]["mean"] == pytest.approx(100.0)


def test_unparseable_answers_are_refusals_with_iou_zero(tmp_path, tiny):
    model, proc = tiny
    recs = [_image_record(tmp_path, f"r{i}", 56, 56, (10, 10, 30, 30)) for i in range(4)]
    rows = g2d.build_rows_2d(recs, proc, "medground", "r1")
    texts = [
        "I cannot see anything.",  # no answer block
        "<answer>[1.5, 2, 3, 4]</answer>",  # floats: not the paper's integer box regex (footnote 8)
        "<think>t</think><answer>{\"bbox_2d\": [10, 10, 30, 20]}</answer>",  # half the GT: IoU 200/400
        "<think>t</think><answer>{\"bbox_2d\": [10, 10, 30, 30]}</answer>",  # exact: IoU 1
    ]
    preds, m = score_2d(recs, rows, texts, processor=proc, bootstrap=100)
    assert [p["refused"] for p in preds] == [True, True, False, False]
    assert [p["iou"] for p in preds] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert preds[0]["reason"] == "no <answer>...</answer> block"
    # mIoU = (0 + 0 + 0.5 + 1) / 4 = 37.5 %; Acc counts IoU > 0.5 strictly: 1 of 4 = 25 %
    assert m["refusals"] == 2
    assert m["mIoU"]["mean"] == pytest.approx(37.5) and m["Acc"]["mean"] == pytest.approx(25.0)


class BoxSegmenter:
    """Deterministic test segmenter: fills the prompt box (rounded outwards)."""

    name = "box-fill"

    def segment_2d(self, image, box=None, points=None):
        h, w = np.asarray(image).shape[:2]
        m = np.zeros((h, w), bool)
        x1, y1, x2, y2 = (int(v) for v in np.round(box))
        m[max(y1, 0):y2, max(x1, 0):x2] = True
        return m

    def propagate_3d(self, volume, key_slice, boxes):
        out = np.zeros(np.asarray(volume).shape, bool)
        for b in boxes:
            out[key_slice] |= self.segment_2d(volume[key_slice], b)
        return out


def test_medreasoner_points_and_mask_dice_in_the_original_frame(tmp_path, tiny):
    model, proc = tiny
    # 70 x 70 -> 56 x 56 (scale 0.8). GT box [10, 20, 50, 60]; GT points given on the record.
    rec = _image_record(tmp_path, "mr", 70, 70, (10, 20, 50, 60))
    rec.points = ((20.0, 40.0), (40.0, 40.0))
    rows = g2d.build_rows_2d([rec, rec], proc, "medreasoner", "reasoning")
    assert rows[0]["points"] == [[16, 32], [32, 32]]  # GT points x 0.8 in the model frame
    good = prompts.medreasoner_answer([8, 16, 40, 48], [[16, 32], [32, 32]], "t")
    # second answer: box [8, 16, 24, 48] -> original [10, 20, 30, 60], half the GT (IoU 0.5, Dice 2/3);
    # points [[32, 32], [48, 32]] -> original (40, 40), (60, 40): a disc of radius 10 centred at
    # (50, 40); the GT disc has radius 10 at (30, 40); centres 20 apart: they touch only -> pDice 0
    half = prompts.medreasoner_answer([8, 16, 24, 48], [[32, 32], [48, 32]], "t")
    preds, m = score_2d([rec, rec], rows, [good, half], processor=proc, paper="medreasoner",
                        segmenter=BoxSegmenter(), bootstrap=100, metric_variant="paper")
    np.testing.assert_allclose(preds[0]["points"], [[20, 40], [40, 40]])
    np.testing.assert_allclose(preds[1]["points"], [[40, 40], [60, 40]])
    assert [p["pdice"] for p in preds] == pytest.approx([1.0, 0.0], abs=1e-9)
    # mask Dice: 1, and 2 * 800 / (800 + 1600) = 2/3
    assert [p["mask_dice"] for p in preds] == pytest.approx([1.0, 2 / 3])
    assert m["pDice"]["mean"] == pytest.approx(50.0)
    assert m["Dice"]["mean"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert m["IoU"]["mean"] == pytest.approx(100 * (1 + 0.5) / 2)
    assert m["segmenter"] == "box-fill" and m["refusals"] == 0 and m["metric_variant"] == "paper"
    assert [p["gt_mask_area"] for p in preds] == [1600, 1600] and [p["mask_intersection"] for p in preds] == [1600, 800]
    # the default is MedReasoner's public evaluation: pDice 2 I / (U + 1e-5) (identical discs of
    # radius 10: about 2), IoU and Dice with their +1e-6
    off, mo = score_2d([rec, rec], rows, [good, half], processor=proc, paper="medreasoner",
                       segmenter=BoxSegmenter(), bootstrap=100)
    disc = np.pi * 100
    assert [p["pdice"] for p in off] == pytest.approx([2 * disc / (disc + 1e-5), 0.0], rel=1e-9)
    assert [p["box_iou"] for p in off] == pytest.approx([1600 / (1600 + 1e-6), 800 / (1600 + 1e-6)], rel=1e-12)
    assert [p["mask_dice"] for p in off] == pytest.approx([3200 / (3200 + 1e-6), 1600 / (2400 + 1e-6)], rel=1e-12)
    assert mo["metric_variant"] == "official" and mo["pDice"]["mean"] == pytest.approx(100 * disc / (disc + 1e-5))
    # mIoU / Acc stay MedRPG's, whatever the variant
    assert mo["mIoU"] == m["mIoU"] and mo["Acc"] == m["Acc"]
    with pytest.raises(ValueError, match="metric_variant 'eq5'"):
        score_2d([rec], rows[:1], [good], processor=proc, paper="medreasoner", metric_variant="eq5")


def test_medreasoner_summary_records_decoding_variant_and_segmenter(tmp_path, tiny, monkeypatch):
    """The repetition penalty reaches model.generate and the summary; so do the metric variant
    and the segmenter that produced the mask Dice."""
    model, proc = tiny
    rec = _image_record(tmp_path, "mr", 70, 70, (10, 20, 50, 60))
    rec.points = ((20.0, 40.0), (40.0, 40.0))
    seen = {}
    real = model.generate

    def spy(*a, **kw):
        seen.update(kw)
        return real(*a, **kw)

    monkeypatch.setattr(model, "generate", spy)
    s = g2d.evaluate_2d(model, proc, [rec], paper="medreasoner", template="direct", segmenter=BoxSegmenter(),
                        max_new_tokens=4, bootstrap=10, repetition_penalty=1.05, metric_variant="paper",
                        segmenter_spec="box-fill:test")
    assert seen["repetition_penalty"] == 1.05 and seen["do_sample"] is False
    assert s["decoding"]["repetition_penalty"] == 1.05
    assert s["metric_variant"] == "paper" and s["metrics"]["metric_variant"] == "paper"
    assert s["segmenter"] == "box-fill:test"
    from medlib.evaluate.__main__ import format_summary

    text = format_summary(s)
    assert "mask Dice by segmenter box-fill:test" in text and "paper variant" in text


def test_segmenter_choice_names_where_it_came_from():
    from medlib.evaluate.__main__ import segmenter_choice
    from medlib.train.config import load_config

    full = load_config(REPO / "configs" / "medreasoner" / "full.yaml")
    assert segmenter_choice(full, None) == ("medsam2:checkpoints/MedSAM2_latest.pt", "evaluation.segmenter")
    assert full.evaluation.repetition_penalty == 1.05 and full.evaluation.metric_variant == "official"
    assert segmenter_choice(full, "none")[0] is None and segmenter_choice(full, "litemedsam")[0] == "litemedsam"
    bare = load_config(REPO / "configs" / "medreasoner" / "smoke.yaml", ["evaluation.segmenter=null"])
    spec, why = segmenter_choice(bare, None)
    assert spec == "litemedsam" and "no segmenter named" in why


def test_rescore_recomputes_the_variants_from_predictions(tmp_path, tiny):
    from medlib.evaluate.rescore import main as rescore_main
    from medlib.evaluate.rescore import rescore_medreasoner

    model, proc = tiny
    rec = _image_record(tmp_path, "mr", 70, 70, (10, 20, 50, 60))
    rec.points = ((20.0, 40.0), (40.0, 40.0))
    rows = g2d.build_rows_2d([rec, rec], proc, "medreasoner", "reasoning")
    good = prompts.medreasoner_answer([8, 16, 40, 48], [[16, 32], [32, 32]], "t")
    half = prompts.medreasoner_answer([8, 16, 24, 48], [[32, 32], [48, 32]], "t")
    out = tmp_path / "ev"
    for variant in ("paper", "official"):
        preds, m = score_2d([rec, rec], rows, [good, half], processor=proc, paper="medreasoner",
                            segmenter=BoxSegmenter(), bootstrap=50, metric_variant=variant)
        d = out / variant
        d.mkdir(parents=True)
        (d / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
        (d / "summary.json").write_text(json.dumps({"paper": "medreasoner", "metrics": m, "bootstrap": 50,
                                                    "provenance": {"seed": 0}}))
    s = rescore_medreasoner(out / "paper", "official")
    want = json.loads((out / "official" / "summary.json").read_text())["metrics"]
    for k in ("IoU", "pDice", "Dice"):
        assert s["metrics"][k] == pytest.approx(want[k])
    assert s["metric_variant"] == "official" and s["rescored"]["mask_dice"] == "exact"
    # predictions without the mask counts (written before they were kept): Eq. 5 value, said so
    lines = [json.loads(x) for x in (out / "paper" / "predictions.jsonl").read_text().splitlines()]
    for p in lines:
        del p["gt_mask_area"], p["mask_intersection"]
        p["mask_dice"] = 0.5
    (out / "paper" / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in lines))
    s = rescore_medreasoner(out / "paper", "official")
    assert s["metrics"]["Dice"]["mean"] == pytest.approx(50.0) and "not recorded" in s["rescored"]["mask_dice"]
    assert rescore_main([str(tmp_path / "missing")]) == 2


# ------------------------------------------------------------------ files and provenance
def test_real_model_end_to_end_writes_predictions_and_provenance(tiny, toy56, tmp_path):
    model, proc = tiny
    cfg = {"paper": "medground", "name": "t", "seed": 7}
    out = tmp_path / "eval"
    s = evaluate_2d(model, proc, toy56, batch_size=2, max_new_tokens=6, out_dir=out, bootstrap=100, seed=7,
                    config=cfg, profile="smoke", model_path="runs/x/final", split="test")
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["sample_id"] for p in lines] == [r.sample_id for r in toy56]
    for p in lines:
        assert {"sample_id", "query", "completion", "box_model", "box", "gt_box", "gt_box_model", "iou",
                "refused"} <= set(p)
        assert p["refused"] == (p["box"] is None)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(s))
    prov = on_disk["provenance"]
    want = hashlib.sha256(json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert prov["config_hash"] == want and prov["seed"] == 7 and prov["profile"] == "smoke"
    assert prov["model_path"] == "runs/x/final"
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    assert set(prov["versions"]) >= {"torch", "transformers", "trl", "peft"}
    assert prov["versions"]["torch"] and prov["versions"]["transformers"]
    assert on_disk["n"] == 4 and on_disk["split"] == "test"
    # an untrained model writes no parseable box: every answer is a refusal and scores 0
    n_ref = sum(p["refused"] for p in lines)
    assert on_disk["refusals"] == n_ref
    assert on_disk["metrics"]["mIoU"]["mean"] == pytest.approx(100 * np.mean([p["iou"] for p in lines]))
    # same seed, same model: identical summary
    s2 = evaluate_2d(model, proc, toy56, batch_size=4, max_new_tokens=6, bootstrap=100, seed=7, config=cfg,
                     profile="smoke", model_path="runs/x/final", split="test")
    assert s2["metrics"] == s["metrics"]


def test_load_for_eval_reads_stage_folders_and_lora_adapters(tiny_dir, tiny, toy56, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model, proc = tiny
    # a stage folder with final/ resolves to final/
    stage = tmp_path / "grpo"
    model.save_pretrained(stage / "final")
    proc.save_pretrained(stage / "final")
    m2, _ = load_for_eval(stage)
    assert not m2.training
    sd, sd2 = model.state_dict(), m2.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    # a bare LoRA adapter is merged into its base model
    base = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    merged, _ = load_for_eval(tmp_path / "adapter", dtype="float32")
    want = peft_model.merge_and_unload().state_dict()
    got = merged.state_dict()
    key = next(k for k in want if "q_proj.weight" in k)
    assert not torch.equal(want[key], sd[key])  # the adapter changed the weights
    assert torch.allclose(got[key], want[key])
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_for_eval(tmp_path / "nope")


# ------------------------------------------------------------------------------------- 3D
class SlabSegmenter:
    """Deterministic test segmenter: each box filled on slices key-1 .. key+1."""

    name = "slab"

    def segment_2d(self, image, box=None, points=None):  # pragma: no cover - 3D only here
        raise NotImplementedError

    def propagate_3d(self, volume, key_slice, boxes):
        out = np.zeros(np.asarray(volume).shape, bool)
        for b in boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in b)
            out[max(key_slice - 1, 0):key_slice + 2, y1:y2, x1:x2] = True
        return out


def _cuboid_record(tmp_path):
    """Volume 8 x 28 x 28; target cuboid z 2..5, y 4..12, x 6..16 (80 voxels per slice, 320 in all)."""
    from medlib.data.records import Grounding3D

    rng = np.random.default_rng(0)
    vol = rng.normal(0, 10, (8, 28, 28)).astype(np.float32)
    mask = np.zeros((8, 28, 28), np.uint8)
    mask[2:6, 4:12, 6:16] = 1
    vol[mask > 0] = 200
    np.save(tmp_path / "v.npy", vol)
    np.save(tmp_path / "m.npy", mask)
    return Grounding3D(sample_id="cub", dataset="hand", split="test", volume_path=tmp_path / "v.npy",
                       mask_path=tmp_path / "m.npy", query="the bright block")


def test_3d_key_slice_boxes_and_volume_metrics(tmp_path, tiny, monkeypatch):
    from medlib.evaluate import evaluate_3d
    from medlib.evaluate import volume3d as v3d

    model, proc = tiny
    rec = _cuboid_record(tmp_path)
    # 4 slices of 8: round(linspace(0, 7, 4)) = [0, 2, 5, 7]; 56 x 56 slice images, model frame 56 x 56,
    # so a model-frame box is 2 x the volume box (28 px in-plane): GT box [6, 4, 16, 12] -> [12, 8, 32, 24]
    ans = prompts.medvol_answer
    texts = [
        ans(3, [[12, 8, 32, 24]]),  # <slice 3> = z 5, exact box
        ans(1, [[12, 8, 32, 24]]),  # <slice 1> = z 0: no target there
        "no idea",  # refusal: no answer block
        ans(9, [[12, 8, 32, 24]]),  # refusal: only 4 slices were shown
    ]
    monkeypatch.setattr(v3d, "generate", _fake_generate(texts))
    s = evaluate_3d(model, proc, [rec] * 4, segmenter=SlabSegmenter(), n_slices=4, slice_size=56, delta=1,
                    out_dir=tmp_path / "ev3", bootstrap=100, config={"paper": "medvol"}, split="test")
    preds = [json.loads(x) for x in (tmp_path / "ev3" / "predictions.jsonl").read_text().splitlines()]
    assert preds[0]["slice_indices"] == [0, 2, 5, 7] and preds[0]["model_size"] == [56, 56]
    assert [p["key_z"] for p in preds] == [5, 0, None, None]
    assert preds[0]["boxes"] == [[6.0, 4.0, 16.0, 12.0]]
    assert [p["refused"] for p in preds] == [False, False, True, True]
    assert "not one of the 4 shown slices" in preds[3]["reason"]
    # first: pred = box on z 4, 5, 6 = 240 voxels; GT 320; overlap z 4, 5 = 160.
    #   DSC = 2 * 160 / (240 + 320) = 4/7; IoU = 160 / (240 + 320 - 160) = 0.4
    #   window (default, shown slices) positions 1..3 around <slice 3> -> z 2..7: the whole overlap,
    #   2 * 160 / (240 + 320) = 4/7; native window |t - 5| <= 1: pred 240, GT 160 (z 4, 5) -> 0.8
    # second: pred on z 0, 1, GT on z 2..5: DSC 0, window 0
    assert [p["dsc"] for p in preds] == pytest.approx([4 / 7, 0, 0, 0])
    assert [p["iou"] for p in preds] == pytest.approx([0.4, 0, 0, 0])
    assert [p["dsc_local"] for p in preds] == pytest.approx([4 / 7, 0, 0, 0])
    native = evaluate_3d(model, proc, [rec] * 4, segmenter=SlabSegmenter(), n_slices=4, slice_size=56, delta=1,
                         bootstrap=100, config={"paper": "medvol"}, split="test", window="native")
    assert native["metrics"]["DSC_local"]["mean"] == pytest.approx(20.0) and native["metrics"]["window"] == "native"
    # key slice: GT areas on the shown slices [0, 80, 80, 0]; z 5 -> 80 / 80 = 1, z 0 -> 0;
    # boxes on z 5: exact match -> 1; on z 0 no GT box -> 0 / max(1, 0) = 0
    assert [p["key_hit"] for p in preds] == [True, False, False, False]
    assert [p["key_axial"] for p in preds] == pytest.approx([1, 0, 0, 0])
    assert [p["key_boxes"] for p in preds] == pytest.approx([1, 0, 0, 0])
    m = s["metrics"]
    assert m["DSC"]["mean"] == pytest.approx(100 * (4 / 7) / 4) and m["IoU"]["mean"] == pytest.approx(10.0)
    assert m["DSC_local"]["mean"] == pytest.approx(100 * (4 / 7) / 4) and m["key_hit"]["mean"] == pytest.approx(25.0)
    assert m["window"] == "sampled"
    assert s["refusals"] == 2 and m["segmenter"] == "slab" and m["delta"] == 1
    assert json.loads((tmp_path / "ev3" / "summary.json").read_text())["provenance"]["config_hash"]


def test_3d_rows_from_the_real_model_and_volumes_without_visible_target(tmp_path, tiny):
    from medlib.evaluate import evaluate_3d
    from medlib.evaluate.volume3d import eval_row_3d

    model, proc = tiny
    rec = _cuboid_record(tmp_path)
    # 2 slices of 8: [0, 7]; the target (z 2..5) is on neither. Training skips such volumes; the
    # evaluation keeps them (they are part of the test set).
    row = eval_row_3d(rec, proc, 2, 56)
    assert row["slice_indices"] == [0, 7] and len(row["images"]) == 2
    s = evaluate_3d(model, proc, [rec, rec], segmenter=SlabSegmenter(), n_slices=4, slice_size=56,
                    max_new_tokens=6, bootstrap=50, out_dir=tmp_path / "ev")
    preds = [json.loads(x) for x in (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()]
    assert s["n"] == 2 and s["refusals"] == sum(p["refused"] for p in preds)
    assert preds[0]["completion"] == preds[1]["completion"]  # same volume, greedy: same answer
    assert s["metrics"]["DSC"]["mean"] == pytest.approx(100 * np.mean([p["dsc"] for p in preds]))


# ------------------------------------------------------------------------------------ CLI
def test_cli_evaluates_a_config_split_and_names_bad_input(tmp_path, tiny_dir, capsys):
    import yaml

    from medlib.evaluate import config_hash
    from medlib.evaluate.__main__ import main
    from medlib.train.config import load_config

    cfg = {"paper": "medground", "name": "t", "output_dir": str(tmp_path / "runs"), "device": "cpu",
           "progress": False, "model": {"min_pixels": 3136, "max_pixels": 50176},
           "data": {"source": "toy2d", "root": str(tmp_path / "toy"), "sizes": {"test": 3}, "image_size": 56},
           "grpo": {"max_completion_length": 6}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    rc = main(["--config", str(path), "--model", str(tiny_dir), "--split", "test", "--out", str(out),
               "--bootstrap", "50", "--profile", "smoke"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n"] == 3 and s["template"] == "r1" and s["split"] == "test"
    assert s["provenance"]["config_hash"] == config_hash(load_config(path))
    assert s["provenance"]["profile"] == "smoke" and s["provenance"]["model_path"] == str(tiny_dir)
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    assert "refusals" in capsys.readouterr().out
    # a missing checkpoint: one clear line, exit status 2
    rc = main(["--config", str(path), "--model", str(tmp_path / "nope"), "--out", str(out)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    # no --model and nothing trained: says to train first
    rc = main(["--config", str(path), "--out", str(out)])
    assert rc == 2 and "train first" in capsys.readouterr().err
