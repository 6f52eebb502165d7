"""Exceptions of the Munich appointment client.

Every exception the library raises derives from :class:`MTAError`. Errors the
city's server reports derive from :class:`MTAApiError` and carry the city's
``errorCode``, the HTTP status and the message. Each of the 67 codes in the
city's catalogue has its own class (``MTA<Code>Error``) below a category class
that callers can catch: :class:`MTARateLimitError`, :class:`MTABlockedError`,
:class:`MTAMaintenanceError`, :class:`MTACaptchaError`,
:class:`MTASlotUnavailableError`, :class:`MTAInvalidInputError`,
:class:`MTAProtocolError`, :class:`MTAServerError`, … (the table above the
per-code classes says which code is in which category, and why).
:class:`MTAOutdatedAPIError` reports a server of an older API generation.

Messages never contain personal data: they name the field, never its value.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ERROR_CLASSES",
    "MTAApiError",
    "MTAAppointmentCanNotBeCanceledError",
    "MTAAppointmentNotAvailableError",
    "MTAAppointmentNotFoundError",
    "MTAAppointmentStateError",
    "MTAAuthKeyMismatchError",
    "MTABlockedError",
    "MTABudgetExceededError",
    "MTACaptchaError",
    "MTACaptchaExpiredError",
    "MTACaptchaInvalidError",
    "MTACaptchaMissingError",
    "MTACaptchaVerificationError",
    "MTACaptchaVerificationFailedError",
    "MTAConnectionError",
    "MTADepartmentNotFoundError",
    "MTAEmailIsRequiredError",
    "MTAEmptyServiceArraysError",
    "MTAError",
    "MTAInternalError",
    "MTAInvalidApiClientError",
    "MTAInvalidAuthKeyError",
    "MTAInvalidCredentialsError",
    "MTAInvalidCustomTextfield2Error",
    "MTAInvalidCustomTextfieldError",
    "MTAInvalidDateError",
    "MTAInvalidEmailError",
    "MTAInvalidEndDateError",
    "MTAInvalidFamilyNameError",
    "MTAInvalidInputError",
    "MTAInvalidLocationAndServiceCombinationError",
    "MTAInvalidOfficeIdError",
    "MTAInvalidProcessIdError",
    "MTAInvalidRequestError",
    "MTAInvalidResponseError",
    "MTAInvalidSchemaError",
    "MTAInvalidScopeIdError",
    "MTAInvalidServiceCountError",
    "MTAInvalidServiceIdError",
    "MTAInvalidSlotsEndDateError",
    "MTAInvalidSlotsStartDateError",
    "MTAInvalidStartDateError",
    "MTAInvalidTelephoneError",
    "MTAInvalidTimestampError",
    "MTAIpBlacklistedError",
    "MTAMailNotFoundError",
    "MTAMaintenanceError",
    "MTAMismatchedArraysError",
    "MTANoAppointmentForThisDayError",
    "MTANoAppointmentForThisScopeError",
    "MTANoSlotsError",
    "MTANotFoundError",
    "MTANotImplementedError",
    "MTAOrganisationNotFoundError",
    "MTAOutdatedAPIError",
    "MTAPreconfirmationExpiredError",
    "MTAProcessAlreadyCalledError",
    "MTAProcessAlreadyExistsError",
    "MTAProcessDeleteFailedError",
    "MTAProcessInvalidError",
    "MTAProcessNotPreconfirmedAnymoreError",
    "MTAProcessNotReservedAnymoreError",
    "MTAProtocolError",
    "MTAProviderNotFoundError",
    "MTAQuotaError",
    "MTARateLimitError",
    "MTARateLimitExceededError",
    "MTARequestEntityTooLargeError",
    "MTARequestMethodNotAllowedError",
    "MTARequestNotFoundError",
    "MTARouteNotFoundError",
    "MTAScopeNotFoundError",
    "MTAScopesNotFoundError",
    "MTASecurityHeaderViolationError",
    "MTAServerError",
    "MTAServiceUnavailableError",
    "MTASlotUnavailableError",
    "MTASlotsStartDateAfterEndDateError",
    "MTASourceNotFoundError",
    "MTATelephoneIsRequiredError",
    "MTATimeoutError",
    "MTATooManyAppointmentsWithSameMailError",
    "MTATooManyServicesPerAppointmentError",
    "MTATooManySlotsPerAppointmentError",
    "MTAUnauthorizedError",
    "MTAUnknownError",
    "MTAValidationError",
    "MTAZmsClientCommunicationError",
    "error_class_for",
]


class MTAError(Exception):
    """Base of every exception raised by ``mta_client``."""


class MTAConnectionError(MTAError):
    """The city's server could not be reached (DNS, refused, reset, TLS)."""


