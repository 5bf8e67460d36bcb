"""Imports inside medlib run one way: no module imports a module that (directly or through
others) imports it back, neither at module level nor lazily inside a function (a lazy import
hides a circle from Python, not from a reader). Only ``if TYPE_CHECKING:`` blocks do not count.
Every module also imports on its own."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "medlib"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(node: ast.AST):
    """Every import statement under ``node``, at any depth, except under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _imports(other) if not isinstance(other, ast.Import | ast.ImportFrom) else [other]
        else:
            yield from _imports(child)


def module_imports(name: str, path: Path) -> set[str]:
    """The medlib modules ``name`` imports (anywhere in the file)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        out |= {t for t in targets if t in MODULES and t != name}
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve_to_medlib_modules():
    graph = {n: module_imports(n, p) for n, p in MODULES.items()}
    assert "medlib.semantic.scorer" in graph["medlib.semantic"]
    assert "medlib.geometry" in graph["medlib.semantic.scorer"]


def test_no_import_cycle_among_medlib_modules():
    graph = {n: module_imports(n, p) for n, p in MODULES.items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_rewards_ask_the_model_packages_not_the_registry():
    """The registry only builds reward sets: no reward module imports it, and nothing in
    medlib.semantic or medlib.segment imports the rewards."""
    for n, p in MODULES.items():
        text = p.read_text(encoding="utf-8")
        if n.startswith("medlib.rewards.") and n != "medlib.rewards.registry":
            assert "from .registry import" not in text, f"{n} imports the registry"
        if n.startswith(("medlib.semantic", "medlib.segment")):
            assert "rewards" not in {t.split(".")[1] for t in module_imports(n, p) if t.count(".") >= 1}, n


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith("__main__")))
def test_every_module_imports_on_its_own(name):
    importlib.import_module(name)
