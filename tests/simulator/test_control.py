"""The control surface under /_simulator/, over real localhost HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import aiohttp
import pytest

from mta_client.clock import ScaledClock
from mta_client.simulator import Simulator, SimulatorServer, parse_link

from .conftest import START, Api, at
from .test_routes import assert_error

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

OFFICE, SERVICE = 102522, 1063441  # Bürgerbüro Orleansplatz, Personalausweis
SLOT = at("2026-11-24", 9)
PERSON = {"familyName": "Muster", "email": "erika@example.org"}


class Control:
    """JSON calls to the control surface of a served simulator."""

    def __init__(self, session: aiohttp.ClientSession, root: str) -> None:
        self.session = session
        self.root = root  # http://127.0.0.1:PORT/_simulator/

    async def call(
        self, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.root + path, json=body, params=params
        ) as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()


@pytest.fixture(name="served")
async def served_fixture(
    make_sim: Callable[..., Simulator], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Api, Control]]:
    # Parametrize indirectly with a rate limit to reach the limiter.
    sim = make_sim(control=True, rate_limit=getattr(request, "param", 10_000))
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        root = server.base_url.split("/buergeransicht/")[0] + "/_simulator/"
        yield Api(session, server.base_url, sim), Control(session, root)


async def _preconfirmed(api: Api) -> dict[str, Any]:
    status, process = await api.reserve(OFFICE, SERVICE, SLOT)
    assert status == 200, process
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    assert (await api.post("update-appointment/", {**creds, **PERSON}))[0] == 200
    assert (await api.post("preconfirm-appointment/", creds))[0] == 200
    return cast("dict[str, Any]", process)


async def test_index_lists_the_paths(served: tuple[Api, Control]) -> None:
    _, control = served
    status, body = await control.call("GET", "")
    assert status == 200
    assert set(body["paths"]) == {
        "/_simulator/",
        "/_simulator/outbox",
        "/_simulator/faults",
        "/_simulator/stats",
        "/_simulator/bookings",
        "/_simulator/slots",
        "/_simulator/time",
    }


async def test_outbox_has_the_activation_link(served: tuple[Api, Control]) -> None:
    api, control = served
    process = await _preconfirmed(api)
    status, body = await control.call("GET", "outbox", to="Erika@Example.org")
    assert status == 200
    (mail,) = body["mails"]
    assert mail["kind"] == "preconfirmation"
    assert mail["process_id"] == process["processId"]
    assert parse_link(mail["link"]) == (process["processId"], process["authKey"])
    assert mail["link"] in mail["body"]
    _, none = await control.call("GET", "outbox", kind="cancellation")
    assert none == {"mails": []}


async def test_faults_inject_list_and_clear(served: tuple[Api, Control]) -> None:
    api, control = served
    rule = {"kind": "maintenance", "route": "offices-and-services/", "times": 2}
    status, body = await control.call("POST", "faults", rule)
    assert status == 201
    assert body["fault"] == {
        "kind": "maintenance",
        "route": "offices-and-services/",
        "method": None,
        "times": 2,
        "probability": 1.0,
        "status": None,
        "delay": None,
        "hits": 0,
    }
    status, city, _ = await api.get("offices-and-services/")
    assert status == 503
    assert_error(city, "serviceUnavailable")
    _, listed = await control.call("GET", "faults")
    assert [(r["kind"], r["times"], r["hits"]) for r in listed["faults"]] == [
        ("maintenance", 1, 1)
    ]
    assert "html_block" in listed["kinds"]
    assert await control.call("DELETE", "faults") == (200, {"cleared": 1})
    assert (await api.get("offices-and-services/"))[0] == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "nope"}, "unknown fault kind"),
        ({}, "kind is required"),
        ({"kind": "slow", "delay": "long"}, "delay must be a number"),
        ({"kind": "slow", "colour": "red"}, "unknown fields: colour"),
        ([1], "must be a JSON object"),
    ],
)
async def test_bad_fault_bodies(
    served: tuple[Api, Control], body: Any, message: str
) -> None:
    _, control = served
    status, answer = await control.call("POST", "faults", body)
    assert status == 400
    assert message in answer["error"]


@pytest.mark.parametrize("served", [5], indirect=True)
async def test_stats_count_routes_429s_and_bookings(
    served: tuple[Api, Control],
) -> None:
    api, control = served
    await _preconfirmed(api)  # 5 requests: challenge, verify, reserve, update, pre
    assert (await api.get("offices-and-services/"))[0] == 429
    for _ in range(3):  # control calls are never limited nor counted
        status, stats = await control.call("GET", "stats")
        assert status == 200
    assert stats["requests_by_route"] == {
        "captcha-challenge/": 1,
        "captcha-verify/": 1,
        "reserve-appointment/": 1,
        "update-appointment/": 1,
        "preconfirm-appointment/": 1,
    }
    assert stats["rate_limited"] == 1
    assert stats["rate_limited_by_ip"] == {"127.0.0.1": 1}
    assert stats["reservations"] == 1
    assert stats["bookings"] == {"preconfirmed": 1}


async def test_bookings_list_and_actions(served: tuple[Api, Control]) -> None:
    api, control = served
    process = await _preconfirmed(api)
    status, body = await control.call("GET", "bookings")
    assert status == 200
    (booking,) = body["bookings"]
    assert booking["process_id"] == process["processId"]
    assert booking["auth_key"] == process["authKey"]
    assert booking["status"] == "preconfirmed"
    assert booking["services"] == [{"service_id": SERVICE, "count": 1}]
    assert booking["start"] == "2026-11-24T09:00:00+01:00"
    assert booking["email"] == "erika@example.org"

    pid = process["processId"]
    status, body = await control.call(
        "POST", "bookings", {"process_id": pid, "action": "confirm"}
    )
    assert status == 200
    assert body["booking"]["status"] == "confirmed"
    # The city's API sees the same state.
    creds = {"processId": pid, "authKey": process["authKey"]}
    assert (await api.get("appointment/", creds))[1]["status"] == "confirmed"
    status, body = await control.call(
        "POST", "bookings", {"process_id": pid, "action": "expire"}
    )
    assert status == 409
    status, body = await control.call(
        "POST", "bookings", {"process_id": pid, "action": "cancel"}
    )
    assert (status, body["booking"]["status"]) == (200, "deleted")
    assert (await control.call("GET", "bookings", status="confirmed"))[1] == {
        "bookings": []
    }
    status, body = await control.call(
        "POST", "bookings", {"process_id": 1, "action": "confirm"}
    )
    assert status == 404
    status, body = await control.call(
        "POST", "bookings", {"process_id": pid, "action": "explode"}
    )
    assert status == 400


async def test_expire_a_reservation_frees_its_slot(
    served: tuple[Api, Control],
) -> None:
    api, control = served
    status, process = await api.reserve(OFFICE, SERVICE, SLOT)
    assert status == 200
    assert SLOT not in api.sim.bookable_times(OFFICE, [SERVICE])
    status, _ = await control.call(
        "POST", "bookings", {"process_id": process["processId"], "action": "expire"}
    )
    assert status == 200
    assert SLOT in api.sim.bookable_times(OFFICE, [SERVICE])
    assert (await control.call("GET", "stats"))[1]["expired_reservations"] == 1


async def test_a_refused_action_carries_the_citys_errors(
    served: tuple[Api, Control], sim_clock: Any
) -> None:
    api, control = served
    process = await _preconfirmed(api)
    await control.call(
        "POST", "bookings", {"process_id": process["processId"], "action": "confirm"}
    )
    sim_clock.advance(SLOT - START + 60)  # the appointment is in the past
    status, body = await control.call(
        "POST", "bookings", {"process_id": process["processId"], "action": "cancel"}
    )
    assert status == 409
    assert body["errors"][0]["errorCode"] == "appointmentCanNotBeCanceled"


async def test_release_slots(served: tuple[Api, Control]) -> None:
    _, control = served
    start = at("2026-11-30", 11)
    status, body = await control.call(
        "POST", "slots", {"office_id": 10308174, "start": start, "minutes": 40}
    )
    assert status == 200
    assert body == {"released": [start, start + 1200]}
    assert (await control.call("POST", "slots", {"office_id": 1, "start": start}))[
        0
    ] == 404


async def test_time_is_the_simulated_time(served: tuple[Api, Control]) -> None:
    _, control = served
    status, body = await control.call("GET", "time")
    assert status == 200
    assert body == {
        "time": START,
        "iso": "2026-11-23T10:00:00+01:00",
        "utc": "2026-11-23T09:00:00Z",
        "speed": 1.0,
    }


async def test_time_in_speed_mode() -> None:
    sim = Simulator(scenario="quiet", control=True, clock=ScaledClock(speed=60.0))
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        root = server.base_url.split("/buergeransicht/")[0]
        async with session.get(root + "/_simulator/time") as response:
            body = await response.json()
    assert body["speed"] == 60.0
    assert abs(body["time"] - sim.clock.time()) < 60


async def test_unknown_path_and_method(served: tuple[Api, Control]) -> None:
    _, control = served
    status, body = await control.call("GET", "nothing")
    assert status == 404
    assert "/_simulator/outbox" in body["paths"]
    status, body = await control.call("DELETE", "outbox")
    assert status == 405
    assert body["allowed"] == ["GET"]


async def test_off_by_default_answers_the_citys_not_found(api: Api) -> None:
    root = api.base.split("/buergeransicht/")[0]
    for method, path in [
        ("GET", "/_simulator/outbox"),
        ("POST", "/_simulator/faults"),
        ("GET", "/_simulator/"),
        ("GET", "/_simulator"),
    ]:
        async with api.session.request(method, root + path, json={}) as response:
            assert response.status == 404
            body = await response.json()
        assert_error(body, "notFound")