class MTATimeoutError(MTAConnectionError):
    """The city's server did not answer within the request timeout."""


class MTAInvalidResponseError(MTAError):
    """The server answered with something that is not the documented shape."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Store the HTTP status next to the message."""
        super().__init__(message)
        self.status = status


class MTAValidationError(MTAError, ValueError):
    """Input was rejected by the client before anything was sent.

    ``field`` names the offending field; its value is never repeated, because
    it may be personal data.
    """

    def __init__(self, field: str, message: str) -> None:
        """Store the field name next to the message."""
        super().__init__(f"{field}: {message}")
        self.field = field


class MTABudgetExceededError(MTAError):
    """The client's request budget would make the server refuse this request.

    Raised instead of sending, when waiting for the budget would take longer
    than the caller allowed. ``retry_after`` is in seconds.
    """

    def __init__(self, retry_after: float) -> None:
        """Store when the budget allows the next request."""
        super().__init__(f"request budget exhausted; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class MTAApiError(MTAError):
    """An error reported by the city's server.

    Attributes:
        code: the city's ``errorCode`` (``None`` for a gateway page without one).
        status: the HTTP status of the response.
        message: the city's ``errorMessage``.
        error_type: ``error``, ``warning`` or ``info`` as the city classifies it.

    """

    code: ClassVar[str | None] = None
    default_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "The city's server reported an error."
    default_error_type: ClassVar[str] = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """Build the error from what the server said, defaulting to the catalogue."""
        self.message = message or self.default_message
        self.status = status if status is not None else self.default_status
        self.error_code = code if code is not None else type(self).code
        self.error_type = error_type or self.default_error_type
        self.related: list[str] = []
        """Codes of further errors the server reported with this one."""
        prefix = f"{self.error_code} " if self.error_code else ""
        super().__init__(f"{prefix}(HTTP {self.status}): {self.message}")

    def to_body(self) -> dict[str, object]:
        """Return the error as the city's ``errors[]`` entry."""
        return {
            "errorCode": self.error_code,
            "errorMessage": self.message,
            "statusCode": self.status,
            "errorType": self.error_type,
        }


# --- categories -------------------------------------------------------------


class MTARateLimitError(MTAApiError):
    """The server's rate limiter refused the request (HTTP 429).

    ``retry_after`` is how many seconds to wait: the city sends no
    ``Retry-After``, and its window restarts on every counted request, so the
    client waits at least one whole window.
    """

    default_status = 429

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        retry_after: float = 60.0,
    ) -> None:
        """Build the error and remember when to retry."""
        super().__init__(message, status=status, code=code, error_type=error_type)
        self.retry_after = retry_after


class MTABlockedError(MTAApiError):
    """The caller's IP address is blocked (city blacklist or gateway block page)."""

    default_status = 403
    default_message = "Access denied by the city's server."


class MTAMaintenanceError(MTAApiError):
    """The booking system is in maintenance mode."""

    default_status = 503


class MTAServerError(MTAApiError):
    """The server failed (5xx, or an unexpected internal error envelope)."""


class MTANotFoundError(MTAApiError):
    """A route, office, service, scope or appointment does not exist."""

    default_status = 404


class MTACaptchaError(MTAApiError):
    """The captcha token was missing, invalid or expired, or verification failed."""

    default_status = 400


class MTAInvalidInputError(MTAApiError):
    """The server rejected the request's input (400-class validation)."""

    default_status = 400
    default_error_type = "warning"


class MTASlotUnavailableError(MTAApiError):
    """The chosen slot is no longer free: someone else was faster."""

    default_status = 404


class MTAAppointmentStateError(MTAApiError):
    """The appointment is not in a state that allows the operation."""

    default_status = 409


class MTAQuotaError(MTAApiError):
    """A per-person limit was reached (appointments per e-mail, slots, quantity)."""

    default_status = 406


