"""Munich's offices are closed on public holidays: no slots on them, ever."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from mta_client.simulator import Simulator
from mta_client.simulator.office_days import MunichHolidays

from .conftest import BERLIN, Api, SimClock, at
from .test_routes import assert_error

if TYPE_CHECKING:
    from collections.abc import Callable

    # SimClock has no monotonic(); the simulator only reads time(), hence the cast.

FUEHRERSCHEIN, SERVICE = 10308174, 1071896  # no captcha needed
# Bavaria's public holidays around the turn of the year, and the working days
# between them (24 and 31 December are no public holidays).
CLOSED = ["2026-12-25", "2026-12-26", "2027-01-01", "2027-01-06"]
OPEN = ["2026-12-23", "2026-12-24", "2026-12-28", "2026-12-31", "2027-01-05"]


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        ("2026-12-25", True),  # Erster Weihnachtstag
        ("2026-12-26", True),  # Zweiter Weihnachtstag
        ("2027-01-01", True),  # Neujahr
        ("2027-01-06", True),  # Heilige Drei Könige (Bavaria)
        ("2027-03-26", True),  # Karfreitag
        ("2027-05-27", True),  # Fronleichnam (Bavaria)
        ("2029-08-15", True),  # Mariä Himmelfahrt: Munich is mostly Catholic
        ("2026-11-01", True),  # Allerheiligen (Bavaria)
        ("2027-08-08", False),  # Augsburger Friedensfest: Augsburg only
        ("2026-11-18", False),  # Buß- und Bettag: a holiday in Saxony only
        ("2027-10-31", False),  # Reformationstag: not in Bavaria
        ("2026-12-24", False),
    ],
)
def test_munich_holidays(day: str, closed: bool) -> None:
    date = dt.date.fromisoformat(day)
    assert (date in MunichHolidays()) is closed


def _units_on(sim: Simulator, office_id: int, day: str) -> list[int]:
    return [
        u
        for u in sim.free_slots(office_id)
        if dt.datetime.fromtimestamp(u, BERLIN).date().isoformat() == day
    ]


def test_release_on_a_holiday_frees_nothing(sim: Simulator) -> None:
    for day in CLOSED + OPEN:
        sim.release_slot(FUEHRERSCHEIN, at(day, 9), minutes=60)
    for day in CLOSED:
        assert _units_on(sim, FUEHRERSCHEIN, day) == []
    for day in OPEN:
        assert _units_on(sim, FUEHRERSCHEIN, day), day
    assert sim.is_holiday(at("2026-12-25", 9))
    assert not sim.is_holiday(at("2026-12-24", 9))


def test_holidays_can_be_switched_off(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim(public_holidays=False)
    sim.release_slot(FUEHRERSCHEIN, at("2026-12-25", 9), minutes=60)
    assert _units_on(sim, FUEHRERSCHEIN, "2026-12-25")


async def test_calendar_and_reserve_skip_holidays(api: Api) -> None:
    for day in CLOSED + OPEN:
        api.sim.release_slot(FUEHRERSCHEIN, at(day, 9), minutes=60)
    query = {
        "startDate": "2026-12-01",
        "endDate": "2027-01-31",
        "officeIds": str(FUEHRERSCHEIN),
        "serviceIds": str(SERVICE),
        "serviceCounts": "1",
    }
    listed: set[str] = set()
    for month_day in ("2026-12-23", "2027-01-05"):
        window = {"slotsStartDate": month_day, "slotsEndDate": month_day}
        status, body, _ = await api.get("available-calendar/", {**query, **window})
        assert status == 200
        listed |= {d["date"] for d in body["availableDays"]}
    assert set(OPEN) <= listed
    assert not set(CLOSED) & listed

    status, body = await api.reserve(FUEHRERSCHEIN, SERVICE, at("2026-12-25", 9))
    assert status == 404
    assert_error(body, "appointmentNotAvailable")
    status, body = await api.reserve(FUEHRERSCHEIN, SERVICE, at("2026-12-28", 9))
    assert status == 200, body


def test_a_lively_scenario_never_offers_a_holiday() -> None:
    # Releases, cancellations and leftovers of a month over Christmas.
    clock = SimClock(dt.datetime(2026, 12, 14, 6, 0, tzinfo=BERLIN).timestamp())
    sim = Simulator(clock=clock, scenario="munich-weekday", seed=3)
    holidays = MunichHolidays()
    seen_days: set[dt.date] = set()
    for _ in range(24 * 28):
        clock.advance(3600)
        sim.sync()
        for office_id in (10489, 54261, FUEHRERSCHEIN, 54287):
            days = {
                dt.datetime.fromtimestamp(u, BERLIN).date()
                for u in sim.free_slots(office_id)
            }
            seen_days |= days
            assert not [d for d in days if d in holidays], office_id
    # The check means something: slots were offered all around the holidays.
    assert dt.date(2026, 12, 23) in seen_days or dt.date(2026, 12, 28) in seen_days
    appeared = {
        dt.datetime.fromtimestamp(a.start, BERLIN).date()
        for a in sim.stats.slot_appearances
    }
    assert not [d for d in appeared if d in holidays]


def test_fixed_scenario_offers_three_working_days_over_christmas(
    make_sim: Callable[..., Simulator],
) -> None:
    clock = SimClock(dt.datetime(2026, 12, 23, 10, 0, tzinfo=BERLIN).timestamp())
    sim = make_sim(clock=clock)
    days = sorted(
        {
            dt.datetime.fromtimestamp(u, BERLIN).date().isoformat()
            for u in sim.free_slots(FUEHRERSCHEIN)
        }
    )
    # Thursday 24th, then Friday 25th and Saturday 26th are skipped.
    assert days[:3] == ["2026-12-24", "2026-12-28", "2026-12-29"]
