"""After booking, over HTTP: the engine learns whether the activation link was used.

The simulator answers ``GET appointment/`` as the city does: ``confirmed``
once the link was used (here by a browser the engine never sees), 404
``appointmentNotFound`` once the city's cron dropped an appointment whose
activation lapsed, or 406 ``authKeyMismatch`` while a dropped one is only
dereferenced.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest

from mta_client import (
    ContactDetails,
    MTAAppointmentNotFoundError,
    MTAClient,
    ServiceRequest,
)
from mta_client.booking import ACTIVATION_LAPSED, StatusChecks
from mta_client.store import MemoryStore, parse_state
from mta_client.watch import BookingEvent, BookingState, Watch, WatchEvent
from mta_client.watcher import Watcher

from .conftest import FAST_RETRY, client_as

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mta_client.simulator import Simulator, SimulatorServer

    from .conftest import SimClock

RUPPERTSTRASSE = 10489
WOHNSITZ = 1063475
CONTACT = ContactDetails(family_name="Mustermann", email="erika@example.org")
AFTER_DEADLINE = (30 + 1) * 60 + StatusChecks().margin


@contextlib.asynccontextmanager
async def booked_watcher(
    server: SimulatorServer, sim_clock: SimClock, store: MemoryStore
) -> AsyncIterator[tuple[Watcher, list[WatchEvent]]]:
    """A watcher (on the test's clock) whose watch has booked a slot."""
    events: list[WatchEvent] = []
    async with MTAClient(
        base_url=server.base_url, retry=FAST_RETRY, request_timeout=5, clock=sim_clock
    ) as client:
        watcher = Watcher(client, store=store, on_event=events.append)
        watcher.add(
            Watch(
                id="pass",
                services=[ServiceRequest(service_id=WOHNSITZ)],
                office_ids=[RUPPERTSTRASSE],
                contact=CONTACT,
            )
        )
        event = await watcher.book("pass")
        assert event.state is BookingState.BOOKED
        yield watcher, events
        await watcher.aclose()


def bookings(events: list[WatchEvent]) -> list[BookingEvent]:
    return [e for e in events if isinstance(e, BookingEvent)]


async def test_a_lapsed_activation_is_learnt_from_the_city(
    server: SimulatorServer, sim: Simulator, sim_clock: SimClock
) -> None:
    store = MemoryStore()
    async with booked_watcher(server, sim_clock, store) as (watcher, events):
        await watcher.poll()
        assert sim.stats.requests_by_route["appointment/"] == 0  # not yet due

        sim_clock.advance(AFTER_DEADLINE)
        await watcher.poll()
        assert sim.stats.requests_by_route["appointment/"] == 1
        booked, lapsed = bookings(events)
        assert lapsed.state is BookingState.LAPSED
        assert lapsed.reason == ACTIVATION_LAPSED
        assert lapsed.process_id == booked.process_id
        record = parse_state(await store.load()).watches["pass"].booking
        assert (record.state, record.process_id) == (
            BookingState.LAPSED,
            booked.process_id,
        )
        # One question was enough: polling on asks nothing more.
        await watcher.poll()
        assert sim.stats.requests_by_route["appointment/"] == 1


async def test_a_dereferenced_appointment_is_lapsed_too(
    server: SimulatorServer, sim: Simulator, sim_clock: SimClock
) -> None:
    sim.bookings.dereference = 1.0
    async with booked_watcher(server, sim_clock, MemoryStore()) as (watcher, events):
        sim_clock.advance(AFTER_DEADLINE)
        await watcher.poll()
        assert [e.state for e in bookings(events)] == [
            BookingState.BOOKED,
            BookingState.LAPSED,
        ]
        assert sim.stats.expired_activations == 1


async def test_a_link_used_in_a_browser_is_learnt_from_the_city(
    server: SimulatorServer, sim: Simulator, sim_clock: SimClock
) -> None:
    async with booked_watcher(server, sim_clock, MemoryStore()) as (watcher, events):
        credentials = watcher.credentials("pass")
        assert credentials is not None
        # The person's browser, from another address than the engine's.
        async with client_as(server, "203.0.113.7") as browser:
            await browser.confirm_appointment(credentials=credentials)

        sim_clock.advance(AFTER_DEADLINE)
        await watcher.poll()
        booked, confirmed = bookings(events)
        assert confirmed.state is BookingState.CONFIRMED
        assert confirmed.process_id == booked.process_id
        assert watcher.booking_state("pass") is BookingState.CONFIRMED
        assert sim.stats.requests_by_route["appointment/"] == 1


async def test_an_appointment_is_forgotten_the_day_after_its_day(
    server: SimulatorServer, sim: Simulator, sim_clock: SimClock
) -> None:
    async with booked_watcher(server, sim_clock, MemoryStore()) as (watcher, _):
        credentials = watcher.credentials("pass")
        assert credentials is not None
        await watcher.client.confirm_appointment(credentials=credentials)
        process = sim.bookings.processes[credentials.process_id]
        # Still there on the day after the appointment ...
        sim_clock.advance(process.timestamp - sim_clock.time() + 86_400)
        assert (await watcher.client.get_appointment(credentials=credentials)).status
        # ... and archived (forgotten) on the day after that.
        sim_clock.advance(86_400)
        with pytest.raises(MTAAppointmentNotFoundError):
            await watcher.client.get_appointment(credentials=credentials)
        assert credentials.process_id not in sim.bookings.processes
