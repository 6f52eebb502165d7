"""The async client for Munich's citizen appointment API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
import json
import logging
import random
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from ._version import __version__
from .captcha import CaptchaTokenCache, solve_challenge_async
from .clock import Clock, SystemClock, monotonic_of
from .exceptions import (
    MTAApiError,
    MTABlockedError,
    MTACaptchaError,
    MTACaptchaVerificationError,
    MTACaptchaVerificationFailedError,
    MTAConnectionError,
    MTAError,
    MTAInvalidResponseError,
    MTAOutdatedAPIError,
    MTARateLimitError,
    MTARouteNotFoundError,
    MTAServerError,
    MTATimeoutError,
    MTAValidationError,
    error_class_for,
)
from .models import (
    MAX_ID,
    Appointment,
    AvailableCalendar,
    CaptchaDetails,
    Catalogue,
    ContactDetails,
    ProcessCredentials,
    Scope,
    ServiceRequest,
    Slot,
    check_date_range,
    validated,
)
from .ratelimit import RequestBudget
from .text import safe

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "BERLIN",
    "DEFAULT_BASE_URL",
    "MTAClient",
    "RetryPolicy",
    "ServicesArg",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www48.muenchen.de/buergeransicht/api/citizen/"
BERLIN = ZoneInfo("Europe/Berlin")

VERSION = __version__
USER_AGENT = f"mta-client/{VERSION} (Munich Termin Automator; +https://github.com/munich-termin-automator)"

# Gateways answer these when the backend is briefly away; a GET may be retried.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# The city's own frontend asks six months ahead; the server allows 365 days.
DEFAULT_HORIZON = timedelta(days=182)

type ServicesArg = Mapping[int, int] | Iterable[ServiceRequest | int | tuple[int, int]]
"""Services as ``{service_id: count}``, ids, ``(id, count)`` or ServiceRequest."""
type CredentialsArg = ProcessCredentials | Appointment


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When a GET is tried again: connection errors, timeouts, 502/503/504.

    Bounded by both tries and total time; delays grow exponentially with full
    jitter. POSTs (bookings) are never retried.
    """

    max_tries: int = 3
    max_time: float = 30.0
    base_delay: float = 1.0
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """Return the jittered delay before try ``attempt + 1``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


class SessionOwner:
    """Keeps an ``aiohttp.ClientSession``: the caller's, or one of its own.

    A session given to :meth:`_init_session` is used and never closed; without
    one, :meth:`_open_session` creates one on first use, which
    :meth:`_close_session_if_owned` (and leaving ``async with``) closes. The
    client and the Telegram sender both keep their session this way.
    """

    _session: aiohttp.ClientSession | None
    _close_session: bool

    def _init_session(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._close_session = False

    def _open_session(self) -> aiohttp.ClientSession:
        """Return the session, creating an owned one on first use."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._close_session = True
        return self._session

    async def _close_session_if_owned(self) -> None:
        """Close the session if it was created here; harmless twice."""
        if self._session is not None and self._close_session:
            await self._session.close()
            self._session = None
            self._close_session = False

    async def __aenter__(self) -> Self:
        """Enter the context: the object itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the context: close an owned session."""
        await self._close_session_if_owned()


