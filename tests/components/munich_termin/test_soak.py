"""The soak's Home Assistant part: the coordinator for a simulated day of faults.

``benchmarks/soak.py`` runs the bare engine for a month in virtual time; Home
Assistant's harness is pytest-based, so its part runs here: the entry's
coordinator, set up in the ``hass`` fixture, driven refresh by refresh on a
step clock (as in ``test_coordinator.py``: it comes back after the delay the
engine names) through one Monday of the ``munich-weekday`` scenario, with
fault windows drawn at random from the soak's kinds, the city's limiter made
stricter for a while, reservations and activations expiring, people
confirming their bookings, and the entry reloaded at random moments (Home
Assistant restarting it: a new client and engine on the same store).

The suite runs one day. ``benchmarks/soak.py`` runs the same test for as
many days as its engine part (``MTA_SOAK_DAYS``), in a pytest process of its
own, and reads the figures it writes to ``MTA_SOAK_REPORT`` (JSON: the faults
and the invariants, memory growth included from the second day on).

Left out here: faults that wait in real time (``slow``, ``timeout``: the
simulator's waits run on the real loop) and competitors sniping (the bare
soak has them).

How it measures, where the harness would otherwise be measured instead of
the integration:

* Memory, daily from the end of day 1 (``details.memory``): the engine
  soak's sample (after ``gc.collect()`` and ``malloc_trim(0)``), taken after
  forgetting what the harness's storage mocks recorded. The ``hass``
  fixture replaces ``Store._async_write_data`` (and the load and remove)
  with autospec mocks, and a mock keeps every call with its arguments: each
  state the engine saved and each Store (one per set-up of the entry) -
  about 1.3 MB a day here, measured from the end of day 1 to day 5: +5.4 MB
  RSS kept (+6,600 dicts, +1,200 ``mock._Call``, +27 ``Store``: one per
  reload), +1.5 MB forgotten, Python's blocks and the C heap then flat.
  That was the month's growth "per reload"; a running Home Assistant keeps
  none of it. The integration's own
  growth is measured apart: its objects (of its modules' classes) at the
  end against the first day's, which must stay under what one set-up makes
  (no reload's coordinator, entities, stores or forwarder outlive it).
* The event loop runs without asyncio's debug mode, which the harness turns
  on for every test (``enable_event_loop_debug``) and Home Assistant only
  with ``--debug``: it records a stack for every callback, future and task
  made, and doubled this test's CPU time (5 days: 71 s against 32 s), which
  the stall count would charge to the integration. The other tests of the
  integration keep it.
* The collector: the harness freezes all that exists before a module's
  tests (``gc.freeze()`` in its ``garbage_collection`` fixture, some 315,000
  objects: the modules, pytest's); this test freezes also what Home
  Assistant's start-up and the simulator's made before the entry is set up,
  as the engine soak freezes its start-up, so that the collector's full
  passes cover what the month makes. Those passes are timed and reported
  (``details.collector``: the soak's daily ``gc.collect()`` is one), and
  count as stalls when over 100 ms. The harness's records above made them
  longer as the month went on (the daily pass on day 5: 34 ms over 26,000
  objects kept, 23 ms over 13,700 forgotten).
* Fresh looks are measured as the engine soak measures them (its
  ``freshness``): a watch's poll cycle around a fault's end is the longest
  of the pauses between its looks before and inside the window, the back-off
  announced for its failed looks, the first pause after its first look, and
  - when no look of it failed since the look before - the pause before that
  look (the engine's own cadence, which changes at the release windows and
  at night); the lag counts from the end of a back-off announced before the
  end. A failed set-up counts as a failed look of every watch, tried again
  a minute later. The earlier measure here had neither the pauses after the
  end nor the engine's own cadence; ``details.late`` names the watch and
  the figures of each late look.
* The client's retry jitter (the ``random`` module's) is seeded for the run
  and restored after it: unseeded, a seed's day depended on what the tests
  before it in the same worker drew (one reload in the suite under xdist,
  two with pytest's log capture, five without).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
import contextlib
from datetime import datetime
from functools import partial
import gc
import itertools
import json
import logging
import math
import os
from pathlib import Path
import random
import time
from typing import Any
from unittest.mock import Mock, patch

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import CONF_BASE_URL, DOMAIN, SUBENTRY_WATCH
from custom_components.munich_termin.coordinator import (
    MunichTerminCoordinator,
    TimedClient,
)
from mta_client.exceptions import MTAError
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer
from mta_client.watch import BookingState
from tests.benchmarks.conftest import load_benchmark

from .conftest import BERLIN, setup_entry, watch_data

DAY = 86_400.0
START = datetime(2026, 11, 23, 0, 0, tzinfo=BERLIN).timestamp()
"""Monday 23 November 2026, midnight in Munich."""
DAYS = float(os.environ.get("MTA_SOAK_DAYS", "1"))
"""Simulated days (``benchmarks/soak.py`` sets more, and ``MTA_SOAK_SEED``)."""
SKIPPED = {"timeout", "slow", "competitor"}
WATCHES = (
    (
        "01JSOAK0000000000000000001",
        watch_data(
            office_ids=[10489, 102522, 54261],
            within_days=14,
            auto_book=True,
            contact={"family_name": "Soak", "email": "soak1@soak.example.org"},
        ),
    ),
    (
        "01JSOAK0000000000000000002",
        watch_data(
            services=[{"service_id": 1063441, "count": 1}],
            office_ids=[102522, 10489],
            within_days=28,
            auto_book=True,
            contact={"family_name": "Soak", "email": "soak2@soak.example.org"},
        ),
    ),
    (
        "01JSOAK0000000000000000003",
        watch_data(office_ids=[102526, 102524], within_days=42, weekdays=[]),
    ),
)


class Problems(logging.Handler):
    """Counts what was logged with a traceback or at ERROR, keeping a few.

    Not the ``caplog`` fixture: a month of faults logs thousands of warnings,
    and keeping every record would be the memory growth measured.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.tracebacks: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            self.count += 1
            if len(self.tracebacks) < 5:
                self.tracebacks.append(message)
        elif record.levelno >= logging.ERROR and "Error fetching" not in message:
            # The coordinator's own "Error fetching" of a failed refresh is
            # how Home Assistant reports one; anything else is not.
            self.count += 1
            if len(self.errors) < 5:
                self.errors.append(message)


