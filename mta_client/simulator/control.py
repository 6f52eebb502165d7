"""The simulator's control surface: look inside the simulated city, and steer it.

Served on the simulator's own port under ``/_simulator/`` when asked for
(``Simulator(..., control=True)``, ``mta simulate --control``); otherwise
those paths are unknown paths like any other and answer the city's 404
``notFound``. Control requests bypass the city's middleware stack: they are
never rate limited, counted, blocked or hit by injected faults. JSON in,
JSON out; a failed control request answers ``{"error": "<text>"}`` with
400 (bad body), 404 (unknown path or booking), 405 (wrong method) or 409
(the city refused the action, with the city's ``errors`` alongside).

``GET /_simulator/``
    This list of paths.
``GET /_simulator/outbox``
    The mails the city sent, oldest first: ``{"mails": [{"to", "kind",
    "process_id", "subject", "body", "link", "sent_at"}]}``; ``kind`` is
    ``preconfirmation`` (``link`` is the activation link), ``confirmation``
    (the appointment link) or ``cancellation``. Filters: ``?to=ADDRESS``,
    ``?process_id=N``, ``?kind=KIND``.
``GET /_simulator/faults``
    ``{"faults": [rule…], "kinds": {kind: description}}``.
``POST /_simulator/faults``
    Inject a fault; body ``{"kind": …, "route": "available-calendar/" | null,
    "method": "GET" | null, "times": 1 | null, "probability": 1.0,
    "status": null, "delay": null}`` (only ``kind`` is required; see
    :data:`~mta_client.simulator.FAULT_KINDS`). Answers 201 ``{"fault":
    rule}``; a rule is ``{"kind", "route", "method", "times", "probability",
    "status", "delay", "hits"}``.
``DELETE /_simulator/faults``
    Clear every fault: ``{"cleared": N}``.
``GET /_simulator/stats``
    :meth:`~mta_client.simulator.SimulatorStats.as_dict` plus
    ``"rate_limited"`` (all 429 answers) and ``"bookings"`` (processes by
    status), e.g. ``{"requests_by_route": {"available-calendar/": 3}, …}``.
``GET /_simulator/bookings``
    The processes the city keeps, oldest first: ``{"bookings": [{"process_id",
    "auth_key", "status", "office_id", "services": [{"service_id",
    "count"}], "timestamp", "start", "reserved_at", "preconfirmed_at",
    "family_name", "email", "telephone"}]}``; ``start`` is ISO 8601 in
    Munich time. Filter: ``?status=reserved``.
``POST /_simulator/bookings``
    Act on a booking as someone outside the API would: body
    ``{"process_id": N, "action": "confirm" | "cancel" | "expire"}`` -
    the citizen clicks the activation link, the citizen or office cancels,
    or the reservation / activation time runs out now. Answers
    ``{"booking": booking}``.
``POST /_simulator/slots``
    Release a run of free slots now: ``{"office_id": N, "start": UNIX,
    "minutes": 15 | null}``; answers ``{"released": [UNIX…]}``.
``GET /_simulator/time``
    The simulated time (faster than real time under ``mta simulate
    --speed``): ``{"time": UNIX, "iso": "…+01:00", "utc": "…Z",
    "speed": X}``.
"""

from __future__ import annotations

from collections import Counter
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import CityError, dumps, error_body
from .faults import FAULT_KINDS
from .paths import CONTROL_PREFIX

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .booking import Process
    from .faults import FaultRule
    from .simulator import Simulator

__all__ = ["CONTROL_PATHS", "handle_control"]

CONTROL_PATHS: dict[str, tuple[str, ...]] = {
    "": ("GET",),
    "outbox": ("GET",),
    "faults": ("GET", "POST", "DELETE"),
    "stats": ("GET",),
    "bookings": ("GET", "POST"),
    "slots": ("POST",),
    "time": ("GET",),
}
"""Control paths below ``/_simulator/`` and the methods they take."""


