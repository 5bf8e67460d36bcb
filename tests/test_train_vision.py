"""Vision-tower warm-up (docs/grpo.md#small-models-on-a-cpu): per-token coverage targets in the processor's
token order, a few steps that lower the loss and change every vision parameter and no language
parameter, and ``python -m medlib.train all`` running it before SFT, which starts from its model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL
from PIL import Image
from safetensors.torch import load_file

from medlib.data.records import Grounding2D
from medlib.train import ConfigError, config_from_dict, run_vision_warmup
from medlib.train.__main__ import main as cli
from medlib.train.callbacks import read_metrics
from medlib.train.common import use_image_backend
from medlib.train.vision_warmup import box_coverage, class_names, token_major, token_targets

torch.set_num_threads(1)

TINY = TINY_MODEL


def config(tmp_path, name="warm", **vision):
    return {
        "paper": "medground", "name": name, "output_dir": str(tmp_path / "runs"), "seed": 0, "device": "cpu",
        "progress": False, "report_to": ["none"],
        # 112 x 112: a 4 x 4 grid of merged tokens
        "model": {"name_or_path": "tiny", "tiny": TINY, "min_pixels": 12544, "max_pixels": 12544,
                  "image_backend": "pil"},
        "data": {"source": "toy2d", "root": str(tmp_path / "toy2d"), "sizes": {"train": 12}, "image_size": 112},
        "vision": {"steps": 12, "learning_rate": 3e-3, "batch_size": 4, "logging_steps": 1, **vision},
        "sft": {"init_from": "vision", "learning_rate": 1e-3, "max_steps": 2, "batch_size": 2, "logging_steps": 1,
                "save_steps": 100},
        "grpo": {"enabled": False},
    }


def test_box_coverage_by_hand():
    # 2 x 2 tokens of 28 px; box x 14..42, y 0..14: each top token has 14 of its 28 columns and
    # 14 of its 28 rows covered -> 0.5 * 0.5 = 0.25; the bottom row nothing
    cov = box_coverage([14, 0, 42, 14], 2, 2, 28)
    np.testing.assert_allclose(cov, [[0.25, 0.25], [0.0, 0.0]])
    # a box over the whole image covers every token fully; one past the edge is clipped
    np.testing.assert_allclose(box_coverage([0, 0, 60, 56], 2, 2, 28), np.ones((2, 2)))
    # covered area = sum(coverage) * cell area (box of 10 x 6 px anywhere inside)
    assert box_coverage([3.5, 20, 13.5, 26], 4, 4, 14).sum() * 14 * 14 == pytest.approx(60)


def test_token_major_groups_each_tokens_subcells():
    # a 4 x 4 sub-cell grid (2 x 2 tokens, 2 x 2 sub-cells each) numbered row-major
    grid = np.arange(16).reshape(4, 4)
    # token 0 = rows 0-1, cols 0-1 -> [0, 1, 4, 5]; token 1 = rows 0-1, cols 2-3 -> [2, 3, 6, 7]; ...
    np.testing.assert_array_equal(token_major(grid, 2), [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13],
                                                         [10, 11, 14, 15]])


def _record(tmp_path, box, label="nodule"):
    img = np.full((112, 112), 30, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 250
    p = tmp_path / "img.png"
    Image.fromarray(img).save(p)
    return Grounding2D(sample_id="s", dataset="t", split="train", image_path=p, query="q", boxes=[tuple(box)],
                       label=label)


def test_targets_follow_the_processors_token_order(tmp_path):
    from medlib.models import build_tiny_qwen25vl
    from medlib.models.load import load_processor

    folder = build_tiny_qwen25vl(tmp_path / "m", **TINY)
    proc = use_image_backend(load_processor(folder, 12544, 12544), "pil")
    # the finding fills exactly the token in merged row 1, column 2 (pixels x 56..84, y 28..56)
    rec = _record(tmp_path, (56, 28, 84, 56))
    classes = class_names([rec, Grounding2D("o", "t", "train", rec.image_path, "q", [(0, 0, 1, 1)], label="mass")])
    assert classes == ["any", "mass", "nodule"]
    s = token_targets(rec, proc, classes, subcells=2)
    assert s.target.shape == (16, 3 * 4)
    hot = np.flatnonzero(s.target[:, :4].sum(1))
    assert hot.tolist() == [1 * 4 + 2]  # row-major token index
    np.testing.assert_allclose(s.target[6], [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1])  # any, mass, nodule
    # the processor's merged token 6 is where the bright pixels are: its four patch rows are bright
    enc = proc.image_processor(images=[s.image], return_tensors="pt")
    bright = enc["pixel_values"].reshape(16, 4, -1).mean(dim=(1, 2))
    assert int(torch.argmax(bright)) == 6


@pytest.mark.slow  # trains a model
def test_warmup_lowers_the_loss_and_trains_only_the_vision_tower(tmp_path):
    res = run_vision_warmup(config(tmp_path))
    assert res.stage == "vision" and res.global_step == 12 and res.train_samples == 12
    rows = read_metrics(res.metrics_csv)
    assert [r["step"] for r in rows] == list(range(1, 13))
    first, last = rows[0]["loss"], np.mean([r["loss"] for r in rows[-3:]])
    assert last < 0.7 * first, (first, last)
    before = load_file(str(tmp_path / "runs" / "warm" / "tiny_model" / "model.safetensors"))
    after = load_file(str(res.model_dir / "model.safetensors"))
    assert before.keys() == after.keys()
    vision = [k for k in before if k.startswith(("visual.", "model.visual."))]
    assert vision, sorted(before)[:5]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set(vision), (sorted(set(vision) - changed)[:3], sorted(changed - set(vision))[:3])
    info = json.loads((res.run_dir / "head.json").read_text())
    assert info["classes"] == ["any", "rectangle"] and info["subcells"] == 2
    head = load_file(str(res.run_dir / "head.safetensors"))
    assert head["weight"].shape == (2 * 4, TINY["hidden_size"])
    # a finished warm-up is reused, not retrained
    again = run_vision_warmup(config(tmp_path))
    assert (res.model_dir / "model.safetensors").stat().st_mtime == (again.model_dir / "model.safetensors").stat().st_mtime


def test_cli_all_runs_the_warmup_before_sft_which_starts_from_it(tmp_path, capsys):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, name="cli", steps=2)))
    assert cli(["all", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.index("vision: 2 steps") < out.index("sft: 2 steps")
    prov = json.loads((tmp_path / "runs" / "cli" / "sft" / "provenance.json").read_text())
    assert prov["model"] == str(tmp_path / "runs" / "cli" / "vision" / "final")


@pytest.mark.parametrize("change, field", [
    ({"sft": {"init_from": "base", "max_steps": 2}}, "sft.init_from"),
    ({"vision": {"steps": 0}}, "vision.steps"),
    ({"vision": {"subcells": 3}}, "vision.subcells"),
    ({"vision": {"init_from": "sft"}}, "vision.init_from"),
])
def test_bad_vision_settings_name_the_field(tmp_path, change, field):
    d = config(tmp_path)
    for k, v in change.items():
        d[k] = {**d[k], **v} if k != "sft" else v
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict(d)
