"""The README's examples run, against the simulator."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

from mta_client.simulator import Simulator
from tests.cli.conftest import SimulatorThread

ROOT = Path(__file__).parents[2]


def run(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_find_slots_example(served: SimulatorThread) -> None:
    import os  # noqa: PLC0415

    result = run(
        [str(ROOT / "examples/find_slots.py")],
        {**os.environ, "MTA_BASE_URL": served.base_url},
    )
    assert result.returncode == 0, result.stderr
    assert "bookable days: ['" in result.stdout
    assert re.search(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\+00:00 Bürgerbüro ", result.stdout, re.MULTILINE
    )


def test_book_example_books_and_needs_explicit_url(
    served: SimulatorThread, sim: Simulator
) -> None:
    result = run(
        [
            str(ROOT / "examples/book.py"),
            served.base_url,
            "Huber",
            "anna.huber@example.org",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "pre-confirmed" in result.stdout
    assert sim.stats.preconfirmed_by_email["anna.huber@example.org"] == 1
    assert run([str(ROOT / "examples/book.py")]).returncode == 1  # usage, nothing sent


def test_readme_shows_the_example_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / "examples/find_slots.py").read_text(encoding="utf-8")
    body = example.split('"""', 2)[2].strip()
    assert body in readme
