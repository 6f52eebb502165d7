"""Shared set-up of the watcher tests: simulator, client, virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from mta_client import (
    ContactDetails,
    LoopClock,
    MTAClient,
    RequestBudget,
    ServiceRequest,
)
from mta_client.simulator import Simulator, SimulatorServer, run_virtual
from mta_client.store import StateStore
from mta_client.watch import BookingEvent, SlotEvent, SlotEventKind, Watch, WatchEvent
from mta_client.watcher import PollPolicy, Watcher

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 23 November 2026, 06:00 in Munich.
MONDAY_6AM = datetime(2026, 11, 23, 6, 0, tzinfo=BERLIN).timestamp()
WOHNSITZ = ServiceRequest(service_id=1063475)
BUERGERBUEROS = [10489, 102522, 54261, 102526, 102523, 102524]
CONTACT = ContactDetails(
    family_name="Huber", email="anna.huber@example.org", telephone="+4915112345678"
)


@dataclass
class Env:
    sim: Simulator
    client: MTAClient
    clock: LoopClock
    events: list[WatchEvent] = field(default_factory=list)

    def watcher(
        self, store: StateStore | None = None, policy: PollPolicy | None = None
    ) -> Watcher:
        return Watcher(
            self.client, store=store, policy=policy, on_event=self.events.append
        )

    def calendar_requests(self) -> int:
        return self.sim.stats.requests_by_route["available-calendar/"]

    def new(self, watch_id: str | None = None) -> list[SlotEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, SlotEvent)
            and e.kind is SlotEventKind.NEW
            and watch_id in (None, e.watch_id)
        ]

    def gone(self) -> list[SlotEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, SlotEvent) and e.kind is SlotEventKind.GONE
        ]

    def bookings(self) -> list[BookingEvent]:
        return [e for e in self.events if isinstance(e, BookingEvent)]

    def at(self, day: date, hour: int, minute: int = 0) -> float:
        return datetime.combine(day, time(hour, minute), BERLIN).timestamp()


@contextlib.asynccontextmanager
async def environment(
    scenario: str = "quiet", **sim_options: Any
) -> AsyncIterator[Env]:
    clock = LoopClock(epoch=0.0)
    sim = Simulator(clock=clock, scenario=scenario, seed=7, **sim_options)
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        client = MTAClient(
            session=session, base_url=server.base_url, budget=RequestBudget(clock=clock)
        )
        yield Env(sim=sim, client=client, clock=clock)


def virtual(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test on the simulator's virtual-time loop."""

    def run() -> None:
        run_virtual(test(), start=MONDAY_6AM)

    run.__name__ = test.__name__
    return run


def watch(**values: Any) -> Watch:
    values.setdefault("id", "w")
    values.setdefault("services", [WOHNSITZ])
    values.setdefault("office_ids", [10489])
    return Watch(**values)


TUESDAY = date(2026, 11, 24)
WEDNESDAY = date(2026, 11, 25)
THURSDAY = date(2026, 11, 26)
