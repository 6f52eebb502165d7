"""The one booking flow (book_slot), and booking on request through the watcher."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
import tempfile
from typing import Any, cast

import aiohttp
import pytest

from mta_client import (
    BookingConflictError,
    BookingProgress,
    BookingStep,
    MTAClient,
    MTAServerError,
    MTASlotUnavailableError,
    MTAValidationError,
    NoFittingSlotError,
    ProcessCredentials,
    RequestBudget,
    book_slot,
)
from mta_client.models import Scope
from mta_client.simulator import SimulatorServer
from mta_client.store import JSONFileStore, MemoryStore, StoreError
from mta_client.watch import BookingState

from .env import CONTACT, TUESDAY, Env, environment, virtual, watch


async def free_slot(env: Env, hour: int = 9) -> Any:
    env.sim.release_slot(10489, env.at(TUESDAY, hour), minutes=15)
    calendar = await env.client.get_available_calendar(
        office_ids=[10489], services=[1063475]
    )
    return next(s for s in calendar.slots if s.start.hour == hour - 1)  # UTC


# --- book_slot ----------------------------------------------------------------------


@virtual
async def test_book_slot_tells_each_step_and_takes_the_deadline_from_the_scope() -> (
    None
):
    async with environment() as env:
        slot = await free_slot(env)
        steps: list[BookingStep] = []
        booked = await book_slot(
            env.client,
            office_id=10489,
            services=[1063475],
            slot=slot,
            contact=CONTACT,
            on_step=lambda p: steps.append(p.step),
        )
        assert steps == [
            BookingStep.RESERVING,
            BookingStep.RESERVED,
            BookingStep.PRECONFIRMING,
            BookingStep.BOOKED,
        ]
        minutes = env.sim.catalogue.offices[10489].scope.activation_minutes
        assert booked.activation_minutes == minutes
        assert booked.activation_deadline - booked.preconfirmed_at == timedelta(
            minutes=minutes
        )
        assert booked.preconfirmed_at.timestamp() == pytest.approx(env.clock.time())
        assert booked.slot == slot
        assert booked.credentials.auth_key not in repr(booked)
        assert CONTACT.email is not None
        assert env.sim.stats.preconfirmed_by_email[CONTACT.email] == 1


@virtual
async def test_book_slot_defaults_to_thirty_minutes_without_a_scope() -> None:
    async with environment() as env:
        slot = await free_slot(env)
        original = env.client.preconfirm_appointment

        async def without_scope(**kwargs: Any) -> Any:
            done = await original(**kwargs)
            return done.model_copy(update={"scope": None})

        async def reserve_without_scope(**kwargs: Any) -> Any:
            reserved = await reserve(**kwargs)
            return reserved.model_copy(update={"scope": None})

        reserve = env.client.reserve_appointment
        env.client.preconfirm_appointment = without_scope  # type: ignore[method-assign]
        env.client.reserve_appointment = reserve_without_scope  # type: ignore[method-assign]
        booked = await book_slot(
            env.client, office_id=10489, services=[1063475], slot=slot, contact=CONTACT
        )
        assert booked.activation_minutes == 30
        # A scope from the catalogue is used when the answers carry none.
        slot = await free_slot(env, 11)
        booked = await book_slot(
            env.client,
            office_id=10489,
            services=[1063475],
            slot=slot,
            contact=CONTACT,
            scope=Scope(id=1, activation_duration=45),
        )
        assert booked.activation_minutes == 45


@virtual
async def test_book_slot_cancels_and_says_so_truthfully() -> None:
    async with environment() as env:
        heard: list[BookingProgress] = []
        slot = await free_slot(env)
        env.sim.faults.add(kind="server_error", route="update-appointment/", times=1)
        with pytest.raises(MTAServerError):
            await book_slot(
                env.client,
                office_id=10489,
                services=[1063475],
                slot=slot,
                contact=CONTACT,
                on_step=heard.append,
            )
        assert heard[-1].step is BookingStep.RELEASED
        assert isinstance(heard[-1].error, MTAServerError)
        assert env.sim.stats.cancellations == 1

        heard.clear()
        env.sim.faults.add(kind="server_error", route="update-appointment/", times=1)
        env.sim.faults.add(kind="server_error", route="cancel-appointment/", times=1)
        slot = await free_slot(env, 11)
        with pytest.raises(MTAServerError):
            await book_slot(
                env.client,
                office_id=10489,
                services=[1063475],
                slot=slot,
                contact=CONTACT,
                on_step=heard.append,
            )
        # heard was cleared and refilled; mypy still holds the narrowing from above.
        assert cast("BookingStep", heard[-1].step) is BookingStep.RELEASE_FAILED
        assert isinstance(heard[-1].cancel_error, MTAServerError)
        assert env.sim.stats.cancellations == 1  # the second stays reserved


# --- the booker writes before it sends ------------------------------------------------


class Journal:
    """One log of the saves of a store and the requests of a session."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def trace(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_start(_: Any, __: Any, params: Any) -> None:
            self.entries.append(("request", params.url.path.rsplit("/", 2)[-2]))

        config.on_request_start.append(on_start)
        return config


