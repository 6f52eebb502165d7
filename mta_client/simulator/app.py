"""The aiohttp application: the city's middleware stack and routes.

Middleware order as in zmscitizenapi ``bootstrap.php`` (outermost first):
injected faults (the gateway in front of the city) → IP filter → request
size limit → request sanitiser → rate limiting → security headers →
maintenance → routes.

Routing follows ``routing.php`` (muc46+): only the listed paths with their
trailing slash; everything else - unknown paths, slashless paths and wrong
methods - falls through to the catch-all route and gets 404 ``notFound``
(the city's ``requestMethodNotAllowed`` is practically never reached). With
``api_generation="muc45"`` the routes of that release answer instead: the
legacy availability routes of :mod:`.legacy` and no ``available-calendar/``,
with or without the trailing slash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import datetime as dt
import ipaddress
import json
import re
import socket
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .calendar import build_calendar, parse_calendar_query
from .control import handle_control
from .errors import (
    CityError,
    InternalError,
    dumps,
    error_response,
    internal_error_response,
    json_response,
)
from .faults import with_nulls
from .legacy import LEGACY_ROUTES, parse_legacy_query
from .paths import API_PREFIX, CONTROL_PREFIX

if TYPE_CHECKING:
    from .faults import FaultRule
    from .simulator import Simulator

__all__ = ["SECURITY_HEADERS", "client_ip", "create_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
    "X-Permitted-Cross-Domain-Policies": "none",
}
_IP_HEADERS = (
    "Client-IP",
    "X-Forwarded-For",
    "X-Forwarded",
    "X-Cluster-Client-IP",
    "Forwarded-For",
    "Forwarded",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_STRING_BYTES = 32_768
MAX_DEPTH = 10

SIM_KEY: web.AppKey[Simulator] = web.AppKey("simulator")
_BLOCK_PAGE = (
    "<html><head><title>Request Rejected</title></head><body>"
    "The requested URL was rejected. Please consult with your administrator."
    "<br><br>Your support ID is: {support_id}<br><br>"
    '<a href="javascript:history.back();">[Go Back]</a></body></html>'
)
_BAD_GATEWAY_PAGE = (
    "<html><head><title>{status} Bad Gateway</title></head><body>"
    "<center><h1>{status} Bad Gateway</h1></center><hr><center>nginx</center>"
    "</body></html>"
)


def client_ip(request: web.Request) -> str:
    """Return the caller's IP like the city's ``ClientIp`` helper.

    The first valid IP of ``Client-IP``, ``X-Forwarded-For`` … headers, else
    the peer address; tests use the headers to act as several clients.
    """
    for header in _IP_HEADERS:
        value = request.headers.get(header)
        if not value:
            continue
        for part in value.split(","):
            candidate = part.strip()
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(candidate))
    return request.remote or "0.0.0.0"  # noqa: S104 - a placeholder, not a bind


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _route(request: web.Request) -> str:
    path = request.path
    return path.removeprefix(API_PREFIX)


# --- middlewares ---------------------------------------------------------------


@web.middleware
async def control_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Answer the control surface, when on, before anything of the city's.

    Outermost, so control requests are never faulted, blocked, limited or
    counted. When it is off, its paths reach the city's catch-all (404).
    """
    sim = _sim(request)
    if sim.control and (
        request.path.startswith(CONTROL_PREFIX)
        or request.path == CONTROL_PREFIX.rstrip("/")
    ):
        return await handle_control(sim, request)
    return await handler(request)


@web.middleware
async def fault_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Inject configured faults in front of the city's stack."""
    sim = _sim(request)
    request["client_ip"] = client_ip(request)
    rule = sim.faults.take(_route(request), request.method)
    if rule is None:
        return await handler(request)
    sim.stats.faults[rule.kind] += 1
    return await _apply_fault(sim, rule, request, handler)


