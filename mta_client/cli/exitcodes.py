"""Exit codes of the ``mta`` command and how errors map to them.

Scripts may rely on these numbers; they are listed in ``mta --help`` too.
"""

from __future__ import annotations

from enum import IntEnum

from yarl import URL

from mta_client import exceptions
from mta_client.client import DEFAULT_BASE_URL
from mta_client.exceptions import (
    MTAApiError,
    MTAAppointmentStateError,
    MTABlockedError,
    MTABudgetExceededError,
    MTACaptchaError,
    MTAConnectionError,
    MTAError,
    MTAInvalidInputError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTANoSlotsError,
    MTANotFoundError,
    MTAOutdatedAPIError,
    MTAProtocolError,
    MTAQuotaError,
    MTARateLimitError,
    MTAServerError,
    MTASlotUnavailableError,
    MTATimeoutError,
    MTAValidationError,
)
from mta_client.store import StoreError

__all__ = [
    "CLIError",
    "ExitCode",
    "describe",
    "error_class_of_reason",
    "exit_code_for",
    "exit_code_for_class",
    "server_name",
]


class ExitCode(IntEnum):
    """What the exit status of ``mta`` means."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    NOTHING_FOUND = 3
    RATE_LIMITED = 4
    BLOCKED = 5
    MAINTENANCE = 6
    NOT_FOUND = 7
    SLOT_TAKEN = 8
    UNREACHABLE = 9
    CAPTCHA = 10
    INVALID_RESPONSE = 11
    APPOINTMENT_STATE = 12
    OUTDATED_API = 13


EXIT_CODE_HELP = """\
exit codes:
   0  success
   1  unexpected error
   2  usage error or invalid input (names the option or field), or an
      unusable watch state file
   3  nothing found (no free slots; also the server's "nothing free" errors)
   4  rate limited by the city's server, or the request budget is exhausted
   5  blocked by the city (IP address)
   6  the city's booking system is in maintenance
   7  not found (office, service or appointment)
   8  the slot was taken by someone else
   9  could not connect to the server, or it timed out
  10  captcha failure
  11  invalid response or server error, or a request the server could not
      read or refused for a reason this mta does not know (an unknown
      error code or HTTP status: client and server disagree on the API)
  12  appointment state or quota error (e.g. too many appointments per e-mail;
      also 'watch --book --once' when its booking failed so)
  13  the server speaks an older API generation (muc45 or earlier, without
      available-calendar/); this mta needs muc46 or later
 130  interrupted (Ctrl-C); 'watch' and 'simulate' end with 0 instead

Errors are one line on stderr ("mta: error: ..."); with --json stdout also
gets {"error": {"exit_code", "kind", "type", "message"[, "retry_after"]}}.
"""

# Names of the client's fields as the user types them on the command line.
OPTION_NAMES = {
    "end_date": "--to",
    "slots_end_date": "--day",
    "family_name": "--name",
    "email": "--email",
    "telephone": "--phone",
    "custom_textfield": "--text",
    "custom_textfield2": "--text2",
    "link": "LINK",
    "auth_key": "--auth-key",
    "process_id": "--process-id",
    "service_id": "--service",
    "count": "--service (count)",
    "services": "--service",
    "office_ids": "--office",
    "timestamp": "--slot",
}


class CLIError(Exception):
    """An error the command reports itself, with its exit code.

    ``error_type`` names the library's exception behind it, if any (the
    ``type`` of the ``--json`` error document).
    """

    def __init__(
        self, message: str, code: ExitCode, *, error_type: str | None = None
    ) -> None:
        """Store the one-line message and the exit code."""
        super().__init__(message)
        self.code = code
        self.error_type = error_type


# Most specific first: several categories derive from one another.
_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (CLIError, ExitCode.UNEXPECTED),  # replaced by the error's own code
    (MTAValidationError, ExitCode.USAGE),
    (StoreError, ExitCode.USAGE),
    (MTARateLimitError, ExitCode.RATE_LIMITED),
    (MTABudgetExceededError, ExitCode.RATE_LIMITED),
    (MTABlockedError, ExitCode.BLOCKED),
    (MTAMaintenanceError, ExitCode.MAINTENANCE),
    (MTASlotUnavailableError, ExitCode.SLOT_TAKEN),
    (MTANotFoundError, ExitCode.NOT_FOUND),
    (MTAConnectionError, ExitCode.UNREACHABLE),
    (MTACaptchaError, ExitCode.CAPTCHA),
    (MTANoSlotsError, ExitCode.NOTHING_FOUND),
    (MTAInvalidResponseError, ExitCode.INVALID_RESPONSE),
    (MTAServerError, ExitCode.INVALID_RESPONSE),
    (MTAOutdatedAPIError, ExitCode.OUTDATED_API),
    (MTAProtocolError, ExitCode.INVALID_RESPONSE),
    (MTAAppointmentStateError, ExitCode.APPOINTMENT_STATE),
    (MTAQuotaError, ExitCode.APPOINTMENT_STATE),
    (MTAInvalidInputError, ExitCode.USAGE),
    # Any other error the server reported (a category added later): the
    # server said something this mta does not understand.
    (MTAApiError, ExitCode.INVALID_RESPONSE),
)


def exit_code_for(err: BaseException) -> ExitCode:
    """Return the exit code for an exception."""
    if isinstance(err, CLIError):
        return err.code
    return exit_code_for_class(type(err))


def exit_code_for_class(cls: type[BaseException]) -> ExitCode:
    """Return the exit code for an exception class (its most specific match)."""
    for category, code in _CODES:
        if issubclass(cls, category):
            return code
    return ExitCode.UNEXPECTED


def error_class_of_reason(reason: str | None) -> type[MTAError] | None:
    """The library's exception class named by a booking's stored reason.

    A reason reads ``MTATooManyAppointmentsWithSameMailError
    (tooManyAppointmentsWithSameMail)``: the class name, then the city's
    code. None when it names no exception of the library.
    """
    if not reason:
        return None
    name, _, rest = reason.partition(" ")
    found = getattr(exceptions, name, None)
    if isinstance(found, type) and issubclass(found, MTAError):
        return found
    # A class of another module (or a later version): the city's code says.
    return exceptions.ERROR_CLASSES.get(rest.strip("()"))


def server_name(base_url: str | URL) -> str | None:
    """The server's name in messages: None for the city's, else ``host[:port]``."""
    url = URL(str(base_url))
    if url.host == URL(DEFAULT_BASE_URL).host:
        return None
    host = url.host or "?"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{host}:{url.explicit_port}" if url.explicit_port else host


def describe(err: BaseException, *, server: str | None = None) -> str:
    """Return a one-line message for an exception, without personal data.

    The library's messages never carry personal data; the CLI only adds
    advice and names options the way the user typed them. ``server`` is the
    name of the server asked when it is not the city's (see
    :func:`server_name`): the message then names it instead.
    """
    match err:
        case CLIError():
            text = str(err)
        case MTAValidationError():
            option = OPTION_NAMES.get(err.field, err.field)
            detail = str(err).removeprefix(f"{err.field}: ")
            text = f"invalid {option}: {detail}"
        case MTARateLimitError():
            text = (
                f"rate limited by the city's server; retry in {err.retry_after:.0f} s"
            )
        case MTABudgetExceededError():
            text = (
                "request budget exhausted (the city's rate limit); "
                f"retry in {err.retry_after:.0f} s"
            )
        case StoreError():
            text = f"{err} (use another --state FILE, or --no-state)"
        case MTATimeoutError() | MTAConnectionError():
            text = str(err)
        case MTAApiError():
            text = _describe_api(err)
        case MTAError():
            text = str(err)
        case _:
            text = f"unexpected {type(err).__name__}: {err}"
    text = " ".join(text.split())
    # Only what a server said (or did not say); the user's own mistakes
    # and the state file are not the server's.
    if server is None or not isinstance(err, MTAError):
        return text
    if isinstance(err, MTAValidationError | StoreError):
        return text
    return _name_server(text, server)


# How messages speak of the city, and how of another server.
_CITY_WORDS = (
    ("the city's server", "the server {}"),
    ("The city's server", "The server {}"),
    ("the city's gateway", "the gateway of {}"),
    ("the city's booking system", "the booking system at {}"),
    ("the city's rate limit", "the rate limit of {}"),
)


def _name_server(text: str, server: str) -> str:
    for city, other in _CITY_WORDS:
        text = text.replace(city, other.format(server))
    return text


def _describe_api(err: MTAApiError) -> str:
    """Return the message for an error of the city's server, with advice."""
    match err:
        case MTABlockedError():
            return f"blocked by the city's server (this IP address): {_api(err)}"
        case MTAMaintenanceError():
            return f"the city's booking system is in maintenance: {_api(err)}"
        case MTAOutdatedAPIError():
            return f"{err.message} (HTTP {err.status} on {err.route})"
        case MTAProtocolError():
            # Without a code: a status this mta has no category for.
            problem = (
                "refused the request for a reason this mta does not know"
                if err.error_code is None
                else "could not read the request"
            )
            return (
                f"the city's server {problem} (client and server disagree on "
                f"the API; try a newer mta): {_api(err)}"
            )
        case MTASlotUnavailableError():
            return "the slot was taken by someone else; look again with `mta slots`"
        case _:
            return _api(err)


def _api(err: MTAApiError) -> str:
    code = f" [{err.error_code}]" if err.error_code else ""
    return f"{err.message} (HTTP {err.status}{code})"