class RecordingStore(MemoryStore):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def save(self, state: dict[str, Any]) -> None:
        await super().save(state)
        booking = state["watches"].get("w", {}).get("booking", {})
        self.journal.entries.append(("save", booking))


@virtual
async def test_each_booking_step_is_saved_before_its_request() -> None:
    async with environment() as env:
        journal = Journal()
        async with (
            SimulatorServer(env.sim) as server,
            aiohttp.ClientSession(trace_configs=[journal.trace()]) as session,
        ):
            client = MTAClient(
                session=session,
                base_url=server.base_url,
                budget=RequestBudget(clock=env.clock),
            )
            env.client = client
            watcher = env.watcher(RecordingStore(journal))
            watcher.add(watch(auto_book=True, contact=CONTACT))
            env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
            await watcher.check()

        entries = journal.entries
        expected = {
            "reserve-appointment": "reserving",
            "update-appointment": "reserved",
            "preconfirm-appointment": "preconfirming",
        }
        for route, state in expected.items():
            at = entries.index(("request", route))
            last_save = next(e for e in reversed(entries[:at]) if e[0] == "save")
            assert last_save[1]["state"] == state, route
        # The credentials are on disk before the person's data is sent.
        at = entries.index(("request", "update-appointment"))
        saved = next(e for e in reversed(entries[:at]) if e[0] == "save")[1]
        assert saved["process_id"]
        assert saved["auth_key"]
        assert entries[-1][0] == "save"
        assert entries[-1][1]["state"] == "booked"


# --- booking on request ---------------------------------------------------------------


@virtual
async def test_book_confirm_cancel_on_request() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(contact=CONTACT))  # no auto-booking
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)

        # No slot known yet: the watch is looked at first.
        booked = await watcher.book("w")
        assert booked.state is BookingState.BOOKED
        assert booked.start is not None
        assert booked.start.timestamp() == env.at(TUESDAY, 9)
        status = watcher.status("w").booking
        assert (status.state, status.process_id) == (
            BookingState.BOOKED,
            booked.process_id,
        )
        with pytest.raises(BookingConflictError, match="at most one"):
            await watcher.book("w")

        assert booked.process_id is not None
        link = env.sim.outbox.activation_link(booked.process_id)
        confirmed = await watcher.confirm(link)
        assert confirmed.state is BookingState.CONFIRMED
        process = env.sim.bookings.processes[booked.process_id]
        assert process.status == "confirmed"
        assert (await watcher.confirm(link)).state is BookingState.CONFIRMED

        cancelled = await watcher.cancel("w")
        assert cancelled.state is BookingState.CANCELLED
        assert process.status == "deleted"
        assert watcher.credentials("w") is None  # the city rotated the key
        with pytest.raises(BookingConflictError, match="nothing to cancel"):
            await watcher.cancel("w")

        # Cancelled is the person's choice: asking books again, given slot.
        (free,) = [s for s in watcher.status("w").slots if s.start.hour == 9]
        again = await watcher.book("w", slot=free)
        assert again.state is BookingState.BOOKED
        assert [e.state for e in env.bookings()] == [
            BookingState.BOOKED,
            BookingState.CONFIRMED,
            BookingState.CONFIRMED,
            BookingState.CANCELLED,
            BookingState.BOOKED,
        ]


