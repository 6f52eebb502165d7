"""Tests of the transport: error mapping, retries, budget, timeouts, sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aioresponses import aioresponses
import pytest

import mta_client
from mta_client import (
    ERROR_CLASSES,
    MTAApiError,
    MTAAppointmentNotAvailableError,
    MTABlockedError,
    MTACaptchaExpiredError,
    MTACaptchaInvalidError,
    MTACaptchaMissingError,
    MTACaptchaVerificationError,
    MTACaptchaVerificationFailedError,
    MTAClient,
    MTAConnectionError,
    MTAError,
    MTAInvalidEndDateError,
    MTAInvalidInputError,
    MTAInvalidResponseError,
    MTAInvalidStartDateError,
    MTAIpBlacklistedError,
    MTAMaintenanceError,
    MTAProtocolError,
    MTARateLimitError,
    MTAServerError,
    MTAServiceUnavailableError,
    MTASlotUnavailableError,
    MTATimeoutError,
    MTAUnknownError,
    ProcessCredentials,
    RequestBudget,
    RetryPolicy,
)

from .helpers import error_body, load_fixture, process, route, sent

CREDS = ProcessCredentials(process_id=4711, auth_key="beef")


def test_every_exported_exception_is_in_the_tree() -> None:
    exported = [getattr(mta_client, name) for name in mta_client.__all__]
    classes = [
        obj
        for obj in exported
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    assert len(classes) > 70
    for cls in classes:
        assert issubclass(cls, MTAError), cls


def test_catalogue_has_all_67_codes_and_the_fallback() -> None:
    assert len(ERROR_CLASSES) == 68
    assert ERROR_CLASSES["IP_BLACKLISTED"] is MTAIpBlacklistedError
    assert ERROR_CLASSES["unknownError"].default_status == 520
    for code, cls in ERROR_CLASSES.items():
        error = cls()
        assert error.error_code == code
        assert error.status == cls.default_status
        assert error.to_body()["errorCode"] == code


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
async def test_each_code_maps_to_its_class(
    client: MTAClient, responses: aioresponses, code: str
) -> None:
    cls = ERROR_CLASSES[code]
    body = error_body(
        code, cls.default_status, "Server said so.", cls.default_error_type
    )
    responses.post(
        route("cancel-appointment/"), status=cls.default_status, payload=body
    )

    with pytest.raises(cls) as excinfo:
        await client.cancel_appointment(credentials=CREDS)

    error = excinfo.value
    assert type(error) is cls
    assert (error.error_code, error.status, error.message) == (
        code,
        cls.default_status,
        "Server said so.",
    )
    assert error.error_type == cls.default_error_type


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("rateLimitExceeded", MTARateLimitError),
        ("IP_BLACKLISTED", MTABlockedError),
        ("serviceUnavailable", MTAMaintenanceError),
        ("captchaMissing", MTACaptchaMissingError),
        ("captchaInvalid", MTACaptchaInvalidError),
        ("captchaExpired", MTACaptchaExpiredError),
        ("appointmentNotAvailable", MTASlotUnavailableError),
        ("invalidFamilyName", MTAInvalidInputError),
    ],
)
def test_distinct_catchable_categories(code: str, category: type[MTAApiError]) -> None:
    assert issubclass(ERROR_CLASSES[code], category)
    assert issubclass(category, MTAApiError)


async def test_errors_in_http_200_body(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(
        route("reserve-appointment/"),
        status=200,
        payload=error_body("appointmentNotAvailable", 404),
    )
    with pytest.raises(MTAAppointmentNotAvailableError) as excinfo:
        await client.reserve_appointment(
            office_id=1, services=[1], timestamp=1_900_000_000, captcha_token="t"
        )
    assert excinfo.value.status == 404


async def test_several_errors_pick_highest_status(
    client: MTAClient, responses: aioresponses
) -> None:
    body = {
        "errors": [
            {
                "errorCode": "invalidStartDate",
                "errorMessage": "a",
                "statusCode": 400,
                "errorType": "warning",
            },
            {
                "errorCode": "invalidEndDate",
                "errorMessage": "b",
                "statusCode": 400,
                "errorType": "warning",
            },
        ]
    }
    responses.get(route("available-calendar/"), status=400, payload=body)
    with pytest.raises(MTAInvalidStartDateError) as excinfo:
        await client.get_available_calendar(
            office_ids=[1], services=[1], captcha_token="t"
        )
    assert excinfo.value.related == ["invalidEndDate"]
    assert not isinstance(excinfo.value, MTAInvalidEndDateError)


async def test_unknown_error_with_status_520(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("available-calendar/"),
        status=520,
        payload=error_body("unknownError", 520),
    )
    with pytest.raises(MTAUnknownError):
        await client.get_available_calendar(
            office_ids=[1], services=[1], captcha_token="t"
        )
    assert len(sent(responses)) == 1  # 520 is not a gateway hiccup: no retry


async def test_code_unknown_to_this_version(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(
        route("cancel-appointment/"),
        status=418,
        payload=error_body("brandNewCode", 418, "Teapot"),
    )
    with pytest.raises(MTAApiError) as excinfo:
        await client.cancel_appointment(credentials=CREDS)
    # An unknown 4xx code is a protocol mismatch (a newer server), typed and
    # with a documented exit code, never "unexpected".
    assert type(excinfo.value) is MTAProtocolError
    assert (excinfo.value.error_code, excinfo.value.status) == ("brandNewCode", 418)


async def test_internal_error_envelope(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(
        route("reserve-appointment/"),
        status=500,
        payload={"error": {"message": "An internal error has occurred.", "code": 500}},
    )
    with pytest.raises(MTAServerError) as excinfo:
        await client.reserve_appointment(
            office_id=1, services=[1], timestamp=1_900_000_000, captcha_token="t"
        )
    assert excinfo.value.status == 500
    assert excinfo.value.message == "An internal error has occurred."
    assert len(sent(responses)) == 1  # a booking POST is never retried


async def test_html_block_page(client: MTAClient, responses: aioresponses) -> None:
    responses.get(
        route("offices-and-services/"),
        status=403,
        body="<html>Request Rejected</html>",
        content_type="text/html",
    )
    with pytest.raises(MTABlockedError) as excinfo:
        await client.get_catalogue()
    assert excinfo.value.status == 403
    assert "text/html" in str(excinfo.value)


async def test_html_with_200_is_invalid_response(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=200,
        body="<html>hi</html>",
        content_type="text/html",
    )
    with pytest.raises(MTAInvalidResponseError):
        await client.get_catalogue()


async def test_html_429_is_rate_limit(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=429,
        body="slow down",
        content_type="text/plain",
    )
    with pytest.raises(MTARateLimitError):
        await client.get_catalogue()


async def test_malformed_json_is_invalid_response(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=200,
        body='{"offices": [',
        content_type="application/json",
    )
    with pytest.raises(MTAInvalidResponseError) as excinfo:
        await client.get_catalogue()
    assert excinfo.value.status == 200


async def test_wrong_shape_is_invalid_response(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"), payload={"offices": [{"name": "no id"}]}
    )
    with pytest.raises(MTAInvalidResponseError, match="Catalogue"):
        await client.get_catalogue()


async def test_empty_error_body(client: MTAClient, responses: aioresponses) -> None:
    responses.post(route("cancel-appointment/"), status=404, body="")
    with pytest.raises(MTAInvalidResponseError):
        await client.cancel_appointment(credentials=CREDS)
    responses.post(
        route("cancel-appointment/"), status=409, payload={"unexpected": True}
    )
    with pytest.raises(MTAApiError) as excinfo:
        await client.cancel_appointment(credentials=CREDS)
    assert excinfo.value.status == 409


async def test_maintenance_is_not_retried(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=503,
        payload=error_body("serviceUnavailable", 503),
        repeat=True,
    )
    with pytest.raises(MTAServiceUnavailableError):
        await client.get_catalogue()
    assert len(sent(responses)) == 1


async def test_get_retried_on_gateway_errors_then_succeeds(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=502,
        body="<html>Bad Gateway</html>",
        content_type="text/html",
    )
    responses.get(
        route("offices-and-services/"), exception=aiohttp.ServerDisconnectedError()
    )
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    catalogue = await client.get_catalogue()
    assert catalogue.office(10489) is not None
    assert len(next(iter(responses.requests.values()))) == 3


async def test_get_retries_are_bounded(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(route("offices-and-services/"), status=504, body="", repeat=True)
    with pytest.raises(MTAServerError) as excinfo:
        await client.get_catalogue()
    assert excinfo.value.status == 504
    assert len(next(iter(responses.requests.values()))) == 3


async def test_retries_stop_at_max_time(responses: aioresponses, clock: Any) -> None:
    responses.get(
        route("offices-and-services/"),
        exception=aiohttp.ClientConnectionError(),
        repeat=True,
    )
    async with MTAClient(
        base_url="http://city.test/buergeransicht/api/citizen/",
        budget=RequestBudget(clock=clock),
        retry=RetryPolicy(max_tries=100, max_time=0.0, base_delay=5),
    ) as client:
        with pytest.raises(MTAConnectionError):
            await client.get_catalogue()
    assert len(next(iter(responses.requests.values()))) in {1, 2}


async def test_booking_post_not_retried_on_connection_error(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(
        route("preconfirm-appointment/"),
        exception=aiohttp.ClientConnectionError("reset"),
    )
    responses.post(
        route("preconfirm-appointment/"), payload=process(status="preconfirmed")
    )
    with pytest.raises(MTAConnectionError):
        await client.preconfirm_appointment(credentials=CREDS)
    assert len(sent(responses)) == 1


async def test_timeout_is_typed(responses: aioresponses, clock: Any) -> None:
    async def hang(*_: Any, **__: Any) -> None:
        await asyncio.sleep(1)

    responses.post(route("cancel-appointment/"), callback=hang)
    async with MTAClient(
        base_url="http://city.test/buergeransicht/api/citizen/",
        request_timeout=0.05,
        budget=RequestBudget(clock=clock),
    ) as client:
        with pytest.raises(MTATimeoutError) as excinfo:
            await client.cancel_appointment(credentials=CREDS)
    assert isinstance(excinfo.value, MTAConnectionError)


async def test_dns_failure_is_connection_error(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        exception=OSError("Name or service not known"),
        repeat=True,
    )
    with pytest.raises(MTAConnectionError, match="OSError"):
        await client.get_catalogue()


async def test_rate_limit_cools_down_a_whole_window(
    client: MTAClient, responses: aioresponses, clock: Any
) -> None:
    responses.get(
        route("offices-and-services/"),
        status=429,
        payload=error_body("rateLimitExceeded", 429, kind="warning"),
    )
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )

    with pytest.raises(MTARateLimitError) as excinfo:
        await client.get_catalogue()
    assert excinfo.value.retry_after >= 60
    assert client.budget.rate_limited == 1
    assert client.budget.wait_time() >= 60

    started = clock.now
    await client.get_catalogue()
    assert clock.now - started >= 60  # the budget waited before sending again
    assert len(next(iter(responses.requests.values()))) == 2


async def test_budget_learns_limit_from_headers(
    client: MTAClient, responses: aioresponses
) -> None:
    headers = {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "100",
        "X-RateLimit-Reset": "1790000060",
    }
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
        headers=headers,
    )
    await client.get_catalogue()
    assert client.budget.limit == 120
    assert client.budget.limit_learned
    assert client.budget.remaining(priority=True) == 100


async def test_captcha_challenge_failure_envelope(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("captcha-challenge/"),
        payload={"meta": {"success": False, "error": "Request error: x"}, "data": None},
    )
    with pytest.raises(MTACaptchaVerificationError, match="Request error"):
        await client.get_captcha_challenge()


async def test_captcha_challenge_not_an_object(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(route("captcha-challenge/"), payload=["x"])
    with pytest.raises(MTAInvalidResponseError):
        await client.get_captcha_challenge()


@pytest.mark.parametrize(
    "body",
    [
        {
            "meta": {"success": False, "error": "Captcha verification failed"},
            "data": None,
        },
        {"meta": {"success": True}, "data": {"valid": False}, "token": "t"},
        {"meta": {"success": True}, "data": {"valid": True}},
    ],
)
async def test_captcha_verify_failures(
    client: MTAClient, responses: aioresponses, body: dict[str, Any]
) -> None:
    responses.post(route("captcha-verify/"), payload=body)
    with pytest.raises(MTACaptchaVerificationFailedError):
        await client.verify_captcha("payload")


async def test_captcha_verify_without_meta(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(route("captcha-verify/"), payload={"token": "t"})
    with pytest.raises(MTAInvalidResponseError):
        await client.verify_captcha("payload")


async def test_injected_session_is_not_closed(responses: aioresponses) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    async with aiohttp.ClientSession() as session:
        async with MTAClient(
            session=session, base_url="http://city.test/buergeransicht/api/citizen/"
        ) as client:
            await client.get_catalogue()
        assert not session.closed


def is_closed(session: aiohttp.ClientSession) -> bool:
    """``session.closed`` read afresh.

    mypy keeps an asserted ``session.closed`` narrowed across the await that
    closes it, which would make the asserts after the close unreachable.
    """
    return session.closed


async def test_own_session_is_created_and_closed(responses: aioresponses) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    client = MTAClient(base_url="http://city.test/buergeransicht/api/citizen/")
    await client.get_catalogue()
    session = client._session
    assert session is not None
    assert not is_closed(session)
    await client.close()
    assert session.closed
    assert client._session is None
    await client.close()  # closing twice is harmless