class MTANoSlotsError(MTAApiError):
    """The server found nothing free for the request; look again later.

    Only the legacy availability routes (muc45 and earlier) answered "nothing
    free" with an error; the current calendar answers an empty list.
    """

    default_status = 404
    default_error_type = "info"


class MTAProtocolError(MTAApiError):
    """The client and the server disagree about the API itself.

    The request passed the client's own checks, but the server could not read
    it: a route or method it does not know, a body or parameter it does not
    expect. Neither retrying nor other input helps; the city changed its API
    or this library has a bug, so a newer ``mta_client`` is the fix.
    """

    default_status = 400
    default_error_type = "warning"


class MTAOutdatedAPIError(MTAProtocolError):
    """The server speaks an older API generation than this client.

    Up to release muc45 the city answered availability at
    ``available-days-by-office/`` and ``available-appointments-by-office/``;
    this client asks ``available-calendar/`` (muc46 and later). Such a
    server answers that route with 404 ``notFound``, which the client
    reports as this error instead of "not found". ``route`` is the route
    the server did not know.
    """

    default_status = 404
    default_error_type = "error"
    default_message = (
        "The server speaks an older API generation (muc45 or earlier): it has "
        "no available-calendar/ route, which this client needs (muc46 or later)."
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        route: str = "available-calendar/",
    ) -> None:
        """Build the error; ``code`` is what the server said (``notFound``)."""
        super().__init__(
            message, status=status, code=code or "notFound", error_type=error_type
        )
        self.route = route


# How each of the city's codes is categorised: by what the person using the
# client should do about it, not by its HTTP status (the city answers 400
# for a missing request body and for a mistyped e-mail address alike).
#
# category (exit code)          codes                       what to do
# ----------------------------  --------------------------  --------------------
# MTAInvalidInputError (2)      invalidLocationAndService-  change the option or
#                               Combination, invalidStart-  field the error
#                               Date, invalidEndDate,       names: its value
#                               invalidSlotsStartDate,      came from the user
#                               invalidSlotsEndDate, slots-
#                               StartDateAfterEndDate,
#                               invalidOfficeId, invalid-
#                               ServiceId, invalidService-
#                               Count, invalidProcessId,
#                               invalidAuthKey, invalid-
#                               Timestamp, invalidFamily-
#                               Name, invalidEmail, invalid-
#                               Telephone, invalidCustom-
#                               Textfield(2), emailIs-
#                               Required, telephoneIs-
#                               Required
# MTAProtocolError (11)         notFound (a route),         nothing the user
#                               requestMethodNotAllowed,    typed is wrong: the
#                               invalidRequest, notImple-   client sent what the
#                               mented, EMPTY_SERVICE_      server cannot read
#                               ARRAYS, MISMATCHED_ARRAYS,  (the client always
#                               invalidScopeId, invalid-    sends both arrays,
#                               Date, invalidSchema,        never a scopeId or
#                               invalidApiClient, process-  date, never a huge
#                               Invalid, requestEntityToo-  body, always an
#                               Large, unauthorized         authKey); update
# MTAOutdatedAPIError (13)      notFound on available-      the server is older
#                               calendar/                   than muc46
# MTAServerError (11)           zmsClientCommunication-     the city's side
#                               Error, internalError,       failed (its backend,
#                               processDeleteFailed,        its middleware, its
#                               securityHeaderViolation,    own data): try later
#                               sourceNotFound, department-
#                               NotFound, mailNotFound,
#                               organisationNotFound,
#                               unknownError
# MTAMaintenanceError (6)       serviceUnavailable          wait for its end
# MTABlockedError (5)           IP_BLACKLISTED              this IP is blocked
# MTARateLimitError (4)         rateLimitExceeded           wait a window
# MTANotFoundError (7)          providerNotFound (office),  check the office,
#                               requestNotFound (service),  service or
#                               scopeNotFound, scopesNot-   appointment named
#                               Found, appointmentNotFound
# MTANoSlotsError (3)           noAppointmentForThisDay,    nothing free: look
#                               noAppointmentForThisScope   again later
# MTASlotUnavailableError (8)   appointmentNotAvailable     pick another slot
# MTACaptchaError (10)          captchaMissing, captcha-    a new token (the
#                               Invalid, captchaExpired,    client renews it
#                               captchaVerificationFailed,  once by itself)
#                               captchaVerificationError
# MTAAppointmentStateError (12) appointmentCanNotBe-        the appointment has
#                               Canceled, processAlready-   moved on (expired,
#                               Exists, processAlready-     cancelled, called,
#                               Called, processNotReserved- key rotated): look
#                               Anymore, processNotPre-     at it, book anew
#                               confirmedAnymore, authKey-
#                               Mismatch, invalidCreden-
#                               tials, preconfirmation-
#                               Expired
# MTAQuotaError (12)            tooManyAppointmentsWith-    cancel another
#                               SameMail, tooManySlotsPer-  booking, or ask for
#                               Appointment, tooMany-       fewer services
#                               ServicesPerAppointment


