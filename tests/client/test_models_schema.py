"""The response models accept exactly what the city's citizenapi schemas allow.

The fixtures under ``fixtures/schema/`` are written by hand from the schema
facts (``null`` wherever a schema allows it, PHP's ``[]`` for empty objects,
``null`` entries in lists); the schemas themselves are not read here.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, date, datetime, timedelta
from types import EllipsisType
from typing import Any

from aioresponses import aioresponses
import pytest

from mta_client import MTAClient
from mta_client.client import BERLIN, _parse
from mta_client.exceptions import MTAInvalidResponseError, MTAValidationError
from mta_client.models import (
    Appointment,
    AppointmentStatus,
    AvailableCalendar,
    CaptchaDetails,
    Catalogue,
    ContactDetails,
    ProcessCredentials,
    Scope,
    ServiceRequest,
    Slot,
    from_unix_seconds,
)
from mta_client.watch import Watch

from .helpers import load_fixture, route, sent

PASING = 54261
RUPPERT = 10489
FUEHRERSCHEIN = 10308174
WOHNSITZ = 1063475
UMSCHREIBUNG = 1071896
FLAGS = (
    "email_required",
    "telephone_activated",
    "telephone_required",
    "custom_textfield_activated",
    "custom_textfield_required",
    "custom_textfield2_activated",
    "custom_textfield2_required",
    "captcha_activated_required",
)
CREDENTIALS = ProcessCredentials(process_id=4711, auth_key="b7c1")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_fixture(f"schema/{name}")
    data.pop("_comment", None)
    return data


# --- nulls where the schemas allow them -------------------------------------------


def test_catalogue_with_nulls_everywhere_allowed() -> None:
    catalogue = _parse(Catalogue, fixture("catalogue_nulls.json"))

    assert [o.id for o in catalogue.offices] == [RUPPERT, PASING, FUEHRERSCHEIN]
    ruppert, pasing, fuehrerschein = catalogue.offices
    # Display names and lists: null is the empty value.
    assert ruppert.name == ""
    assert ruppert.display_name_alternatives == []
    assert ruppert.disabled_by_services == []
    assert ruppert.allow_disabled_services_mix == []
    assert ruppert.shared_booking_office_ids == []
    # Everything else: null stays "not set".
    assert ruppert.show_alternative_locations is None
    assert ruppert.address is None
    assert ruppert.geo is None
    assert ruppert.slot_time_in_minutes is None
    assert ruppert.slots_per_appointment is None
    scope = ruppert.scope
    assert scope is not None
    assert scope.id == 160
    for flag in FLAGS:
        assert getattr(scope, flag) is None, flag
    assert scope.reservation_duration is None
    assert scope.activation_duration is None
    assert scope.slots_per_appointment is None
    assert scope.appointments_per_mail is None
    assert scope.provider is not None
    assert scope.provider.id == "10489"
    assert scope.provider.lat is None
    assert scope.provider.contact is not None
    assert scope.provider.contact.street is None
    # PHP's [] for an empty object, numbers as strings, the legacy boolean.
    assert pasing.address is None
    assert pasing.scope is None
    assert pasing.geo is not None
    assert (pasing.geo.lat, pasing.geo.lon) == (48.1466, 11.4615)
    assert pasing.allow_disabled_services_mix is True
    assert fuehrerschein.scope is None
    assert fuehrerschein.geo is None
    assert fuehrerschein.address is not None
    assert fuehrerschein.address.street is None

    # A service or relation with a null id can be neither booked nor found.
    assert [s.id for s in catalogue.services] == [WOHNSITZ, UMSCHREIBUNG]
    wohnsitz, umschreibung = catalogue.services
    assert wohnsitz.name == ""
    assert wohnsitz.max_quantity == 1  # the city's default
    assert wohnsitz.combinable == {}
    assert wohnsitz.public is None
    assert wohnsitz.show_on_start_page is None
    assert wohnsitz.root_parent_id is None
    assert umschreibung.combinable == {UMSCHREIBUNG: [FUEHRERSCHEIN]}
    assert umschreibung.show_on_start_page is None
    assert [(r.office_id, r.service_id, r.slots) for r in catalogue.relations] == [
        (RUPPERT, WOHNSITZ, None),
        (FUEHRERSCHEIN, UMSCHREIBUNG, 2),
    ]


def test_unset_captcha_flag_counts_as_required() -> None:
    catalogue = _parse(Catalogue, fixture("catalogue_nulls.json"))
    # An unneeded token costs a solved challenge; a missing one a refusal.
    assert catalogue.offices[0].captcha_required is True
    assert catalogue.captcha_required([RUPPERT]) is True
    # No scope at all: nothing asks for a captcha.
    assert catalogue.captcha_required([PASING, FUEHRERSCHEIN]) is False
    explicit = Scope.model_validate({"id": 1, "captchaActivatedRequired": False})
    assert explicit.captcha_activated_required is False


def test_process_with_nulls_everywhere_allowed() -> None:
    appointment = _parse(Appointment, fixture("process_nulls.json"))
    assert appointment.process_id == 4711
    assert appointment.timestamp is None
    assert appointment.status is AppointmentStatus.UNKNOWN
    assert appointment.office_id is None
    assert appointment.email is None
    assert appointment.captcha_token is None
    assert appointment.scope is not None
    assert appointment.scope.id == 160  # string or integer
    for flag in FLAGS:
        assert getattr(appointment.scope, flag) is None, flag
    assert appointment.scope.slots_per_appointment == 1
    assert appointment.scope.appointments_per_mail is None
    # The schema's bare integers (the server's objects are tested elsewhere).
    assert [(s.id, s.count) for s in appointment.sub_request_counts] == [(None, 2)]


def test_null_auth_key_and_scope() -> None:
    body = {**fixture("process_nulls.json"), "authKey": None, "scope": None}
    appointment = _parse(Appointment, body)
    assert appointment.auth_key == ""
    assert appointment.scope is None


@pytest.mark.parametrize(
    "path",
    [
        "update-appointment/",
        "preconfirm-appointment/",
        "confirm-appointment/",
        "cancel-appointment/",
    ],
)
async def test_every_booking_step_reads_a_scope_with_null_flags(
    client: MTAClient, responses: aioresponses, path: str
) -> None:
    responses.post(route(path), payload=fixture("process_nulls.json"))
    contact = ContactDetails(family_name="Muster")
    calls = {
        "update-appointment/": lambda: client.update_appointment(
            credentials=CREDENTIALS, contact=contact
        ),
        "preconfirm-appointment/": lambda: client.preconfirm_appointment(
            credentials=CREDENTIALS
        ),
        "confirm-appointment/": lambda: client.confirm_appointment(
            credentials=CREDENTIALS
        ),
        "cancel-appointment/": lambda: client.cancel_appointment(
            credentials=CREDENTIALS
        ),
    }
    appointment = await calls[path]()
    assert appointment.scope is not None
    assert appointment.scope.email_required is None


def test_calendar_with_nulls_everywhere_allowed() -> None:
    calendar = _parse(AvailableCalendar, fixture("calendar_nulls.json"))
    assert calendar.prev_bookable_date is None
    assert calendar.next_bookable_date is None
    assert calendar.bookable_dates == [
        date(2026, 12, 3),
        date(2026, 12, 4),
        date(2920, 8, 30),
    ]
    first, second, far = calendar.available_days
    assert first.provider_ids == [RUPPERT, PASING]
    assert [(b.office_id, len(b.appointments)) for b in first.offices] == [
        (RUPPERT, 2),
        (PASING, 0),
    ]
    assert second.provider_ids == []
    assert second.offices == []
    assert far.offices[0].appointments == [datetime(2920, 8, 30, 5, 20, tzinfo=UTC)]


def test_calendar_without_optional_fields() -> None:
    calendar = _parse(
        AvailableCalendar,
        {"startDate": "2026-12-01", "endDate": "2026-12-31", "availableDays": []},
    )
    assert calendar.slots_start_date is None
    assert calendar.slots == []


def test_captcha_details_parse() -> None:
    details = _parse(CaptchaDetails, fixture("captcha_details.json"))
    assert details.captcha_enabled is True
    assert details.site_key == "site-key-for-tests"


# --- what the schemas forbid ---------------------------------------------------------


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy with ``path`` (dots, list indexes) set or, for ..., removed."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return changed


FORBIDDEN: list[tuple[type[Any], str, str, Any]] = [
    # thinnedScope
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.emailRequired", "yes"),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.emailRequired", 1),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.captchaActivatedRequired", 0),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.id", None),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.id", "KVR"),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.reservationDuration", "15"),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.slotsPerAppointment", "two"),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.shortName", 7),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.provider.source", None),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.provider.lat", "48.1"),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope", "160"),
    # office
    (Catalogue, "catalogue_nulls.json", "offices.0.id", None),
    (Catalogue, "catalogue_nulls.json", "offices.0.id", "10489"),
    (Catalogue, "catalogue_nulls.json", "offices.0.id", ...),
    (Catalogue, "catalogue_nulls.json", "offices.0.showAlternativeLocations", "true"),
    (Catalogue, "catalogue_nulls.json", "offices.0.slotTimeInMinutes", 5.5),
    (Catalogue, "catalogue_nulls.json", "offices.1.geo.lat", 200),
    (Catalogue, "catalogue_nulls.json", "offices.1.geo.lon", "east"),
    (Catalogue, "catalogue_nulls.json", "offices.1.geo.lat", None),
    (Catalogue, "catalogue_nulls.json", "offices.1.geo.lon", True),
    (Catalogue, "catalogue_nulls.json", "offices.0.scope.id", "\uff11\uff16\uff10"),
    (Catalogue, "catalogue_nulls.json", "offices.1.sharedBookingOfficeIds", ["x"]),
    (Catalogue, "catalogue_nulls.json", "offices.0", None),
    # service
    (Catalogue, "catalogue_nulls.json", "services.0.id", "1063475"),
    (Catalogue, "catalogue_nulls.json", "services.0.name", ...),
    (Catalogue, "catalogue_nulls.json", "services.0.showOnStartPage", "yes"),
    (Catalogue, "catalogue_nulls.json", "services.0.public", 1),
    (Catalogue, "catalogue_nulls.json", "services.0.combinable", None),
    (Catalogue, "catalogue_nulls.json", "services.1.combinable.1", {"a": [1]}),
    (Catalogue, "catalogue_nulls.json", "services.1.combinable.1", {"1": [1], "2": []}),
    (Catalogue, "catalogue_nulls.json", "services.1.combinable.1.1071896", ["10"]),
    # relation
    (Catalogue, "catalogue_nulls.json", "relations.0.slots", ...),
    (Catalogue, "catalogue_nulls.json", "relations.1.slots", "2"),
    (Catalogue, "catalogue_nulls.json", "relations.1.officeId", ...),
    # collections
    (Catalogue, "catalogue_nulls.json", "offices", None),
    (Catalogue, "catalogue_nulls.json", "services", ...),
    (Catalogue, "catalogue_nulls.json", "relations", None),
    # availableCalendar
    (AvailableCalendar, "calendar_nulls.json", "startDate", None),
    (AvailableCalendar, "calendar_nulls.json", "startDate", "2026/12/01"),
    (AvailableCalendar, "calendar_nulls.json", "startDate", 1796166000),
    (AvailableCalendar, "calendar_nulls.json", "endDate", "2026-12-01T00:00:00"),
    (AvailableCalendar, "calendar_nulls.json", "endDate", ...),
    (AvailableCalendar, "calendar_nulls.json", "slotsStartDate", None),
    (AvailableCalendar, "calendar_nulls.json", "nextBookableDate", "2026-13-01"),
    (AvailableCalendar, "calendar_nulls.json", "availableDays", None),
    (AvailableCalendar, "calendar_nulls.json", "availableDays.0.date", "tomorrow"),
    (AvailableCalendar, "calendar_nulls.json", "availableDays.0.providerIDs", None),
    (AvailableCalendar, "calendar_nulls.json", "availableDays.0.providerIDs", [1]),
    (AvailableCalendar, "calendar_nulls.json", "availableDays.0.offices.0.officeId", 1),
    (
        AvailableCalendar,
        "calendar_nulls.json",
        "availableDays.0.offices.0.appointments",
        [-1],
    ),
    (
        AvailableCalendar,
        "calendar_nulls.json",
        "availableDays.0.offices.0.appointments",
        [1796284800.5],
    ),
    (
        AvailableCalendar,
        "calendar_nulls.json",
        "availableDays.0.offices.0.appointments",
        ["1796284800"],
    ),
    (
        AvailableCalendar,
        "calendar_nulls.json",
        "availableDays.0.offices.0.appointments",
        [True],
    ),
    (
        AvailableCalendar,
        "calendar_nulls.json",
        "availableDays.0.offices.0.appointments",
        [10**20],
    ),
    # thinnedProcess
    (Appointment, "process_nulls.json", "processId", None),
    (Appointment, "process_nulls.json", "processId", "4711"),
    (Appointment, "process_nulls.json", "timestamp", 1796284800),
    (Appointment, "process_nulls.json", "timestamp", "soon"),
    (Appointment, "process_nulls.json", "timestamp", str(10**20)),
    (Appointment, "process_nulls.json", "timestamp", "-99999999999999"),
    (Appointment, "process_nulls.json", "status", 3),
    (Appointment, "process_nulls.json", "email", 5),
    (Appointment, "process_nulls.json", "officeId", "10489"),
    (Appointment, "process_nulls.json", "serviceCount", True),
    (Appointment, "process_nulls.json", "scope.telephoneRequired", "false"),
    (Appointment, "process_nulls.json", "subRequestCounts", [1.5]),
    # captcha
    (CaptchaDetails, "captcha_details.json", "captchaEnabled", None),
    (CaptchaDetails, "captcha_details.json", "captchaEnabled", "true"),
    (CaptchaDetails, "captcha_details.json", "siteKey", ...),
]


@pytest.mark.parametrize(
    ("model", "name", "path", "value"),
    FORBIDDEN,
    ids=[f"{m.__name__}:{p}={v!r}"[:80] for m, _, p, v in FORBIDDEN],
)
def test_values_the_schema_forbids_are_invalid(
    model: type[Any], name: str, path: str, value: Any
) -> None:
    document = fixture(name)
    assert _parse(model, document) is not None  # the unchanged document is fine
    with pytest.raises(MTAInvalidResponseError):
        _parse(model, _set(document, path, value))


async def test_a_forbidden_value_is_an_invalid_response_from_the_client(
    client: MTAClient, responses: aioresponses
) -> None:
    body = _set(fixture("process_nulls.json"), "scope.emailRequired", "no")
    responses.post(route("preconfirm-appointment/"), payload=body)
    with pytest.raises(MTAInvalidResponseError, match="emailRequired"):
        await client.preconfirm_appointment(credentials=CREDENTIALS)


def test_server_shapes_the_schema_does_not_describe() -> None:
    # The city's server writes sub-request objects and may add new states.
    body = {
        **fixture("process_nulls.json"),
        "subRequestCounts": [{"id": 1, "name": "Zweiter Dienst", "count": 3}],
        "status": "rebooked",
        "timestamp": "1796284800",
    }
    appointment = _parse(Appointment, body)
    assert [(s.id, s.count) for s in appointment.sub_request_counts] == [(1, 3)]
    assert appointment.status is AppointmentStatus.UNKNOWN
    assert appointment.timestamp == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


# --- callers decide what an unset flag means -----------------------------------------


def _scope(**flags: bool | EllipsisType | None) -> Scope:
    return Scope.model_validate(
        {"id": 160, **{k: v for k, v in flags.items() if v is not ...}}
    )


@pytest.mark.parametrize("field", ["email", "telephone", "custom_textfield"])
def test_unset_required_flags_require_nothing(field: str) -> None:
    flag = f"{field}_required"
    contact = ContactDetails(family_name="Muster")
    contact.check_against(_scope(**{flag: None}))
    contact.check_against(_scope(**{flag: False}))
    with pytest.raises(MTAValidationError, match=field):
        contact.check_against(_scope(**{flag: True}))


def test_watch_contact_check_with_unset_flags() -> None:
    catalogue = _parse(Catalogue, fixture("catalogue_nulls.json"))
    watch = Watch(
        id="w",
        services=[ServiceRequest(service_id=WOHNSITZ)],
        office_ids=[RUPPERT],
        auto_book=True,
        contact=ContactDetails(family_name="Muster"),
    )
    watch.check_contact(catalogue)  # emailRequired null: not required
    strict = _set(
        fixture("catalogue_nulls.json"), "offices.0.scope.emailRequired", value=True
    )
    with pytest.raises(MTAValidationError, match="email"):
        watch.check_contact(_parse(Catalogue, strict))


# --- Unix seconds, always ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1796284800, datetime(2026, 12, 3, 8, 0, tzinfo=UTC)),
        ("1796284800", datetime(2026, 12, 3, 8, 0, tzinfo=UTC)),
        # Above 2·10¹⁰ pydantic would read milliseconds (1970-12-17).
        (30_000_000_000, datetime(2920, 8, 30, 5, 20, tzinfo=UTC)),
        (253_402_300_799, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (-62_135_596_800, datetime(1, 1, 1, tzinfo=UTC)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_from_unix_seconds(value: int | str, expected: datetime) -> None:
    assert from_unix_seconds(value) == expected


@pytest.mark.parametrize(
    "value",
    [10**20, 253_402_300_800, -62_135_596_801, -(10**20), "1e9", 1.5, True, None],
)
def test_from_unix_seconds_out_of_range_or_not_seconds(value: Any) -> None:
    with pytest.raises(MTAInvalidResponseError):
        from_unix_seconds(value)


def test_slot_reads_seconds() -> None:
    start = datetime(2920, 8, 30, 5, 20, tzinfo=UTC)
    # Seconds are raw input: the typed constructor only admits a datetime.
    seconds: dict[str, Any] = {"office_id": 1, "start": 30_000_000_000}
    assert Slot(**seconds).start == start
    assert Slot(office_id=1, start=start).timestamp == 30_000_000_000
    too_late: dict[str, Any] = {"office_id": 1, "start": 10**20}
    with pytest.raises(ValueError, match="outside the supported range"):
        Slot(**too_late)


async def test_reserve_sends_exactly_the_calendar_timestamp(
    client: MTAClient, responses: aioresponses
) -> None:
    far = 30_000_000_000  # > 2·10¹⁰: no millisecond guess anywhere
    responses.get(
        route("offices-and-services/"), payload=fixture("catalogue_nulls.json")
    )
    responses.get(
        route("available-calendar/"),
        payload={
            "startDate": "2920-08-01",
            "endDate": "2920-08-31",
            "availableDays": [
                {
                    "date": "2920-08-30",
                    "providerIDs": str(FUEHRERSCHEIN),
                    "offices": [
                        {"officeId": str(FUEHRERSCHEIN), "appointments": [far]}
                    ],
                }
            ],
        },
    )
    responses.post(
        route("reserve-appointment/"),
        payload={**fixture("process_nulls.json"), "timestamp": str(far)},
    )
    calendar = await client.get_available_calendar(
        office_ids=[FUEHRERSCHEIN],
        services=[UMSCHREIBUNG],
        start_date=date(2920, 8, 1),
        end_date=date(2920, 8, 31),
    )
    (slot,) = calendar.slots
    assert slot.start.astimezone(BERLIN).date() == date(2920, 8, 30)
    reserved = await client.reserve_appointment(
        office_id=slot.office_id, services=[UMSCHREIBUNG], timestamp=slot
    )
    (_, _, kwargs) = sent(responses)[-1]
    assert kwargs["json"]["timestamp"] == far
    assert "captchaToken" not in kwargs["json"]
    assert reserved.timestamp == slot.start
    assert reserved.timestamp - timedelta(seconds=far) == datetime(
        1970, 1, 1, tzinfo=UTC
    )


# --- no value anywhere crashes the parser -------------------------------------------

ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    10**20,
    "",
    "x",
    "-5",
    [],
    [None],
    {},
    {"a": 1},
)


def _paths(node: Any, prefix: str = "") -> list[str]:
    found: list[str] = []
    items = (
        enumerate(node)
        if isinstance(node, list)
        else node.items()
        if isinstance(node, dict)
        else ()
    )
    for key, child in items:
        path = f"{prefix}{key}"
        found.append(path)
        found.extend(_paths(child, f"{path}."))
    return found


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (Catalogue, "catalogue_nulls.json"),
        (AvailableCalendar, "calendar_nulls.json"),
        (Appointment, "process_nulls.json"),
        (CaptchaDetails, "captcha_details.json"),
    ],
)
def test_any_value_anywhere_is_parsed_or_invalid(model: type[Any], name: str) -> None:
    # Whatever the city sends, the client either reads it or raises
    # MTAInvalidResponseError, never TypeError, OverflowError, ...
    document = fixture(name)
    for path in _paths(document):
        for value in ODD_VALUES:
            with contextlib.suppress(MTAInvalidResponseError):
                parsed = _parse(model, _set(document, path, value))
                if isinstance(parsed, AvailableCalendar):
                    assert isinstance(parsed.slots, list)
