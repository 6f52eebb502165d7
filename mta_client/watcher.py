"""The watcher: polls for every watch at once, within the city's limits.

* The :mod:`~mta_client.planner` turns the watches into query groups; each
  group is asked in one ``available-calendar/`` request, and the later days a
  watch still needs cost one request each, asked at once when such a day
  first becomes bookable and refreshed slowly after that.
* Requests are paced through the client's request budget, so a 429 does not
  happen under default settings however many watches there are: the
  intervals stretch when the groups would need more than a share of the
  server's limit.
* It polls more often inside the city's published release windows (Europe/
  Berlin: weekdays 7-8 same-day slots, 9-11 next week, overnight six weeks
  ahead) than outside them.
* The captcha token is refreshed ahead of its expiry, so neither a search nor
  a booking waits for proof-of-work.
* Each new fitting slot is reported once per watch, and again only after it
  was reported gone; the reported slots are kept in the state store, so a
  restart reports nothing twice.
* Auto-booking watches book their first fitting slot at once (see
  :mod:`~mta_client.booking`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
import logging
import math
import time as real_time
from typing import Any

from .booking import Booker
from .client import BERLIN, MTAClient
from .exceptions import (
    MTABlockedError,
    MTABudgetExceededError,
    MTAError,
    MTAMaintenanceError,
    MTARateLimitError,
)
from .models import AvailableCalendar, Catalogue, Slot
from .planner import DayQuery, QueryGroup, days_needed, plan
from .store import MemoryStore, StateStore, StoreError
from .watch import BookingState, SlotEvent, SlotEventKind, Watch, WatchEvent, slot_key

__all__ = ["RELEASE_WINDOWS", "PollPolicy", "ReleaseWindow", "Watcher", "WatcherStats"]

_LOGGER = logging.getLogger(__name__)
STATE_VERSION = 1
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


@dataclass(frozen=True, kw_only=True)
class ReleaseWindow:
    """A time of day at which the city releases slots in bulk (Munich time)."""

    name: str
    weekdays: frozenset[int]
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        """Whether a moment falls into this window."""
        local = moment.astimezone(BERLIN)
        return (
            local.weekday() in self.weekdays
            and self.start <= local.time().replace(tzinfo=None) < self.end
        )


# From the booking pages' own text (scope preference infoForAllAppointments):
# same-day slots between 7 and 8, next week's between 9 and 11 on weekdays,
# and slots six weeks ahead "overnight" - the nightly job runs shortly after
# midnight, before a weekday.
RELEASE_WINDOWS = (
    ReleaseWindow(name="same-day", weekdays=WEEKDAYS, start=time(7), end=time(8)),
    ReleaseWindow(name="next-week", weekdays=WEEKDAYS, start=time(9), end=time(11)),
    ReleaseWindow(name="six-weeks", weekdays=WEEKDAYS, start=time(0), end=time(1)),
)


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """How often to look.

    Attributes:
        window_interval: seconds between looks per group inside a window.
        other_interval: seconds between looks per group outside windows.
        cron_offset: seconds after each full minute at which to look, or None
            for no alignment. The city's per-minute cron (calculateSlots,
            deallocateAppointmentData, deleteReservedData) is what makes new
            slots visible, so a look just after it sees them first; looking
            more often inside windows allows for the cron running longer
            during bulk releases.
        day_interval: seconds between refreshes of a later day already seen.
        budget_share: the share of the server's limit polling may use; the
            rest stays free for bookings and for the person's own browsing.
        days_per_watch: later days a watch may ask for, at most.
        token_lead: seconds before the first look that needs a new captcha
            token at which it is fetched, so that no look waits for it.
        error_backoff: seconds to wait after a failed look.
        block_backoff: seconds to wait after a block or maintenance answer.
        release_windows: the city's release windows.

    """

    window_interval: float = 30.0
    other_interval: float = 60.0
    cron_offset: float | None = 4.0
    day_interval: float = 600.0
    budget_share: float = 0.5
    days_per_watch: int = 3
    token_lead: float = 5.0
    error_backoff: float = 60.0
    block_backoff: float = 900.0
    release_windows: tuple[ReleaseWindow, ...] = RELEASE_WINDOWS

    def in_window(self, moment: datetime) -> ReleaseWindow | None:
        """The release window a moment falls into, if any."""
        return next((w for w in self.release_windows if w.contains(moment)), None)


@dataclass(kw_only=True)
class WatcherStats:
    """What the watcher did, for status lines and diagnostics."""

    polls: int = 0
    day_polls: int = 0
    errors: int = 0
    last_poll: float | None = None
    last_error: str | None = None


type EventCallback = Callable[[WatchEvent], Awaitable[None] | None]


@dataclass(kw_only=True)
class _GroupState:
    group: QueryGroup
    due: float = 0.0
    days: dict[date, float] = field(default_factory=dict)
    providers: dict[date, frozenset[int]] = field(default_factory=dict)
    queries: dict[date, DayQuery] = field(default_factory=dict)


class Watcher:
    """Watches for fitting slots and reports (and books) them.

    Args:
        client: the client to ask through (its budget paces everything).
        store: where reported slots and bookings survive restarts.
        policy: how often to look.
        on_event: called with every :class:`SlotEvent` and
            :class:`BookingEvent`, in order.
        on_error: called by :meth:`run` with each failed look's exception and
            the seconds until the next try.

    """

    def __init__(
        self,
        client: MTAClient,
        *,
        store: StateStore | None = None,
        policy: PollPolicy | None = None,
        on_event: EventCallback | None = None,
        on_error: Callable[[MTAError, float], None] | None = None,
    ) -> None:
        """Set up; nothing is sent before :meth:`run` or :meth:`check`."""
        self.client = client
        self.clock = client.clock
        self.store: StateStore = store or MemoryStore()
        self.policy = policy or PollPolicy()
        self.on_event = on_event
        self.on_error = on_error
        self.stats = WatcherStats()
        self._watches: dict[str, Watch] = {}
        self._groups: dict[tuple[tuple[int, int], ...], _GroupState] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._loaded = False
        self._catalogue: Catalogue | None = None
        self._wake = asyncio.Event()
        self._planned_on: date | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.booker = Booker(client, state=self._state, save=self._save)

    # --- watches -------------------------------------------------------------

    @property
    def watches(self) -> list[Watch]:
        """The active watches."""
        return list(self._watches.values())

    def add(self, watch: Watch) -> None:
        """Start watching (replaces a watch with the same id)."""
        self._watches[watch.id] = watch
        self._replan()

    def remove(self, watch_id: str) -> None:
        """Stop watching; its stored state is dropped too."""
        self._watches.pop(watch_id, None)
        self._state.pop(watch_id, None)
        self._replan()

    def booking_state(self, watch_id: str) -> BookingState:
        """Where the watch's automatic booking stands."""
        return self.booker.state_of(watch_id)

    def reported(self, watch_id: str) -> dict[str, float]:
        """Slots currently reported for a watch: slot key → when first seen."""
        return dict(self._state.get(watch_id, {}).get("reported", {}))

    def _replan(self) -> None:
        now = self._now()
        self._planned_on = now.astimezone(BERLIN).date()
        old = self._groups
        self._groups = {}
        for group in plan(self._watches.values(), now, self._catalogue):
            previous = old.get(group.key)
            state = _GroupState(group=group)
            # A group that is new or asks for other offices or watches is
            # looked at at once; an unchanged one keeps its schedule.
            if previous is not None and previous.group == group:
                state.due, state.providers = previous.due, previous.providers
            self._groups[group.key] = state
        self._wake.set()

    # --- state ---------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored state and resume interrupted bookings."""
        if self._loaded:
            return
        stored = await self.store.load()
        version = stored.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            # Dropping it could report everything again, or book twice.
            msg = f"stored state of version {version}; this one reads {STATE_VERSION}"
            raise StoreError(msg)
        self._state.clear()
        self._state.update(stored.get("watches", {}))
        self._catalogue = await self.client.get_catalogue()
        for watch in self.watches:
            watch.check_contact(self._catalogue)
        self._replan()
        for watch in self.watches:
            event = await self.booker.resume(watch)
            if event is not None:
                await self._emit([event])
        self._loaded = True

    async def _save(self) -> None:
        await self.store.save({"version": STATE_VERSION, "watches": self._state})

    # --- running -------------------------------------------------------------

    async def run(self) -> None:
        """Watch until cancelled."""
        await self.load()
        try:
            while True:
                next_at = await self._run_due()
                await self._sleep_until(next_at)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def check(self) -> list[WatchEvent]:
        """Look once for every watch (all groups and needed days).

        For one-off checks and for callers with their own schedule (Home
        Assistant's coordinator). Errors propagate.
        """
        await self.load()
        events: list[WatchEvent] = []
        for state in list(self._groups.values()):
            events += await self._poll_group(state)
            for query in self._due_days(state, due_only=False):
                events += await self._poll_day(state, query)
        await self._drain_bookings()
        return events

    async def _drain_bookings(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run_due(self) -> float:
        """Do what is due; return when the next thing is due."""
        if self._now().astimezone(BERLIN).date() != self._planned_on:
            self._replan()  # relative windows ("the next 14 days") moved on
        now = self.clock.time()
        for state in sorted(self._groups.values(), key=lambda s: s.due):
            if state.due <= now:
                try:
                    await self._poll_group(state)
                except MTAError as err:
                    state.due = self.clock.time() + self._backoff(err)
                    continue
                state.due = self._next_due(self.clock.time())
            for query in self._due_days(state, due_only=True):
                try:
                    await self._poll_day(state, query)
                except MTAError as err:
                    state.days[query.day] = self.clock.time() + self._backoff(err)
        dues = [s.due for s in self._groups.values()]
        dues += [d for s in self._groups.values() for d in s.days.values()]
        next_look = min(dues, default=self.clock.time() + self.policy.other_interval)
        refresh_at = await self._refresh_token_before(next_look)
        return next_look if refresh_at is None else min(next_look, refresh_at)

    async def _sleep_until(self, when: float) -> None:
        delay = when - self.clock.time()
        if delay <= 0:
            return
        self._wake.clear()
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _next_due(self, after: float) -> float:
        """When to look next: an interval on, snapped to the cron's minute grid."""
        interval = self.interval()
        offset = self.policy.cron_offset
        if offset is None:
            return after + interval
        if interval < 60:  # noqa: PLR2004 - a minute
            step = 60 / max(1, round(60 / interval))
        else:
            step = 60 * math.ceil(interval / 60)
        earliest = after + interval - step / 2
        return math.ceil((earliest - offset) / step) * step + offset

    def interval(self) -> float:
        """Seconds between looks per group now, stretched to fit the budget."""
        moment = self._now()
        base = (
            self.policy.window_interval
            if self.policy.in_window(moment)
            else self.policy.other_interval
        )
        budget = self.client.budget
        per_second = budget.limit * self.policy.budget_share / budget.window
        return max(base, len(self._groups) / per_second)

    def retry_delay(self, err: MTAError) -> float:
        """Seconds to wait after a look failed with ``err``."""
        if isinstance(err, MTABlockedError | MTAMaintenanceError):
            return self.policy.block_backoff
        if isinstance(err, MTARateLimitError | MTABudgetExceededError):
            return max(self.policy.error_backoff, err.retry_after)
        return self.policy.error_backoff

    def _backoff(self, err: MTAError) -> float:
        """Record a failed look; return how long to wait before the next."""
        self.stats.errors += 1
        self.stats.last_error = type(err).__name__
        delay = self.retry_delay(err)
        _LOGGER.warning("Looking for slots failed (next try in %.0f s): %s", delay, err)
        if self.on_error is not None:
            self.on_error(err, delay)
        return delay

    def _token_needed(self) -> bool:
        if self._catalogue is None:
            return False
        return any(
            self._catalogue.captcha_required(s.group.office_ids)
            for s in self._groups.values()
        )

    async def _refresh_token_before(self, next_look: float) -> float | None:
        """Renew the captcha token just before the look that would need it.

        Returns when to come back for that, or None when nothing is pending.
        The token is used for as long as it lasts, and renewed only shortly
        before a look that could not use it any more.
        """
        cache = self.client.captcha
        if not self._token_needed() or cache.expires_at is None:
            return None
        now = self.clock.time()
        if not cache.needs_refresh(next_look - now):
            return None
        refresh_at = next_look - self.policy.token_lead
        if refresh_at > now:
            return refresh_at
        try:
            await cache.refresh()
        except MTAError as err:
            _LOGGER.warning("Renewing the captcha token failed: %s", type(err).__name__)
        return None

    # --- polling -------------------------------------------------------------

    async def _poll_group(self, state: _GroupState) -> list[WatchEvent]:
        group = state.group
        calendar = await self.client.get_available_calendar(
            office_ids=group.office_ids,
            services=group.services,
            start_date=group.start,
            end_date=group.end,
        )
        self.stats.polls += 1
        self.stats.last_poll = self.clock.time()
        seen = real_time.perf_counter()
        coverage = _coverage(calendar, group.office_ids, group.start, group.end)
        events = await self._report(group, calendar.slots, coverage, seen)
        self._schedule_days(state, calendar)
        return events

    async def _poll_day(self, state: _GroupState, query: DayQuery) -> list[WatchEvent]:
        state.days[query.day] = self.clock.time() + self.policy.day_interval
        calendar = await self.client.get_available_calendar(
            office_ids=query.office_ids,
            services=state.group.services,
            start_date=query.day,
            end_date=state.group.end,
            slots_start_date=query.day,
            slots_end_date=query.day,
        )
        self.stats.day_polls += 1
        seen = real_time.perf_counter()
        # The server may snap to a later day when the asked one filled up.
        answered = calendar.slots_start_date or query.day
        coverage = {
            (day, office)
            for day in {query.day, answered}
            for office in query.office_ids
        }
        slots = [
            s
            for s in calendar.slots
            if s.start.astimezone(BERLIN).date() in {query.day, answered}
        ]
        return await self._report(state.group, slots, coverage, seen)

    def _schedule_days(self, state: _GroupState, calendar: AvailableCalendar) -> None:
        """Ask at once for days that became bookable (or gained an office)."""
        providers = {
            day.date: frozenset(day.provider_ids) for day in calendar.available_days
        }
        wanted = days_needed(
            state.group,
            calendar,
            self._now(),
            per_watch=self.policy.days_per_watch,
            best=self._best_days(state.group),
        )
        now = self.clock.time()
        days: dict[date, float] = {}
        for query in wanted:
            changed = providers.get(query.day) != state.providers.get(query.day)
            days[query.day] = now if changed else state.days.get(query.day, now)
        state.days = days
        state.providers = providers
        state.queries = {q.day: q for q in wanted}

    def _best_days(self, group: QueryGroup) -> dict[str, date]:
        """Per watch, the day of the earliest fitting slot it knows of."""
        best: dict[str, date] = {}
        for watch in group.watches:
            reported = self._state.get(watch.id, {}).get("reported", {})
            days = [_parse_key(key)[1].astimezone(BERLIN).date() for key in reported]
            if days:
                best[watch.id] = min(days)
        return best

    def _due_days(self, state: _GroupState, *, due_only: bool) -> list[DayQuery]:
        now = self.clock.time()
        return [
            query
            for day, query in sorted(state.queries.items())
            if not due_only or state.days[day] <= now
        ]

    # --- reporting -----------------------------------------------------------

    async def _report(
        self,
        group: QueryGroup,
        slots: list[Slot],
        coverage: set[tuple[date, int]],
        seen: float,
    ) -> list[WatchEvent]:
        """Compare what the server says with what each watch has reported."""
        now = self._now()
        events: list[WatchEvent] = []
        for watch in group.watches:
            if watch.id not in self._watches:
                continue
            entry = self._state.setdefault(watch.id, {})
            reported: dict[str, float] = entry.setdefault("reported", {})
            fitting = [s for s in slots if watch.matches(s, now)]
            if fitting and self.booker.wants_booking(watch):
                self._start_booking(watch, fitting, seen)
            current = {slot_key(s.office_id, s.start): s for s in fitting}
            for key, slot in current.items():
                if key not in reported:
                    reported[key] = self.clock.time()
                    events.append(self._slot_event(SlotEventKind.NEW, watch, slot))
            for key in list(reported):
                office_id, start = _parse_key(key)
                covered = (start.astimezone(BERLIN).date(), office_id) in coverage
                if key not in current and (covered or start <= now):
                    del reported[key]
                    slot = Slot(office_id=office_id, start=start)
                    events.append(self._slot_event(SlotEventKind.GONE, watch, slot))
        # Report first: a state that cannot be saved must not swallow events.
        await self._emit(events)
        if events:
            await self._save()
        return events

    def _slot_event(self, kind: SlotEventKind, watch: Watch, slot: Slot) -> SlotEvent:
        return SlotEvent(
            kind=kind,
            watch_id=watch.id,
            office_id=slot.office_id,
            start=slot.start,
            services=watch.service_key,
            seen_at=self.clock.time(),
        )

    def _start_booking(self, watch: Watch, fitting: list[Slot], seen: float) -> None:
        if any(t.get_name() == f"book:{watch.id}" for t in self._tasks):
            return
        candidates = sorted(fitting, key=lambda s: (s.start, s.office_id))

        async def book() -> None:
            event = await self.booker.book(watch, candidates, seen=seen)
            if event is None:
                return
            if event.state is BookingState.BOOKED and event.start is not None:
                # The slot is ours now: it leaves the free ones without a "gone".
                reported = self._state.get(watch.id, {}).get("reported", {})
                reported.pop(slot_key(event.office_id or 0, event.start), None)
                await self._save()
            await self._emit([event])

        task = asyncio.create_task(book(), name=f"book:{watch.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, events: Iterable[WatchEvent]) -> None:
        if self.on_event is None:
            return
        for event in events:
            result = self.on_event(event)
            if result is not None:
                await result

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)


def _coverage(
    calendar: AvailableCalendar, offices: tuple[int, ...], start: date, end: date
) -> set[tuple[date, int]]:
    """The (day, office) pairs whose free slots this answer tells completely.

    Slot times come for the first bookable day, so nothing is free before it;
    a listed day tells that offices missing from its ``providerIDs`` have
    nothing free; days between listed ones that are not listed have nothing
    free anywhere; and an empty answer means nothing is free at all.
    """
    listed = {day.date: set(day.provider_ids) for day in calendar.available_days}
    last = max(listed) if listed else end
    covered = {
        (date.fromordinal(ordinal), office)
        for ordinal in range(start.toordinal(), last.toordinal() + 1)
        if date.fromordinal(ordinal) not in listed
        for office in offices
    }
    for day in calendar.available_days:
        for office in offices:
            if day.offices or office not in listed[day.date]:
                covered.add((day.date, office))
    return covered


def _parse_key(key: str) -> tuple[int, datetime]:
    office, _, stamp = key.partition("@")
    return int(office), datetime.fromtimestamp(int(stamp), UTC)