@virtual
async def test_book_on_request_errors() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(contact=CONTACT))
        watcher.add(watch(id="nobody", office_ids=[102522]))
        with pytest.raises(KeyError):
            await watcher.book("unknown")
        with pytest.raises(NoFittingSlotError):
            await watcher.book("w")
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()
        (slot,) = watcher.status("w").slots
        env.sim.take_slot(10489, env.at(TUESDAY, 9), minutes=15)
        with pytest.raises(MTASlotUnavailableError):
            await watcher.book("w", slot=slot)
        elsewhere = slot.model_copy(update={"office_id": 102522})
        with pytest.raises(MTAValidationError, match="office of the watch"):
            await watcher.book("w", slot=elsewhere)
        assert watcher.booking_state("w") is BookingState.IDLE
        env.sim.release_slot(102522, env.at(TUESDAY, 9), minutes=15)
        with pytest.raises(MTAValidationError, match="contact"):
            await watcher.book("nobody")
        stranger = ProcessCredentials(process_id=999999, auth_key="f" * 64)
        with pytest.raises(KeyError):
            await watcher.confirm(stranger)
        assert env.sim.stats.reservations == 0


# --- the stored state -----------------------------------------------------------------


@virtual
async def test_a_version_1_state_is_migrated_and_saved_as_version_2() -> None:
    async with environment() as env:
        start = int(env.at(TUESDAY, 9))
        v1 = {
            "version": 1,
            "watches": {
                "w": {
                    "reported": {f"10489@{start}": 1_795_000_000.0},
                    "booking": {
                        "state": "booked",
                        "office_id": 10489,
                        "start": start,
                        "process_id": 4711,
                        "auth_key": "ab" * 32,
                        "activation_deadline": start - 3600,
                    },
                }
            },
        }
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "state.json"
            path.write_text(json.dumps(v1), encoding="utf-8")
            watcher = env.watcher(JSONFileStore(path))
            watcher.add(watch(auto_book=True, contact=CONTACT))
            await watcher.load()
            saved = json.loads(path.read_text(encoding="utf-8"))

        assert saved["version"] == 2
        booking = saved["watches"]["w"]["booking"]
        assert booking["state"] == "booked"
        assert booking["process_id"] == 4711
        assert booking["start"].startswith("2026-11-24T08:00:00")
        assert saved["watches"]["w"]["reported"] == {f"10489@{start}": 1_795_000_000.0}
        status = watcher.status("w")
        assert status.booking.state is BookingState.BOOKED
        assert status.booking.start is not None
        assert status.booking.start.timestamp() == start
        credentials = watcher.credentials("w")
        assert credentials is not None
        assert credentials.auth_key == "ab" * 32


@virtual
async def test_a_future_version_is_refused_and_left_alone() -> None:
    async with environment() as env:
        future = {"version": 3, "watches": {"w": {"something": "new"}}}
        store = MemoryStore(future)
        watcher = env.watcher(store)
        watcher.add(watch())
        with pytest.raises(StoreError, match="version 3"):
            await watcher.poll()
        assert await store.load() == future
        assert store.saves == 0
        assert env.calendar_requests() == 0


@virtual
async def test_a_reservation_of_a_watch_that_no_longer_books_is_released() -> None:
    async with environment() as env:
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        reserved = await env.client.reserve_appointment(
            office_id=10489, services=[1063475], timestamp=int(env.at(TUESDAY, 9))
        )
        store = MemoryStore(
            {
                "version": 2,
                "watches": {
                    "w": {
                        "booking": {
                            "state": "reserved",
                            "office_id": 10489,
                            "start": "2026-11-24T08:00:00Z",
                            "process_id": reserved.process_id,
                            "auth_key": reserved.auth_key,
                        }
                    }
                },
            }
        )
        watcher = env.watcher(store)
        watcher.add(watch())  # the person took auto-booking and contact away
        await watcher.load()
        assert watcher.booking_state("w") is BookingState.IDLE
        assert env.sim.bookings.processes[reserved.process_id].status == "deleted"
