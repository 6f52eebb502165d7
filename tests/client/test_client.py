"""Tests of the client's public methods: parsed results and exact requests."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
import json
from typing import Any

from aioresponses import aioresponses
import pytest
from yarl import URL

from mta_client import (
    Appointment,
    AppointmentStatus,
    ContactDetails,
    MTAClient,
    MTAValidationError,
    ProcessCredentials,
    ServiceRequest,
    Slot,
)
import mta_client.client as client_module

from .helpers import load_fixture, process, route, sent

BASE = "http://city.test/buergeransicht/api/citizen/"
TOKEN = "header.eyJleHAiOjE3OTAwMDAzMDB9.sig"


@pytest.fixture(name="solver")
def solver_fixture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the proof-of-work with a recorder; the solver has its own tests."""
    seen: list[dict[str, Any]] = []

    async def fake_solve(challenge: dict[str, Any]) -> str:
        seen.append(challenge)
        return "c29sdmVk"

    monkeypatch.setattr(client_module, "solve_challenge_async", fake_solve)
    return seen


def calendar_body() -> dict[str, Any]:
    return {
        "startDate": "2026-11-23",
        "endDate": "2027-05-23",
        "slotsStartDate": "2026-11-25",
        "slotsEndDate": "2026-11-25",
        "prevBookableDate": None,
        "nextBookableDate": "2026-12-01",
        "availableDays": [
            {
                "date": "2026-11-25",
                "providerIDs": "10489,10503",
                "offices": [
                    {"officeId": "10489", "appointments": [1795640400, 1795641300]},
                    {"officeId": "10503", "appointments": [1795640100]},
                ],
                "futureField": 1,
            },
            {"date": "2026-11-26", "providerIDs": "10489", "offices": []},
        ],
    }


async def test_catalogue_parses_and_sends_plain_get(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )

    catalogue = await client.get_catalogue()

    ruppert = catalogue.office(10489)
    assert ruppert is not None
    assert ruppert.name == "Bürgerbüro Ruppertstraße"
    assert ruppert.geo is not None
    assert ruppert.geo.lat == pytest.approx(48.1234)
    assert ruppert.captcha_required is True
    assert ruppert.scope is not None
    assert ruppert.scope.appointments_per_mail == 2
    assert ruppert.scope.slots_per_appointment is None
    assert ruppert.disabled_by_services == [1063441, 1063453]
    assert ruppert.shared_booking_office_ids == []
    assert catalogue.service(1063475) is not None
    assert catalogue.service(1063475).combinable == {1063475: [10489], 1063576: [10489]}  # type: ignore[union-attr]
    assert catalogue.service(1063576).combinable == {}  # type: ignore[union-attr]
    assert catalogue.services_at(10489) == {1063475, 1063576}
    assert [o.id for o in catalogue.offices_offering([1063475, 1063576])] == [10489]
    assert catalogue.captcha_required([10308174]) is False
    assert catalogue.captcha_required([10308174, 10489]) is True
    assert catalogue.captcha_required([999]) is True

    ((method, url, kwargs),) = sent(responses)
    assert (method, str(url)) == ("GET", BASE + "offices-and-services/")
    assert kwargs["headers"]["User-Agent"].startswith("mta-client/")
    assert kwargs["json"] is None


async def test_catalogue_is_cached_until_ttl(
    client: MTAClient, responses: aioresponses, clock: Any
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
        repeat=True,
    )
    await client.get_catalogue()
    await client.get_catalogue()
    assert len(sent(responses)) == 1
    clock.advance(3601)
    await client.get_catalogue()
    await client.get_catalogue(refresh=True)
    assert len(sent(responses)) == 3


