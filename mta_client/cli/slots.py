"""``mta slots``: bookable days and free slot times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mta_client.client import BERLIN

from .catalogue import resolve_offices, resolve_services
from .exitcodes import ExitCode
from .output import format_clock, format_day, iso_berlin, table

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date

    from mta_client.client import MTAClient
    from mta_client.models import AvailableCalendar, Catalogue, Office, Slot

    from .output import Output

TIMES_PER_LINE = 10

__all__ = [
    "SlotQuery",
    "fetch_calendar",
    "plan_query",
    "show_slots",
    "slot_day",
    "slot_json",
]


@dataclass(frozen=True, kw_only=True)
class SlotQuery:
    """What to ask the calendar for: services, offices and a date range.

    ``day`` asks for the times of that day; otherwise the city gives the
    times of the first bookable day from ``start`` on.
    """

    services: tuple[tuple[int, int], ...]
    offices: tuple[Office, ...]
    start: date | None = None
    end: date | None = None
    day: date | None = None

    @property
    def office_names(self) -> dict[int, str]:
        """Office ids mapped to their names."""
        return {o.id: o.name for o in self.offices}


async def plan_query(
    client: MTAClient,
    *,
    services: Sequence[tuple[int, int]],
    office_ids: Sequence[int] | None,
    start: date | None = None,
    end: date | None = None,
    day: date | None = None,
    refresh: bool = False,
) -> tuple[SlotQuery, Catalogue]:
    """Check services and offices against the catalogue and build the query.

    ``refresh``: ask the server for the catalogue, not the client's copy.
    """
    catalogue = await client.get_catalogue(refresh=refresh)
    service_ids = [s for s, _ in services]
    resolve_services(catalogue, service_ids)
    offices = resolve_offices(catalogue, office_ids, service_ids)
    query = SlotQuery(
        services=tuple(services),
        offices=tuple(offices),
        start=start,
        end=end,
        day=day,
    )
    return query, catalogue


async def fetch_calendar(client: MTAClient, query: SlotQuery) -> AvailableCalendar:
    """Ask the calendar once, for all offices of the query together."""
    start = query.start
    if query.day is not None and (start is None or start > query.day):
        start = query.day
    return await client.get_available_calendar(
        office_ids=[o.id for o in query.offices],
        services=list(query.services),
        start_date=start,
        end_date=query.end,
        slots_start_date=query.day or start,
        slots_end_date=query.day,
    )


def slot_day(slot: Slot) -> date:
    """Return the day a slot belongs to, in Munich."""
    return slot.start.astimezone(BERLIN).date()


def slot_json(slot: Slot, names: dict[int, str]) -> dict[str, Any]:
    """Return a slot as a JSON object."""
    return {
        "timestamp": slot.timestamp,
        "start": iso_berlin(slot.start),
        "date": slot_day(slot).isoformat(),
        "office_id": slot.office_id,
        "office_name": names.get(slot.office_id),
    }


def show_slots(out: Output, query: SlotQuery, calendar: AvailableCalendar) -> ExitCode:
    """Print the calendar's bookable days and free times; 3 when there are none."""
    names = query.office_names
    slots = calendar.slots
    # Each slot is shown under its own Munich day: the answer's slots window
    # may hold more than one day, and its start need not be a slot's day.
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot_day(slot), []).append(slot)
    out.result(
        {
            "start_date": calendar.start_date.isoformat(),
            "end_date": calendar.end_date.isoformat(),
            "bookable_dates": [d.isoformat() for d in calendar.bookable_dates],
            "slots_date": _iso(next(iter(by_day), None)),
            "slots_dates": [d.isoformat() for d in by_day],
            "next_bookable_date": _iso(calendar.next_bookable_date),
            "slots": [slot_json(s, names) for s in slots],
        }
    )
    if calendar.bookable_dates:
        days = ", ".join(format_day(d) for d in calendar.bookable_dates)
        out.text(f"Bookable days: {days}")
    if not by_day:
        where = f" on {format_day(query.day)}" if query.day else ""
        out.note(f"no free slots{where}")
        return ExitCode.NOTHING_FOUND
    for day, day_slots in by_day.items():
        out.text(f"Free slots on {format_day(day)}:")
        rows = _office_rows(day_slots, query.offices)
        out.text(table(("OFFICE", "NAME", "FREE TIMES"), rows))
    return ExitCode.OK


def _office_rows(
    slots: list[Slot], offices: Sequence[Office]
) -> list[tuple[object, ...]]:
    """One row per office with its times, wrapped every few times."""
    rows: list[tuple[object, ...]] = []
    for office in offices:
        times = [format_clock(s.start) for s in slots if s.office_id == office.id]
        for i in range(0, len(times), TIMES_PER_LINE):
            line = " ".join(times[i : i + TIMES_PER_LINE])
            rows.append((office.id, office.name, line) if i == 0 else ("", "", line))
    return rows


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
