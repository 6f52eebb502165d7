"""A pre-confirmation whose answer was lost: never a second appointment.

The pre-confirmation's request reached the city, but its answer did not come
back (a timeout; the city went on and pre-confirmed), and releasing the
reservation failed too. The engine does not know whether the person holds an
appointment: it must not book another one for the watch until the city says.
"""

from __future__ import annotations

from mta_client.booking import UNANSWERED
from mta_client.watch import BookingState

from .env import CONTACT, TUESDAY, Env, environment, virtual, watch
from .test_lapse import run_for, states


def held(env: Env) -> list[int]:
    return sorted(
        p.process_id
        for p in env.sim.bookings.processes.values()
        if p.status in {"preconfirmed", "confirmed"}
    )


@virtual
async def test_a_lost_preconfirm_answer_is_asked_about_not_booked_again() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        # The city answers the pre-confirmation after the client gave up
        # (15 s), and the release that follows fails.
        env.sim.faults.add(kind="slow", route="preconfirm-appointment/", delay=20)
        env.sim.faults.add(kind="server_error", route="cancel-appointment/", times=1)
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=30)
        await run_for(watcher, 90)
        (first,) = held(env)
        # Another fitting slot appears: still one appointment for the person.
        env.sim.release_slot(10489, env.at(TUESDAY, 11), minutes=30)
        await run_for(watcher, 10 * 60)
        assert held(env) == [first]
        # The engine asked and knows it holds that one.
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert watcher.credentials("w") is not None
        assert watcher.credentials("w").process_id == first  # type: ignore[union-attr]
        assert states(env) == [BookingState.PRECONFIRMING, BookingState.BOOKED]
        unanswered, booked = env.bookings()
        assert (unanswered.reason, unanswered.released) == ("MTATimeoutError", False)
        assert booked.process_id == first
        # The city's deadline runs from its pre-confirmation (after the
        # attempt): the engine's is no later than that, and not earlier than
        # the attempt's own start plus the activation time.
        process = env.sim.bookings.processes[first]
        assert process.status == "preconfirmed"
        assert process.preconfirmed_at is not None
        assert booked.activation_deadline is not None
        deadline = booked.activation_deadline.timestamp()
        activation = 30 * 60
        assert process.reserved_at + activation <= deadline
        assert deadline <= process.preconfirmed_at + activation


@virtual
async def test_an_unanswered_preconfirm_the_city_did_not_carry_out_is_released() -> (
    None
):
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        # A broken connection: the pre-confirmation never reached the city.
        env.sim.faults.add(kind="reset", route="preconfirm-appointment/", times=1)
        env.sim.faults.add(kind="server_error", route="cancel-appointment/", times=1)
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await run_for(watcher, 30)
        assert watcher.booking_state("w") is BookingState.PRECONFIRMING
        (reserved,) = env.sim.bookings.processes.values()
        assert reserved.status == "reserved"
        # Asked a minute later: still only reserved; released, and the watch
        # books again (the freed slot, once the city's cron frees it).
        await run_for(watcher, 120)
        assert reserved.status == "deleted"
        assert states(env)[:2] == [BookingState.PRECONFIRMING, BookingState.IDLE]
        idle = env.bookings()[1]
        assert (idle.reason, idle.released) == (UNANSWERED, True)
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
        await run_for(watcher, 600)
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert len(held(env)) == 1


@virtual
async def test_an_unanswered_preconfirm_is_asked_again_while_the_city_fails() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.faults.add(kind="slow", route="preconfirm-appointment/", delay=20)
        env.sim.faults.add(kind="server_error", route="cancel-appointment/", times=1)
        env.sim.faults.add(kind="server_error", route="appointment/", times=2)
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=30)
        results = await run_for(watcher, 90)
        results += await run_for(watcher, 5 * 60)
        failed = [e for r in results for e in r.errors if e.what == "booking:w"]
        assert len(failed) == 2
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert len(held(env)) == 1