async def test_calendar_without_captcha(
    client: MTAClient, responses: aioresponses, solver: list[Any]
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    responses.get(
        route("available-calendar/"), payload={**calendar_body(), "availableDays": []}
    )

    calendar = await client.get_available_calendar(
        office_ids=[10308174],
        services={10176294: 1},
        start_date=date(2026, 11, 23),
        end_date=date(2027, 5, 23),
    )

    assert calendar.available_days == []
    assert calendar.slots == []
    assert solver == []
    method, url, _ = sent(responses)[-1]
    assert method == "GET"
    assert url.path == "/buergeransicht/api/citizen/available-calendar/"
    assert dict(url.query) == {
        "startDate": "2026-11-23",
        "endDate": "2027-05-23",
        "officeIds": "10308174",
        "serviceIds": "10176294",
        "serviceCounts": "1",
    }


async def test_calendar_fetches_captcha_token_once(
    client: MTAClient, responses: aioresponses, solver: list[Any]
) -> None:
    challenge = {
        "parameters": {"algorithm": "SHA-256", "keyPrefix": "00"},
        "signature": "ab",
    }
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    responses.get(route("captcha-challenge/"), payload=challenge)
    responses.post(
        route("captcha-verify/"),
        payload={"meta": {"success": True}, "data": {"valid": True}, "token": TOKEN},
    )
    responses.get(route("available-calendar/"), payload=calendar_body(), repeat=True)

    calendar = await client.get_available_calendar(
        office_ids=[10489, 10503],
        services=[ServiceRequest(service_id=1063475, count=2), (1063576, 1)],
        start_date=date(2026, 11, 23),
        end_date=date(2027, 5, 23),
        slots_start_date=date(2026, 11, 25),
        slots_end_date=date(2026, 11, 30),
    )
    await client.get_available_calendar(
        office_ids=[10489],
        services=[1063475],
        start_date=date(2026, 11, 23),
        end_date=date(2026, 12, 23),
    )

    assert solver == [challenge]
    assert calendar.slots_start_date == date(2026, 11, 25)
    assert calendar.next_bookable_date == date(2026, 12, 1)
    assert calendar.bookable_dates == [date(2026, 11, 25), date(2026, 11, 26)]
    assert calendar.available_days[0].provider_ids == [10489, 10503]
    assert [(s.office_id, s.timestamp) for s in calendar.slots] == [
        (10503, 1795640100),
        (10489, 1795640400),
        (10489, 1795641300),
    ]
    assert calendar.slots[0].start == datetime.fromtimestamp(1795640100, UTC)

    requests = sent(responses)
    verify = next(
        kwargs
        for method, url, kwargs in requests
        if url.path.endswith("captcha-verify/")
    )
    assert verify["json"] == {"payload": "c29sdmVk"}
    calendar_queries = [
        dict(url.query)
        for _, url, _ in requests
        if url.path.endswith("available-calendar/")
    ]
    assert calendar_queries[0] == {
        "startDate": "2026-11-23",
        "endDate": "2027-05-23",
        "officeIds": "10489,10503",
        "serviceIds": "1063475,1063576",
        "serviceCounts": "2,1",
        "slotsStartDate": "2026-11-25",
        "slotsEndDate": "2026-11-30",
        "captchaToken": TOKEN,
    }
    assert len(calendar_queries) == 2
    assert calendar_queries[1]["captchaToken"] == TOKEN


async def test_refused_cached_token_is_replaced_once(
    client: MTAClient, responses: aioresponses, solver: list[Any]
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    responses.get(route("captcha-challenge/"), payload={"challenge": "x"}, repeat=True)
    responses.post(
        route("captcha-verify/"),
        payload={"meta": {"success": True}, "data": {"valid": True}, "token": TOKEN},
        repeat=True,
    )
    responses.get(
        route("available-calendar/"),
        status=400,
        payload={
            "errors": [
                {
                    "errorCode": "captchaInvalid",
                    "errorMessage": "Invalid captcha token.",
                    "statusCode": 400,
                    "errorType": "error",
                }
            ]
        },
    )
    responses.get(route("available-calendar/"), payload=calendar_body())

    calendar = await client.get_available_calendar(
        office_ids=[10489], services=[1063475]
    )

    assert len(calendar.slots) == 3
    assert len(solver) == 2


async def test_explicit_token_is_used_as_given(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(route("available-calendar/"), payload=calendar_body())
    await client.get_available_calendar(
        office_ids=[10489], services=[1063475], captcha_token="given"
    )
    ((_, url, _),) = sent(responses)
    assert url.query["captchaToken"] == "given"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"office_ids": [], "services": [1]}, "office_ids"),
        ({"office_ids": [0], "services": [1]}, "office_ids"),
        ({"office_ids": ["10489"], "services": [1]}, "office_ids"),
        ({"office_ids": [1], "services": []}, "services"),
        ({"office_ids": [1], "services": [(1, 26)]}, "count"),
        ({"office_ids": [1], "services": {1: 0}}, "count"),
        ({"office_ids": [1], "services": [1, 1]}, "services"),
        ({"office_ids": [1], "services": [-5]}, "service_id"),
        (
            {
                "office_ids": [1],
                "services": [1],
                "start_date": date(2026, 1, 1),
                "end_date": date(2027, 1, 2),
            },
            "end_date",
        ),
        (
            {
                "office_ids": [1],
                "services": [1],
                "start_date": date(2026, 2, 1),
                "end_date": date(2026, 1, 1),
            },
            "end_date",
        ),
        (
            {
                "office_ids": [1],
                "services": [1],
                "slots_start_date": date(2026, 2, 2),
                "slots_end_date": date(2026, 2, 1),
            },
            "slots_end_date",
        ),
    ],
)
async def test_calendar_input_checked_before_sending(
    client: MTAClient, responses: aioresponses, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        await client.get_available_calendar(**kwargs)
    assert excinfo.value.field == field
    assert sent(responses) == []


async def test_range_of_exactly_365_days_is_allowed(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(route("available-calendar/"), payload=calendar_body())
    await client.get_available_calendar(
        office_ids=[1],
        services=[1],
        start_date=date(2026, 1, 1),
        end_date=date(2027, 1, 1),
        captcha_token="t",
    )
    assert len(sent(responses)) == 1


async def test_reserve_sends_arrays_and_token(
    client: MTAClient, responses: aioresponses, solver: list[Any]
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    responses.get(route("captcha-challenge/"), payload={"challenge": "x"})
    responses.post(
        route("captcha-verify/"),
        payload={"meta": {"success": True}, "data": {"valid": True}, "token": TOKEN},
    )
    responses.post(route("reserve-appointment/"), payload=process())

    slot = Slot(office_id=10489, start=datetime.fromtimestamp(1790006400, UTC))
    appointment = await client.reserve_appointment(
        office_id=10489, services={1063475: 1}, timestamp=slot
    )

    assert appointment.process_id == 4711
    assert appointment.status is AppointmentStatus.RESERVED
    assert appointment.timestamp == datetime.fromtimestamp(1790006400, UTC)
    assert appointment.scope is not None
    assert appointment.scope.reservation_duration == 15
    (_, url, kwargs) = sent(responses)[-1]
    assert url.path.endswith("/reserve-appointment/")
    assert kwargs["json"] == {
        "timestamp": 1790006400,
        "officeId": 10489,
        "serviceId": [1063475],
        "serviceCount": [1],
        "captchaToken": TOKEN,
    }


async def test_reserve_without_captcha_office(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("offices-and-services/"),
        payload=load_fixture("offices_and_services.json"),
    )
    responses.post(route("reserve-appointment/"), payload=process(officeId=10308174))
    when = datetime.fromtimestamp(1790006400, UTC)
    await client.reserve_appointment(
        office_id=10308174, services=[10176294], timestamp=when
    )
    (_, _, kwargs) = sent(responses)[-1]
    assert kwargs["json"] == {
        "timestamp": 1790006400,
        "officeId": 10308174,
        "serviceId": [10176294],
        "serviceCount": [1],
    }


@pytest.mark.parametrize(
    ("timestamp", "field"),
    [(datetime(2026, 11, 25, 8, 0), "timestamp"), (0, "timestamp")],  # noqa: DTZ001
)
async def test_reserve_rejects_bad_timestamps(
    client: MTAClient, responses: aioresponses, timestamp: Any, field: str
) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        await client.reserve_appointment(
            office_id=1, services=[1], timestamp=timestamp, captcha_token="t"
        )
    assert excinfo.value.field == field
    assert sent(responses) == []


async def test_update_sends_contact_and_checks_scope(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(
        route("update-appointment/"),
        payload=process(familyName="Huber", email="anna.huber@example.org"),
    )
    reserved = Appointment.model_validate(process())
    contact = ContactDetails(
        family_name=" Huber ",
        email="anna.huber@example.org",
        telephone="+49 89 233-00000",
    )

    updated = await client.update_appointment(credentials=reserved, contact=contact)

    assert updated.family_name == "Huber"
    (_, _, kwargs) = sent(responses)[-1]
    assert kwargs["json"] == {
        "processId": 4711,
        "authKey": "a" * 64,
        "familyName": "Huber",
        "email": "anna.huber@example.org",
        "telephone": "+498923300000",
    }


async def test_update_requires_email_when_scope_does(
    client: MTAClient, responses: aioresponses
) -> None:
    reserved = Appointment.model_validate(process())
    with pytest.raises(MTAValidationError) as excinfo:
        await client.update_appointment(
            credentials=reserved, contact=ContactDetails(family_name="Huber")
        )
    assert excinfo.value.field == "email"
    assert sent(responses) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("preconfirm_appointment", "preconfirm-appointment/"),
        ("confirm_appointment", "confirm-appointment/"),
        ("cancel_appointment", "cancel-appointment/"),
    ],
)
async def test_process_calls_send_credentials(
    client: MTAClient, responses: aioresponses, method: str, path: str
) -> None:
    responses.post(route(path), payload=process(status="preconfirmed"))
    credentials = ProcessCredentials(process_id=4711, auth_key="b" * 64)

    appointment = await getattr(client, method)(credentials=credentials)

    assert appointment.status is AppointmentStatus.PRECONFIRMED
    ((verb, url, kwargs),) = sent(responses)
    assert (verb, str(url)) == ("POST", BASE + path)
    assert kwargs["json"] == {"processId": 4711, "authKey": "b" * 64}


async def test_get_appointment_sends_query(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(
        route("appointment/"),
        payload=process(status="confirmed", captchaToken="fresh", newField=[1]),
    )
    appointment = await client.get_appointment(
        credentials=ProcessCredentials(process_id=4711, auth_key="beef")
    )
    assert appointment.status is AppointmentStatus.CONFIRMED
    assert appointment.captcha_token == "fresh"
    ((_, url, _),) = sent(responses)
    assert dict(url.query) == {"processId": "4711", "authKey": "beef"}


async def test_unknown_status_does_not_break_parsing(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.get(route("appointment/"), payload=process(status="teleported"))
    appointment = await client.get_appointment(
        credentials=ProcessCredentials(process_id=1, auth_key="beef")
    )
    assert appointment.status is AppointmentStatus.UNKNOWN


async def test_confirm_from_activation_link(
    client: MTAClient, responses: aioresponses
) -> None:
    responses.post(route("confirm-appointment/"), payload=process(status="confirmed"))
    raw = (
        base64.b64encode(json.dumps({"id": 4711, "authKey": "c" * 64}).encode())
        .decode()
        .rstrip("=")
    )
    link = f"https://stadt.muenchen.de/buergerservice/terminvereinbarung.html#/appointment/confirm/{raw}"

    appointment = await client.confirm_from_link(link)

    assert appointment.status is AppointmentStatus.CONFIRMED
    ((_, _, kwargs),) = sent(responses)
    assert kwargs["json"] == {"processId": 4711, "authKey": "c" * 64}


@pytest.mark.parametrize(
    "link",
    [
        "https://stadt.muenchen.de/#/appointment/confirm/not-base64!!",
        "https://stadt.muenchen.de/#/appointment/confirm/"
        + base64.b64encode(b'{"id": 1}').decode(),
        base64.b64encode(b'{"id": 1, "authKey": "zz"}').decode(),
        "",
    ],
)
async def test_bad_activation_links_are_rejected(
    client: MTAClient, responses: aioresponses, link: str
) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        await client.confirm_from_link(link)
    assert excinfo.value.field in {"link", "auth_key"}
    assert sent(responses) == []


def test_activation_link_variants() -> None:
    raw = base64.urlsafe_b64encode(
        json.dumps({"id": "99", "authKey": "d" * 64}).encode()
    ).decode()
    for link in (
        raw,
        f"#/appointment/{raw}",
        f"https://x/#/appointment/confirm/{raw}/",
    ):
        credentials = ProcessCredentials.from_activation_link(link)
        assert credentials.process_id == 99
        assert credentials.auth_key == "d" * 64


def test_private_data_hidden_from_repr() -> None:
    appointment = Appointment.model_validate(
        process(
            familyName="Huber",
            email="anna.huber@example.org",
            telephone="08912345",
            captchaToken="secret",
        )
    )
    text = repr(appointment) + repr(appointment.credentials)
    for secret in ("Huber", "anna.huber", "08912345", "secret", "a" * 64):
        assert secret not in text
    contact = ContactDetails(family_name="Huber", email="anna.huber@example.org")
    assert "Huber" not in repr(contact)
    assert "anna" not in repr(contact)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"family_name": "  "}, "family_name"),
        ({"family_name": "X", "email": "anna+termin@example.org"}, "email"),
        ({"family_name": "X", "email": "anna@example"}, "email"),
        ({"family_name": "X", "email": ".anna@example.org"}, "email"),
        ({"family_name": "X", "telephone": "12345"}, "telephone"),
        ({"family_name": "X", "telephone": "1234567890123456"}, "telephone"),
        ({"family_name": "X", "telephone": "089-abc-1234"}, "telephone"),
        ({"family_name": "X", "custom_textfield": "x" * 251}, "custom_textfield"),
        ({"family_name": "X", "custom_textfield2": "x" * 251}, "custom_textfield2"),
    ],
)
def test_contact_details_are_checked_without_echoing(
    values: dict[str, Any], field: str
) -> None:
    from mta_client.models import validated  # noqa: PLC0415

    with pytest.raises(MTAValidationError) as excinfo:
        validated(ContactDetails, **values)
    assert excinfo.value.field == field
    for value in values.values():
        if len(value.strip()) > 3:
            assert value not in str(excinfo.value)


