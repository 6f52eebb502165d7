"""The simulated city's error table and its error bodies.

The table is the simulator's own, written from the city's published
catalogue (zmscitizenapi ``ErrorMessages.php``, muc47), and deliberately
shares nothing with :mod:`mta_client.exceptions`: the simulator is a witness
of how the city behaves, so a mistake in the client's table shows up as a
disagreement in the tests instead of being repeated on both sides.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from aiohttp import web

__all__ = [
    "CITY_ERRORS",
    "CONTENT_TYPE",
    "UNKNOWN_ERROR",
    "CityError",
    "ErrorEntry",
    "InternalError",
    "dumps",
    "error_body",
    "error_response",
    "internal_error_response",
    "json_response",
]

CONTENT_TYPE = "application/json; charset=utf-8"


class ErrorEntry(NamedTuple):
    """One entry of the city's error table.

    Attributes:
        code: the ``errorCode`` the API returns.
        status: the ``statusCode`` (and HTTP status) of the entry.
        error_type: ``error``, ``warning`` or ``info``.
        message: the ``errorMessage`` (English, as the city sends it).

    """

    code: str
    status: int
    error_type: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """Return the entry as an element of the city's ``errors[]``."""
        return {
            "errorCode": self.code,
            "errorMessage": self.message,
            "statusCode": self.status,
            "errorType": self.error_type,
        }


