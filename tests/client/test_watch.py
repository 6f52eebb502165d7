"""Tests of watch filters and the planner (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
import pytest

from mta_client import (
    AvailableCalendar,
    Catalogue,
    ContactDetails,
    ServiceRequest,
    Slot,
)
from mta_client.exceptions import MTAValidationError
from mta_client.planner import days_needed, office_holiday, plan
from mta_client.watch import TimeRange, Watch

from .helpers import load_fixture

BERLIN = ZoneInfo("Europe/Berlin")
WOHNSITZ = ServiceRequest(service_id=1063475)
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=BERLIN)  # a Monday morning


def watch(**values: Any) -> Watch:
    values.setdefault("id", "w")
    values.setdefault("services", [WOHNSITZ])
    values.setdefault("office_ids", [10489])
    return Watch(**values)


def slot(day: date, hour: int, minute: int = 0, office: int = 10489) -> Slot:
    return Slot(
        office_id=office, start=datetime.combine(day, time(hour, minute), BERLIN)
    )


def test_defaults_match_everything_in_the_window() -> None:
    w = watch()
    assert w.matches(slot(date(2026, 11, 24), 8), NOW)
    assert w.matches(slot(date(2027, 5, 20), 8), NOW)
    assert w.matches(slot(date(2027, 5, 24), 8), NOW)  # day 182
    assert not w.matches(slot(date(2027, 5, 25), 8), NOW)  # beyond 182 days
    assert not w.matches(slot(date(2026, 11, 24), 8, office=102522), NOW)


def test_relative_window_edges() -> None:
    w = watch(within_days=14)
    assert w.window(NOW) == (date(2026, 11, 23), date(2026, 12, 7))
    assert w.matches(slot(date(2026, 12, 7), 15), NOW)
    assert not w.matches(slot(date(2026, 12, 8), 8), NOW)
    later = NOW + timedelta(days=3)
    assert w.window(later) == (date(2026, 11, 26), date(2026, 12, 10))


def test_absolute_window_edges_and_end() -> None:
    w = watch(start_date=date(2026, 12, 1), end_date=date(2026, 12, 3))
    assert not w.matches(slot(date(2026, 11, 30), 23, 59), NOW)
    assert w.matches(slot(date(2026, 12, 1), 0, 0), NOW)
    assert w.matches(slot(date(2026, 12, 3), 23, 55), NOW)
    assert not w.matches(slot(date(2026, 12, 4), 0, 0), NOW)
    assert w.window(datetime(2026, 12, 4, 8, tzinfo=BERLIN)) is None
    both = watch(end_date=date(2026, 12, 31), within_days=7)
    assert both.window(NOW) == (date(2026, 11, 23), date(2026, 11, 30))


def test_weekdays_by_number_and_name() -> None:
    w = watch(weekdays="mon,wed")
    assert w.weekdays == frozenset({0, 2})
    assert watch(weekdays=["Tuesday", 4]).weekdays == frozenset({1, 4})
    assert w.matches(slot(date(2026, 11, 25), 9), NOW)  # Wednesday
    assert not w.matches(slot(date(2026, 11, 26), 9), NOW)  # Thursday


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("Monday, sat-sun", {0, 5, 6}),
        ("3", {3}),
        ("fri-mon", {4, 5, 6, 0}),
        (["thu", "FRIDAY"], {3, 4}),
    ],
)
def test_weekday_names_numbers_and_ranges(text: Any, days: set[int]) -> None:
    assert watch(weekdays=text).weekdays == frozenset(days)


@pytest.mark.parametrize("text", ["monkey", "7", "xy", "funday", " , "])
def test_bad_weekdays_are_rejected(text: str) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        watch(weekdays=text)
    assert "weekday" in str(excinfo.value)
    assert text not in str(excinfo.value)


def test_time_ranges_end_exclusive() -> None:
    w = watch(
        time_ranges=[TimeRange.parse("08:00-10:00"), TimeRange.parse("14:30 - 15:00")]
    )
    day = date(2026, 11, 24)
    assert w.matches(slot(day, 8), NOW)
    assert w.matches(slot(day, 9, 55), NOW)
    assert not w.matches(slot(day, 10), NOW)
    assert w.matches(slot(day, 14, 30), NOW)
    assert not w.matches(slot(day, 15), NOW)


def test_lead_time() -> None:
    w = watch(min_lead=timedelta(hours=2))
    today = NOW.date()
    assert not w.matches(slot(today, 8, 25), NOW)
    assert w.matches(slot(today, 8, 30), NOW)
    assert not w.day_fits(today, NOW.replace(hour=22, minute=1))
    assert w.day_fits(today, NOW.replace(hour=21, minute=59))


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 3, 29), 7),  # clocks go forward: 09:00 CEST is 07:00 UTC
        (date(2026, 3, 28), 8),  # the day before: 09:00 CET is 08:00 UTC
        (date(2026, 10, 25), 8),  # clocks go back: 09:00 CET is 08:00 UTC
        (date(2026, 10, 24), 7),
    ],
)
def test_time_filter_in_local_time_on_dst_days(day: date, utc_hour: int) -> None:
    w = watch(
        time_ranges=[TimeRange.parse("09:00-09:30")],
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    at_nine = Slot(office_id=10489, start=datetime.combine(day, time(utc_hour), UTC))
    assert w.matches(at_nine, now)
    an_hour_off = Slot(office_id=10489, start=at_nine.start + timedelta(hours=1))
    assert not w.matches(an_hour_off, now)


def test_nonexistent_and_repeated_local_hours() -> None:
    # 02:30 local does not exist on 29 March and exists twice on 25 October.
    w = watch(
        time_ranges=[TimeRange.parse("02:00-03:00")],
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    spring = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert not w.matches(Slot(office_id=10489, start=spring), now)
    for utc in (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    ):
        assert w.matches(
            Slot(office_id=10489, start=utc), now
        )  # 02:30 CEST and 02:30 CET


@pytest.mark.parametrize(
    "values",
    [
        {"weekdays": []},
        {"weekdays": [7]},
        {"start_date": date(2026, 12, 2), "end_date": date(2026, 12, 1)},
        {"auto_book": True},
        {"min_lead": timedelta(hours=-1)},
        {"services": []},
        {"services": [WOHNSITZ, WOHNSITZ]},
        {"office_ids": []},
        {"within_days": 400},
        {"id": ""},
    ],
)
def test_invalid_watches(values: dict[str, Any]) -> None:
    with pytest.raises(MTAValidationError):
        watch(**values)


def test_time_range_parse_errors() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        TimeRange.parse("08:00")
    with pytest.raises(ValueError, match="HH:MM") as excinfo:
        TimeRange.parse("secret-text")
    assert "secret" not in str(excinfo.value)
    with pytest.raises(ValidationError):
        TimeRange.parse("10:00-09:00")


def test_watch_hides_contact_in_repr() -> None:
    contact = ContactDetails(family_name="Huber", email="anna@example.org")
    w = watch(auto_book=True, contact=contact)
    assert "Huber" not in repr(w)
    assert "anna" not in repr(w)


# --- planner -------------------------------------------------------------------


def test_plan_groups_by_services_and_merges_offices_and_windows() -> None:
    catalogue = Catalogue.model_validate(load_fixture("offices_and_services.json"))
    watches = [
        watch(id="a", office_ids=[10489], within_days=7),
        watch(
            id="b",
            office_ids=[10489, 10308174],
            start_date=date(2026, 12, 1),
            end_date=date(2026, 12, 20),
        ),
        watch(
            id="c",
            services=[ServiceRequest(service_id=1063475, count=2)],
            office_ids=[10489],
        ),
        watch(
            id="d",
            services=[ServiceRequest(service_id=10176294)],
            office_ids=[10308174],
        ),
        watch(id="e", end_date=date(2026, 11, 1)),  # over
    ]
    groups = {g.key: g for g in plan(watches, NOW, catalogue)}
    assert set(groups) == {((1063475, 1),), ((1063475, 2),), ((10176294, 1),)}
    shared = groups[((1063475, 1),)]
    assert [w.id for w in shared.watches] == ["a", "b"]
    assert shared.office_ids == (10489,)  # 10308174 does not offer the service
    assert (shared.start, shared.end) == (date(2026, 11, 23), date(2026, 12, 20))
    assert groups[((10176294, 1),)].office_ids == (10308174,)


def test_plan_without_catalogue_keeps_all_offices_and_caps_range() -> None:
    watches = [
        watch(id="a", office_ids=[2, 1]),
        watch(id="b", office_ids=[3], end_date=date(2028, 1, 1)),
    ]
    (group,) = plan(watches, NOW)
    assert group.office_ids == (1, 2, 3)
    assert (group.end - group.start).days == 365


def test_plan_drops_groups_without_offices() -> None:
    catalogue = Catalogue.model_validate(load_fixture("offices_and_services.json"))
    assert plan([watch(office_ids=[10308174])], NOW, catalogue) == []


def calendar(
    days: list[tuple[str, str, list[tuple[str, list[int]]]]], **extra: Any
) -> AvailableCalendar:
    return AvailableCalendar.model_validate(
        {
            "startDate": "2026-11-23",
            "endDate": "2027-05-23",
            "availableDays": [
                {
                    "date": d,
                    "providerIDs": p,
                    "offices": [{"officeId": o, "appointments": a} for o, a in offices],
                }
                for d, p, offices in days
            ],
            **extra,
        }
    )


def test_days_needed_only_for_watches_the_first_day_does_not_fit() -> None:
    watches = [
        watch(id="any", office_ids=[1, 2]),
        watch(id="thu", office_ids=[1, 2], weekdays="thu"),
        watch(id="office3", office_ids=[3], weekdays="fri"),
    ]
    (group,) = plan(watches, NOW)
    answer = calendar(
        [
            ("2026-11-24", "1", [("1", [1795000000])]),  # Tuesday, with times
            ("2026-11-25", "1,2", []),
            ("2026-11-26", "2", []),  # Thursday
            ("2026-12-03", "1,2", []),  # Thursday
            ("2026-12-10", "1", []),
            ("2026-12-17", "1", []),
            ("2026-12-24", "2", []),
            ("2026-11-27", "1", []),  # Friday, but office 3 has nothing
        ],
        slotsStartDate="2026-11-24",
        slotsEndDate="2026-11-24",
    )
    queries = days_needed(group, answer, NOW)
    assert [(q.day, q.office_ids) for q in queries] == [
        (date(2026, 11, 25), (1, 2)),
        (date(2026, 11, 26), (2,)),
        (date(2026, 11, 27), (1,)),
        (date(2026, 12, 3), (1, 2)),
        (date(2026, 12, 10), (1,)),
    ]


def test_days_needed_uses_next_bookable_date() -> None:
    (group,) = plan([watch(office_ids=[1, 2])], NOW)
    answer = calendar([], nextBookableDate="2027-01-05")
    (query,) = days_needed(group, answer, NOW)
    assert (query.day, query.office_ids) == (date(2027, 1, 5), (1, 2))


def test_days_needed_skips_bavarian_holidays() -> None:
    # Munich's offices are closed on public holidays: no request is spent on
    # them. Assumption Day counts in Munich.
    assumption = datetime(2028, 8, 14, 8, tzinfo=BERLIN)  # a Monday
    (group,) = plan([watch(weekdays="tue,wed", office_ids=[1])], assumption)
    answer = calendar(
        [
            ("2028-08-14", "1", [("1", [1849939200])]),  # Monday, with times
            ("2028-08-15", "1", []),  # Assumption Day (Tuesday)
            ("2028-08-16", "1", []),  # Wednesday
        ],
        slotsStartDate="2028-08-14",
        slotsEndDate="2028-08-14",
    )
    assert [q.day for q in days_needed(group, answer, assumption)] == [
        date(2028, 8, 16)
    ]
    christmas = datetime(2026, 12, 22, 8, tzinfo=BERLIN)  # a Tuesday
    (group,) = plan([watch(weekdays="fri,sat,mon", office_ids=[1])], christmas)
    answer = calendar(
        [
            ("2026-12-22", "1", [("1", [1797930000])]),
            ("2026-12-25", "1", []),  # Christmas Day (Friday)
            ("2026-12-26", "1", []),  # St Stephen's Day (Saturday)
            ("2026-12-28", "1", []),  # Monday
        ],
        slotsStartDate="2026-12-22",
        slotsEndDate="2026-12-22",
    )
    assert [q.day for q in days_needed(group, answer, christmas)] == [
        date(2026, 12, 28)
    ]
    assert office_holiday(date(2028, 8, 15)) == "Mariä Himmelfahrt"
    assert office_holiday(date(2028, 8, 16)) is None
