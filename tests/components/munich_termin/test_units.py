"""The integration's small helpers, one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import CONF_BASE_URL, DOMAIN, SUBENTRY_WATCH
from custom_components.munich_termin.coordinator import HAStateStore, _update_failed
from custom_components.munich_termin.offers import (
    InvalidOfferError,
    offer_token,
    parse_offer,
)
from custom_components.munich_termin.watches import (
    ContactProblem,
    appointment_minutes,
    build_watch,
    check_contact,
    clean_contact,
    contact_details,
    duration,
    office_label,
    service_label,
)
from mta_client import Catalogue, ContactDetails, MTAError, Office
from mta_client.simulator import SimulatorServer
from mta_client.store import StoreError
from mta_client.watch import BookingEvent, BookingState

from .conftest import (
    EMAIL,
    FAMILY_NAME,
    RUPPERT,
    WATCH_ID,
    setup_entry,
    state_of,
    watch_data,
)


def test_offer_round_trip() -> None:
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    token = offer_token(WATCH_ID, RUPPERT, start)
    assert len(token.encode()) <= 64
    assert parse_offer(f" {token} ") == (WATCH_ID, RUPPERT, start)
    for bad in ("", "x", "a.g.c", "a.0.10", f"a.1.{'f' * 30}"):
        with pytest.raises(InvalidOfferError):
            parse_offer(bad)


def test_watch_helpers() -> None:
    assert duration(None) == timedelta(0)
    assert duration({"days": 1, "minutes": 30}) == timedelta(days=1, minutes=30)
    assert clean_contact(None) == {}
    assert clean_contact({"family_name": "  ", "email": None}) == {}
    assert contact_details({}) is None
    with pytest.raises(ContactProblem) as info:
        contact_details({"family_name": FAMILY_NAME, "email": "no-at-sign"})
    assert info.value.error == "invalid_email"
    contact = ContactDetails(family_name=FAMILY_NAME, email=EMAIL)
    # An office without booking settings asks nothing.
    check_contact(contact, [Office(id=1, name="Somewhere")])
    watch = build_watch("w", watch_data(start_date="2026-12-01", end_date="2026-12-31"))
    assert watch.start_date is not None
    assert watch.end_date is not None


def test_labels_and_lengths() -> None:
    catalogue = Catalogue.model_validate(
        {
            "offices": [
                {"id": 1, "name": "With grid", "slotTimeInMinutes": 10},
                {"id": 2, "name": "No grid"},
            ],
            "services": [{"id": 5, "name": "Pass"}],
            "relations": [{"officeId": 1, "serviceId": 5, "slots": 2}],
        }
    )
    watch = build_watch("w", watch_data(services=[{"service_id": 5, "count": 2}]))
    assert appointment_minutes(catalogue, 1, watch) == 40
    assert appointment_minutes(catalogue, 2, watch) is None
    assert appointment_minutes(None, 1, watch) is None
    assert appointment_minutes(catalogue, 1, None) is None
    other = build_watch("w", watch_data(services=[{"service_id": 6, "count": 1}]))
    assert appointment_minutes(catalogue, 1, other) == 10
    assert service_label(catalogue, 5) == "Pass"
    assert service_label(None, 5) == "5"
    assert office_label(catalogue, 9) == "9"


def test_failed_update_is_translated() -> None:
    failure = _update_failed(MTAError("odd"), 60.0)
    assert failure.translation_key == "update_failed"
    assert failure.retry_after == 60.0


async def test_store_errors(hass: HomeAssistant) -> None:
    store = HAStateStore(hass, "entry")
    with (
        patch(
            "homeassistant.helpers.storage.Store.async_load",
            side_effect=ValueError("bad json"),
        ),
        pytest.raises(StoreError),
    ):
        await store.load()
    assert await store.load() == {}


async def test_event_descriptions(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    coordinator = loaded_entry.runtime_data.coordinator
    start = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    failed = BookingEvent(
        state=BookingState.FAILED,
        watch_id=WATCH_ID,
        office_id=RUPPERT,
        start=start,
        reason="MTAInvalidEmailError",
    )
    assert coordinator.describe_event(failed) == (
        "booking_failed",
        {
            "office_id": RUPPERT,
            "office": "Bürgerbüro Ruppertstraße",
            "start": start.isoformat(),
            "reason": "MTAInvalidEmailError",
        },
    )
    retry = BookingEvent(state=BookingState.IDLE, watch_id=WATCH_ID, reason="taken")
    assert coordinator.describe_event(retry)[0] == "booking_failed"
    booked = BookingEvent(state=BookingState.BOOKED, watch_id=WATCH_ID)
    assert coordinator.describe_event(booked) == ("booked", {})
    confirmed = BookingEvent(state=BookingState.CONFIRMED, watch_id=WATCH_ID)
    assert coordinator.describe_event(confirmed)[0] is None


async def test_calendar_without_status(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    component = hass.data["entity_components"]["calendar"]
    calendar = component.get_entity("calendar.wohnsitz_slots")
    loaded_entry.runtime_data.coordinator.data = {}
    assert calendar.event is None


async def test_auto_booking_in_the_background(
    hass: HomeAssistant, server: SimulatorServer
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_BASE_URL: server.base_url},
        subentries_data=[
            ConfigSubentryDataWithId(
                data=watch_data(auto_book=True),
                subentry_id=WATCH_ID,
                subentry_type=SUBENTRY_WATCH,
                title="Wohnsitz",
                unique_id=None,
            )
        ],
    )
    await setup_entry(hass, entry)
    # The booking runs as the entry's background task.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state_of(hass, "sensor.wohnsitz_booking_status").state == "booked"
    event = state_of(hass, "event.wohnsitz_events")
    assert event.attributes["event_type"] == "booked"
    assert event.attributes["activation_deadline"]
    # The next poll carries the same event: it is not shown twice.
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state_of(hass, "event.wohnsitz_events").last_changed == event.last_changed
    assert server.simulator.stats.reservations == 1
