"""benchmarks/soak_ha.py: the coordinator's soak test run for a given length."""

from __future__ import annotations

from typing import Any

from .conftest import load_benchmark


def figures(**values: Any) -> dict[str, Any]:
    invariants = {
        "unhandled_exceptions": 0,
        "double_bookings": 0,
        "lost_bookings": 0,
        "rate_limited": 1,
        "limiter_changes": 2,
        "fresh_looks": 40,
        "late_fresh_looks": 0,
        "loop_stalls": 0,
        "memory_growth_mb": 3.5,
        "integration_objects_growth": 0,
        "integration_objects_per_setup": 42,
    }
    invariants.update(values)
    return {"invariants": invariants}


def test_invariants_hold_within_their_limits() -> None:
    soak_ha = load_benchmark("soak_ha")
    checked = soak_ha.invariants(figures())
    assert all(entry["ok"] for entry in checked.values())
    assert checked["rate_limited_per_limiter_change"] == {
        "value": 1,
        "limit": 2,
        "ok": True,
    }


def test_each_broken_invariant_is_named() -> None:
    soak_ha = load_benchmark("soak_ha")
    broken = {
        "double_bookings": 1,
        "lost_bookings": 2,
        "late_fresh_looks": 1,
        "loop_stalls": 3,
        "unhandled_exceptions": 1,
        "rate_limited": 3,
        "memory_growth_mb": 10.0,
        "integration_objects_growth": 42,
    }
    for name, value in broken.items():
        checked = soak_ha.invariants(figures(**{name: value}))
        failing = {key for key, entry in checked.items() if not entry["ok"]}
        expected = {
            "rate_limited": "rate_limited_per_limiter_change",
        }.get(name, name)
        assert failing == {expected}, name


def test_a_short_run_reports_its_figures() -> None:
    soak_ha = load_benchmark("soak_ha")
    result = soak_ha.run_ha(days=0.2, seed=1)
    assert result["days"] == 0.2
    assert result["seed"] == 1
    assert set(result["invariants"]) == {
        "unhandled_exceptions",
        "double_bookings",
        "lost_bookings",
        "late_fresh_looks",
        "loop_stalls",
        "rate_limited_per_limiter_change",
        "memory_growth_mb",
        "integration_objects_growth",
    }
    assert result["invariants"]["memory_growth_mb"]["value"] is None  # one day
    assert result["invariants"]["integration_objects_growth"]["value"] is None
    assert result["invariants"]["integration_objects_growth"]["limit"] > 0
    assert sum(result["faults"].values()) >= 1
    assert result["pytest_exit"] == 0
    assert result["ok"] is True


def test_a_failed_run_without_figures_says_so(monkeypatch: Any) -> None:
    soak_ha = load_benchmark("soak_ha")
    monkeypatch.setattr(soak_ha, "TEST", "tests/benchmarks/no_such_test.py")
    result = soak_ha.run_ha(days=0.1, seed=1)
    assert result["ok"] is False
    assert result["pytest_exit"] != 0
    assert result["output"]