# --- one class per code of the city's catalogue -----------------------------
# Status, message and type are the defaults of the city's ErrorMessages table
# (zmscitizenapi, muc47); the server may send other values, which win.


class MTAZmsClientCommunicationError(MTAServerError):
    """The city's ``zmsClientCommunicationError`` error."""

    code = "zmsClientCommunicationError"
    default_status = 503
    default_message = "The service is temporarily unavailable. Please try again later."


class MTANotImplementedError(MTAProtocolError):
    """The city's ``notImplemented`` error."""

    code = "notImplemented"
    default_status = 501
    default_error_type = "error"
    default_message = "Feature not implemented yet."


class MTARouteNotFoundError(MTAProtocolError):
    """The city's ``notFound`` error."""

    code = "notFound"
    default_status = 404
    default_error_type = "error"
    default_message = "Endpoint not found."


class MTAInvalidRequestError(MTAProtocolError):
    """The city's ``invalidRequest`` error."""

    code = "invalidRequest"
    default_message = "Invalid request."


class MTARequestMethodNotAllowedError(MTAProtocolError):
    """The city's ``requestMethodNotAllowed`` error."""

    code = "requestMethodNotAllowed"
    default_status = 405
    default_message = "Request method not allowed."


class MTACaptchaVerificationFailedError(MTACaptchaError):
    """The city's ``captchaVerificationFailed`` error."""

    code = "captchaVerificationFailed"
    default_message = "Captcha verification failed."


class MTAInvalidLocationAndServiceCombinationError(MTAInvalidInputError):
    """The city's ``invalidLocationAndServiceCombination`` error."""

    code = "invalidLocationAndServiceCombination"
    default_message = "The provided service(s) do not exist at the given location."


class MTAInvalidStartDateError(MTAInvalidInputError):
    """The city's ``invalidStartDate`` error."""

    code = "invalidStartDate"
    default_message = "startDate is required and must be a valid date."


class MTAInvalidEndDateError(MTAInvalidInputError):
    """The city's ``invalidEndDate`` error."""

    code = "invalidEndDate"
    default_message = "endDate is required and must be a valid date."


class MTAInvalidSlotsStartDateError(MTAInvalidInputError):
    """The city's ``invalidSlotsStartDate`` error."""

    code = "invalidSlotsStartDate"
    default_message = "slotsStartDate must be a valid date."


class MTAInvalidSlotsEndDateError(MTAInvalidInputError):
    """The city's ``invalidSlotsEndDate`` error."""

    code = "invalidSlotsEndDate"
    default_message = "slotsEndDate must be a valid date."


class MTASlotsStartDateAfterEndDateError(MTAInvalidInputError):
    """The city's ``slotsStartDateAfterEndDate`` error."""

    code = "slotsStartDateAfterEndDate"
    default_message = "slotsStartDate must not be after slotsEndDate."


class MTAInvalidOfficeIdError(MTAInvalidInputError):
    """The city's ``invalidOfficeId`` error."""

    code = "invalidOfficeId"
    default_message = "officeId should be a 32-bit integer."


class MTAInvalidServiceIdError(MTAInvalidInputError):
    """The city's ``invalidServiceId`` error."""

    code = "invalidServiceId"
    default_message = "serviceId should be a 32-bit integer."


class MTAEmptyServiceArraysError(MTAProtocolError):
    """The city's ``EMPTY_SERVICE_ARRAYS`` error."""

    code = "EMPTY_SERVICE_ARRAYS"
    default_message = "Service IDs and counts cannot be empty."


