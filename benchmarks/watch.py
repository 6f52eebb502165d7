"""Watch benchmark: our watcher against the usual polling bot, on a simulated week.

Both run against the project's simulator on virtual time (a week takes
seconds), with the ``munich-weekday`` scenario: the city's release windows,
single slots from cancellations, and competing citizens who take slots
seconds to minutes after they appear. The same seed gives both the same
week.

* ours: :class:`mta_client.watcher.Watcher` with its default policy.
* baseline: one calendar request per watch every 120 s, with the same
  captcha-token reuse and no request budget - how the most complete existing
  Munich bot works.

Both watch the same watches (default five people waiting for a residence
registration, with different offices, days, times, lead times; two of them
auto-book). Printed (``--json``)::

    {"ours": {"requests_per_day", "rate_limited",
              "detect_s": {"window_median", "window_p95", "other_median", "other_p95"},
              "booked", "double_booked"},
     "baseline": {...}, "reserve_after_seen_ms_median"}

``requests_per_day`` counts every request the city's limiter counts, captcha
requests included. ``detect_s`` is the time from a slot appearing to the
watcher reporting it, for slots that appeared inside the release windows
(``window``) and outside them (``other``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import json
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp

from mta_client import (
    ContactDetails,
    LoopClock,
    MTAClient,
    RequestBudget,
    ServiceRequest,
)
from mta_client.booking import Booker
from mta_client.exceptions import MTAError
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer, run_virtual
from mta_client.store import MemoryStore, WatcherState
from mta_client.watch import (
    BookingEvent,
    BookingState,
    SlotEvent,
    SlotEventKind,
    Watch,
    slot_key,
)
from mta_client.watcher import PollPolicy, Watcher

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 23 November 2026, 00:00 in Munich.
START = datetime(2026, 11, 23, tzinfo=BERLIN).timestamp()
WOHNSITZ = [ServiceRequest(service_id=1063475)]
BUERGERBUEROS = [10489, 102522, 54261, 102526, 102523, 102524]
BASELINE_INTERVAL = 120.0


def contact(name: str) -> ContactDetails:
    return ContactDetails(family_name=name.title(), email=f"{name}@example.org")


def make_watches(count: int) -> list[Watch]:
    """The benchmark's people; beyond five, variations of them."""
    templates: list[dict[str, Any]] = [
        {"office_ids": BUERGERBUEROS, "within_days": 14, "auto_book": True},
        {
            "office_ids": [54261, 102523],
            "weekdays": "mon,tue,wed",
            "time_ranges": "08:00-12:00",
        },
        {
            "office_ids": [102522, 10489],
            "within_days": 28,
            "min_lead": timedelta(days=1),
            "auto_book": True,
        },
        {"office_ids": [102526, 102524], "time_ranges": "14:00-18:00"},
        {"office_ids": BUERGERBUEROS, "within_days": 42},
    ]
    watches = []
    for index in range(count):
        values = dict(templates[index % len(templates)])
        name = f"person{index}"
        if values.get("auto_book"):
            values["contact"] = contact(name)
        watches.append(Watch(id=name, services=WOHNSITZ, **values))
    return watches


@dataclass
class Run:
    """What one side did."""

    sim: Simulator
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    booked: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, event: SlotEvent | BookingEvent) -> None:
        if isinstance(event, SlotEvent) and event.kind is SlotEventKind.NEW:
            self.seen.setdefault((event.watch_id, event.key), event.seen_at)
        elif isinstance(event, BookingEvent) and event.state is BookingState.BOOKED:
            self.booked += 1


async def simulate(
    days: float, seed: int, side: Callable[[MTAClient, Run], Awaitable[None]]
) -> Run:
    clock = LoopClock(epoch=0.0)
    # A cheap proof-of-work keeps the benchmark fast; captcha requests still
    # count exactly as the city counts them.
    sim = Simulator(clock=clock, seed=seed, captcha=CaptchaConfig(cost=20))
    run = Run(sim=sim)
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        client = MTAClient(
            session=session, base_url=server.base_url, budget=RequestBudget(clock=clock)
        )
        task = asyncio.create_task(side(client, run))
        await asyncio.sleep(days * 86400)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return run


async def ours(watches: list[Watch], client: MTAClient, run: Run) -> None:
    watcher = Watcher(client, store=MemoryStore(), on_event=run.record)
    for watch in watches:
        watcher.add(watch)
    try:
        await watcher.run()
    finally:
        run.latencies_ms = watcher.booker.reserve_latencies_ms


