"""Turning all active watches into the fewest requests.

The city's ``available-calendar/`` takes many offices and services at once,
but every office must offer every service, and slot times come only for the
first bookable day of the slots window. So:

* watches that want the same services (with the same counts) form one
  :class:`QueryGroup`: the union of their offices is asked in one request
  over the union of their date windows, and the answer fans out to each;
* a watch whose weekday or time filter does not fit that first bookable day
  needs the times of later days: :func:`days_needed` names only the days it
  still needs (bookable, in its window, on its weekdays, not a holiday), a
  few at most, and only for the offices that have something free on that
  day.

Munich's offices are closed on Bavarian public holidays, Assumption Day (15
August) included, since Munich counts as predominantly Catholic: no slot
comes on those days (:func:`office_holiday`), so no request is spent on
asking for their times. A slot the city does list on such a day is still
reported - the city's answer wins over the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
import logging
from typing import TYPE_CHECKING

import holidays

from .models import MAX_RANGE_DAYS, AvailableCalendar, Catalogue, ServiceRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .watch import Watch

__all__ = ["DayQuery", "QueryGroup", "days_needed", "office_holiday", "plan"]

_LOGGER = logging.getLogger(__name__)

# Bavaria's public holidays; "catholic" adds Assumption Day, a holiday in
# Munich (and most of Bavaria). Years are filled in as they are asked for.
_BAVARIA = holidays.country_holidays(
    "DE", subdiv="BY", categories=("public", "catholic")
)


def office_holiday(day: date) -> str | None:
    """The name of the Bavarian public holiday on ``day``, if it is one.

    Munich's offices are closed then: no slot comes on such a day.
    """
    return _BAVARIA.get(day)


@dataclass(frozen=True, kw_only=True)
class QueryGroup:
    """Watches answered by one calendar request."""

    services: tuple[ServiceRequest, ...]
    office_ids: tuple[int, ...]
    watches: tuple[Watch, ...]
    start: date
    end: date

    @property
    def key(self) -> tuple[tuple[int, int], ...]:
        """The shared services, as in :attr:`Watch.service_key`."""
        return tuple((s.service_id, s.count) for s in self.services)


@dataclass(frozen=True, kw_only=True)
class DayQuery:
    """The slot times of one day, for the offices some watch needs there."""

    group: QueryGroup
    day: date
    office_ids: tuple[int, ...]


def plan(
    watches: Iterable[Watch], now: datetime, catalogue: Catalogue | None = None
) -> list[QueryGroup]:
    """Group watches by services and merge their offices and windows.

    Offices that do not offer every service of the group (by ``catalogue``)
    are left out with a warning: the city would refuse the whole request.
    Watches whose window is over are left out.
    """
    by_key: dict[tuple[tuple[int, int], ...], list[tuple[Watch, date, date]]] = {}
    for watch in watches:
        window = watch.window(now)
        if window is not None:
            by_key.setdefault(watch.service_key, []).append((watch, *window))
    groups = []
    for members in by_key.values():
        services = tuple(members[0][0].services)
        offices = sorted({o for watch, _, _ in members for o in watch.office_ids})
        if catalogue is not None:
            offices = _offering(catalogue, offices, [s.service_id for s in services])
        if not offices:
            continue
        start = min(start for _, start, _ in members)
        end = min(
            max(end for _, _, end in members), start + timedelta(days=MAX_RANGE_DAYS)
        )
        groups.append(
            QueryGroup(
                services=services,
                office_ids=tuple(offices),
                watches=tuple(watch for watch, _, _ in members),
                start=start,
                end=end,
            )
        )
    return groups


def _offering(
    catalogue: Catalogue, offices: list[int], services: list[int]
) -> list[int]:
    keep = []
    for office in offices:
        missing = set(services) - catalogue.services_at(office)
        if missing:
            _LOGGER.warning(
                "Office %s does not offer service(s) %s; not asking it",
                office,
                ", ".join(map(str, sorted(missing))),
            )
        else:
            keep.append(office)
    return keep


def days_needed(
    group: QueryGroup,
    calendar: AvailableCalendar,
    now: datetime,
    *,
    per_watch: int = 3,
    best: Mapping[str, date] | None = None,
) -> list[DayQuery]:
    """The later days whose slot times some watch of the group still needs.

    A day is needed by a watch when it is bookable (listed, or the server's
    ``nextBookableDate``), its slot times were not in ``calendar`` already,
    it is no public holiday (:func:`office_holiday`: the offices are closed),
    it fits the watch's window, weekdays and lead time, and it is earlier
    than ``best[watch.id]``, the day of the earliest fitting slot the watch
    already knows: the earliest slot is the one worth having. Each watch
    needs at most its ``per_watch`` earliest such days, since every day costs
    a request.
    """
    best = best or {}
    timed = {day.date for day in calendar.available_days if day.offices}
    if (
        calendar.slots_start_date is not None
        and calendar.slots_start_date == calendar.slots_end_date
    ):
        timed.add(calendar.slots_start_date)
    # providerIDs names the offices with something free that day; an answer
    # without it could be any office of the group.
    providers = {
        day.date: set(day.provider_ids) or set(group.office_ids)
        for day in calendar.available_days
    }
    if calendar.next_bookable_date and calendar.next_bookable_date not in providers:
        providers[calendar.next_bookable_date] = set(group.office_ids)
    wanted: dict[date, set[int]] = {}
    for watch in group.watches:
        known = best.get(watch.id)
        days = [
            day
            for day in sorted(providers)
            if day not in timed
            and (known is None or day < known)
            and office_holiday(day) is None
            and watch.day_fits(day, now)
            and providers[day] & set(watch.office_ids)
        ]
        for day in days[:per_watch]:
            wanted.setdefault(day, set()).update(providers[day] & set(watch.office_ids))
    return [
        DayQuery(
            group=group,
            day=day,
            office_ids=tuple(sorted(offices & set(group.office_ids))),
        )
        for day, offices in sorted(wanted.items())
        if offices & set(group.office_ids)
    ]