class MTAMismatchedArraysError(MTAProtocolError):
    """The city's ``MISMATCHED_ARRAYS`` error."""

    code = "MISMATCHED_ARRAYS"
    default_message = "Service IDs and counts must have same length."


class MTAInvalidServiceCountError(MTAInvalidInputError):
    """The city's ``invalidServiceCount`` error."""

    code = "invalidServiceCount"
    default_message = "serviceCounts should be an array of numeric values."


class MTAInvalidProcessIdError(MTAInvalidInputError):
    """The city's ``invalidProcessId`` error."""

    code = "invalidProcessId"
    default_message = "processId should be a positive 32-bit integer."


class MTAInvalidScopeIdError(MTAProtocolError):
    """The city's ``invalidScopeId`` error."""

    code = "invalidScopeId"
    default_message = "scopeId should be a positive 32-bit integer."


class MTAInvalidAuthKeyError(MTAInvalidInputError):
    """The city's ``invalidAuthKey`` error."""

    code = "invalidAuthKey"
    default_message = "authKey should be a string."


class MTAInvalidDateError(MTAProtocolError):
    """The city's ``invalidDate`` error."""

    code = "invalidDate"
    default_message = "date is required and must be a valid date."


class MTAInvalidTimestampError(MTAInvalidInputError):
    """The city's ``invalidTimestamp`` error."""

    code = "invalidTimestamp"
    default_message = (
        "Missing timestamp or invalid timestamp format. It should be a positive "
        "numeric value."
    )


class MTAInvalidFamilyNameError(MTAInvalidInputError):
    """The city's ``invalidFamilyName`` error."""

    code = "invalidFamilyName"
    default_message = "familyName should be a non-empty string."


class MTAInvalidEmailError(MTAInvalidInputError):
    """The city's ``invalidEmail`` error."""

    code = "invalidEmail"
    default_message = "email should be a valid email address."


class MTAInvalidTelephoneError(MTAInvalidInputError):
    """The city's ``invalidTelephone`` error."""

    code = "invalidTelephone"
    default_message = "telephone should be a numeric string between 7 and 15 digits."


class MTAInvalidCustomTextfieldError(MTAInvalidInputError):
    """The city's ``invalidCustomTextfield`` error."""

    code = "invalidCustomTextfield"
    default_message = (
        "customTextfield must be non-empty when required and at most 250 "
        "characters after normalization."
    )


class MTAInvalidCustomTextfield2Error(MTAInvalidInputError):
    """The city's ``invalidCustomTextfield2`` error."""

    code = "invalidCustomTextfield2"
    default_message = (
        "customTextfield2 must be non-empty when required and at most 250 "
        "characters after normalization."
    )


class MTAAppointmentCanNotBeCanceledError(MTAAppointmentStateError):
    """The city's ``appointmentCanNotBeCanceled`` error."""

    code = "appointmentCanNotBeCanceled"
    default_status = 406
    default_message = "The selected appointment cannot be canceled."
    default_error_type = "warning"


class MTAAppointmentNotAvailableError(MTASlotUnavailableError):
    """The city's ``appointmentNotAvailable`` error."""

    code = "appointmentNotAvailable"
    default_message = "The selected appointment is unfortunately no longer available."


class MTANoAppointmentForThisDayError(MTANoSlotsError):
    """The city's ``noAppointmentForThisDay`` error."""

    code = "noAppointmentForThisDay"
    default_message = "No available days found for the given criteria."
    default_error_type = "info"


class MTACaptchaVerificationError(MTACaptchaError):
    """The city's ``captchaVerificationError`` error."""

    code = "captchaVerificationError"
    default_message = "An error occurred during captcha verification."


class MTACaptchaMissingError(MTACaptchaError):
    """The city's ``captchaMissing`` error."""

    code = "captchaMissing"
    default_message = "Missing captcha token."


class MTACaptchaInvalidError(MTACaptchaError):
    """The city's ``captchaInvalid`` error."""

    code = "captchaInvalid"
    default_message = "Invalid captcha token."


class MTACaptchaExpiredError(MTACaptchaError):
    """The city's ``captchaExpired`` error."""

    code = "captchaExpired"
    default_message = "Captcha token expired."


