"""Fault injection."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import aiohttp
import pytest

from mta_client.simulator import FAULT_KINDS

from .conftest import at
from .test_routes import assert_error

if TYPE_CHECKING:
    from .conftest import Api

ROUTE = "offices-and-services/"


async def test_unknown_kind(api: Api) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        api.sim.faults.add(kind="nope")
    assert "html_block" in FAULT_KINDS


async def test_html_block_once(api: Api) -> None:
    api.sim.faults.add(route="available-calendar/", kind="html_block", times=1)
    assert (await api.get(ROUTE))[0] == 200  # other route untouched
    status, body, resp = await api.get("available-calendar/")
    assert status == 403
    assert resp.content_type == "text/html"
    assert "Request Rejected" in body
    assert (await api.get("available-calendar/"))[0] == 400  # back to normal
    assert api.sim.stats.faults["html_block"] == 1
    assert api.sim.stats.requests_by_ip["127.0.0.1"] == 2  # the fault was not counted


async def test_error_kinds(api: Api) -> None:
    faults = api.sim.faults
    faults.add(kind="server_error", route=ROUTE)
    status, body, _ = await api.get(ROUTE)
    assert (status, body) == (
        500,
        {"error": {"message": "An internal error has occurred.", "code": 500}},
    )
    faults.add(kind="bad_gateway", route=ROUTE, status=504)
    status, body, _ = await api.get(ROUTE)
    assert status == 504
    assert "<html>" in body
    faults.add(kind="maintenance")
    status, body, _ = await api.get(ROUTE)
    assert status == 503
    assert_error(body, "serviceUnavailable")
    faults.add(kind="rate_limit")
    status, body, resp = await api.get(ROUTE)
    assert status == 429
    assert "X-RateLimit-Limit" not in resp.headers
    assert_error(body, "rateLimitExceeded")


async def test_malformed_json(api: Api) -> None:
    api.sim.faults.add(kind="malformed_json", route=ROUTE)
    async with api.session.get(api.base + ROUTE) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            await resp.json()


async def test_extra_fields(api: Api) -> None:
    api.sim.faults.add(kind="extra_fields", route=ROUTE, times=None)
    status, body, resp = await api.get(ROUTE)
    assert status == 200
    assert body["simulatorUnknownField"]
    assert body["offices"][0]["simulatorUnknownField"]
    assert body["offices"][0]["id"] == 10489
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_probability_and_method(api: Api) -> None:
    rule = api.sim.faults.add(
        kind="server_error", probability=0.5, times=None, method="POST"
    )
    assert (await api.get(ROUTE))[0] == 200
    statuses = [(await api.post("update-appointment/", raw=b""))[0] for _ in range(20)]
    assert set(statuses) == {400, 500}
    assert rule.hits == statuses.count(500)
    api.sim.faults.clear()
    assert (await api.post("update-appointment/", raw=b""))[0] == 400


async def test_slow_and_hang(api: Api, sim_clock) -> None:
    api.sim.faults.add(kind="slow", delay=0.05)
    assert (await api.get(ROUTE))[0] == 200
    api.sim.faults.add(kind="hang")
    with pytest.raises(asyncio.TimeoutError):
        await api.session.get(
            api.base + ROUTE, timeout=aiohttp.ClientTimeout(total=0.2)
        )
    assert api.sim.stats.faults == {"slow": 1, "hang": 1}


async def test_a_slow_answer_is_carried_out_after_the_client_left(api: Api) -> None:
    """The backend behind the gateway finishes a request whose client gave up."""
    status, process = await api.reserve(102522, 1063441, at("2026-11-24", 9))
    assert status == 200
    api.sim.faults.add(kind="slow", route="cancel-appointment/", delay=0.3)
    credentials = {"processId": process["processId"], "authKey": process["authKey"]}
    with pytest.raises(asyncio.TimeoutError):
        await api.session.post(
            api.base + "cancel-appointment/",
            json=credentials,
            timeout=aiohttp.ClientTimeout(total=0.05),
        )
    stored = api.sim.bookings.processes[process["processId"]]
    assert stored.status == "reserved"  # not yet
    await asyncio.sleep(0.5)
    assert stored.status == "deleted"
    assert api.sim.stats.cancellations == 1


async def test_reset(api: Api) -> None:
    api.sim.faults.add(kind="reset")
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", int(api.base.split(":")[2].split("/")[0])
    )
    writer.write(
        b"GET /buergeransicht/api/citizen/"
        + ROUTE.encode()
        + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    await writer.drain()
    with pytest.raises(ConnectionResetError):
        await reader.read()
    writer.close()
    assert (await api.get(ROUTE))[0] == 200