# In the order of the city's table. The city looks entries up by an
# internal key that equals the errorCode except for three (emptyServiceArrays,
# mismatchedArrays, ipBlacklisted); the simulator raises errors by errorCode.
_ENTRIES = (
    ErrorEntry(
        "zmsClientCommunicationError",
        503,
        "error",
        "The service is temporarily unavailable. Please try again later.",
    ),
    ErrorEntry("notImplemented", 501, "error", "Feature not implemented yet."),
    ErrorEntry("notFound", 404, "error", "Endpoint not found."),
    ErrorEntry("invalidRequest", 400, "warning", "Invalid request."),
    ErrorEntry(
        "requestMethodNotAllowed", 405, "warning", "Request method not allowed."
    ),
    ErrorEntry(
        "captchaVerificationFailed", 400, "error", "Captcha verification failed."
    ),
    ErrorEntry(
        "invalidLocationAndServiceCombination",
        400,
        "warning",
        "The provided service(s) do not exist at the given location.",
    ),
    ErrorEntry(
        "invalidStartDate",
        400,
        "warning",
        "startDate is required and must be a valid date.",
    ),
    ErrorEntry(
        "invalidEndDate",
        400,
        "warning",
        "endDate is required and must be a valid date.",
    ),
    ErrorEntry(
        "invalidSlotsStartDate", 400, "warning", "slotsStartDate must be a valid date."
    ),
    ErrorEntry(
        "invalidSlotsEndDate", 400, "warning", "slotsEndDate must be a valid date."
    ),
    ErrorEntry(
        "slotsStartDateAfterEndDate",
        400,
        "warning",
        "slotsStartDate must not be after slotsEndDate.",
    ),
    ErrorEntry(
        "invalidOfficeId", 400, "warning", "officeId should be a 32-bit integer."
    ),
    ErrorEntry(
        "invalidServiceId", 400, "warning", "serviceId should be a 32-bit integer."
    ),
    ErrorEntry(
        "EMPTY_SERVICE_ARRAYS",
        400,
        "warning",
        "Service IDs and counts cannot be empty.",
    ),
    ErrorEntry(
        "MISMATCHED_ARRAYS",
        400,
        "warning",
        "Service IDs and counts must have same length.",
    ),
    ErrorEntry(
        "invalidServiceCount",
        400,
        "warning",
        "serviceCounts should be an array of numeric values.",
    ),
    ErrorEntry(
        "invalidProcessId",
        400,
        "warning",
        "processId should be a positive 32-bit integer.",
    ),
    ErrorEntry(
        "invalidScopeId", 400, "warning", "scopeId should be a positive 32-bit integer."
    ),
    ErrorEntry("invalidAuthKey", 400, "warning", "authKey should be a string."),
    ErrorEntry(
        "invalidDate", 400, "warning", "date is required and must be a valid date."
    ),
    ErrorEntry(
        "invalidTimestamp",
        400,
        "warning",
        (
            "Missing timestamp or invalid timestamp format. It should be a positive "
            "numeric value."
        ),
    ),
    ErrorEntry(
        "invalidFamilyName", 400, "warning", "familyName should be a non-empty string."
    ),
    ErrorEntry(
        "invalidEmail", 400, "warning", "email should be a valid email address."
    ),
    ErrorEntry(
        "invalidTelephone",
        400,
        "warning",
        "telephone should be a numeric string between 7 and 15 digits.",
    ),
    ErrorEntry(
        "invalidCustomTextfield",
        400,
        "warning",
        (
            "customTextfield must be non-empty when required and at most 250 "
            "characters after normalization."
        ),
    ),
    ErrorEntry(
        "invalidCustomTextfield2",
        400,
        "warning",
        (
            "customTextfield2 must be non-empty when required and at most 250 "
            "characters after normalization."
        ),
    ),
    ErrorEntry(
        "appointmentCanNotBeCanceled",
        406,
        "warning",
        "The selected appointment cannot be canceled.",
    ),
    ErrorEntry(
        "appointmentNotAvailable",
        404,
        "error",
        "The selected appointment is unfortunately no longer available.",
    ),
    ErrorEntry(
        "noAppointmentForThisDay",
        404,
        "info",
        "No available days found for the given criteria.",
    ),
    ErrorEntry(
        "captchaVerificationError",
        400,
        "error",
        "An error occurred during captcha verification.",
    ),
    ErrorEntry("captchaMissing", 400, "error", "Missing captcha token."),
    ErrorEntry("captchaInvalid", 400, "error", "Invalid captcha token."),
    ErrorEntry("captchaExpired", 400, "error", "Captcha token expired."),
    ErrorEntry(
        "serviceUnavailable",
        503,
        "error",
        "Service Unavailable: The application is under maintenance.",
    ),
    ErrorEntry(
        "invalidSchema", 400, "warning", "Data does not match the required schema."
    ),
    ErrorEntry(
        "internalError",
        500,
        "error",
        "An internal error occurred. Please try again later.",
    ),
    ErrorEntry("invalidApiClient", 400, "warning", "Invalid API client."),
    ErrorEntry("sourceNotFound", 404, "info", "Source not found."),
    ErrorEntry("departmentNotFound", 404, "error", "Department not found."),
    ErrorEntry("mailNotFound", 404, "error", "Mail template not found."),
    ErrorEntry("organisationNotFound", 404, "error", "Organisation not found."),
    ErrorEntry("providerNotFound", 404, "error", "Provider not found."),
    ErrorEntry("requestNotFound", 404, "error", "Requested service not found."),
    ErrorEntry("scopeNotFound", 404, "error", "Scope not found."),
    ErrorEntry("processInvalid", 400, "warning", "The process data is invalid."),
    ErrorEntry(
        "processAlreadyExists", 409, "warning", "An appointment process already exists."
    ),
    ErrorEntry(
        "processDeleteFailed", 500, "error", "Failed to delete the appointment."
    ),
    ErrorEntry(
        "processAlreadyCalled",
        409,
        "warning",
        "The appointment has already been called.",
    ),
    ErrorEntry(
        "processNotReservedAnymore",
        409,
        "error",
        "The appointment is no longer reserved.",
    ),
    ErrorEntry(
        "processNotPreconfirmedAnymore",
        409,
        "error",
        "The appointment is no longer preconfirmed.",
    ),
    ErrorEntry("emailIsRequired", 406, "warning", "Email address is required."),
    ErrorEntry("telephoneIsRequired", 406, "warning", "Telephone number is required."),
    ErrorEntry(
        "appointmentNotFound",
        404,
        "error",
        (
            "Maybe you have already canceled your appointment? Otherwise, please check"
            " that you have used the correct link."
        ),
    ),
    ErrorEntry("authKeyMismatch", 406, "warning", "Invalid authentication key."),
    ErrorEntry("invalidCredentials", 406, "warning", "Invalid credentials."),
    ErrorEntry(
        "noAppointmentForThisScope", 404, "info", "Please try again at a later time."
    ),
    ErrorEntry(
        "tooManyAppointmentsWithSameMail",
        406,
        "error",
        (
            "You can only book a limited number of appointments with your e-mail "
            "address. Please cancel another appointment before you book a new one."
        ),
    ),
    ErrorEntry(
        "tooManySlotsPerAppointment",
        400,
        "error",
        "The number of slots exceeds the maximum allowed slots per appointment.",
    ),
    ErrorEntry(
        "tooManyServicesPerAppointment",
        400,
        "error",
        "The quantity of a service exceeds the maximum allowed quantity.",
    ),
    ErrorEntry("scopesNotFound", 404, "error", "No scopes found."),
    ErrorEntry(
        "preconfirmationExpired",
        400,
        "error",
        (
            "Unfortunately, the time for activating your appointment has expired. "
            "Please schedule the appointment again."
        ),
    ),
    ErrorEntry(
        "IP_BLACKLISTED", 403, "error", "Access denied - IP address is blacklisted."
    ),
    ErrorEntry(
        "rateLimitExceeded",
        429,
        "warning",
        "Rate limit exceeded. Please try again later.",
    ),
    ErrorEntry("requestEntityTooLarge", 413, "warning", "Request entity too large."),
    ErrorEntry("securityHeaderViolation", 403, "error", "Security policy violation."),
    ErrorEntry(
        "unauthorized", 403, "error", "You are not authorized to access this resource."
    ),
)

