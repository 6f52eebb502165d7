"""Exit codes of the ``mta`` command and how errors map to them.

Scripts may rely on these numbers; they are listed in ``mta --help`` too.
"""

from __future__ import annotations

from enum import IntEnum

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

__all__ = ["CLIError", "ExitCode", "describe", "exit_code_for"]


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
      read (client and server disagree on the API: try a newer mta)
  12  appointment state or quota error (e.g. too many appointments per e-mail)
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
    """An error the command reports itself, with its exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        """Store the one-line message and the exit code."""
        super().__init__(message)
        self.code = code


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
)


def exit_code_for(err: BaseException) -> ExitCode:
    """Return the exit code for an exception."""
    if isinstance(err, CLIError):
        return err.code
    for cls, code in _CODES:
        if isinstance(err, cls):
            return code
    return ExitCode.UNEXPECTED


def describe(err: BaseException) -> str:
    """Return a one-line message for an exception, without personal data.

    The library's messages never carry personal data; the CLI only adds
    advice and names options the way the user typed them.
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
    return " ".join(text.split())


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
            return (
                "the city's server could not read the request (client and "
                f"server disagree on the API; try a newer mta): {_api(err)}"
            )
        case MTASlotUnavailableError():
            return "the slot was taken by someone else; look again with `mta slots`"
        case _:
            return _api(err)


def _api(err: MTAApiError) -> str:
    code = f" [{err.error_code}]" if err.error_code else ""
    return f"{err.message} (HTTP {err.status}{code})"
