"""The package's import graph has no cycle, and the command line names every command.

The graph's nodes are the modules of ``lightning_nas`` (packages by their ``__init__``); an edge
runs from a module to each module of the package it imports, at module level or inside a function
(``import a.b``, ``from a import b`` where ``b`` is a module, ``from a.b import name``, relative
forms). Importing a submodule also runs its parent packages' ``__init__``; those implicit edges are
left out, or every package that re-exports its modules would be a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.runs import REPO

PACKAGE = REPO / "lightning_nas"


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:  # ``import a.b.C`` style names: the longest module
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a list of nodes (first == last), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "lightning_nas.evaluation.evaluator" in graph["lightning_nas.evaluation.service"]  # from a.b import name
    assert "lightning_nas.cli.search" in graph["lightning_nas.cli"]  # from package import module
    assert "lightning_nas.supernet.bn_modes.base" in graph["lightning_nas.supernet.bn_modes.track"]


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_among_the_package_modules():
    cycle = find_cycle(import_graph())
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_help_lists_every_command(capsys):
    from lightning_nas.cli import COMMANDS, main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert {"fit", "search", "study"} <= COMMANDS.keys()
    assert "{" + ",".join(COMMANDS) + "}" in text and all(f"{name} " in text for name in COMMANDS)


@pytest.mark.slow
def test_console_command_help_lists_fit_and_search():
    result = subprocess.run([sys.executable, "-m", "lightning_nas", "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "fit" in result.stdout and "search" in result.stdout, result.stderr
