"""Visibility models (when the cron's changes appear) and competitor cancellations."""

from __future__ import annotations

import datetime as dt
import random
import statistics

import pytest

from mta_client.simulator import (
    BULK_DELAY,
    NORMAL_DELAY,
    VISIBILITY_MODELS,
    Competition,
    CompetitorCancellations,
    MunichWeekday,
    Simulator,
    SlotChange,
    Visibility,
    cron_run,
)
from mta_client.simulator.server import serve

from .conftest import BERLIN, Api, SimClock, at

OFFICE = 102522
SERVICE = 1063441


def run_day(visibility: str, seed: int = 1, **options: object) -> Simulator:
    clock = SimClock(at("2026-11-23", 0, 1))
    sim = Simulator(clock=clock, seed=seed, visibility=visibility, **options)  # type: ignore[arg-type]
    sim.sync()
    for _ in range(24 * 6):
        clock.advance(600)
        sim.sync()
    return sim


def cron_sourced(sim: Simulator) -> list[float]:
    """Seconds after the full minute at which cron-made slots appeared."""
    return [
        a.appeared_at % 60
        for a in sim.stats.slot_appearances
        if a.source in {"release", "cancellation", "competitor-cancellation"}
    ]


def test_models_are_documented() -> None:
    assert set(VISIBILITY_MODELS) == {"cron", "delayed", "random"}
    with pytest.raises(ValueError, match="unknown visibility"):
        Simulator(visibility="soon")


def test_code_default_is_exact_minute() -> None:
    assert Simulator().visibility.model == "cron"


def test_cron_is_exactly_the_full_minute() -> None:
    offsets = cron_sourced(run_day("cron"))
    assert offsets
    assert set(offsets) == {0.0}


def test_delayed_is_seconds_after_the_minute_and_longer_in_bulk() -> None:
    sim = run_day("delayed")
    scenario = sim.scenario
    bulk: list[float] = []
    normal: list[float] = []
    for appearance in sim.stats.slot_appearances:
        if appearance.source not in {"release", "cancellation"}:
            continue
        tick = appearance.appeared_at // 60 * 60
        delay = appearance.appeared_at - tick
        assert NORMAL_DELAY.minimum <= delay <= 50.0
        (bulk if scenario.is_bulk(tick, BERLIN) else normal).append(delay)
    assert len(bulk) > 20
    assert len(normal) > 5
    assert statistics.median(bulk) > statistics.median(normal)


def test_delay_distributions() -> None:
    rng = random.Random(3)
    normal = [NORMAL_DELAY.draw(rng) for _ in range(4000)]
    bulk = [BULK_DELAY.draw(rng) for _ in range(4000)]
    assert statistics.median(normal) == pytest.approx(6.0, rel=0.08)
    assert statistics.median(bulk) == pytest.approx(15.0, rel=0.08)
    assert max(normal) <= 50.0
    assert max(bulk) == 50.0  # the long tail is capped
    assert min(normal) >= 1.0


def test_delayed_is_deterministic_per_seed_and_per_run() -> None:
    a, b, c = run_day("delayed", 5), run_day("delayed", 5), run_day("delayed", 6)
    assert a.stats.slot_appearances == b.stats.slot_appearances
    assert a.stats.slot_appearances != c.stats.slot_appearances
    model = Visibility("delayed", seed=5)
    tick = at("2026-11-23", 7, 30)
    # one draw per cron run and office: everything it frees appears together
    assert model.delay(tick, OFFICE, bulk=True, key=1) == model.delay(
        tick, OFFICE, bulk=True, key=2
    )


def test_random_spreads_over_the_minute() -> None:
    offsets = cron_sourced(run_day("random"))
    assert len(offsets) > 50
    assert min(offsets) < 10
    assert max(offsets) > 50
    assert 20 < statistics.median(offsets) < 40
    model = Visibility("random", seed=1)
    assert model.delay(60.0, OFFICE, bulk=False, key=1) != model.delay(
        60.0, OFFICE, bulk=False, key=2
    )


def test_cron_run() -> None:
    assert cron_run(120.0) == 120.0
    assert cron_run(120.5) == 180.0


async def test_reservation_expiry_waits_for_the_delayed_cron(
    make_sim, serve_sim
) -> None:
    sim = make_sim(visibility="delayed")
    api: Api = await serve_sim(sim)
    slot = at("2026-11-25", 9)
    sim.release_slot(OFFICE, slot, minutes=15)
    status, process = await api.reserve(OFFICE, SERVICE, slot)
    assert status == 200
    due = cron_run(sim.now() + 15 * 60)
    delay = sim.visibility.delay(due, OFFICE, bulk=sim.scenario.is_bulk(due, BERLIN))
    assert delay >= 1.0
    sim.clock.now = due + delay - 0.5
    assert slot not in sim.bookable_times(OFFICE, [SERVICE])
    sim.clock.now = due + delay
    assert slot in sim.bookable_times(OFFICE, [SERVICE])
    expiry = sim.stats.slot_appearances[-1]
    assert expiry.source == "expiry"
    assert expiry.appeared_at == due + delay
    del process


