"""Setting up, reloading and removing the entry."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import CONF_BASE_URL, DOMAIN, SUBENTRY_WATCH
from custom_components.munich_termin.coordinator import signal_event
from mta_client import MTAConnectionError
from mta_client.simulator import SimulatorServer

from .conftest import EMAIL, setup_entry, state_of, watch_data, watch_id


def entry_state(entry: ConfigEntry) -> ConfigEntryState:
    """``entry.state`` read afresh.

    mypy keeps an asserted ``entry.state`` narrowed across the await that
    unloads the entry, which would make the asserts after it unreachable.
    """
    return entry.state


async def test_setup_and_unload(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    server: SimulatorServer,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    assert entry_state(loaded_entry) is ConfigEntryState.LOADED
    data = loaded_entry.runtime_data
    assert data.alerts is not None
    sid = watch_id(loaded_entry)
    assert list(data.watches) == [sid]
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, sid), loaded_entry.entry_id
    )
    assert device is not None
    assert device.config_subentry_id == sid
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    service = device_registry.async_get_device_by_identifier(
        (DOMAIN, loaded_entry.entry_id), loaded_entry.entry_id
    )
    assert service is not None
    assert service.config_subentry_id is None
    assert device.via_device_id == service.id
    # The first look found the fixed slots and showed them on the event entity.
    assert state_of(hass, "event.wohnsitz_events").attributes["event_type"] == (
        "slot_found"
    )
    assert server.simulator.stats.requests_by_route["available-calendar/"] >= 1

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert state_of(hass, "sensor.wohnsitz_earliest_slot").state == "unavailable"
    requests = sum(server.simulator.stats.requests_by_route.values())
    # Nothing is left running that would keep asking.
    await hass.async_block_till_done()
    assert sum(server.simulator.stats.requests_by_route.values()) == requests


async def test_reload_resumes_without_reporting_again(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    key = f"{DOMAIN}.{loaded_entry.entry_id}"
    await hass.async_block_till_done()
    stored = hass_storage[key]["data"]
    assert stored["watches"][watch_id(loaded_entry)]["reported"]
    fired: list[str] = []
    unsub = async_dispatcher_connect(
        hass,
        signal_event(loaded_entry.entry_id),
        lambda _watch, kind, _attributes: fired.append(kind),
    )
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    unsub()
    assert loaded_entry.state is ConfigEntryState.LOADED
    # The reported slots were kept in Home Assistant's store: nothing is new.
    assert fired == []
    assert state_of(hass, "sensor.wohnsitz_fitting_slots").state != "0"


async def test_remove_deletes_the_state(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    key = f"{DOMAIN}.{loaded_entry.entry_id}"
    await hass.async_block_till_done()
    assert key in hass_storage
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_not_ready_while_the_city_is_away(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    with patch(
        "mta_client.client.MTAClient.get_catalogue",
        side_effect=MTAConnectionError("down"),
    ):
        await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert config_entry.reason == "cannot_connect" or config_entry.reason


async def test_unreadable_state_is_an_error(
    hass: HomeAssistant, config_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    hass_storage[f"{DOMAIN}.{config_entry.entry_id}"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{config_entry.entry_id}",
        "data": {"version": 99, "watches": {}},
    }
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR


async def setup_good_and_bad(
    hass: HomeAssistant, server: SimulatorServer, title: str, **changes: Any
) -> MockConfigEntry:
    """Set up an entry with a good watch and a bad one: only "Good" runs."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_BASE_URL: server.base_url},
        subentries_data=[
            ConfigSubentryData(
                data=watch_data(),
                subentry_type=SUBENTRY_WATCH,
                title="Good",
                unique_id=None,
            ),
            ConfigSubentryData(
                data=watch_data(**changes),
                subentry_type=SUBENTRY_WATCH,
                title=title,
                unique_id=None,
            ),
        ],
    )
    await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    titles = {
        config_entry.subentries[sid].title for sid in config_entry.runtime_data.watches
    }
    assert titles == {"Good"}
    return config_entry


async def test_invalid_watch_is_skipped(
    hass: HomeAssistant, server: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_good_and_bad(hass, server, "Broken", office_ids=[])
    assert "Watch Broken is not valid and is skipped" in caplog.text
    assert hass.states.get("sensor.broken_earliest_slot") is None


async def test_watch_with_an_unknown_urgency_is_skipped(
    hass: HomeAssistant, server: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Not quietly run as normal: the stored value is wrong, and the log says so.
    await setup_good_and_bad(hass, server, "Hurried", urgency="panic")
    assert "Watch Hurried is not valid and is skipped" in caplog.text


async def test_removing_a_watch_removes_its_device(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    sid = watch_id(loaded_entry)
    assert hass.config_entries.async_remove_subentry(loaded_entry, sid)
    await hass.async_block_till_done()
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, sid), loaded_entry.entry_id
        )
        is None
    )
    assert entity_registry.async_get("sensor.wohnsitz_earliest_slot") is None
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data.watches == {}


async def test_watch_whose_contact_no_longer_fits(
    hass: HomeAssistant, server: SimulatorServer
) -> None:
    # Stored before the city began to require an e-mail address (say).
    config_entry = await setup_good_and_bad(
        hass, server, "No e-mail", contact={"family_name": "Huber"}
    )
    issues = [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue.translation_key == "watch_contact_invalid"
    ]
    assert len(issues) == 1
    assert issues[0].translation_placeholders == {
        "watch": "No e-mail",
        "field": "email",
    }
    assert hass.states.get("sensor.good_earliest_slot") is not None

    # Fixed (an e-mail address added): the watch runs again, the notice goes.
    broken = next(
        sub for sub in config_entry.subentries.values() if sub.title == "No e-mail"
    )
    hass.config_entries.async_update_subentry(
        config_entry,
        broken,
        data=watch_data(contact={"family_name": "Huber", "email": EMAIL}),
    )
    await hass.async_block_till_done()
    assert len(config_entry.runtime_data.watches) == 2
    assert not [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue.translation_key == "watch_contact_invalid"
    ]