class MTAServiceUnavailableError(MTAMaintenanceError):
    """The city's ``serviceUnavailable`` error."""

    code = "serviceUnavailable"
    default_message = "Service Unavailable: The application is under maintenance."


class MTAInvalidSchemaError(MTAProtocolError):
    """The city's ``invalidSchema`` error."""

    code = "invalidSchema"
    default_message = "Data does not match the required schema."


class MTAInternalError(MTAServerError):
    """The city's ``internalError`` error."""

    code = "internalError"
    default_message = "An internal error occurred. Please try again later."


class MTAInvalidApiClientError(MTAProtocolError):
    """The city's ``invalidApiClient`` error."""

    code = "invalidApiClient"
    default_message = "Invalid API client."


class MTASourceNotFoundError(MTAServerError):
    """The city's ``sourceNotFound`` error."""

    code = "sourceNotFound"
    default_status = 404
    default_message = "Source not found."
    default_error_type = "info"


class MTADepartmentNotFoundError(MTAServerError):
    """The city's ``departmentNotFound`` error."""

    code = "departmentNotFound"
    default_status = 404
    default_message = "Department not found."


class MTAMailNotFoundError(MTAServerError):
    """The city's ``mailNotFound`` error."""

    code = "mailNotFound"
    default_status = 404
    default_message = "Mail template not found."


class MTAOrganisationNotFoundError(MTAServerError):
    """The city's ``organisationNotFound`` error."""

    code = "organisationNotFound"
    default_status = 404
    default_message = "Organisation not found."


class MTAProviderNotFoundError(MTANotFoundError):
    """The city's ``providerNotFound`` error."""

    code = "providerNotFound"
    default_message = "Provider not found."


class MTARequestNotFoundError(MTANotFoundError):
    """The city's ``requestNotFound`` error."""

    code = "requestNotFound"
    default_message = "Requested service not found."


class MTAScopeNotFoundError(MTANotFoundError):
    """The city's ``scopeNotFound`` error."""

    code = "scopeNotFound"
    default_message = "Scope not found."


class MTAProcessInvalidError(MTAProtocolError):
    """The city's ``processInvalid`` error."""

    code = "processInvalid"
    default_message = "The process data is invalid."


class MTAProcessAlreadyExistsError(MTAAppointmentStateError):
    """The city's ``processAlreadyExists`` error."""

    code = "processAlreadyExists"
    default_message = "An appointment process already exists."
    default_error_type = "warning"


class MTAProcessDeleteFailedError(MTAServerError):
    """The city's ``processDeleteFailed`` error."""

    code = "processDeleteFailed"
    default_message = "Failed to delete the appointment."


class MTAProcessAlreadyCalledError(MTAAppointmentStateError):
    """The city's ``processAlreadyCalled`` error."""

    code = "processAlreadyCalled"
    default_message = "The appointment has already been called."
    default_error_type = "warning"


class MTAProcessNotReservedAnymoreError(MTAAppointmentStateError):
    """The city's ``processNotReservedAnymore`` error."""

    code = "processNotReservedAnymore"
    default_message = "The appointment is no longer reserved."


class MTAProcessNotPreconfirmedAnymoreError(MTAAppointmentStateError):
    """The city's ``processNotPreconfirmedAnymore`` error."""

    code = "processNotPreconfirmedAnymore"
    default_message = "The appointment is no longer preconfirmed."


class MTAEmailIsRequiredError(MTAInvalidInputError):
    """The city's ``emailIsRequired`` error."""

    code = "emailIsRequired"
    default_status = 406
    default_message = "Email address is required."


class MTATelephoneIsRequiredError(MTAInvalidInputError):
    """The city's ``telephoneIsRequired`` error."""

    code = "telephoneIsRequired"
    default_status = 406
    default_message = "Telephone number is required."


class MTAAppointmentNotFoundError(MTANotFoundError):
    """The city's ``appointmentNotFound`` error."""

    code = "appointmentNotFound"
    default_message = (
        "Maybe you have already canceled your appointment? Otherwise, please "
        "check that you have used the correct link."
    )


class MTAAuthKeyMismatchError(MTAAppointmentStateError):
    """The city's ``authKeyMismatch`` error."""

    code = "authKeyMismatch"
    default_status = 406
    default_message = "Invalid authentication key."
    default_error_type = "warning"


