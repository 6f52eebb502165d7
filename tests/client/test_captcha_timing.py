"""How long a new captcha token took: kept by the library, public on the client."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from mta_client import MTAClient
from mta_client.captcha import CaptchaTokenCache
import mta_client.client as client_module
from mta_client.exceptions import MTAInvalidResponseError
from tests.conftest import FakeClock

from .helpers import route

if TYPE_CHECKING:
    from aioresponses import aioresponses

# A JWT whose exp (1790000300) is 300 s after the FakeClock's start.
TOKEN = "header.eyJleHAiOjE3OTAwMDAzMDB9.sig"
PAUSE = 0.05


def timed(cache: CaptchaTokenCache) -> float | None:
    """The figure as it is now (read anew: a fetch changes it)."""
    return cache.last_fetch_seconds


async def test_the_cache_times_each_new_token() -> None:
    clock = FakeClock()
    fail = False

    async def fetch() -> str:
        # Real time passes (the fake clock does not move): the figure is
        # computing and waiting time, not the clock's.
        await asyncio.sleep(PAUSE)
        if fail:
            msg = "verification failed"
            raise MTAInvalidResponseError(msg)
        return TOKEN

    cache = CaptchaTokenCache(fetch=fetch, clock=clock)
    assert timed(cache) is None
    await cache.get()
    first = timed(cache)
    assert first is not None
    assert PAUSE <= first < 5
    assert first == round(first, 3)

    # A token reused, or seeded from another run, took no solving.
    await cache.get()
    assert cache.last_fetch_seconds == first
    # A failed fetch leaves the last good figure.
    fail = True
    with pytest.raises(MTAInvalidResponseError):
        await cache.refresh()
    assert cache.last_fetch_seconds == first

    seeded = CaptchaTokenCache(fetch=fetch, clock=clock)
    assert seeded.seed(TOKEN)
    await seeded.get()
    assert seeded.last_fetch_seconds is None


async def test_the_client_shows_the_time_of_its_last_token(
    client: MTAClient, responses: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_solve(challenge: dict[str, object]) -> str:
        assert challenge == {"challenge": "x"}
        await asyncio.sleep(PAUSE)
        return "c29sdmVk"

    monkeypatch.setattr(client_module, "solve_challenge_async", slow_solve)
    responses.get(route("captcha-challenge/"), payload={"challenge": "x"})
    responses.post(
        route("captcha-verify/"),
        payload={"meta": {"success": True}, "data": {"valid": True}, "token": TOKEN},
    )
    assert timed(client.captcha) is None

    assert await client.get_captcha_token() == TOKEN

    seconds = client.last_captcha_seconds
    assert seconds is not None
    assert PAUSE <= seconds < 5
    assert seconds == client.captcha.last_fetch_seconds