async def baseline(watches: list[Watch], client: MTAClient, run: Run) -> None:
    """One request per watch every 120 s; no budget (it may meet 429s)."""
    client.budget = RequestBudget(clock=client.clock, limit=10**9, priority_reserve=0)

    async def save() -> None:
        return None

    booker = Booker(client, state=WatcherState(), save=save)
    reported: dict[str, set[str]] = {w.id: set() for w in watches}

    async def poll(watch: Watch) -> None:
        now = datetime.fromtimestamp(client.clock.time(), BERLIN)
        window = watch.window(now)
        if window is None:
            return
        calendar = await client.get_available_calendar(
            office_ids=watch.office_ids,
            services=WOHNSITZ,
            start_date=window[0],
            end_date=window[1],
        )
        seen = time.perf_counter()
        fitting = [s for s in calendar.slots if watch.matches(s, now)]
        for slot in fitting:
            key = slot_key(slot.office_id, slot.start)
            if key not in reported[watch.id]:
                reported[watch.id].add(key)
                run.record(
                    SlotEvent(
                        kind=SlotEventKind.NEW,
                        watch_id=watch.id,
                        office_id=slot.office_id,
                        start=slot.start,
                        services=watch.service_key,
                        seen_at=client.clock.time(),
                    )
                )
        if fitting and booker.wants_booking(watch):
            event = await booker.book(watch, fitting, seen=seen)
            if event is not None:
                run.record(event)

    async def loop(watch: Watch, offset: float) -> None:
        await asyncio.sleep(offset)
        while True:
            with contextlib.suppress(MTAError):
                await poll(watch)
            await asyncio.sleep(BASELINE_INTERVAL)

    await asyncio.gather(
        *(loop(w, i * BASELINE_INTERVAL / len(watches)) for i, w in enumerate(watches))
    )


def detection(run: Run, policy: PollPolicy) -> dict[str, float | None]:
    """Seconds from a slot's appearance to its report, in and outside windows."""
    by_office: dict[int, list[tuple[float, int, int]]] = {}
    for appearance in run.sim.stats.slot_appearances:
        if appearance.source != "initial":
            grid = run.sim.catalogue.offices[appearance.office_id].slot_minutes * 60
            end = appearance.start + appearance.units * grid
            by_office.setdefault(appearance.office_id, []).append(
                (appearance.appeared_at, appearance.start, end)
            )
    window: list[float] = []
    other: list[float] = []
    for (_, key), seen_at in run.seen.items():
        office, _, stamp = key.partition("@")
        start = int(stamp)
        appeared = [
            at
            for at, first, end in by_office.get(int(office), ())
            if first <= start < end and at <= seen_at
        ]
        if not appeared:
            continue  # free since the start of the run: nothing to detect
        at = max(appeared)
        moment = datetime.fromtimestamp(at, BERLIN)
        (window if policy.in_window(moment) else other).append(seen_at - at)
    return {
        "window_median": _median(window),
        "window_p95": _p95(window),
        "other_median": _median(other),
        "other_p95": _p95(other),
        "window_count": len(window),
        "other_count": len(other),
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)


def summary(run: Run, days: float) -> dict[str, Any]:
    stats = run.sim.stats
    per_email = {**stats.preconfirmed_by_email}
    return {
        "requests_per_day": round(sum(stats.requests_by_ip.values()) / days, 1),
        "rate_limited": stats.rate_limited,
        "detect_s": detection(run, PollPolicy()),
        "booked": run.booked,
        "double_booked": sum(1 for count in per_email.values() if count > 1),
        "captcha_requests_per_day": round(
            (
                stats.requests_by_route["captcha-challenge/"]
                + stats.requests_by_route["captcha-verify/"]
            )
            / days,
            1,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days", type=float, default=7.0, help="simulated days (default 7)"
    )
    parser.add_argument(
        "--watches", type=int, default=5, help="number of watches (default 5)"
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    watches = make_watches(args.watches)
    started = time.perf_counter()
    our_run = run_virtual(
        simulate(args.days, args.seed, lambda c, r: ours(watches, c, r)), start=START
    )
    base_run = run_virtual(
        simulate(args.days, args.seed, lambda c, r: baseline(watches, c, r)),
        start=START,
    )
    result = {
        "ours": summary(our_run, args.days),
        "baseline": summary(base_run, args.days),
        "reserve_after_seen_ms_median": _median(our_run.latencies_ms),
    }
    ours_rpd = result["ours"]["requests_per_day"]
    base_rpd = result["baseline"]["requests_per_day"]
    result["requests_ratio"] = round(ours_rpd / base_rpd, 3) if base_rpd else None
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
        print(f"({time.perf_counter() - started:.0f} s real time)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
