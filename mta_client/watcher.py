"""The watcher: one engine that looks for every watch at once, within the city's limits.

A host drives it in one of two ways:

* ``await watcher.run()`` loops until cancelled (the ``mta watch`` command);
* ``result = await watcher.poll()`` runs exactly what is due now and says
  when to come back (``result.next_due`` on the clock's monotonic time,
  ``result.delay`` in seconds from now). A host with its own scheduler (Home
  Assistant's coordinator) calls :meth:`Watcher.poll` again at that time;
  :meth:`Watcher.run` is nothing but that loop.

What it does, and the pacing it keeps:

* The :mod:`~mta_client.planner` turns the watches into query groups; each
  group is asked in one ``available-calendar/`` request, and the later days a
  watch still needs cost one request each, asked at once when such a day
  first becomes bookable and refreshed slowly after that.
* Each group spends an explicit budget, :attr:`PollPolicy.requests_per_day`
  (scaled by its size and the urgency of its watches; :meth:`Watcher.explain`
  shows the plan), where new slots are likeliest: a few looks a minute,
  spread over the seconds after the city's per-minute cron, inside the
  release windows (Europe/Berlin: weekdays 7-8 same-day slots, 9-11 next
  week, the night before six weeks ahead) that may bring a slot earlier
  than any its watches know; a look every few minutes outside them, fewer
  at night; and a look when a vanished slot may come back (15 and 30
  minutes: the city's reservation and activation timeouts). A day that
  spent more than planned slows down later.
* Everything goes through the client's request budget, so a 429 does not
  happen under default settings however many watches there are: all groups
  together stay within a share of the server's limit, and since the city
  forgets its count only after a minute without requests, the watcher
  falls silent for that minute right after a minute's last look, before
  the count would run out in the middle of the next one.
* With :meth:`PollPolicy.with_interval` (``mta watch --interval``) it looks
  at a fixed pace instead; against the city's own server never more often
  than every :attr:`PollPolicy.min_city_interval` seconds.
* The captcha token is renewed just before the look that would need a new
  one, so neither a search nor a booking waits for proof-of-work.
* Each new fitting slot is reported once per watch, and again only after it
  was reported gone; the reported slots are kept in the state store, so a
  restart reports nothing twice.
* Auto-booking watches book their first fitting slot at once, in a task of
  the host's choosing (``task_factory``); :meth:`Watcher.book`,
  :meth:`Watcher.confirm` and :meth:`Watcher.cancel` act on request. At most
  one booking per watch (see :mod:`~mta_client.booking`).
* A booking waiting for its activation link is asked about once a little
  after the activation deadline, rarely otherwise and once after a restart
  (:class:`~mta_client.booking.StatusChecks`; one request each): it becomes
  ``confirmed`` when the link was used (perhaps in a browser), or ``lapsed``
  when the city dropped it, and an auto-booking watch books again.

Failures: :meth:`Watcher.poll` never raises for a failed look. The failed
work is tried again after the back-off :meth:`PollPolicy.retry_after`
recommends - ``block_backoff`` (15 minutes) after a block or maintenance
answer, ``error_backoff`` after anything else, longer when the city's rate
limit says so - and every failure is in :attr:`PollResult.errors` (and goes
to ``on_error``). A host decides what to show. Only a state store that cannot
be read or written (:class:`~mta_client.store.StoreError`) is raised: going
on without it could report everything again, or book twice.

Time: pacing runs on the clock's monotonic time; wall time is used only for
what the city sees (dates, slot times, lead times, release windows, the
cron's minute grid).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
import itertools
import logging
import math
import statistics
import time as real_time
from typing import TYPE_CHECKING, Any

from yarl import URL

from .booking import Booker, NoFittingSlotError
from .client import BERLIN, DEFAULT_BASE_URL, MTAClient
from .clock import monotonic_of
from .exceptions import (
    MTABlockedError,
    MTABudgetExceededError,
    MTACaptchaError,
    MTAConnectionError,
    MTAError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAValidationError,
)
from .models import AvailableCalendar, Catalogue, ProcessCredentials, Slot
from .planner import (
    RELEASE_WINDOWS,
    DayQuery,
    QueryGroup,
    ReleaseWindow,
    Segment,
    day_profile,
    days_needed,
    office_holiday,
    plan,
    relevant_windows,
    weighed_minutes,
)
from .store import (
    STATE_VERSION,
    MemoryStore,
    StateStore,
    StoreError,
    WatcherState,
    WatchState,
    dump_state,
    parse_state,
)
from .watch import (
    URGENCIES,
    BookingEvent,
    BookingState,
    SlotEvent,
    SlotEventKind,
    Watch,
    WatchEvent,
    slot_key,
)

if TYPE_CHECKING:
    from .models import Scope
    from .watch import Urgency

__all__ = [
    "RELEASE_WINDOWS",
    "BookingStatus",
    "GroupPlan",
    "Plan",
    "PollError",
    "PollPolicy",
    "PollResult",
    "ReleaseWindow",
    "WatchStatus",
    "Watcher",
    "WatcherStats",
    "is_city",
]

_LOGGER = logging.getLogger(__name__)
MINUTE = 60.0


def is_city(base_url: str | URL) -> bool:
    """Whether ``base_url`` points at the city's own server."""
    return URL(str(base_url)).host == URL(DEFAULT_BASE_URL).host


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """How often to look, and how long to wait after a failure: the one policy.

    By default each query group spends an explicit budget of requests
    (:attr:`requests_per_day`, scaled by the most urgent of its watches)
    where new slots are likeliest: densely inside the release windows that
    can release a slot one of its watches could use, a few looks a minute
    spread over the seconds after the city's per-minute cron
    (:attr:`minute_offsets`), sparsely the rest of the day, least at night;
    again 15 and 30 minutes after a slot vanished (:attr:`echo_after`: an
    expired reservation or activation brings it back). What every group
    plans together stays within :attr:`budget_share` of the server's limit.
    With :attr:`fixed_interval` (``mta watch --interval``) the watcher looks
    at a fixed pace instead.

    Attributes:
        requests_per_day: requests a group may send per day (its
            later-day requests included), for watches of ``normal``
            urgency, as the average day of a week (see :attr:`weekly`).
            The default is the 720 a day of a bot asking once every two
            minutes, later-day requests included.
        group_exponent: a group of ``n`` watches may send ``n`` to this
            power times as many (one look serves them all; their filters
            need later days of their own).
        relaxed_factor, urgent_factor: the budget of a group whose most
            urgent watch is ``relaxed`` or ``urgent``, relative to normal.
        max_looks_per_minute: the most looks per minute and group inside a
            window (one fewer for ``relaxed``, one more for ``urgent``).
        minute_offsets: for 1, 2, 3, 4... looks in a minute, the seconds
            after the full minute at which to look: slots become visible
            when the city's cron run is done, some seconds after the minute,
            later during bulk releases, so looks spread over those seconds.
        day_weight: weight of the hours outside windows in ``day_hours``.
        night_weight: weight of the remaining (night) hours.
        day_hours: when people book, cancel and let reservations expire.
        echo_after: seconds after a fitting slot vanished at which to look
            again (the city's reservation and activation timeouts).
        dense_from: looks per minute from which looks follow the minute
            offsets; below, one look every so many minutes.
        min_gap: the shortest pause between two looks at one group.
        max_pause: the longest pause between two looks at one group while
            the day's budget lasts.
        fixed_interval: look at this fixed pace instead (seconds outside the
            windows; :attr:`window_interval` inside); None for the budget.
        window_interval: the fixed pace inside a window.
        other_interval: the fixed pace outside windows.
        min_city_interval: the shortest fixed pace against the city's server.
        cron_offset: seconds after each full minute of a fixed-pace look.
        cron_settled: seconds after the full minute by which the city's cron
            run has shown most of its slots: a minute of silence the
            limiter needs starts after a look at or after this second, so
            that it ends once the next run has shown them.
        day_interval: seconds between refreshes of a later day already seen
            at a fixed pace (with the budget: every :attr:`day_every` looks,
            but never more often than every :attr:`day_interval_min` s).
        day_every: group looks per refresh of a later day already seen.
        day_interval_min: the shortest pause between two refreshes of a day.
        budget_share: the share of the server's limit polling may use; the
            rest stays free for bookings and for the person's own browsing.
        weekly: share each group's week of budget out over its days by how
            much they weigh (windows on weekdays, none at weekends), so that
            :attr:`requests_per_day` is the week's average; else every day
            gets the same.
        max_day_factor: the most one day may get, relative to the average.
        best_fresh: seconds for which a slot an answer listed counts as the
            earliest a watch has (see ``Watcher._best_days``): a window that
            can only bring later slots is not looked at densely.
        days_per_watch: later days a watch may ask for, at most.
        token_lead: seconds before the first look that needs a new captcha
            token at which it is fetched, so that no look waits for it.
        error_backoff: seconds to wait after a failed look.
        block_backoff: seconds to wait after a block or maintenance answer.
            The engine then tries again (a block may be lifted, maintenance
            ends) and reports each failure; it never gives up by itself.
        release_windows: the city's release windows.

    """

    requests_per_day: float = 720.0
    group_exponent: float = 0.6
    relaxed_factor: float = 0.5
    urgent_factor: float = 2.0
    max_looks_per_minute: int = 5
    minute_offsets: tuple[tuple[float, ...], ...] = (
        (18.0,),
        (14.0, 34.0),
        (8.0, 20.0, 36.0),
        (6.0, 16.0, 27.0, 42.0),
        (6.0, 16.0, 26.0, 37.0, 48.0),
        (5.0, 14.0, 23.0, 32.0, 42.0, 52.0),
    )
    day_weight: float = 0.03
    night_weight: float = 0.01
    day_hours: tuple[time, time] = (time(6), time(23))
    echo_after: tuple[float, ...] = (900.0, 1800.0)
    dense_from: float = 0.75
    min_gap: float = 8.0
    max_pause: float = 1800.0
    fixed_interval: float | None = None
    window_interval: float = 30.0
    other_interval: float = 60.0
    min_city_interval: float = 30.0
    cron_offset: float | None = 4.0
    cron_settled: float = 17.5
    day_interval: float = 600.0
    day_every: int = 4
    day_interval_min: float = 60.0
    budget_share: float = 0.3
    weekly: bool = True
    max_day_factor: float = 2.0
    best_fresh: float = 900.0
    days_per_watch: int = 3
    token_lead: float = 5.0
    error_backoff: float = 60.0
    block_backoff: float = 900.0
    release_windows: tuple[ReleaseWindow, ...] = RELEASE_WINDOWS

    def urgency_factor(self, urgency: Urgency) -> float:
        """The budget of a group of this urgency, relative to ``normal``."""
        if urgency == "relaxed":
            return self.relaxed_factor
        if urgency == "urgent":
            return self.urgent_factor
        return 1.0

    def looks_per_minute_cap(self, urgency: Urgency) -> int:
        """The most looks per minute inside a window for this urgency."""
        step = {"relaxed": -1, "urgent": 1}.get(urgency, 0)
        return max(1, min(len(self.minute_offsets), self.max_looks_per_minute + step))

    def in_window(self, moment: datetime) -> ReleaseWindow | None:
        """The release window a moment falls into, if any."""
        return next((w for w in self.release_windows if w.contains(moment)), None)

    def retry_after(self, err: MTAError) -> float:
        """Seconds to wait before trying again the work that failed with ``err``."""
        if isinstance(err, MTABlockedError | MTAMaintenanceError):
            return self.block_backoff
        if isinstance(err, MTARateLimitError | MTABudgetExceededError):
            return max(self.error_backoff, err.retry_after)
        return self.error_backoff

    def toward(self, base_url: str | URL) -> PollPolicy:
        """This policy as used against ``base_url``: never below the city's minimum."""
        if not is_city(base_url):
            return self
        least = self.min_city_interval
        return replace(
            self,
            window_interval=max(self.window_interval, least),
            other_interval=max(self.other_interval, least),
        )

    def with_interval(self, interval: float, *, base_url: str | URL) -> PollPolicy:
        """The policy for a chosen pause between looks (``mta watch --interval``).

        ``interval`` is the pause outside the release windows; inside them
        the pause is at most :attr:`window_interval`, or ``interval`` when
        that is shorter. Against the city's server neither goes below
        :attr:`min_city_interval`, and the back-offs stay; against another
        server (the simulator) the back-offs shrink to ``interval`` too, so
        that tests and demos need not wait a minute.
        """
        changed = replace(
            self,
            fixed_interval=interval,
            other_interval=interval,
            window_interval=min(interval, self.window_interval),
        )
        if is_city(base_url):
            return changed.toward(base_url)
        return replace(
            changed,
            error_backoff=min(self.error_backoff, interval),
            block_backoff=min(self.block_backoff, interval),
        )