async def _apply_fault(  # noqa: PLR0911 - one branch per fault kind
    sim: Simulator, rule: FaultRule, request: web.Request, handler: Handler
) -> web.StreamResponse:
    kind = rule.kind
    if kind == "server_error":
        return internal_error_response(rule.status or 500)
    if kind == "bad_gateway":
        status = rule.status or 502
        return web.Response(
            text=_BAD_GATEWAY_PAGE.format(status=status),
            status=status,
            content_type="text/html",
        )
    if kind == "html_block":
        support_id = sim.rng.randrange(10**18, 10**19)
        return web.Response(
            text=_BLOCK_PAGE.format(support_id=support_id),
            status=403,
            content_type="text/html",
        )
    if kind == "maintenance":
        return error_response("serviceUnavailable")
    if kind == "rate_limit":
        return error_response("rateLimitExceeded")
    if kind == "malformed_json":
        return web.Response(
            body=b'{"offices":[{"id":10489,"name":"B\xc3\xbcrgerb',
            status=200,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    if kind == "slow":
        # The backend behind the gateway is slow: it finishes its work even
        # when the client gave up meanwhile (a booking POST whose answer a
        # timeout lost may still have been carried out).
        delay = rule.delay if rule.delay is not None else 5.0
        await request.read()  # the gateway has the whole request
        return await asyncio.shield(_slow(sim, delay, request, handler))
    if kind == "hang":
        # The gateway holds the request and never forwards it.
        await _wait(sim, rule.delay if rule.delay is not None else 3600.0)
        return await handler(request)
    if kind == "reset":
        _reset(request)
        return web.Response(status=500)  # never written: the connection is gone
    if kind == "captcha_upstream" and _route(request) in {
        "captcha-challenge/",
        "captcha-verify/",
    }:
        body = {
            "meta": {
                "success": False,
                "error": "Request error: cURL error 28: Operation timed out",
            },
            "data": None,
        }
        return json_response(body)
    response = await handler(request)
    if kind == "extra_fields":
        return _with_extra_fields(response)
    if kind == "nulls":
        return _with_nulls(response)
    return response


async def _slow(
    sim: Simulator, seconds: float, request: web.Request, handler: Handler
) -> web.StreamResponse:
    await _wait(sim, seconds)
    return await handler(request)


async def _wait(sim: Simulator, seconds: float) -> None:
    # Hangs end early when the server shuts down, so that no handler outlives it.
    event: asyncio.Event = sim.shutdown_event
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER 0: close with RST instead of FIN, like a dropped connection.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    transport.abort()


def _with_extra_fields(response: web.StreamResponse) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.body is None:
        return response
    try:
        data = json.loads(bytes(response.body))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return response
    extra = {"simulatorUnknownField": "new in a future release", "version": 2}

    def widen(value: Any) -> Any:
        if isinstance(value, dict):
            return {**value, **extra}
        return value

    if isinstance(data, dict):
        data = {
            k: [widen(v) for v in val] if isinstance(val, list) else val
            for k, val in data.items()
        }
        data = widen(data)
    new = web.Response(body=dumps(data).encode(), status=response.status)
    for key, value in response.headers.items():
        if key.lower() != "content-length":
            new.headers[key] = value
    return new


def _with_nulls(response: web.StreamResponse) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.body is None:
        return response
    try:
        data = json.loads(bytes(response.body))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return response
    new = web.Response(body=dumps(with_nulls(data)).encode(), status=response.status)
    for key, value in response.headers.items():
        if key.lower() != "content-length":
            new.headers[key] = value
    return new


@web.middleware
async def ip_filter_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``IpFilterMiddleware``: blacklisted IPs get 403 ``IP_BLACKLISTED``."""
    sim = _sim(request)
    ip: str = request["client_ip"]
    if sim.is_blacklisted(ip):
        sim.stats.blocked_by_ip[ip] += 1
        return error_response("IP_BLACKLISTED")
    return await handler(request)


@web.middleware
async def size_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``RequestSizeLimitMiddleware``: ``Content-Length`` above the limit → 413."""
    length = request.content_length
    if length is not None and length > _sim(request).max_request_size:
        return error_response("requestEntityTooLarge")
    return await handler(request)


@web.middleware
async def sanitizer_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``RequestSanitizerMiddleware``: clean strings; too long/deep → uncaught 500."""
    try:
        query = {k: _clean(v, 0) for k, v in request.query.items()}
        body: Any = None
        if request.method == "POST" and request.body_exists:
            raw = await request.read()
            # Slim's body parser only parses JSON sent as JSON.
            if "json" in request.content_type:
                with contextlib.suppress(ValueError):
                    body = _clean(json.loads(raw), 0)
    except _SanitizeError:
        return internal_error_response()
    request["query"] = query
    request["body"] = body
    return await handler(request)


class _SanitizeError(Exception):
    pass


def _clean(value: Any, depth: int) -> Any:
    if depth >= MAX_DEPTH:
        raise _SanitizeError
    if isinstance(value, str):
        if len(value.encode()) > MAX_STRING_BYTES:
            raise _SanitizeError
        return _CONTROL.sub("", value).strip()
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v, depth + 1) for k, v in value.items()}
    return value


@web.middleware
async def rate_limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``RateLimitingMiddleware`` (see :mod:`.ratelimit`)."""
    sim = _sim(request)
    ip: str = request["client_ip"]
    headers = sim.rate_limiter.hit(ip)
    if headers is None:
        sim.stats.rate_limited_by_ip[ip] += 1
        return error_response("rateLimitExceeded")
    sim.stats.requests_by_ip[ip] += 1
    response = await handler(request)
    response.headers.update(headers)
    return response


@web.middleware
async def security_headers_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``SecurityHeadersMiddleware``: add the city's security headers."""
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def maintenance_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """``MaintenanceMiddleware``: 503 ``serviceUnavailable`` for every route."""
    if _sim(request).maintenance:
        return error_response("serviceUnavailable")
    return await handler(request)


# --- routes --------------------------------------------------------------------


async def _offices_and_services(sim: Simulator, request: web.Request) -> web.Response:
    del request
    return json_response(sim.offices_and_services())


async def _available_calendar(sim: Simulator, request: web.Request) -> web.Response:
    query = parse_calendar_query(request["query"])
    _check_offices(sim, request, query.office_ids, query.services, query.captcha_token)
    starts = _bookable(sim, query.office_ids, query.services, query.start, query.end)
    return json_response(build_calendar(query, starts, sim.tz))


def _check_offices(
    sim: Simulator,
    request: web.Request,
    office_ids: tuple[int, ...],
    services: tuple[tuple[int, int], ...],
    captcha_token: str | None,
) -> None:
    """Every office must offer every service; then the captcha, if required."""
    catalogue = sim.catalogue
    for office_id in office_ids:
        for service_id, _ in services:
            if catalogue.relation(office_id, service_id) is None:
                raise CityError("invalidLocationAndServiceCombination")
    if any(catalogue.offices[o].scope.captcha_required for o in office_ids):
        sim.captcha.check_token(captcha_token, request["client_ip"])


def _bookable(
    sim: Simulator,
    office_ids: tuple[int, ...],
    services: tuple[tuple[int, int], ...],
    start: dt.date,
    end: dt.date,
) -> dict[int, list[int]]:
    """The future bookable starts per office from ``start`` to ``end``."""
    lo = max(sim.clock.time(), _day_start(sim, start))
    hi = _day_start(sim, end) + 86_400 * 2  # DST-safe upper bound
    return {
        o: sim.slots.bookable_starts(
            o, sim.catalogue.units_needed(o, list(services)), lo, hi
        )
        for o in office_ids
    }


def _legacy_route(route: str) -> Route:
    one_day, build = LEGACY_ROUTES[route]

    async def handle(sim: Simulator, request: web.Request) -> web.Response:
        query = parse_legacy_query(request["query"], one_day=one_day)
        _check_offices(
            sim, request, query.office_ids, query.services, query.captcha_token
        )
        starts = _bookable(
            sim, query.office_ids, query.services, query.start, query.end
        )
        return json_response(build(query, starts, sim.tz))

    return handle


def _day_start(sim: Simulator, day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), tzinfo=sim.tz).timestamp()


