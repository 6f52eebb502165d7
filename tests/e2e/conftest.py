"""The client against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from mta_client import MTAClient, RetryPolicy
from mta_client.simulator import Simulator, SimulatorServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FAST_RETRY = RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.02, max_time=5)


class SimClock:
    """Wall-clock time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        # Moving the clock forward is time passing, not a jump.
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(name="sim_clock")
def sim_clock_fixture() -> SimClock:
    return SimClock()


@pytest.fixture(name="sim_options")
def sim_options_fixture() -> dict[str, Any]:
    """Override per module or test to configure the simulator."""
    return {}


@pytest.fixture(name="sim")
def sim_fixture(sim_clock: SimClock, sim_options: dict[str, Any]) -> Simulator:
    options: dict[str, Any] = {"scenario": "fixed", "seed": 7, **sim_options}
    return Simulator(clock=sim_clock, **options)


@pytest.fixture(name="server")
async def server_fixture(
    sim: Simulator, socket_enabled: None
) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(sim, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(name="client")
async def client_fixture(server: SimulatorServer) -> AsyncIterator[MTAClient]:
    async with MTAClient(
        base_url=server.base_url, retry=FAST_RETRY, request_timeout=5
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def client_as(
    server: SimulatorServer, ip: str, **options: Any
) -> AsyncIterator[MTAClient]:
    """A client whose requests the simulator sees as coming from ``ip``."""
    async with (
        aiohttp.ClientSession(headers={"X-Forwarded-For": ip}) as session,
        MTAClient(
            session=session,
            base_url=server.base_url,
            retry=options.pop("retry", FAST_RETRY),
            request_timeout=options.pop("request_timeout", 5),
            **options,
        ) as client,
    ):
        yield client
