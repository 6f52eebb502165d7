"""Soak: the watch engine for a simulated month against every fault the simulator has.

The engine part runs :class:`mta_client.watcher.Watcher` (``run()`` in a task,
as ``mta watch`` does) against the project's simulator on virtual time (see
``benchmarks/watch.py``), with the ``munich-weekday`` scenario under the
``delayed`` visibility model, and draws at random (``--seed``):

* fault windows of every kind of :data:`FAULT_PLAN`: the simulator's fault
  kinds (5xx, gateway pages, timeouts, slow answers, resets, HTML block
  pages, malformed and truncated JSON, unknown new fields, ``null`` where the
  schema allows it, 429s without headers, captcha verification failures),
  the city's maintenance mode, a stricter limiter than expected (the
  simulator's limit lowered for a while), competitors who take a slot the
  moment the engine saw it (before it can reserve), and reservations and
  activations of ours expiring early (the simulator's ``expire``);
* process kills: at random points - and at random booking steps, right
  after the step was saved and before its request is answered - every task
  of the process is cancelled at once, its store refuses further writes and
  its HTTP session is closed; after a pause a new client and a new
  :class:`Watcher` start on the same :class:`~mta_client.store.JSONFileStore`;
* the people behind the auto-booking watches: each opens the activation
  mail and confirms (60 %), cancels later (15 %) or lets the activation
  lapse (25 %); hours later the watch is retired (its booking written to a
  ledger) and a new one with a new e-mail takes its place.

Invariants (``--json`` prints one object; ``invariants`` says which hold)::

    {"params": {...}, "real_s", "engine": ENGINE, "ha": HA, "ok"}
    ENGINE = {"faults": {kind: windows}, "faults_hit": {kind: answers},
              "kills": {"random", "mid_booking"}, "bookings": {...},
              "invariants": {name: {"value", "limit", "ok"}}, "details": {...}}

* ``unhandled_exceptions``: exceptions escaping ``poll``/``run``, an
  automatic booking's task, ``confirm``/``cancel`` or reaching the loop's
  exception handler, other than the documented ones (by type name);
* ``double_bookings``: people (one e-mail per watch) with more than one
  pre-confirmed or confirmed appointment at the simulator at once;
* ``lost_bookings``: appointments of ours the simulator holds that neither
  the store nor the ledger knows, and bookings the store holds that the
  simulator does not (unless cancelled by us, or their activation lapsed);
* ``orphan_reservations``: reservations the simulator made for us that the
  store never knew and nobody cancelled (``actual``) against what the engine
  reported
  (``interrupted`` events and bookings whose reservation could not be
  released); ``unreported`` = max(0, actual - reported);
* ``rate_limited_per_limiter_change``: the limiter's own 429s in each
  window of a stricter limit (until two minutes after it ends); ``other``
  counts those outside (after restarts: the new process does not know the
  city's count);
* ``freshness``: after each fault window ends with no other active, the
  time until each watch's next successful look, against two of its poll
  cycles: the longest pause between its last successful looks (up to 16)
  before the fault and inside the window, its first pause after it, or
  the back-off the engine announced for failures meanwhile, whichever is
  longest (its cadence varies with the release windows and the budget),
  and at least a minute (the engine plans its looks per minute of the
  city's cron, with a planned minute of silence when the limiter's count
  would run out);
* ``memory_growth_mb``: RSS growth from the end of day 1 to the end
  (after ``gc.collect()``; the simulator's own records are trimmed daily);
* ``loop_stalls``: event-loop callbacks that ran longer than 100 ms of real
  time (every handle's callback is timed); the slowest are listed.

The Home Assistant part (``--part ha``) is not run in this process: Home
Assistant's test harness is pytest-based. ``tests/components/munich_termin/
test_soak.py`` runs the coordinator for one simulated day with the same
faults (``"ha": {"run_by": "the test suite"}``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, deque
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import gc
import itertools
import json
import logging
import math
import os
from pathlib import Path
import random
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp

from mta_client import ContactDetails, LoopClock, MTAClient, ServiceRequest
from mta_client.booking import INTERRUPTED, BookingConflictError
from mta_client.exceptions import MTAError, MTAValidationError
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer, run_virtual
from mta_client.simulator.booking import Bookings, Process
from mta_client.simulator.ratelimit import RateLimiter
from mta_client.store import JSONFileStore, StoreError, parse_state
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind, Watch
from mta_client.watcher import PollResult, Watcher

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 23 November 2026, 00:00 in Munich.
START = datetime(2026, 11, 23, tzinfo=BERLIN).timestamp()
DAY = 86_400.0
BUERGERBUEROS = [10489, 102522, 54261, 102526, 102523, 102524]
OUR_DOMAIN = "soak.example.org"
STALL_S = 0.1
MINUTE = 60.0
"""The shortest poll cycle: the engine plans its looks per minute of the city's cron."""
LIMITER_GRACE = 120.0
RESTART_GRACE = 120.0
FAULT_MEAN_GAP = 3600.0
KILL_MEAN_GAP = 4 * 3600.0
MID_BOOKING_KILL = 0.08
"""Chance that a saved booking step is followed by a kill before its answer."""

