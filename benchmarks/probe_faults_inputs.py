"""Fault probes for the command lines, configs and parsers: bad input must give exit code 2 and
one sentence (``clear_error``) or the right result (``correct``), never a traceback or a silently
wrong value.

Probes: repeated ``--set`` on every command that takes it (and the reward-set override through
the CLI and a notebook variant), malformed override values, a non-UTF-8 config, an unknown
``data.source``, a negative model size, unknown keys (each through ``python -m medlib.train``,
``python -m medlib.evaluate`` and ``python -m medlib.study.learning``), the CLI edges (``--limit
0``, ``--batch-size 0``, ``--bootstrap 0``, ``--out`` a file, an unknown profile, ``--only 99``),
models that cannot load (fail at stage start), and adversarial completions through every parser
(the 16,000-digit ``<slice 3> [`` completion included). Commands run in this process with their
output captured; a few run as subprocesses to see the real exit code. Writes
``results/benchmarks/faults_inputs.json``.

    python benchmarks/probe_faults_inputs.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from medlib.paths import REPO, results_dir

TINY = REPO / "configs/medground/tiny.yaml"
TINY_VOL = REPO / "configs/medvol/tiny.yaml"
OUTCOMES = ("clear_error", "correct", "traceback", "silent_wrong", "data_lost")


class Stop(Exception):
    """Raised by a patched loader once the probe has seen what it needs."""


def call(main: Callable, argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """Exit code, stdout, stderr and an escaped traceback (None) of ``main(argv)`` in process."""
    out, err = io.StringIO(), io.StringIO()
    tb = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        except Stop:
            rc = "stopped"
        except Exception:  # noqa: BLE001 - that is what the probe looks for
            rc, tb = None, traceback.format_exc()
    return rc, out.getvalue(), err.getvalue(), tb


def classify_error(rc, err: str, tb: str | None, needles: tuple[str, ...]) -> tuple[str, str]:
    """``clear_error`` when the command exited with 2 and its last stderr line names the field."""
    if tb is not None or "Traceback" in err:
        return "traceback", (tb or err).strip().splitlines()[-1]
    line = err.strip().splitlines()[-1] if err.strip() else ""
    if rc == 2 and all(n in line for n in needles):
        return "clear_error", line
    return "silent_wrong", f"exit code {rc}; stderr {line!r}"


def train_main(argv):
    from medlib.train.__main__ import main

    return main(argv)


def evaluate_main(argv):
    from medlib.evaluate.__main__ import main

    return main(argv)


def study_main(argv):
    from medlib.study.learning import main

    return main(argv)


def medlib_main(argv):
    from medlib.__main__ import main

    return main(argv)


# ---------------------------------------------------------------------------- probes
def override_probes(tmp: Path) -> list[dict]:
    import medlib.study.learning as ls
    import medlib.train.datasets as datasets
    from medlib.data.io import DatasetError
    from medlib.study.ablation import Variant, variant_config
    from medlib.train.config import load_config

    probes = []

    def add(name, outcome, detail):
        probes.append({"name": name, "kind": "override", "outcome": outcome, "detail": detail})

    for label, sets in (("--set a --set b", ["--set", "grpo.beta=0", "--set", "seed=1"]),
                        ("--set a b", ["--set", "grpo.beta=0", "seed=1"])):
        rc, out, err, tb = call(train_main, ["check", "--config", str(TINY), *sets])
        ok = rc == 0 and "seed 1" in out and "beta 0," in out
        add(f"train {label}", "traceback" if tb else ("correct" if ok else "silent_wrong"),
            "plan shows beta 0 and seed 1" if ok else (tb or out + err)[-300:])
        seen = {}

        def stop(cfg, split, seen=seen):
            seen["cfg"] = cfg
            raise DatasetError("probe stop")

        with mock.patch.object(datasets, "load_records", stop):
            rc, out, err, tb = call(evaluate_main, ["--config", str(TINY), "--model", str(tmp), "--out",
                                                    str(tmp / "ev"), "--segmenter", "none", *sets])
        cfg = seen.get("cfg")
        ok = cfg is not None and cfg.seed == 1 and cfg.grpo.beta == 0
        add(f"evaluate {label}", "traceback" if tb else ("correct" if ok else "silent_wrong"),
            "config evaluated has beta 0 and seed 1" if ok else (tb or err)[-300:])
        got = {}

        def study(config, seeds, overrides, limit, group=None, got=got):
            got["overrides"] = list(overrides)
            raise Stop

        with mock.patch.object(ls, "run_study", study):
            rc, out, err, tb = call(study_main, ["--config", str(TINY), "--seeds", "0", *sets])
        ok = got.get("overrides") == ["grpo.beta=0", "seed=1"]
        add(f"learning_study {label}", "traceback" if tb else ("correct" if ok else "silent_wrong"),
            f"overrides passed on: {got.get('overrides')}")
    # the README's example, as a subprocess (check instead of grpo: nothing is trained)
    cmd = [sys.executable, "-m", "medlib.train", "check", "--config", "configs/medreasoner/smoke.yaml",
           "--set", "grpo.beta=0", "--set", "seed=1"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    ok = p.returncode == 0 and "beta 0," in p.stdout and "seed 1" in p.stdout
    add("README example (subprocess) --set grpo.beta=0 --set seed=1", "correct" if ok else
        ("traceback" if "Traceback" in p.stderr else "silent_wrong"), f"exit {p.returncode}; beta 0 and seed 1: {ok}")
    # the reward-set override: same result on the CLI and in a notebook variant
    want = {"format": 1, "spatial": 1}
    rc, out, err, tb = call(train_main, ["check", "--config", str(TINY), "--set", "grpo.rewards={format: 1, spatial: 1}"])
    ok = rc == 0 and "rewards {'format': 1.0, 'spatial': 1.0} " in out
    add("train --set grpo.rewards={format: 1, spatial: 1}", "correct" if ok else "silent_wrong",
        "semantic reward dropped" if ok else out[-300:])
    v = variant_config(load_config(TINY), Variant("x", overrides=["grpo.rewards={format: 1, spatial: 1}"]), tmp, "g", 0)
    add("variant_config grpo.rewards={format: 1, spatial: 1}", "correct" if v.grpo.rewards == want else "silent_wrong",
        f"rewards {v.grpo.rewards}")
    rc, out, err, tb = call(medlib_main, ["reproduce", "--set", "seed=1"])
    outcome, detail = classify_error(rc, err, tb, ("--set",))
    add("reproduce --set (takes none)", outcome, detail)
    return probes


def config_probes(tmp: Path) -> list[dict]:
    latin1 = tmp / "latin1.yaml"
    latin1.write_bytes(TINY.read_bytes().replace(b"# MedGround-R1", b"# MedGround-R1 r\xe9sum\xe9"))
    cases = {
        "malformed value grpo.rewards={format: 1": (str(TINY), ["grpo.rewards={format: 1"], ("grpo.rewards",)),
        "non-UTF-8 config": (str(latin1), [], ("not UTF-8",)),
        "unknown data.source": (str(TINY), ["data.source=nope"], ("data.source",)),
        "data.source module that does not import": (str(TINY), ["data.source=no_such_pkg.mod:fn"], ("data.source",)),
        "negative model size": (str(TINY), ["model.tiny.hidden_size=-4"], ("model.tiny.hidden_size",)),
        "unknown key grpo.betta": (str(TINY), ["grpo.betta=0"], ("grpo.betta",)),
        "wrong value type grpo.beta=abc": (str(TINY), ["grpo.beta=abc"], ("grpo.beta",)),
        "override without =": (str(TINY), ["grpo.beta"], ("grpo.beta",)),
        "missing config file": ("no/such.yaml", [], ("no/such.yaml",)),
    }
    probes = []
    for name, (config, sets, needles) in cases.items():
        set_args = ["--set", *sets] if sets else []
        for cli, main, argv in (
            ("train", train_main, ["check", "--config", config, *set_args]),
            ("evaluate", evaluate_main, ["--config", config, "--out", str(tmp / "ev"), *set_args]),
            ("learning_study", study_main, ["--config", config, "--seeds", "0", *set_args]),
        ):
            rc, out, err, tb = call(main, argv)
            outcome, detail = classify_error(rc, err, tb, needles)
            probes.append({"name": f"{cli}: {name}", "kind": "config", "outcome": outcome, "detail": detail})
    return probes


def edge_probes(tmp: Path) -> list[dict]:
    a_file = tmp / "summary.json"
    a_file.write_text("{}")
    ev = ["--config", str(TINY), "--out", str(tmp / "ev")]
    cases = [
        ("evaluate --limit 0", evaluate_main, [*ev, "--limit", "0"], ("--limit",)),
        ("evaluate --batch-size 0", evaluate_main, [*ev, "--batch-size", "0"], ("--batch-size",)),
        ("evaluate --bootstrap 0", evaluate_main, [*ev, "--bootstrap", "0"], ("--bootstrap",)),
        ("evaluate --out an existing file", evaluate_main, ["--config", str(TINY), "--out", str(a_file)], ("--out",)),
        ("evaluate --profile nope", evaluate_main, [*ev, "--profile", "nope"], ("--profile",)),
        ("learning_study --limit 0", study_main, ["--config", str(TINY), "--limit", "0"], ("--limit",)),
        ("learning_study --out a folder", study_main, ["--config", str(TINY), "--out", str(tmp)], ("--out",)),
        ("reproduce --profile nope", medlib_main, ["reproduce", "--profile", "nope"], ("--profile",)),
        ("reproduce --only 99", medlib_main, ["reproduce", "--only", "99"], ("--only",)),
        ("check-results --profile nope", medlib_main, ["check-results", "--profile", "nope"], ("--profile",)),
        ("benchmark --profile nope", medlib_main, ["benchmark", "--root", str(tmp / "b"), "--profile", "nope"],
         ("nope",)),
        ("benchmark --root an existing file", medlib_main, ["benchmark", "--root", str(a_file)], ("--root",)),
        ("compare-results on missing folders", medlib_main, ["compare-results", "no/a", "no/b"], ("no/a",)),
    ]
    probes = []
    for name, main, argv, needles in cases:
        rc, out, err, tb = call(main, argv)
        outcome, detail = classify_error(rc, err, tb, needles)
        if "existing file" in name and a_file.read_text() != "{}":
            outcome, detail = "data_lost", f"{a_file} was overwritten"
        probes.append({"name": name, "kind": "cli_edge", "outcome": outcome, "detail": detail})
    return probes


def fail_early_probes(tmp: Path) -> list[dict]:
    import medlib.train.datasets as datasets

    empty = tmp / "empty_clip"
    empty.mkdir(exist_ok=True)

    def no_data(*a, **k):
        raise AssertionError("data was loaded before the models the stage needs")

    cases = [
        ("grpo: semantic scorer folder holds no model", train_main,
         ["grpo", "--config", str(TINY), "--set", f"grpo.reward_options.semantic_scorer=small:{empty}",
          "grpo.init_from=base"], ("grpo.reward_options.semantic_scorer", "cannot load")),
        ("grpo: unknown segmenter", train_main,
         ["grpo", "--config", str(TINY_VOL), "--set", "grpo.reward_options.segmenter={name: nosuch}",
          "grpo.init_from=base"], ("grpo.reward_options.segmenter", "cannot build")),
        ("grpo: segmenter checkpoint missing", train_main,
         ["grpo", "--config", str(TINY_VOL), "--set", "grpo.reward_options.segmenter=medsam2:no/ck.pt",
          "grpo.init_from=base"], ("grpo.reward_options.segmenter", "no/ck.pt")),
        ("evaluate: segmenter checkpoint missing", evaluate_main,
         ["--config", str(TINY_VOL), "--out", str(tmp / "ev3"), "--segmenter", "medsam2:no/such.pt"],
         ("--segmenter", "cannot build")),
        ("check: semantic scorer folder missing", train_main,
         ["check", "--config", str(TINY), "--set", "grpo.reward_options.semantic_scorer=small:no/clip"],
         ("semantic_scorer", "does not exist")),
        ("check: segmenter checkpoint missing", train_main,
         ["check", "--config", str(TINY_VOL), "--set", "grpo.reward_options.segmenter=medsam2:no/ck.pt"],
         ("segmenter", "does not exist")),
        ("check: init_from folder missing", train_main,
         ["check", "--config", str(TINY), "--set", "grpo.init_from=no/model"], ("grpo.init_from",)),
        ("check: real data root missing", train_main,
         ["check", "--config", str(REPO / "configs/medground/full.yaml"), "--set", "data.root=no/data"],
         ("data.root", "does not exist")),
    ]
    probes = []
    for name, main, argv, needles in cases:
        with mock.patch.object(datasets, "load_records", no_data):
            rc, out, err, tb = call(main, argv)
        outcome, detail = classify_error(rc, err, tb, needles)
        probes.append({"name": name, "kind": "fail_early", "outcome": outcome, "detail": detail})
    return probes


def parser_probes() -> list[dict]:
    from medlib.adversarial import PARSERS, adversarial_completions, non_model_rewards
    from medlib.parsing import clear_parse_caches, parse_medvol
    from medlib.rewards._common import clear_step_memos

    probes = []
    text = "<think>t</think><answer><slice 3> [" + "1" * 16000 + "</answer>"
    clear_parse_caches()
    t0 = time.perf_counter()
    ans = parse_medvol(text)
    dt = time.perf_counter() - t0
    ok = dt < 1 and ans.key_slice == 3 and ans.boxes is None and not ans.format_ok
    probes.append({"name": "parse_medvol on <slice 3> [ + 16000 digits", "kind": "parser",
                   "outcome": "correct" if ok else "silent_wrong",
                   "detail": f"{dt:.4f} s; key_slice {ans.key_slice}, boxes {ans.boxes}, reason {ans.reason!r}"})
    texts = adversarial_completions(1_000_000)
    functions = {f"parser {k}": v for k, v in PARSERS.items()} | {f"reward {k}": v for k, v in non_model_rewards().items()}
    for name, fn in functions.items():
        worst, shape, tb = 0.0, "", None
        for s, t in texts.items():
            clear_parse_caches()
            clear_step_memos()
            t0 = time.perf_counter()
            try:
                fn(t)
            except Exception:  # noqa: BLE001
                tb = traceback.format_exc().strip().splitlines()[-1]
                break
            if (d := time.perf_counter() - t0) > worst:
                worst, shape = d, s
        outcome = "traceback" if tb else ("correct" if worst < 1 else "silent_wrong")
        probes.append({"name": f"{name} on {len(texts)} adversarial 1 MB completions", "kind": "parser",
                       "outcome": outcome, "detail": tb or f"slowest {worst:.3f} s on {shape} (goal < 1 s)"})
    return probes


def main() -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        probes = override_probes(tmp) + config_probes(tmp) + edge_probes(tmp) + fail_early_probes(tmp) + parser_probes()
        for p in probes:  # no paths of this machine in a results file
            p["detail"] = p["detail"].replace(str(tmp), "<tmp>").replace(str(REPO), "<repo>")
    counts = {"tried": len(probes)} | {o: sum(p["outcome"] == o for p in probes) for o in OUTCOMES}
    out = {"probes": probes, "counts": counts, "command": "python benchmarks/probe_faults_inputs.py",
           "seconds": round(time.perf_counter() - t0, 1)}
    path = results_dir("benchmarks") / "faults_inputs.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(counts))
    for p in probes:
        if p["outcome"] not in ("clear_error", "correct"):
            print(f"{p['outcome']}: {p['name']}: {p['detail']}")
    return out


if __name__ == "__main__":
    main()
