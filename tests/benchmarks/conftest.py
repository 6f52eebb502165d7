"""The benchmarks run the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import sys
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (not a package) as a module."""
    module_name = f"_benchmark_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, ROOT / "benchmarks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """The simulator serves real HTTP on 127.0.0.1 (connections stay local)."""


@pytest.fixture(name="bench", scope="session")
def bench_fixture() -> ModuleType:
    return load_benchmark("watch")
