"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import Mock

import aiohttp
from aiohttp import ClientResponse
from aioresponses import aioresponses, core as aioresponses_core
import pytest

from mta_client import MTAClient, RequestBudget, RetryPolicy

BASE_URL = "http://city.test/buergeransicht/api/citizen/"


# aioresponses 0.7.9 builds ClientResponse without the `stream_writer` argument
# that aiohttp >= 3.14 requires (pnuckowski/aioresponses#289, fixed by the
# unreleased PR #288). Remove this shim once a release with the fix exists.
class _ClientResponseWithWriter(ClientResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_stream_writer_shim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _ClientResponseWithWriter)


@pytest.fixture(name="responses")
def responses_fixture() -> Iterator[aioresponses]:
    """Mock every aiohttp request made in the test."""
    with aioresponses() as mocker:
        yield mocker


class FakeClock:
    """A clock that only moves when told, or when something sleeps on it."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        # No wall-clock jumps here: monotonic time is wall time (what
        # ``monotonic_of`` read for this clock before it had the method).
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="client")
async def client_fixture(clock: FakeClock) -> AsyncIterator[MTAClient]:
    """A client on an injected session, with a fake clock and fast retries."""
    async with (
        aiohttp.ClientSession() as session,
        MTAClient(
            session=session,
            base_url=BASE_URL,
            budget=RequestBudget(clock=clock),
            retry=RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05),
        ) as client,
    ):
        yield client
