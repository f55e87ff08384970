"""The house stays in order (issue 16): no function of the source is over 80 lines, and no import cycle.

A function's length is ``end_lineno - lineno + 1`` (its signature and docstring included; a nested function counts
in its parent too). Imports are read at module and function level; those under ``if TYPE_CHECKING:`` are left out
(they never run, and annotations may name a module that imports this one).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import meshbridge

SOURCE = Path(meshbridge.__file__).parent
LONGEST = 80
"""Lines a function may have (STYLE: functions under 80 lines)."""


def long_functions(root: Path, limit: int = LONGEST) -> list[str]:
    """``path:line name (N lines)`` of each function under ``root`` longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports of a module that run: every one but those under ``if TYPE_CHECKING:``."""
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only:
            yield node


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports (``from pkg import submodule`` is the submodule)."""
    paths = {_module_name(root, p): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in paths]
                targets = submodules or [base]
            graph[name] |= {t for t in targets if t in paths and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_function_of_the_source_is_over_80_lines() -> None:
    assert long_functions(SOURCE) == [], (
        "split these by responsibility into named helpers (STYLE: functions under 80 lines)"
    )


def test_a_function_over_80_lines_is_named(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    (tmp_path / "fits.py").write_text(f"def fits():\n{body}")  # 80 lines
    (tmp_path / "long.py").write_text(f"def outer():\n{body}    def inner():\n        pass\n")  # 82, inner counted
    assert long_functions(tmp_path) == ["long.py:1 outer (82 lines)"]


def test_the_source_has_no_import_cycle() -> None:
    assert cycles(import_graph(SOURCE)) == [], "move the piece both modules need down into a module of its own"


def test_an_import_cycle_is_found_even_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\nA = 1\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n    return a.A\nB = 2\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n")
    (pkg / "d.py").write_text("from .a import A\n")  # a relative import, no cycle
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]
    (pkg / "b.py").write_text("B = 2\n")  # the twin: nothing imports back
    assert cycles(import_graph(pkg)) == []
