"""Routes, shapes and the middleware stack."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import aiohttp

from mta_client.simulator import Simulator, SimulatorServer, serve
from mta_client.simulator.app import SECURITY_HEADERS
from mta_client.simulator.errors import CITY_ERRORS, UNKNOWN_ERROR

if TYPE_CHECKING:
    from .conftest import Api


def assert_error(body: dict[str, Any], *codes: str) -> None:
    assert [e["errorCode"] for e in body["errors"]] == list(codes)
    for entry in body["errors"]:
        assert entry == CITY_ERRORS.get(entry["errorCode"], UNKNOWN_ERROR).to_json()


async def test_offices_and_services_shape(api: Api) -> None:
    status, body, resp = await api.get("offices-and-services/")
    assert status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert set(body) == {"offices", "services", "relations"}
    offices = {o["id"]: o for o in body["offices"]}
    assert {10489, 10502, 10503, 102522, 54261, 102526, 102523, 102524} <= set(offices)
    assert {10461, 10187259, 54287, 10308174, 10308013, 10471} <= set(offices)
    rupp = offices[10489]
    assert rupp["disabledByServices"] == [1063441, 1063453, 1080582]
    assert rupp["allowDisabledServicesMix"] == [10489, 10491, 10500, 10502]
    assert rupp["sharedBookingOfficeIds"] == [10489, 10503, 10500, 10491]
    assert rupp["geo"] == {"lat": "48.124681688670854", "lon": "11.549865797138638"}
    assert set(rupp["address"]) == {
        "street",
        "house_number",
        "postal_code",
        "city",
        "hint",
    }
    scope = rupp["scope"]
    assert scope["id"] == 160
    assert scope["provider"]["id"] == "10489"
    assert isinstance(scope["provider"]["lat"], float)
    assert scope["captchaActivatedRequired"] is True
    assert scope["reservationDuration"] == 15
    assert scope["activationDuration"] == 30
    assert scope["appointmentsPerMail"] == "2"
    assert "7 und 8 Uhr" in scope["infoForAllAppointments"]
    assert offices[10308174]["scope"]["captchaActivatedRequired"] is False
    services = {s["id"]: s for s in body["services"]}
    assert services[1063441]["name"] == "Personalausweis"
    assert services[1063441]["maxQuantity"] == 2
    assert services[1063441]["combinable"]["1"] == {
        "1063441": [10489, 102522, 54261, 102526, 102523, 102524, 10502]
    }
    relations = {(r["officeId"], r["serviceId"]): r for r in body["relations"]}
    assert relations[10489, 1063441]["slots"] == 3
    assert relations[10502, 1063441]["slots"] == 1
    assert relations[10489, 10224132]["slots"] == 6
    assert relations[102522, 10224132] == {
        "officeId": 102522,
        "serviceId": 10224132,
        "slots": 4,
        "public": True,
        "maxQuantity": 3,
    }


async def test_security_and_rate_limit_headers(api: Api) -> None:
    _, _, resp = await api.get("captcha-details/")
    for key, value in SECURITY_HEADERS.items():
        assert resp.headers[key] == value
    assert resp.headers["X-RateLimit-Limit"] == "10000"


async def test_captcha_details(api: Api) -> None:
    status, body, _ = await api.get("captcha-details/")
    assert status == 200
    assert set(body) == {
        "siteKey",
        "captchaChallenge",
        "captchaVerify",
        "captchaEnabled",
    }
    assert body["captchaEnabled"] is True


async def test_my_appointments_without_login(api: Api) -> None:
    status, body, _ = await api.get("my-appointments/")
    assert status == 401
    assert_error(body, "authKeyMismatch")


async def test_unknown_slashless_and_wrong_method_are_not_found(api: Api) -> None:
    for route in ("nope/", "offices-and-services", "available-days/", "offices/"):
        status, body, _ = await api.get(route)
        assert status == 404
        assert_error(body, "notFound")
    status, body, _ = await api.get("reserve-appointment/")
    assert status == 404
    assert_error(body, "notFound")
    status, body, _ = await api.post("offices-and-services/", {})
    assert status == 404


async def test_post_without_json_body(api: Api) -> None:
    for raw in (b"", b"not json", b"[1, 2]"):
        status, body, _ = await api.post("update-appointment/", raw=raw)
        assert status == 400
        assert_error(body, "invalidRequest")


async def test_sanitizer_depth_and_size(api: Api) -> None:
    deep: object = 1
    for _ in range(12):
        deep = [deep]
    status, body, _ = await api.post("update-appointment/", {"x": deep})
    assert status == 500
    assert body == {
        "error": {"message": "An internal error has occurred.", "code": 500}
    }


async def test_request_too_large(make_sim, serve_sim) -> None:
    api = await serve_sim(make_sim(max_request_size=100))
    status, body, resp = await api.post("update-appointment/", {"x": "y" * 200})
    assert status == 413
    assert_error(body, "requestEntityTooLarge")
    assert "X-RateLimit-Limit" not in resp.headers


async def test_blacklist(make_sim, serve_sim) -> None:
    sim: Simulator = make_sim(blacklist=["10.1.0.0/16"])
    api = await serve_sim(sim)
    status, body, resp = await api.get("captcha-details/", ip="10.1.2.3")
    assert status == 403
    assert_error(body, "IP_BLACKLISTED")
    assert "X-RateLimit-Limit" not in resp.headers
    assert sim.stats.requests_by_ip["10.1.2.3"] == 0
    status, _, _ = await api.get("captcha-details/", ip="10.2.0.1")
    assert status == 200
    sim.blacklist.add("10.2.0.1")
    status, _, _ = await api.get("captcha-details/", ip="10.2.0.1")
    assert status == 403


async def test_maintenance(api: Api) -> None:
    api.sim.maintenance = True
    status, body, resp = await api.get("offices-and-services/")
    assert status == 503
    assert_error(body, "serviceUnavailable")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-RateLimit-Remaining"] == "9999"
    api.sim.maintenance = False
    status, _, _ = await api.get("offices-and-services/")
    assert status == 200


async def test_client_ip_headers(api: Api) -> None:
    await api.get("captcha-details/", ip="not-an-ip, 192.0.2.7")
    async with api.session.get(
        api.base + "captcha-details/", headers={"Client-IP": "198.51.100.1"}
    ):
        pass
    await api.get("captcha-details/")
    assert api.sim.stats.requests_by_ip == {
        "192.0.2.7": 1,
        "198.51.100.1": 1,
        "127.0.0.1": 1,
    }


async def test_server_base_url() -> None:
    async with SimulatorServer(Simulator(scenario="quiet")) as server:
        assert server.base_url.endswith("/buergeransicht/api/citizen/")
        assert server.port > 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.base_url + "offices-and-services/") as resp,
        ):
            assert resp.status == 200


async def test_serve_prints_url_and_runs_until_cancelled(capsys) -> None:

    task = asyncio.create_task(serve(port=0, scenario="quiet", speed=60))
    output = ""
    for _ in range(200):
        await asyncio.sleep(0.01)
        output += capsys.readouterr().out
        if "listening on" in output:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert "/buergeransicht/api/citizen/" in output


def test_altcha_is_imported_lazily() -> None:
    code = "import sys, mta_client.simulator; print('altcha' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
