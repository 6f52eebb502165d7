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
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
import contextlib
from datetime import datetime
from functools import partial
import itertools
import json
import logging
import math
import os
from pathlib import Path
import random
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
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

    def __init__(self, sim: Simulator, clock: StepClock, seed: int) -> None:
        self.sim = sim
        self.clock = clock
        self.rng = random.Random(f"ha-soak:{seed}")
        self.windows: list[tuple[str, float, Callable[[], None]]] = []
        self.faults: Counter[str] = Counter()
        self.limiter_changes = 0
        self.looks: dict[str, deque[float]] = {}
        self.pending: list[tuple[str, float, float, str]] = []
        self.freshness: list[tuple[float, float, str]] = []
        self.backoff = 0.0
        self.double_booked: set[str] = set()
        self.step = 60.0
        self.confirmed = 0
        """Seconds the clock moved on before this refresh."""

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

        self.windows.append((kind, end, undo))
        # A fault that began before the watches looked again spoils the measure.
        self.pending.clear()

    def close_due(self) -> None:
        """End the windows whose time is up; note when no other is active."""
        now = self.clock.now
        for window in [w for w in self.windows if w[1] <= now]:
            self.windows.remove(window)
            window[2]()
            if not self.windows:
                for watch_id, looks in self.looks.items():
                    run = list(looks)
                    gaps = [b - a for a, b in itertools.pairwise(run)]
                    # At least a minute: the engine plans looks per minute.
                    gap = max([60.0, self.backoff, *gaps])
                    self.pending.append((watch_id, now, gap, window[0]))
                self.backoff = 0.0

    def looked(self, coordinator: MunichTerminCoordinator) -> None:
        """After a refresh: the watches' looks and the errors' back-offs."""
        for problem in coordinator.last_errors:
            self.backoff = max(self.backoff, problem.retry_after)
        for watch_id, status in (coordinator.data or {}).items():
            if status.last_checked is None:
                continue
            at = status.last_checked.timestamp()
            looks = self.looks.setdefault(watch_id, deque(maxlen=16))
            if looks and looks[-1] >= at:
                continue
            looks.append(at)
            for entry in [p for p in self.pending if p[0] == watch_id]:
                if at >= entry[1]:
                    self.pending.remove(entry)
                    self.freshness.append((at - entry[1], entry[2], entry[3]))

    def check_double(self) -> None:
        holding: Counter[str] = Counter()
        for process in self.sim.bookings.processes.values():
            if process.status in {"preconfirmed", "confirmed"} and process.email:
                holding[process.email] += 1
        self.double_booked.update(e for e, n in holding.items() if n > 1)


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
    start = datetime(2026, 11, 23, 0, 0, tzinfo=BERLIN).timestamp()
    clock = StepClock(start)
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
    day = Day(sim, clock, seed)
    stalls = soak.StallMonitor()
    reloads = 0
    retries = 0
    memory: list[Any] = []
    async with SimulatorServer(sim) as running:
        entry = _entry(running.base_url)
        with patch(
            "custom_components.munich_termin.TimedClient",
            partial(TimedClient, clock=clock),
        ):
            await setup_entry(hass, entry)
            stalls.install()
            try:
                next_reload = clock.now + day.rng.expovariate(1 / (4 * 3600))
                while clock.now - start < DAYS * DAY:
                    if DAYS > 1 and clock.now - start >= (len(memory) + 1) * DAY:
                        stalls.excused = True  # the soak's own gc.collect()
                        memory.append(soak.memory_sample((clock.now - start) / DAY))
                        soak.trim_simulator(sim, clock.now)
                    if entry.state is not ConfigEntryState.LOADED:
                        # Set up again after a failed reload (during a fault),
                        # as Home Assistant retries it after a while.
                        clock.now += 60
                        day.close_due()
                        await hass.config_entries.async_reload(entry.entry_id)
                        await hass.async_block_till_done()
                        retries += 1
                        continue
                    await _step(hass, entry.runtime_data.coordinator, day, soak)
                    if clock.now >= next_reload:
                        reloads += 1
                        await hass.config_entries.async_reload(entry.entry_id)
                        await hass.async_block_till_done()
                        next_reload = clock.now + day.rng.expovariate(1 / (4 * 3600))
            finally:
                stalls.uninstall()
            if DAYS > 1:
                memory.append(soak.memory_sample((clock.now - start) / DAY))
            watcher = entry.runtime_data.coordinator.watcher
            records = {
                watch_id: watcher.booker.record(watch_id) for watch_id, _ in WATCHES
            }
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()

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
    late = [(lag, gap, kind) for lag, gap, kind in day.freshness if lag > 2 * gap]
    growth = memory[-1].rss_mb - memory[0].rss_mb if len(memory) > 1 else None
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
                "fresh_looks": len(day.freshness),
                "late_fresh_looks": len(late),
                "loop_stalls": stalls.cpu,
                "memory_growth_mb": None if growth is None else round(growth, 2),
            },
            "details": {
                "tracebacks": tracebacks,
                "errors": errors,
                "lost": lost[:10],
                "late": late[:10],
                "stalls": [list(w) for w in stalls.worst[:5]],
                "memory": [
                    {"day": m.day, "rss_mb": round(m.rss_mb, 1)} for m in memory
                ],
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
    assert day.freshness or DAYS < 1
    assert not late, late
    # No event-loop stalls over 100 ms of CPU time.
    assert stalls.cpu == 0, stalls.worst
    # Memory: less than 10 MB more at the end than after the first day.
    assert growth is None or growth < 10, memory


def _report(figures: dict[str, Any]) -> None:
    """Write the figures where ``benchmarks/soak.py`` asked for them."""
    target = os.environ.get("MTA_SOAK_REPORT")
    if target:
        Path(target).write_text(json.dumps(figures), encoding="utf-8")
