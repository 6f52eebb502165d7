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

Where the requests go (:func:`day_profile`): slots appear when the city's
per-minute cron runs, mostly in bulk inside the published release windows
(:data:`RELEASE_WINDOWS`), otherwise one at a time as reservations and
activations expire or cancellations are deallocated. A group spends its
budget (requests per day) by weight: the windows that can release a slot
earlier than any one its watches know (:func:`relevant_windows`) weigh
most, the rest of the day little, the night least.

What one request can answer for several watches: the answer of
``available-calendar/`` depends on the services *and* their counts, since
the city lists the start times at which the run of slots that combination
needs (``relations[].slots`` times the count, per office) is free, and gives
those times for the first day on which that run fits. Watches with the same
services and counts therefore share one request whatever their offices,
days, weekdays, times or lead times: the union of their offices and windows
is asked once and every watch filters the answer. Nothing else is shared,
because no other answer is exactly right: a request for one Meldebescheinigung
lists times a request for two would not (a shorter run fits where a longer
does not), and its first day with times may be one on which the longer run
fits nowhere; the reverse misses every time only the shorter run fits. A
service set that contains another one needs a longer run too, and at offices
with sub-calendars (Ruppertstraße's Passkalender 10502) a service may be
served by another scope with its own horizon, so a different service with
the same run length is no substitute either. Deriving one answer from
another (a run of four slots = two overlapping runs of two) would assume how
the city joins its slots across breaks and which of the shared-booking
offices it assigns a time to; a wrong "free" would send a booking to a slot
that is not there, so the planner does not guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
import itertools
import logging
from typing import TYPE_CHECKING

import holidays

from .client import BERLIN
from .models import MAX_RANGE_DAYS, AvailableCalendar, Catalogue, ServiceRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from .watch import Watch

__all__ = [
    "RELEASE_WINDOWS",
    "DayQuery",
    "QueryGroup",
    "ReleaseWindow",
    "Segment",
    "day_profile",
    "days_needed",
    "office_holiday",
    "plan",
    "relevant_windows",
    "weighed_minutes",
]

WEEKDAYS = frozenset(range(5))

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
class ReleaseWindow:
    """A time of day at which the city releases slots in bulk (Munich time).

    Attributes:
        name: a short name (``same-day``).
        weekdays: the days it happens on (0 = Monday); never on holidays.
        start, end: its local times of day (``end`` exclusive).
        lead_days: how many days ahead the slots it releases lie, from
            the first to the last: a group spends on the window only when
            one of its watches could use such a day.
        weight: how densely to look inside it, relative to the other
            windows (the published ones 1, a vaguely dated one less).

    """

    name: str
    weekdays: frozenset[int]
    start: time
    end: time
    lead_days: tuple[int, int] = (0, 0)
    weight: float = 1.0

    def contains(self, moment: datetime) -> bool:
        """Whether a moment falls into this window."""
        local = moment.astimezone(BERLIN)
        return (
            local.weekday() in self.weekdays
            and self.start <= local.time().replace(tzinfo=None) < self.end
            and office_holiday(local.date()) is None
        )

    def useful(
        self,
        watches: Iterable[Watch],
        day: date,
        best: Mapping[str, date] | None = None,
    ) -> bool:
        """Whether one of ``watches`` could use a slot it releases on ``day``.

        A watch that knows a fitting slot on ``best[watch.id]`` already has
        use only for earlier days: the earliest slot is the one worth having.
        """
        moment = datetime.combine(day, self.start, BERLIN)
        first, last = self.lead_days
        best = best or {}
        for watch in watches:
            known = best.get(watch.id)
            for ahead in range(first, last + 1):
                target = day + timedelta(days=ahead)
                if (known is None or target <= known) and watch.day_fits(
                    target, moment
                ):
                    return True
        return False


# From the booking pages' own text (scope preference infoForAllAppointments):
# same-day slots between 7 and 8, next week's between 9 and 11 on weekdays,
# and slots six weeks (42 days) ahead "overnight" - when in the night is not
# said, so that window is the whole night before a weekday. Each window
# releases about one day's slots, spread over its length, so a window's
# weight (how densely to look) is its chance of a release per minute: the
# one-hour window 1, the two-hour window 1/2, the six-hour night 1/6.
RELEASE_WINDOWS = (
    ReleaseWindow(name="same-day", weekdays=WEEKDAYS, start=time(7), end=time(8)),
    ReleaseWindow(
        name="next-week",
        weekdays=WEEKDAYS,
        start=time(9),
        end=time(11),
        lead_days=(7, 13),
        weight=0.5,
    ),
    ReleaseWindow(
        name="six-weeks",
        weekdays=WEEKDAYS,
        start=time(0),
        end=time(6),
        lead_days=(42, 42),
        weight=1 / 6,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Segment:
    """A stretch of one day with one weight (Unix times, end exclusive)."""

    start: float
    end: float
    weight: float
    window: str | None = None

    @property
    def minutes(self) -> float:
        """Its length in minutes."""
        return (self.end - self.start) / 60


def relevant_windows(
    watches: Sequence[Watch],
    day: date,
    windows: Iterable[ReleaseWindow],
    best: Mapping[str, date] | None = None,
) -> tuple[ReleaseWindow, ...]:
    """The windows of ``day`` that may release a slot one of ``watches`` could use.

    ``best``: per watch, the day of the earliest fitting slot it knows of
    (see :meth:`ReleaseWindow.useful`).
    """
    return tuple(
        w
        for w in windows
        if day.weekday() in w.weekdays
        and office_holiday(day) is None
        and w.useful(watches, day, best)
    )


def day_profile(
    day: date,
    windows: Iterable[ReleaseWindow],
    *,
    day_weight: float,
    night_weight: float,
    day_hours: tuple[time, time] = (time(6), time(23)),
) -> list[Segment]:
    """How densely to look through ``day``: consecutive weighted segments.

    ``windows`` are the ones that count (:func:`relevant_windows`); the rest
    of the day weighs ``day_weight`` during ``day_hours`` (when people book,
    cancel and let reservations expire) and ``night_weight`` outside them.
    """

    def at(moment: time) -> float:
        return datetime.combine(day, moment, BERLIN).timestamp()

    midnight = at(time())
    end = datetime.combine(day + timedelta(days=1), time(), BERLIN).timestamp()
    active = list(windows)
    points = {midnight, end, at(day_hours[0]), at(day_hours[1])}
    points.update(at(w.start) for w in active)
    points.update(at(w.end) for w in active)
    edges = sorted(p for p in points if midnight <= p <= end)
    segments: list[Segment] = []
    for start, stop in itertools.pairwise(edges):
        if stop <= start:
            continue
        middle = (start + stop) / 2
        base = (
            day_weight
            if at(day_hours[0]) <= middle < at(day_hours[1])
            else night_weight
        )
        inside = [w for w in active if at(w.start) <= middle < at(w.end)]
        best = max(inside, key=lambda w: w.weight, default=None)
        if best is not None and best.weight > base:
            segments.append(
                Segment(start=start, end=stop, weight=best.weight, window=best.name)
            )
        else:
            segments.append(Segment(start=start, end=stop, weight=base))
    return segments


def weighed_minutes(segments: Iterable[Segment], since: float | None = None) -> float:
    """Weight times minutes of ``segments`` (from ``since`` on, if given)."""
    total = 0.0
    for segment in segments:
        start = segment.start if since is None else max(segment.start, since)
        if segment.end > start:
            total += segment.weight * (segment.end - start) / 60
    return total


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
