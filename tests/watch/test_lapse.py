"""After booking: the engine asks the city whether the activation link was used.

A booking waits (``booked``) for the person's click on the city's activation
link. If nobody clicks, the city's cron drops the appointment after the
activation time; the person may also click the link in a browser, outside
the engine. A little after the deadline (and rarely otherwise) the engine
asks the city once, and the booking becomes ``confirmed`` or ``lapsed``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mta_client import MTAAppointmentNotFoundError, ProcessCredentials
from mta_client.booking import ACTIVATION_LAPSED, GONE, StatusChecks
from mta_client.store import MemoryStore, parse_state
from mta_client.watch import BookingEvent, BookingState
from mta_client.watcher import PollResult, Watcher

from .env import CONTACT, TUESDAY, Env, environment, virtual, watch

CHECKS = StatusChecks()


async def run_for(watcher: Watcher, seconds: float) -> list[PollResult]:
    """Poll as a host does, for ``seconds`` of (virtual) time."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    results: list[PollResult] = []
    while loop.time() < until:
        result = await watcher.poll()
        results.append(result)
        await asyncio.sleep(min(result.delay, max(0.0, until - loop.time())) or 0.01)
    return results


def asked(env: Env) -> int:
    """Status requests (``GET appointment/``) the simulator answered."""
    return env.sim.stats.requests_by_route["appointment/"]


def states(env: Env) -> list[BookingState]:
    return [e.state for e in env.bookings()]


async def book_one(env: Env, watcher: Watcher, hour: int = 9) -> BookingEvent:
    env.sim.release_slot(10489, env.at(TUESDAY, hour), minutes=15)
    await run_for(watcher, 60)
    (event,) = env.bookings()
    assert event.state is BookingState.BOOKED
    return event


def credentials_of(event: BookingEvent) -> dict[str, Any]:
    return {"processId": event.process_id, "authKey": event.auth_key}


@virtual
async def test_a_lapsed_activation_frees_the_watch_to_book_again() -> None:
    async with environment() as env:
        store = MemoryStore()
        watcher = env.watcher(store)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        first = await book_one(env, watcher)
        assert first.activation_deadline is not None
        deadline = first.activation_deadline.timestamp()
        # (Not booking by itself for now, to see what is kept of the lapse.)
        watcher.add(watch(contact=CONTACT))

        # Nobody clicks the link: nothing is asked before the deadline ...
        await run_for(watcher, deadline - env.clock.time() - 5)
        assert asked(env) == 0
        # ... and once after it (plus the margin for the city's cron).
        await run_for(watcher, CHECKS.margin + 60)
        assert asked(env) == 1
        lapsed = env.bookings()[1]
        assert lapsed.state is BookingState.LAPSED
        assert lapsed.reason == ACTIVATION_LAPSED
        assert lapsed.process_id == first.process_id
        assert (lapsed.office_id, lapsed.start) == (first.office_id, first.start)
        assert lapsed.auth_key is None  # the city's key of a dropped booking is dead
        record = parse_state(await store.load()).watches["w"].booking
        assert record.state is BookingState.LAPSED
        assert record.process_id == first.process_id
        assert record.auth_key is None
        status = watcher.status("w").booking
        assert status.state is BookingState.LAPSED
        assert status.activation_deadline is None

        # The city's cron freed the slot: an auto-booking watch books again.
        watcher.add(watch(auto_book=True, contact=CONTACT))
        await run_for(watcher, 120)
        assert states(env) == [
            BookingState.BOOKED,
            BookingState.LAPSED,
            BookingState.BOOKED,
        ]
        assert env.bookings()[2].process_id != first.process_id
        assert watcher.booking_state("w") is BookingState.BOOKED


@virtual
async def test_a_link_used_in_a_browser_is_picked_up() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        # The person clicks the link in the e-mail: the engine does not see it.
        env.sim.bookings.confirm(credentials_of(booked))
        assert watcher.booking_state("w") is BookingState.BOOKED

        await run_for(watcher, 30 * 60 + CHECKS.margin + 60)
        assert asked(env) == 1
        assert states(env) == [BookingState.BOOKED, BookingState.CONFIRMED]
        confirmed = env.bookings()[1]
        assert confirmed.process_id == booked.process_id
        assert confirmed.activation_deadline is None
        # Confirmed: no more questions, no second booking.
        env.sim.release_slot(10489, env.at(TUESDAY, 11), minutes=15)
        await run_for(watcher, 6 * 3600)
        assert asked(env) == 1
        assert watcher.booking_state("w") is BookingState.CONFIRMED
        assert len(env.bookings()) == 2


