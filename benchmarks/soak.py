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
* the people behind the auto-booking watches: for each booking one opens
  the activation mail and confirms through the engine (45 %), clicks the link
  in a browser, which the engine does not see (15 %), cancels later (15 %)
  or lets the activation lapse (25 %). A lapsed booking frees the watch,
  which books again; hours after a booking settled (confirmed and kept,
  cancelled, failed) the watch is retired (its booking written to a ledger)
  and a new one with a new e-mail takes its place.

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
  the store nor the ledger knows as ``booked`` or ``confirmed`` (one they
  call ``lapsed`` is lost too), and bookings the store holds as ``booked``
  or ``confirmed`` that the simulator does not (unless cancelled by us, or
  ``booked`` whose activation ran out less than :data:`STALE_AFTER` ago:
  the engine has yet to ask);
* ``stale_bookings``: bookings still ``booked`` :data:`STALE_AFTER` after
  their activation deadline (the engine never learnt that the link was used
  in a browser, or that the activation lapsed: the watch would never book
  again); ``details.activations`` says how long after the deadline the
  engine learnt it;
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
  cycles. A cycle is the longest of: the pauses between its last
  successful looks (up to 16) before the fault and inside the window; its
  first pause after it; the back-off the engine announced for failures of
  that watch's looks meanwhile (``PollError.watch_ids``; the catalogue's and
  the captcha's count for every watch); and, when no look of the watch
  failed since the look before (a failed early renewal of the captcha token
  delays no look), the pause before that next look itself, since the engine
  then kept its own schedule, which changes at the release windows and at
  night. At least a minute: the engine plans its looks per minute of the
  city's cron, with a planned minute of silence when the limiter's count
  would run out. A back-off announced before the end that lasts beyond it
  (a block's 15 minutes, from an earlier window) is waited out first;
* ``memory_growth_mb``: RSS growth from the end of day 1 to the end, each
  measured after ``gc.collect()`` and glibc's ``malloc_trim(0)``: without
  the trim, memory freed between live blocks of the C heap stays resident
  (the allocator's fragmentation, which grows with every large answer
  parsed and never means more live data). ``details.memory.daily`` lists,
  per day, the RSS, the C heap's bytes in use (``mallinfo2``) and Python's
  allocated blocks, which show that the live data stays flat. The
  simulator archives appointments the day after their day; the soak
  forgets the simulator's own records (slot appearances, competitors'
  takes, mails older than a day), which it does not read;
* ``loop_stalls``: event-loop callbacks that ran longer than 100 ms of CPU
  time (every handle's callback is timed; the wall time, which a busy
  machine stretches, is listed too), and full passes of the cyclic garbage
  collector over 100 ms - the collector's own and the soak's daily
  ``gc.collect()``, which does the same work and so says what a full pass
  costs whenever the collector chooses to run one (``details.loop.
  collector``). Each of the slowest callbacks says how much of its time was
  the collector's and where its code was (a sampling thread). The objects
  of the soak's start-up (modules, the simulator's catalogue and first
  slots: some 77,000) are frozen with ``gc.freeze()``, as a long-running
  program does after loading; unfrozen, a full pass over them takes
  60-115 ms of CPU in this process, and about 45 ms over the modules of
  ``mta watch`` alone.

The Home Assistant part (``--part ha``, in ``both`` too) is not run in this
process: Home Assistant's test harness is pytest-based.
``tests/components/munich_termin/test_soak.py`` runs the coordinator with the
same faults - for one simulated day in the test suite, and for ``--days``
here, in a pytest process of its own (``benchmarks/soak_ha.py``); ``"ha"``
holds its faults and invariants, ``ok`` both parts'.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, deque
import contextlib
import ctypes
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import gc
import importlib.util
import itertools
import json
import logging
import math
import os
from pathlib import Path
import random
import statistics
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp

from mta_client import ContactDetails, LoopClock, MTAClient, ServiceRequest
from mta_client.booking import INTERRUPTED, BookingConflictError
from mta_client.exceptions import MTAError, MTAValidationError
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer, run_virtual
from mta_client.simulator.booking import Bookings, Process
from mta_client.simulator.errors import CityError
from mta_client.simulator.ratelimit import RateLimiter
from mta_client.store import JSONFileStore, StoreError, parse_state
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind, Watch
from mta_client.watcher import PollResult, Watcher

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Sequence
    from types import FrameType

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
HANG_S = 120.0
STALE_AFTER = 6 * 3600.0
"""Longer than any fault window (maintenance: 2 h) plus the back-off after it."""
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (``malloc_trim``, ``mallinfo2``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


@dataclass(frozen=True)
class MemorySample:
    """The process's memory at one moment, after ``gc.collect()`` and a trim."""

    day: float
    rss_mb: float
    malloc_in_use_mb: float | None
    """What the C heap holds for live objects (glibc's ``mallinfo2``)."""
    python_blocks: int
    """Memory blocks Python's allocator holds (``sys.getallocatedblocks()``)."""


def memory_sample(day: float) -> MemorySample:
    """Collect garbage, give the C heap's free pages back, and measure.

    Freed memory stays in the process when free chunks lie between used
    ones (glibc trims only the top of its heap); ``malloc_trim(0)`` returns
    those pages, so the RSS tells live data, not the allocator's history.
    """
    gc.collect()
    libc = _glibc()
    in_use = None
    if libc is not None:
        libc.malloc_trim(0)
        info = libc.mallinfo2()
        in_use = (info.uordblks + info.hblkhd) / 1e6
    return MemorySample(
        day=day,
        rss_mb=rss_mb(),
        malloc_in_use_mb=in_use,
        python_blocks=sys.getallocatedblocks(),
    )


# --- instrumentation ------------------------------------------------------------


def trim_simulator(sim: Simulator, now: float) -> None:
    """Forget the simulator's own records (not the engine's): a soak reads
    none of them, and its mails only for a day."""
    stats = sim.stats
    stats.slot_appearances.clear()
    stats.competitor_takes.clear()
    outbox = sim.outbox
    if any(m.sent_at < now - DAY for m in outbox):
        outbox[:] = [m for m in outbox if m.sent_at >= now - DAY]


class StallMonitor:
    """Times every event-loop callback, while installed.

    Real (wall) time and the thread's CPU time of each callback: on a busy
    machine the wall time includes the moments the OS ran something else,
    the CPU time only what the callback itself did. Callbacks of the
    simulator's own request handlers (``RequestHandler``) are the city's
    side and counted apart.

    A sampling thread looks at the loop's thread every 10 ms while a callback
    has run for more than half the limit, so that each stall names the code
    it was in (``where``: the two stacks seen most often, each the innermost
    frames of this project and the library call below them). The slowest by
    CPU time are listed.
    """

    def __init__(self) -> None:
        self.callbacks = 0
        self.wall = 0
        self.cpu = 0
        self.simulator = 0
        self.worst: list[tuple[float, float, float, str, str]] = []
        """(wall, CPU, of it the collector's, what, where) of the slowest."""
        self.gc_pauses = 0
        self.gc_worst = 0.0
        self.gc_over = 0
        """The cyclic garbage collector's own full passes in the loop's
        thread: how many, the longest (CPU seconds), how many over the limit."""
        self.gc_measuring_worst = 0.0
        self.gc_measuring_over = 0
        """The longest of the soak's daily ``gc.collect()`` (excused: the
        soak's own) and how many took over the limit: what a full pass costs
        in this process, which the collector could do at any time."""
        self._gc_cpu = 0.0
        self._gc_began: float | None = None
        self._loop_thread = 0
        self.excused = False
        """Set by the soak's own measuring (``gc.collect()``): not a stall."""
        self._original: Any = None
        self._running: tuple[float, asyncio.Handle] | None = None
        self._seen: Counter[str] = Counter()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def install(self) -> None:
        handle = asyncio.events.Handle
        original = handle._run  # noqa: SLF001 - the loop's one callback entry
        self._original = original
        monitor = self

        def timed(this: asyncio.Handle) -> None:
            began, cpu = time.perf_counter(), time.thread_time()
            monitor._gc_cpu = 0.0
            monitor._running = (began, this)
            try:
                original(this)
            finally:
                monitor._running = None
            took = time.perf_counter() - began
            monitor.callbacks += 1
            if took > STALL_S:
                monitor.stall(this, took, time.thread_time() - cpu, monitor._gc_cpu)
            if monitor._seen:
                monitor._seen.clear()
            monitor.excused = False

        handle._run = timed  # type: ignore[method-assign,assignment] # noqa: SLF001
        loop_thread = threading.get_ident()
        self._loop_thread = loop_thread
        gc.callbacks.append(self._collector)
        self._stop.clear()
        self._sampler = threading.Thread(
            target=self._sample, args=(loop_thread,), name="stall-sampler", daemon=True
        )
        self._sampler.start()

    def _collector(self, phase: str, info: dict[str, int]) -> None:
        """Time the collector's passes that ran in the loop's thread."""
        if threading.get_ident() != self._loop_thread:
            return
        if phase == "start":
            self._gc_began = time.thread_time()
            return
        if self._gc_began is None:
            return
        took, self._gc_began = time.thread_time() - self._gc_began, None
        self._gc_cpu += took
        if info.get("generation") != 2:
            return
        if self.excused:
            self.gc_measuring_worst = max(self.gc_measuring_worst, took)
            self.gc_measuring_over += took > STALL_S
            return
        self.gc_pauses += 1
        self.gc_worst = max(self.gc_worst, took)
        self.gc_over += took > STALL_S

    def _sample(self, loop_thread: int) -> None:
        while not self._stop.wait(0.01):
            running = self._running
            if running is None or time.perf_counter() - running[0] < STALL_S / 2:
                continue
            frame = sys._current_frames().get(loop_thread)  # noqa: SLF001
            if frame is not None and self._running is running:
                self._seen[_where(frame)] += 1

    def stall(
        self, handle: asyncio.Handle, took: float, cpu: float, collector: float
    ) -> None:
        if self.excused:
            return
        what = _describe(handle)
        if "RequestHandler" in what:
            self.simulator += 1
            return
        self.wall += 1
        self.cpu += cpu > STALL_S
        where = " | ".join(w for w, _ in self._seen.most_common(2)) or "?"
        self.worst.append((took, cpu, collector, what, where))
        # The CPU time first: on a busy machine the wall time is the OS's.
        self.worst.sort(key=lambda item: (item[1], item[0]), reverse=True)
        del self.worst[5:]

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._collector)
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
            self._sampler = None
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign] # noqa: SLF001
            self._original = None