async def test_api_cancel_frees_at_the_cron_after_15_minutes(
    make_sim, serve_sim, sim_clock
) -> None:
    sim = make_sim()
    api: Api = await serve_sim(sim)
    slot = at("2026-11-25", 9)
    sim.release_slot(OFFICE, slot, minutes=15)
    sim_clock.advance(10.5)  # cancel in the middle of a minute
    _, process = await api.reserve(OFFICE, SERVICE, slot)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    cancelled = sim_clock.now
    status, _, _ = await api.post("cancel-appointment/", creds)
    assert status == 200
    sim_clock.now = cancelled + 15 * 60
    assert slot not in sim.bookable_times(OFFICE, [SERVICE])
    sim_clock.now = cron_run(cancelled + 15 * 60)
    assert slot in sim.bookable_times(OFFICE, [SERVICE])
    assert sim.stats.slot_appearances[-1].source == "deallocation"
    assert sim.stats.slot_appearances[-1].appeared_at == sim_clock.now


def test_competitors_cancel_and_the_slot_comes_back() -> None:
    clock = SimClock()
    scenario = MunichWeekday(
        competition=Competition(probability=1.0, median_delay=30, sigma=0.01),
        cancellation_competition=None,
        competitor_cancellations=CompetitorCancellations(probability=1.0),
        rules=(),
        cancellations_per_hour=0.0,
        initial_density=0.0,
    )
    sim = Simulator(clock=clock, scenario=scenario, visibility="delayed")
    changes: list[SlotChange] = []
    sim.slot_listeners.append(changes.append)
    slot = at("2026-11-25", 11)
    sim.release_slot(OFFICE, slot, minutes=15, compete=True)
    clock.advance(60)
    assert slot not in sim.bookable_times(OFFICE, [SERVICE])
    (take,) = sim.stats.competitor_takes
    clock.now = slot - 60  # the cancel came at least 1 h before the slot
    sim.sync()
    assert sim.stats.competitor_cancellations == 1
    assert slot in sim.bookable_times(OFFICE, [SERVICE])
    back = sim.stats.slot_appearances[-1]
    assert back.source == "competitor-cancellation"
    # the cancel was at least 10 min after booking; then 15 min to the cron
    assert back.appeared_at >= take.taken_at + 600 + 900
    assert back.appeared_at % 60 >= 1.0  # after the full minute (delayed)
    assert [(c.free, c.source) for c in changes] == [
        (True, "manual"),
        (False, "competitor"),
        (True, "competitor-cancellation"),
    ]
    assert changes[1].units == changes[2].units


def test_cancel_time_is_between_booking_and_appointment() -> None:
    model = CompetitorCancellations(probability=1.0)
    rng = random.Random(1)
    for _ in range(100):
        when = model.cancel_at(rng, 1000.0, 100_000.0)
        assert when is not None
        assert 1600.0 <= when <= 96_400.0
    assert model.cancel_at(rng, 1000.0, 2000.0) is None  # no time left
    assert CompetitorCancellations(probability=0.0).cancel_at(rng, 0, 1e9) is None


def test_a_day_of_munich_has_competitor_cancellations() -> None:
    clock = SimClock(at("2026-11-23", 0, 1))
    sim = Simulator(clock=clock, seed=2, visibility="delayed")
    sim.sync()
    clock.advance(7 * 86_400)
    sim.sync()
    assert sim.stats.competitor_cancellations > 0
    assert sim.stats.as_dict()["competitor_cancellations"] > 0
    sources = {a.source for a in sim.stats.slot_appearances}
    assert "competitor-cancellation" in sources


def test_bulk_windows_of_munich() -> None:
    scenario = MunichWeekday()
    monday = dt.date(2026, 11, 23)

    def moment(hour: int, minute: int = 0, day: dt.date = monday) -> float:
        return dt.datetime.combine(day, dt.time(hour, minute), BERLIN).timestamp()

    assert scenario.is_bulk(moment(7, 30), BERLIN)
    assert scenario.is_bulk(moment(10), BERLIN)
    assert scenario.is_bulk(moment(3), BERLIN)
    assert not scenario.is_bulk(moment(20), BERLIN)
    assert not scenario.is_bulk(moment(12), BERLIN)  # a few slots, not bulk
    assert not scenario.is_bulk(moment(8, 45), BERLIN)
    assert not scenario.is_bulk(moment(10, 0, dt.date(2026, 11, 29)), BERLIN)


async def test_serve_passes_visibility(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class StopError(Exception):
        pass

    class FakeServer:
        def __init__(self, simulator: Simulator, **_: object) -> None:
            seen.append(simulator.visibility.model)

        async def __aenter__(self) -> None:
            raise StopError

        async def __aexit__(self, *_: object) -> None:
            return None

    monkeypatch.setattr("mta_client.simulator.server.SimulatorServer", FakeServer)
    with pytest.raises(StopError):
        await serve(port=0)
    with pytest.raises(StopError):
        await serve(port=0, visibility="random")
    assert seen == ["delayed", "random"]