# --- what a poll says -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BookingStatus:
    """Where a watch's booking stands (credentials: :meth:`Watcher.credentials`)."""

    state: BookingState
    office_id: int | None = None
    start: datetime | None = None
    """Aware, UTC."""
    process_id: int | None = None
    activation_deadline: datetime | None = None
    reason: str | None = None
    """A short machine reason when the last attempt failed."""


@dataclass(frozen=True, kw_only=True)
class WatchStatus:
    """One watch as the engine knows it now."""

    watch_id: str
    slots: tuple[Slot, ...]
    """The free fitting slots currently known, sorted by (start, office_id)."""
    booking: BookingStatus
    last_checked: datetime | None
    """Wall time of the last successful look that covered this watch."""

    @property
    def earliest(self) -> Slot | None:
        """The earliest free fitting slot, if any."""
        return self.slots[0] if self.slots else None


@dataclass(frozen=True, kw_only=True)
class PollError:
    """A failure met during a poll, and what the engine does about it."""

    error: MTAError
    retry_after: float
    """Seconds the engine waits before trying that work again."""
    what: str
    """``catalogue``, ``group:<services>``, ``day:<services>:<date>``,
    ``captcha`` or ``booking:<watch id>``."""
    watch_ids: tuple[str, ...] = ()
    """The watches the failed work was for; empty when it was for every watch
    (the catalogue, the captcha)."""


@dataclass(frozen=True, kw_only=True)
class PollResult:
    """What a poll did, what the engine knows, and when to come back."""

    events: tuple[WatchEvent, ...]
    """The events emitted during this poll, in order. Events between polls
    (a booking in its own task, :meth:`Watcher.book`, a resumed booking in
    :meth:`Watcher.load`) go to ``on_event`` only; the statuses show them."""
    statuses: dict[str, WatchStatus]
    """Every active watch."""
    next_due: float
    """The clock's ``monotonic()`` value at which to call :meth:`Watcher.poll`."""
    delay: float
    """Seconds from now until ``next_due`` (never negative)."""
    errors: tuple[PollError, ...]
    requests: int
    """Requests sent during this poll (bookings running meanwhile included)."""


@dataclass(kw_only=True)
class WatcherStats:
    """What the watcher did, for status lines and diagnostics."""

    polls: int = 0
    day_polls: int = 0
    errors: int = 0
    last_poll: float | None = None
    """Unix time of the last successful group look."""
    last_error: str | None = None


type EventCallback = Callable[[WatchEvent], Awaitable[None] | None]
type TaskFactory = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]
type GroupKey = tuple[tuple[int, int], ...]


