"""Every simulated error and fault reaches the client as the right exception."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import pytest

from mta_client import (
    Catalogue,
    MTABlockedError,
    MTACaptchaExpiredError,
    MTACaptchaInvalidError,
    MTACaptchaMissingError,
    MTACaptchaVerificationError,
    MTAClient,
    MTAConnectionError,
    MTAInvalidResponseError,
    MTAIpBlacklistedError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTARateLimitExceededError,
    MTAServerError,
    MTAServiceUnavailableError,
    MTATimeoutError,
    RequestBudget,
    RetryPolicy,
)

from .conftest import SimClock, client_as

if TYPE_CHECKING:
    from mta_client.simulator import Simulator, SimulatorServer

PASING = 54261
FUEHRERSCHEIN = 10308174  # no captcha
UMSCHREIBUNG = 1071896
WOHNSITZ = 1063475


# --- captcha -------------------------------------------------------------------


async def test_captcha_missing(client: MTAClient) -> None:
    with pytest.raises(MTACaptchaMissingError) as caught:
        await client.get_available_calendar(
            office_ids=[PASING], services=[WOHNSITZ], captcha_token=""
        )
    assert caught.value.status == 400


async def test_captcha_invalid(client: MTAClient) -> None:
    with pytest.raises(MTACaptchaInvalidError):
        await client.get_available_calendar(
            office_ids=[PASING], services=[WOHNSITZ], captcha_token="a.b.c"
        )


async def test_captcha_expired(
    client: MTAClient, sim: Simulator, sim_clock: SimClock
) -> None:
    token = await client.get_captcha_token()
    sim_clock.advance(301)  # the city's tokens live 300 s
    with pytest.raises(MTACaptchaExpiredError):
        await client.get_available_calendar(
            office_ids=[PASING], services=[WOHNSITZ], captcha_token=token
        )
    # Without an explicit token the client replaces the refused one once.
    calendar = await client.get_available_calendar(
        office_ids=[PASING], services=[WOHNSITZ]
    )
    assert calendar.slots
    assert sim.stats.captcha_verifies == 2


async def test_captcha_bound_to_ip(server: SimulatorServer) -> None:
    async with client_as(server, "10.1.1.1") as first:
        token = await first.get_captcha_token()
        calendar = await first.get_available_calendar(
            office_ids=[PASING], services=[WOHNSITZ], captcha_token=token
        )
        assert calendar.slots
    async with client_as(server, "10.2.2.2") as second:
        with pytest.raises(MTACaptchaInvalidError):
            await second.get_available_calendar(
                office_ids=[PASING], services=[WOHNSITZ], captcha_token=token
            )


async def test_captcha_upstream_failure(client: MTAClient, sim: Simulator) -> None:
    sim.faults.add(kind="captcha_upstream", route="captcha-challenge/")
    with pytest.raises(MTACaptchaVerificationError) as caught:
        await client.get_captcha_token()
    assert "Request error" in caught.value.message


# --- protection: rate limit, blacklist, gateway ---------------------------------


@pytest.mark.parametrize("sim_options", [{"rate_limit": 5}])
async def test_rate_limit_really_hit(
    server: SimulatorServer, sim: Simulator, sim_options: object
) -> None:
    # Another program on the same IP spends the city's limit first ...
    async with aiohttp.ClientSession() as other:
        for _ in range(5):
            async with other.get(server.base_url + "captcha-details/") as answer:
                assert answer.status == 200
    # ... so a client whose own budget is far from empty meets a real 429.
    budget = RequestBudget(limit=100)
    async with MTAClient(base_url=server.base_url, budget=budget) as client:
        with pytest.raises(MTARateLimitExceededError) as caught:
            await client.get_catalogue()
    assert isinstance(caught.value, MTARateLimitError)
    assert caught.value.status == 429
    assert caught.value.retry_after >= 60
    assert budget.rate_limited == 1
    assert budget.remaining() == 0  # the client now waits a whole window
    assert sum(sim.stats.rate_limited_by_ip.values()) == 1


@pytest.mark.parametrize("sim_options", [{"blacklist": ["10.66.0.0/16"]}])
async def test_ip_blacklisted(server: SimulatorServer, sim_options: object) -> None:
    async with client_as(server, "10.66.1.2") as client:
        with pytest.raises(MTAIpBlacklistedError) as caught:
            await client.get_catalogue()
    assert caught.value.status == 403
    assert caught.value.error_code == "IP_BLACKLISTED"
    async with client_as(server, "10.67.1.2") as allowed:
        assert (await allowed.get_catalogue()).offices


async def test_html_block_page(client: MTAClient, sim: Simulator) -> None:
    sim.faults.add(kind="html_block", route="offices-and-services/")
    with pytest.raises(MTABlockedError) as caught:
        await client.get_catalogue()
    assert not isinstance(caught.value, MTAIpBlacklistedError)
    assert caught.value.error_code is None
    assert "text/html" in str(caught.value)


async def test_maintenance_mode(client: MTAClient, sim: Simulator) -> None:
    sim.maintenance = True
    with pytest.raises(MTAServiceUnavailableError) as caught:
        await client.get_catalogue()
    assert isinstance(caught.value, MTAMaintenanceError)
    assert caught.value.status == 503
    sim.maintenance = False
    assert (await client.get_catalogue()).offices


# --- server failures and the transport ----------------------------------------


async def test_bad_gateway_retried_then_server_error(
    client: MTAClient, sim: Simulator
) -> None:
    rule = sim.faults.add(kind="bad_gateway", route="offices-and-services/", times=None)
    with pytest.raises(MTAServerError) as caught:
        await client.get_catalogue()
    assert caught.value.status == 502
    assert rule.hits == client.retry.max_tries == 3


async def test_one_bad_gateway_is_retried_away(
    client: MTAClient, sim: Simulator
) -> None:
    rule = sim.faults.add(kind="bad_gateway", route="offices-and-services/", times=1)
    catalogue = await client.get_catalogue()
    assert catalogue.offices
    assert rule.hits == 1


async def test_internal_error_envelope_is_not_retried(
    client: MTAClient, sim: Simulator
) -> None:
    rule = sim.faults.add(
        kind="server_error", route="offices-and-services/", times=None
    )
    with pytest.raises(MTAServerError) as caught:
        await client.get_catalogue()
    assert caught.value.status == 500
    assert rule.hits == 1


async def test_booking_post_is_never_retried(client: MTAClient, sim: Simulator) -> None:
    calendar = await client.get_available_calendar(
        office_ids=[FUEHRERSCHEIN], services=[UMSCHREIBUNG]
    )
    rule = sim.faults.add(kind="bad_gateway", route="reserve-appointment/", times=None)
    with pytest.raises(MTAServerError):
        await client.reserve_appointment(
            office_id=FUEHRERSCHEIN,
            services=[UMSCHREIBUNG],
            timestamp=calendar.slots[0],
        )
    assert rule.hits == 1
    assert sim.stats.reservations == 0


async def test_hang_times_out(server: SimulatorServer, sim: Simulator) -> None:
    sim.faults.add(kind="hang", route="offices-and-services/", times=None, delay=30)
    async with MTAClient(
        base_url=server.base_url,
        request_timeout=0.3,
        retry=RetryPolicy(max_tries=2, base_delay=0.01, max_delay=0.01),
    ) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(MTATimeoutError):
            await client.get_catalogue()
    assert asyncio.get_running_loop().time() - started < 5


async def test_connection_reset(client: MTAClient, sim: Simulator) -> None:
    rule = sim.faults.add(kind="reset", route="offices-and-services/", times=None)
    with pytest.raises(MTAConnectionError) as caught:
        await client.get_catalogue()
    assert not isinstance(caught.value, MTATimeoutError)
    # Connection errors of a GET are retried (aiohttp may add its own retry
    # of a reused keep-alive connection).
    assert rule.hits >= client.retry.max_tries


async def test_malformed_json(client: MTAClient, sim: Simulator) -> None:
    sim.faults.add(kind="malformed_json", route="offices-and-services/")
    with pytest.raises(MTAInvalidResponseError):
        await client.get_catalogue()


async def test_unknown_new_fields_are_still_parsed(
    client: MTAClient, sim: Simulator
) -> None:
    plain = await client.get_catalogue()
    sim.faults.add(kind="extra_fields", route="offices-and-services/")
    sim.faults.add(kind="extra_fields", route="available-calendar/")
    widened = await client.get_catalogue(refresh=True)
    assert isinstance(widened, Catalogue)
    assert widened == plain
    calendar = await client.get_available_calendar(
        office_ids=[FUEHRERSCHEIN], services=[UMSCHREIBUNG]
    )
    assert calendar.slots
    assert sim.stats.faults["extra_fields"] == 2