class StepClock:
    """Wall and monotonic time that move only when told (or slept on)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class Day:
    """The day's faults, looks and findings."""

    def __init__(self, sim: Simulator, clock: StepClock, seed: int, soak: Any) -> None:
        self.sim = sim
        self.clock = clock
        self.soak = soak
        self.rng = random.Random(f"ha-soak:{seed}")
        self.windows: list[tuple[str, float, float, Callable[[], None]]] = []
        """(kind, start, end, undo) of the open fault windows."""
        self.faults: Counter[str] = Counter()
        self.limiter_changes = 0
        self.looks: dict[str, deque[float]] = {}
        self.pending: dict[str, list[Any]] = {}
        """Per watch, the fault ends waiting for its looks (``soak.Fresh``)."""
        self.freshness = soak.FreshStats()
        self.late: list[dict[str, Any]] = []
        self.backoff: dict[str, float] = {}
        """Per watch, the longest back-off announced since the last fault end."""
        self.double_booked: set[str] = set()
        self.step = 60.0
        """Seconds the clock moved on before this refresh."""
        self.confirmed = 0

    def maybe_open(self, soak: Any) -> None:
        """Open a fault window now and then (one an hour on average)."""
        if self.rng.random() > 1 - math.exp(-self.step / 3600):
            return
        kinds = [k for k in soak.FAULT_PLAN if k not in SKIPPED]
        kind = self.rng.choices(kinds, [soak.FAULT_PLAN[k][0] for k in kinds])[0]
        low, high = soak.FAULT_PLAN[kind][1]
        end = self.clock.now + self.rng.uniform(low, high)
        sim = self.sim
        self.faults[kind] += 1
        undo: Callable[[], None]
        if kind == "maintenance":
            sim.maintenance = True

            def undo() -> None:
                sim.maintenance = False

        elif kind == "limiter":
            sim.rate_limiter.max_requests = self.rng.choice((20, 30, 40))
            self.limiter_changes += 1

            def undo() -> None:
                sim.rate_limiter.max_requests = 60

        elif kind == "expire":
            for process in list(sim.bookings.processes.values()):
                if process.status in {"reserved", "preconfirmed"}:
                    sim.bookings.expire(process.process_id)

            def undo() -> None:
                return None

        else:
            sim_kind = {"captcha_failure": "captcha_upstream"}.get(kind, kind)
            route = self.rng.choice((None, None, "available-calendar/", None))
            if sim_kind == "captcha_upstream":
                route = self.rng.choice(("captcha-verify/", "captcha-challenge/"))
            rule = sim.faults.add(
                kind=sim_kind,
                route=route,
                times=None,
                probability=self.rng.choice((1.0, 0.5)),
            )

            def undo() -> None:
                with contextlib.suppress(ValueError):
                    sim.faults.rules.remove(rule)

        self.windows.append((kind, self.clock.now, end, undo))
        # A fault that began before a watch looked again spoils that measure
        # (one whose first look came waits for the pause after it).
        for watch_id, entries in self.pending.items():
            self.pending[watch_id] = [e for e in entries if e.first is not None]

    def close_due(self) -> None:
        """End the windows whose time is up; note when no other is active."""
        now = self.clock.now
        for window in [w for w in self.windows if w[2] <= now]:
            self.windows.remove(window)
            kind, began, _end, undo = window
            undo()
            if self.windows:
                continue
            for watch_id, looks in self.looks.items():
                before = [t for t in looks if t < began]
                inside = [t for t in looks if t >= began]
                gaps = [self.backoff.get(watch_id, 0.0)]
                for run in (before, inside):
                    gaps += [b - a for a, b in itertools.pairwise(run)]
                self.pending.setdefault(watch_id, []).append(
                    self.soak.Fresh(
                        kind=kind,
                        end=now,
                        gap=max(gaps),
                        waits_until=self.freshness.waits.get(watch_id, 0.0),
                    )
                )
                self.backoff[watch_id] = 0.0

    def failed(self, watch_ids: Iterable[str], retry_after: float) -> None:
        """Looks of these watches failed now; the next comes after ``retry_after``."""
        now = self.clock.now
        waits = self.freshness.waits
        for watch_id in watch_ids:
            self.backoff[watch_id] = max(self.backoff.get(watch_id, 0.0), retry_after)
            self.freshness.failed_at[watch_id] = now
            waits[watch_id] = max(waits.get(watch_id, 0.0), now + retry_after)

    def looked(self, coordinator: MunichTerminCoordinator) -> None:
        """After a refresh: the watches' looks and the errors' back-offs.

        Measured as the engine soak measures it (``benchmarks/soak.py``,
        ``freshness``): the catalogue's and the captcha's failures count for
        every watch, and a failed early renewal of the captcha token delays
        no look.
        """
        every = [watch_id for watch_id, _ in WATCHES]
        for problem in coordinator.last_errors:
            watch_ids = problem.watch_ids or every
            if problem.what == "captcha":
                for watch_id in watch_ids:
                    self.backoff[watch_id] = max(
                        self.backoff.get(watch_id, 0.0), problem.retry_after
                    )
            else:
                self.failed(watch_ids, problem.retry_after)
        for watch_id, status in (coordinator.data or {}).items():
            if status.last_checked is None:
                continue
            at = status.last_checked.timestamp()
            looks = self.looks.setdefault(watch_id, deque(maxlen=16))
            if looks and looks[-1] >= at:
                continue
            looks.append(at)
            self._fresh_look(watch_id, at)

    def _fresh_look(self, watch_id: str, at: float) -> None:
        """A successful look at ``at``: settle the fault ends that waited for it.

        The lag runs from the end (or from the end of a back-off announced
        before it) to the first look; the poll cycle is the longest of the
        gap before the end, the first pause after that look, and - when no
        look of the watch failed since the look before - the pause before
        it, the engine's own cadence then (it changes at the release windows
        and at night).
        """
        pending, settled = self.soak.settle_fresh(
            self.looks[watch_id],
            self.pending.get(watch_id, []),
            self.freshness.failed_at.get(watch_id, -math.inf),
            at,
        )
        for entry, lag, cycle, since in settled:
            self.freshness.add(lag, cycle, entry.kind)
            if lag > 2 * cycle and len(self.late) < 10:
                self.late.append(
                    {
                        "watch": watch_id,
                        "kind": entry.kind,
                        "ended_day": round((entry.end - START) / DAY, 4),
                        "lag_s": round(lag, 1),
                        "cycle_s": round(cycle, 1),
                        "gap_s": round(entry.gap, 1),
                        "planned_s": round(entry.planned, 1),
                        "waited_until_s": round(since - entry.end, 1),
                    }
                )
        self.pending[watch_id] = pending

    def check_double(self) -> None:
        holding: Counter[str] = Counter()
        for process in self.sim.bookings.processes.values():
            if process.status in {"preconfirmed", "confirmed"} and process.email:
                holding[process.email] += 1
        self.double_booked.update(e for e, n in holding.items() if n > 1)


