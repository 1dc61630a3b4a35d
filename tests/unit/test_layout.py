"""The layout's rules that import-linter does not check: no import circle anywhere (imports
inside functions and under TYPE_CHECKING count), one entry per phase, small files."""

from __future__ import annotations

import importlib
from pathlib import Path

import grimp

import mlwizard
from mlwizard.core import runner

SOURCE = Path(mlwizard.__file__).parent
MAX_LINES = 450


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_import_circle_anywhere() -> None:
    graph = grimp.build_graph("mlwizard")  # includes function-level and TYPE_CHECKING imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(name)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.c", imported="a.d")
    assert _cycles(graph) == [["a.b", "a.c"]]


def test_each_phase_is_a_package_with_one_entry_function() -> None:
    for spec in runner.PHASES:
        package = SOURCE / "core" / spec.name
        assert (package / "__init__.py").is_file() and (package / "phase.py").is_file()
        assert spec.module == f"mlwizard.core.{spec.name}.phase"
        assert callable(importlib.import_module(spec.module).run)


def test_no_source_file_is_longer_than_the_limit() -> None:
    long = {
        str(path.relative_to(SOURCE)): n
        for path in SOURCE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
