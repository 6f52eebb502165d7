"""The soak's Home Assistant part: the coordinator's soak test for many days.

Home Assistant's test harness is pytest-based, so ``benchmarks/soak.py``
runs ``tests/components/munich_termin/test_soak.py`` in a pytest process of
its own with ``MTA_SOAK_DAYS`` set, and reads the figures the test writes to
``MTA_SOAK_REPORT``. The test asserts every invariant as well; a failed
assertion after the figures were written still returns them (``ok`` tells).

Besides the RSS (``memory_growth_mb``, after the harness's own records are
forgotten, ``gc.collect()`` and ``malloc_trim(0)``), the integration's own
growth is checked apart: its objects at the end against the first day's
(``integration_objects_growth``), fewer than one set-up of the entry makes.
``details.memory`` has the daily samples (RSS, the C heap's bytes in use,
Python's blocks, live objects by whose they are) and the types that grew.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/components/munich_termin/test_soak.py"

LIMITS: dict[str, float] = {
    "unhandled_exceptions": 0,
    "double_bookings": 0,
    "lost_bookings": 0,
    "late_fresh_looks": 0,
    "loop_stalls": 0,
}
"""Each invariant's limit (at most); 429s and memory are checked apart."""

MEMORY_GROWTH_MB = 10.0
"""RSS growth from the end of day 1 to the end (less than)."""


def invariants(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The test's figures as ``{name: {"value", "limit", "ok"}}``."""
    values = figures["invariants"]
    result = {
        name: {"value": values[name], "limit": limit, "ok": values[name] <= limit}
        for name, limit in LIMITS.items()
    }
    changes = values["limiter_changes"]
    result["rate_limited_per_limiter_change"] = {
        "value": values["rate_limited"],
        "limit": changes,
        "ok": values["rate_limited"] <= changes,
    }
    growth = values["memory_growth_mb"]
    result["memory_growth_mb"] = {
        "value": growth,
        "limit": MEMORY_GROWTH_MB,
        "ok": growth is None or growth < MEMORY_GROWTH_MB,
    }
    # The integration's own objects (its modules' classes): fewer more at
    # the end than one set-up of the entry makes, so no reload's outlive it.
    kept = values.get("integration_objects_growth")
    per_setup = values.get("integration_objects_per_setup", 0)
    result["integration_objects_growth"] = {
        "value": kept,
        "limit": per_setup,
        "ok": kept is None or kept < per_setup,
    }
    return result


def run_ha(*, days: float, seed: int) -> dict[str, Any]:
    """Run the coordinator's soak for ``days``; return its figures."""
    with tempfile.TemporaryDirectory(prefix="mta-soak-ha-") as tmp:
        report = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "MTA_SOAK_DAYS": str(days),
            "MTA_SOAK_REPORT": str(report),
            "MTA_SOAK_SEED": str(seed),
        }
        done = subprocess.run(  # noqa: S603 - our own interpreter and test
            [
                sys.executable,
                "-m",
                "pytest",
                TEST,
                "-q",
                "-p",
                "no:cacheprovider",
                "--timeout=0",
                # pytest's log capture keeps every record of the run: a
                # month of them is memory growth that is not ours.
                "-p",
                "no:logging",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if not report.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
            return {
                "test": TEST,
                "ok": False,
                "pytest_exit": done.returncode,
                "output": tail,
            }
        figures: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    checked = invariants(figures)
    return {
        "test": TEST,
        **figures,
        "invariants": checked,
        "pytest_exit": done.returncode,
        "ok": done.returncode == 0 and all(v["ok"] for v in checked.values()),
    }