def _forget_harness_records() -> int:
    """Forget the calls the test harness's storage mocks recorded; how many.

    The ``hass`` fixture of pytest-homeassistant-custom-component patches
    ``Store._async_load``, ``Store._async_write_data`` and
    ``Store.async_remove`` with autospec mocks (``mock_storage``), and a mock
    keeps every call: each Store written (a new one per set-up of the entry)
    and each state written, for the whole run. A running Home Assistant
    keeps none of it; the soak forgets it before each memory sample, as it
    forgets the simulator's own records, and reports how many it forgot.
    """
    forgotten = 0
    for name in ("_async_load", "_async_write_data", "async_remove"):
        mock = getattr(getattr(Store, name), "mock", None)
        if isinstance(mock, Mock):
            forgotten += len(mock.mock_calls)
            mock.reset_mock()
    return forgotten


_GROUPS = (
    ("integration", "custom_components.munich_termin"),
    ("simulator", "mta_client.simulator"),
    ("library", "mta_client"),
    ("home_assistant", "homeassistant"),
)


def _object_types() -> Counter[str]:
    """The collector's (unfrozen) objects by type."""
    types: Counter[str] = Counter()
    for item in gc.get_objects():
        kind = type(item)
        types[f"{kind.__module__}.{kind.__qualname__}"] += 1
    return types


