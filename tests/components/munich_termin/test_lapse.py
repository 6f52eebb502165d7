"""A booking whose activation lapsed: the booking sensor, the event, the alert."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import BOOKING_STATES, DOMAIN, EVENT_TYPES
from mta_client.booking import ACTIVATION_LAPSED
from mta_client.simulator import SimulatorServer
from mta_client.watch import BookingState

from .conftest import WATCH_ID, state_of

TRANSLATIONS = Path(__file__).parents[3] / "custom_components" / DOMAIN / "translations"


async def _book(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.services.async_call(
        DOMAIN, "book", {"watch": WATCH_ID}, blocking=True, return_response=True
    )
    assert result is not None
    booking: dict[str, Any] = result["booking"]  # type: ignore[assignment]
    await hass.async_block_till_done()
    return booking


def _past_deadline(entry: MockConfigEntry) -> None:
    """Let the activation deadline pass (the city keeps its own clock)."""
    booker = entry.runtime_data.watcher.booker
    entry_state = booker.state.watches[WATCH_ID]
    passed = dt_util.utcnow() - timedelta(minutes=10)
    entry_state.booking = entry_state.booking.model_copy(
        update={"activation_deadline": passed}
    )


async def test_a_lapsed_activation_shows_on_the_sensor_and_as_an_event(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: SimulatorServer
) -> None:
    booking = await _book(hass)
    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "booked"
    # Nobody used the activation link: the city's cron dropped the booking.
    assert server.simulator.bookings.expire(booking["process_id"])
    _past_deadline(loaded_entry)

    await loaded_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()

    sensor = state_of(hass, "sensor.wohnsitz_booking_status")
    assert sensor.state == "lapsed"
    assert "lapsed" in sensor.attributes["options"]
    assert state_of(hass, "sensor.wohnsitz_activation_deadline").state == "unknown"
    event = state_of(hass, "event.wohnsitz_events")
    assert event.attributes["event_type"] == "activation_lapsed"
    assert event.attributes["process_id"] == booking["process_id"]
    assert event.attributes["reason"] == ACTIVATION_LAPSED
    watcher = loaded_entry.runtime_data.watcher
    assert watcher.booking_state(WATCH_ID) is BookingState.LAPSED
    assert watcher.credentials(WATCH_ID) is None
    # The watch may book again.
    again = await _book(hass)
    assert again["state"] == "booked"
    assert again["process_id"] != booking["process_id"]


async def test_a_link_used_in_a_browser_shows_as_confirmed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: SimulatorServer
) -> None:
    booking = await _book(hass)
    credentials = loaded_entry.runtime_data.watcher.credentials(WATCH_ID)
    assert credentials is not None
    server.simulator.bookings.confirm(
        {"processId": credentials.process_id, "authKey": credentials.auth_key}
    )
    _past_deadline(loaded_entry)

    await loaded_entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()

    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "confirmed"
    status = loaded_entry.runtime_data.watcher.status(WATCH_ID).booking
    assert status.process_id == booking["process_id"]


def test_every_booking_state_and_event_type_is_translated() -> None:
    for language in ("en", "de"):
        strings = json.loads((TRANSLATIONS / f"{language}.json").read_text())
        entity = strings["entity"]
        states = entity["sensor"]["booking_status"]["state"]
        assert set(states) == set(BOOKING_STATES) == {s.value for s in BookingState}
        events = entity["event"]["events"]["state_attributes"]["event_type"]["state"]
        assert set(events) == set(EVENT_TYPES)
        assert states["lapsed"]
        assert events["activation_lapsed"]
