"""benchmarks/watch.py: a short stretch, every key of its JSON, sane values."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import pytest

from mta_client import ContactDetails, MTAClient
from mta_client.booking import book_slot
from mta_client.simulator import Simulator, run_virtual
from mta_client.watch import Watch

if TYPE_CHECKING:
    from mta_client.clock import Clock as ClockProtocol

SIDE_KEYS = {
    "requests_per_day",
    "rate_limited",
    "captcha_requests_per_day",
    "detect_s",
    "missed",
    "booked",
    "double_booked",
}
DETECT_KEYS = {
    "window_median",
    "other_median",
    "all_median",
    "p95",
    "relevant",
    "window_relevant",
    "other_relevant",
}


def run(bench: ModuleType, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert bench.main([*args, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def check_detect(detect: dict[str, Any]) -> None:
    assert set(detect) == DETECT_KEYS
    assert detect["relevant"] == detect["window_relevant"] + detect["other_relevant"]
    for key in ("window_median", "other_median", "all_median", "p95"):
        assert detect[key] is None or 0 <= detect[key] < 86_400
    if detect["all_median"] is not None and detect["p95"] is not None:
        assert detect["all_median"] <= detect["p95"]


def check_result(result: dict[str, Any], *, watches: int, mix: str) -> None:
    assert set(result) == {
        "params",
        "ours",
        "peer",
        "best",
        "ratios",
        "targets",
        "reserve_after_seen_ms_median",
    }
    assert result["params"]["watches"] == watches
    assert result["params"]["mix"] == mix
    for side in ("ours", "peer"):
        summary = result[side]
        assert set(summary) == SIDE_KEYS
        assert summary["requests_per_day"] > 0
        assert summary["captcha_requests_per_day"] < summary["requests_per_day"]
        assert summary["rate_limited"] >= 0
        assert summary["booked"] >= 0
        assert summary["double_booked"] == 0
        check_detect(summary["detect_s"])
        missed = summary["missed"]
        assert missed is None or 0.0 <= missed <= 1.0
    best = result["best"]
    assert set(best) == {"requests_per_day", "detect_s", "missed", "schedule"}
    check_detect(best["detect_s"])
    schedule = best["schedule"]
    assert schedule["requests_per_look"] == result["params"]["groups"]
    assert schedule["requests_per_look"] * schedule["looks_per_burst"] <= 56
    assert schedule["silence_s"] == 60.0
    assert set(result["ratios"]) == {
        "requests",
        "all_median",
        "window_median",
        "missed",
    }
    assert set(result["targets"]) == {
        "requests_ratio",
        "all_median_ratio",
        "window_median_s",
        "missed_vs_peer",
    }
    for target in result["targets"].values():
        assert set(target) == {"value", "target", "met"}
        assert isinstance(target["met"], bool)
    # all three are measured over the same relevant slots (the reference run)
    relevant = best["detect_s"]["relevant"]
    assert result["ours"]["detect_s"]["relevant"] == relevant
    assert result["peer"]["detect_s"]["relevant"] == relevant
    assert best["requests_per_day"] > 0


def test_same_services_a_short_stretch(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Monday 0:00-8:24: the overnight and the same-day release windows
    result = run(bench, capsys, "--days", "0.35", "--watches", "5", "--seed", "1")
    check_result(result, watches=5, mix="same")
    assert result["params"] == {
        "days": 0.35,
        "watches": 5,
        "mix": "same",
        "visibility": "delayed",
        "seed": 1,
        "groups": 1,
    }
    assert result["ours"]["detect_s"]["relevant"] > 0


def test_distinct_services_random_visibility(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(
        bench,
        capsys,
        "--days",
        "0.05",
        "--watches",
        "3",
        "--mix",
        "distinct",
        "--visibility",
        "random",
        "--seed",
        "2",
    )
    check_result(result, watches=3, mix="distinct")
    assert result["params"]["groups"] == 3


def test_mixes(bench: ModuleType) -> None:
    def groups(mix: str, count: int) -> int:
        return len({w.service_key for w in bench.make_watches(count, mix)})

    assert groups("same", 20) == 1
    assert groups("distinct", 20) == 20
    assert groups("mixed", 20) == 11
    assert groups("mixed", 5) == 3
    catalogue = Simulator().catalogue
    for services in bench.SERVICE_SETS:
        for office in bench.BUERGERBUEROS:
            for service in services:
                assert catalogue.relation(office, service.service_id) is not None


def test_relevant_slots_are_new_earliest_fitting_ones(bench: ModuleType) -> None:
    class Clock:
        now = dt.datetime(2026, 11, 23, 10, tzinfo=bench.BERLIN).timestamp()

        def time(self) -> float:
            return self.now

    clock = Clock()
    # Only time() is read by the simulator; the local clock has no monotonic()/sleep().
    sim = Simulator(clock=cast("ClockProtocol", clock), scenario="quiet")
    watch = Watch(
        id="w", services=list(bench.WOHNSITZ), office_ids=[102522], within_days=14
    )
    truth = bench.Truth(sim, [watch])
    sim.sync()

    def slot(day: int, hour: int) -> int:
        return int(dt.datetime(2026, 11, day, hour, tzinfo=bench.BERLIN).timestamp())

    sim.release_slot(102522, slot(26, 10), minutes=15)
    assert [(r.start, r.appeared) for r in truth.relevant] == [
        (slot(26, 10), clock.now)
    ]
    sim.release_slot(102522, slot(27, 10), minutes=15)  # later: not relevant
    sim.release_slot(102522, slot(25, 10), minutes=10)  # too short for 15 min
    sim.release_slot(10489, slot(24, 10), minutes=15)  # another office
    sim.release_slot(102522, slot(30, 10) + 86_400 * 14, minutes=15)  # outside
    assert len(truth.relevant) == 1
    clock.now += 60
    sim.release_slot(102522, slot(25, 9), minutes=15)  # earlier: relevant
    assert [r.start for r in truth.relevant] == [slot(26, 10), slot(25, 9)]
    clock.now += 30
    sim.take_slot(102522, slot(25, 9) + 300)  # someone takes a unit of it
    first, second = truth.relevant
    assert second.vanished == clock.now
    assert first.vanished == first.start  # still free: until it starts
    assert not math.isinf(first.vanished)


def test_markdown_table(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(bench, capsys, "--days", "0.02", "--watches", "2")
    table = bench.markdown({"cells": [result, result]})
    lines = table.splitlines()
    assert lines[0].startswith("| watches | mix | visibility |")
    assert len(lines) == 3
    assert lines[2].startswith("| 2 | same | delayed |")


def test_rejects_nonsense(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--days", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--mix", "all"])


def test_reference_is_the_same_week_as_the_sides(bench: ModuleType) -> None:
    people = bench.make_watches(3, "same")
    a = bench.reference(0.35, 1, "delayed", people)
    b = bench.reference(0.35, 1, "delayed", people)
    assert a.relevant
    assert [(r.watch_id, r.start, r.appeared) for r in a.relevant] == [
        (r.watch_id, r.start, r.appeared) for r in b.relevant
    ]
    for entry in a.relevant:
        assert entry.appeared <= entry.vanished <= entry.start


def test_double_booked_counts_appointments_held_at_once(bench: ModuleType) -> None:
    person = ContactDetails(family_name="Twice", email="twice@example.org")
    other = ContactDetails(family_name="Once", email="once@example.org")

    async def side(client: MTAClient, run: Any) -> None:
        office = bench.BUERGERBUEROS[0]
        day = dt.datetime(2026, 12, 1, 9, tzinfo=bench.BERLIN)
        starts = [day + dt.timedelta(hours=hour) for hour in range(3)]
        for start in starts:
            run.sim.release_slot(office, start, minutes=15)
        for start, contact in zip(starts, (person, other, person), strict=True):
            await book_slot(
                client,
                office_id=office,
                services=list(bench.WOHNSITZ),
                slot=start,
                contact=contact,
            )

    watches = bench.make_watches(1, "same")
    result = run_virtual(
        bench.simulate(0.01, 1, "cron", watches, side), start=bench.START
    )
    # The same e-mail pre-confirmed twice while the first is still held.
    assert result.double_booked == {"twice@example.org"}


def test_a_lapsed_activation_is_no_double_booking(bench: ModuleType) -> None:
    person = ContactDetails(family_name="Later", email="later@example.org")

    async def side(client: MTAClient, run: Any) -> None:
        office = bench.BUERGERBUEROS[0]
        day = dt.datetime(2026, 12, 1, 9, tzinfo=bench.BERLIN)
        for hour in range(2):
            start = day + dt.timedelta(hours=hour)
            run.sim.release_slot(office, start, minutes=15)
            await book_slot(
                client,
                office_id=office,
                services=list(bench.WOHNSITZ),
                slot=start,
                contact=person,
            )
            await asyncio.sleep(3 * 3600)  # nobody opens the activation mail

    result = run_virtual(
        bench.simulate(0.3, 1, "cron", bench.make_watches(1, "same"), side),
        start=bench.START,
    )
    assert sum(result.sim.stats.preconfirmed_by_email.values()) == 2
    assert result.double_booked == set()
