"""Booking edge cases: failures at each step, and resuming after a restart."""

from __future__ import annotations

from typing import Any

from mta_client import (
    MTAAppointmentNotFoundError,
    MTAValidationError,
    ProcessCredentials,
)
from mta_client.store import MemoryStore
from mta_client.watch import BookingState

from .env import CONTACT, TUESDAY, Env, environment, virtual, watch


def booked(env: Env) -> int:
    return sum(env.sim.stats.preconfirmed_by_email.values())


async def reserve(env: Env, hour: int) -> Any:
    env.sim.release_slot(10489, env.at(TUESDAY, hour), minutes=15)
    return await env.client.reserve_appointment(
        office_id=10489, services=[1063475], timestamp=int(env.at(TUESDAY, hour))
    )


def stored(state: str, appointment: Any, env: Env, hour: int) -> MemoryStore:
    return MemoryStore(
        {
            "version": 1,
            "watches": {
                "w": {
                    "booking": {
                        "state": state,
                        "office_id": 10489,
                        "start": int(env.at(TUESDAY, hour)),
                        "process_id": appointment.process_id,
                        "auth_key": appointment.auth_key,
                    }
                }
            },
        }
    )


@virtual
async def test_server_error_on_reserve_is_not_repeated_blindly() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.faults.add(kind="server_error", route="reserve-appointment/", times=1)

        await watcher.check()

        (event,) = env.bookings()
        assert event.state is BookingState.IDLE
        assert event.reason == "MTAServerError"
        assert env.sim.stats.reservations == 0
        assert watcher.booking_state("w") is BookingState.IDLE
        # The next look tries again, and books.
        await watcher.check()
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert booked(env) == 1


@virtual
async def test_permanent_error_on_reserve_stops_booking() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)

        async def refuse(**_: Any) -> Any:
            raise MTAValidationError("timestamp", "test")

        env.client.reserve_appointment = refuse  # type: ignore[method-assign]
        await watcher.check()

        (event,) = env.bookings()
        assert event.state is BookingState.FAILED
        assert watcher.booking_state("w") is BookingState.FAILED


@virtual
async def test_server_error_after_reserve_cancels_and_tries_again() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.faults.add(kind="server_error", route="update-appointment/", times=1)

        await watcher.check()

        assert env.bookings()[0].state is BookingState.IDLE
        assert env.sim.stats.cancellations == 1
        assert watcher.booking_state("w") is BookingState.IDLE


@virtual
async def test_expired_reservation_is_not_cancelled() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)

        async def expired(**_: Any) -> Any:
            raise MTAAppointmentNotFoundError

        env.client.preconfirm_appointment = expired  # type: ignore[method-assign]
        await watcher.check()

        assert env.bookings()[0].state is BookingState.IDLE
        assert "appointmentNotFound" in (env.bookings()[0].reason or "")
        assert env.sim.stats.cancellations == 0


@virtual
async def test_failed_cancel_is_only_logged() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.faults.add(kind="server_error", route="update-appointment/", times=1)
        env.sim.faults.add(kind="server_error", route="cancel-appointment/", times=1)

        await watcher.check()

        assert env.bookings()[0].state is BookingState.IDLE
        assert env.sim.stats.cancellations == 0  # the city lets it expire


@virtual
async def test_resume_after_preconfirm_was_sent() -> None:
    async with environment() as env:
        reserved = await reserve(env, 9)
        await env.client.update_appointment(credentials=reserved, contact=CONTACT)
        await env.client.preconfirm_appointment(credentials=reserved)
        watcher = env.watcher(stored("preconfirming", reserved, env, 9))
        watcher.add(watch(auto_book=True, contact=CONTACT))

        await watcher.check()

        (event,) = env.bookings()
        assert event.state is BookingState.BOOKED
        assert event.process_id == reserved.process_id
        assert booked(env) == 1


@virtual
async def test_resume_when_preconfirm_never_arrived() -> None:
    async with environment() as env:
        reserved = await reserve(env, 9)
        watcher = env.watcher(stored("preconfirming", reserved, env, 9))
        watcher.add(watch(auto_book=True, contact=CONTACT))

        await watcher.check()

        assert env.bookings()[0].state is BookingState.BOOKED
        assert booked(env) == 1


@virtual
async def test_resume_with_a_cancelled_or_unknown_appointment_starts_over() -> None:
    async with environment() as env:
        reserved = await reserve(env, 9)
        cancelled = await env.client.cancel_appointment(credentials=reserved)
        watcher = env.watcher(stored("preconfirming", cancelled, env, 9))
        watcher.add(watch(auto_book=True, contact=CONTACT))
        await watcher.load()
        assert watcher.booking_state("w") is BookingState.IDLE

        bogus = ProcessCredentials(process_id=999999, auth_key="f" * 64)
        other = env.watcher(stored("preconfirming", bogus, env, 9))
        other.add(watch(auto_book=True, contact=CONTACT))
        await other.load()
        assert other.booking_state("w") is BookingState.IDLE
        assert booked(env) == 0


@virtual
async def test_booked_watch_is_left_alone_on_restart() -> None:
    async with environment() as env:
        reserved = await reserve(env, 9)
        watcher = env.watcher(stored("booked", reserved, env, 9))
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 11), minutes=15)
        await watcher.check()
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert env.bookings() == []
        assert booked(env) == 0
