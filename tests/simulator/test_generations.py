"""API generations: a muc45 simulator serves only the legacy availability routes,
and the client (and ``mta``) report it as a server of an older API generation."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import pytest

from mta_client import (
    MTAClient,
    MTAOutdatedAPIError,
    MTAProtocolError,
    RequestBudget,
    RetryPolicy,
)
from mta_client.cli.exitcodes import ExitCode
from mta_client.simulator import API_GENERATIONS, Simulator, SimulatorServer

from .conftest import at
from .test_routes import assert_error

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import Api

FUEHRERSCHEIN, SERVICE = 10308174, 1071896  # no captcha needed
DAYS = {
    "startDate": "2026-11-23",
    "endDate": "2027-01-31",
    "officeId": str(FUEHRERSCHEIN),
    "serviceId": str(SERVICE),
    "serviceCount": "1",
}


@pytest.fixture(name="legacy")
async def legacy_fixture(
    make_sim: Callable[..., Simulator], serve_sim: Callable[[Simulator], Any]
) -> Api:
    sim = make_sim(api_generation="muc45", scenario="quiet")
    sim.release_slot(FUEHRERSCHEIN, at("2026-11-25", 9), minutes=30)
    sim.release_slot(FUEHRERSCHEIN, at("2026-12-02", 14), minutes=15)
    api: Api = await serve_sim(sim)
    return api


def test_generations_are_named() -> None:
    assert set(API_GENERATIONS) == {"muc47", "muc45"}
    with pytest.raises(ValueError, match="unknown api_generation"):
        Simulator(api_generation="muc99")


async def test_muc45_has_no_calendar(legacy: Api) -> None:
    status, body, _ = await legacy.get(
        "available-calendar/",
        {
            "startDate": "2026-11-23",
            "endDate": "2027-01-31",
            "officeIds": str(FUEHRERSCHEIN),
            "serviceIds": str(SERVICE),
            "serviceCounts": "1",
        },
    )
    assert status == 404
    assert_error(body, "notFound")
    # The catalogue and the booking routes are still there.
    status, _, _ = await legacy.get("offices-and-services/")
    assert status == 200


async def test_muc45_available_days_by_office(legacy: Api) -> None:
    status, body, _ = await legacy.get("available-days-by-office/", DAYS)
    assert status == 200
    assert body == {
        "availableDays": [
            {"time": "2026-11-25", "providerIDs": str(FUEHRERSCHEIN)},
            {"time": "2026-12-02", "providerIDs": str(FUEHRERSCHEIN)},
        ]
    }
    # Until muc45 the routes without the trailing slash answered too.
    status, same, _ = await legacy.get("available-days-by-office", DAYS)
    assert (status, same) == (200, body)
    status, plain, _ = await legacy.get("available-days/", DAYS)
    assert plain == {"availableDays": ["2026-11-25", "2026-12-02"]}
    status, body, _ = await legacy.get(
        "available-days-by-office/", {**DAYS, "endDate": "2026-11-24"}
    )
    assert status == 404
    assert_error(body, "noAppointmentForThisDay")


async def test_muc45_available_appointments_by_office(legacy: Api) -> None:
    query = {k: v for k, v in DAYS.items() if not k.endswith("Date")}
    status, body, _ = await legacy.get(
        "available-appointments-by-office/", {**query, "date": "2026-11-25"}
    )
    assert status == 200
    assert body == {
        "offices": [
            {
                # A JSON number here, unlike today's calendar.
                "officeId": FUEHRERSCHEIN,
                "appointments": [at("2026-11-25", 9), at("2026-11-25", 9, 20)],
            }
        ]
    }
    status, plain, _ = await legacy.get(
        "available-appointments/", {**query, "date": "2026-12-02"}
    )
    assert plain == {"appointmentTimestamps": [at("2026-12-02", 14)]}
    status, body, _ = await legacy.get(
        "available-appointments-by-office/", {**query, "date": "2026-11-26"}
    )
    assert status == 404
    assert_error(body, "appointmentNotAvailable")
    status, body, _ = await legacy.get(
        "available-appointments-by-office/", {**query, "date": "26.11.2026"}
    )
    assert status == 400
    assert_error(body, "invalidDate")


async def test_muc45_checks_offices_and_services(legacy: Api) -> None:
    status, body, _ = await legacy.get(
        "available-days-by-office/", {**DAYS, "officeId": "10489"}
    )
    assert status == 400
    assert_error(body, "invalidLocationAndServiceCombination")
    status, body, _ = await legacy.get(
        "available-days-by-office/", {**DAYS, "officeId": "x", "serviceCount": "1,1"}
    )
    assert status == 400
    assert_error(body, "invalidOfficeId", "invalidServiceCount")


async def test_current_generation_has_no_legacy_routes(api: Api) -> None:
    for route in ("available-days-by-office/", "available-appointments-by-office/"):
        status, body, _ = await api.get(route, DAYS)
        assert status == 404
        assert_error(body, "notFound")


async def test_client_reports_an_older_api_generation(legacy: Api) -> None:
    client = MTAClient(
        base_url=legacy.base,
        budget=RequestBudget(clock=legacy.sim.clock),
        retry=RetryPolicy(max_tries=1),
    )
    async with client:
        catalogue = await client.get_catalogue()
        assert catalogue.offices
        with pytest.raises(MTAOutdatedAPIError) as excinfo:
            await client.get_available_calendar(
                office_ids=[FUEHRERSCHEIN], services={SERVICE: 1}
            )
    error = excinfo.value
    assert isinstance(error, MTAProtocolError)
    assert (error.status, error.error_code) == (404, "notFound")
    assert "older API generation" in str(error)
    # One calendar request, no probing of other routes.
    assert legacy.sim.stats.requests_by_route == {"offices-and-services/": 1}


async def test_mta_slots_exits_13_against_a_muc45_server(
    make_sim: Callable[..., Simulator],
) -> None:
    sim = make_sim(api_generation="muc45", clock=None)
    async with SimulatorServer(sim) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mta_client",
            "slots",
            "--service",
            str(SERVICE),
            "--office",
            str(FUEHRERSCHEIN),
            "--base-url",
            server.base_url,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    # The member, and its number (cast: a literal member vs. a literal int).
    assert process.returncode == cast("int", ExitCode.OUTDATED_API) == 13
    assert "older API generation" in err.decode()
    assert '"kind": "outdated_api"' in out.decode()


async def test_muc45_counts_routes_with_their_slash(legacy: Api) -> None:
    # Counting the legacy route under its own name (slashless counted with /).
    await legacy.get("available-days-by-office", DAYS)
    assert legacy.sim.stats.requests_by_route["available-days-by-office/"] == 1
    async with aiohttp.ClientSession() as session:
        url = legacy.base + "available-days/"
        async with session.post(url, json={}) as response:
            assert response.status == 404