class MTAClient(SessionOwner):
    """Client for the city's citizen appointment API.

    Use it as an async context manager, or call :meth:`close` when done::

        async with MTAClient() as client:
            catalogue = await client.get_catalogue()

    Args:
        session: an ``aiohttp.ClientSession`` to use; the client creates (and
            later closes) its own when none is given, and never closes one it
            was given.
        base_url: the API root; point it at the local simulator for tests.
        request_timeout: seconds for one request.
        budget: the request budget of this egress IP; share one between all
            clients that use the same IP.
        clock: time source for the budget, retries and token expiry.
        retry: when GETs are retried.
        captcha_margin: seconds before a captcha token's expiry at which a new
            one is fetched.
        catalogue_ttl: seconds the catalogue is cached (the city caches it for
            an hour itself). A program that keeps the catalogue between runs
            (:meth:`seed_catalogue`, :attr:`on_catalogue`) may choose longer.
        user_agent: overrides the versioned default ``User-Agent``.

    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        base_url: str | URL = DEFAULT_BASE_URL,
        request_timeout: float = 15.0,
        budget: RequestBudget | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        captcha_margin: float = 30.0,
        catalogue_ttl: float = 3600.0,
        user_agent: str = USER_AGENT,
    ) -> None:
        """Configure the client; nothing is sent until the first call."""
        url = URL(str(base_url))
        if not url.path.endswith("/"):
            url = url.with_path(url.path + "/")
        self.base_url = url
        self.request_timeout = request_timeout
        self.clock: Clock = clock or (budget.clock if budget else SystemClock())
        self.budget = budget or RequestBudget(clock=self.clock)
        self.retry = retry or RetryPolicy()
        self.catalogue_ttl = catalogue_ttl
        self.user_agent = user_agent
        self._init_session(session)
        self._catalogue: Catalogue | None = None
        self._catalogue_at = 0.0
        self.on_catalogue: Callable[[Any, float], Awaitable[None]] | None = None
        """Awaited with each catalogue fetched from the server: its answer
        (the decoded JSON, already parsed fine) and the Unix time it came. To
        keep it for a later run (:meth:`seed_catalogue`); it must not raise."""
        self.captcha = CaptchaTokenCache(
            fetch=self._new_captcha_token, clock=self.clock, margin=captcha_margin
        )

    def __repr__(self) -> str:
        """Show where the client points, never tokens."""
        return f"{type(self).__name__}(base_url={str(self.base_url)!r})"

    @property
    def last_captcha_seconds(self) -> float | None:
        """Seconds the last new captcha token took: challenge, proof of work, verify.

        None until one was fetched (a token given with :meth:`CaptchaTokenCache.seed`
        took none); see :attr:`CaptchaTokenCache.last_fetch_seconds`.
        """
        return self.captcha.last_fetch_seconds

    # --- lifecycle -------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        await self._close_session_if_owned()

    # --- transport -------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        priority: bool = False,
    ) -> Any:
        """Send one request through the budget, with retries for safe GETs.

        The only place that touches aiohttp. Returns the decoded JSON.
        """
        may_retry = method == "GET"
        started = monotonic_of(self.clock)
        attempt = 1
        while True:
            try:
                return await self._send(
                    method, path, params=params, body=body, priority=priority
                )
            except (MTAConnectionError, MTAServerError) as err:
                if (
                    not may_retry
                    or not self._retryable(err)
                    or attempt >= self.retry.max_tries
                ):
                    raise
                delay = self.retry.delay(attempt)
                if monotonic_of(self.clock) + delay - started > self.retry.max_time:
                    raise
                _LOGGER.debug(
                    "%s %s failed (%s); retry %d in %.1f s",
                    method,
                    path,
                    type(err).__name__,
                    attempt,
                    delay,
                )
                await self.clock.sleep(delay)
                attempt += 1

    @staticmethod
    def _retryable(err: MTAError) -> bool:
        if isinstance(err, MTAConnectionError):
            return True
        return isinstance(err, MTAServerError) and err.status in RETRYABLE_STATUSES

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        priority: bool,
    ) -> Any:
        session = self._open_session()
        await self.budget.acquire(priority=priority)
        url = self.base_url.join(URL(path))
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        try:
            async with asyncio.timeout(self.request_timeout):
                async with session.request(
                    method, url, params=params, json=body, headers=headers
                ) as response:
                    text = await response.text(errors="replace")
                    status = response.status
                    content_type = response.headers.get("Content-Type", "")
                    self.budget.update_from_headers(response.headers)
        except TimeoutError as err:
            msg = f"timed out after {self.request_timeout:.0f} s ({method} {path})"
            raise MTATimeoutError(msg) from err
        except (aiohttp.ClientError, OSError) as err:
            reason = type(err).__name__
            msg = f"could not reach the city's server ({method} {path}): {reason}"
            raise MTAConnectionError(msg) from err
        try:
            return _decode(status, content_type, text)
        except MTARateLimitError as err:
            err.retry_after = self.budget.on_rate_limited()
            raise

    # --- catalogue -------------------------------------------------------------

    async def get_catalogue(self, *, refresh: bool = False) -> Catalogue:
        """Return the offices, services and their relations.

        Cached for ``catalogue_ttl`` seconds; ``refresh=True`` asks again.
        """
        # Ages on monotonic time: a wall-clock jump must not keep it forever.
        fresh = monotonic_of(self.clock) - self._catalogue_at < self.catalogue_ttl
        if self._catalogue is not None and fresh and not refresh:
            return self._catalogue
        data = await self._request("GET", "offices-and-services/")
        catalogue = _parse(Catalogue, data)
        self._catalogue, self._catalogue_at = catalogue, monotonic_of(self.clock)
        if self.on_catalogue is not None:
            await self.on_catalogue(data, self.clock.time())
        return catalogue

    def seed_catalogue(self, data: Any, *, fetched_at: float) -> bool:
        """Use a catalogue answer kept from before (another run of the program).

        ``data`` is an answer of ``offices-and-services/`` as decoded JSON,
        such as :attr:`on_catalogue` was given; it is checked by the same
        parser as a fresh answer. ``fetched_at`` is the Unix time it came: it
        ages from then on like a fetched one, and :meth:`get_catalogue` asks
        the server again once it is ``catalogue_ttl`` old. An answer that is
        that old already, or from the future (a clock set back), is refused
        (False) and nothing changes.

        Raises:
            MTAInvalidResponseError: ``data`` is not a catalogue.

        """
        if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
            return False
        age = self.clock.time() - fetched_at
        if not 0 <= age < self.catalogue_ttl:  # also False for NaN
            return False
        catalogue = _parse(Catalogue, data)
        self._catalogue = catalogue
        # Ages on monotonic time from here, like a fetched one.
        self._catalogue_at = monotonic_of(self.clock) - age
        return True

    # --- availability ----------------------------------------------------------

    async def get_available_calendar(
        self,
        *,
        office_ids: Iterable[int],
        services: ServicesArg,
        start_date: date | None = None,
        end_date: date | None = None,
        slots_start_date: date | None = None,
        slots_end_date: date | None = None,
        captcha_token: str | None = None,
    ) -> AvailableCalendar:
        """Ask which days are bookable and which slots are free.

        Every office must offer every service. The server lists the bookable
        days of the slots window's month(s) and gives times only for the
        *first* bookable day in the slots window (``slots_start_date`` to
        ``slots_end_date``, default the whole range); to get the times of day D,
        pass ``slots_start_date=slots_end_date=D``.

        A captcha token is fetched (or reused) automatically when one of the
        offices requires it, unless ``captcha_token`` is given.

        Raises:
            MTAOutdatedAPIError: the server is of an older API generation
                (muc45 or earlier) that has no ``available-calendar/`` route.

        """
        offices = _office_ids(office_ids)
        wanted = _service_requests(services)
        start = start_date or datetime.fromtimestamp(self.clock.time(), BERLIN).date()
        end = end_date or start + DEFAULT_HORIZON
        check_date_range(start, end)
        if slots_start_date and slots_end_date:
            check_date_range(slots_start_date, slots_end_date, field="slots_end_date")
        params = {
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
            "officeIds": ",".join(map(str, offices)),
            "serviceIds": ",".join(str(s.service_id) for s in wanted),
            "serviceCounts": ",".join(str(s.count) for s in wanted),
        }
        if slots_start_date:
            params["slotsStartDate"] = slots_start_date.isoformat()
        if slots_end_date:
            params["slotsEndDate"] = slots_end_date.isoformat()

        async def send(token: str | None) -> Any:
            query = params if token is None else {**params, "captchaToken": token}
            try:
                return await self._request("GET", "available-calendar/", params=query)
            except MTARouteNotFoundError as err:
                # Servers up to muc45 have no available-calendar/ and answer it
                # with the catch-all's notFound; that one answer is proof
                # enough (every muc46+ server routes it), so no probe is sent.
                raise MTAOutdatedAPIError(
                    status=err.status, code=err.error_code, error_type=err.error_type
                ) from err

        data = await self._with_captcha(send, offices, captcha_token)
        return _parse(AvailableCalendar, data)

    # --- captcha ---------------------------------------------------------------

    async def get_captcha_details(self) -> CaptchaDetails:
        """Return the city's captcha configuration."""
        return _parse(CaptchaDetails, await self._request("GET", "captcha-details/"))

    async def get_captcha_challenge(self) -> dict[str, Any]:
        """Fetch a new ALTCHA challenge (v1 or v2), as the raw object.

        The object is kept raw because the solution must echo it unchanged.
        """
        data = await self._request("GET", "captcha-challenge/")
        if isinstance(data, dict) and isinstance(data.get("meta"), dict):
            meta = data["meta"]
            message = str(meta.get("error") or "captcha challenge unavailable")
            raise MTACaptchaVerificationError(message, status=200)
        if not isinstance(data, dict):
            msg = "captcha challenge is not an object"
            raise MTAInvalidResponseError(msg)
        return data

    async def verify_captcha(self, payload: str) -> str:
        """Send a solved challenge and return the captcha token (a JWT)."""
        data = await self._request("POST", "captcha-verify/", body={"payload": payload})
        meta = data.get("meta") if isinstance(data, dict) else None
        verdict = data.get("data") if isinstance(data, dict) else None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(meta, dict):
            msg = "captcha verification answer has no meta object"
            raise MTAInvalidResponseError(msg)
        valid = isinstance(verdict, dict) and verdict.get("valid") is True
        if meta.get("success") is not True or not valid or not isinstance(token, str):
            message = str(meta.get("error") or "Captcha verification failed")
            raise MTACaptchaVerificationFailedError(message, status=200)
        return token

    async def get_captcha_token(self, *, refresh: bool = False) -> str:
        """Return a valid captcha token, reusing the cached one when possible."""
        if refresh:
            return await self.captcha.refresh()
        return await self.captcha.get()

    async def _new_captcha_token(self) -> str:
        challenge = await self.get_captcha_challenge()
        payload = await solve_challenge_async(challenge)
        return await self.verify_captcha(payload)

    async def _captcha_required(self, office_ids: list[int]) -> bool:
        catalogue = await self.get_catalogue()
        return catalogue.captcha_required(office_ids)

    async def _with_captcha(
        self,
        send: Callable[[str | None], Awaitable[Any]],
        office_ids: list[int],
        explicit: str | None,
    ) -> Any:
        """Call ``send(token)`` with a token where the offices need one.

        A cached token the server refuses (expired early, or bound to an IP
        that changed) is replaced once. That repeat is safe even for reserve:
        the server checks the token before it reserves anything.
        """
        if explicit is not None:
            return await send(explicit)
        if not await self._captcha_required(office_ids):
            return await send(None)
        try:
            return await send(await self.captcha.get())
        except MTACaptchaError:
            self.captcha.invalidate()
            return await send(await self.captcha.get())

    # --- booking ---------------------------------------------------------------

    async def reserve_appointment(
        self,
        *,
        office_id: int,
        services: ServicesArg,
        timestamp: int | datetime | Slot,
        captcha_token: str | None = None,
    ) -> Appointment:
        """Reserve a free slot; the answer holds ``process_id`` and ``auth_key``.

        The reservation lasts the scope's ``reservation_duration`` minutes.
        Never retried: after a timeout, look at the calendar again instead.

        Raises:
            MTASlotUnavailableError: someone else took the slot.

        """
        if isinstance(timestamp, Slot):
            timestamp = timestamp.timestamp
        elif isinstance(timestamp, datetime):
            if timestamp.tzinfo is None:
                raise MTAValidationError("timestamp", "must be timezone-aware")
            timestamp = int(timestamp.timestamp())
        (office,) = _office_ids([office_id])
        wanted = _service_requests(services)
        if timestamp <= 0:
            raise MTAValidationError("timestamp", "must be a positive Unix time")
        body = {
            "timestamp": timestamp,
            "officeId": office,
            "serviceId": [s.service_id for s in wanted],
            "serviceCount": [s.count for s in wanted],
        }

        async def send(token: str | None) -> Any:
            payload = body if token is None else {**body, "captchaToken": token}
            return await self._request(
                "POST", "reserve-appointment/", body=payload, priority=True
            )

        return _parse(
            Appointment, await self._with_captcha(send, [office], captcha_token)
        )

    async def update_appointment(
        self,
        *,
        credentials: CredentialsArg,
        contact: ContactDetails,
        scope: Scope | None = None,
    ) -> Appointment:
        """Add the person's data to a reserved appointment.

        ``scope`` (the office's, or taken from ``credentials`` when it is the
        reserved :class:`Appointment`) lets the client check required fields
        before sending.
        """
        creds = _credentials(credentials)
        if scope is None and isinstance(credentials, Appointment):
            scope = credentials.scope
        contact.check_against(scope)
        data = await self._request(
            "POST", "update-appointment/", body=contact.to_body(creds), priority=True
        )
        return _parse(Appointment, data)

    async def preconfirm_appointment(
        self, *, credentials: CredentialsArg
    ) -> Appointment:
        """Finish the booking; the city then e-mails the activation link."""
        return await self._process_call("preconfirm-appointment/", credentials)

    async def confirm_appointment(self, *, credentials: CredentialsArg) -> Appointment:
        """Activate a pre-confirmed appointment (what the e-mail link does)."""
        return await self._process_call("confirm-appointment/", credentials)

    async def confirm_from_link(self, link: str) -> Appointment:
        """Activate an appointment from the activation link in the city's e-mail."""
        credentials = ProcessCredentials.from_activation_link(link)
        return await self.confirm_appointment(credentials=credentials)

    async def cancel_appointment(self, *, credentials: CredentialsArg) -> Appointment:
        """Cancel an appointment; the city rotates its auth key afterwards."""
        return await self._process_call("cancel-appointment/", credentials)

    async def get_appointment(self, *, credentials: CredentialsArg) -> Appointment:
        """Read an appointment by process id and auth key."""
        params = {
            "processId": str((creds := _credentials(credentials)).process_id),
            "authKey": creds.auth_key,
        }
        return _parse(
            Appointment, await self._request("GET", "appointment/", params=params)
        )

    async def _process_call(
        self, path: str, credentials: CredentialsArg
    ) -> Appointment:
        body = _credentials(credentials).to_body()
        return _parse(
            Appointment, await self._request("POST", path, body=body, priority=True)
        )


