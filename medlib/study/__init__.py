"""Studies: ablations from one start (``ablation``), the learning study (``learning``), the effect
studies with power (``runner``: ``python -m medlib.study run|select``), their paired effects and
verdicts (``effects``) and what their results say (``report``)."""

from .runner import load_spec, main, prepare, run, run_seed, select

__all__ = ["load_spec", "main", "prepare", "run", "run_seed", "select"]
