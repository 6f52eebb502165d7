"""The client's table of the city's error codes, checked against two witnesses.

1. A table written here from the city's catalogue (``ErrorMessages.php``,
   muc47): each code, its HTTP status, and the category that says what the
   person using the client should do. It is not derived from the library's
   own mapping, so a wrong category in the library fails here.
2. The simulator's own table of the city's errors (which imports nothing from
   :mod:`mta_client.exceptions`): status, type and message agree, and the
   simulator's error body for each code parses to the client's class.
"""

from __future__ import annotations

from datetime import date

from aioresponses import aioresponses
import pytest

from mta_client import (
    ERROR_CLASSES,
    MTAApiError,
    MTAAppointmentStateError,
    MTABlockedError,
    MTACaptchaError,
    MTAClient,
    MTAInvalidInputError,
    MTAMaintenanceError,
    MTANoSlotsError,
    MTANotFoundError,
    MTAOutdatedAPIError,
    MTAProtocolError,
    MTAProviderNotFoundError,
    MTAQuotaError,
    MTARateLimitError,
    MTARouteNotFoundError,
    MTAServerError,
    MTASlotUnavailableError,
    ProcessCredentials,
    cli,
    error_class_for,
)
from mta_client.cli.exitcodes import EXIT_CODE_HELP, ExitCode, describe, exit_code_for
from mta_client.simulator.errors import CITY_ERRORS, UNKNOWN_ERROR, dumps, error_body

from .helpers import error_body as one_error, route

INPUT = MTAInvalidInputError
PROTOCOL = MTAProtocolError
SERVER = MTAServerError
MAINTENANCE = MTAMaintenanceError
BLOCKED = MTABlockedError
RATE_LIMIT = MTARateLimitError
NOT_FOUND = MTANotFoundError
NO_SLOTS = MTANoSlotsError
SLOT_TAKEN = MTASlotUnavailableError
CAPTCHA = MTACaptchaError
STATE = MTAAppointmentStateError
QUOTA = MTAQuotaError
CATEGORIES = (
    INPUT,
    PROTOCOL,
    SERVER,
    MAINTENANCE,
    BLOCKED,
    RATE_LIMIT,
    NOT_FOUND,
    NO_SLOTS,
    SLOT_TAKEN,
    CAPTCHA,
    STATE,
    QUOTA,
)
# What each category tells the user to do, as an exit code of `mta`.
EXIT_CODES: dict[type[MTAApiError], ExitCode] = {
    INPUT: ExitCode.USAGE,
    PROTOCOL: ExitCode.INVALID_RESPONSE,
    SERVER: ExitCode.INVALID_RESPONSE,
    MAINTENANCE: ExitCode.MAINTENANCE,
    BLOCKED: ExitCode.BLOCKED,
    RATE_LIMIT: ExitCode.RATE_LIMITED,
    NOT_FOUND: ExitCode.NOT_FOUND,
    NO_SLOTS: ExitCode.NOTHING_FOUND,
    SLOT_TAKEN: ExitCode.SLOT_TAKEN,
    CAPTCHA: ExitCode.CAPTCHA,
    STATE: ExitCode.APPOINTMENT_STATE,
    QUOTA: ExitCode.APPOINTMENT_STATE,
}