ROUTES = (
    "available-calendar/",
    "offices-and-services/",
    "captcha-challenge/",
    "captcha-verify/",
    "reserve-appointment/",
    "update-appointment/",
    "preconfirm-appointment/",
    "appointment/",
    "confirm-appointment/",
    "cancel-appointment/",
)
# kind -> (relative weight, (shortest, longest) window in seconds)
FAULT_PLAN: dict[str, tuple[float, tuple[float, float]]] = {
    "server_error": (3, (60, 1800)),
    "bad_gateway": (2, (60, 1800)),
    "timeout": (2, (60, 900)),
    "slow": (1, (60, 900)),
    "reset": (2, (60, 900)),
    "html_block": (1, (300, 3600)),
    "maintenance": (1, (600, 7200)),
    "malformed_json": (2, (60, 1800)),
    "extra_fields": (1, (600, 7200)),
    "nulls": (1, (600, 7200)),
    "rate_limit": (1, (60, 600)),
    "captcha_failure": (2, (60, 1800)),
    "limiter": (1, (1800, 4 * 3600)),
    "competitor": (2, (600, 3 * 3600)),
    "expire": (2, (0, 0)),
}
DOCUMENTED = (StoreError, MTAValidationError)
"""What ``poll``/``run`` may raise by their documentation."""


def _services(*pairs: tuple[int, int]) -> list[ServiceRequest]:
    return [ServiceRequest(service_id=s, count=c) for s, c in pairs]


# (services, offices, options): a realistic mix; "auto" ones book.
PEOPLE: tuple[tuple[list[ServiceRequest], list[int], dict[str, Any]], ...] = (
    (_services((1063475, 1)), BUERGERBUEROS, {"within_days": 14, "auto_book": True}),
    (
        _services((1063441, 1)),
        [54261, 102523],
        {"weekdays": "mon,tue,wed", "time_ranges": "08:00-12:00"},
    ),
    (
        _services((1063453, 1)),
        [102522, 10489],
        {"within_days": 28, "min_lead": timedelta(days=1), "auto_book": True},
    ),
    (_services((1063475, 1)), [102526, 102524], {"time_ranges": "14:00-18:00"}),
    (
        _services((1063441, 1), (1063453, 1)),
        BUERGERBUEROS,
        {"within_days": 42, "auto_book": True},
    ),
    (_services((1063576, 1)), BUERGERBUEROS, {"within_days": 21, "urgency": "relaxed"}),
    (
        _services((1063475, 2)),
        [10489, 54261],
        {"within_days": 21, "auto_book": True, "urgency": "urgent"},
    ),
    (_services((1063565, 1)), [102523, 102524], {"within_days": 30}),
)


def make_watch(index: int, generation: int) -> Watch:
    """Person ``index``'s watch of ``generation`` (a new e-mail each time)."""
    services, offices, options = PEOPLE[index % len(PEOPLE)]
    values = dict(options)
    name = f"p{index}g{generation}"
    if values.get("auto_book"):
        values["contact"] = ContactDetails(
            family_name=f"Soak{index}", email=f"{name}@{OUR_DOMAIN}"
        )
    return Watch(id=name, services=services, office_ids=offices, **values)


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


# --- instrumentation ------------------------------------------------------------


class StallMonitor:
    """Times every event-loop callback, while installed.

    Real (wall) time and the thread's CPU time of each callback: on a busy
    machine the wall time includes the moments the OS ran something else,
    the CPU time only what the callback itself did. Callbacks of the
    simulator's own request handlers (``RequestHandler``) are the city's
    side and counted apart.
    """

    def __init__(self) -> None:
        self.callbacks = 0
        self.wall = 0
        self.cpu = 0
        self.simulator = 0
        self.worst: list[tuple[float, float, str]] = []
        self.excused = False
        """Set by the soak's own measuring (``gc.collect()``): not a stall."""
        self._original: Any = None

    def install(self) -> None:
        handle = asyncio.events.Handle
        original = handle._run  # noqa: SLF001 - the loop's one callback entry
        self._original = original
        monitor = self

        def timed(this: asyncio.Handle) -> None:
            began, cpu = time.perf_counter(), time.thread_time()
            original(this)
            took = time.perf_counter() - began
            monitor.callbacks += 1
            if took > STALL_S:
                monitor.stall(this, took, time.thread_time() - cpu)
            monitor.excused = False

        handle._run = timed  # type: ignore[method-assign,assignment] # noqa: SLF001

    def stall(self, handle: asyncio.Handle, took: float, cpu: float) -> None:
        if self.excused:
            return
        what = _describe(handle)
        if "RequestHandler" in what:
            self.simulator += 1
            return
        self.wall += 1
        self.cpu += cpu > STALL_S
        self.worst.append((took, cpu, what))
        self.worst.sort(reverse=True)
        del self.worst[5:]

    def uninstall(self) -> None:
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign] # noqa: SLF001
            self._original = None