def test_contact_details_accept_the_limits() -> None:
    contact = ContactDetails(
        family_name="Ößlmayr-Nguyễn",
        email="a.b@sub.example.de",
        telephone="+491701234567",
        custom_textfield="x" * 250,
    )
    assert contact.telephone == "+491701234567"
    assert ContactDetails(family_name="X", telephone="1234567").telephone == "1234567"
    assert (
        ContactDetails(family_name="X", telephone="123456789012345").telephone
        == "123456789012345"
    )


async def test_captcha_details(client: MTAClient, responses: aioresponses) -> None:
    responses.get(
        route("captcha-details/"),
        payload={
            "siteKey": "k",
            "captchaChallenge": "https://c/ch",
            "captchaVerify": "https://c/v",
            "captchaEnabled": True,
        },
    )
    details = await client.get_captcha_details()
    assert details.captcha_enabled is True
    assert details.site_key == "k"


def test_base_url_gets_trailing_slash() -> None:
    client = MTAClient(base_url="http://127.0.0.1:8080/buergeransicht/api/citizen")
    assert str(client.base_url) == "http://127.0.0.1:8080/buergeransicht/api/citizen/"
    assert (
        repr(client)
        == "MTAClient(base_url='http://127.0.0.1:8080/buergeransicht/api/citizen/')"
    )
    assert (
        URL(str(client.base_url))
        .join(URL("appointment/"))
        .path.endswith("/citizen/appointment/")
    )
