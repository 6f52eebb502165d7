"""The entities of a watch and of the service: snapshots and behaviour."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.calendar.const import DOMAIN as CALENDAR_DOMAIN
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.munich_termin.const import SUBENTRY_WATCH
from mta_client import MTAClient
from mta_client.simulator import SimulatorServer

from .conftest import response_of, setup_entry, state_of, watch_data, watch_id


@pytest.fixture(autouse=True)
async def _berlin(hass: HomeAssistant) -> None:
    await hass.config.async_set_time_zone("Europe/Berlin")


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.CALENDAR,
        Platform.EVENT,
        Platform.SENSOR,
        Platform.SWITCH,
    ],
)
async def test_entities(  # noqa: PLR0917 - fixtures
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    # The captcha's solve time is real computing time: make it a fixed one.
    with (
        patch.object(
            MTAClient,
            "last_captcha_seconds",
            new_callable=PropertyMock,
            return_value=0.25,
        ),
        patch("custom_components.munich_termin.PLATFORMS", [platform]),
    ):
        await setup_entry(hass, config_entry)
    await snapshot_platform(hass, entity_registry, snapshot, config_entry.entry_id)


async def test_noisy_diagnostics_are_disabled(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    for name in (
        "requests_in_the_last_hour",
        "request_budget_left",
        "captcha_solve_time",
    ):
        entry = entity_registry.async_get(f"sensor.munich_termin_{name}")
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert state_of(hass, "sensor.munich_termin_last_successful_check").state != (
        "unknown"
    )


async def test_calendar_events(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, loaded_entry: MockConfigEntry
) -> None:
    start = dt_util.now()
    response = await hass.services.async_call(
        CALENDAR_DOMAIN,
        "get_events",
        {"start_date_time": start, "end_date_time": start + timedelta(days=7)},
        target={"entity_id": "calendar.wohnsitz_slots"},
        blocking=True,
        return_response=True,
    )
    events = response_of(response)["calendar.wohnsitz_slots"]["events"]
    assert events
    first = events[0]
    assert first["summary"] == "Free slot: Bürgerbüro Ruppertstraße"
    assert first["start"] == "2026-11-24T09:00:00+01:00"
    # Wohnsitzanmeldung takes three of the office's five-minute slots.
    assert first["end"] == "2026-11-24T09:15:00+01:00"
    assert first["location"] == "Bürgerbüro Ruppertstraße"
    none = await hass.services.async_call(
        CALENDAR_DOMAIN,
        "get_events",
        {
            "start_date_time": start - timedelta(days=7),
            "end_date_time": start - timedelta(days=6),
        },
        target={"entity_id": "calendar.wohnsitz_slots"},
        blocking=True,
        return_response=True,
    )
    assert response_of(none)["calendar.wohnsitz_slots"]["events"] == []


async def test_calendar_in_german(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, config_entry: MockConfigEntry
) -> None:
    hass.config.language = "de"
    await setup_entry(hass, config_entry)
    (state,) = hass.states.async_all(CALENDAR_DOMAIN)
    assert state.entity_id == "calendar.wohnsitz_termine"
    assert state.attributes["message"] == "Freier Termin: Bürgerbüro Ruppertstraße"


async def test_switch_needs_the_persons_data(
    hass: HomeAssistant, server: SimulatorServer
) -> None:
    entry = MockConfigEntry(
        domain="munich_termin",
        data={"base_url": server.base_url},
        subentries_data=[
            ConfigSubentryData(
                data=watch_data(contact={}),
                subentry_type=SUBENTRY_WATCH,
                title="Anonymous",
                unique_id=None,
            )
        ],
    )
    await setup_entry(hass, entry)
    assert state_of(hass, "switch.anonymous_auto_booking").state == "unavailable"


async def test_switch_turns_auto_booking_on_and_off(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    sid = watch_id(loaded_entry)
    assert state_of(hass, "switch.wohnsitz_auto_booking").state == "off"
    await hass.services.async_call(
        "switch",
        "turn_on",
        target={"entity_id": "switch.wohnsitz_auto_booking"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert loaded_entry.subentries[sid].data["auto_book"] is True
    # Reloaded with auto-booking: the engine booked the earliest fitting slot.
    watch = loaded_entry.runtime_data.watches[sid]
    assert watch.auto_book is True
    assert state_of(hass, "switch.wohnsitz_auto_booking").state == "on"
    await hass.services.async_call(
        "switch",
        "turn_off",
        target={"entity_id": "switch.wohnsitz_auto_booking"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert loaded_entry.subentries[sid].data["auto_book"] is False
    assert state_of(hass, "switch.wohnsitz_auto_booking").state == "off"
