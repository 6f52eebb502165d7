"""GET /available-calendar/: validation and day/slot semantics."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, at
from .test_routes import assert_error

BASE = {
    "startDate": "2026-11-23",
    "endDate": "2027-05-23",
    "officeIds": "10308174",  # Führerscheinstelle: no captcha
    "serviceIds": "1071896",
    "serviceCounts": "1",
}


async def calendar(api: Api, **params: Any) -> tuple[int, Any]:
    query = {k: v for k, v in {**BASE, **params}.items() if v is not None}
    status, body, _ = await api.get("available-calendar/", query)
    return status, body


@pytest.mark.parametrize(
    ("params", "codes"),
    [
        ({"startDate": None}, ["invalidStartDate"]),
        ({"startDate": "2026-13-01"}, ["invalidStartDate"]),
        (
            {"startDate": "23.11.2026", "endDate": ""},
            ["invalidStartDate", "invalidEndDate"],
        ),
        ({"officeIds": "abc"}, ["invalidOfficeId"]),
        ({"officeIds": None}, ["invalidOfficeId"]),
        ({"officeIds": "99999999999"}, ["invalidOfficeId"]),
        ({"serviceIds": None, "serviceCounts": None}, ["EMPTY_SERVICE_ARRAYS"]),
        ({"serviceIds": "x"}, ["invalidServiceId"]),
        ({"serviceCounts": "0"}, ["invalidServiceCount"]),
        ({"serviceCounts": "26"}, ["invalidServiceCount"]),
        ({"serviceCounts": "1,1"}, ["MISMATCHED_ARRAYS"]),
        ({"slotsStartDate": "2026-11-31"}, ["invalidSlotsStartDate"]),
        ({"slotsEndDate": "tomorrow"}, ["invalidSlotsEndDate"]),
        (
            {"slotsStartDate": "2026-12-02", "slotsEndDate": "2026-12-01"},
            ["slotsStartDateAfterEndDate"],
        ),
        (
            {"officeIds": "0", "startDate": None},
            ["invalidStartDate", "invalidOfficeId"],
        ),
    ],
)
async def test_validation_errors(
    api: Api, params: dict[str, Any], codes: list[str]
) -> None:
    status, body = await calendar(api, **params)
    assert status == 400
    assert_error(body, *codes)


async def test_range_too_large_and_reversed_are_unknown_error(api: Api) -> None:
    for params in (
        {"endDate": "2027-11-24"},
        {"startDate": "2026-12-01", "endDate": "2026-11-30"},
    ):
        status, body = await calendar(api, **params)
        assert status == 520
        assert_error(body, "unknownError")
    status, _ = await calendar(api, endDate="2027-11-23")  # exactly 365 days is fine
    assert status == 200


async def test_every_office_must_offer_every_service(api: Api) -> None:
    status, body = await calendar(api, officeIds="10308174,10308013")
    assert status == 400
    assert_error(body, "invalidLocationAndServiceCombination")
    status, body = await calendar(api, officeIds="123456")
    assert status == 400
    assert_error(body, "invalidLocationAndServiceCombination")


async def test_captcha_required_for_buergerbuero(api: Api) -> None:
    params = {"officeIds": "102522", "serviceIds": "1063441"}
    status, body = await calendar(api, **params)
    assert status == 400
    assert_error(body, "captchaMissing")
    status, body = await calendar(api, **params, captchaToken="garbage")
    assert_error(body, "captchaInvalid")
    status, body = await calendar(api, **params, captchaToken=await api.token())
    assert status == 200


async def test_first_bookable_day_gets_the_slots(api: Api) -> None:
    status, body = await calendar(api)
    assert status == 200
    assert body["startDate"] == "2026-11-23"
    assert body["endDate"] == "2027-05-23"
    assert body["slotsStartDate"] == body["slotsEndDate"] == "2026-11-24"
    days = body["availableDays"]
    # only the month of the slots window (November) is painted
    assert [d["date"] for d in days] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert days[0]["providerIDs"] == "10308174"
    office = days[0]["offices"][0]
    assert office["officeId"] == "10308174"  # a string in this route
    step = 20 * 60  # slotTimeInMinutes of the Führerscheinstelle
    morning = list(range(at("2026-11-24", 9), at("2026-11-24", 10), step))
    afternoon = list(range(at("2026-11-24", 14), at("2026-11-24", 15), step))
    assert office["appointments"] == morning + afternoon
    assert days[1]["offices"] == []
    assert days[2]["offices"] == []
    assert body["prevBookableDate"] is None
    assert body["nextBookableDate"] == "2026-12-28"


async def test_slots_for_a_chosen_day(api: Api) -> None:
    status, body = await calendar(
        api, slotsStartDate="2026-11-26", slotsEndDate="2026-11-26"
    )
    assert status == 200
    assert body["slotsStartDate"] == "2026-11-26"
    days = {d["date"]: d for d in body["availableDays"]}
    assert days["2026-11-26"]["offices"][0]["appointments"][0] == at("2026-11-26", 9)
    assert days["2026-11-24"]["offices"] == []


async def test_other_month_and_prev_next(api: Api) -> None:
    _status, body = await calendar(
        api, slotsStartDate="2026-12-01", slotsEndDate="2026-12-31"
    )
    assert [d["date"] for d in body["availableDays"]] == ["2026-12-28"]
    assert body["slotsStartDate"] == "2026-12-28"
    assert body["prevBookableDate"] == "2026-11-26"
    assert body["nextBookableDate"] is None


async def test_empty_month_jumps_to_first_bookable_day(api: Api) -> None:
    status, body = await calendar(
        api, slotsStartDate="2027-02-01", slotsEndDate="2027-02-01"
    )
    assert status == 200
    assert body["slotsStartDate"] == body["slotsEndDate"] == "2026-11-24"
    assert body["availableDays"][0]["offices"][0]["appointments"]


async def test_multi_unit_services_need_consecutive_free_units(api: Api) -> None:
    token = await api.token()
    params = {
        "officeIds": "102522",
        "captchaToken": token,
        "slotsEndDate": "2026-11-24",
    }
    # Meldebescheinigung: 2 units of 5 minutes; 09:00-10:00 → starts 09:00..09:50
    _, body = await calendar(api, **params, serviceIds="1063576", serviceCounts="1")
    starts = body["availableDays"][0]["offices"][0]["appointments"]
    assert starts[:11] == list(range(at("2026-11-24", 9), at("2026-11-24", 9, 55), 300))
    # 2 x Meldebescheinigung = 4 units → last start 09:40
    _, body = await calendar(api, **params, serviceIds="1063576", serviceCounts="2")
    starts = body["availableDays"][0]["offices"][0]["appointments"]
    assert starts[:9][-1] == at("2026-11-24", 9, 40)
    assert at("2026-11-24", 9, 45) not in starts


async def test_only_future_slots(api: Api, sim_clock) -> None:
    await calendar(api)  # the fixed scenario is laid out on the first request
    sim_clock.now = at("2026-11-24", 9, 30)
    _, body = await calendar(api)
    appointments = body["availableDays"][0]["offices"][0]["appointments"]
    assert appointments[0] == at("2026-11-24", 9, 40)


async def test_shared_booking_offices(api: Api) -> None:
    token = await api.token()
    _, body = await calendar(
        api, officeIds="10489,10503", serviceIds="1063475", captchaToken=token
    )
    day = body["availableDays"][0]
    assert day["providerIDs"] == "10489,10503"
    assert [o["officeId"] for o in day["offices"]] == ["10489", "10503"]


async def test_nothing_free(make_sim, serve_sim) -> None:
    api = await serve_sim(make_sim(scenario="quiet"))
    status, body = await calendar(api)
    assert status == 200
    assert body["availableDays"] == []
    assert body["prevBookableDate"] is None
    assert body["nextBookableDate"] is None
