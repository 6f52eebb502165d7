"""``GET /available-calendar/``: validation and the server's day/slot semantics.

Mirrors zmscitizenapi ``ValidationService::validateGetBookableFreeDays`` and
zmsbackend ``CalendarAvailability`` (muc46+): only bookable days of the
calendar month(s) of the slots window are listed, slot timestamps are given
for the first bookable day of the slots window only, and when that month has
nothing the answer jumps to the first bookable day of the horizon.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from .errors import CityError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CalendarQuery",
    "build_calendar",
    "parse_calendar_query",
    "parse_date",
    "parse_id_list",
]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"^\d+$")
MAX_INT32 = 2**31 - 1
MAX_SERVICE_COUNT = 25  # Slot::MAX_SLOTS
MAX_RANGE_DAYS = 365


@dataclass(frozen=True, slots=True)
class CalendarQuery:
    """A validated calendar request."""

    start: dt.date
    end: dt.date
    slots_start: dt.date
    slots_end: dt.date
    office_ids: tuple[int, ...]
    services: tuple[tuple[int, int], ...]
    captcha_token: str | None


def parse_date(value: str | None) -> dt.date | None:
    """Parse a strict ``YYYY-MM-DD`` date (PHP ``Y-m-d``); ``None`` if invalid."""
    if value is None or not _DATE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def parse_id_list(value: str | None, *, maximum: int = MAX_INT32) -> list[int] | None:
    """Parse a CSV of positive integers up to ``maximum``; ``None`` if invalid."""
    if value is None or value == "":
        return None
    result: list[int] = []
    for part in value.split(","):
        item = part.strip()
        if not _DIGITS.match(item) or not 1 <= int(item) <= maximum:
            return None
        result.append(int(item))
    return result


def parse_calendar_query(params: Mapping[str, str]) -> CalendarQuery:  # noqa: PLR0912
    """Validate the query string; raise :class:`CityError` like the city does.

    Errors of one validation step are reported together.
    """
    errors: list[str] = []
    start = parse_date(params.get("startDate"))
    end = parse_date(params.get("endDate"))
    if start is None:
        errors.append("invalidStartDate")
    if end is None:
        errors.append("invalidEndDate")
    office_ids = parse_id_list(params.get("officeIds"))
    if office_ids is None:
        errors.append("invalidOfficeId")
    raw_ids = params.get("serviceIds", "")
    raw_counts = params.get("serviceCounts", "")
    service_ids = parse_id_list(raw_ids)
    counts = parse_id_list(raw_counts, maximum=MAX_SERVICE_COUNT)
    if not raw_ids and not raw_counts:
        errors.append("EMPTY_SERVICE_ARRAYS")
    else:
        if service_ids is None:
            errors.append("invalidServiceId")
        if counts is None:
            errors.append("invalidServiceCount")
        if (
            service_ids is not None
            and counts is not None
            and len(service_ids) != len(counts)
        ):
            errors.append("MISMATCHED_ARRAYS")
    slots_start = slots_end = None
    if "slotsStartDate" in params:
        slots_start = parse_date(params["slotsStartDate"])
        if slots_start is None:
            errors.append("invalidSlotsStartDate")
    if "slotsEndDate" in params:
        slots_end = parse_date(params["slotsEndDate"])
        if slots_end is None:
            errors.append("invalidSlotsEndDate")
    if slots_start is not None and slots_end is not None and slots_start > slots_end:
        errors.append("slotsStartDateAfterEndDate")
    if (
        errors
        or start is None
        or end is None
        or office_ids is None
        or service_ids is None
        or counts is None
    ):
        raise CityError(*errors)
    # startDateAfterEndDate and dateRangeTooLarge are not in the city's
    # ErrorMessages table, so the city answers unknownError with HTTP 520.
    if start > end or (end - start).days > MAX_RANGE_DAYS:
        raise CityError("unknownError")
    return CalendarQuery(
        start=start,
        end=end,
        slots_start=slots_start or start,
        slots_end=slots_end or end,
        office_ids=tuple(dict.fromkeys(office_ids)),
        services=tuple(zip(service_ids, counts, strict=True)),
        captcha_token=params.get("captchaToken") or None,
    )


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    last = _cal.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def build_calendar(
    query: CalendarQuery,
    starts: Mapping[int, list[int]],
    tz: dt.tzinfo,
) -> dict[str, Any]:
    """Build the ``/available-calendar/`` body.

    Args:
        query: the validated request.
        starts: for each office, the sorted bookable start timestamps inside
            the horizon (future only).
        tz: the city's time zone (Europe/Berlin).

    """
    by_day: dict[dt.date, dict[int, list[int]]] = {}
    for office_id in query.office_ids:
        for ts in starts.get(office_id, []):
            day = dt.datetime.fromtimestamp(ts, tz).date()
            if query.start <= day <= query.end:
                by_day.setdefault(day, {}).setdefault(office_id, []).append(ts)
    days = sorted(by_day)
    slots_lo = max(query.slots_start, query.start)
    slots_hi = min(query.slots_end, query.end)
    slot_day = next((d for d in days if slots_lo <= d <= slots_hi), None)
    # The slots window is narrowed to its first bookable day first; the month
    # of that day is painted. Without one, the window's months are painted,
    # and if those are empty too, the answer jumps to the horizon's first day.
    paint_from, paint_to = (slot_day, slot_day) if slot_day else (slots_lo, slots_hi)
    paint_lo = max(_month_bounds(paint_from)[0], query.start)
    paint_hi = min(_month_bounds(paint_to)[1], query.end)
    painted = [d for d in days if paint_lo <= d <= paint_hi]
    if not painted and days:
        slot_day = days[0]
        paint_lo = max(_month_bounds(slot_day)[0], query.start)
        paint_hi = min(_month_bounds(slot_day)[1], query.end)
        painted = [d for d in days if paint_lo <= d <= paint_hi]
    out_lo, out_hi = (slot_day, slot_day) if slot_day else (slots_lo, slots_hi)
    prev_day = max((d for d in days if d < paint_lo), default=None)
    next_day = min((d for d in days if d > paint_hi), default=None)
    available: list[dict[str, Any]] = []
    for day in painted:
        offices = by_day[day]
        ids = [o for o in query.office_ids if offices.get(o)]
        available.append(
            {
                "date": day.isoformat(),
                "providerIDs": ",".join(str(o) for o in ids),
                "offices": [
                    {"officeId": str(o), "appointments": sorted(set(offices[o]))}
                    for o in ids
                ]
                if day == slot_day
                else [],
            }
        )
    return {
        "startDate": query.start.isoformat(),
        "endDate": query.end.isoformat(),
        "slotsStartDate": out_lo.isoformat(),
        "slotsEndDate": out_hi.isoformat(),
        "prevBookableDate": prev_day.isoformat() if prev_day else None,
        "nextBookableDate": next_day.isoformat() if next_day else None,
        "availableDays": available,
    }