async def _appointment(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.lookup(request["query"], allow_deleted=True)
    return json_response(sim.bookings.to_json(process, captcha_ip=request["client_ip"]))


async def _captcha_details(sim: Simulator, request: web.Request) -> web.Response:
    del request
    return json_response(sim.captcha.details())


async def _captcha_challenge(sim: Simulator, request: web.Request) -> web.Response:
    del request
    sim.stats.captcha_challenges += 1
    return json_response(sim.captcha.challenge())


async def _captcha_verify(sim: Simulator, request: web.Request) -> web.Response:
    body = _json_body(request)
    sim.stats.captcha_verifies += 1
    result = sim.captcha.verify(body)
    if result["meta"]["success"]:
        result["token"] = sim.captcha.issue_token(request["client_ip"])
    else:
        sim.stats.captcha_verify_failures += 1
    return json_response(result)


def _json_body(request: web.Request) -> dict[str, Any]:
    body = request["body"]
    # ValidationService::validateServerPostRequest: no parsed body → invalidRequest.
    if not isinstance(body, dict):
        raise CityError("invalidRequest")
    return body


async def _reserve(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.reserve(_json_body(request), request["client_ip"])
    return json_response(sim.bookings.to_json(process))


async def _update(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.update(_json_body(request))
    return json_response(sim.bookings.to_json(process))


async def _preconfirm(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.preconfirm(_json_body(request))
    return json_response(sim.bookings.to_json(process))


async def _confirm(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.confirm(_json_body(request))
    return json_response(sim.bookings.to_json(process, captcha_ip=request["client_ip"]))


async def _cancel(sim: Simulator, request: web.Request) -> web.Response:
    process = sim.bookings.cancel(_json_body(request))
    return json_response(sim.bookings.to_json(process))


async def _my_appointments(sim: Simulator, request: web.Request) -> web.Response:
    del sim, request
    # No bearer token (no citizen login in the simulator) → 401, authKeyMismatch body.
    return error_response("authKeyMismatch", status=401)


Route = Callable[["Simulator", web.Request], Awaitable[web.Response]]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "offices-and-services/"): _offices_and_services,
    ("GET", "available-calendar/"): _available_calendar,
    ("GET", "appointment/"): _appointment,
    ("GET", "captcha-details/"): _captcha_details,
    ("GET", "captcha-challenge/"): _captcha_challenge,
    ("POST", "captcha-verify/"): _captcha_verify,
    ("POST", "reserve-appointment/"): _reserve,
    ("POST", "update-appointment/"): _update,
    ("POST", "preconfirm-appointment/"): _preconfirm,
    ("POST", "confirm-appointment/"): _confirm,
    ("POST", "cancel-appointment/"): _cancel,
    ("GET", "my-appointments/"): _my_appointments,
}
# muc45: no available-calendar/ yet, the four legacy availability routes instead.
MUC45_ROUTES: dict[tuple[str, str], Route] = {
    **{key: route for key, route in ROUTES.items() if key[1] != "available-calendar/"},
    **{("GET", name): _legacy_route(name) for name in LEGACY_ROUTES},
}


def _find_route(sim: Simulator, method: str, name: str) -> tuple[str, Route | None]:
    if sim.api_generation == "muc45":
        # Until muc45 the slashless duplicates were routed too.
        name = name if name.endswith("/") else f"{name}/"
        return name, MUC45_ROUTES.get((method, name))
    return name, ROUTES.get((method, name))


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Route a request; the catch-all answers 404 ``notFound``."""
    sim = _sim(request)
    sim.sync()
    path = request.path
    name, route = _find_route(sim, request.method, path[len(API_PREFIX) :])
    if not path.startswith(API_PREFIX) or route is None:
        return error_response("notFound")
    sim.stats.requests_by_route[name] += 1
    try:
        return await route(sim, request)
    except CityError as err:
        return err.response()
    except InternalError:
        return internal_error_response()


def create_app(sim: Simulator) -> web.Application:
    """Return the aiohttp application for ``sim``."""
    app = web.Application(
        middlewares=[
            control_middleware,
            fault_middleware,
            ip_filter_middleware,
            size_limit_middleware,
            sanitizer_middleware,
            rate_limit_middleware,
            security_headers_middleware,
            maintenance_middleware,
        ],
        client_max_size=max(sim.max_request_size, 1024**2) + 1,
    )
    app[SIM_KEY] = sim
    app.router.add_route("*", "/{tail:.*}", dispatch)

    async def on_startup(_app: web.Application) -> None:
        sim.new_shutdown_event()

    async def on_shutdown(_app: web.Application) -> None:
        sim.shutdown_event.set()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app