def _integration_objects(types: Counter[str]) -> int:
    prefix = _GROUPS[0][1]
    return sum(count for name, count in types.items() if name.startswith(prefix))


class Memory:
    """Daily memory samples, and whose objects they hold.

    Each sample is the engine soak's (after ``gc.collect()`` and
    ``malloc_trim(0)``: the RSS, the C heap's bytes in use, Python's
    blocks), with the harness's records forgotten first, and the live
    objects the collector tracks counted by whose they are (the
    integration's, the library's, the simulator's, Home Assistant's). The
    types that grew most from the first sample to the last are reported.
    """

    def __init__(self, soak: Any) -> None:
        self.soak = soak
        self.samples: list[Any] = []
        self.rows: list[dict[str, Any]] = []
        self.frozen = 0
        self.full_pass_ms: float | None = None
        self.per_setup = 0
        """The integration's objects of one set-up of the entry."""
        self._first: Counter[str] | None = None
        self._grown: list[tuple[str, int]] = []

    def freeze(self) -> None:
        """Freeze what exists now (Home Assistant started, the simulator)."""
        began = time.thread_time()
        gc.collect()
        self.full_pass_ms = round((time.thread_time() - began) * 1000, 1)
        gc.freeze()
        self.frozen = gc.get_freeze_count()

    @staticmethod
    def unfreeze() -> None:
        gc.unfreeze()

    def set_up(self) -> None:
        """The entry is set up: count the integration's objects of one set-up."""
        self.per_setup = _integration_objects(_object_types())

    def integration_growth(self) -> int | None:
        """The integration's objects at the last sample against the first."""
        if len(self.rows) < 2:
            return None
        return int(self.rows[-1]["integration"] - self.rows[0]["integration"])

    def sample(self, day: float) -> None:
        forgotten = _forget_harness_records()
        sample = self.soak.memory_sample(day)
        types = _object_types()
        groups: Counter[str] = Counter()
        for name, count in types.items():
            for group, prefix in _GROUPS:
                if name.startswith(prefix):
                    groups[group] += count
                    break
        if self._first is None:
            self._first = types
        else:
            first = self._first
            self._grown = sorted(
                ((name, count - first[name]) for name, count in types.items()),
                key=lambda item: -item[1],
            )[:12]
        self.samples.append(sample)
        self.rows.append(
            {
                "day": round(day, 2),
                "rss_mb": round(sample.rss_mb, 1),
                "malloc_in_use_mb": None
                if sample.malloc_in_use_mb is None
                else round(sample.malloc_in_use_mb, 1),
                "python_blocks": sample.python_blocks,
                "objects": sum(types.values()),
                **{group: groups[group] for group, _ in _GROUPS},
                "harness_calls_forgotten": forgotten,
            }
        )

    def growth(self) -> float | None:
        """RSS growth from the first sample (the end of day 1) to the last."""
        if len(self.samples) < 2:
            return None
        return float(self.samples[-1].rss_mb - self.samples[0].rss_mb)

    def report(self) -> dict[str, Any]:
        return {
            "measured": "after forgetting the harness's records, gc.collect() "
            "and malloc_trim(0)",
            "daily": self.rows,
            "grown_types": self._grown,
        }


