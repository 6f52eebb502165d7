"""Watcher.poll(): what a host with its own scheduler sees (Home Assistant's way)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from mta_client import (
    DEFAULT_BASE_URL,
    MTAClient,
    MTAMaintenanceError,
    MTAServiceUnavailableError,
    ServiceRequest,
)
from mta_client.watch import BookingState, SlotEvent
from mta_client.watcher import PollPolicy, PollResult, Watcher

from .env import BERLIN, CONTACT, TUESDAY, WEDNESDAY, environment, virtual, watch


@virtual
async def test_poll_runs_what_is_due_and_says_when_to_come_back() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="a"))
        watcher.add(watch(id="b", office_ids=[10489, 102522]))
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
        env.sim.release_slot(102522, env.at(TUESDAY, 9), minutes=15)

        first = await watcher.poll()

        assert [type(e) for e in first.events] == [SlotEvent] * 3
        assert set(first.statuses) == {"a", "b"}
        b = first.statuses["b"]
        assert [(s.office_id, s.start.astimezone(BERLIN).hour) for s in b.slots] == [
            (102522, 9),
            (10489, 10),
        ]
        assert b.earliest == b.slots[0]
        assert b.booking.state is BookingState.IDLE
        assert b.last_checked is not None
        assert first.statuses["a"].earliest is not None
        assert first.errors == ()
        # The catalogue, the captcha (challenge, verify) and one calendar
        # request for both watches: they share their services.
        assert first.requests == 4
        # Outside the release windows: some minutes on (the group's budget
        # goes to the windows), 18 s after the cron's full minute.
        assert first.delay == pytest.approx(first.next_due - env.clock.monotonic())
        assert 60 <= first.delay <= 900
        assert (env.clock.time() + first.delay) % 60 == pytest.approx(18.0)

        # Nothing is due before next_due: a poll then sends nothing.
        early = await watcher.poll()
        assert (early.requests, early.events) == (0, ())
        assert early.next_due == pytest.approx(first.next_due)

        await asyncio.sleep(first.delay)
        later = await watcher.poll()
        assert later.requests == 1
        assert later.events == ()
        assert later.statuses["b"].slots == b.slots


@virtual
async def test_a_host_loop_over_poll_backs_off_a_block_and_recovers() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        first = await watcher.poll()
        assert first.errors == ()
        env.sim.faults.add(kind="html_block", route="available-calendar/", times=3)
        results: list[PollResult] = []
        for _ in range(8):
            await asyncio.sleep(results[-1].delay if results else first.delay)
            results.append(await watcher.poll())  # never raises for a look

        failed = [r for r in results if r.errors]
        assert len(failed) == 3
        for result in failed:
            (error,) = result.errors
            assert type(error.error).__name__ == "MTABlockedError"
            assert error.retry_after == 900.0
            assert error.what == "group:1063475x1"
            # The watches that failed look was for, so a host can tell which.
            assert error.watch_ids == (watcher.watches[0].id,)
            # The engine comes back after the back-off (renewing the captcha
            # token just before), not sooner.
            assert 895.0 <= result.delay <= 900.0
        after = results[results.index(failed[-1]) + 1 :]
        assert after
        assert all(r.errors == () for r in after)
        assert env.sim.stats.faults["html_block"] == 3
        # Then it looks again as usual (renewing the token on the way).
        assert env.calendar_requests() > 1


@virtual
async def test_a_failed_catalogue_is_reported_and_tried_again() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        env.sim.faults.add(kind="maintenance", route="offices-and-services/", times=1)

        first = await watcher.poll()

        (error,) = first.errors
        assert isinstance(error.error, MTAMaintenanceError)
        assert isinstance(error.error, MTAServiceUnavailableError)
        assert (error.what, error.retry_after) == ("catalogue", 900.0)
        assert error.watch_ids == ()  # every watch
        assert first.delay == pytest.approx(900.0)
        assert (await watcher.poll()).requests == 0  # waits the back-off out
        await asyncio.sleep(first.delay)
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        second = await watcher.poll()
        assert second.errors == ()
        assert len(second.events) == 1


@virtual
async def test_run_is_a_loop_over_poll_with_after_look() -> None:
    async with environment() as env:
        results: list[PollResult] = []
        watcher = Watcher(env.client, after_look=results.append)
        watcher.add(watch())
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(3600 + 600)  # into the 7-8 h release window
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert len(results) >= 10
        assert sum(r.requests for r in results) == env.client.budget.sent
        # Looks, and polls in between that only renewed the captcha token.
        assert len(results) > watcher.stats.polls >= 9


def test_the_policy_keeps_the_city_interval() -> None:
    fast = PollPolicy(window_interval=5, other_interval=10)
    city = Watcher(MTAClient(base_url=DEFAULT_BASE_URL), policy=fast)
    assert (city.policy.window_interval, city.policy.other_interval) == (30, 30)
    local = Watcher(MTAClient(base_url="http://127.0.0.1:9/"), policy=fast)
    assert local.policy == fast
    custom = PollPolicy().with_interval(120, base_url=DEFAULT_BASE_URL)
    assert (custom.other_interval, custom.window_interval) == (120, 30)
    assert custom.block_backoff == 900


@virtual
async def test_bookings_run_in_the_hosts_tasks_and_aclose_cancels_them() -> None:
    async with environment() as env:
        started: list[str] = []

        def factory(coro: Any, name: str) -> asyncio.Task[Any]:
            started.append(name)
            return asyncio.get_running_loop().create_task(coro, name=f"host-{name}")

        watcher = Watcher(env.client, task_factory=factory)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        gate = asyncio.Event()
        original = env.client.reserve_appointment

        async def slow_reserve(**kwargs: Any) -> Any:
            await gate.wait()
            return await original(**kwargs)

        env.client.reserve_appointment = slow_reserve  # type: ignore[method-assign]
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)

        await watcher.poll()  # does not wait for the booking
        assert started == ["book:w"]
        await asyncio.sleep(1)
        assert watcher.booking_state("w") is BookingState.RESERVING
        (task,) = watcher._tasks
        await watcher.aclose()
        assert task.cancelled()
        assert watcher._tasks == set()
        assert env.sim.stats.reservations == 0


@virtual
async def test_a_booking_that_ends_between_polls_goes_to_on_event() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        first = await watcher.poll()
        assert [type(e).__name__ for e in first.events] == ["SlotEvent"]
        await asyncio.sleep(first.delay)
        # The booking ended between the polls: on_event heard it at once;
        # the next result does not repeat it, its statuses show it.
        (booked,) = env.bookings()
        assert booked.state is BookingState.BOOKED
        second = await watcher.poll()
        assert second.events == ()
        status = second.statuses["w"].booking
        assert status.state is BookingState.BOOKED
        assert status.process_id == booked.process_id
        assert status.activation_deadline is not None
        assert status.start is not None
        assert status.start.astimezone(BERLIN).date() == TUESDAY
        credentials = watcher.credentials("w")
        assert credentials is not None
        assert credentials.process_id == status.process_id
        assert "auth_key" not in repr(status)
        # The booked slot is ours: no longer among the free ones.
        assert second.statuses["w"].slots == ()


@virtual
async def test_later_days_are_asked_only_when_due() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="any", time_ranges="12:00-13:00"))
        watcher.add(watch(id="wed", weekdays="wed"))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(WEDNESDAY, 9), minutes=15)
        first = await watcher.poll()
        # The group, then Wednesday's times at once (it just became known).
        assert env.calendar_requests() == 2
        assert [e.start.astimezone(BERLIN).date() for e in env.new()] == [WEDNESDAY]
        await asyncio.sleep(first.delay)
        await watcher.poll()
        assert env.calendar_requests() == 3  # the group only: the day waits
        for _ in range(5):
            result = await watcher.poll()
            await asyncio.sleep(result.delay)
        # Wednesday is known now: only an earlier day would be worth a request.
        assert env.calendar_requests() == 3 + watcher.stats.polls - 2


@virtual
async def test_a_watch_that_cannot_use_today_is_shown_its_first_usable_day() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(weekdays="wed"))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(WEDNESDAY, 9), minutes=15)
        await watcher.poll()
        # One request: the slots window begins on Wednesday, the first day
        # the watch can use, so no later-day request is needed.
        assert env.calendar_requests() == 1
        assert [e.start.astimezone(BERLIN).date() for e in env.new()] == [WEDNESDAY]


@virtual
async def test_a_block_holds_back_every_group_not_one_request_each() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="a"))
        watcher.add(watch(id="b", services=[ServiceRequest(service_id=1063441)]))
        watcher.add(watch(id="c", services=[ServiceRequest(service_id=1063453)]))
        first = await watcher.poll()
        assert first.errors == ()
        sent = env.calendar_requests()
        env.sim.faults.add(kind="html_block", route="available-calendar/", times=None)
        results: list[PollResult] = []
        while env.clock.time() < first.next_due + 600:
            await asyncio.sleep(results[-1].delay if results else first.delay)
            results.append(await watcher.poll())
        failed = [e for r in results for e in r.errors]
        # One blocked look, and the others wait out its back-off with it: the
        # city is not asked three times for the same answer.
        (error,) = failed
        assert type(error.error).__name__ == "MTABlockedError"
        assert sorted(error.watch_ids) == ["a", "b", "c"]
        assert env.sim.stats.faults["html_block"] == 1
        assert env.calendar_requests() == sent
        env.sim.faults.clear()
        await asyncio.sleep(results[-1].delay)
        after = await watcher.poll()
        assert after.errors == ()
        assert after.requests >= 3  # every group looks again


@virtual
async def test_a_failure_of_one_group_alone_does_not_hold_back_the_others() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="a"))
        watcher.add(watch(id="b", services=[ServiceRequest(service_id=1063441)]))
        first = await watcher.poll()
        # An unreadable answer to one look says nothing about the next.
        env.sim.faults.add(kind="malformed_json", route="available-calendar/", times=1)
        results: list[PollResult] = []
        while not any(r.errors for r in results):
            await asyncio.sleep(results[-1].delay if results else first.delay)
            results.append(await watcher.poll())
        result = results[-1]
        (error,) = result.errors
        assert len(error.watch_ids) == 1
        assert env.sim.stats.faults["malformed_json"] == 1
        # The other group keeps its own schedule: only the failed one waits
        # out the back-off.
        assert error.retry_after == watcher.policy.error_backoff
        dues = {
            w.id: state.due
            for state in watcher._groups.values()
            for w in state.group.watches
        }
        (failed,) = error.watch_ids
        other = ({"a", "b"} - {failed}).pop()
        assert dues[failed] == pytest.approx(
            result.next_due - result.delay + error.retry_after, abs=1
        )
        assert dues[other] != dues[failed]
