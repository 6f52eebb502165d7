"""Scenarios, releases and competitors."""

from __future__ import annotations

import datetime as dt

import pytest

from mta_client.simulator import (
    Competition,
    MunichWeekday,
    Simulator,
    get_scenario,
    scenario_names,
)

from .conftest import BERLIN, SimClock, at

OFFICE = 102522


def test_registry() -> None:
    assert {"munich-weekday", "quiet", "fixed"} <= set(scenario_names())
    assert isinstance(get_scenario("munich-weekday"), MunichWeekday)
    with pytest.raises(KeyError):
        get_scenario("nope")


def test_default_is_munich_weekday() -> None:
    assert Simulator().scenario.name == "munich-weekday"


def run_day(seed: int) -> Simulator:
    clock = SimClock(at("2026-11-23", 0, 1))
    sim = Simulator(clock=clock, seed=seed)
    sim.sync()
    for _ in range(24 * 6):
        clock.advance(600)
        sim.sync()
    return sim


def test_munich_weekday_follows_release_windows() -> None:
    sim = run_day(1)
    releases = [a for a in sim.stats.slot_appearances if a.source == "release"]
    assert releases
    for appearance in releases:
        local = dt.datetime.fromtimestamp(appearance.appeared_at, BERLIN)
        slot_day = dt.datetime.fromtimestamp(appearance.start, BERLIN).date()
        lead = (slot_day - local.date()).days
        if appearance.office_id == OFFICE:
            if lead == 0:
                assert 7 <= local.hour < 8
            elif lead == 42:
                assert local.hour < 5
            else:
                assert 9 <= local.hour < 11
                assert 7 <= lead <= 11
    cancellations = [
        a for a in sim.stats.slot_appearances if a.source == "cancellation"
    ]
    assert cancellations
    assert any(a.appeared_at >= at("2026-11-23", 12) for a in cancellations)
    # competitors take most released slots within minutes
    assert sim.stats.competitor_takes
    delays = [t.taken_at - t.appeared_at for t in sim.stats.competitor_takes]
    assert min(delays) >= 2.0
    assert sorted(delays)[len(delays) // 2] < 300


def test_deterministic_by_seed() -> None:
    a, b, c = run_day(7), run_day(7), run_day(8)
    assert a.stats.slot_appearances == b.stats.slot_appearances
    assert a.stats.competitor_takes == b.stats.competitor_takes
    assert a.stats.slot_appearances != c.stats.slot_appearances


def test_same_result_however_often_synced() -> None:
    clock = SimClock(at("2026-11-23", 0, 1))
    sim = Simulator(clock=clock, seed=7)
    sim.sync()
    clock.now = at("2026-11-24", 0, 1)
    sim.sync()
    assert sim.stats.slot_appearances == run_day(7).stats.slot_appearances


def test_manual_release_and_competitor() -> None:
    clock = SimClock()
    sim = Simulator(
        clock=clock,
        scenario=MunichWeekday(
            competition=Competition(probability=1.0, median_delay=30, sigma=0.01)
        ),
    )
    slot = at("2026-11-25", 11)
    sim.release_slot(OFFICE, slot, minutes=15, compete=True)
    assert slot in sim.bookable_times(OFFICE, [1063441])
    appearance = sim.stats.slot_appearances[-1]
    assert (appearance.office_id, appearance.start, appearance.units) == (
        OFFICE,
        slot,
        3,
    )
    assert appearance.appeared_at == clock.now
    assert appearance.source == "manual"
    clock.advance(29)
    assert slot in sim.bookable_times(OFFICE, [1063441])
    clock.advance(2)
    assert slot not in sim.bookable_times(OFFICE, [1063441])
    take = sim.stats.competitor_takes[-1]
    assert take.start == slot
    assert take.taken_at - take.appeared_at == pytest.approx(30, abs=1)


def test_scheduled_release_and_take() -> None:
    clock = SimClock()
    sim = Simulator(clock=clock, scenario="quiet")
    slot = at("2026-11-25", 11)
    sim.release_slot(OFFICE, slot, at=clock.now + 100)
    assert sim.free_slots(OFFICE) == []
    clock.advance(100)
    assert sim.free_slots(OFFICE) == [slot]
    assert sim.take_slot(OFFICE, slot) == 1
    assert sim.free_slots(OFFICE) == []


def test_quiet_has_nothing() -> None:
    clock = SimClock(at("2026-11-23", 0, 1))
    sim = Simulator(clock=clock, scenario="quiet")
    clock.advance(86_400)
    sim.sync()
    assert not sim.stats.slot_appearances
    assert all(not sim.free_slots(o) for o in sim.catalogue.offices)