class MTAInvalidCredentialsError(MTAAppointmentStateError):
    """The city's ``invalidCredentials`` error."""

    code = "invalidCredentials"
    default_status = 406
    default_message = "Invalid credentials."
    default_error_type = "warning"


class MTANoAppointmentForThisScopeError(MTANoSlotsError):
    """The city's ``noAppointmentForThisScope`` error."""

    code = "noAppointmentForThisScope"
    default_message = "Please try again at a later time."
    default_error_type = "info"


class MTATooManyAppointmentsWithSameMailError(MTAQuotaError):
    """The city's ``tooManyAppointmentsWithSameMail`` error."""

    code = "tooManyAppointmentsWithSameMail"
    default_message = (
        "You can only book a limited number of appointments with your e-mail "
        "address. Please cancel another appointment before you book a new one."
    )


class MTATooManySlotsPerAppointmentError(MTAQuotaError):
    """The city's ``tooManySlotsPerAppointment`` error."""

    code = "tooManySlotsPerAppointment"
    default_status = 400
    default_message = (
        "The number of slots exceeds the maximum allowed slots per appointment."
    )


class MTATooManyServicesPerAppointmentError(MTAQuotaError):
    """The city's ``tooManyServicesPerAppointment`` error."""

    code = "tooManyServicesPerAppointment"
    default_status = 400
    default_message = "The quantity of a service exceeds the maximum allowed quantity."


class MTAScopesNotFoundError(MTANotFoundError):
    """The city's ``scopesNotFound`` error."""

    code = "scopesNotFound"
    default_message = "No scopes found."


class MTAPreconfirmationExpiredError(MTAAppointmentStateError):
    """The city's ``preconfirmationExpired`` error."""

    code = "preconfirmationExpired"
    default_status = 400
    default_message = (
        "Unfortunately, the time for activating your appointment has expired. "
        "Please schedule the appointment again."
    )


class MTAIpBlacklistedError(MTABlockedError):
    """The city's ``IP_BLACKLISTED`` error."""

    code = "IP_BLACKLISTED"
    default_message = "Access denied - IP address is blacklisted."


class MTARateLimitExceededError(MTARateLimitError):
    """The city's ``rateLimitExceeded`` error."""

    code = "rateLimitExceeded"
    default_message = "Rate limit exceeded. Please try again later."
    default_error_type = "warning"


class MTARequestEntityTooLargeError(MTAProtocolError):
    """The city's ``requestEntityTooLarge`` error."""

    code = "requestEntityTooLarge"
    default_status = 413
    default_message = "Request entity too large."


class MTASecurityHeaderViolationError(MTAServerError):
    """The city's ``securityHeaderViolation`` error."""

    code = "securityHeaderViolation"
    default_status = 403
    default_message = "Security policy violation."


class MTAUnauthorizedError(MTAProtocolError):
    """The city's ``unauthorized`` error."""

    code = "unauthorized"
    default_error_type = "error"
    default_status = 403
    default_message = "You are not authorized to access this resource."


class MTAUnknownError(MTAServerError):
    """The city's ``unknownError`` error."""

    code = "unknownError"
    default_status = 520
    default_message = "An unknown error occurred."


def _catalogue() -> dict[str, type[MTAApiError]]:
    found: dict[str, type[MTAApiError]] = {}
    pending: list[type[MTAApiError]] = [MTAApiError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.code is not None and cls.__module__ == __name__:
            found[cls.code] = cls
    return found


ERROR_CLASSES: dict[str, type[MTAApiError]] = _catalogue()
"""The city's ``errorCode`` values mapped to their exception classes."""


# The category of an error without a known code, by its HTTP status.
_BY_STATUS: dict[int, type[MTAApiError]] = {
    403: MTABlockedError,
    404: MTANotFoundError,
    405: MTAProtocolError,  # a method the server does not take
    429: MTARateLimitError,
}


def error_class_for(code: str | None, status: int) -> type[MTAApiError]:
    """Return the exception class for an error code, or a category by status.

    An error without a known code and with a status of no category above
    (400, 409, 418, ...) is a :class:`MTAProtocolError`: the server refused
    the request for a reason this client does not know, so client and
    server disagree about the API. 5xx statuses are :class:`MTAServerError`.
    """
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:  # noqa: PLR2004
        return MTAServerError
    return MTAProtocolError
