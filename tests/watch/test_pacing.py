"""Where a group spends its requests: the budget, the windows, urgency, the plan."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, time
import io
from typing import Any

import pytest

from mta_client import ServiceRequest
from mta_client.cli.explain import explain_requested
from mta_client.cli.output import Output
from mta_client.cli.parsing import build_parser
from mta_client.cli.watching import WatchRun, run_watches
from mta_client.planner import RELEASE_WINDOWS, day_profile, relevant_windows
from mta_client.store import MemoryStore
from mta_client.watcher import PollPolicy, Watcher

from .env import BERLIN, TUESDAY, Env, environment, virtual, watch

MONDAY = date(2026, 11, 23)


def record_looks(env: Env) -> list[tuple[float, tuple[tuple[int, int], ...]]]:
    """Record the wall time and services of every calendar request."""
    looks: list[tuple[float, tuple[tuple[int, int], ...]]] = []
    original = env.client.get_available_calendar

    async def recording(**kwargs: Any) -> Any:
        services = tuple((s.service_id, s.count) for s in kwargs["services"])
        looks.append((env.clock.time(), services))
        return await original(**kwargs)

    env.client.get_available_calendar = recording  # type: ignore[method-assign]
    return looks


async def run_for(watcher: Watcher, seconds: float) -> None:
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def local(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, BERLIN)


@virtual
async def test_a_day_costs_at_most_the_groups_budget() -> None:
    async with environment() as env:
        watcher = env.watcher(policy=PollPolicy(requests_per_day=300, weekly=False))
        watcher.add(watch(within_days=14))
        looks = record_looks(env)
        await run_for(watcher, 18 * 3600 - 60)  # Monday 06:00 to 23:59

        # The whole day's budget, although the watcher started at six: what
        # the night would have had goes to the rest of the day.
        assert 240 <= len(looks) <= 300
        in_windows = [t for t, _ in looks if local(t).hour in {7, 9, 10}]
        # Most of it inside the windows that release slots the watch can use.
        assert len(in_windows) >= 0.6 * len(looks)
        assert env.client.budget.rate_limited == 0


@virtual
async def test_the_weeks_budget_goes_to_the_weekdays_with_windows() -> None:
    async with environment() as env:
        watcher = env.watcher(policy=PollPolicy(requests_per_day=300))
        watcher.add(watch(within_days=14))
        looks = record_looks(env)
        await run_for(watcher, 7 * 86400 - 6 * 3600 - 60)  # to Sunday 23:59
        per_day: dict[date, int] = {}
        for t, _ in looks:
            per_day[local(t).date()] = per_day.get(local(t).date(), 0) + 1
        weekdays = [per_day.get(date(2026, 11, d), 0) for d in range(24, 28)]
        weekend = [per_day.get(date(2026, 11, d), 0) for d in (28, 29)]
        # Tuesday to Friday, with their windows, get more than the average
        # day, at most twice as much; Saturday and Sunday much less.
        assert all(330 <= n <= 600 for n in weekdays), weekdays
        assert all(n <= 150 for n in weekend), weekend
        # The week (Monday from six) stays within seven days' budget.
        assert len(looks) <= 7 * 300
        assert env.client.budget.rate_limited == 0


@virtual
async def test_the_night_counts_only_for_watches_six_weeks_ahead() -> None:
    async with environment() as env:
        watcher = env.watcher()
        watcher.add(watch(id="soon", within_days=14))
        watcher.add(
            watch(
                id="later",
                services=[ServiceRequest(service_id=1063576)],
                within_days=60,
            )
        )
        looks = record_looks(env)
        await run_for(watcher, 24 * 3600)  # to Tuesday 06:00

        def night(service: int) -> int:
            return sum(
                1
                for t, services in looks
                if services[0][0] == service and local(t).date() == TUESDAY
            )

        # The six-weeks release runs in the night before a weekday; only a
        # watch that reaches 42 days ahead has a use for it.
        assert night(1063475) <= 20
        assert night(1063576) >= 150


@virtual
async def test_a_known_slot_makes_later_releases_not_worth_looking_for() -> None:
    async with environment() as env:
        # A slot tomorrow: next week's release (09-11 h) cannot bring an
        # earlier one, so that window is not worth the requests; same-day
        # (07-08 h) still is.
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        watcher = env.watcher()
        watcher.add(watch(within_days=14))
        looks = record_looks(env)
        await run_for(watcher, 5 * 3600)  # Monday 06:00-11:00
        per_hour = {
            hour: sum(1 for t, _ in looks if local(t).hour == hour)
            for hour in (7, 9, 10)
        }
        assert per_hour[7] >= 150
        assert per_hour[9] <= 40
        assert per_hour[10] <= 40


@virtual
async def test_urgency_trades_requests_for_detection() -> None:
    async with environment() as env:
        watcher = env.watcher()
        for urgency, service in (
            ("relaxed", 1063475),
            ("normal", 1063576),
            ("urgent", 1063486),
        ):
            watcher.add(
                watch(
                    id=urgency,
                    urgency=urgency,
                    services=[ServiceRequest(service_id=service)],
                    within_days=14,
                )
            )
        plan = {g.watches[0]: g for g in watcher.explain().groups}
        assert [plan[u].requests_per_day for u in ("relaxed", "normal", "urgent")] == [
            360,
            720,
            1440,
        ]
        detect = [plan[u].detect_in_windows for u in ("relaxed", "normal", "urgent")]
        assert all(d is not None for d in detect)
        assert detect[0] > detect[1] > detect[2]  # type: ignore[operator]

        looks = record_looks(env)
        await run_for(watcher, 2 * 3600)  # Monday 06:00-08:00
        in_window = {
            service: sum(
                1 for t, s in looks if s[0][0] == service and local(t).hour == 7
            )
            for service in (1063475, 1063576, 1063486)
        }
        assert in_window[1063475] < in_window[1063576] < in_window[1063486]
        assert env.client.budget.rate_limited == 0


@virtual
async def test_a_vanished_slot_is_looked_for_again_when_it_may_come_back() -> None:
    async with environment() as env:
        await asyncio.sleep(6 * 3600)  # Monday 12:00: outside the windows
        watcher = env.watcher()
        watcher.add(watch(within_days=14))
        start = env.at(TUESDAY, 9)
        env.sim.release_slot(10489, start, minutes=15)
        looks = record_looks(env)
        first = await watcher.poll()
        assert len(env.new()) == 1
        env.sim.take_slot(10489, start)  # somebody reserves it
        delay = first.delay
        for _ in range(5):  # the next look (perhaps after a captcha renewal)
            await asyncio.sleep(delay)
            delay = (await watcher.poll()).delay
            if env.gone():
                break
        assert len(env.gone()) == 1
        gone_at = env.clock.time()
        for _ in range(40):
            result = await watcher.poll()
            await asyncio.sleep(result.delay)
            if env.clock.time() > gone_at + 2000:
                break
        after = [t - gone_at for t, _ in looks]
        # A reservation runs out after 15 minutes, an unused activation after
        # 30: a look comes just after each, whatever the pace outside.
        assert any(900 <= a <= 990 for a in after)
        assert any(1800 <= a <= 1890 for a in after)


def test_the_profile_weighs_the_useful_windows_most() -> None:
    soon = [watch(within_days=14)]
    windows = relevant_windows(soon, MONDAY, RELEASE_WINDOWS)
    assert [w.name for w in windows] == ["same-day", "next-week"]
    profile = day_profile(MONDAY, windows, day_weight=0.1, night_weight=0.01)
    assert profile[0].start == datetime.combine(MONDAY, time(), BERLIN).timestamp()
    assert sum(s.minutes for s in profile) == pytest.approx(24 * 60)
    by_window = {s.window: s.weight for s in profile if s.window}
    # Each window releases about a day's slots over its length.
    assert by_window == {"same-day": 1.0, "next-week": 0.5}
    # A watch that knows a slot tomorrow has no use for next week's release.
    best = {"w": TUESDAY}
    assert [w.name for w in relevant_windows(soon, MONDAY, RELEASE_WINDOWS, best)] == [
        "same-day"
    ]
    # No window on a Saturday.
    assert relevant_windows(soon, date(2026, 11, 28), RELEASE_WINDOWS) == ()


@virtual
async def test_mta_watch_explain_prints_the_plan_and_looks_for_nothing() -> None:
    args = build_parser().parse_args(["watch", "--explain"])
    assert args.explain
    assert explain_requested()
    async with environment() as env:
        stdout = io.StringIO()
        out = Output(stdout=stdout, stderr=io.StringIO())
        run = WatchRun(
            watches=(
                watch(id="a", within_days=14),
                watch(id="b", office_ids=[102522], urgency="urgent"),
            ),
            store=MemoryStore(),
        )
        code = await run_watches(env.client, out, run, names={})
        assert code == 0
        assert env.calendar_requests() == 0
        text = stdout.getvalue()
        assert "1063475x1" in text
        assert "a, b" in text
        assert "urgent" in text
        # Two watches in one group: 2 ** 0.6 budgets, doubled for urgency.
        assert "2183" in text
        assert out.data is not None
        document = out.data["plan"]
        assert document["requests_per_day"] == pytest.approx(2182.7, abs=0.1)
        assert document["groups"][0]["watches"] == ["a", "b"]
        assert document["groups"][0]["windows"] == [
            "six-weeks",
            "same-day",
            "next-week",
        ]
    # A new parser starts unmarked.
    build_parser().parse_args(["watch"])
    assert not explain_requested()


@virtual
async def test_a_slot_not_listed_for_a_while_no_longer_makes_windows_useless() -> None:
    async with environment() as env:
        await asyncio.sleep(6 * 3600)  # Monday 12:00: sparse looks, no window
        # Monday 20:00 is the first bookable day, but outside the watch's
        # hours; Wednesday 9:00 fits and comes from a look at that day, and
        # Wednesday stays bookable (15:00) after somebody takes 9:00, so a
        # look at the group does not tell that 9:00 is gone.
        wednesday = date(2026, 11, 25)
        env.sim.release_slot(10489, env.at(date(2026, 11, 23), 20), minutes=15)
        env.sim.release_slot(10489, env.at(wednesday, 9), minutes=15)
        env.sim.release_slot(10489, env.at(wednesday, 15), minutes=15)
        watcher = env.watcher()
        watcher.add(watch(within_days=14, time_ranges="08:00-12:00"))
        await watcher.check()
        assert [e.start.astimezone(BERLIN).hour for e in env.new()] == [9]

        def windows() -> set[str]:
            return {w for g in watcher.explain().groups for w in g.windows}

        # A slot on Wednesday: next week's release cannot bring an earlier one.
        assert windows() == {"same-day"}
        env.sim.take_slot(10489, env.at(wednesday, 9))
        taken_at = env.clock.time()
        while not env.gone() and env.clock.time() < taken_at + 3600:
            result = await watcher.poll()
            await asyncio.sleep(result.delay)
        # Wednesday is not asked again while 9:00 counts as the best slot;
        # after a quarter of an hour without an answer listing it, it no
        # longer does: the next look asks for Wednesday again, finds 9:00
        # gone, and next week's release is worth looking for again.
        assert len(env.gone()) == 1
        assert 900 <= env.clock.time() - taken_at <= 1800
        assert watcher.reported("w") == {}
        assert windows() == {"same-day", "next-week"}


@virtual
async def test_the_shared_limit_goes_first_to_looks_that_serve_more_watches() -> None:
    async with environment() as env:
        watcher = env.watcher()
        for index in range(4):  # four people want a residence registration
            watcher.add(watch(id=f"family{index}", within_days=14))
        singles = (1063441, 1063453, 10224132, 1063486, 1063576, 1063565, 10225119)
        for service in singles:  # and seven people one other service each
            watcher.add(
                watch(
                    id=f"single{service}",
                    services=[ServiceRequest(service_id=service)],
                    within_days=14,
                )
            )
        looks = record_looks(env)
        await run_for(watcher, 2 * 3600)  # Monday 06:00-08:00
        at_seven = [s[0][0] for t, s in looks if local(t).hour == 7]
        shared = at_seven.count(1063475)
        each = [at_seven.count(service) for service in singles]
        # Eight groups asking five looks a minute would need 40 a minute, more
        # than the 18 the watcher allows itself: the group that serves four
        # people keeps its five looks a minute, the others share the rest
        # evenly (one or two a minute).
        limit = watcher.policy.budget_share * 60
        assert limit == 18
        assert len(at_seven) <= limit * 60
        assert max(each) - min(each) <= 0.1 * max(each)
        assert shared >= 1.15 * max(each), (shared, each)
        assert env.client.budget.rate_limited == 0


@virtual
async def test_many_groups_look_at_every_cron_run_within_the_shared_limit() -> None:
    async with environment() as env:
        watcher = env.watcher()
        services = (
            (1063475, 1), (1063441, 1), (1063453, 1), (10224132, 1),
            (1063486, 1), (1063576, 1), (1063565, 1), (10225119, 1),
            (1080843, 1), (1080582, 1), (1063441, 2), (1063453, 2),
        )  # fmt: skip
        for service, count in services:  # twelve people, one service set each
            watcher.add(
                watch(
                    id=f"p{service}x{count}",
                    services=[ServiceRequest(service_id=service, count=count)],
                    within_days=14,
                )
            )
        looks = record_looks(env)
        await run_for(watcher, 3600 + 30 * 60)  # Monday 06:00-07:30
        window = [(t, s) for t, s in looks if local(t).hour == 7]
        minutes: dict[int, list[tuple[float, Any]]] = {}
        for moment, service_set in window:
            minutes.setdefault(local(moment).minute, []).append((moment, service_set))
        limit = watcher.policy.budget_share * 60  # the shared limit, per minute
        for minute in range(30):
            seen = minutes.get(minute, [])
            # Never more than the shared limit a minute (rounded down) ...
            assert len(seen) <= limit + 1, (minute, len(seen))
            # ... and every group looks soon after every cron run, the minutes
            # of silence the limiter needs included: the silence comes after
            # a minute's first looks and ends once the next cron run has
            # shown most of its slots (not halfway into the next minute).
            first: dict[Any, float] = {}
            for moment, service_set in seen:
                first.setdefault(service_set, moment % 60)
            assert len(first) == len(services), (minute, len(first))
            assert max(first.values()) <= 25, (minute, sorted(first.values()))
        assert env.client.budget.rate_limited == 0
