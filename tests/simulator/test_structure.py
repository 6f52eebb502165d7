"""The simulator's module structure: no import cycles, no use of the client's tables."""

from __future__ import annotations

import ast
from pathlib import Path

import mta_client.simulator
from mta_client.simulator import Simulator, SimulatorServer, create_app

PACKAGE = "mta_client.simulator"
ROOT = Path(mta_client.simulator.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules a file imports, type-checking-only imports included."""
    module = f"{PACKAGE}.{path.stem}" if path.stem != "__init__" else PACKAGE
    package = PACKAGE
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from . import x` / `from mta_client import exceptions` name modules.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {
        f"{PACKAGE}.{p.stem}": p for p in ROOT.glob("*.py") if p.stem != "__init__"
    }
    return {name: _imports(path) & set(modules) for name, path in modules.items()}


def test_no_import_cycles_in_the_simulator() -> None:
    graph = _graph()
    assert {"mta_client.simulator.app", "mta_client.simulator.booking"} <= set(graph)
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < len(graph):
                visit(nxt, [*path, nxt])

    for start in graph:
        visit(start, [start])
    assert cycles == []


def test_the_simulator_state_does_not_import_the_http_layer() -> None:
    graph = _graph()
    for module in ("simulator", "booking"):
        assert f"{PACKAGE}.app" not in graph[f"{PACKAGE}.{module}"]
        assert f"{PACKAGE}.server" not in graph[f"{PACKAGE}.{module}"]


def test_the_simulator_is_an_independent_witness() -> None:
    # Nothing in the simulator reads the client's error table (or the package
    # root that re-exports it): its own table is what the client is tested on.
    for path in ROOT.glob("*.py"):
        imported = _imports(path)
        assert "mta_client.exceptions" not in imported, path.name
        assert "mta_client" not in imported, path.name


def test_no_dead_app_property() -> None:
    assert not hasattr(Simulator, "app")
    assert not hasattr(Simulator, "create_app")
    app = create_app(Simulator(scenario="quiet"))
    assert app.router.routes()
    assert SimulatorServer(Simulator(scenario="quiet")).base_url.endswith(
        "/buergeransicht/api/citizen/"
    )
