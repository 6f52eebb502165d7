"""The watcher against the simulator, over real HTTP on virtual time."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, time, timedelta
import itertools
from pathlib import Path
import tempfile
from typing import Any

import pytest

from mta_client import MTAClient, MTAMaintenanceError, ServiceRequest
from mta_client.store import JSONFileStore, MemoryStore, StoreError
from mta_client.watch import BookingState
from mta_client.watcher import Watcher

from .env import (
    BERLIN,
    BUERGERBUEROS,
    CONTACT,
    THURSDAY,
    TUESDAY,
    WEDNESDAY,
    environment,
    virtual,
    watch,
)


@virtual
async def test_nothing_reported_twice_after_restart() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        async with environment() as env:
            env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
            first = env.watcher(JSONFileStore(path))
            first.add(watch())
            await first.check()
            assert len(env.new()) == 1
            assert oct(path.stat().st_mode & 0o777) == "0o600"

            second = env.watcher(JSONFileStore(path))
            second.add(watch())
            await second.check()
            assert len(env.new()) == 1  # still one: the restart reported nothing again

            env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
            await second.check()
            assert len(env.new()) == 2


@virtual
async def test_watches_with_same_services_share_one_request() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="a", office_ids=[10489]))
        watcher.add(watch(id="b", office_ids=[102522, 54261]))
        watcher.add(watch(id="c", office_ids=[10489, 102523], within_days=3))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(54261, env.at(TUESDAY, 11), minutes=15)
        env.sim.release_slot(102523, env.at(TUESDAY, 12), minutes=15)

        await watcher.load()
        before = env.calendar_requests()
        await watcher.check()

        assert env.calendar_requests() - before == 1
        by_watch = {w: sorted(e.office_id for e in env.new(w)) for w in "abc"}
        assert by_watch == {"a": [10489], "b": [54261], "c": [10489, 102523]}


@virtual
async def test_filters_that_miss_the_first_day_cost_only_their_days() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="any"))
        watcher.add(watch(id="thursday", weekdays="thu"))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(WEDNESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(THURSDAY, 15), minutes=15)

        await watcher.load()
        before = env.calendar_requests()
        await watcher.check()

        # One for the group, one for Thursday; Wednesday is nobody's need.
        assert env.calendar_requests() - before == 2
        assert [e.start.astimezone(BERLIN).date() for e in env.new("thursday")] == [
            THURSDAY
        ]
        # The Thursday answer fans out to every watch it fits.
        assert [e.start.astimezone(BERLIN).date() for e in env.new("any")] == [
            TUESDAY,
            THURSDAY,
        ]


@virtual
async def test_time_range_and_lead_time_filters() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="afternoon", time_ranges=["14:00-16:00"]))
        watcher.add(watch(id="lead", min_lead=timedelta(days=1, hours=4)))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(TUESDAY, 14, 30), minutes=15)
        await watcher.check()
        assert [e.start.astimezone(BERLIN).time() for e in env.new("afternoon")] == [
            time(14, 30)
        ]
        assert [e.start.astimezone(BERLIN).time() for e in env.new("lead")] == [
            time(14, 30)
        ]


@virtual
async def test_auto_book_books_once_and_reports_details() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        # Two fitting slots appear together.
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)

        await watcher.check()
        await watcher.check()

        booked = [b for b in env.bookings() if b.state is BookingState.BOOKED]
        assert len(booked) == 1
        event = booked[0]
        assert event.start is not None
        assert event.start.astimezone(BERLIN).time() == time(9)
        assert event.process_id is not None
        assert event.auth_key is not None
        assert len(event.auth_key) == 64
        assert event.activation_deadline is not None
        assert event.activation_deadline.timestamp() - env.clock.time() > 25 * 60
        assert sum(env.sim.stats.preconfirmed_by_email.values()) == 1
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert "Huber" not in repr(event)
        assert event.auth_key not in repr(event)

        env.sim.release_slot(10489, env.at(TUESDAY, 11), minutes=15)
        await watcher.check()
        assert sum(env.sim.stats.preconfirmed_by_email.values()) == 1


@virtual
async def test_concurrent_booking_calls_book_once() -> None:
    async with environment() as env:
        watcher = env.watcher()
        w = watch(auto_book=True, contact=CONTACT)
        watcher.add(w)
        await watcher.load()
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
        calendar = await env.client.get_available_calendar(
            office_ids=[10489], services=[1063475]
        )
        slots = calendar.slots
        results = await asyncio.gather(
            watcher.booker.book(w, slots), watcher.booker.book(w, list(reversed(slots)))
        )
        assert (
            sum(1 for r in results if r is not None and r.state is BookingState.BOOKED)
            == 1
        )
        assert sum(env.sim.stats.preconfirmed_by_email.values()) == 1


@virtual
async def test_slot_taken_moves_on_to_the_next() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
        original = env.client.reserve_appointment
        taken: list[int] = []

        async def someone_was_faster(**kwargs: Any) -> Any:
            if not taken:
                taken.append(env.sim.take_slot(10489, env.at(TUESDAY, 9), minutes=15))
            return await original(**kwargs)

        env.client.reserve_appointment = someone_was_faster  # type: ignore[method-assign]
        await watcher.check()

        (event,) = [b for b in env.bookings() if b.state is BookingState.BOOKED]
        assert event.start is not None
        assert event.start.astimezone(BERLIN).time() == time(10)
        assert taken == [3]  # Wohnsitzanmeldung takes three 5-minute units


@virtual
async def test_unusable_reservation_is_cancelled() -> None:
    async with environment() as env:
        # The city allows two appointments per e-mail address and scope.
        for hour in (14, 15):
            env.sim.release_slot(10489, env.at(WEDNESDAY, hour), minutes=15)
            reserved = await env.client.reserve_appointment(
                office_id=10489,
                services=[1063475],
                timestamp=int(env.at(WEDNESDAY, hour)),
            )
            await env.client.update_appointment(credentials=reserved, contact=CONTACT)
            await env.client.preconfirm_appointment(credentials=reserved)
        cancellations = env.sim.stats.cancellations

        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()

        (event,) = env.bookings()
        assert event.state is BookingState.FAILED
        assert event.reason is not None
        assert "tooManyAppointmentsWithSameMail" in event.reason
        assert env.sim.stats.cancellations == cancellations + 1
        assert watcher.booking_state("w") is BookingState.FAILED
        # The slot is free again for others once the city deallocates it, and
        # the watch does not try again.
        await asyncio.sleep(16 * 60)
        assert int(env.at(TUESDAY, 9)) in env.sim.bookable_times(10489, [1063475])
        await watcher.check()
        assert len(env.bookings()) == 1


@virtual
async def test_restart_mid_booking_resumes_without_double_booking() -> None:
    async with environment() as env:
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        reserved = await env.client.reserve_appointment(
            office_id=10489, services=[1063475], timestamp=int(env.at(TUESDAY, 9))
        )
        # A process that died right after reserving left this behind.
        store = MemoryStore(
            {
                "version": 1,
                "watches": {
                    "w": {
                        "booking": {
                            "state": "reserved",
                            "office_id": 10489,
                            "start": int(env.at(TUESDAY, 9)),
                            "process_id": reserved.process_id,
                            "auth_key": reserved.auth_key,
                        }
                    }
                },
            }
        )
        watcher = env.watcher(store)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 10), minutes=15)
        await watcher.check()

        booked = [b for b in env.bookings() if b.state is BookingState.BOOKED]
        assert [b.process_id for b in booked] == [reserved.process_id]
        assert sum(env.sim.stats.preconfirmed_by_email.values()) == 1
        saved = await store.load()
        assert saved["watches"]["w"]["booking"]["state"] == "booked"


@virtual
async def test_restart_while_reserving_starts_over() -> None:
    async with environment() as env:
        store = MemoryStore(
            {"version": 1, "watches": {"w": {"booking": {"state": "reserving"}}}}
        )
        watcher = env.watcher(store)
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()
        assert watcher.booking_state("w") is BookingState.BOOKED


@virtual
async def test_run_stays_inside_the_budget_with_many_watches() -> None:
    async with environment(scenario="munich-weekday") as env:
        watcher = env.watcher()
        services = [
            1063475,
            1063576,
            1063486,
            1063565,
            10225119,
            1063441,
            1063453,
            1080582,
        ]
        for index in range(40):
            service = services[index % len(services)]
            offices = [
                o for o in BUERGERBUEROS if env.sim.catalogue.relation(o, service)
            ][:3]
            if not offices:
                continue
            watcher.add(
                watch(
                    id=f"w{index}",
                    services=[ServiceRequest(service_id=service, count=1 + index % 2)],
                    office_ids=offices,
                    within_days=14 + index,
                )
            )
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(2 * 3600)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        assert env.sim.stats.rate_limited == 0
        assert env.client.budget.rate_limited == 0
        assert watcher.stats.polls > 100
        assert watcher.stats.errors == 0


@virtual
async def test_polls_densely_inside_release_windows_spread_after_the_cron() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(within_days=14))
        original = env.client.get_available_calendar
        looks: list[float] = []

        async def recording(**kwargs: Any) -> Any:
            looks.append(env.clock.time())
            return await original(**kwargs)

        env.client.get_available_calendar = recording  # type: ignore[method-assign]
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(7 * 3600)  # Monday 06:00-13:00
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        def hour(moment: float) -> int:
            return datetime.fromtimestamp(moment, BERLIN).hour

        polls = {h: sum(1 for t in looks if hour(t) == h) for h in range(6, 13)}
        # 07-08 (same-day) and 09-11 (next week) release slots this watch can
        # use: up to five looks a minute there (less the minutes of silence
        # the limiter needs; next week's two-hour window weighs half the
        # one-hour same-day window), a look every few minutes outside.
        assert 240 <= polls[7] <= 300, polls
        for window_hour in (9, 10):
            assert 150 <= polls[window_hour] <= 300, polls
        # Now and then a minute of silence, which the city's limiter needs to
        # forget its count, planned right after a look once the minute's
        # cron run has mostly shown its slots (18 s on): so it ends after the
        # next minute's has, and no cron run goes without a look soon after.
        pauses = [(a, b) for a, b in itertools.pairwise(looks) if hour(a) in {7, 9, 10}]
        silences = [(a, b) for a, b in pauses if b - a > 60]
        assert 1 <= len(silences) <= 20
        assert all(a % 60 >= 17.5 for a, b in silences if hour(a) == hour(b))
        assert all(b - a < 75 for a, b in silences if hour(a) == hour(b))
        for other_hour in (6, 8, 11, 12):
            assert 3 <= polls[other_hour] <= 40
        # Inside the windows the looks spread over the seconds after the
        # city's per-minute cron, when freed slots become visible; outside
        # they come once the cron run is likely done.
        inside = [t % 60 for t in looks if hour(t) in {7, 9, 10}]
        outside = [t % 60 for t in looks[1:] if hour(t) in {6, 8, 11, 12}]
        five, four = {6, 16, 26, 37, 48}, {6, 16, 27, 42}  # looks a minute
        assert sum(1 for s in inside if round(s) in five | four) >= 0.85 * len(inside)
        assert {round(s) for s in inside} >= five
        assert sum(1 for s in outside if round(s) == 18) >= 0.9 * len(outside)
        assert env.client.budget.rate_limited == 0
        assert env.sim.stats.captcha_verify_failures == 0


@virtual
async def test_maintenance_backs_off_and_recovers() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        await watcher.load()
        env.sim.maintenance = True
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(1800)
        assert watcher.stats.errors == 2  # at once, then after the 15-minute back-off
        assert watcher.stats.last_error == "MTAServiceUnavailableError"
        env.sim.maintenance = False
        await asyncio.sleep(3600)  # into the 7-8 h release window
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert watcher.stats.polls > 10


@virtual
async def test_watches_added_or_removed_while_running() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="a"))
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(30)
        env.sim.release_slot(102522, env.at(TUESDAY, 9), minutes=15)
        watcher.add(watch(id="b", office_ids=[102522]))
        await asyncio.sleep(1)  # the new watch is looked at without waiting
        assert [e.watch_id for e in env.new()] == ["b"]
        watcher.remove("b")
        assert [w.id for w in watcher.watches] == ["a"]
        assert watcher.reported("b") == {}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@virtual
async def test_failed_token_renewal_does_not_stop_the_watch() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(3600 + 200)  # inside the 7-8 h release window
        env.sim.faults.add(kind="captcha_upstream", route="captcha-challenge/", times=1)
        await asyncio.sleep(600)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert env.sim.stats.faults["captcha_upstream"] == 1
        assert watcher.stats.errors == 0
        assert watcher.stats.polls > 12


@virtual
async def test_relative_windows_move_on_at_midnight() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(within_days=2))
        original = env.client.get_available_calendar
        asked: list[tuple[Any, Any]] = []

        async def recording(**kwargs: Any) -> Any:
            asked.append((kwargs["start_date"], kwargs["end_date"]))
            return await original(**kwargs)

        env.client.get_available_calendar = recording  # type: ignore[method-assign]
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(24 * 3600)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert asked[0] == (TUESDAY - timedelta(days=1), WEDNESDAY)
        assert asked[-1] == (TUESDAY, THURSDAY)


@virtual
async def test_state_of_another_version_is_refused() -> None:
    async with environment() as env:
        store = MemoryStore({"version": 99, "watches": {}})
        watcher = env.watcher(store)
        watcher.add(watch())
        with pytest.raises(StoreError, match="version 99"):
            await watcher.check()
        assert await store.load() == {"version": 99, "watches": {}}


@virtual
async def test_a_failed_load_is_tried_again() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        env.sim.faults.add(kind="maintenance", route="offices-and-services/", times=1)
        with pytest.raises(MTAMaintenanceError):
            await watcher.check()
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()
        assert len(env.new()) == 1


class BrokenStore(MemoryStore):
    async def save(self, state: dict[str, Any]) -> None:
        del state
        raise StoreError("disk full")


@virtual
async def test_events_are_reported_even_when_the_state_cannot_be_saved() -> None:
    async with environment() as env:
        watcher = env.watcher(BrokenStore())
        watcher.add(watch())
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        with pytest.raises(StoreError):
            await watcher.check()
        assert len(env.new()) == 1


@virtual
async def test_the_booked_slot_is_not_reported_gone() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(auto_book=True, contact=CONTACT))
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()
        await watcher.check()
        assert watcher.booking_state("w") is BookingState.BOOKED
        assert env.gone() == []
        assert watcher.reported("w") == {}


@virtual
async def test_failed_looks_are_passed_to_on_error() -> None:
    async with environment() as env:
        errors: list[tuple[str, float]] = []
        watcher = Watcher(
            env.client,
            on_error=lambda err, delay: errors.append((type(err).__name__, delay)),
        )
        watcher.add(watch())
        await watcher.load()
        env.sim.faults.add(kind="html_block", route="available-calendar/", times=1)
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(60)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert errors == [("MTABlockedError", 900.0)]


async def test_retry_delays() -> None:
    from mta_client import MTABudgetExceededError, MTAIpBlacklistedError, MTAServerError  # noqa: PLC0415

    watcher = Watcher(MTAClient(base_url="http://127.0.0.1:9/"))
    policy = watcher.policy
    assert watcher.retry_delay(MTAServerError()) == policy.error_backoff
    assert watcher.retry_delay(MTAIpBlacklistedError()) == policy.block_backoff
    assert watcher.retry_delay(MTABudgetExceededError(75.0)) == 75.0
    assert watcher.retry_delay(MTABudgetExceededError(1.0)) == policy.error_backoff
