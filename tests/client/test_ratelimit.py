"""Tests of the request budget against a model of the city's limiter."""

from __future__ import annotations

import asyncio
import random

import pytest

from mta_client import MTABudgetExceededError, RequestBudget
from tests.conftest import FakeClock


class CityLimiter:
    """The city's RateLimitingMiddleware, as its code behaves (per IP)."""

    def __init__(self, limit: int = 60, ttl: float = 60.0) -> None:
        self.limit, self.ttl = limit, ttl
        self.count = 0
        self.expires = 0.0

    def request(self, now: float) -> bool:
        if now >= self.expires:
            self.count = 0
        if self.count >= self.limit:
            return False  # refused; the entry is not touched
        self.count += 1
        self.expires = now + self.ttl
        return True


@pytest.mark.parametrize("seed", range(5))
async def test_budget_never_sends_what_the_city_refuses(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    budget = RequestBudget(clock=clock, priority_reserve=0)
    city = CityLimiter()
    accepted = 0
    for _ in range(600):
        clock.advance(rng.choice([0.0, 0.0, 0.1, 0.5, 2.0, 30.0, 61.0]) * rng.random())
        await budget.acquire(priority=rng.random() < 0.2)
        clock.advance(rng.random() * 0.2)  # the request travels to the server
        assert city.request(clock.now), (
            "the budget let through a request the city refuses"
        )
        accepted += 1
    assert accepted == 600
    assert budget.sent == 600


async def test_full_window_waits_until_it_expires() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock, limit=3, priority_reserve=0, safety=1.0)
    for _ in range(3):
        await budget.acquire()
    assert clock.sleeps == []
    assert budget.remaining() == 0
    await budget.acquire()
    assert clock.sleeps == [pytest.approx(61.0)]


async def test_priority_reserve_keeps_room_for_bookings() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock, limit=5, priority_reserve=2)
    for _ in range(3):
        await budget.acquire()
    assert budget.remaining() == 0
    assert budget.remaining(priority=True) == 2
    assert budget.wait_time(priority=True) == 0
    await budget.acquire(priority=True)
    await budget.acquire(priority=True)
    assert clock.sleeps == []
    assert budget.wait_time(priority=True) > 0


async def test_max_wait_raises_instead_of_sending() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock, limit=1, priority_reserve=0)
    await budget.acquire()
    with pytest.raises(MTABudgetExceededError) as excinfo:
        await budget.acquire(max_wait=10)
    assert excinfo.value.retry_after == pytest.approx(61.0)
    assert budget.sent == 1


async def test_concurrent_callers_share_one_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock, limit=10, priority_reserve=0)
    city = CityLimiter(limit=10)

    async def one() -> bool:
        await budget.acquire()
        return city.request(clock.now)

    results = await asyncio.gather(*(one() for _ in range(25)))
    assert all(results)
    assert budget.sent == 25


def test_headers_update_limit_and_count() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock, priority_reserve=0)
    budget.update_from_headers(
        {"X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "7"}
    )
    assert budget.limit == 120
    assert budget.remaining() == 7
    budget.update_from_headers(
        {"X-RateLimit-Limit": "oops", "X-RateLimit-Remaining": "1"}
    )
    budget.update_from_headers({"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0"})
    budget.update_from_headers({})
    assert budget.limit == 120
    assert budget.remaining() == 7


def test_rate_limited_blocks_a_full_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(clock=clock)
    assert budget.on_rate_limited() >= 60
    assert budget.remaining(priority=True) == 0
    clock.advance(60.5)
    assert budget.remaining(priority=True) == 0
    clock.advance(1.0)
    assert budget.remaining(priority=True) == 60


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        RequestBudget(limit=0)
