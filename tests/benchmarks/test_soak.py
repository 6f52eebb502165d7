"""benchmarks/soak.py: one simulated day of faults and kills; every invariant holds."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from .conftest import load_benchmark

INVARIANTS = {
    "unhandled_exceptions",
    "double_bookings",
    "lost_bookings",
    "stale_bookings",
    "orphan_reservations",
    "rate_limited_per_limiter_change_max",
    "fresh_within_two_cycles_late",
    "memory_growth_mb",
    "loop_stalls_over_100ms",
}


@pytest.fixture(name="soak", scope="module")
def soak_fixture() -> ModuleType:
    return load_benchmark("soak")


def test_a_day_of_faults(soak: ModuleType) -> None:
    """One simulated day (under a minute of real time): every invariant holds."""
    day: dict[str, Any] = soak.engine(days=1.0, seed=1, watches=8)
    check_invariants(day)
    check_rough(day, soak)


def check_invariants(day: dict[str, Any]) -> None:
    invariants = day["invariants"]
    assert set(invariants) == INVARIANTS
    failed = {name: v for name, v in invariants.items() if not v["ok"]}
    assert not failed, json.dumps({"failed": failed, "details": day["details"]})
    assert invariants["unhandled_exceptions"]["value"] == 0
    assert invariants["double_bookings"]["value"] == 0
    assert invariants["lost_bookings"]["value"] == 0
    assert invariants["stale_bookings"]["value"] == 0
    assert invariants["rate_limited_per_limiter_change_max"]["value"] <= 1
    assert invariants["fresh_within_two_cycles_late"]["value"] == 0
    assert invariants["memory_growth_mb"]["value"] < 10
    assert invariants["loop_stalls_over_100ms"]["value"] == 0


def check_rough(day: dict[str, Any], soak: ModuleType) -> None:
    """Faults of many kinds hit, the process died and came back, people booked."""
    assert sum(day["faults"].values()) >= 10
    assert set(day["faults"]) <= set(soak.FAULT_PLAN)
    assert sum(day["faults_hit"].values()) > 0
    assert day["kills"]["random"] + day["kills"]["mid_booking"] >= 2
    assert day["restarts"] >= 2
    bookings = day["bookings"]
    assert bookings["booked"] >= 3
    assert bookings["retired_watches"] >= 1
    # Lapsed activations free their watch, which books again; the engine
    # learns a lapse (and a link used in a browser) from the city.
    assert bookings["lapsed"] >= 1
    assert bookings["booked_again_after_lapse"] >= 1
    activations = day["details"]["activations"]
    assert activations["learnt"] >= 1
    assert activations["stale"] == []
    assert day["details"]["freshness"]["measured"] > 0
    assert day["details"]["loop"]["callbacks"] > 1000


def test_main_prints_one_json_object(
    soak: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line's Home Assistant part: the coordinator's soak test."""
    assert (
        soak.main(["--days", "0.05", "--watches", "3", "--part", "ha", "--json"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["ha"]["test"] == "tests/components/munich_termin/test_soak.py"
    assert result["ha"]["days"] == 0.05
    assert result["ha"]["invariants"]["double_bookings"]["ok"] is True
    assert "engine" not in result
    assert result["ok"] is True