async def _step(
    hass: HomeAssistant, coordinator: MunichTerminCoordinator, day: Day, soak: Any
) -> None:
    """Come back when the engine said; look; let the people confirm."""
    clock, sim = day.clock, day.sim
    with patch.object(coordinator, "_schedule_refresh"):
        day.step = max(coordinator.engine_delay or 1.0, 1.0)
        clock.now += day.step
        # Opened first: a fault that goes on in a new window has not ended.
        day.maybe_open(soak)
        day.close_due()
        await coordinator.async_refresh()
        await hass.async_block_till_done()
    day.looked(coordinator)
    day.check_double()
    watcher = coordinator.watcher
    for watch_id, _ in WATCHES[:2]:
        status = watcher.status(watch_id).booking
        if (
            status.state is BookingState.BOOKED
            and status.process_id is not None
            and day.rng.random() < 0.2
        ):
            link = sim.outbox.activation_link(status.process_id)
            with contextlib.suppress(MTAError, KeyError):
                await watcher.confirm(link)
                day.confirmed += 1


def _entry(base_url: str) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        data={CONF_BASE_URL: base_url},
        subentries_data=[
            ConfigSubentryDataWithId(
                data=data,
                subentry_id=subentry_id,
                subentry_type=SUBENTRY_WATCH,
                title=f"Soak {n}",
                unique_id=None,
            )
            for n, (subentry_id, data) in enumerate(WATCHES)
        ],
    )