class ControlError(Exception):
    """A control request that cannot be done; answered as ``{"error": …}``."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        """Remember the message, the HTTP status and extra fields."""
        super().__init__(message)
        self.status = status
        self.extra = extra


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=dumps(data), status=status, content_type="application/json"
    )


async def handle_control(sim: Simulator, request: web.Request) -> web.Response:
    """Answer one request below ``/_simulator/``."""
    try:
        handler = _handler_for(request)
        sim.sync()
        return await handler(sim, request)
    except ControlError as err:
        return _json({"error": str(err), **err.extra}, err.status)


def _handler_for(
    request: web.Request,
) -> Callable[[Simulator, web.Request], Awaitable[web.Response]]:
    name = request.path.removeprefix(CONTROL_PREFIX).strip("/")
    if request.path == CONTROL_PREFIX.rstrip("/"):
        name = ""
    methods = CONTROL_PATHS.get(name)
    if methods is None:
        paths = [f"{CONTROL_PREFIX}{known}" for known in CONTROL_PATHS]
        raise ControlError("unknown control path", 404, paths=paths)
    if request.method not in methods:
        raise ControlError(
            f"{request.method} not allowed here", 405, allowed=list(methods)
        )
    return _HANDLERS[(request.method, name)]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError:
        raise ControlError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _int(data: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"{key} must be an integer")
    return value


# --- handlers --------------------------------------------------------------------


async def _index(sim: Simulator, request: web.Request) -> web.Response:
    del sim, request
    return _json(
        {
            "paths": {
                f"{CONTROL_PREFIX}{name}": list(methods)
                for name, methods in CONTROL_PATHS.items()
            }
        }
    )


async def _outbox(sim: Simulator, request: web.Request) -> web.Response:
    query = request.query
    mails = list(sim.outbox)
    if "to" in query:
        mails = sim.outbox.to_address(query["to"])
    if "process_id" in query:
        mails = [m for m in mails if str(m.process_id) == query["process_id"]]
    if "kind" in query:
        mails = [m for m in mails if m.kind == query["kind"]]
    return _json(
        {
            "mails": [
                {
                    "to": m.to,
                    "kind": m.kind,
                    "process_id": m.process_id,
                    "subject": m.subject,
                    "body": m.body,
                    "link": m.link,
                    "sent_at": m.sent_at,
                }
                for m in mails
            ]
        }
    )


def _rule(rule: FaultRule) -> dict[str, Any]:
    return {
        "kind": rule.kind,
        "route": rule.route,
        "method": rule.method,
        "times": rule.times,
        "probability": rule.probability,
        "status": rule.status,
        "delay": rule.delay,
        "hits": rule.hits,
    }


async def _faults(sim: Simulator, request: web.Request) -> web.Response:
    del request
    return _json({"faults": [_rule(r) for r in sim.faults.rules], "kinds": FAULT_KINDS})


_FAULT_FIELDS = {"kind", "route", "method", "times", "probability", "status", "delay"}


async def _add_fault(sim: Simulator, request: web.Request) -> web.Response:
    data = await _body(request)
    unknown = sorted(set(data) - _FAULT_FIELDS)
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(unknown)}")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise ControlError("kind is required", kinds=sorted(FAULT_KINDS))
    for key in ("route", "method"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ControlError(f"{key} must be a string or null")
    for key in ("probability", "delay"):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ControlError(f"{key} must be a number or null")
    try:
        rule = sim.faults.add(
            kind=kind,
            route=data.get("route"),
            method=data.get("method"),
            times=_int(data, "times", required=False) if "times" in data else 1,
            probability=float(data.get("probability", 1.0)),
            status=_int(data, "status", required=False),
            delay=None if data.get("delay") is None else float(data["delay"]),
        )
    except ValueError as err:
        raise ControlError(str(err), kinds=sorted(FAULT_KINDS)) from None
    return _json({"fault": _rule(rule)}, 201)


async def _clear_faults(sim: Simulator, request: web.Request) -> web.Response:
    del request
    cleared = len(sim.faults.rules)
    sim.faults.clear()
    return _json({"cleared": cleared})


async def _stats(sim: Simulator, request: web.Request) -> web.Response:
    del request
    stats = sim.stats.as_dict()
    stats["rate_limited"] = sim.stats.rate_limited
    stats["bookings"] = dict(Counter(p.status for p in sim.bookings.processes.values()))
    return _json(stats)


def _booking(sim: Simulator, process: Process) -> dict[str, Any]:
    start = dt.datetime.fromtimestamp(process.timestamp, sim.tz)
    return {
        "process_id": process.process_id,
        "auth_key": process.auth_key,
        "status": process.status,
        "office_id": process.office_id,
        "services": [
            {"service_id": sid, "count": count} for sid, count in process.services
        ],
        "timestamp": process.timestamp,
        "start": start.isoformat(),
        "reserved_at": process.reserved_at,
        "preconfirmed_at": process.preconfirmed_at,
        "family_name": process.family_name,
        "email": process.email,
        "telephone": process.telephone,
    }


async def _bookings(sim: Simulator, request: web.Request) -> web.Response:
    processes = sorted(sim.bookings.processes.values(), key=lambda p: p.reserved_at)
    if "status" in request.query:
        processes = [p for p in processes if p.status == request.query["status"]]
    return _json({"bookings": [_booking(sim, p) for p in processes]})


_ACTIONS = ("confirm", "cancel", "expire")


async def _act_on_booking(sim: Simulator, request: web.Request) -> web.Response:
    data = await _body(request)
    process_id = _int(data, "process_id")
    action = data.get("action")
    if action not in _ACTIONS:
        raise ControlError("action must be one of: " + ", ".join(_ACTIONS))
    process = sim.bookings.processes.get(process_id or 0)
    if process is None:
        raise ControlError(f"no booking {process_id}", 404)
    credentials = {"processId": process.process_id, "authKey": process.auth_key}
    try:
        if action == "confirm":
            sim.bookings.confirm(credentials)
        elif action == "cancel":
            sim.bookings.cancel(credentials)
        elif not sim.bookings.expire(process.process_id):
            msg = f"booking {process_id} is {process.status}: nothing runs out"
            raise ControlError(msg, 409)
    except CityError as err:
        body, _ = error_body(*err.codes)
        raise ControlError(
            f"the city refuses to {action} it", 409, errors=body["errors"]
        ) from None
    return _json({"booking": _booking(sim, process)})


async def _release(sim: Simulator, request: web.Request) -> web.Response:
    data = await _body(request)
    office_id = _int(data, "office_id")
    start = _int(data, "start")
    minutes = _int(data, "minutes", required=False)
    if office_id not in sim.catalogue.offices:
        raise ControlError(f"no office {office_id}", 404)
    before = set(sim.slots.free_units(office_id or 0))
    sim.release_slot(office_id or 0, start or 0, minutes=minutes)
    released = sorted(set(sim.slots.free_units(office_id or 0)) - before)
    return _json({"released": released})


async def _time(sim: Simulator, request: web.Request) -> web.Response:
    del request
    now = sim.clock.time()
    return _json(
        {
            "time": now,
            "iso": dt.datetime.fromtimestamp(now, sim.tz).isoformat(),
            "utc": dt.datetime.fromtimestamp(now, dt.UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "speed": float(getattr(sim.clock, "speed", 1.0)),
        }
    )


_HANDLERS: dict[
    tuple[str, str], Callable[[Simulator, web.Request], Awaitable[web.Response]]
] = {
    ("GET", ""): _index,
    ("GET", "outbox"): _outbox,
    ("GET", "faults"): _faults,
    ("POST", "faults"): _add_fault,
    ("DELETE", "faults"): _clear_faults,
    ("GET", "stats"): _stats,
    ("GET", "bookings"): _bookings,
    ("POST", "bookings"): _act_on_booking,
    ("POST", "slots"): _release,
    ("GET", "time"): _time,
}
