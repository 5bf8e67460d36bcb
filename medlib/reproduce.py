"""Execute the numbered notebooks in order with papermill (``make reproduce``).

* Notebooks are ``notebooks/NN_name.ipynb``, run in name order with the profile's parameters
  (``configs/profiles/<profile>.yaml``) injected into the cell tagged ``parameters``.
* Executed copies go to ``build/notebooks/<profile>/``; committed notebooks stay clean.
* A notebook is skipped when nothing it depends on changed since its last successful run
  (its own text, the parameters, the ``medlib`` sources, the files under ``results/`` it
  could read), unless ``force``.
* The batch stops at the first failing notebook and names it with its error.
* The notebook kernels run with :data:`MALLOC_ENV` (glibc keeps PyTorch's per-step buffers).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

#: glibc malloc settings for the notebook kernels, which inherit them from this process. PyTorch
#: on a CPU allocates and frees buffers of several MB at every step; by default glibc gives blocks
#: above a (dynamic) threshold back to the OS and the next step faults them in again. Keeping them
#: in the heap made a 30-step SFT run of the smoke model 1.26x faster on 2 cores (best of 3 fresh
#: processes, 36.9 s vs 29.4 s; minor page faults 6x fewer) with identical weights
#: (``python benchmarks/bench_malloc.py --repeats 3``, ``results/benchmarks/malloc.json``). Ignored by
#: other C libraries; a variable already set in the environment wins. The Makefile exports the same.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),  # glibc's largest allowed value
    "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30),
    "MALLOC_TOP_PAD_": str(2**30),
}


class NotebookFailed(RuntimeError):
    """A notebook of the batch raised; the message names it and its error."""


@dataclass
class NotebookRun:
    name: str
    status: str  # "ran", "skipped", "failed", "not run"
    seconds: float = 0.0
    error: str = ""


def list_notebooks(notebooks_dir: Path | None = None, only: list[str] | None = None) -> list[Path]:
    d = Path(notebooks_dir or REPO / "notebooks")
    nbs = sorted(p for p in d.glob("[0-9][0-9]_*.ipynb"))
    if only:
        nbs = [p for p in nbs if any(p.stem.startswith(o) or p.stem == o for o in only)]
        if not nbs:
            raise ValueError(f"no notebook matches {only} in {d}")
    return nbs


def load_profile(profile: str, configs_dir: Path | None = None) -> dict:
    """Parameters of a profile (``configs/profiles/<profile>.yaml``)."""
    path = Path(configs_dir or REPO / "configs" / "profiles") / f"{profile}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"unknown profile {profile!r}: no {path} (available: {', '.join(names)})")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping of notebook parameters")
    params.setdefault("PROFILE", profile)
    return params


def _tree_hash(paths: list[Path], h: hashlib._Hash) -> None:
    for p in sorted(paths):
        if p.is_file():
            h.update(str(p.relative_to(REPO)).encode())
            h.update(p.read_bytes())


def input_fingerprint(notebook: Path, params: dict) -> str:
    """Hash of everything a notebook's output depends on."""
    h = hashlib.blake2b(digest_size=16)
    h.update(notebook.read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    _tree_hash(list((REPO / "medlib").rglob("*.py")), h)
    _tree_hash(list((REPO / "configs").rglob("*.yaml")), h)
    # results written by earlier notebooks (tables and figures notebooks only read these)
    _tree_hash([p for p in (REPO / "results").rglob("*") if p.suffix in {".json", ".csv", ".jsonl"}], h)
    return h.hexdigest()


def run_batch(
    profile: str = "smoke",
    only: list[str] | None = None,
    force: bool = False,
    build_dir: Path | None = None,
    notebooks_dir: Path | None = None,
    extra_params: dict | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
) -> list[NotebookRun]:
    """Run the batch; raise :class:`NotebookFailed` at the first failure (after the summary)."""
    import papermill as pm

    params = load_profile(profile)
    params.update(extra_params or {})
    for k, v in MALLOC_ENV.items():
        os.environ.setdefault(k, v)
    out_dir = Path(build_dir or REPO / "build" / "notebooks" / profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamps_path = out_dir / "stamps.json"
    stamps = json.loads(stamps_path.read_text()) if stamps_path.exists() else {}
    nbs = list_notebooks(notebooks_dir, only)
    runs = [NotebookRun(nb.stem, "not run") for nb in nbs]
    failure: NotebookRun | None = None
    for i, (nb, run) in enumerate(zip(nbs, runs)):
        fp = input_fingerprint(nb, params)
        if not force and stamps.get(nb.name) == fp and (out_dir / nb.name).exists():
            run.status = "skipped"
            if progress:
                print(f"[{i + 1}/{len(nbs)}] {nb.stem}: unchanged, skipped", flush=True)
            continue
        if progress:
            print(f"[{i + 1}/{len(nbs)}] {nb.stem}: running ...", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(out_dir / nb.name),
                parameters=params,
                cwd=str(nb.parent),
                kernel_name=kernel_name,
                progress_bar=progress,
                log_output=False,
            )
        except Exception as e:  # noqa: BLE001 - papermill wraps the cell error
            run.status, run.seconds = "failed", time.perf_counter() - t0
            run.error = _short_error(e)
            failure = run
            break
        run.status, run.seconds = "ran", time.perf_counter() - t0
        stamps[nb.name] = input_fingerprint(nb, params)  # results may have changed
        stamps_path.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    if progress:
        print(summary_table(runs), flush=True)
    if failure is not None:
        raise NotebookFailed(
            f"notebook {failure.name} failed: {failure.error}\n"
            f"executed copy with the traceback: {out_dir / (failure.name + '.ipynb')}"
        )
    return runs


def _short_error(e: Exception) -> str:
    ename = getattr(e, "ename", type(e).__name__)
    evalue = getattr(e, "evalue", str(e))
    return f"{ename}: {str(evalue).strip().splitlines()[0] if str(evalue).strip() else ''}"


def summary_table(runs: list[NotebookRun]) -> str:
    w = max([8] + [len(r.name) for r in runs])
    lines = [f"{'notebook':<{w}}  {'status':<8}  {'seconds':>8}", f"{'-' * w}  {'-' * 8}  {'-' * 8}"]
    for r in runs:
        lines.append(f"{r.name:<{w}}  {r.status:<8}  {r.seconds:>8.1f}" + (f"  {r.error}" if r.error else ""))
    return "\n".join(lines)


def strip_notebook(path: Path) -> bool:
    """Remove outputs, execution counts and volatile metadata; True if the file changed."""
    nb = json.loads(path.read_text())
    before = json.dumps(nb, sort_keys=True)
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"] = []
            c["execution_count"] = None
        c.get("metadata", {}).pop("execution", None)
        c.get("metadata", {}).pop("papermill", None)
    for k in ("papermill", "widgets"):
        nb.get("metadata", {}).pop(k, None)
    if json.dumps(nb, sort_keys=True) == before:
        return False
    # the layout nbformat and jupytext write (sorted keys), so stripping and `make sync` agree
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return True