@pytest.mark.parametrize("seed", [int(os.environ.get("MTA_SOAK_SEED", "1"))])
async def test_a_day_of_faults_through_the_coordinator(  # noqa: PLR0915 - one day, step by step
    hass: HomeAssistant, seed: int
) -> None:
    """Every invariant of the soak holds for the coordinator's day."""
    soak = load_benchmark("soak")
    problems = Problems()
    root = logging.getLogger()
    root.addHandler(problems)
    level = root.level
    root.setLevel(min(level, logging.WARNING) if level else logging.WARNING)
    clock = StepClock(START)
    sim = Simulator(
        clock=clock,
        scenario="munich-weekday",
        seed=seed,
        captcha=CaptchaConfig(cost=5),
        rate_limit=60,
        visibility="delayed",
    )
    limited: list[float] = []
    original_hit = sim.rate_limiter.hit

    def hit(ip: str) -> dict[str, str] | None:
        headers = original_hit(ip)
        if headers is None:
            limited.append(clock.now)
        return headers

    sim.rate_limiter.hit = hit  # type: ignore[method-assign]
    day = Day(sim, clock, seed, soak)
    # The client's retry jitter draws from the random module: seeded, so that
    # a seed's run does not depend on what other tests drew before it.
    jitter = random.getstate()
    random.seed(f"ha-soak-jitter:{seed}")
    every = [watch_id for watch_id, _ in WATCHES]
    stalls = soak.StallMonitor()
    reloads = 0
    retries = 0
    memory = Memory(soak)
    debug = hass.loop.get_debug()
    async with SimulatorServer(sim) as running:
        entry = _entry(running.base_url)
        with patch(
            "custom_components.munich_termin.TimedClient",
            partial(TimedClient, clock=clock),
        ):
            # What exists now lives as long as Home Assistant: frozen, as
            # the engine soak does after its start-up (see the docstring).
            memory.freeze()
            hass.loop.set_debug(False)
            await setup_entry(hass, entry)
            memory.set_up()
            stalls.install()

            async def reload() -> None:
                await hass.config_entries.async_reload(entry.entry_id)
                await hass.async_block_till_done()
                if entry.state is ConfigEntryState.LOADED:
                    day.looked(entry.runtime_data.coordinator)
                else:
                    # Home Assistant sets it up again after a while (below).
                    day.failed(every, 60.0)

            try:
                next_reload = clock.now + day.rng.expovariate(1 / (4 * 3600))
                while clock.now - START < DAYS * DAY:
                    if (
                        DAYS > 1
                        and clock.now - START >= (len(memory.samples) + 1) * DAY
                    ):
                        stalls.excused = True  # the soak's own gc.collect()
                        soak.trim_simulator(sim, clock.now)
                        memory.sample((clock.now - START) / DAY)
                    if entry.state is not ConfigEntryState.LOADED:
                        # Set up again after a failed reload (during a fault),
                        # as Home Assistant retries it after a while.
                        clock.now += 60
                        day.close_due()
                        await reload()
                        retries += 1
                        continue
                    await _step(hass, entry.runtime_data.coordinator, day, soak)
                    if clock.now >= next_reload:
                        reloads += 1
                        await reload()
                        next_reload = clock.now + day.rng.expovariate(1 / (4 * 3600))
            finally:
                stalls.uninstall()
                running_debug = hass.loop.get_debug()
                hass.loop.set_debug(debug)
            if DAYS > 1:
                stalls.excused = True
                soak.trim_simulator(sim, clock.now)
                memory.sample((clock.now - START) / DAY)
            watcher = entry.runtime_data.coordinator.watcher
            records = {
                watch_id: watcher.booker.record(watch_id) for watch_id, _ in WATCHES
            }
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            memory.unfreeze()
            random.setstate(jitter)

    # Unhandled exceptions: nothing logged with a traceback, nothing at ERROR
    # but the coordinator's own "Error fetching" of a failed refresh.
    root.removeHandler(problems)
    root.setLevel(level)
    tracebacks, errors = problems.tracebacks, problems.errors
    # Lost bookings: every appointment the city holds for us is known, and
    # every one the store calls booked or confirmed the city holds (unless
    # its activation lapsed and the engine has not asked yet).
    known = {r.process_id for r in records.values() if r.process_id is not None}
    lost = [
        f"unknown:{process.process_id}"
        for process in sim.bookings.processes.values()
        if process.status in {"preconfirmed", "confirmed"}
        and process.email
        and process.process_id not in known
    ]
    for watch_id, record in records.items():
        if record.state in {BookingState.BOOKED, BookingState.CONFIRMED}:
            held = sim.bookings.processes.get(record.process_id or 0)
            lapsed = (
                record.state is BookingState.BOOKED
                and record.activation_deadline is not None
                and record.activation_deadline.timestamp() <= clock.now
            )
            # The city forgets (archives) an appointment the day after its day.
            past = record.start is not None and record.start.timestamp() < clock.now
            if not (lapsed or past) and (
                held is None or held.status not in {"preconfirmed", "confirmed"}
            ):
                lost.append(f"missing:{watch_id}")
    fresh = day.freshness
    late = sum(fresh.late_kinds.values())
    growth = memory.growth()
    _report(
        {
            "days": DAYS,
            "seed": seed,
            "faults": dict(day.faults),
            "reloads": reloads,
            "setup_retries": retries,
            "confirmed": day.confirmed,
            "invariants": {
                "unhandled_exceptions": problems.count,
                "double_bookings": len(day.double_booked),
                "lost_bookings": len(lost),
                "rate_limited": len(limited),
                "limiter_changes": day.limiter_changes,
                "fresh_looks": fresh.measured,
                "late_fresh_looks": late,
                "loop_stalls": stalls.cpu,
                "memory_growth_mb": None if growth is None else round(growth, 2),
                "integration_objects_growth": memory.integration_growth(),
                "integration_objects_per_setup": memory.per_setup,
            },
            "details": {
                "tracebacks": tracebacks,
                "errors": errors,
                "lost": lost[:10],
                "late": day.late,
                "freshness": {
                    "worst_lag_s": round(fresh.worst_lag, 1),
                    "worst_ratio": [round(v, 2) for v in fresh.worst_ratio[:3]]
                    + [fresh.worst_ratio[3]],
                },
                "stalls": [list(w) for w in stalls.worst[:5]],
                "collector": {
                    "asyncio_debug": running_debug,
                    "frozen_objects": memory.frozen,
                    "full_pass_before_freezing_ms": memory.full_pass_ms,
                    "full_passes": stalls.gc_pauses,
                    "worst_full_pass_ms": round(stalls.gc_worst * 1000, 1),
                    "full_passes_over_limit": stalls.gc_over,
                    "worst_daily_collect_ms": round(
                        stalls.gc_measuring_worst * 1000, 1
                    ),
                },
                "memory": memory.report(),
            },
        }
    )

    # The day was rough (a shorter run, as benchmarks/soak.py may ask for,
    # need not be).
    if DAYS >= 1:
        assert sum(day.faults.values()) >= 8, day.faults
        assert reloads >= 2
        assert day.confirmed >= 1
        assert any(r.process_id for r in records.values())
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not tracebacks, tracebacks
    assert not errors
    # Double and lost bookings.
    assert not day.double_booked
    assert not lost, lost
    # 429s: at most one per limiter change.
    assert len(limited) <= day.limiter_changes, limited
    # Fresh within two poll cycles after each fault ends (some did end).
    assert fresh.measured or DAYS < 1
    assert not late, day.late
    # No event-loop stalls over 100 ms of CPU time.
    assert stalls.cpu == 0, stalls.worst
    # Memory: less than 10 MB more at the end than after the first day.
    assert growth is None or growth < 10, memory.report()
    # Nothing of the integration's outlives its set-up: at the end, fewer
    # of its objects than one set-up makes beyond those of the first day.
    kept = memory.integration_growth()
    assert kept is None or kept < memory.per_setup, memory.report()


def _report(figures: dict[str, Any]) -> None:
    """Write the figures where ``benchmarks/soak.py`` asked for them."""
    target = os.environ.get("MTA_SOAK_REPORT")
    if target:
        Path(target).write_text(json.dumps(figures), encoding="utf-8")


async def test_the_soak_forgets_what_the_harness_records(hass: HomeAssistant) -> None:
    """The harness's storage mock keeps every write; the soak forgets them."""
    _forget_harness_records()
    store: Store[dict[str, int]] = Store(hass, 1, f"{DOMAIN}.harness_check")
    await store.async_save({"state": 1})
    await store.async_save({"state": 2})
    write = Store._async_write_data.mock  # type: ignore[attr-defined]
    kept = [c.args for c in write.call_args_list if c.args[0] is store]
    assert [args[-1]["data"] for args in kept] == [{"state": 1}, {"state": 2}]
    assert _forget_harness_records() >= len(kept)
    assert not write.call_args_list
    # Still the harness's storage: the next write is kept.
    await store.async_save({"state": 3})
    assert len(write.call_args_list) == 1