def _where(frame: FrameType | None) -> str:
    """The innermost frames of the project, and the outside call below them."""
    ours: list[str] = []
    outside = ""
    while frame is not None and len(ours) < 4:
        code = frame.f_code
        name = f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name}"
        if "/mta_client/" in code.co_filename or "/benchmarks/" in code.co_filename:
            ours.append(name)
        elif not ours:
            outside = name
        frame = frame.f_back
    return " < ".join([*([outside] if outside else []), *ours])


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
    process_id: int | None = None
    """The booking the plan is for."""
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
    waits_until: float = 0.0
    """A back-off announced before the end (perhaps in an earlier window)
    that lasts beyond it: the lag counts from its end."""
    planned: float = 0.0
    """The pause before ``first`` when no look of the watch failed in it: the
    engine's own cadence (it changes at the windows and at night)."""


def settle_fresh(
    looks: Sequence[float], entries: Iterable[Fresh], failed_at: float, at: float
) -> tuple[list[Fresh], list[tuple[Fresh, float, float, float]]]:
    """A watch's successful look at ``at``: the fault ends it settles.

    ``looks`` are the watch's recent successful looks (``at`` the last),
    ``failed_at`` when a look of it last failed. The first look after an
    end is noted; the one after that settles it: the lag runs from the end
    (or from the end of a back-off announced before it) to that first look,
    the poll cycle is the longest of a minute, the gap before the end, the
    first pause after the first look and - when no look failed since the
    look before it - the pause before it (the engine kept its own schedule,
    and that pause was one of its cycles). Returns the entries still waiting
    and the settled ones as ``(entry, lag, cycle, since)``.
    """
    previous = looks[-2] if len(looks) > 1 else None
    keep: list[Fresh] = []
    settled: list[tuple[Fresh, float, float, float]] = []
    for entry in entries:
        if entry.first is None:
            if at >= entry.end:
                entry.first = at
                clean = previous is not None and failed_at < previous
                entry.planned = at - previous if clean and previous else 0.0
            keep.append(entry)
            continue
        cycle = max(MINUTE, entry.gap, at - entry.first, entry.planned)
        since = max(entry.end, entry.waits_until)
        settled.append((entry, entry.first - since, cycle, since))
    return keep, settled


