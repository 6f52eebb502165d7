"""The actions: book, cancel, confirm, find_slots; and the "book earliest" button."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import DOMAIN
from custom_components.munich_termin.offers import offer_token
from mta_client import (
    MTAAppointmentNotFoundError,
    MTABlockedError,
    MTACaptchaInvalidError,
    MTAConnectionError,
    MTAError,
    MTAInvalidEmailError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTANoAppointmentForThisScopeError,
    MTAProcessNotPreconfirmedAnymoreError,
    MTARateLimitError,
    MTASlotUnavailableError,
    MTATooManyAppointmentsWithSameMailError,
    MTAValidationError,
)
from mta_client.booking import BookingConflictError, NoFittingSlotError
from mta_client.exceptions import MTAOutdatedAPIError
from mta_client.simulator import SimulatorServer
from mta_client.watch import BookingState

from .conftest import EMAIL, ORLEANS, RUPPERT, WATCH_ID, WOHNSITZ, state_of

BOOK = "mta_client.watcher.Watcher.book"


async def _call(
    hass: HomeAssistant, action: str, data: dict[str, Any], *, response: bool = True
) -> Any:
    return await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=response
    )


async def _error(
    hass: HomeAssistant, action: str, data: dict[str, Any], *, response: bool = True
) -> HomeAssistantError:
    with pytest.raises(HomeAssistantError) as info:
        await _call(hass, action, data, response=response)
    return info.value


def _earliest(hass: HomeAssistant) -> dict[str, Any]:
    return dict(state_of(hass, "sensor.wohnsitz_earliest_slot").attributes)


async def test_book_earliest_then_confirm_and_cancel(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: SimulatorServer
) -> None:
    earliest = state_of(hass, "sensor.wohnsitz_earliest_slot").state
    result = await _call(hass, "book", {"watch": WATCH_ID})
    booking = result["booking"]
    assert booking["watch"] == WATCH_ID
    assert booking["state"] == "booked"
    assert booking["office_id"] == RUPPERT
    assert booking["office"] == "Bürgerbüro Ruppertstraße"
    assert booking["start"] == datetime.fromisoformat(earliest).isoformat()
    assert booking["process_id"] > 0
    assert booking["activation_deadline"]
    assert "auth_key" not in booking
    await hass.async_block_till_done()
    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "booked"
    assert state_of(hass, "sensor.wohnsitz_activation_deadline").state != "unknown"
    assert state_of(hass, "event.wohnsitz_events").attributes["event_type"] == "booked"

    # One booking per watch.
    err = await _error(hass, "book", {"watch": WATCH_ID})
    assert err.translation_key == "booking_conflict"

    mails = server.simulator.outbox.to_address(EMAIL)
    link = next(m.link for m in mails if m.kind == "preconfirmation")
    assert link
    result = await _call(hass, "confirm", {"link": link})
    assert result["booking"]["state"] == "confirmed"
    await hass.async_block_till_done()
    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "confirmed"

    result = await _call(hass, "cancel", {"watch": WATCH_ID})
    assert result["booking"]["state"] == "cancelled"
    err = await _error(hass, "cancel", {"watch": WATCH_ID})
    assert err.translation_key == "booking_conflict"


async def test_book_by_device_without_response(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, WATCH_ID), loaded_entry.entry_id
    )
    assert device is not None
    assert await _call(hass, "book", {"device_id": device.id}, response=False) is None
    assert await _call(hass, "cancel", {"device_id": device.id}, response=False) is None


async def test_book_an_offer(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    slots = state_of(hass, "sensor.wohnsitz_fitting_slots").attributes["slots"]
    second = slots[1]
    result = await _call(hass, "book", {"offer": second["offer"]})
    assert result["booking"]["start"] == second["start"]


async def test_book_a_given_slot(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    slots = state_of(hass, "sensor.wohnsitz_fitting_slots").attributes["slots"]
    start = datetime.fromisoformat(slots[2]["start"])
    result = await _call(
        hass,
        "book",
        {"watch": WATCH_ID, "office_id": RUPPERT, "start": start.isoformat()},
    )
    assert result["booking"]["start"] == start.isoformat()


async def test_book_a_given_slot_in_local_time(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    slots = state_of(hass, "sensor.wohnsitz_fitting_slots").attributes["slots"]
    start = datetime.fromisoformat(slots[3]["start"])
    # Without a zone, the start is Home Assistant's local time.
    local = start.astimezone(dt_util.get_default_time_zone()).replace(tzinfo=None)
    result = await _call(
        hass,
        "book",
        {"watch": WATCH_ID, "office_id": RUPPERT, "start": local.isoformat()},
    )
    assert result["booking"]["start"] == start.isoformat()


async def test_taken_slot_says_what_to_do(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: SimulatorServer
) -> None:
    attributes = _earliest(hass)
    start = datetime.fromisoformat(
        state_of(hass, "sensor.wohnsitz_earliest_slot").state
    )
    server.simulator.take_slot(RUPPERT, start, minutes=15)
    err = await _error(hass, "book", {"offer": attributes["offer"]})
    assert err.translation_key == "slot_taken"
    assert isinstance(err, HomeAssistantError)
    assert not isinstance(err, ServiceValidationError)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "target_required"),
        ({"watch": WATCH_ID, "device_id": "x"}, "target_required"),
        ({"watch": "nope"}, "unknown_watch"),
        ({"offer": "garbage"}, "invalid_offer"),
        ({"offer": "a.zz.10"}, "invalid_offer"),
        ({"offer": "x" * 70}, "invalid_offer"),
        ({"offer": "w.1.0"}, "invalid_offer"),
        ({"offer": "a.1.10", "watch": WATCH_ID}, "offer_alone"),
        ({"watch": WATCH_ID, "office_id": RUPPERT}, "slot_incomplete"),
        ({"watch": WATCH_ID, "start": "2026-12-01T10:00:00"}, "slot_incomplete"),
    ],
)
async def test_book_validation(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, data: dict[str, Any], key: str
) -> None:
    err = await _error(hass, "book", data)
    assert isinstance(err, ServiceValidationError)
    assert err.translation_key == key


async def test_offer_of_an_unknown_watch(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    offer = offer_token(
        "01JOTHER00000000000000000", RUPPERT, datetime.now().astimezone()
    )
    err = await _error(hass, "book", {"offer": offer})
    assert err.translation_key == "unknown_watch"


async def test_the_service_device_is_no_watch(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, loaded_entry.entry_id), loaded_entry.entry_id
    )
    assert device is not None
    err = await _error(hass, "book", {"device_id": device.id})
    assert err.translation_key == "not_a_watch"


@pytest.mark.parametrize(
    ("error", "key", "validation"),
    [
        (MTASlotUnavailableError(), "slot_taken", False),
        (MTABlockedError(), "blocked", False),
        (MTAMaintenanceError(), "maintenance", False),
        (MTARateLimitError(), "rate_limited", False),
        (MTACaptchaInvalidError(), "captcha_failed", False),
        (MTATooManyAppointmentsWithSameMailError(), "quota_reached", False),
        (MTAProcessNotPreconfirmedAnymoreError(), "appointment_state", False),
        (MTAAppointmentNotFoundError(), "appointment_state", False),
        (MTANoAppointmentForThisScopeError(), "no_slot", False),
        (MTAOutdatedAPIError(), "invalid_response", False),
        (MTAInvalidEmailError(), "city_refused_input", False),
        (MTAConnectionError("down"), "cannot_connect", False),
        (MTAInvalidResponseError("html"), "invalid_response", False),
        (NoFittingSlotError("none"), "no_slot", False),
        (
            BookingConflictError("held", state=BookingState.BOOKED),
            "booking_conflict",
            False,
        ),
        (MTAError("odd"), "city_error", False),
        (MTAValidationError("contact", "missing"), "invalid_input", True),
    ],
)
async def test_city_errors_are_translated(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    error: Exception,
    key: str,
    validation: bool,
) -> None:
    with patch(BOOK, side_effect=error):
        err = await _error(hass, "book", {"watch": WATCH_ID})
    assert err.translation_key == key
    assert err.translation_domain == DOMAIN
    assert isinstance(err, ServiceValidationError) is validation


async def test_failed_booking_event_is_an_error(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    from mta_client.watch import BookingEvent  # noqa: PLC0415

    event = BookingEvent(state=BookingState.IDLE, watch_id=WATCH_ID, reason="odd")
    with patch(BOOK, return_value=event):
        err = await _error(hass, "book", {"watch": WATCH_ID})
    assert err.translation_key == "booking_failed"
    assert err.translation_placeholders == {"reason": "odd"}


async def test_cancel_and_confirm_errors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    with patch(
        "mta_client.watcher.Watcher.cancel", side_effect=MTAConnectionError("down")
    ):
        err = await _error(hass, "cancel", {"watch": WATCH_ID})
    assert err.translation_key == "cannot_connect"
    err = await _error(hass, "confirm", {"link": "https://example.org/#/x"})
    assert isinstance(err, ServiceValidationError)
    assert err.translation_key == "invalid_input"
    # A real link shape, but no watch holds that appointment.
    link = "https://example.org/#/appointment/confirm/eyJpZCI6MTIzNDUsImF1dGhLZXkiOiJhYmNkIn0"
    err = await _error(hass, "confirm", {"link": link})
    assert err.translation_key == "unknown_appointment"


async def test_button_books_the_earliest(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    await hass.services.async_call(
        "button",
        "press",
        target={"entity_id": "button.wohnsitz_book_earliest"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "booked"


# --- find_slots -------------------------------------------------------------------


async def test_find_slots(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await _call(hass, "find_slots", {"services": [f"{WOHNSITZ}:2"]})
    assert result["services"] == [
        {"service_id": WOHNSITZ, "name": "Wohnsitzanmeldung", "count": 2}
    ]
    assert result["bookable_days"]
    assert {s["office_id"] for s in result["slots"]} >= {RUPPERT}
    one = await _call(
        hass,
        "find_slots",
        {
            "services": [str(WOHNSITZ)],
            "office_ids": [ORLEANS],
            "start_date": result["bookable_days"][0],
            "end_date": result["bookable_days"][-1],
        },
    )
    assert {s["office"] for s in one["slots"]} == {"Bürgerbüro Orleansplatz"}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"services": ["abc"]}, "invalid_service"),
        ({"services": ["999"]}, "invalid_service"),
        ({"services": [str(WOHNSITZ)], "office_ids": [10471]}, "no_office_offers"),
        ({"services": [str(WOHNSITZ), "1071907"]}, "no_office_offers"),
    ],
)
async def test_find_slots_validation(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, data: dict[str, Any], key: str
) -> None:
    err = await _error(hass, "find_slots", data)
    assert isinstance(err, ServiceValidationError)
    assert err.translation_key == key


async def test_find_slots_city_errors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    with patch(
        "mta_client.client.MTAClient.get_available_calendar",
        side_effect=MTABlockedError(),
    ):
        err = await _error(hass, "find_slots", {"services": [str(WOHNSITZ)]})
    assert err.translation_key == "blocked"
    with patch(
        "mta_client.client.MTAClient.get_catalogue", side_effect=MTAMaintenanceError()
    ):
        err = await _error(hass, "find_slots", {"services": [str(WOHNSITZ)]})
    assert err.translation_key == "maintenance"


async def test_actions_need_a_loaded_entry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    err = await _error(hass, "book", {"watch": WATCH_ID})
    assert isinstance(err, ServiceValidationError)
    err = await _error(hass, "find_slots", {"services": [str(WOHNSITZ)]})
    assert isinstance(err, ServiceValidationError)
