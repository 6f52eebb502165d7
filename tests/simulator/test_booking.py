"""Booking state machine, validation, expiries and the outbox."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mta_client.simulator import parse_link

from .conftest import Api, at
from .test_routes import assert_error

OFFICE, SERVICE = 102522, 1063441  # Bürgerbüro Orleansplatz, Personalausweis
SLOT = at("2026-11-24", 9)
PERSON = {
    "familyName": "Muster",
    "email": "erika@example.org",
    "telephone": "+4989123456",
}


async def book(
    api: Api, *, email: str = "erika@example.org", slot: int = SLOT
) -> dict[str, Any]:
    status, process = await api.reserve(OFFICE, SERVICE, slot)
    assert status == 200, process
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    status, body, _ = await api.post(
        "update-appointment/", {**creds, **PERSON, "email": email}
    )
    assert status == 200, body
    return cast("dict[str, Any]", process)


async def test_full_flow(api: Api) -> None:
    status, process = await api.reserve(OFFICE, SERVICE, SLOT)
    assert status == 200
    assert process["status"] == "reserved"
    assert process["timestamp"] == str(SLOT)
    assert len(process["authKey"]) == 64
    int(process["authKey"], 16)
    assert process["officeId"] == OFFICE
    assert process["serviceId"] == SERVICE
    assert process["serviceCount"] == 1
    assert process["subRequestCounts"] == []
    assert process["slotCount"] == 3
    assert process["scope"]["reservationDuration"] == 15
    assert process["captchaToken"] is None
    assert process["icsContent"].startswith("BEGIN:VCALENDAR")
    assert set(process) == {
        "processId", "timestamp", "authKey", "familyName", "customTextfield",
        "customTextfield2", "email", "telephone", "officeName", "officeId", "scope",
        "subRequestCounts", "serviceId", "serviceName", "serviceCount", "status",
        "captchaToken", "slotCount", "displayNumber", "icsContent",
    }  # fmt: skip
    # the slot is gone from the calendar
    assert SLOT not in api.sim.bookable_times(OFFICE, [SERVICE])
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    status, body, _ = await api.post("update-appointment/", {**creds, **PERSON})
    assert status == 200
    assert body["familyName"] == "Muster"
    assert body["status"] == "reserved"
    status, body, _ = await api.post("preconfirm-appointment/", creds)
    assert status == 200
    assert body["status"] == "preconfirmed"
    mail = api.sim.outbox.to_address("erika@example.org")[-1]
    assert mail.kind == "preconfirmation"
    assert mail.link is not None
    assert mail.link.startswith(
        "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html#/appointment/confirm/"
    )
    assert parse_link(api.sim.outbox.activation_link(process["processId"])) == (
        process["processId"],
        process["authKey"],
    )
    process_id, key = parse_link(mail.link)  # the citizen clicks the link
    status, body, _ = await api.post(
        "confirm-appointment/", {"processId": process_id, "authKey": key}
    )
    assert status == 200
    assert body["status"] == "confirmed"
    assert body["captchaToken"]
    status, body, _ = await api.get("appointment/", creds)
    assert status == 200
    assert body["status"] == "confirmed"
    assert body["captchaToken"]
    assert api.sim.stats.confirmed_by_email["erika@example.org"] == 1
    assert api.sim.outbox[-1].kind == "confirmation"


async def test_reserve_validation(api: Api) -> None:
    token = await api.token()
    base = {
        "timestamp": SLOT,
        "officeId": OFFICE,
        "serviceId": [SERVICE],
        "serviceCount": [1],
        "captchaToken": token,
    }

    async def reserve(**changes: Any) -> tuple[int, Any]:
        body = {k: v for k, v in {**base, **changes}.items() if v is not None}
        status, answer, _ = await api.post("reserve-appointment/", body)
        return status, answer

    status, body = await reserve(serviceId=SERVICE)
    assert status == 500
    assert body == {
        "error": {"message": "An internal error has occurred.", "code": 500}
    }
    status, body = await reserve(timestamp=int(api.sim.clock.time()) - 60)
    assert_error(body, "invalidTimestamp")
    status, body = await reserve(officeId="x", timestamp=None)
    assert_error(body, "invalidOfficeId", "invalidTimestamp")
    status, body = await reserve(serviceId=["abc"])
    assert_error(body, "invalidServiceId")
    status, body = await reserve(officeId=10308174)
    assert_error(body, "invalidLocationAndServiceCombination")
    status, body = await reserve(serviceCount=[3])
    assert_error(body, "tooManyServicesPerAppointment")
    status, body = await reserve(captchaToken=None)
    assert_error(body, "captchaMissing")
    status, body = await reserve(timestamp=SLOT + 60)
    assert status == 404
    assert_error(body, "appointmentNotAvailable")
    status, body = await reserve(
        timestamp=at("2026-11-24", 9, 55)
    )  # needs 3 units, 1 left
    assert_error(body, "appointmentNotAvailable")
    status, body = await reserve(
        officeId=str(OFFICE), timestamp=str(SLOT)
    )  # numeric strings ok
    assert status == 200
    status, body = await reserve()
    assert_error(body, "appointmentNotAvailable")


async def test_no_captcha_for_kvr(api: Api) -> None:
    status, body, _ = await api.post(
        "reserve-appointment/",
        {
            "timestamp": SLOT,
            "officeId": 10308174,
            "serviceId": [1071896],
            "serviceCount": [1],
        },
    )
    assert status == 200, body


async def test_multiple_services(api: Api) -> None:
    token = await api.token()
    status, body, _ = await api.post(
        "reserve-appointment/",
        {"timestamp": SLOT, "officeId": OFFICE, "serviceId": [SERVICE, 1063576],
         "serviceCount": [2, 1], "captchaToken": token},
    )  # fmt: skip
    assert status == 200
    assert body["slotCount"] == 8
    assert body["serviceCount"] == 2
    assert body["subRequestCounts"] == [
        {"id": 1063576, "name": "Meldebescheinigung", "count": 1}
    ]


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({"familyName": ""}, ["invalidFamilyName"]),
        ({"email": "erika+tag@example.org"}, ["invalidEmail"]),
        ({"email": "erika..x@example.org"}, ["invalidEmail"]),
        ({"telephone": "089 123456"}, ["invalidTelephone"]),
        ({"customTextfield": "x" * 251}, ["invalidCustomTextfield"]),
        ({"familyName": " ", "email": "nope"}, ["invalidFamilyName", "invalidEmail"]),
    ],
)
async def test_update_validation(
    api: Api, changes: dict[str, Any], codes: list[str]
) -> None:
    _, process = await api.reserve(OFFICE, SERVICE, SLOT)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    status, body, _ = await api.post(
        "update-appointment/", {**creds, **PERSON, **changes}
    )
    assert status == 400
    assert_error(body, *codes)


async def test_credentials(api: Api) -> None:
    _, process = await api.reserve(OFFICE, SERVICE, SLOT)
    pid = process["processId"]
    for params, codes in [
        ({"processId": "x", "authKey": "zz"}, ["invalidProcessId", "invalidAuthKey"]),
        ({"processId": pid, "authKey": "abc"}, ["invalidAuthKey"]),
        ({"processId": pid + 999_999, "authKey": "abcd"}, ["appointmentNotFound"]),
        ({"processId": pid, "authKey": "abcd"}, ["authKeyMismatch"]),
        ({"processId": pid, "authKey": "0" * 64}, ["authKeyMismatch"]),
    ]:
        _, body, _ = await api.get("appointment/", params)
        assert_error(body, *codes)


async def test_reservation_expires(api: Api, sim_clock) -> None:
    process = await book(api)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    sim_clock.advance(15 * 60 + 60)  # 15 minutes, then the next cron minute
    status, body, _ = await api.post("preconfirm-appointment/", creds)
    assert status == 404
    assert_error(body, "appointmentNotFound")
    assert SLOT in api.sim.bookable_times(OFFICE, [SERVICE])
    assert api.sim.stats.expired_reservations == 1
    assert api.sim.stats.slot_appearances[-1].source == "expiry"


async def test_activation_expires(api: Api, sim_clock) -> None:
    process = await book(api)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    await api.post("preconfirm-appointment/", creds)
    status, body, _ = await api.post("preconfirm-appointment/", creds)
    assert status == 409
    assert_error(body, "processNotReservedAnymore")
    sim_clock.advance(29 * 60)
    assert (await api.get("appointment/", creds))[0] == 200
    sim_clock.advance(2 * 60)
    status, body, _ = await api.post("confirm-appointment/", creds)
    assert_error(body, "appointmentNotFound")
    assert api.sim.stats.expired_activations == 1


async def test_confirm_twice(api: Api) -> None:
    process = await book(api)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    assert (await api.post("confirm-appointment/", creds))[
        0
    ] == 200  # reserved is accepted
    status, body, _ = await api.post("confirm-appointment/", creds)
    assert status == 409
    assert_error(body, "processNotPreconfirmedAnymore")


async def test_mail_limit(api: Api) -> None:
    for slot in (SLOT, SLOT + 900):
        process = await book(api, slot=slot, email="Max@Example.org")
        creds = {"processId": process["processId"], "authKey": process["authKey"]}
        assert (await api.post("preconfirm-appointment/", creds))[0] == 200
    process = await book(api, slot=SLOT + 1800, email="other@example.org")
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    status, body, _ = await api.post(
        "update-appointment/", {**creds, **PERSON, "email": "max@example.org"}
    )
    assert status == 406
    assert_error(body, "tooManyAppointmentsWithSameMail")
    assert api.sim.stats.preconfirmed_by_email["max@example.org"] == 2


async def test_cancel(api: Api, sim_clock) -> None:
    process = await book(api)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    await api.post("preconfirm-appointment/", creds)
    await api.post("confirm-appointment/", creds)
    status, body, _ = await api.post("cancel-appointment/", creds)
    assert status == 200
    assert body["status"] == "deleted"
    assert body["authKey"] != process["authKey"]
    assert len(body["authKey"]) == 64
    assert api.sim.outbox[-1].kind == "cancellation"
    _, again, _ = await api.get("appointment/", creds)
    assert_error(again, "authKeyMismatch")
    assert SLOT not in api.sim.bookable_times(OFFICE, [SERVICE])
    sim_clock.advance(15 * 60)
    assert SLOT in api.sim.bookable_times(OFFICE, [SERVICE])
    assert api.sim.stats.slot_appearances[-1].source == "deallocation"


async def test_cancel_past_appointment(api: Api, sim_clock) -> None:
    process = await book(api)
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    await api.post("confirm-appointment/", creds)
    sim_clock.now = SLOT + 1
    status, body, _ = await api.post("cancel-appointment/", creds)
    assert status == 406
    assert_error(body, "appointmentCanNotBeCanceled")


async def test_required_fields_by_scope(api: Api) -> None:
    status, process = await api.reserve(10187259, 10339027, at("2026-11-24", 9))
    assert status == 200
    creds = {"processId": process["processId"], "authKey": process["authKey"]}
    status, body, _ = await api.post(
        "update-appointment/", {**creds, "familyName": "X", "email": "x@example.org"}
    )
    assert_error(body, "invalidTelephone", "invalidCustomTextfield")
    status, body, _ = await api.post("preconfirm-appointment/", creds)
    assert status == 406
    assert_error(body, "emailIsRequired")