# --- helpers -------------------------------------------------------------------


def _office_ids(office_ids: Iterable[int]) -> list[int]:
    offices = list(office_ids)
    if not offices:
        raise MTAValidationError("office_ids", "at least one office is required")
    for office in offices:
        if isinstance(office, bool) or not isinstance(office, int):
            raise MTAValidationError("office_ids", "office ids must be integers")
        if not 0 < office <= MAX_ID:
            raise MTAValidationError(
                "office_ids", "office ids must be positive 32-bit integers"
            )
    return offices


def _service_requests(services: ServicesArg) -> list[ServiceRequest]:
    items: Iterable[Any] = (
        services.items() if isinstance(services, Mapping) else services
    )
    wanted: list[ServiceRequest] = []
    for item in items:
        if isinstance(item, ServiceRequest):
            wanted.append(item)
        elif isinstance(item, tuple):
            service_id, count = item
            wanted.append(validated(ServiceRequest, service_id=service_id, count=count))
        else:
            wanted.append(validated(ServiceRequest, service_id=item))
    if not wanted:
        raise MTAValidationError("services", "at least one service is required")
    if len({s.service_id for s in wanted}) != len(wanted):
        raise MTAValidationError("services", "each service may be listed once")
    return wanted


def _credentials(credentials: CredentialsArg) -> ProcessCredentials:
    if isinstance(credentials, Appointment):
        return validated(
            ProcessCredentials,
            process_id=credentials.process_id,
            auth_key=credentials.auth_key,
        )
    return credentials


