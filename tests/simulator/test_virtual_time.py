"""The virtual-time event loop."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from mta_client.clock import LoopClock
from mta_client.simulator import (
    Simulator,
    SimulatorServer,
    VirtualTimeLoop,
    run_virtual,
)

from .conftest import START, encode_payload, solve_v2


def test_sleep_jumps() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        before = loop.time()
        await asyncio.sleep(3600)
        return before, loop.time()

    real = time.perf_counter()
    before, after = run_virtual(main(), start=START)
    assert before == START
    assert after - before >= 3600
    assert time.perf_counter() - real < 1


def test_two_days_of_polling_over_http() -> None:
    async def main() -> tuple[int, Simulator, float]:
        clock = LoopClock(epoch=0.0)
        sim = Simulator(clock=clock, seed=5)
        polls = 0
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            SimulatorServer(sim) as server,
            aiohttp.ClientSession(timeout=timeout) as session,
        ):
            async with session.get(server.base_url + "captcha-challenge/") as resp:
                challenge = await resp.json()
            payload = encode_payload(
                {"challenge": challenge, "solution": solve_v2(challenge)}
            )
            async with session.post(
                server.base_url + "captcha-verify/", json={"payload": payload}
            ) as resp:
                assert (await resp.json())["meta"]["success"]
            while clock.time() < START + 2 * 86_400:
                async with session.get(
                    server.base_url + "available-calendar/",
                    params={
                        "startDate": "2026-11-23",
                        "endDate": "2027-01-31",
                        "officeIds": "10308174",
                        "serviceIds": "1071896",
                        "serviceCounts": "1",
                    },
                ) as resp:
                    assert resp.status == 200
                    await resp.read()
                polls += 1
                await asyncio.sleep(60)
        return polls, sim, clock.time()

    real = time.perf_counter()
    polls, sim, end = run_virtual(main(), start=START)
    assert time.perf_counter() - real < 20
    assert polls == 2 * 24 * 60
    assert end >= START + 2 * 86_400
    assert sim.stats.requests_by_route["available-calendar/"] == polls
    assert sim.stats.rate_limited == 0
    assert sim.stats.competitor_takes
