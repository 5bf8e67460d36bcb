"""Shared test settings.

``TINY_MODEL``: the tiny Qwen2.5-VL every training test builds (``model.tiny`` of a run config,
the keyword arguments of :func:`medlib.models.build_tiny_qwen25vl`): a few hundred thousand
parameters, seconds per step on a CPU. Test files import it (``from conftest import TINY_MODEL``).
Tests that train a model are marked ``slow`` (``make test-fast`` skips them).
"""

from __future__ import annotations

TINY_MODEL: dict = {
    "hidden_size": 64,
    "num_heads": 2,
    "num_kv_heads": 1,
    "intermediate_size": 128,
    "vision_hidden_size": 32,
    "vision_heads": 2,
    "vision_intermediate_size": 64,
    "mrope_section": [2, 7, 7],
    "vocab_size": 500,
}
