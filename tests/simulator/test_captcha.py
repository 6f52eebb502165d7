"""Captcha challenge, verification and token."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

from mta_client.simulator import CaptchaConfig
from mta_client.simulator.captcha import decode_jwt, encode_jwt

from .conftest import Api, encode_payload, solve_v1, solve_v2
from .test_routes import assert_error

CAL = {
    "startDate": "2026-11-23",
    "endDate": "2026-12-31",
    "officeIds": "102522",
    "serviceIds": "1063441",
    "serviceCounts": "1",
}


async def test_v2_challenge_shape_and_verify(api: Api) -> None:
    status, challenge, _ = await api.get("captcha-challenge/")
    assert status == 200
    assert set(challenge) == {"parameters", "signature"}
    params = challenge["parameters"]
    assert params["algorithm"] == "SHA-256"
    assert params["cost"] == 5
    assert params["keyPrefix"] == "00"
    assert params["keyLength"] == 32
    assert params["keySignature"] is None
    assert params["data"] is None
    assert params["expiresAt"] == int(api.sim.clock.time()) + 600
    payload = encode_payload({"challenge": challenge, "solution": solve_v2(challenge)})
    status, body, _ = await api.post("captcha-verify/", {"payload": payload})
    assert status == 200
    assert body["meta"] == {"success": True}
    assert body["data"]["valid"] is True
    claims = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    now = int(api.sim.clock.time())
    assert claims == {"ip": "127.0.0.1", "iat": now, "exp": now + 300}
    assert api.sim.stats.captcha_challenges == 1
    assert api.sim.stats.captcha_verifies == 1


async def test_altcha_default_cost(make_sim, serve_sim) -> None:
    api = await serve_sim(make_sim(captcha=None))
    _, challenge, _ = await api.get("captcha-challenge/")
    assert challenge["parameters"]["cost"] == 1000


async def test_url_safe_payload(api: Api) -> None:
    for _ in range(8):  # some payloads contain '+' or '/' in standard base64
        _, challenge, _ = await api.get("captcha-challenge/")
        data = {"challenge": challenge, "solution": solve_v2(challenge)}
        payload = encode_payload(data, urlsafe=True).rstrip("=")
        _, body, _ = await api.post("captcha-verify/", {"payload": payload})
        assert body["meta"]["success"] is True


async def test_verify_failures(api: Api) -> None:
    async def verify(body: object) -> dict[str, Any]:
        status, answer, _ = await api.post("captcha-verify/", body)
        assert status == 200
        return cast("dict[str, Any]", answer)

    assert await verify({}) == {
        "meta": {"success": False, "error": "No payload provided"},
        "data": None,
    }
    assert (await verify({"payload": "%%%"}))["meta"][
        "error"
    ] == "Payload could not be decoded"
    bad_json = base64.b64encode(b"{nope").decode()
    assert (await verify({"payload": bad_json}))["meta"][
        "error"
    ] == "Invalid JSON in payload"
    _, challenge, _ = await api.get("captcha-challenge/")
    solution = solve_v2(challenge)
    wrong = {**solution, "counter": solution["counter"] + 1}
    answer = await verify(
        {"payload": encode_payload({"challenge": challenge, "solution": wrong})}
    )
    assert answer["meta"] == {"success": False, "error": "Captcha verification failed"}
    assert "token" not in answer
    tampered = {**challenge, "parameters": {**challenge["parameters"], "cost": 1}}
    answer = await verify(
        {"payload": encode_payload({"challenge": tampered, "solution": solution})}
    )
    assert answer["meta"]["success"] is False
    status, body, _ = await api.post("captcha-verify/", raw=b"")
    assert status == 400
    assert_error(body, "invalidRequest")


async def test_expired_challenge(api: Api, sim_clock) -> None:
    _, challenge, _ = await api.get("captcha-challenge/")
    sim_clock.advance(601)
    payload = encode_payload({"challenge": challenge, "solution": solve_v2(challenge)})
    _, body, _ = await api.post("captcha-verify/", {"payload": payload})
    assert body["meta"]["error"] == "Captcha verification failed"


async def test_token_ip_binding_and_expiry(api: Api, sim_clock) -> None:
    token = await api.token(ip="192.0.2.1")
    status, _, _ = await api.get(
        "available-calendar/", {**CAL, "captchaToken": token}, ip="192.0.2.1"
    )
    assert status == 200
    status, body, _ = await api.get(
        "available-calendar/", {**CAL, "captchaToken": token}, ip="192.0.2.2"
    )
    assert status == 400
    assert_error(body, "captchaInvalid")
    sim_clock.advance(299)
    status, _, _ = await api.get(
        "available-calendar/", {**CAL, "captchaToken": token}, ip="192.0.2.1"
    )
    assert status == 200  # reusable until it expires
    sim_clock.advance(1)
    status, body, _ = await api.get(
        "available-calendar/", {**CAL, "captchaToken": token}, ip="192.0.2.1"
    )
    assert_error(body, "captchaExpired")


async def test_token_signature(api: Api) -> None:
    foreign = encode_jwt({"ip": "127.0.0.1", "iat": 0, "exp": 2**40}, b"other secret")
    _, body, _ = await api.get("available-calendar/", {**CAL, "captchaToken": foreign})
    assert_error(body, "captchaInvalid")
    token = await api.token()
    header, claims, signature = token.split(".")
    assert decode_jwt(token, api.sim.captcha._secret)["ip"] == "127.0.0.1"
    forged = f"{header}.{claims}x.{signature}"
    _, body, _ = await api.get("available-calendar/", {**CAL, "captchaToken": forged})
    assert_error(body, "captchaInvalid")


async def test_upstream_failure_shape(api: Api) -> None:
    api.sim.faults.add(kind="captcha_upstream", route="captcha-challenge/")
    status, body, _ = await api.get("captcha-challenge/")
    assert status == 200
    assert body["meta"]["success"] is False
    assert body["data"] is None


async def test_v1_challenges(make_sim, serve_sim) -> None:
    api = await serve_sim(make_sim(captcha=CaptchaConfig(version=1, max_number=2000)))
    _, challenge, _ = await api.get("captcha-challenge/")
    assert set(challenge) == {
        "algorithm",
        "challenge",
        "maxnumber",
        "salt",
        "signature",
    }
    assert "expires=" in challenge["salt"]
    _status, body, _ = await api.post(
        "captcha-verify/", {"payload": encode_payload(solve_v1(challenge))}
    )
    assert body["meta"]["success"] is True
    assert body["token"]
    wrong = {**solve_v1(challenge), "number": -1}
    _, body, _ = await api.post("captcha-verify/", {"payload": encode_payload(wrong)})
    assert body["meta"]["success"] is False