@dataclass(kw_only=True)
class _GroupState:
    group: QueryGroup
    due: float = 0.0
    """Monotonic time of the next look."""
    days: dict[date, float] = field(default_factory=dict)
    """Monotonic time of each later day's next look."""
    providers: dict[date, frozenset[int]] = field(default_factory=dict)
    queries: dict[date, DayQuery] = field(default_factory=dict)
    spent: dict[date, int] = field(default_factory=dict)
    """Requests sent per local day (group looks and later days)."""
    echo: list[float] = field(default_factory=list)
    """Wall times of extra looks after a slot vanished."""
    profiles: dict[date, list[Segment]] = field(default_factory=dict)
    budgets: dict[date, float] = field(default_factory=dict)
    """Per day, its share of the week's budget (cleared with ``profiles``)."""
    best: dict[str, date] = field(default_factory=dict)
    """Per watch, the day of the earliest fitting slot it knows of."""
    day_gap: float = 600.0
    """Seconds between refreshes of a later day already seen."""
    looked: float | None = None
    """Unix time of the group's last look."""

    def count(self, moment: datetime) -> None:
        """Count one request against the day's budget."""
        day = moment.astimezone(BERLIN).date()
        self.spent[day] = self.spent.get(day, 0) + 1
        for old in [d for d in self.spent if d < day - timedelta(days=1)]:
            del self.spent[old]