# The city's catalogue, in its order: errorCode, HTTP status, and the category.
# Protocol: the client sent something the server could not read, whatever the
# user typed (a route or method, the arrays it always sends, a scopeId or
# date it never sends, a body far over any field's size, a missing authKey).
# Server: the city's own backend, middleware or data failed.
CATALOGUE: list[tuple[str, int, type[MTAApiError]]] = [
    ("zmsClientCommunicationError", 503, SERVER),
    ("notImplemented", 501, PROTOCOL),
    ("notFound", 404, PROTOCOL),
    ("invalidRequest", 400, PROTOCOL),
    ("requestMethodNotAllowed", 405, PROTOCOL),
    ("captchaVerificationFailed", 400, CAPTCHA),
    ("invalidLocationAndServiceCombination", 400, INPUT),
    ("invalidStartDate", 400, INPUT),
    ("invalidEndDate", 400, INPUT),
    ("invalidSlotsStartDate", 400, INPUT),
    ("invalidSlotsEndDate", 400, INPUT),
    ("slotsStartDateAfterEndDate", 400, INPUT),
    ("invalidOfficeId", 400, INPUT),
    ("invalidServiceId", 400, INPUT),
    ("EMPTY_SERVICE_ARRAYS", 400, PROTOCOL),
    ("MISMATCHED_ARRAYS", 400, PROTOCOL),
    ("invalidServiceCount", 400, INPUT),
    ("invalidProcessId", 400, INPUT),
    ("invalidScopeId", 400, PROTOCOL),
    ("invalidAuthKey", 400, INPUT),
    ("invalidDate", 400, PROTOCOL),
    ("invalidTimestamp", 400, INPUT),
    ("invalidFamilyName", 400, INPUT),
    ("invalidEmail", 400, INPUT),
    ("invalidTelephone", 400, INPUT),
    ("invalidCustomTextfield", 400, INPUT),
    ("invalidCustomTextfield2", 400, INPUT),
    ("appointmentCanNotBeCanceled", 406, STATE),
    ("appointmentNotAvailable", 404, SLOT_TAKEN),
    ("noAppointmentForThisDay", 404, NO_SLOTS),
    ("captchaVerificationError", 400, CAPTCHA),
    ("captchaMissing", 400, CAPTCHA),
    ("captchaInvalid", 400, CAPTCHA),
    ("captchaExpired", 400, CAPTCHA),
    ("serviceUnavailable", 503, MAINTENANCE),
    ("invalidSchema", 400, PROTOCOL),
    ("internalError", 500, SERVER),
    ("invalidApiClient", 400, PROTOCOL),
    ("sourceNotFound", 404, SERVER),
    ("departmentNotFound", 404, SERVER),
    ("mailNotFound", 404, SERVER),
    ("organisationNotFound", 404, SERVER),
    ("providerNotFound", 404, NOT_FOUND),
    ("requestNotFound", 404, NOT_FOUND),
    ("scopeNotFound", 404, NOT_FOUND),
    ("processInvalid", 400, PROTOCOL),
    ("processAlreadyExists", 409, STATE),
    ("processDeleteFailed", 500, SERVER),
    ("processAlreadyCalled", 409, STATE),
    ("processNotReservedAnymore", 409, STATE),
    ("processNotPreconfirmedAnymore", 409, STATE),
    ("emailIsRequired", 406, INPUT),
    ("telephoneIsRequired", 406, INPUT),
    ("appointmentNotFound", 404, NOT_FOUND),
    ("authKeyMismatch", 406, STATE),
    ("invalidCredentials", 406, STATE),
    ("noAppointmentForThisScope", 404, NO_SLOTS),
    ("tooManyAppointmentsWithSameMail", 406, QUOTA),
    ("tooManySlotsPerAppointment", 400, QUOTA),
    ("tooManyServicesPerAppointment", 400, QUOTA),
    ("scopesNotFound", 404, NOT_FOUND),
    ("preconfirmationExpired", 400, STATE),
    ("IP_BLACKLISTED", 403, BLOCKED),
    ("rateLimitExceeded", 429, RATE_LIMIT),
    ("requestEntityTooLarge", 413, PROTOCOL),
    ("securityHeaderViolation", 403, SERVER),
    ("unauthorized", 403, PROTOCOL),
    # The fallback of ErrorMessages::get for a key not in the table.
    ("unknownError", 520, SERVER),
]
CREDS = ProcessCredentials(process_id=4711, auth_key="beef")


def categories_of(cls: type[MTAApiError]) -> list[type[MTAApiError]]:
    return [category for category in CATEGORIES if issubclass(cls, category)]


def test_the_table_here_covers_every_code_once() -> None:
    codes = [code for code, _, _ in CATALOGUE]
    assert len(codes) == len(set(codes)) == 68
    assert set(codes) == set(ERROR_CLASSES)


@pytest.mark.parametrize(("code", "status", "category"), CATALOGUE)
def test_category_of_each_code(
    code: str, status: int, category: type[MTAApiError]
) -> None:
    cls = ERROR_CLASSES[code]
    assert cls.code == code
    assert cls.default_status == status
    # Exactly one category: the classes must not say two things at once.
    assert categories_of(cls) == [category]
    assert exit_code_for(cls()) is EXIT_CODES[category]