CITY_ERRORS: dict[str, ErrorEntry] = {entry.code: entry for entry in _ENTRIES}
"""The city's 67 error codes, by ``errorCode``."""

UNKNOWN_ERROR = ErrorEntry("unknownError", 520, "error", "An unknown error occurred.")
"""What ``ErrorMessages::get`` answers for a key not in the table."""


def dumps(data: Any) -> str:
    """Encode JSON the way the city's PHP does (unescaped unicode, compact)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Return ``data`` as the city's JSON response."""
    return web.Response(
        body=dumps(data).encode(),
        status=status,
        headers={"Content-Type": CONTENT_TYPE},
    )


def error_body(*codes: str) -> tuple[dict[str, Any], int]:
    """Return the city's ``{"errors": [...]}`` body and its HTTP status.

    The status is the highest ``statusCode`` among the errors, as the city's
    ``ErrorMessages::getHighestStatusCode`` computes it. Unknown codes become
    ``unknownError`` (HTTP 520), like ``ErrorMessages::get``.
    """
    entries = [CITY_ERRORS.get(code, UNKNOWN_ERROR) for code in codes]
    status = max(entry.status for entry in entries)
    return {"errors": [entry.to_json() for entry in entries]}, status


def error_response(*codes: str, status: int | None = None) -> web.Response:
    """Return the city's error response for ``codes``.

    Args:
        *codes: the city's ``errorCode`` values, in order.
        status: HTTP status overriding the computed one (the city does this for
            a few routes, e.g. ``/my-appointments/`` answers 401).

    """
    body, computed = error_body(*codes)
    return json_response(body, status=status if status is not None else computed)


def internal_error_response(code: int = 500) -> web.Response:
    """Return the city's envelope for an uncaught exception (``ErrorHandler``)."""
    body = {"error": {"message": "An internal error has occurred.", "code": code}}
    return json_response(body, status=code)


class CityError(Exception):
    """Raised inside the simulator to answer with the city's error body."""

    def __init__(self, *codes: str, status: int | None = None) -> None:
        """Remember the error codes (all of one validation step)."""
        super().__init__(", ".join(codes))
        self.codes = codes
        self.status = status

    def response(self) -> web.Response:
        """Return the error as an HTTP response."""
        return error_response(*self.codes, status=self.status)


class InternalError(Exception):
    """Raised where the city's PHP would throw an uncaught error (HTTP 500)."""