@dataclass
class Activations:
    """What the engine learnt of the activation links, and when."""

    learnt: list[float] = field(default_factory=list)
    """Seconds after the deadline at which the engine learnt a booking's fate
    from the city (lapsed, or confirmed in a browser)."""
    stale: set[int] = field(default_factory=set)
    """Bookings still ``booked`` :data:`STALE_AFTER` after their deadline."""
    in_browser: int = 0
    booked_again: int = 0
    deadlines: dict[int, float] = field(default_factory=dict)
    """The activation deadline of each booking waiting for its activation."""
    clicked: set[int] = field(default_factory=set)
    """Bookings whose link the person used in a browser."""
    lapsed_watches: set[str] = field(default_factory=set)

    def event(self, event: BookingEvent, now: float) -> None:
        """Follow the engine's booking events."""
        pid = event.process_id or 0
        if event.state is BookingState.BOOKED:
            if event.watch_id in self.lapsed_watches:
                self.lapsed_watches.discard(event.watch_id)
                self.booked_again += 1
            if event.activation_deadline is not None:
                # The first deadline is the city's (a resumed booking's is later).
                self.deadlines.setdefault(pid, event.activation_deadline.timestamp())
            return
        if event.state is BookingState.LAPSED:
            self.lapsed_watches.add(event.watch_id)
        learnt = event.state is BookingState.LAPSED or (
            event.state is BookingState.CONFIRMED and pid in self.clicked
        )
        if pid in self.deadlines:
            deadline = self.deadlines.pop(pid)
            if learnt:
                self.learnt.append(now - deadline)
        self.clicked.discard(pid)