@dataclass(frozen=True, kw_only=True)
class GroupPlan:
    """How one query group spends its requests (:meth:`Watcher.explain`).

    Detection times are what the pace alone gives: the mean wait from a
    slot becoming visible to the next look, for visibility spread evenly
    over the minute (``None`` when the group spends on no window).
    """

    services: tuple[tuple[int, int], ...]
    office_ids: tuple[int, ...]
    watches: tuple[str, ...]
    urgency: Urgency
    requests_per_day: float
    """The group's budget: requests per day."""
    windows: tuple[str, ...]
    """The release windows of this week the group spends on."""
    looks_per_minute_in_windows: float | None
    pause_outside: float
    """Seconds between looks outside windows, in the day hours."""
    detect_in_windows: float | None
    detect_outside: float

    @property
    def key(self) -> str:
        """The services as text: ``1063475x1+1063576x2``."""
        return _key_text(self.services)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What the watcher plans to send, group by group (:meth:`Watcher.explain`)."""

    groups: tuple[GroupPlan, ...]
    requests_per_day: float
    """All groups together."""
    limit_per_minute: float
    """The most requests per minute all groups may use together."""
    fixed_interval: float | None
    """The fixed pace (``--interval``) instead of the budget, if chosen."""


def _default_task_factory(
    coro: Coroutine[Any, Any, Any], name: str
) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=name)


class Watcher:
    """Watches for fitting slots and reports (and books) them.

    Args:
        client: the client to ask through (its budget paces everything).
        store: where reported slots and bookings survive restarts.
        policy: how often to look, and the back-offs after failures; made
            to keep :attr:`PollPolicy.min_city_interval` toward the city.
        on_event: called with every :class:`SlotEvent` and
            :class:`BookingEvent`, in order, as it happens - also with those
            between polls, which :attr:`PollResult.events` does not carry.
        on_error: called with each failed look's exception and the seconds
            until it is tried again.
        after_look: called with every :class:`PollResult`, at the end of
            :meth:`poll` and :meth:`check`.
        task_factory: starts automatic bookings as tasks, called with the
            coroutine and a name (default :func:`asyncio.create_task`); Home
            Assistant passes its background-task helper. The watcher keeps a
            reference to each task and :meth:`aclose` cancels them.

    """

    def __init__(
        self,
        client: MTAClient,
        *,
        store: StateStore | None = None,
        policy: PollPolicy | None = None,
        on_event: EventCallback | None = None,
        on_error: Callable[[MTAError, float], None] | None = None,
        after_look: Callable[[PollResult], None] | None = None,
        task_factory: TaskFactory | None = None,
    ) -> None:
        """Set up; nothing is sent before :meth:`poll`, :meth:`run` or :meth:`check`."""
        self.client = client
        self.clock = client.clock
        self.store: StateStore = store or MemoryStore()
        self.policy = (policy or PollPolicy()).toward(client.base_url)
        self.on_event = on_event
        self.on_error = on_error
        self.after_look = after_look
        self.task_factory: TaskFactory = task_factory or _default_task_factory
        self.stats = WatcherStats()
        self._watches: dict[str, Watch] = {}
        self._groups: dict[GroupKey, _GroupState] = {}
        self._state = WatcherState()
        self._loaded = False
        self._load_due = 0.0
        self._catalogue: Catalogue | None = None
        self._wake = asyncio.Event()
        self._planned_on: date | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox: list[WatchEvent] = []
        self._late_errors: list[PollError] = []
        self._last_checked: dict[str, datetime] = {}
        self._full_weights: dict[date, float] = {}
        self._confirmed: dict[str, dict[str, float]] = {}
        """Per watch, per reported slot, when an answer last listed it."""
        self._silence_until = 0.0
        """Monotonic time until which nothing is sent: the city's limiter
        forgets its count only after a minute without requests."""
        self._status_retry: dict[str, float] = {}
        """Per watch, the monotonic time before which a failed check of its
        booking (:meth:`_check_bookings`) is not tried again."""
        self.booker = Booker(
            client, state=self._state, save=self._save, scope_of=self._scope_of
        )

    # --- watches -------------------------------------------------------------

    @property
    def watches(self) -> list[Watch]:
        """The active watches."""
        return list(self._watches.values())

    def add(self, watch: Watch) -> None:
        """Start watching (replaces a watch with the same id); wakes :meth:`run`.

        Raises:
            MTAValidationError: the person's data misses a field an office
                of the watch requires (checked once the catalogue is known).

        """
        if self._catalogue is not None:
            watch.check_contact(self._catalogue)
        self._watches[watch.id] = watch
        self._replan()

    def remove(self, watch_id: str) -> None:
        """Stop watching; its stored state is dropped too. Wakes :meth:`run`.

        A booking of the watch under way is cancelled with it (a reservation
        it made is released by the city after its ``reservationDuration``).
        """
        for task in self._tasks:
            if task.get_name() == f"book:{watch_id}":
                task.cancel()
        self._watches.pop(watch_id, None)
        self._state.watches.pop(watch_id, None)
        self._last_checked.pop(watch_id, None)
        self._confirmed.pop(watch_id, None)
        self._replan()

    def booking_state(self, watch_id: str) -> BookingState:
        """Where the watch's booking stands."""
        return self.booker.state_of(watch_id)

    def reported(self, watch_id: str) -> dict[str, float]:
        """Slots currently reported for a watch: slot key → when first seen."""
        entry = self._state.watches.get(watch_id)
        return dict(entry.reported) if entry is not None else {}

    def status(self, watch_id: str) -> WatchStatus:
        """What the engine knows of one watch now.

        Raises:
            KeyError: no such watch.

        """
        watch = self._watches[watch_id]
        return WatchStatus(
            watch_id=watch_id,
            slots=tuple(self._free_slots(watch)),
            booking=self._booking_status(watch_id),
            last_checked=self._last_checked.get(watch_id),
        )

    def statuses(self) -> dict[str, WatchStatus]:
        """:meth:`status` of every active watch."""
        return {watch_id: self.status(watch_id) for watch_id in self._watches}

    def credentials(self, watch_id: str) -> ProcessCredentials | None:
        """The process id and auth key of the watch's booking (private)."""
        return self.booker.credentials(watch_id)

    def _free_slots(self, watch: Watch) -> list[Slot]:
        now = self._now()
        slots = [
            Slot(office_id=office, start=start)
            for office, start in map(_parse_key, self.reported(watch.id))
        ]
        return sorted(
            (s for s in slots if watch.matches(s, now)),
            key=lambda s: (s.start, s.office_id),
        )

    def _booking_status(self, watch_id: str) -> BookingStatus:
        record = self.booker.record(watch_id)
        return BookingStatus(
            state=record.state,
            office_id=record.office_id,
            start=record.start,
            process_id=record.process_id,
            activation_deadline=record.activation_deadline,
            reason=record.reason,
        )

    def _replan(self) -> None:
        now = self._now()
        self._planned_on = now.astimezone(BERLIN).date()
        old = self._groups
        self._groups = {}
        for group in plan(self._watches.values(), now, self._catalogue):
            previous = old.get(group.key)
            state = _GroupState(group=group)
            # A group that is new or asks for other offices or watches is
            # looked at at once; an unchanged one keeps its schedule. The
            # day's spending stays with the services either way.
            if previous is not None:
                state.spent, state.echo = previous.spent, previous.echo
                if previous.group == group:
                    state.due, state.providers = previous.due, previous.providers
                    state.day_gap = previous.day_gap
            self._groups[group.key] = state
        self._wake.set()

    def _scope_of(self, office_id: int) -> Scope | None:
        office = self._catalogue.office(office_id) if self._catalogue else None
        return office.scope if office is not None else None

    # --- state ---------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored state, load the catalogue, resume interrupted bookings.

        :meth:`poll`, :meth:`run` and :meth:`check` call it when needed. A
        state of an older version is migrated and saved at once.

        Raises:
            StoreError: the stored state cannot be read, or is of an unknown
                version (it is left as it is).
            MTAError: the catalogue could not be loaded (try again later).

        """
        if self._loaded:
            return
        stored = await self.store.load()
        state = parse_state(stored)
        self._state.watches.clear()
        self._state.watches.update(state.watches)
        if stored and stored.get("version") != STATE_VERSION:
            await self._save()
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
        await self.store.save(dump_state(self._state))

    # --- running -------------------------------------------------------------

    async def poll(self) -> PollResult:
        """Run exactly what is due now; say when to come back.

        Due work is the group looks, the later-day refreshes and the early
        captcha renewal. Failed looks do not raise: they are in
        :attr:`PollResult.errors` and are tried again after the policy's
        back-off. Automatic bookings start in their own tasks.

        Raises:
            StoreError: the state store cannot be read or written.
            MTAValidationError: a watch's contact misses a field an office
                requires (a configuration error: no waiting cures it).

        """
        sent = self.client.budget.sent
        self._outbox = []  # those of before went to on_event only
        errors: list[PollError] = []
        if not self._loaded and not await self._try_load(errors):
            return self._result(errors, sent, self._load_due)
        if self._now().astimezone(BERLIN).date() != self._planned_on:
            self._replan()  # relative windows ("the next 14 days") moved on
        await self._check_bookings(errors)
        await self._run_due(errors)
        return self._result(errors, sent, await self._next_wanted(errors))

    async def run(self) -> None:
        """Poll until cancelled: :meth:`poll`, then sleep until its ``next_due``.

        The sleep ends early when a watch is added or removed.
        """
        try:
            while True:
                result = await self.poll()
                await self._sleep_until(result.next_due)
        finally:
            await self.aclose()

    async def check(self) -> PollResult:
        """Look once at everything now (every group and needed day), for one-off looks.

        Unlike :meth:`poll`, errors propagate, and automatic bookings are
        waited for.
        """
        sent = self.client.budget.sent
        self._outbox = []
        errors: list[PollError] = []
        await self.load()
        await self._check_bookings(errors)
        for state in list(self._groups.values()):
            await self._poll_group(state)
            for query in self._due_days(state, due_only=False):
                await self._poll_day(state, query)
        await self._drain_bookings()
        return self._result(errors, sent, monotonic_of(self.clock) + self.interval())

    async def aclose(self) -> None:
        """Cancel the watcher's own tasks (automatic bookings) and wait for them.

        A booking cancelled mid-way is resumed by the next :meth:`load`.
        """
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _try_load(self, errors: list[PollError]) -> bool:
        if monotonic_of(self.clock) < self._load_due:
            return False
        try:
            await self.load()
        except (StoreError, MTAValidationError):
            raise
        except MTAError as err:
            delay = self._failed(err, "catalogue", errors)
            self._load_due = monotonic_of(self.clock) + delay
            return False
        return True

    def _result(
        self, errors: list[PollError], sent: int, next_due: float
    ) -> PollResult:
        events, self._outbox = tuple(self._outbox), []
        late, self._late_errors = self._late_errors, []
        result = PollResult(
            events=events,
            statuses=self.statuses(),
            next_due=next_due,
            delay=max(0.0, next_due - monotonic_of(self.clock)),
            errors=(*late, *errors),
            requests=self.client.budget.sent - sent,
        )
        if self.after_look is not None:
            self.after_look(result)
        return result

    async def _drain_bookings(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run_due(self, errors: list[PollError]) -> None:
        """Look at the groups and later days that are due.

        With the budget, a group's later days are refreshed together with
        a look at the group (one captcha token, the same moment after the
        cron); at a fixed pace, whenever they are due.
        """
        now = monotonic_of(self.clock)
        fixed = self.policy.fixed_interval is not None
        for state in sorted(self._groups.values(), key=lambda s: s.due):
            looked = False
            if state.due <= now:
                try:
                    await self._poll_group(state)
                except StoreError:
                    raise
                except MTAError as err:
                    self._group_failed(state, err, errors)
                    continue
                state.due = self._next_look(state)
                looked = True
            if not (fixed or looked):
                continue
            for query in self._due_days(state, due_only=True):
                try:
                    await self._poll_day(state, query)
                except StoreError:
                    raise
                except MTAError as err:
                    what = f"day:{_key_text(state.group.key)}:{query.day.isoformat()}"
                    state.days[query.day] = monotonic_of(self.clock) + self._failed(
                        err, what, errors, groups=(state.group,)
                    )
        if not fixed:
            self._plan_silence()

    def _group_failed(
        self, state: _GroupState, err: MTAError, errors: list[PollError]
    ) -> None:
        """Back off a group's failed look - and every look the same failure awaits.

        A block, maintenance, the rate limit, an unreachable server (and,
        for the groups that need a captcha token, a captcha failure) would
        fail every other look as well: those wait out the same back-off
        instead of spending a request each on the same failure, and the
        error names their watches too.
        """
        others = []
        if isinstance(err, _EVERY_LOOK):
            others = [
                other
                for other in self._groups.values()
                if other is not state and self._fails_alike(other, err)
            ]
        what = f"group:{_key_text(state.group.key)}"
        groups = [s.group for s in (state, *others)]
        until = monotonic_of(self.clock) + self._failed(
            err, what, errors, groups=groups
        )
        for held in (state, *others):
            held.due = max(held.due, until)
            for day, due in held.days.items():
                held.days[day] = max(due, until)

    def _fails_alike(self, state: _GroupState, err: MTAError) -> bool:
        """Whether a look at this group would meet ``err`` too."""
        if not isinstance(err, MTACaptchaError):
            return True
        catalogue = self._catalogue
        return catalogue is None or catalogue.captcha_required(state.group.office_ids)

    def _plan_silence(self) -> None:
        """Fall silent for a minute where it costs least, before the count runs out.

        The city counts requests until a whole minute passes without one
        (:mod:`~mta_client.ratelimit`). Rather than run into the limit in
        the middle of a minute's looks, the watcher falls silent when the
        rest of this minute's looks and the next minute's would not fit any
        more - right after the minute's first round of looks (every group
        that looks each minute has looked since the cron run's slots mostly
        show): the silence then ends when the next minute's cron run has
        shown its slots, so every cron run still gets a look soon after it;
        only the later looks of one minute and the earlier ones of the next
        are left out.
        """
        now = monotonic_of(self.clock)
        wall = self.clock.time()
        minute = math.floor(wall / MINUTE)
        states = list(self._groups.values())
        # The looks of the next minute (one at the same second as now, too).
        horizon = MINUTE + self.policy.min_gap
        soon = [s for s in states if s.due - now < horizon]
        if not soon:
            return  # no look coming soon: nothing to save up for
        paced = [(s, self._pace(s, wall)) for s in states]
        dense = [s for s, pace in paced if pace >= self.policy.dense_from]

        def due_this_minute(state: _GroupState) -> bool:
            return state.due - now < horizon and (
                math.floor((wall + state.due - now) / MINUTE) == minute
            )

        this_minute = any(due_this_minute(s) for s in states)
        # A minute's first round is done once every group that looks each
        # minute has looked since the cron run has shown most of its slots.
        settled = minute * MINUTE + self.policy.cron_settled
        first_round = all(
            s.looked is not None and settled <= s.looked < (minute + 1) * MINUTE
            for s in dense
        )
        if this_minute and not first_round:
            return  # this minute's first looks come first
        needed = 2  # a new captcha token, perhaps
        for state, pace in paced:
            count = 1
            if pace >= self.policy.dense_from:
                count = self._minute_count(state, wall, pace)
            needed += count + (len(state.queries) if state.due - now < horizon else 0)
            if due_this_minute(state):
                needed += self._looks_left(count, wall)
        budget = self.client.budget
        if budget.remaining() >= needed:
            return
        self._silence_until = now + budget.window + budget.safety + 0.5
        for state in states:
            state.due = max(state.due, self._silence_until)

    def _looks_left(self, count: int, wall: float) -> int:
        """Looks still planned in the minute of ``wall``, at ``count`` a minute."""
        offsets = self.policy.minute_offsets[count - 1]
        second = wall - math.floor(wall / MINUTE) * MINUTE
        return max(1, sum(1 for offset in offsets if offset > second))

    async def _next_wanted(self, errors: list[PollError]) -> float:
        """When the next look is due, or the captcha renewal before it."""
        dues = [s.due for s in self._groups.values()]
        if self.policy.fixed_interval is not None:
            dues += [d for s in self._groups.values() for d in s.days.values()]
        fallback = monotonic_of(self.clock) + self.policy.other_interval
        next_look = min(dues, default=fallback)
        refresh_at = await self._refresh_token_before(next_look, errors)
        wanted = next_look if refresh_at is None else min(next_look, refresh_at)
        return min(wanted, self._next_status_check())

    async def _sleep_until(self, when: float) -> None:
        delay = when - monotonic_of(self.clock)
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

    def _next_due(self) -> float:
        """At a fixed pace: an interval on, snapped to the cron's minute grid.

        The grid is the city's wall-clock minute; the result is monotonic.
        """
        interval = self.interval()
        now = monotonic_of(self.clock)
        offset = self.policy.cron_offset
        if offset is None:
            return now + interval
        if interval < MINUTE:
            step = MINUTE / max(1, round(MINUTE / interval))
        else:
            step = MINUTE * math.ceil(interval / MINUTE)
        wall = self.clock.time()
        earliest = wall + interval - step / 2
        due_wall = math.ceil((earliest - offset) / step) * step + offset
        return now + (due_wall - wall)

    def interval(self) -> float:
        """Seconds between looks per group now.

        At a fixed pace: the policy's, stretched to fit the budget. With the
        budget: the pause the busiest group keeps now.
        """
        if self.policy.fixed_interval is None and self._groups:
            wall = self.clock.time()
            rate = max(self._pace(state, wall) for state in self._groups.values())
            return MINUTE / rate if rate > 0 else self.policy.max_pause
        moment = self._now()
        base = (
            self.policy.window_interval
            if self.policy.in_window(moment)
            else self.policy.other_interval
        )
        budget = self.client.budget
        per_second = budget.limit * self.policy.budget_share / budget.window
        return max(base, len(self._groups) / per_second)

    # --- the budget ------------------------------------------------------------

    def _urgency(self, group: QueryGroup) -> Urgency:
        return max(
            (watch.urgency for watch in group.watches),
            key=URGENCIES.index,
            default="normal",
        )

    def _profile(self, state: _GroupState, day: date) -> list[Segment]:
        """How densely the group looks through ``day`` (cached per day).

        The windows that count are those that may release a slot earlier
        than every fitting one the group's watches know (the cache is
        cleared when those change).
        """
        segments = state.profiles.get(day)
        if segments is None:
            policy = self.policy
            windows = relevant_windows(
                state.group.watches, day, policy.release_windows, state.best
            )
            segments = self._segments(day, windows)
            if len(state.profiles) > 14:  # noqa: PLR2004 - two weeks are plenty
                state.profiles.clear()
                state.budgets.clear()
            state.profiles[day] = segments
        return segments

    def group_budget(self, group: QueryGroup) -> float:
        """The requests per day a group may send.

        :attr:`PollPolicy.requests_per_day` for a group of one watch, times
        the number of its watches to the power :attr:`PollPolicy.group_exponent`
        (their filters ask for later days of their own, but one look serves
        them all), times the factor of its most urgent watch.
        """
        factor = self.policy.urgency_factor(self._urgency(group))
        size: float = math.pow(len(group.watches), self.policy.group_exponent)
        return self.policy.requests_per_day * size * factor

    def _day_budget(self, state: _GroupState, day: date) -> float:
        """The requests the group may send on ``day``: its share of the week.

        The group's week (Monday to Sunday) has seven times its daily
        budget, shared out by how much each day's stretches weigh (its
        release windows, the rest of the day, the night): a weekday with
        windows gets more than the average day, a weekend or holiday less,
        never more than :attr:`PollPolicy.max_day_factor` times the average.
        So :attr:`PollPolicy.requests_per_day` holds as the week's average.
        """
        average = self.group_budget(state.group)
        if not self.policy.weekly:
            return average
        cached = state.budgets.get(day)
        if cached is not None:
            return cached
        monday = day - timedelta(days=day.weekday())
        week = [
            weighed_minutes(self._profile(state, monday + timedelta(days=offset)))
            for offset in range(7)
        ]
        total = sum(week)
        if total <= 0:
            return average
        share = 7 * week[day.weekday()] / total
        budget = average * min(share, self.policy.max_day_factor)
        state.budgets[day] = budget
        return budget

    def _own_pace(self, state: _GroupState, wall: float) -> float:
        """Looks per minute the group's own budget allows at ``wall``.

        The day's remaining requests are spread over the rest of the day by
        weight, so a day that spent more than planned (later days, extra
        looks) slows down later, and one that spent less speeds up - but
        never beyond twice the pace planned for the whole day.
        """
        day = datetime.fromtimestamp(wall, BERLIN).date()
        segments = self._profile(state, day)
        weight = next(
            (s.weight for s in segments if s.start <= wall < s.end),
            self.policy.night_weight,
        )
        budget = self._day_budget(state, day)
        remaining = budget - state.spent.get(day, 0)
        rest = weighed_minutes(segments, since=wall)
        if remaining <= 0 or rest <= 0:
            return 0.0
        inside = any(s.window for s in segments if s.start <= wall < s.end)
        # Outside the windows the pace is planned as if every window of the
        # day counted: a window that cannot bring anything earlier today
        # leaves its requests unspent, not spent on the quiet hours.
        total = max(weighed_minutes(segments), self._full_weight(day))
        planned = budget * weight / total if total > 0 else 0.0
        return min(remaining * weight / rest, (2 if inside else 1) * planned)

    def _segments(self, day: date, windows: Iterable[ReleaseWindow]) -> list[Segment]:
        """The policy's day profile of ``day`` with these windows counting."""
        policy = self.policy
        return day_profile(
            day,
            windows,
            day_weight=policy.day_weight,
            night_weight=policy.night_weight,
            day_hours=policy.day_hours,
        )

    def _full_weight(self, day: date) -> float:
        """Weight times minutes of ``day`` with every one of its windows."""
        total = self._full_weights.get(day)
        if total is None:
            policy = self.policy
            windows = [
                w
                for w in policy.release_windows
                if day.weekday() in w.weekdays and office_holiday(day) is None
            ]
            total = weighed_minutes(self._segments(day, windows))
            if len(self._full_weights) > 14:  # noqa: PLR2004 - two weeks
                self._full_weights.clear()
            self._full_weights[day] = total
        return total

    def _pace(self, state: _GroupState, wall: float) -> float:
        """Looks per minute for the group at ``wall``, within the shared limit.

        All groups together stay within :attr:`PollPolicy.budget_share` of
        the server's limit. When their budgets would ask for more, the
        limit is shared out by the number of watches a look serves: each
        group gets ``c * n`` looks a minute (``n`` its watches), at most what
        its own budget asks for, with ``c`` chosen so that the shares fill
        the limit; a group of one watch slows down first.
        """
        own = self._capped(state, wall)
        if own <= 0:
            return 0.0
        asked = [
            (self._capped(other, wall), float(len(other.group.watches)))
            for other in self._groups.values()
        ]
        limit = self._shared_limit()
        if sum(pace for pace, _ in asked) <= limit:
            return own
        # Water-filling: the groups whose own pace is below c * n keep it.
        ordered = sorted(asked, key=lambda item: item[0] / item[1])
        spent, weight = 0.0, sum(size for _, size in ordered)
        share = limit / weight
        for pace, size in ordered:
            if pace > share * size:
                break
            spent += pace
            weight -= size
            share = (limit - spent) / weight if weight > 0 else math.inf
        return min(own, share * len(state.group.watches))

    def _minute_count(self, state: _GroupState, wall: float, pace: float) -> int:
        """Looks in a minute at ``wall`` for a group that looks every minute.

        Its pace (:meth:`_pace` at ``wall``) rounded - down when the shared
        limit slowed it, so that all groups' looks together stay within it.
        """
        shared = pace < self._capped(state, wall) - 1e-9
        count = math.floor(pace + 1e-9) if shared else round(pace)
        return max(1, min(len(self.policy.minute_offsets), count))

    def _capped(self, state: _GroupState, wall: float) -> float:
        cap = self.policy.looks_per_minute_cap(self._urgency(state.group))
        return min(self._own_pace(state, wall), float(cap))

    def _shared_limit(self) -> float:
        """Requests per minute all groups may use together."""
        budget = self.client.budget
        return budget.limit * self.policy.budget_share * MINUTE / budget.window

    def _next_look(self, state: _GroupState) -> float:
        """When to look at a group next (monotonic)."""
        if self.policy.fixed_interval is not None:
            return self._next_due()
        wall = self.clock.time()
        when = self._next_wall(state, wall)
        pace = self._pace(state, wall)
        gap = MINUTE / pace if pace > 0 else self.policy.max_pause
        state.day_gap = max(self.policy.day_interval_min, self.policy.day_every * gap)
        return monotonic_of(self.clock) + max(0.0, when - wall)

    def _next_wall(self, state: _GroupState, wall: float) -> float:
        """The wall time of the group's next look, after one at ``wall``."""
        policy = self.policy
        state.echo = [t for t in state.echo if t > wall + policy.min_gap]
        pace = self._pace(state, wall)
        earliest = wall + policy.min_gap
        if pace >= policy.dense_from:
            offsets = policy.minute_offsets[self._minute_count(state, wall, pace) - 1]
            minute = math.floor(wall / MINUTE) * MINUTE
            return min(
                minute + step * MINUTE + offset
                for step in range(3)
                for offset in offsets
                if minute + step * MINUTE + offset >= earliest
            )
        day = datetime.fromtimestamp(wall, BERLIN).date()
        if pace > 0:
            target = wall + min(MINUTE / pace, policy.max_pause)
        else:  # the day's budget is spent: the next day brings a new one
            target = datetime.combine(
                day + timedelta(days=1), time(), BERLIN
            ).timestamp()
        # Never sleep past the start of a denser stretch (a window), nor
        # past an extra look after a vanished slot.
        weight = next(
            (s.weight for s in self._profile(state, day) if s.start <= wall < s.end),
            0.0,
        )
        rises = [
            s.start
            for d in (day, day + timedelta(days=1))
            for s in self._profile(state, d)
            if s.start > wall and s.weight > weight
        ]
        target = min([target, *rises[:1], *state.echo[:1]])
        # The look comes after the cron run of the target's minute.
        offset = policy.minute_offsets[0][0]
        when = math.floor(target / MINUTE) * MINUTE + offset
        while when < earliest:
            when += MINUTE
        return when

    def explain(self) -> Plan:
        """How the watcher plans to spend its requests, group by group."""
        now = self._now()
        today = now.astimezone(BERLIN).date()
        monday = today - timedelta(days=today.weekday())
        limit = self._shared_limit()
        states = list(self._groups.values())
        plans = [self._group_plan(state, monday) for state in states]
        # The shared limit slows every group down alike when they would
        # together ask for more inside the windows.
        dense = sum(p.looks_per_minute_in_windows or 0.0 for p in plans)
        factor = min(1.0, limit / dense) if dense else 1.0
        if factor < 1.0:
            plans = [self._slowed(p, factor) for p in plans]
        return Plan(
            groups=tuple(plans),
            requests_per_day=sum(p.requests_per_day for p in plans),
            limit_per_minute=limit,
            fixed_interval=self.policy.fixed_interval,
        )

    def _group_plan(self, state: _GroupState, monday: date) -> GroupPlan:
        group = state.group
        urgency = self._urgency(group)
        cap = float(self.policy.looks_per_minute_cap(urgency))
        windows: dict[str, float] = {}
        outside: list[float] = []
        for offset in range(7):
            day = monday + timedelta(days=offset)
            segments = self._profile(state, day)
            budget = self._day_budget(state, day)
            total = weighed_minutes(segments)
            for segment in segments:
                pace = min(cap, budget * segment.weight / total) if total else 0.0
                if segment.window is not None:
                    windows[segment.window] = max(windows.get(segment.window, 0), pace)
                elif segment.weight == self.policy.day_weight:
                    outside.append(pace)
        in_windows = max(windows.values(), default=None)
        pace_outside = statistics.median(outside) if outside else 0.0
        pause = MINUTE / pace_outside if pace_outside > 0 else self.policy.max_pause
        pause = min(pause, self.policy.max_pause)
        return GroupPlan(
            services=group.key,
            office_ids=group.office_ids,
            watches=tuple(w.id for w in group.watches),
            urgency=urgency,
            requests_per_day=self.group_budget(group),
            windows=tuple(windows),
            looks_per_minute_in_windows=in_windows,
            pause_outside=pause,
            detect_in_windows=(
                None if in_windows is None else self._mean_wait(in_windows)
            ),
            detect_outside=pause / 2,
        )

    def _slowed(self, plan: GroupPlan, factor: float) -> GroupPlan:
        pace = plan.looks_per_minute_in_windows
        if pace is None:
            return plan
        slower = pace * factor
        return replace(
            plan,
            looks_per_minute_in_windows=slower,
            detect_in_windows=self._mean_wait(slower),
        )

    def _mean_wait(self, pace: float) -> float:
        """Mean seconds from a slot becoming visible to the next look.

        For visibility spread evenly over the minute and looks at the
        policy's minute offsets.
        """
        offsets = self.policy.minute_offsets
        count = max(1, min(len(offsets), round(pace)))
        if pace < self.policy.dense_from:
            return MINUTE / pace / 2
        points = sorted(offsets[count - 1])
        gaps = [b - a for a, b in itertools.pairwise(points)]
        gaps.append(points[0] + MINUTE - points[-1])
        return sum(g * g for g in gaps) / (2 * MINUTE)

    def retry_delay(self, err: MTAError) -> float:
        """Seconds to wait after a look failed with ``err`` (the policy's)."""
        return self.policy.retry_after(err)

    def _failed(
        self,
        err: MTAError,
        what: str,
        errors: list[PollError],
        *,
        groups: Iterable[QueryGroup] = (),
    ) -> float:
        """Record a failed look; return how long to wait before the next.

        ``groups``: those whose looks the failure holds back (none: every
        watch's, as for the catalogue).
        """
        self.stats.errors += 1
        self.stats.last_error = type(err).__name__
        delay = self.retry_delay(err)
        _LOGGER.warning("Looking for slots failed (next try in %.0f s): %s", delay, err)
        watch_ids = tuple(w.id for group in groups for w in group.watches)
        errors.append(
            PollError(error=err, retry_after=delay, what=what, watch_ids=watch_ids)
        )
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

    async def _refresh_token_before(
        self, next_look: float, errors: list[PollError]
    ) -> float | None:
        """Renew the captcha token just before the look that would need it.

        Returns when to come back for that, or None when nothing is pending.
        The token is used for as long as it lasts, and renewed only shortly
        before a look that could not use it any more. A failed renewal is
        reported, not counted as a failed look: that look fetches its own.
        """
        cache = self.client.captcha
        if not self._token_needed() or cache.expires_in() is None:
            return None
        now = monotonic_of(self.clock)
        if now < self._silence_until:
            return None  # the look after the silence renews it first
        if not cache.needs_refresh(next_look - now):
            return None
        refresh_at = next_look - self.policy.token_lead
        if refresh_at > now:
            return refresh_at
        try:
            await cache.refresh()
        except MTAError as err:
            _LOGGER.warning("Renewing the captcha token failed: %s", type(err).__name__)
            retry = max(0.0, next_look - monotonic_of(self.clock))
            errors.append(PollError(error=err, retry_after=retry, what="captcha"))
        return None

    # --- polling -------------------------------------------------------------

    async def _poll_group(self, state: _GroupState) -> None:
        group = state.group
        now = self._now()
        state.count(now)
        state.looked = now.timestamp()
        # The times come for the first bookable day of the slots window: let
        # it begin on the first day some watch of the group can use (not
        # today for a watch that wants a day's lead), so that a look brings
        # the times that matter.
        first = _first_usable_day(group, now)
        calendar = await self.client.get_available_calendar(
            office_ids=group.office_ids,
            services=group.services,
            start_date=group.start,
            end_date=group.end,
            slots_start_date=first if first > group.start else None,
        )
        self.stats.polls += 1
        self.stats.last_poll = self.clock.time()
        seen = real_time.perf_counter()
        checked = self._now()
        for watch in group.watches:
            self._last_checked[watch.id] = checked
        coverage = _coverage(calendar, group.office_ids, group.start, group.end)
        try:
            await self._report(group, calendar.slots, coverage, seen)
        finally:
            # After the report: the days still needed depend on what it found.
            self._schedule_days(state, calendar)

    async def _poll_day(self, state: _GroupState, query: DayQuery) -> None:
        gap = (
            self.policy.day_interval
            if self.policy.fixed_interval is not None
            else state.day_gap
        )
        state.days[query.day] = monotonic_of(self.clock) + gap
        state.count(self._now())
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
        await self._report(state.group, slots, coverage, seen)

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
        now = monotonic_of(self.clock)
        days: dict[date, float] = {}
        for query in wanted:
            changed = providers.get(query.day) != state.providers.get(query.day)
            days[query.day] = now if changed else state.days.get(query.day, now)
        state.days = days
        state.providers = providers
        state.queries = {q.day: q for q in wanted}

    def _best_days(self, group: QueryGroup) -> dict[str, date]:
        """Per watch, the day of the earliest fitting slot it knows of.

        Only slots an answer listed in the last :attr:`PollPolicy.best_fresh`
        seconds count: a slot on a day that stays bookable for other times
        is not asked again at every look, and one that was taken meanwhile
        must not make the windows look useless.
        """
        best: dict[str, date] = {}
        since = self.clock.time() - self.policy.best_fresh
        for watch in group.watches:
            confirmed = self._confirmed.get(watch.id, {})
            days = [
                _parse_key(key)[1].astimezone(BERLIN).date()
                for key in self.reported(watch.id)
                if confirmed.get(key, 0.0) >= since
            ]
            if days:
                best[watch.id] = min(days)
        return best

    def _due_days(self, state: _GroupState, *, due_only: bool) -> list[DayQuery]:
        now = monotonic_of(self.clock)
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
    ) -> None:
        """Compare what the server says with what each watch has reported."""
        now = self._now()
        events: list[WatchEvent] = []
        for watch in group.watches:
            if watch.id not in self._watches:
                continue
            reported = self._state.watches.setdefault(watch.id, WatchState()).reported
            fitting = [s for s in slots if watch.matches(s, now)]
            if fitting and self.booker.wants_booking(watch):
                self._start_booking(watch, fitting, seen)
            events += self._changes(watch, reported, fitting, coverage, now)
        self._echo(group, events, now)
        state = self._groups.get(group.key)
        if state is not None:
            best = self._best_days(group)
            if best != state.best:
                state.best = best
                state.profiles.clear()
                state.budgets.clear()
        # Report first: a state that cannot be saved must not swallow events.
        await self._emit(events)
        if events:
            await self._save()

    def _echo(self, group: QueryGroup, events: list[WatchEvent], now: datetime) -> None:
        """Look again when a slot that vanished may come back.

        A slot taken by a reservation is free again when the reservation
        expires (15 minutes) or when a pre-confirmed booking is not
        activated in time (30 minutes).
        """
        state = self._groups.get(group.key)
        if state is None or not any(
            isinstance(e, SlotEvent) and e.kind is SlotEventKind.GONE and e.start > now
            for e in events
        ):
            return
        wall = now.timestamp()
        extra = [wall + after + MINUTE for after in self.policy.echo_after]
        state.echo = sorted({*state.echo, *extra})[-8:]

    def _changes(
        self,
        watch: Watch,
        reported: dict[str, float],
        fitting: list[Slot],
        coverage: set[tuple[date, int]],
        now: datetime,
    ) -> list[WatchEvent]:
        events: list[WatchEvent] = []
        current = {slot_key(s.office_id, s.start): s for s in fitting}
        confirmed = self._confirmed.setdefault(watch.id, {})
        listed = self.clock.time()
        for key in current:
            confirmed[key] = listed
        for key, slot in current.items():
            if key not in reported:
                reported[key] = self.clock.time()
                events.append(self._slot_event(SlotEventKind.NEW, watch, slot))
        for key in list(reported):
            office_id, start = _parse_key(key)
            covered = (start.astimezone(BERLIN).date(), office_id) in coverage
            if key not in current and (covered or start <= now):
                del reported[key]
                confirmed.pop(key, None)
                slot = Slot(office_id=office_id, start=start)
                events.append(self._slot_event(SlotEventKind.GONE, watch, slot))
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
        name = f"book:{watch.id}"
        if any(t.get_name() == name and not t.done() for t in self._tasks):
            return
        candidates = sorted(fitting, key=lambda s: (s.start, s.office_id))
        task = self.task_factory(self._auto_book(watch, candidates, seen), name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auto_book(
        self, watch: Watch, candidates: list[Slot], seen: float
    ) -> None:
        try:
            event = await self.booker.book(watch, candidates, seen=seen)
            if event is not None:
                await self._after_booking(event)
        except MTAError as err:
            # Only the store fails here (booking failures are events); the
            # next poll reports it.
            _LOGGER.warning("Watch %s: booking stopped: %s", watch.id, err)
            self._late_errors.append(
                PollError(
                    error=err,
                    retry_after=0.0,
                    what=f"booking:{watch.id}",
                    watch_ids=(watch.id,),
                )
            )

    async def _after_booking(self, event: BookingEvent) -> None:
        if event.state is BookingState.BOOKED and event.start is not None:
            # The slot is ours now: it leaves the free ones without a "gone".
            entry = self._state.watches.get(event.watch_id)
            if entry is not None:
                entry.reported.pop(slot_key(event.office_id or 0, event.start), None)
                await self._save()
        await self._emit([event])

    async def _emit(self, events: Iterable[WatchEvent]) -> None:
        for event in events:
            self._outbox.append(event)
            if self.on_event is not None:
                result = self.on_event(event)
                if result is not None:
                    await result

    # --- bookings waiting for their activation -------------------------------

    async def _check_bookings(self, errors: list[PollError]) -> None:
        """Ask the city about the bookings whose status check is due.

        See :class:`~mta_client.booking.StatusChecks`. Nothing is asked in
        the planned minute of silence, nor while less than half of the
        request budget is left (looks and bookings need it more; the check
        waits a minute); a failed check is reported and tried again after
        the policy's back-off, the booking kept as it was.
        """
        for watch_id in [w for w in self._status_retry if w not in self._watches]:
            del self._status_retry[watch_id]
        budget = self.client.budget
        for watch_id in list(self._watches):
            due = self._status_check_due(watch_id)
            if due is None:
                self._status_retry.pop(watch_id, None)
            if due is None or due > monotonic_of(self.clock):
                continue
            if budget.remaining() <= budget.limit // 2:
                self._status_retry[watch_id] = monotonic_of(self.clock) + MINUTE
                continue
            try:
                event = await self.booker.check_status(watch_id)
            except StoreError:
                raise
            except MTAError as err:
                delay = self.retry_delay(err)
                self._status_retry[watch_id] = monotonic_of(self.clock) + delay
                self.stats.errors += 1
                self.stats.last_error = type(err).__name__
                _LOGGER.warning(
                    "Asking about the booking of watch %s failed (next try in "
                    "%.0f s): %s",
                    watch_id,
                    delay,
                    err,
                )
                errors.append(
                    PollError(
                        error=err,
                        retry_after=delay,
                        what=f"booking:{watch_id}",
                        watch_ids=(watch_id,),
                    )
                )
                if self.on_error is not None:
                    self.on_error(err, delay)
                continue
            self._status_retry.pop(watch_id, None)
            if event is not None:
                await self._emit([event])

    def _status_check_due(self, watch_id: str) -> float | None:
        """Monotonic time of the watch's next booking check, if it has one."""
        wall = self.booker.status_due(watch_id)
        if wall is None:
            return None
        due = monotonic_of(self.clock) + (wall - self.clock.time())
        return max(due, self._status_retry.get(watch_id, due), self._silence_until)

    def _next_status_check(self) -> float:
        dues = [self._status_check_due(watch_id) for watch_id in self._watches]
        return min((due for due in dues if due is not None), default=math.inf)

    # --- booking on request --------------------------------------------------

    async def book(self, watch_id: str, *, slot: Slot | None = None) -> BookingEvent:
        """Book now: the given slot, or the earliest free fitting one.

        For a host's book action. At most one booking per watch: a watch
        that holds one (or is booking) refuses. Without ``slot``, the known
        free fitting slots are tried earliest first (a taken one moves on to
        the next); when none is known, the watch is looked at first.

        Raises:
            KeyError: no such watch.
            BookingConflictError: the watch holds a booking already.
            NoFittingSlotError: no free slot fits the watch.
            MTAValidationError: the watch has no contact details, or the
                slot is not at one of its offices.
            MTAError: the booking failed (a taken slot is
                :class:`MTASlotUnavailableError`); a reservation it made was
                cancelled, as :attr:`BookingEvent.released` of the emitted
                event tells.

        """
        watch = self._watches[watch_id]
        if slot is not None and slot.office_id not in watch.office_ids:
            raise MTAValidationError("slot", "is not at an office of the watch")
        await self.load()
        candidates = [slot] if slot is not None else self._free_slots(watch)
        if not candidates:
            await self._look_for(watch)
            candidates = self._free_slots(watch)
        if not candidates:
            msg = "no free slot fits the watch"
            raise NoFittingSlotError(msg)
        event, error = await self.booker.book_now(watch, candidates)
        if event is not None:
            await self._after_booking(event)
        if error is not None:
            raise error
        assert event is not None  # noqa: S101 - either an event or an error
        return event

    async def _look_for(self, watch: Watch) -> None:
        """Look at the watch's group now (for a booking without known slots)."""
        for state in self._groups.values():
            if watch in state.group.watches:
                await self._poll_group(state)
                state.due = self._next_look(state)

    async def confirm(self, link: str | ProcessCredentials) -> BookingEvent:
        """Activate a watch's booking: the city's activation link, or its credentials.

        Raises:
            KeyError: no watch holds that appointment (nothing was sent; use
                :meth:`MTAClient.confirm_from_link` for others).
            MTAValidationError: not an activation link.
            MTAError: the city refused.

        """
        credentials = (
            ProcessCredentials.from_activation_link(link)
            if isinstance(link, str)
            else link
        )
        watch_id = next(
            (
                watch_id
                for watch_id in self._watches
                if self.booker.record(watch_id).process_id == credentials.process_id
            ),
            None,
        )
        if watch_id is None:
            msg = "no watch holds this appointment"
            raise KeyError(msg)
        try:
            event = await self.booker.confirm(watch_id, credentials)
        except MTAError:
            self._wake.set()  # the next poll asks the city what it holds
            raise
        await self._emit([event])
        return event

    async def cancel(self, watch_id: str) -> BookingEvent:
        """Cancel the watch's booking at the city.

        The watch then books nothing more by itself; :meth:`book` may.

        Raises:
            KeyError: no such watch.
            BookingConflictError: the watch holds no booking.
            MTAError: the city refused (the booking stays as it was).

        """
        if watch_id not in self._watches:
            raise KeyError(watch_id)
        event = await self.booker.cancel(watch_id)
        await self._emit([event])
        return event

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)


_EVERY_LOOK = (
    MTABlockedError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTABudgetExceededError,
    MTAConnectionError,
    MTACaptchaError,
)
"""Failures of one look that every other look now would meet as well."""


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
    # Only the month of the day with times is listed: days of an earlier
    # month (a slots window that began later than the horizon) say nothing.
    painted = calendar.slots_start_date
    if painted is not None and listed:
        start = max(start, painted.replace(day=1))
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


def _first_usable_day(group: QueryGroup, now: datetime) -> date:
    """The first day of the group's window on which some watch could use a slot."""
    for offset in range((group.end - group.start).days + 1):
        day = group.start + timedelta(days=offset)
        if office_holiday(day) is None and any(
            watch.day_fits(day, now) for watch in group.watches
        ):
            return day
    return group.start


def _parse_key(key: str) -> tuple[int, datetime]:
    office, _, stamp = key.partition("@")
    return int(office), datetime.fromtimestamp(int(stamp), UTC)


def _key_text(key: GroupKey) -> str:
    """A group's services as text: ``1063475x1+1063576x2``."""
    return "+".join(f"{service}x{count}" for service, count in key)
