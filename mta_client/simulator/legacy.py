"""The availability routes of muc45 and earlier (``api_generation="muc45"``).

Until release muc45 (2026-07-23) the city answered availability at four
routes that muc46 replaced by ``available-calendar/``; third-party bots still
call them. A simulator speaking that generation lets a test show how a
client meets a server older than it expects. From ``routing.php`` and the
services of muc45, with the singular query names of that time:

* ``available-days/`` and ``available-days-by-office/``: ``startDate``,
  ``endDate``, ``officeId`` (CSV), ``serviceId`` (CSV), ``serviceCount``
  (CSV), ``captchaToken``; no bookable day → 404 ``noAppointmentForThisDay``.
* ``available-appointments/`` and ``available-appointments-by-office/``:
  ``date`` instead of the range; no free slot → 404 ``appointmentNotAvailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
from typing import TYPE_CHECKING, Any

from .calendar import MAX_SERVICE_COUNT, parse_date, parse_id_list
from .errors import CityError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["LEGACY_ROUTES", "LegacyQuery", "parse_legacy_query"]


@dataclass(frozen=True, slots=True)
class LegacyQuery:
    """A validated legacy availability request (one day or a range)."""

    start: dt.date
    end: dt.date
    office_ids: tuple[int, ...]
    services: tuple[tuple[int, int], ...]
    captcha_token: str | None


def parse_legacy_query(params: Mapping[str, str], *, one_day: bool) -> LegacyQuery:
    """Validate a legacy query; raise :class:`CityError` like muc45 did."""
    errors: list[str] = []
    if one_day:
        start = end = parse_date(params.get("date"))
        if start is None:
            errors.append("invalidDate")
    else:
        start = parse_date(params.get("startDate"))
        end = parse_date(params.get("endDate"))
        if start is None:
            errors.append("invalidStartDate")
        if end is None:
            errors.append("invalidEndDate")
    office_ids = parse_id_list(params.get("officeId"))
    if office_ids is None:
        errors.append("invalidOfficeId")
    service_ids = parse_id_list(params.get("serviceId"))
    if service_ids is None:
        errors.append("invalidServiceId")
    raw_counts = params.get("serviceCount")
    counts = (
        [1] * len(service_ids or [])
        if raw_counts is None
        else parse_id_list(raw_counts, maximum=MAX_SERVICE_COUNT)
    )
    if counts is None or (service_ids is not None and len(counts) != len(service_ids)):
        errors.append("invalidServiceCount")
    if (
        errors
        or start is None
        or end is None
        or office_ids is None
        or service_ids is None
        or counts is None
    ):
        raise CityError(*errors)
    return LegacyQuery(
        start=start,
        end=end,
        office_ids=tuple(dict.fromkeys(office_ids)),
        services=tuple(zip(service_ids, counts, strict=True)),
        captcha_token=params.get("captchaToken") or None,
    )


def _by_day(
    query: LegacyQuery, starts: Mapping[int, list[int]], tz: dt.tzinfo
) -> dict[dt.date, dict[int, list[int]]]:
    days: dict[dt.date, dict[int, list[int]]] = {}
    for office_id in query.office_ids:
        for ts in starts.get(office_id, []):
            day = dt.datetime.fromtimestamp(ts, tz).date()
            if query.start <= day <= query.end:
                days.setdefault(day, {}).setdefault(office_id, []).append(ts)
    return days


def available_days(
    query: LegacyQuery, starts: Mapping[int, list[int]], tz: dt.tzinfo
) -> dict[str, Any]:
    """``available-days/``: the bookable days of the range."""
    days = _by_day(query, starts, tz)
    if not days:
        raise CityError("noAppointmentForThisDay")
    return {"availableDays": [d.isoformat() for d in sorted(days)]}


def available_days_by_office(
    query: LegacyQuery, starts: Mapping[int, list[int]], tz: dt.tzinfo
) -> dict[str, Any]:
    """``available-days-by-office/``: each bookable day with its offices."""
    days = _by_day(query, starts, tz)
    if not days:
        raise CityError("noAppointmentForThisDay")
    return {
        "availableDays": [
            {
                "time": day.isoformat(),
                "providerIDs": ",".join(
                    str(o) for o in query.office_ids if days[day].get(o)
                ),
            }
            for day in sorted(days)
        ]
    }


def available_appointments(
    query: LegacyQuery, starts: Mapping[int, list[int]], tz: dt.tzinfo
) -> dict[str, Any]:
    """``available-appointments/``: the free times of one day, all offices."""
    times = sorted(
        {
            ts
            for offices in _by_day(query, starts, tz).values()
            for t in offices.values()
            for ts in t
        }
    )
    if not times:
        raise CityError("appointmentNotAvailable")
    return {"appointmentTimestamps": times}


def available_appointments_by_office(
    query: LegacyQuery, starts: Mapping[int, list[int]], tz: dt.tzinfo
) -> dict[str, Any]:
    """``available-appointments-by-office/``: the free times per office.

    ``officeId`` is a JSON number here (a PHP int array key), unlike the
    string of today's calendar.
    """
    offices: dict[int, list[int]] = {}
    for by_office in _by_day(query, starts, tz).values():
        for office_id, times in by_office.items():
            offices.setdefault(office_id, []).extend(times)
    if not offices:
        raise CityError("appointmentNotAvailable")
    return {
        "offices": [
            {"officeId": o, "appointments": sorted(set(offices[o]))}
            for o in query.office_ids
            if o in offices
        ]
    }


type Builder = Callable[
    [LegacyQuery, "Mapping[int, list[int]]", dt.tzinfo], dict[str, Any]
]
LEGACY_ROUTES: dict[str, tuple[bool, Builder]] = {
    "available-days/": (False, available_days),
    "available-days-by-office/": (False, available_days_by_office),
    "available-appointments/": (True, available_appointments),
    "available-appointments-by-office/": (True, available_appointments_by_office),
}
"""Legacy route → (takes one ``date``, builds the answer)."""
