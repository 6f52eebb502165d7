"""The watcher against the simulator, over real HTTP on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
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
from mta_client.store import JSONFileStore, MemoryStore, StateStore
from mta_client.watch import (
    BookingEvent,
    BookingState,
    SlotEvent,
    SlotEventKind,
    Watch,
    WatchEvent,
)
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


def virtual(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
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


@virtual
async def test_new_slot_reported_once_and_gone_when_taken() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)

        await watcher.check()
        await watcher.check()

        new = env.new()
        assert [(e.office_id, e.start.astimezone(BERLIN).time()) for e in new] == [
            (10489, time(9))
        ]
        assert len(watcher.reported("w")) == 1

        env.sim.take_slot(10489, env.at(TUESDAY, 9), minutes=15)
        await watcher.check()
        assert [e.office_id for e in env.gone()] == [10489]
        assert watcher.reported("w") == {}


@virtual
async def test_nothing_reported_twice_after_restart() -> None:
    import tempfile  # noqa: PLC0415

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
        watcher.add(watch(id="afternoon", time_ranges=["14:00-16:00"]))  # type: ignore[list-item]
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
async def test_polls_more_often_inside_release_windows() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch())
        task = asyncio.create_task(watcher.run())
        polls: dict[int, int] = {}
        for hour in range(6, 13):
            start = watcher.stats.polls
            await asyncio.sleep(3600)
            polls[hour] = watcher.stats.polls - start
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # 07-08 and 09-11 are release windows; 06, 08, 11 and 12 are not.
        assert polls[7] > 2 * polls[6]
        assert polls[9] > 2 * polls[12]
        assert polls[10] > 2 * polls[11]
        assert env.sim.stats.captcha_verify_failures == 0
