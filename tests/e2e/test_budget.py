"""The request budget against the simulator's real rate limiter."""

from __future__ import annotations

from mta_client import LoopClock, MTAClient, RequestBudget
from mta_client.simulator import Simulator, SimulatorServer, run_virtual

START = 1_795_000_000.0  # a weekday morning, virtual Unix time
PASING = 54261
WOHNSITZ = 1063475
CALLS = 150


async def _poll(calls: int) -> tuple[Simulator, RequestBudget, float]:
    clock = LoopClock(epoch=0.0)
    sim = Simulator(clock=clock, scenario="fixed", seed=3)  # city defaults: 60/60 s
    # Default settings: only the clock follows the (virtual) loop.
    async with (
        SimulatorServer(sim) as server,
        MTAClient(base_url=server.base_url, clock=clock) as client,
    ):
        for _ in range(calls):
            calendar = await client.get_available_calendar(
                office_ids=[PASING], services=[WOHNSITZ]
            )
            assert calendar.bookable_dates
        return sim, client.budget, clock.time() - START


def test_default_client_never_meets_a_429(socket_enabled: None) -> None:
    sim, budget, elapsed = run_virtual(_poll(CALLS), start=START)
    assert sim.stats.requests_by_route["available-calendar/"] == CALLS
    total = sum(sim.stats.requests_by_ip.values())
    # The limit was really reached: more requests than one window allows ...
    assert total > sim.rate_limiter.max_requests * 2
    assert budget.sent == total
    # ... yet the server never refused one, because the budget waited.
    assert sum(sim.stats.rate_limited_by_ip.values()) == 0
    assert budget.rate_limited == 0
    assert budget.limit_learned
    assert elapsed > 2 * 60  # three windows' worth of requests took > 2 min
