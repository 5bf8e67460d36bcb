"""Training runners of the three papers: ``run_sft(cfg)`` and ``run_grpo(cfg)`` through TRL, and
``run_vision_warmup(cfg)``, the dense vision-tower warm-up a small random model needs first.

``cfg`` is a :class:`RunConfig`, a YAML path (``configs/<paper>/{smoke,full}.yaml``) or a dict.
Command line: ``python -m medlib.train {vision,sft,grpo,all,check} --config FILE [--set key=value ...]``.
Outputs: ``<output_dir>/<name>/<stage>/`` with ``metrics.csv``, ``tensorboard/``, ``checkpoint-N/``,
``final/`` (the trained model), ``config.yaml`` and ``provenance.json``.
"""

from .common import StageResult
from .config import ConfigError, RunConfig, config_from_dict, load_config
from .grpo import run_grpo
from .sft import run_sft
from .vision_warmup import run_vision_warmup

__all__ = ["ConfigError", "RunConfig", "StageResult", "config_from_dict", "load_config", "run_grpo", "run_sft",
           "run_vision_warmup"]