def _parse[T: BaseModel](model: type[T], data: Any) -> T:
    """Validate a decoded answer; a shape mismatch is an invalid response."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
            for e in err.errors()[:3]
        )
        msg = f"unexpected {model.__name__} from the city's server: {problems}"
        raise MTAInvalidResponseError(msg) from None


def _decode(status: int, content_type: str, text: str) -> Any:
    """Decode an answer, raising the typed error it carries.

    The city reports errors as ``{"errors": [...]}`` (sometimes with HTTP
    200), unhandled ones as ``{"error": {"message", "code"}}``, and gateways
    in front of it answer with HTML pages.
    """
    try:
        data = json.loads(text, parse_constant=_no_constant) if text.strip() else None
    except (ValueError, RecursionError):
        # Not JSON (a gateway page), broken JSON (a truncated body), NaN or
        # Infinity (not JSON), nesting deeper than Python can decode.
        data = _NOT_JSON
    if data is _NOT_JSON or (data is None and status >= 400):  # noqa: PLR2004
        raise _non_json_error(status, content_type, empty=not text.strip())
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            raise _api_error(status, errors)
        envelope = data.get("error")
        if isinstance(envelope, dict):
            # An exception the city's code did not handle; its code is the
            # HTTP status it chose (500 unless it was an HTTP exception).
            code = envelope.get("code")
            http = code if isinstance(code, int) and code >= 400 else max(status, 500)  # noqa: PLR2004
            cls = error_class_for(None, http)
            raise cls(str(envelope.get("message") or "internal error"), status=http)
    if status >= 400:  # noqa: PLR2004
        cls = error_class_for(None, status)
        raise cls(f"HTTP {status} without an error description", status=status)
    return data


_NOT_JSON = object()


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _api_error(status: int, errors: list[Any]) -> MTAApiError:
    entries = [e for e in errors if isinstance(e, dict)]
    if not entries:
        return error_class_for(None, status)(
            f"HTTP {status} with unreadable errors", status=status
        )

    def entry_status(entry: dict[str, Any]) -> int:
        value = entry.get("statusCode")
        return value if isinstance(value, int) else status

    # The city's HTTP status is the highest statusCode among the errors.
    main = max(entries, key=entry_status)
    code = main.get("errorCode")
    code = code if isinstance(code, str) else None
    http = status if status >= 400 else entry_status(main)  # noqa: PLR2004
    cls = error_class_for(code, http)
    error = cls(
        str(main.get("errorMessage") or "") or None,
        status=http,
        code=code,
        error_type=main.get("errorType")
        if isinstance(main.get("errorType"), str)
        else None,
    )
    error.related = [str(e.get("errorCode")) for e in entries if e is not main]
    return error


def _non_json_error(status: int, content_type: str, *, empty: bool) -> MTAError:
    mime = content_type.split(";", maxsplit=1)[0].strip().lower()
    kind = "an empty body" if empty else safe(mime) or "a body of no declared type"
    if status == 429:  # noqa: PLR2004
        return MTARateLimitError(f"rate limited (answer was {kind})", status=status)
    if status == 403:  # noqa: PLR2004
        return MTABlockedError(
            f"blocked by the city's gateway (answer was {kind})", status=status
        )
    if status >= 500:  # noqa: PLR2004
        return MTAServerError(f"server error (answer was {kind})", status=status)
    if not empty and (mime == "application/json" or mime.endswith("+json")):
        # The server said JSON, but the body does not parse: cut off, most
        # likely (a dropped connection, a proxy's size limit).
        return MTAInvalidResponseError(
            "expected JSON, but the body is not valid JSON "
            f"(truncated or malformed; HTTP {status})",
            status=status,
        )
    return MTAInvalidResponseError(
        f"expected JSON, got {kind} (HTTP {status})", status=status
    )