def _describe(handle: asyncio.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {owner.get_name()}: {getattr(coro, '__qualname__', coro)}"
    return repr(callback)[:120]


class CountingLimiter(RateLimiter):
    """The city's limiter, remembering when it answered 429."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limited: list[float] = []

    def hit(self, ip: str) -> dict[str, str] | None:
        headers = super().hit(ip)
        if headers is None:
            self.limited.append(self.clock.time())
        return headers


class CountingBookings(Bookings):
    """The city's bookings, remembering every process it reserved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reserved_ids: set[int] = set()
        self.reserved_at: dict[int, float] = {}
        self.reserved_slot: dict[int, tuple[int, int]] = {}
        self.cancelled_ids: set[int] = set()

    def cancel(self, data: dict[str, Any]) -> Process:
        process = super().cancel(data)
        self.cancelled_ids.add(process.process_id)
        return process

    def reserve(self, data: dict[str, Any], client_ip: str) -> Process:
        process = super().reserve(data, client_ip)
        self.reserved_ids.add(process.process_id)
        self.reserved_at[process.process_id] = process.reserved_at
        self.reserved_slot[process.process_id] = (process.office_id, process.timestamp)
        return process


class Killed(asyncio.CancelledError):
    """The process was killed: nothing more is written, nothing cleans up.

    A cancellation, so that no ``except Exception`` of the library runs
    clean-up code (a cancel request) that a killed process never would.
    """


class ProcessStore:
    """One process's view of the shared state file: dead processes write nothing.

    Also notes every process id it saw saved, and may kill the process right
    after a booking step was saved (before that step's request is answered).
    """

    def __init__(self, soak: Soak, inner: JSONFileStore) -> None:
        self.soak = soak
        self.inner = inner
        self.dead = False
        self.writing: asyncio.Future[None] | None = None
        """The file write under way: it runs in a thread, which a cancelled
        task does not stop. A kill waits for it (the write landed just
        before the kill, as an atomic rename either did or did not)."""

    async def load(self) -> dict[str, Any]:
        if self.dead:
            raise Killed
        return await self.inner.load()

    async def save(self, state: dict[str, Any]) -> None:
        if self.dead:
            raise Killed
        busy = False
        for entry in state.get("watches", {}).values():
            booking = entry.get("booking") or {}
            if booking.get("process_id") is not None:
                self.soak.known_ids.add(int(booking["process_id"]))
            busy = busy or booking.get("state") in {
                "reserving",
                "reserved",
                "preconfirming",
            }
        self.writing = asyncio.ensure_future(self.inner.save(state))
        await asyncio.shield(self.writing)
        if busy and self.soak.rng.random() < MID_BOOKING_KILL:
            self.soak.request_kill("mid_booking")


# --- the soak -------------------------------------------------------------------


@dataclass
class Window:
    kind: str
    start: float
    end: float
    undo: Callable[[], None] | None = None


@dataclass
class Person:
    """An auto-booking (or watching) person and their current watch."""

    index: int
    generation: int
    watch: Watch
    plan: str | None = None
    act_at: float = 0.0
    settled_at: float | None = None
    retire_at: float | None = None


@dataclass
class Fresh:
    """A watch's looks around a fault window's end."""

    kind: str
    end: float
    gap: float
    """The watch's poll cycle around the fault: the longest pause between
    its last (up to 16) successful looks before the fault and inside the
    window (its cadence varies with the release windows and the budget), or
    the back-off announced for failures meanwhile."""
    first: float | None = None


@dataclass
class Proc:
    """One run of the process."""

    session: aiohttp.ClientSession
    client: MTAClient
    store: ProcessStore
    watcher: Watcher
    task: asyncio.Task[None]
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    loaded: bool = False


class Soak:
    """Drives the engine part on a running virtual-time loop."""

    def __init__(
        self, *, days: float, seed: int, watches: int, state_dir: Path
    ) -> None:
        self.days = days
        self.seed = seed
        self.rng = random.Random(f"soak:{seed}")
        self.state_path = state_dir / "state.json"
        self.file_store = JSONFileStore(self.state_path)
        self.clock = LoopClock(epoch=0.0)
        self.sim = Simulator(
            clock=self.clock,
            seed=seed,
            captcha=CaptchaConfig(cost=20),
            visibility="delayed",
        )
        self.limiter = CountingLimiter(self.clock, max_requests=60, ttl=60)
        self.sim.rate_limiter = self.limiter
        self.bookings = CountingBookings(self.sim)
        self.sim.bookings = self.bookings
        self.people = [
            Person(index=i, generation=0, watch=make_watch(i, 0))
            for i in range(watches)
        ]
        self.base_url = ""
        self.proc: Proc | None = None
        self.kill_event = asyncio.Event()
        self.kill_reason = "random"
        self.kills: Counter[str] = Counter()
        self.restarts: list[float] = []
        self.kill_times: list[float] = []
        self.reserve_outcomes: dict[tuple[Any, Any], str] = {}
        self.windows: list[Window] = []
        self.active: list[Window] = []
        self.faults: Counter[str] = Counter()
        self.unhandled: Counter[str] = Counter()
        self.documented: Counter[str] = Counter()
        self.dying: Counter[str] = Counter()
        self.loop_messages: Counter[str] = Counter()
        self.poll_errors: Counter[str] = Counter()
        self.known_ids: set[int] = set()
        self.ledger: dict[str, dict[str, Any]] = {}
        self.events: Counter[str] = Counter()
        self.orphans_reported = 0
        self.reported_slots: set[tuple[int, int]] = set()
        self.double_booked: set[str] = set()
        self.lost: list[str] = []
        self.lapsed = 0
        self.snipe = 0.0
        self.sniped = 0
        self.looks: dict[str, deque[float]] = {}
        self.backoff: dict[str, float] = {}
        self.pending: dict[str, list[Fresh]] = {}
        self.freshness: list[tuple[float, float, str]] = []
        self.unmeasured_ends = 0
        self.rss_day1: float | None = None
        self.rss_end = 0.0
        self.stalls = StallMonitor()

    # --- the process --------------------------------------------------------

    def request_kill(self, reason: str) -> None:
        if self.proc is not None and not self.kill_event.is_set():
            self.kill_reason = reason
            self.kill_event.set()

    async def start_process(self) -> Proc:
        session = aiohttp.ClientSession()
        client = MTAClient(session=session, base_url=self.base_url, clock=self.clock)
        store = ProcessStore(self, self.file_store)
        tasks: set[asyncio.Task[Any]] = set()

        def task_factory(
            coro: Coroutine[Any, Any, Any], name: str
        ) -> asyncio.Task[Any]:
            task = asyncio.get_running_loop().create_task(coro, name=name)
            tasks.add(task)
            task.add_done_callback(self._task_done)
            return task

        self._watch_reserves(client)
        watcher = Watcher(
            client,
            store=store,
            on_event=self.on_event,
            after_look=self.after_look,
            task_factory=task_factory,
        )
        for person in self.people:
            watcher.add(person.watch)
        task = asyncio.get_running_loop().create_task(watcher.run(), name="watcher")
        proc = Proc(session, client, store, watcher, task, tasks)
        self.proc = proc
        return proc

    def _watch_reserves(self, client: MTAClient) -> None:
        """Note what the client heard of each reserve (to explain orphans)."""
        original = client.reserve_appointment

        async def reserve(*args: Any, **kwargs: Any) -> Any:
            key = (kwargs.get("office_id"), kwargs.get("timestamp"))
            self.reserve_outcomes[key] = "sent, no answer yet"
            try:
                answer = await original(*args, **kwargs)
            except asyncio.CancelledError:
                self.reserve_outcomes[key] = "killed before the answer"
                raise
            except Exception as err:
                self.reserve_outcomes[key] = type(err).__name__
                raise
            self.reserve_outcomes[key] = "answered"
            return answer

        client.reserve_appointment = reserve  # type: ignore[method-assign]

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, Killed):
            self.unhandled[
                f"{task.get_name().split(':')[0]}:{type(error).__name__}"
            ] += 1

    async def kill(self, proc: Proc) -> None:
        """Kill the process hard: every task at once, no more writes, no session."""
        self.kill_times.append(self.clock.time())
        proc.store.dead = True
        self.proc = None
        everything = [proc.task, *proc.tasks]
        for task in everything:
            task.cancel()
        results = await asyncio.gather(*everything, return_exceptions=True)
        if proc.store.writing is not None:
            await asyncio.gather(proc.store.writing, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError | Killed
            ):
                self.dying[type(result).__name__] += 1
        await proc.session.close()

    async def supervise(self, until: float) -> None:
        """Run, kill and restart the process until ``until`` (virtual time)."""
        while self.clock.time() < until:
            proc = await self.start_process()
            self.restarts.append(self.clock.time())
            self.kill_event.clear()
            timer = self.rng.expovariate(1 / KILL_MEAN_GAP)
            waiter = asyncio.ensure_future(self.kill_event.wait())
            done, _ = await asyncio.wait(
                {proc.task, waiter},
                timeout=min(timer, until - self.clock.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            if proc.task in done and not proc.task.cancelled():
                error = proc.task.exception()
                name = type(error).__name__ if error else "returned"
                bucket = (
                    self.documented if isinstance(error, DOCUMENTED) else self.unhandled
                )
                bucket[f"run:{name}"] += 1
            if self.clock.time() >= until:
                await self.kill(proc)
                break
            if waiter in done:
                self.kills[self.kill_reason] += 1
            elif proc.task not in done:
                self.kills["random"] += 1
            await self.kill(proc)
            self.kill_event.clear()
            await asyncio.sleep(self.rng.uniform(1, 60))

    # --- watching the engine ----------------------------------------------------

    def on_event(self, event: object) -> None:
        if isinstance(event, SlotEvent):
            self.events[f"slot:{event.kind.value}"] += 1
            # A competitor books it before our reserve goes out.
            if (
                event.kind is SlotEventKind.NEW
                and self.snipe > 0
                and self.rng.random() < self.snipe
                and self.sim.take_slot(event.office_id, event.start)
            ):
                self.sniped += 1
            return
        if isinstance(event, BookingEvent):
            self.events[f"booking:{event.state.value}"] += 1
            if event.reason == INTERRUPTED or event.released is False:
                self.orphans_reported += 1
                if event.office_id is not None and event.start is not None:
                    self.reported_slots.add(
                        (event.office_id, int(event.start.timestamp()))
                    )

    def after_look(self, result: PollResult) -> None:
        proc = self.proc
        if proc is not None:
            proc.loaded = True
        for error in result.errors:
            self.poll_errors[type(error.error).__name__] += 1
            for watch_id in result.statuses:
                self.backoff[watch_id] = max(
                    self.backoff.get(watch_id, 0.0), error.retry_after
                )
        for watch_id, status in result.statuses.items():
            if status.last_checked is None:
                continue
            at = status.last_checked.timestamp()
            looks = self.looks.setdefault(watch_id, deque(maxlen=16))
            if looks and looks[-1] >= at:
                continue
            looks.append(at)
            self._fresh_look(watch_id, at)

    def _fresh_look(self, watch_id: str, at: float) -> None:
        """A successful look of ``watch_id`` at ``at``: settle what waited for it."""
        keep = []
        for entry in self.pending.get(watch_id, []):
            if entry.first is None:
                if at >= entry.end:
                    entry.first = at
                keep.append(entry)
                continue
            cycle = max(MINUTE, entry.gap, at - entry.first)
            self.freshness.append((entry.first - entry.end, cycle, entry.kind))
        self.pending[watch_id] = keep

    def window_started(self, window: Window) -> None:
        # A fault that began before a watch looked again spoils that measure.
        for watch_id, entries in self.pending.items():
            spoilt = [e for e in entries if e.first is None]
            self.unmeasured_ends += len(spoilt)
            self.pending[watch_id] = [e for e in entries if e.first is not None]
        self.active.append(window)
        self.windows.append(window)
        self.faults[window.kind] += 1
        for person in self.people:
            self.backoff.setdefault(person.watch.id, 0.0)

    def window_ended(self, window: Window) -> None:
        if window.undo is not None:
            window.undo()
        self.active.remove(window)
        if self.active or self.proc is None:
            self.unmeasured_ends += 1
            return
        for person in self.people:
            watch_id = person.watch.id
            looks = self.looks.get(watch_id)
            before = [t for t in looks or () if t < window.start]
            inside = [t for t in looks or () if t >= window.start]
            gaps = [self.backoff.get(watch_id, 0.0)]
            for run in (before, inside):
                gaps += [b - a for a, b in itertools.pairwise(run)]
            self.pending.setdefault(watch_id, []).append(
                Fresh(kind=window.kind, end=self.clock.time(), gap=max(gaps))
            )
            self.backoff[watch_id] = 0.0

    # --- faults ---------------------------------------------------------------

    def open_window(self, kind: str, duration: float) -> Window:
        now = self.clock.time()
        sim = self.sim
        undo: Callable[[], None] | None = None
        probability = self.rng.choice((1.0, 1.0, 0.5, 0.2))
        route = self.rng.choice((None, None, None, "available-calendar/", *ROUTES))
        if kind == "maintenance":
            sim.maintenance = True

            def undo() -> None:
                sim.maintenance = False

        elif kind == "limiter":
            sim.rate_limiter.max_requests = self.rng.choice((20, 30, 40))

            def undo() -> None:
                sim.rate_limiter.max_requests = 60

        elif kind == "competitor":
            self.snipe = self.rng.choice((1.0, 0.5, 0.25))

            def undo() -> None:
                self.snipe = 0.0

        elif kind == "expire":
            for process in list(self.bookings.processes.values()):
                if process.status in {"reserved", "preconfirmed"}:
                    self.bookings.expire(process.process_id)
        else:
            table: dict[str, tuple[str, dict[str, Any]]] = {
                "timeout": ("hang", {}),
                "slow": ("slow", {"delay": self.rng.uniform(2, 20)}),
                "captcha_failure": ("captcha_upstream", {}),
                "server_error": (
                    "server_error",
                    {"status": self.rng.choice((500, 500, 503, 504))},
                ),
            }
            sim_kind, extra = table.get(kind, (kind, {}))
            if sim_kind == "captcha_upstream":
                route = self.rng.choice(("captcha-verify/", "captcha-challenge/", None))
            rule = sim.faults.add(
                kind=sim_kind,
                route=route,
                times=None,
                probability=probability,
                **extra,
            )

            def undo() -> None:
                with contextlib.suppress(ValueError):
                    sim.faults.rules.remove(rule)

        window = Window(kind=kind, start=now, end=now + duration, undo=undo)
        self.window_started(window)
        return window

    async def fault_schedule(self, until: float) -> None:
        kinds = list(FAULT_PLAN)
        weights = [FAULT_PLAN[k][0] for k in kinds]
        pending: list[Window] = []
        while True:
            gap = self.rng.expovariate(1 / FAULT_MEAN_GAP)
            wake = self.clock.time() + gap
            # close the windows that end before the next one opens
            while pending and min(w.end for w in pending) <= min(wake, until):
                first = min(pending, key=lambda w: w.end)
                await asyncio.sleep(max(0.0, first.end - self.clock.time()))
                pending.remove(first)
                self.window_ended(first)
            if wake >= until:
                break
            await asyncio.sleep(max(0.0, wake - self.clock.time()))
            kind = self.rng.choices(kinds, weights)[0]
            low, high = FAULT_PLAN[kind][1]
            pending.append(self.open_window(kind, self.rng.uniform(low, high)))
        for window in sorted(pending, key=lambda w: w.end):
            self.window_ended(window)

    # --- the people -------------------------------------------------------------

    async def people_loop(self, until: float) -> None:
        next_check = 0.0
        while self.clock.time() < until:
            await asyncio.sleep(60)
            now = self.clock.time()
            if now >= next_check:
                self.check_double()
                next_check = now + 300
            proc = self.proc
            if proc is None or not proc.loaded:
                continue
            for person in self.people:
                if person.watch.auto_book:
                    await self.tend(proc, person, now)
            self.trim(now)

    async def tend(self, proc: Proc, person: Person, now: float) -> None:
        watcher = proc.watcher
        watch_id = person.watch.id
        status = watcher.status(watch_id).booking
        state = status.state
        if state is BookingState.BOOKED and person.plan is None:
            person.plan = self.rng.choices(
                ("confirm", "cancel", "lapse"), (60, 15, 25)
            )[0]
            person.act_at = now + self.rng.uniform(60, 25 * 60)
            if person.plan == "cancel":
                person.act_at = now + self.rng.uniform(5 * 60, 2 * 3600)
        if state is BookingState.CONFIRMED and person.plan == "confirm":
            person.plan = "keep" if self.rng.random() < 0.8 else "cancel"
            person.act_at = now + self.rng.uniform(600, 6 * 3600)
        deadline = status.activation_deadline
        if (
            person.plan in {"confirm", "cancel"}
            and now >= person.act_at
            and state.holds_appointment
        ):
            await self.act(proc, person, state)
            return
        lapsed = (
            state is BookingState.BOOKED
            and deadline is not None
            and now > deadline.timestamp() + 120
        )
        settled = (
            lapsed
            or state in {BookingState.CANCELLED, BookingState.FAILED}
            or (state is BookingState.CONFIRMED and person.plan == "keep")
        )
        if settled and person.settled_at is None:
            person.settled_at = now
            person.retire_at = now + self.rng.uniform(1800, 4 * 3600)
        if person.retire_at is not None and now >= person.retire_at:
            self.retire(proc, person, lapsed=lapsed)

    async def act(self, proc: Proc, person: Person, state: BookingState) -> None:
        watcher = proc.watcher
        watch_id = person.watch.id

        async def confirm() -> BookingEvent:
            credentials = watcher.credentials(watch_id)
            if credentials is None:
                msg = "no credentials"
                raise KeyError(msg)
            link = self.sim.outbox.activation_link(credentials.process_id)
            return await watcher.confirm(link)

        coro = (
            confirm()
            if person.plan == "confirm" and state is BookingState.BOOKED
            else watcher.cancel(watch_id)
        )
        task = asyncio.get_running_loop().create_task(coro, name=f"person:{watch_id}")
        proc.tasks.add(task)
        await asyncio.wait({task})
        proc.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            if person.plan == "cancel":
                person.plan = "done"
            return
        if isinstance(error, MTAError | KeyError | LookupError | Killed):
            person.act_at = self.clock.time() + 120  # try again
            if isinstance(error, BookingConflictError):
                person.plan = "done"
            return
        self.unhandled[f"person:{type(error).__name__}"] += 1

    def retire(self, proc: Proc, person: Person, *, lapsed: bool) -> None:
        watcher = proc.watcher
        watch_id = person.watch.id
        status = watcher.status(watch_id).booking
        self.ledger[watch_id] = {
            "state": status.state.value,
            "process_id": status.process_id,
            "lapsed": lapsed,
        }
        if status.process_id is not None:
            self.known_ids.add(status.process_id)
        if lapsed:
            self.lapsed += 1
        watcher.remove(watch_id)
        index = self.people.index(person)
        new = Person(
            index=person.index,
            generation=person.generation + 1,
            watch=make_watch(person.index, person.generation + 1),
        )
        self.people[index] = new
        self.looks.pop(watch_id, None)
        self.pending.pop(watch_id, None)
        self.backoff.pop(watch_id, None)
        watcher.add(new.watch)

    def ours(self) -> list[Process]:
        return [
            p
            for p in self.bookings.processes.values()
            if p.email and p.email.endswith("@" + OUR_DOMAIN)
        ]

    def check_double(self) -> None:
        holding: Counter[str] = Counter()
        for process in self.ours():
            if process.status in {"preconfirmed", "confirmed"} and process.email:
                holding[process.email] += 1
        self.double_booked.update(email for email, n in holding.items() if n > 1)

    def trim(self, now: float) -> None:
        """Forget the simulator's own records older than a day (not the engine's)."""
        stats = self.sim.stats
        if len(stats.slot_appearances) > 5000:
            stats.slot_appearances.clear()
        if len(stats.competitor_takes) > 5000:
            stats.competitor_takes.clear()
        outbox = self.sim.outbox
        old = [m for m in outbox if m.sent_at < now - DAY]
        if old:
            outbox[:] = [m for m in outbox if m.sent_at >= now - DAY]

    # --- after the run ----------------------------------------------------------

    async def cross_check(self) -> dict[str, Any]:
        state = parse_state(await self.file_store.load())
        now = self.clock.time()
        store_ids: dict[int, str] = {}
        lost: list[str] = []
        lapsed = 0
        for watch_id, entry in state.watches.items():
            record = entry.booking
            if record.process_id is None:
                continue
            store_ids[record.process_id] = watch_id
            process = self.bookings.processes.get(record.process_id)
            holding = process is not None and process.status in {
                "preconfirmed",
                "confirmed",
            }
            if (
                record.state in {BookingState.BOOKED, BookingState.CONFIRMED}
                and not holding
            ):
                deadline = record.activation_deadline
                if record.state is BookingState.BOOKED and (
                    deadline is not None and deadline.timestamp() <= now
                ):
                    lapsed += 1
                else:
                    lost.append(
                        f"store:{watch_id}:{record.process_id}:{record.state.value}"
                    )
        ledger_ids = {
            e["process_id"] for e in self.ledger.values() if e["process_id"] is not None
        }
        for process in self.ours():
            if process.status not in {"preconfirmed", "confirmed"}:
                continue
            if (
                process.process_id not in store_ids
                and process.process_id not in ledger_ids
            ):
                lost.append(
                    f"city:{process.email}:{process.process_id}:{process.status}"
                )
        orphans = []
        bookings = self.bookings
        unknown = bookings.reserved_ids - self.known_ids - bookings.cancelled_ids
        for process_id in sorted(unknown):
            at = self.bookings.reserved_at[process_id]
            kinds = sorted(
                {
                    w.kind
                    for w in self.windows
                    if w.start <= at <= max(w.end, w.start + 60)
                }
            )
            if any(r - 60 <= at <= r for r in self.kill_times):
                kinds.append("kill")
            slot = self.bookings.reserved_slot[process_id]
            orphans.append(
                {
                    "at_s": round(at - START),
                    "during": kinds,
                    "client": self.reserve_outcomes.get(slot, "never asked"),
                    "reported": slot in self.reported_slots,
                }
            )
        return {
            "lost": lost,
            "lapsed_in_store": lapsed,
            "orphans_actual": len(orphans),
            "orphans": orphans[:20],
        }

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            error = context.get("exception")
            if error is not None and not isinstance(error, Killed):
                self.unhandled[f"loop:{type(error).__name__}"] += 1
            elif error is None:
                self.loop_messages[str(context.get("message"))[:80]] += 1

        loop.set_exception_handler(handler)
        until = self.clock.time() + self.days * DAY
        async with SimulatorServer(self.sim) as server:
            self.base_url = server.base_url
            self.stalls.install()
            try:
                memory = asyncio.ensure_future(self.memory(until))
                await asyncio.gather(
                    self.supervise(until),
                    self.fault_schedule(until),
                    self.people_loop(until),
                )
                await memory
            finally:
                self.stalls.uninstall()
            checked = await self.cross_check()
        return self.report(checked)

    async def memory(self, until: float) -> None:
        day1 = self.clock.time() + min(DAY, (until - self.clock.time()) / 2)
        await asyncio.sleep(max(0.0, day1 - self.clock.time()))
        self.rss_day1 = self._rss()
        await asyncio.sleep(max(0.0, until - self.clock.time() - 1))
        self.rss_end = self._rss()

    def _rss(self) -> float:
        self.stalls.excused = True
        gc.collect()
        return rss_mb()

    def report(self, checked: dict[str, Any]) -> dict[str, Any]:
        per_change = []
        limited = sorted(self.limiter.limited)
        used: set[int] = set()
        for window in self.windows:
            if window.kind != "limiter":
                continue
            hits = [
                i
                for i, t in enumerate(limited)
                if window.start <= t <= window.end + LIMITER_GRACE
            ]
            used.update(hits)
            per_change.append(len(hits))
        rest = [t for i, t in enumerate(limited) if i not in used]
        after_restart = sum(
            1 for t in rest if any(r <= t <= r + RESTART_GRACE for r in self.restarts)
        )
        worst_fresh = max(self.freshness, default=(0.0, 0.0, ""))
        worst_ratio = (
            max(
                ((lag / cycle if cycle > 0 else math.inf), lag, cycle, w)
                for lag, cycle, w in self.freshness
            )
            if self.freshness
            else (0.0, 0.0, 0.0, "")
        )
        late_cases = [
            (lag, cycle, k) for lag, cycle, k in self.freshness if lag > 2 * cycle
        ]
        late_kinds = Counter(k for _, _, k in late_cases)
        late = sum(late_kinds.values())
        growth = (
            round(self.rss_end - self.rss_day1, 1)
            if self.rss_day1 is not None
            else None
        )
        reported = self.orphans_reported
        unreported = max(0, checked["orphans_actual"] - reported)

        def inv(value: Any, limit: Any, *, ok: bool) -> dict[str, Any]:
            return {"value": value, "limit": limit, "ok": ok}

        unhandled = sum(self.unhandled.values())
        invariants = {
            "unhandled_exceptions": inv(unhandled, 0, ok=unhandled == 0),
            "double_bookings": inv(
                len(self.double_booked), 0, ok=not self.double_booked
            ),
            "lost_bookings": inv(len(checked["lost"]), 0, ok=not checked["lost"]),
            # A figure to report, not a limit: a reserve answered after the
            # client gave up on it (a timeout) is an orphan nobody can report.
            "orphan_reservations": inv(
                {"actual": checked["orphans_actual"], "reported": reported},
                None,
                ok=True,
            ),
            "rate_limited_per_limiter_change_max": inv(
                max(per_change, default=0), 1, ok=max(per_change, default=0) <= 1
            ),
            "fresh_within_two_cycles_late": inv(late, 0, ok=late == 0),
            "memory_growth_mb": inv(growth, 10, ok=growth is not None and growth < 10),
            "loop_stalls_over_100ms": inv(self.stalls.cpu, 0, ok=self.stalls.cpu == 0),
        }
        reservations = len(self.bookings.reserved_ids)
        return {
            "faults": dict(sorted(self.faults.items())),
            "faults_hit": dict(sorted(self.sim.stats.faults.items())),
            "kills": {
                "random": self.kills["random"],
                "mid_booking": self.kills["mid_booking"],
            },
            "restarts": len(self.restarts) - 1,
            "bookings": {
                "reservations": reservations,
                "booked": self.events["booking:booked"],
                "confirmed": self.events["booking:confirmed"],
                "cancelled": self.events["booking:cancelled"],
                "failed": self.events["booking:failed"],
                "lapsed": self.lapsed + checked["lapsed_in_store"],
                "retired_watches": len(self.ledger),
                "sniped_by_competitors": self.sniped,
                "expired_reservations": self.sim.stats.expired_reservations,
                "expired_activations": self.sim.stats.expired_activations,
            },
            "invariants": invariants,
            "details": {
                "unhandled": dict(self.unhandled),
                "documented_raised": dict(self.documented),
                "exceptions_while_dying": dict(self.dying),
                "loop_messages": dict(self.loop_messages),
                "poll_errors": dict(sorted(self.poll_errors.items())),
                "double_booked": sorted(self.double_booked),
                "lost": checked["lost"],
                "orphans": {
                    "actual": checked["orphans_actual"],
                    "reported": reported,
                    "unreported": unreported,
                    "first": checked["orphans"],
                },
                "rate_limited": {
                    "per_limiter_change": per_change,
                    "other": len(rest),
                    "other_after_restart": after_restart,
                    "total": len(limited),
                },
                "freshness": {
                    "measured": len(self.freshness),
                    "unmeasured_ends": self.unmeasured_ends,
                    "worst_lag_s": round(worst_fresh[0], 1),
                    "worst_ratio": round(worst_ratio[0], 2),
                    "worst_ratio_lag_s": round(worst_ratio[1], 1),
                    "worst_ratio_cycle_s": round(worst_ratio[2], 1),
                    "late": late,
                    "late_by_kind": dict(late_kinds),
                    "late_cases": [
                        {"kind": k, "lag_s": round(lag, 1), "cycle_s": round(cycle, 1)}
                        for lag, cycle, k in late_cases[:10]
                    ],
                },
                "memory": {
                    "rss_day1_mb": None
                    if self.rss_day1 is None
                    else round(self.rss_day1, 1),
                    "rss_end_mb": round(self.rss_end, 1),
                },
                "loop": {
                    "callbacks": self.stalls.callbacks,
                    "stalls_cpu": self.stalls.cpu,
                    "stalls_wall": self.stalls.wall,
                    "simulator_stalls_wall": self.stalls.simulator,
                    "slowest": [
                        {
                            "wall_ms": round(t * 1000, 1),
                            "cpu_ms": round(c * 1000, 1),
                            "what": w,
                        }
                        for t, c, w in self.stalls.worst
                    ],
                },
                "requests": sum(self.sim.stats.requests_by_ip.values()),
                "events": dict(sorted(self.events.items())),
            },
        }


def engine(*, days: float, seed: int, watches: int) -> dict[str, Any]:
    """Run the engine part; return its figures."""
    with tempfile.TemporaryDirectory(prefix="mta-soak-") as tmp:

        async def main() -> dict[str, Any]:
            return await Soak(
                days=days, seed=seed, watches=watches, state_dir=Path(tmp)
            ).run()

        return run_virtual(main(), start=START)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="simulated days (30)")
    parser.add_argument("--seed", type=int, default=1, help="seed (1)")
    parser.add_argument("--watches", type=int, default=8, help="watches (8; half book)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--part", choices=("engine", "ha", "both"), default="both", help="(both)"
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.watches < 1:
        parser.error("--days must be positive and --watches at least 1")
    # A month of faults makes the library log thousands of warnings.
    logging.getLogger("mta_client").setLevel(logging.ERROR)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "params": {
            "days": args.days,
            "seed": args.seed,
            "watches": args.watches,
            "part": args.part,
        }
    }
    ok = True
    if args.part in {"engine", "both"}:
        result["engine"] = engine(days=args.days, seed=args.seed, watches=args.watches)
        ok = all(v["ok"] for v in result["engine"]["invariants"].values())
    if args.part in {"ha", "both"}:
        result["ha"] = {
            "run_by": "the test suite",
            "test": "tests/components/munich_termin/test_soak.py",
            "days": 1,
        }
    result["ok"] = ok
    result["real_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
