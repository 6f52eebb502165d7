"""Fixtures of the simulator tests: a controllable clock and a live server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2026-11-23, 10:00 in Munich.
START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN).timestamp()


def at(day: str, hour: int, minute: int = 0) -> int:
    """Unix time of a local Munich wall-clock time."""
    d = dt.date.fromisoformat(day)
    return int(dt.datetime.combine(d, dt.time(hour, minute), tzinfo=BERLIN).timestamp())


class SimClock:
    """A clock that only moves when told."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def solve_v2(challenge: dict[str, Any]) -> dict[str, Any]:
    """A tiny ALTCHA v2 solver (SHA-256 iterated, uint32 counter), per docs §4."""
    p = challenge["parameters"]
    nonce, salt = bytes.fromhex(p["nonce"]), bytes.fromhex(p["salt"])
    counter = 0
    while True:
        key = salt + nonce + counter.to_bytes(4, "big")
        for _ in range(p["cost"]):
            key = hashlib.sha256(key).digest()
        derived = key[: p["keyLength"]].hex()
        if derived.startswith(p["keyPrefix"]):
            return {"counter": counter, "derivedKey": derived, "time": 1}
        counter += 1


def solve_v1(challenge: dict[str, Any]) -> dict[str, Any]:
    """Find n with sha256(salt + str(n)) == challenge (ALTCHA v1)."""
    for n in range(challenge["maxnumber"] + 1):
        digest = hashlib.sha256(f"{challenge['salt']}{n}".encode()).hexdigest()
        if digest == challenge["challenge"]:
            return {
                "algorithm": challenge["algorithm"],
                "challenge": challenge["challenge"],
                "number": n,
                "salt": challenge["salt"],
                "signature": challenge["signature"],
            }
    raise AssertionError("unsolvable")


def encode_payload(data: dict[str, Any], *, urlsafe: bool = False) -> str:
    raw = json.dumps(data).encode()
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()


class Api:
    """A thin HTTP helper around a running simulator."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, sim: Simulator
    ) -> None:
        self.session = session
        self.base = base_url
        self.sim = sim

    async def get(
        self, route: str, params: dict[str, Any] | None = None, *, ip: str | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"X-Forwarded-For": ip} if ip else {}
        async with self.session.get(
            self.base + route, params=params, headers=headers
        ) as r:
            return r.status, await _body(r), r

    async def post(
        self,
        route: str,
        body: Any = None,
        *,
        ip: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"X-Forwarded-For": ip} if ip else {}
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.session.post(self.base + route, headers=headers, **kwargs) as r:
            return r.status, await _body(r), r

    async def token(self, ip: str | None = None) -> str:
        _, challenge, _ = await self.get("captcha-challenge/", ip=ip)
        payload = encode_payload(
            {"challenge": challenge, "solution": solve_v2(challenge)}
        )
        status, body, _ = await self.post(
            "captcha-verify/", {"payload": payload}, ip=ip
        )
        assert status == 200
        assert body["meta"]["success"] is True, body
        return str(body["token"])

    async def reserve(
        self,
        office_id: int,
        service_id: int,
        timestamp: int,
        *,
        ip: str | None = None,
        count: int = 1,
    ) -> tuple[int, Any]:
        token = await self.token(ip)
        body = {
            "timestamp": timestamp,
            "officeId": office_id,
            "serviceId": [service_id],
            "serviceCount": [count],
            "captchaToken": token,
        }
        status, data, _ = await self.post("reserve-appointment/", body, ip=ip)
        return status, data


async def _body(r: aiohttp.ClientResponse) -> Any:
    text = await r.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """The simulator serves real HTTP on 127.0.0.1 (connections stay local)."""


@pytest.fixture(name="sim_clock")
def sim_clock_fixture() -> SimClock:
    return SimClock()


@pytest.fixture(name="make_sim")
def make_sim_fixture(sim_clock: SimClock) -> Callable[..., Simulator]:
    def make(**kwargs: Any) -> Simulator:
        kwargs.setdefault("clock", sim_clock)
        kwargs.setdefault("scenario", "fixed")
        kwargs.setdefault("captcha", CaptchaConfig(cost=5))
        kwargs.setdefault("rate_limit", 10_000)
        return Simulator(**kwargs)

    return make


@pytest.fixture(name="sim")
def sim_fixture(make_sim: Callable[..., Simulator]) -> Simulator:
    return make_sim()


@pytest.fixture(name="api")
async def api_fixture(sim: Simulator) -> AsyncIterator[Api]:
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        yield Api(session, server.base_url, sim)


@pytest.fixture(name="serve_sim")
async def serve_sim_fixture() -> AsyncIterator[Callable[[Simulator], Any]]:
    """Serve any simulator; yields an async factory returning an Api."""
    stack: list[tuple[SimulatorServer, aiohttp.ClientSession]] = []

    async def start(sim: Simulator) -> Api:
        server = SimulatorServer(sim)
        await server.start()
        session = aiohttp.ClientSession()
        stack.append((server, session))
        return Api(session, server.base_url, sim)

    yield start
    for server, session in stack:
        await session.close()
        await server.close()