@virtual
async def test_a_failed_check_keeps_the_booking_and_tries_again_later() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        rule = env.sim.faults.add(kind="server_error", route="appointment/", times=2)

        assert booked.activation_deadline is not None
        deadline = booked.activation_deadline.timestamp()
        results = await run_for(
            watcher, deadline + CHECKS.margin + 30 - env.clock.time()
        )
        failed = [e for r in results for e in r.errors if e.what == "booking:w"]
        assert len(failed) == 1
        assert failed[0].watch_ids == ("w",)
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert watcher.credentials("w") is not None

        results += await run_for(watcher, 10 * 60)
        failed = [e for r in results for e in r.errors if e.what == "booking:w"]
        assert len(failed) == 2
        # The engine's usual back-off between the tries, and no hammering.
        assert failed[0].retry_after == watcher.policy.error_backoff
        assert (rule.hits, asked(env)) == (2, 1)
        assert states(env)[:2] == [BookingState.BOOKED, BookingState.LAPSED]
        assert env.bookings()[1].process_id == booked.process_id


@virtual
async def test_a_check_waits_while_the_request_budget_is_low() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        assert booked.activation_deadline is not None
        due = booked.activation_deadline.timestamp() + CHECKS.margin
        await run_for(watcher, due - env.clock.time() - 2)
        # The window's requests are spent (a 429, say): the check waits.
        env.client.budget.on_rate_limited()
        results = await run_for(watcher, 30)
        assert asked(env) == 0
        assert not [e for r in results for e in r.errors if e.what == "booking:w"]
        await run_for(watcher, 180)
        assert asked(env) == 1
        assert states(env)[:2] == [BookingState.BOOKED, BookingState.LAPSED]


@virtual
async def test_the_city_still_holding_it_is_asked_again_less_and_less() -> None:
    async with environment() as env:
        # The engine was told a deadline 25 minutes before the city's own (an
        # activation time that changed): it asks at that deadline plus the
        # margin, then after 5 minutes, then after as long as has passed
        # since the deadline, until the city has dropped it.
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        assert booked.activation_deadline is not None
        told = booked.activation_deadline - timedelta(minutes=25)
        entry = watcher.booker.state.watches["w"]
        entry.booking = entry.booking.model_copy(update={"activation_deadline": told})

        asks: list[float] = []
        original = env.client.get_appointment

        async def counted(**kwargs: Any) -> Any:
            asks.append(env.clock.time() - told.timestamp())
            return await original(**kwargs)

        env.client.get_appointment = counted  # type: ignore[method-assign]
        await run_for(watcher, 3600)
        margin, recheck = CHECKS.margin, CHECKS.recheck
        expected = [margin, margin + recheck]
        expected += [2 * expected[-1], 4 * expected[-1]]
        assert asks == pytest.approx(expected, abs=5)
        assert states(env)[:2] == [BookingState.BOOKED, BookingState.LAPSED]
        assert env.bookings()[1].reason == ACTIVATION_LAPSED


@virtual
async def test_a_restart_asks_once_and_a_quick_restart_waits() -> None:
    async with environment() as env:
        store = MemoryStore()
        watcher = env.watcher(store)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        await book_one(env, watcher)
        assert asked(env) == 0

        # A restart right after the booking waits a while before asking.
        again = env.watcher(store)
        again.add(watch(auto_book=True, contact=CONTACT))
        await run_for(again, 60)
        assert asked(env) == 0
        await run_for(again, CHECKS.after_restart)
        assert asked(env) == 1
        assert again.booking_state("w") is BookingState.BOOKED
        # Once: until the deadline nothing more.
        await run_for(again, 10 * 60)
        assert asked(env) == 1

        # A restart long after the last answer asks at once.
        await asyncio.sleep(2 * CHECKS.after_restart)
        late = env.watcher(store)
        late.add(watch(auto_book=True, contact=CONTACT))
        await late.poll()
        assert asked(env) == 2


