"""The simulator's state and its public control surface.

Changes the city's per-minute cron makes (scheduled releases, cancellations,
expiries, deallocations) become visible by the chosen visibility model
(:mod:`.visibility`): ``cron`` (exactly at the full minute; the default of
``Simulator(...)`` so that tests can count on whole minutes), ``delayed``
(log-normal seconds after it, median 6 s, 15 s in bulk-release windows,
capped at 50 s; the default of ``mta simulate``) or ``random`` (uniformly
in the minute after it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import ipaddress
import itertools
import random
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mta_client.clock import SystemClock

from .booking import Bookings
from .captcha import CaptchaConfig, CaptchaService
from .catalogue import Catalogue, load_catalogue
from .faults import FaultInjector
from .office_days import MunichHolidays
from .outbox import Outbox
from .paths import API_PREFIX
from .ratelimit import RateLimiter
from .scenarios import Release, Scenario, get_scenario
from .slots import SlotStore
from .stats import CompetitorTake, SimulatorStats, SlotAppearance, SlotChange
from .visibility import VISIBILITY_MODELS, Visibility, cron_run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from mta_client.clock import Clock

__all__ = [
    "API_GENERATIONS",
    "API_PREFIX",
    "CITY_TZ",
    "VISIBILITY_MODELS",
    "Simulator",
    "cron_run",
]

CITY_TZ = ZoneInfo("Europe/Berlin")

API_GENERATIONS: dict[str, str] = {
    "muc47": "the current routes (muc46 and later): available-calendar/",
    "muc45": "the legacy routes of muc45 and earlier: available-days-by-office/, "
    "available-appointments-by-office/ (and the variants without -by-office), "
    "with and without trailing slash; no available-calendar/",
}
"""The API generations the simulator can speak, with what they route."""


class Simulator:
    """A faithful local stand-in for Munich's citizen appointment API.

    Time-driven behaviour (scenario releases, competitors, reservation and
    activation expiry, deallocation after cancel) is computed lazily on the
    injected clock before every request, in event order, so it is exact and
    reproducible however often the simulator is asked.

    Args:
        clock: where time comes from (default :class:`SystemClock`); under
            :func:`~mta_client.simulator.run_virtual` pass
            ``LoopClock(epoch=0.0)``.
        scenario: a registered scenario name or a :class:`Scenario`.
        seed: seed of every random choice (slots, competitors, ids, keys).
        rate_limit: ``RATE_LIMIT_MAX_REQUESTS`` (city default 60).
        rate_limit_ttl: ``RATE_LIMIT_CACHE_TTL`` in seconds (city default 60).
        captcha_version: 2 (ALTCHA v2, current) or 1 (legacy v1 challenges).
        captcha: full captcha settings (overrides ``captcha_version``).
        blacklist: IPs or CIDR networks answered with 403 ``IP_BLACKLISTED``.
        maintenance: start in maintenance mode (503 ``serviceUnavailable``).
        deallocation_minutes: how long a cancelled slot stays blocked.
        max_request_size: ``MAX_REQUEST_SIZE`` in bytes (413 above).
        catalogue: another catalogue than the packaged Munich one.
        secret: HMAC secret of challenges and tokens (default from ``seed``).
        api_generation: which routes the city serves, a key of
            :data:`API_GENERATIONS`: ``"muc47"`` (current) or ``"muc45"``
            (the legacy availability routes, for testing how a client meets
            an older server).
        public_holidays: keep the offices closed on Munich's public holidays
            (no slots on them); see :mod:`.office_days`.
        control: serve the control surface under ``/_simulator/`` (see
            :mod:`.control`); off by default, as the city has none.
        visibility: when the cron's changes become visible, a key of
            :data:`~.visibility.VISIBILITY_MODELS`: ``"cron"`` (default here:
            exactly at the full minute), ``"delayed"`` (seconds later, drawn
            per run; the default of ``mta simulate``) or ``"random"``.

    Attributes:
        slot_listeners: callables told of every change of the free slots
            (:class:`~.stats.SlotChange`, in event order, with the event's
            own time), e.g. for a benchmark's ground truth. Units whose start
            passes are not reported.

    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        scenario: str | Scenario = "munich-weekday",
        seed: int = 0,
        rate_limit: int = 60,
        rate_limit_ttl: int = 60,
        captcha_version: int = 2,
        captcha: CaptchaConfig | None = None,
        blacklist: Iterable[str] = (),
        maintenance: bool = False,
        deallocation_minutes: float = 15,
        max_request_size: int = 10 * 1024 * 1024,
        catalogue: Catalogue | None = None,
        secret: bytes | None = None,
        api_generation: str = "muc47",
        public_holidays: bool = True,
        control: bool = False,
        visibility: str = "cron",
    ) -> None:
        """Create the simulator (nothing happens until the first request)."""
        if api_generation not in API_GENERATIONS:
            known = ", ".join(API_GENERATIONS)
            msg = f"unknown api_generation {api_generation!r}; known: {known}"
            raise ValueError(msg)
        self.api_generation = api_generation
        self.holidays: MunichHolidays | None = (
            MunichHolidays() if public_holidays else None
        )
        self.control = control
        self.visibility = Visibility(visibility, seed=seed)
        self.slot_listeners: list[Callable[[SlotChange], None]] = []
        self.clock: Clock = clock or SystemClock()
        self.scenario = (
            get_scenario(scenario) if isinstance(scenario, str) else scenario
        )
        self.seed = seed
        self.rng = random.Random(seed)
        self.tz: dt.tzinfo = CITY_TZ
        self.catalogue = catalogue or load_catalogue()
        self.slots = SlotStore(self.catalogue)
        self.stats = SimulatorStats()
        self.outbox = Outbox()
        self.faults = FaultInjector(self.rng)
        if secret is None:
            secret = random.Random(f"secret:{seed}").randbytes(32)
        self.captcha = CaptchaService(
            self.clock, captcha or CaptchaConfig(version=captcha_version), secret
        )
        self.rate_limiter = RateLimiter(
            self.clock, max_requests=rate_limit, ttl=rate_limit_ttl
        )
        self.blacklist: set[str] = set(blacklist)
        self.maintenance = maintenance
        self.deallocation_seconds = deallocation_minutes * 60
        self.max_request_size = max_request_size
        self.bookings = Bookings(self)
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._started = False
        self._planned_until: dt.date | None = None
        self._shutdown_event: asyncio.Event | None = None
        self._catalogue_body: dict[str, Any] | None = None

    # --- serving --------------------------------------------------------------------
    # The aiohttp application lives in .app (create_app(simulator)): this module
    # keeps the city's state and never imports the HTTP layer.

    @property
    def shutdown_event(self) -> asyncio.Event:
        """Set when the serving application shuts down (ends injected hangs)."""
        if self._shutdown_event is None:
            self._shutdown_event = asyncio.Event()
        return self._shutdown_event

    def new_shutdown_event(self) -> None:
        """Start a new serving period (a fresh, unset :attr:`shutdown_event`)."""
        self._shutdown_event = None

    def offices_and_services(self) -> dict[str, Any]:
        """Return the ``/offices-and-services/`` body (rendered once)."""
        if self._catalogue_body is None:
            self._catalogue_body = self.catalogue.offices_and_services()
        return self._catalogue_body

    # --- time ----------------------------------------------------------------------

    def now(self) -> float:
        """Return the simulator clock's Unix time."""
        return self.clock.time()

    def schedule(self, at: float, callback: Callable[[float], None]) -> None:
        """Run ``callback(at)`` once the clock reaches ``at`` (lazily)."""
        heapq.heappush(self._events, (at, next(self._seq), callback))

    def sync(self) -> None:
        """Apply everything that happened up to now (called before each request)."""
        now = self.clock.time()
        if not self._started:
            self._start(now)
        self._plan_until(dt.datetime.fromtimestamp(now, self.tz).date())
        while self._events and self._events[0][0] <= now:
            at, _, callback = heapq.heappop(self._events)
            callback(at)
        self.slots.prune(now)

    def _start(self, now: float) -> None:
        self._started = True
        rng = random.Random(f"{self.seed}:{self.scenario.name}:initial")
        for release in self.scenario.initial(now, self.tz, rng, self.catalogue):
            self._apply_release(release, now)

    def _plan_until(self, day: dt.date) -> None:
        first = day if self._planned_until is None else self._planned_until
        if self._planned_until is not None and first >= day:
            return
        current = first if self._planned_until is None else first + dt.timedelta(1)
        while current <= day:
            rng = random.Random(f"{self.seed}:{self.scenario.name}:{current}")
            for release in self.scenario.releases_for_day(
                current, self.tz, rng, self.catalogue
            ):
                # Released and cancelled slots become visible when the city's
                # per-minute cron (calculateSlots, deallocateAppointmentData)
                # next runs and is done, not the moment staff or a citizen act.
                visible = self.cron_time(
                    release.at, release.office_id, key=(release.start, release.source)
                )
                self.schedule(visible, self._release_callback(release))
            current += dt.timedelta(days=1)
        self._planned_until = day
        # Appointments of the day before yesterday and earlier are archived.
        yesterday = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), self.tz)
        self.bookings.archive(yesterday.timestamp())

    def cron_time(self, at: float, office_id: int, *, key: object = None) -> float:
        """When a change the city's cron makes for ``at`` becomes visible.

        The next full minute, plus the visibility model's delay (longer in
        the scenario's bulk-release windows); ``key`` tells changes apart
        for the ``random`` model.
        """
        bulk = self.scenario.is_bulk(cron_run(at), self.tz)
        return self.visibility.visible_at(at, office_id, bulk=bulk, key=key)

    def _notify(
        self, office_id: int, units: list[int], at: float, *, free: bool, source: str
    ) -> None:
        if units and self.slot_listeners:
            change = SlotChange(
                office_id=office_id,
                units=tuple(units),
                at=at,
                free=free,
                source=source,
            )
            for listener in self.slot_listeners:
                listener(change)

    def _release_callback(self, release: Release) -> Callable[[float], None]:
        return lambda at: self._apply_release(release, at)

    # --- slots ---------------------------------------------------------------------

    def _apply_release(self, release: Release, at: float) -> None:
        office = self.catalogue.offices[release.office_id]
        start = self.slots.align(office.id, release.start)
        count = max(1, -(-release.minutes // office.slot_minutes))
        units = self.slots.units(office.id, start, count)
        self._make_free(office.id, units, at, release)

    def _make_free(
        self, office_id: int, units: list[int], at: float, release: Release
    ) -> None:
        added = self.slots.release(
            office_id, [u for u in units if u > at and not self.is_holiday(u)]
        )
        self._record(office_id, added, at, release.source)
        self._notify(office_id, added, at, free=True, source=release.source)
        competition = self.scenario.competition_for(release)
        if competition is None or not added:
            return
        rng = random.Random(f"{self.seed}:{office_id}:{added[0]}:{at}")
        step = self.catalogue.offices[office_id].slot_minutes
        chunk = max(1, -(-competition.chunk_minutes // step))
        for i in range(0, len(added), chunk):
            delay = competition.delay(rng)
            if delay is not None:
                part = added[i : i + chunk]
                self.schedule(at + delay, self._take_callback(office_id, part, at))

    def _take_callback(
        self, office_id: int, units: list[int], appeared_at: float
    ) -> Callable[[float], None]:
        def take(at: float) -> None:
            taken = self.slots.take(office_id, [u for u in units if u > at])
            if taken:
                self.stats.competitor_takes.append(
                    CompetitorTake(office_id, taken[0], len(taken), at, appeared_at)
                )
                self._notify(office_id, taken, at, free=False, source="competitor")
                self._maybe_cancel_later(office_id, taken, at)

        return take

    def _maybe_cancel_later(self, office_id: int, units: list[int], at: float) -> None:
        """A competitor who booked ``units`` may cancel them later."""
        cancellations = self.scenario.competitor_cancellations
        if cancellations is None:
            return
        rng = random.Random(f"{self.seed}:cancel:{office_id}:{units[0]}:{at}")
        cancel_at = cancellations.cancel_at(rng, at, units[0])
        if cancel_at is None:
            return
        # deallocateAppointmentData frees it at the first cron run at least
        # deallocationDuration after the cancel.
        visible = self.cron_time(
            cancel_at + self.deallocation_seconds, office_id, key=(units[0], "cancel")
        )
        release = Release(cancel_at, office_id, units[0], 0, "competitor-cancellation")

        def cancel(when: float) -> None:
            self.stats.competitor_cancellations += 1
            self._make_free(office_id, units, when, release)

        self.schedule(visible, cancel)

    def _record(self, office_id: int, added: list[int], at: float, source: str) -> None:
        step = self.slots.step(office_id)
        run: list[int] = []
        for unit in [*added, None]:
            if unit is not None and (not run or unit == run[-1] + step):
                run.append(unit)
                continue
            if run:
                self.stats.slot_appearances.append(
                    SlotAppearance(office_id, run[0], len(run), at, source)
                )
            run = [unit] if unit is not None else []

    def hold_units(self, office_id: int, units: list[int]) -> bool:
        """Hold a run of free units for a process now; return success."""
        if not self.slots.hold(office_id, units):
            return False
        self._notify(office_id, units, self.clock.time(), free=False, source="reserved")
        return True

    def free_units(
        self, office_id: int, units: list[int], *, source: str, at: float | None = None
    ) -> None:
        """Give a process's units back; those still in the future become free.

        ``at`` is when (default now; a cron job passes its own run's time).
        """
        at = self.clock.time() if at is None else at
        self.slots.unhold(office_id, units, free=False)
        release = Release(at, office_id, units[0], 0, source)
        self._make_free(office_id, units, at, release)

    def release_slot(
        self,
        office_id: int,
        start: float | dt.datetime,
        *,
        minutes: int | None = None,
        at: float | None = None,
        compete: bool = False,
    ) -> None:
        """Make a run of slots free, now or at ``at``.

        Args:
            office_id: the office.
            start: Unix time or aware datetime of the first slot (snapped to the
                office's ``slotTimeInMinutes`` grid).
            minutes: length of the run (default one grid unit).
            at: when it appears (Unix time; default now).
            compete: let the scenario's competitors go after it.

        """
        office = self.catalogue.offices[office_id]
        ts = int(start.timestamp()) if isinstance(start, dt.datetime) else int(start)
        release = Release(
            at=self.clock.time() if at is None else at,
            office_id=office_id,
            start=ts,
            minutes=minutes or office.slot_minutes,
            source="manual",
            compete=compete,
        )
        if at is None or at <= self.clock.time():
            self.sync()
            self._apply_release(release, self.clock.time())
        else:
            self.schedule(release.at, self._release_callback(release))

    def take_slot(
        self, office_id: int, start: float | dt.datetime, *, minutes: int | None = None
    ) -> int:
        """Let somebody else take a run of slots now; return the units taken."""
        office = self.catalogue.offices[office_id]
        ts = int(start.timestamp()) if isinstance(start, dt.datetime) else int(start)
        count = max(1, -(-(minutes or office.slot_minutes) // office.slot_minutes))
        self.sync()
        units = self.slots.units(office_id, self.slots.align(office_id, ts), count)
        taken = self.slots.take(office_id, units)
        self._notify(office_id, taken, self.clock.time(), free=False, source="manual")
        return len(taken)

    def free_slots(self, office_id: int) -> list[int]:
        """Return the start times of the free grid units of an office."""
        self.sync()
        return self.slots.free_units(office_id)

    def bookable_times(
        self,
        office_id: int,
        service_ids: Iterable[int],
        counts: Iterable[int] | None = None,
    ) -> list[int]:
        """Return the times a booking of these services could be reserved now."""
        self.sync()
        ids = list(service_ids)
        services = list(zip(ids, counts or [1] * len(ids), strict=True))
        needed = self.catalogue.units_needed(office_id, services)
        return self.slots.bookable_starts(
            office_id, needed, self.clock.time(), float("inf")
        )

    def is_holiday(self, timestamp: float) -> bool:
        """Return whether a time falls on a public holiday (offices closed)."""
        if self.holidays is None:
            return False
        return dt.datetime.fromtimestamp(timestamp, self.tz).date() in self.holidays

    # --- client ips ------------------------------------------------------------------

    def is_blacklisted(self, ip: str) -> bool:
        """Return whether ``ip`` is in :attr:`blacklist` (IPs or CIDRs)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        for entry in self.blacklist:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False