@pytest.mark.parametrize(
    ("code", "wrong"),
    [
        ("requestMethodNotAllowed", ExitCode.USAGE),
        ("securityHeaderViolation", ExitCode.BLOCKED),
        ("notFound", ExitCode.NOT_FOUND),
        ("invalidRequest", ExitCode.USAGE),
    ],
)
def test_misfiled_codes_no_longer_blame_the_user_or_the_ip(
    code: str, wrong: ExitCode
) -> None:
    error = ERROR_CLASSES[code]()
    assert exit_code_for(error) is not wrong
    assert "this IP address" not in describe(error)


def test_simulator_table_agrees_with_the_client() -> None:
    assert len(CITY_ERRORS) == 67
    for entry in [*CITY_ERRORS.values(), UNKNOWN_ERROR]:
        cls = ERROR_CLASSES[entry.code]
        assert (cls.code, cls.default_status) == (entry.code, entry.status)
        assert cls.default_error_type == entry.error_type, entry.code
        assert cls.default_message == entry.message, entry.code
    assert set(ERROR_CLASSES) == {*CITY_ERRORS, UNKNOWN_ERROR.code}


@pytest.mark.parametrize("code", [*sorted(CITY_ERRORS), "somethingNew"])
async def test_simulator_body_parses_to_the_clients_class(
    client: MTAClient, responses: aioresponses, code: str
) -> None:
    body, status = error_body(code)
    responses.post(route("cancel-appointment/"), status=status, body=dumps(body))

    with pytest.raises(MTAApiError) as excinfo:
        await client.cancel_appointment(credentials=CREDS)

    entry = CITY_ERRORS.get(code, UNKNOWN_ERROR)
    error = excinfo.value
    assert type(error) is ERROR_CLASSES[entry.code]
    assert (error.error_code, error.status) == (entry.code, entry.status)
    assert (error.message, error.error_type) == (entry.message, entry.error_type)


# --- a server of an older API generation ----------------------------------------


async def ask_calendar(client: MTAClient) -> None:
    await client.get_available_calendar(
        office_ids=[10489],
        services={1063475: 1},
        start_date=date(2026, 11, 23),
        captcha_token="token",
    )


async def test_calendar_404_not_found_is_an_outdated_api(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("available-calendar/"),
        status=404,
        payload=one_error("notFound", 404, "Endpoint not found."),
    )

    with pytest.raises(MTAOutdatedAPIError) as excinfo:
        await ask_calendar(client)

    error = excinfo.value
    assert isinstance(error, MTAProtocolError)
    assert not isinstance(error, MTANotFoundError)
    assert (error.error_code, error.status) == ("notFound", 404)
    assert error.route == "available-calendar/"
    assert "older API generation" in str(error)
    assert isinstance(error.__cause__, MTARouteNotFoundError)
    assert exit_code_for(error) is ExitCode.OUTDATED_API
    assert int(ExitCode.OUTDATED_API) == 13
    assert "older API generation" in describe(error)
    # Detected from the one answer: nothing else was asked.
    assert sum(len(calls) for calls in responses.requests.values()) == 1


async def test_other_404s_on_the_calendar_stay_what_they_are(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("available-calendar/"),
        status=404,
        payload=one_error("providerNotFound", 404, "Provider not found."),
    )
    with pytest.raises(MTAProviderNotFoundError):
        await ask_calendar(client)


async def test_not_found_on_another_route_is_not_an_outdated_api(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=404,
        payload=one_error("notFound", 404, "Endpoint not found."),
    )
    with pytest.raises(MTARouteNotFoundError) as excinfo:
        await client.get_catalogue()
    assert not isinstance(excinfo.value, MTAOutdatedAPIError)
    assert exit_code_for(excinfo.value) is ExitCode.INVALID_RESPONSE


def test_exit_code_13_is_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert "  13  the server speaks an older API generation" in EXIT_CODE_HELP
    assert cli.main(["--help"]) == 0
    assert "13  the server speaks an older API generation" in capsys.readouterr().out


def test_categories_of_codes_the_client_does_not_know() -> None:
    assert error_class_for("brandNew", 405) is MTAProtocolError
    assert error_class_for("brandNew", 404) is MTANotFoundError
    assert error_class_for("brandNew", 503) is MTAServerError


def test_outdated_api_error_alone_says_what_happened() -> None:
    error = MTAOutdatedAPIError()
    assert (error.error_code, error.status, error.route) == (
        "notFound",
        404,
        "available-calendar/",
    )
    assert "muc45 or earlier" in error.message
    assert "muc46 or later" in describe(error)
    assert "newer mta" in describe(ERROR_CLASSES["invalidRequest"]())