@dataclass
class FreshStats:
    """The freshness measures, kept as figures (a month has thousands)."""

    measured: int = 0
    worst_lag: float = 0.0
    worst_ratio: tuple[float, float, float, str] = (0.0, 0.0, 0.0, "")
    late_kinds: Counter[str] = field(default_factory=Counter)
    late_cases: list[tuple[float, float, str]] = field(default_factory=list)
    failed_at: dict[str, float] = field(default_factory=dict)
    """Per watch, when a look of it last failed."""
    waits: dict[str, float] = field(default_factory=dict)
    """Per watch, until when the engine said it waits after a failure."""

    def add(self, lag: float, cycle: float, kind: str) -> None:
        self.measured += 1
        self.worst_lag = max(self.worst_lag, lag)
        ratio = lag / cycle if cycle > 0 else math.inf
        self.worst_ratio = max(self.worst_ratio, (ratio, lag, cycle, kind))
        if lag > 2 * cycle:
            self.late_kinds[kind] += 1
            if len(self.late_cases) < 10:
                self.late_cases.append((lag, cycle, kind))


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
        self.activations = Activations()
        self.snipe = 0.0
        self.sniped = 0
        self.looks: dict[str, deque[float]] = {}
        self.backoff: dict[str, float] = {}
        self.pending: dict[str, list[Fresh]] = {}
        self.freshness = FreshStats()
        self.unmeasured_ends = 0
        self.memory_samples: list[MemorySample] = []
        """Daily, the first after day 1 (or half a shorter run)."""
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
            self.activations.event(event, self.clock.time())
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
        now = self.clock.time()
        for error in result.errors:
            self.poll_errors[type(error.error).__name__] += 1
            # The catalogue and the captcha are every watch's; a failed early
            # renewal of the captcha token delays no look (the look fetches
            # its own token).
            for watch_id in error.watch_ids or tuple(result.statuses):
                self.backoff[watch_id] = max(
                    self.backoff.get(watch_id, 0.0), error.retry_after
                )
                if error.what != "captcha":
                    self.freshness.failed_at[watch_id] = now
                    waits = self.freshness.waits
                    waits[watch_id] = max(
                        waits.get(watch_id, 0.0), now + error.retry_after
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
        pending, settled = settle_fresh(
            self.looks[watch_id],
            self.pending.get(watch_id, []),
            self.freshness.failed_at.get(watch_id, -math.inf),
            at,
        )
        for entry, lag, cycle, _since in settled:
            self.freshness.add(lag, cycle, entry.kind)
        self.pending[watch_id] = pending

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
            window.undo = None
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
                Fresh(
                    kind=window.kind,
                    end=self.clock.time(),
                    gap=max(gaps),
                    waits_until=self.freshness.waits.get(watch_id, 0.0),
                )
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
                # The client gives up after its request timeout; the server
                # drops a hung request two minutes on.
                "timeout": ("hang", {"delay": HANG_S}),
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
            self.check_lapsed(proc)
            for person in self.people:
                if person.watch.auto_book:
                    await self.tend(proc, person, now)
            self.trim(now)

    async def tend(self, proc: Proc, person: Person, now: float) -> None:
        watcher = proc.watcher
        watch_id = person.watch.id
        status = watcher.status(watch_id).booking
        state = status.state
        if state is BookingState.BOOKED and status.process_id != person.process_id:
            person.process_id = status.process_id
            person.plan = self.rng.choices(
                ("confirm", "browser", "cancel", "lapse"), (45, 15, 15, 25)
            )[0]
            person.act_at = now + self.rng.uniform(60, 25 * 60)
            if person.plan == "cancel":
                person.act_at = now + self.rng.uniform(5 * 60, 2 * 3600)
        if state is BookingState.CONFIRMED and person.plan in {"confirm", "clicked"}:
            person.plan = "keep" if self.rng.random() < 0.8 else "cancel"
            person.act_at = now + self.rng.uniform(600, 6 * 3600)
        if state is BookingState.LAPSED:
            person.plan = "lapsed"  # the watch books again
        deadline = self.activations.deadlines.get(status.process_id or 0)
        if state is BookingState.BOOKED and deadline and now > deadline + STALE_AFTER:
            self.activations.stale.add(status.process_id or 0)
        if person.plan == "browser" and now >= person.act_at:
            self.browser_confirm(proc, person)
        elif (
            person.plan in {"confirm", "cancel"}
            and now >= person.act_at
            and state.holds_appointment
        ):
            await self.act(proc, person, state)
            return
        settled = state in {BookingState.CANCELLED, BookingState.FAILED} or (
            state is BookingState.CONFIRMED and person.plan == "keep"
        )
        if settled and person.settled_at is None:
            person.settled_at = now
            person.retire_at = now + self.rng.uniform(1800, 4 * 3600)
        if person.retire_at is not None and now >= person.retire_at:
            self.retire(proc, person)

    def browser_confirm(self, proc: Proc, person: Person) -> None:
        """The person clicks the activation link in a browser: straight to the city."""
        person.plan = "clicked"  # kept or cancelled once the engine knows
        credentials = proc.watcher.credentials(person.watch.id)
        if credentials is None or credentials.process_id != person.process_id:
            return
        self.sim.sync()
        try:
            self.sim.bookings.confirm(
                {"processId": credentials.process_id, "authKey": credentials.auth_key}
            )
        except CityError:
            return  # it lapsed meanwhile (an early expiry)
        self.activations.in_browser += 1
        self.activations.clicked.add(credentials.process_id)

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

    def retire(self, proc: Proc, person: Person) -> None:
        watcher = proc.watcher
        watch_id = person.watch.id
        status = watcher.status(watch_id).booking
        self.ledger[watch_id] = {
            "state": status.state.value,
            "process_id": status.process_id,
        }
        if status.process_id is not None:
            self.known_ids.add(status.process_id)
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
        self.freshness.failed_at.pop(watch_id, None)
        self.freshness.waits.pop(watch_id, None)
        watcher.add(new.watch)

    def ours(self) -> list[Process]:
        return [
            p
            for p in self.bookings.processes.values()
            if p.email and p.email.endswith("@" + OUR_DOMAIN)
        ]

    def held(self, process_id: int) -> bool:
        """Whether the city holds the appointment (pre-confirmed or confirmed)."""
        process = self.bookings.processes.get(process_id)
        return process is not None and process.status in {"preconfirmed", "confirmed"}

    def check_lapsed(self, proc: Proc) -> None:
        """A booking the engine calls lapsed must be gone at the city."""
        for person in self.people:
            status = proc.watcher.status(person.watch.id).booking
            pid = status.process_id
            if status.state is BookingState.LAPSED and pid and self.held(pid):
                self.lost.append(f"lapsed:{person.watch.id}:{pid}")

    def check_double(self) -> None:
        holding: Counter[str] = Counter()
        for process in self.ours():
            if process.status in {"preconfirmed", "confirmed"} and process.email:
                holding[process.email] += 1
        self.double_booked.update(email for email, n in holding.items() if n > 1)

    def trim(self, now: float) -> None:
        """Forget the simulator's own records (see :func:`trim_simulator`)."""
        trim_simulator(self.sim, now)

    # --- after the run ----------------------------------------------------------

    async def cross_check(self) -> dict[str, Any]:
        state = parse_state(await self.file_store.load())
        now = self.clock.time()
        holding = {"booked", "confirmed"}
        known: set[int] = set()
        lost: list[str] = list(self.lost)
        pending = 0
        for watch_id, entry in state.watches.items():
            record = entry.booking
            if record.process_id is None:
                continue
            if record.state.value in holding:
                known.add(record.process_id)
            if not record.state.holds_appointment or self.held(record.process_id):
                continue
            if record.start is not None and record.start.timestamp() < now - DAY:
                continue  # its day is over: the city archived it
            deadline = record.activation_deadline
            if record.state is BookingState.BOOKED and (
                deadline is None or now < deadline.timestamp() + STALE_AFTER
            ):
                pending += 1  # dropped at the city; the engine asks soon
            else:
                lost.append(f"store:{watch_id}:{record.process_id}:{record.state}")
        known.update(
            e["process_id"]
            for e in self.ledger.values()
            if e["process_id"] is not None and e["state"] in holding
        )
        for process in self.ours():
            held = process.status in {"preconfirmed", "confirmed"}
            if held and process.process_id not in known:
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
            "lost": sorted(set(lost)),
            "pending_checks": pending,
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
            # What exists now lives as long as the process: modules, the
            # simulator's catalogue and first slots. A long-running program
            # freezes it after loading, so that the collector's full passes
            # cover only what the run makes (see loop_stalls).
            gc.collect()
            gc.freeze()
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
                gc.unfreeze()
            checked = await self.cross_check()
        return self.report(checked)

    async def memory(self, until: float) -> None:
        started = self.clock.time()
        first = started + min(DAY, (until - started) / 2)
        for at in [*range(int(first), int(until - 1), int(DAY)), until - 1]:
            await asyncio.sleep(max(0.0, at - self.clock.time()))
            self.stalls.excused = True
            self.memory_samples.append(memory_sample((at - started) / DAY))

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
        fresh = self.freshness
        worst_ratio = fresh.worst_ratio
        late_kinds = fresh.late_kinds
        late = sum(late_kinds.values())
        samples = self.memory_samples
        first, last = (samples[0], samples[-1]) if samples else (None, None)
        growth = round(last.rss_mb - first.rss_mb, 1) if first and last else None
        reported = self.orphans_reported
        unreported = max(0, checked["orphans_actual"] - reported)
        learnt = sorted(self.activations.learnt)
        # A full pass of the collector as long as the limit would stall the
        # loop whenever the collector chose to run one.
        stalls = self.stalls.cpu + self.stalls.gc_measuring_over

        def inv(value: Any, limit: Any, *, ok: bool) -> dict[str, Any]:
            return {"value": value, "limit": limit, "ok": ok}

        unhandled = sum(self.unhandled.values())
        invariants = {
            "unhandled_exceptions": inv(unhandled, 0, ok=unhandled == 0),
            "double_bookings": inv(
                len(self.double_booked), 0, ok=not self.double_booked
            ),
            "lost_bookings": inv(len(checked["lost"]), 0, ok=not checked["lost"]),
            "stale_bookings": inv(
                len(self.activations.stale), 0, ok=not self.activations.stale
            ),
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
            "loop_stalls_over_100ms": inv(stalls, 0, ok=stalls == 0),
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
                "confirmed_in_a_browser": self.activations.in_browser,
                "lapsed": self.events["booking:lapsed"],
                "booked_again_after_lapse": self.activations.booked_again,
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
                "lost": checked["lost"][:20],
                "activations": {
                    "learnt": len(learnt),
                    "after_deadline_median_s": round(statistics.median(learnt), 1)
                    if learnt
                    else None,
                    "after_deadline_max_s": round(max(learnt), 1) if learnt else None,
                    "pending_checks_at_end": checked["pending_checks"],
                    "stale": sorted(self.activations.stale)[:20],
                },
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
                    "measured": fresh.measured,
                    "unmeasured_ends": self.unmeasured_ends,
                    "worst_lag_s": round(fresh.worst_lag, 1),
                    "worst_ratio": round(worst_ratio[0], 2),
                    "worst_ratio_lag_s": round(worst_ratio[1], 1),
                    "worst_ratio_cycle_s": round(worst_ratio[2], 1),
                    "late": late,
                    "late_by_kind": dict(late_kinds),
                    "late_cases": [
                        {"kind": k, "lag_s": round(lag, 1), "cycle_s": round(cycle, 1)}
                        for lag, cycle, k in fresh.late_cases
                    ],
                },
                "memory": {
                    "measured": "after gc.collect() and malloc_trim(0)"
                    if _glibc()
                    else "after gc.collect()",
                    "rss_day1_mb": round(first.rss_mb, 1) if first else None,
                    "rss_end_mb": round(last.rss_mb, 1) if last else None,
                    "malloc_in_use_growth_mb": round(
                        last.malloc_in_use_mb - first.malloc_in_use_mb, 2
                    )
                    if first
                    and last
                    and first.malloc_in_use_mb is not None
                    and last.malloc_in_use_mb is not None
                    else None,
                    "python_blocks_growth": last.python_blocks - first.python_blocks
                    if first and last
                    else None,
                    "daily": [
                        [
                            round(m.day, 1),
                            round(m.rss_mb, 1),
                            None
                            if m.malloc_in_use_mb is None
                            else round(m.malloc_in_use_mb, 1),
                            m.python_blocks,
                        ]
                        for m in samples
                    ],
                },
                "loop": {
                    "callbacks": self.stalls.callbacks,
                    "stalls_cpu": self.stalls.cpu,
                    "stalls_wall": self.stalls.wall,
                    "simulator_stalls_wall": self.stalls.simulator,
                    "collector": {
                        "full_passes": self.stalls.gc_pauses,
                        "longest_ms": round(self.stalls.gc_worst * 1000, 1),
                        "over_100ms": self.stalls.gc_over,
                        "daily_collect_longest_ms": round(
                            self.stalls.gc_measuring_worst * 1000, 1
                        ),
                        "daily_collect_over_100ms": self.stalls.gc_measuring_over,
                    },
                    "slowest": [
                        {
                            "wall_ms": round(t * 1000, 1),
                            "cpu_ms": round(c * 1000, 1),
                            "of_it_collector_ms": round(collector * 1000, 1),
                            "what": w,
                            "where": where,
                        }
                        for t, c, collector, w, where in self.stalls.worst
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


def _ha_part(*, days: float, seed: int) -> dict[str, Any]:
    """Run the Home Assistant part (``benchmarks/soak_ha.py``)."""
    spec = importlib.util.spec_from_file_location(
        "_soak_ha", Path(__file__).with_name("soak_ha.py")
    )
    if spec is None or spec.loader is None:  # pragma: no cover - it is there
        raise RuntimeError
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures: dict[str, Any] = module.run_ha(days=days, seed=seed)
    return figures


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
        result["ha"] = _ha_part(days=args.days, seed=args.seed)
        ok = ok and result["ha"]["ok"]
    result["ok"] = ok
    result["real_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