@virtual
async def test_a_booking_with_a_far_deadline_is_asked_every_few_hours() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        entry = watcher.booker.state.watches["w"]
        far = datetime.fromtimestamp(env.clock.time(), UTC) + timedelta(days=2)
        entry.booking = entry.booking.model_copy(update={"activation_deadline": far})

        await run_for(watcher, CHECKS.interval - 120)
        assert asked(env) == 0
        await run_for(watcher, 240)
        assert asked(env) == 1
        # The city dropped it after its own 30 minutes: gone before the deadline.
        lapsed = env.bookings()[1]
        assert (lapsed.state, lapsed.reason) == (BookingState.LAPSED, GONE)
        assert lapsed.process_id == booked.process_id


@virtual
async def test_a_refused_confirm_makes_the_engine_ask_the_city() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        assert booked.process_id is not None
        env.sim.bookings.expire(booked.process_id)  # the city dropped it early
        credentials = watcher.credentials("w")
        assert credentials is not None
        with pytest.raises(MTAAppointmentNotFoundError):
            await watcher.confirm(credentials)
        assert watcher.booking_state("w") is BookingState.BOOKED
        await watcher.poll()
        assert asked(env) == 1
        lapsed = env.bookings()[-1]
        assert lapsed.state is BookingState.LAPSED
        assert lapsed.reason == GONE  # before its deadline


@virtual
async def test_a_dereferenced_appointment_lapses_too() -> None:
    async with environment() as env:
        env.sim.bookings.dereference = 1.0
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        booked = await book_one(env, watcher)
        await run_for(watcher, 30 * 60 + CHECKS.margin + 60)
        assert states(env)[:2] == [BookingState.BOOKED, BookingState.LAPSED]
        assert env.bookings()[1].reason == ACTIVATION_LAPSED
        assert booked.process_id in env.sim.bookings.processes  # not yet deleted


@virtual
async def test_a_preconfirming_booking_survives_a_failed_resume() -> None:
    async with environment() as env:
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        reserved = await env.client.reserve_appointment(
            office_id=10489, services=[1063475], timestamp=int(env.at(TUESDAY, 9))
        )
        await env.client.update_appointment(credentials=reserved, contact=CONTACT)
        await env.client.preconfirm_appointment(credentials=reserved)
        store = MemoryStore(
            {
                "version": 2,
                "watches": {
                    "w": {
                        "booking": {
                            "state": "preconfirming",
                            "office_id": 10489,
                            "start": datetime.fromtimestamp(
                                env.at(TUESDAY, 9), UTC
                            ).isoformat(),
                            "process_id": reserved.process_id,
                            "auth_key": reserved.auth_key,
                        }
                    }
                },
            }
        )
        env.sim.faults.add(kind="server_error", route="appointment/", times=1)
        watcher = env.watcher(store)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        first = await watcher.poll()
        assert first.errors
        assert watcher.booking_state("w") is BookingState.PRECONFIRMING
        await run_for(watcher, first.delay + 1)
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert watcher.credentials("w") == ProcessCredentials(
            process_id=reserved.process_id, auth_key=reserved.auth_key
        )


def test_a_lapsed_booking_is_stored_and_read_back() -> None:
    stored = {
        "version": 2,
        "watches": {
            "w": {
                "booking": {
                    "state": "lapsed",
                    "office_id": 10489,
                    "start": "2026-11-24T08:00:00+00:00",
                    "process_id": 182201,
                    "reason": ACTIVATION_LAPSED,
                    "since": "2026-11-23T09:00:00+00:00",
                }
            }
        },
    }
    record = parse_state(stored).watches["w"].booking
    assert record.state is BookingState.LAPSED
    assert record.process_id == 182201
    assert record.checked_at is None
    # A booked record of before (no checked_at, no since) still loads.
    stored["watches"]["w"]["booking"] = {  # type: ignore[index]
        "state": "booked",
        "office_id": 10489,
        "start": "2026-11-24T08:00:00+00:00",
        "process_id": 182201,
        "auth_key": "a" * 64,
        "activation_deadline": "2026-11-23T09:30:00+00:00",
    }
    old = parse_state(stored).watches["w"].booking
    assert (old.state, old.since, old.checked_at) == (BookingState.BOOKED, None, None)
    assert BookingState.LAPSED.books_automatically
    assert not BookingState.LAPSED.holds_appointment
    assert not BookingState.LAPSED.busy


@virtual
async def test_a_removed_watch_leaves_nothing_behind_in_the_booker() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        await book_one(env, watcher)
        watcher.remove("w")
        watcher.add(watch(id="v", auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 11), minutes=15)
        await run_for(watcher, 60)
        assert watcher.booking_state("v") is BookingState.BOOKED
        kept = watcher.booker._locks
        assert set(kept) == {"v"}
