"""Munich Termin: watch the city of Munich's appointment calendar, and book.

One config entry stands for the city's booking service (it owns the request
budget and the coordinator); every watch is a config subentry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import Platform
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from mta_client import DEFAULT_BASE_URL, MTAValidationError

from .alerts import AlertForwarder
from .const import CONF_BASE_URL, DOMAIN, LOGGER
from .coordinator import (
    HAStateStore,
    MunichTerminConfigEntry,
    MunichTerminCoordinator,
    MunichTerminData,
    TimedClient,
)
from .entity import service_device_info
from .services import async_setup_services
from .watches import ContactProblem, build_watch

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.typing import ConfigType

    from mta_client.watch import Watch

__all__ = ["MunichTerminConfigEntry", "MunichTerminData"]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CALENDAR,
    Platform.EVENT,
    Platform.NOTIFY,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:  # noqa: ARG001
    """Register the actions (they work with whatever entry is loaded)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(
    hass: HomeAssistant, entry: MunichTerminConfigEntry
) -> bool:
    """Start the engine for all watches of the entry."""
    client = TimedClient(
        session=async_get_clientsession(hass),
        base_url=entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL,
    )
    watches: dict[str, Watch] = {}
    for subentry_id, subentry in entry.subentries.items():
        try:
            watches[subentry_id] = build_watch(subentry_id, subentry.data)
        except (MTAValidationError, ContactProblem) as err:
            # A watch the flow accepted became invalid (say, its dates passed
            # a check that got stricter): skip it rather than fail the entry.
            LOGGER.warning(
                "Watch %s is not valid and is skipped: %s", subentry.title, err
            )
    coordinator = MunichTerminCoordinator(hass, entry, client, list(watches.values()))
    # The service's own device first: each watch's device is linked to it.
    coordinator.service_device_id = (
        dr.async_get(hass)
        .async_get_or_create(
            config_entry_id=entry.entry_id, **service_device_info(entry)
        )
        .id
    )
    entry.runtime_data = MunichTerminData(
        client=client,
        watcher=coordinator.watcher,
        coordinator=coordinator,
        watches=watches,
    )
    entry.async_on_unload(coordinator.async_shutdown_reminders)
    entry.async_on_unload(coordinator.watcher.aclose)
    # Before the first look, so that its events are announced too.
    alerts = AlertForwarder(hass, entry)
    await alerts.async_start()
    entry.runtime_data.alerts = alerts
    entry.async_on_unload(alerts.async_stop)
    await coordinator.async_config_entry_first_refresh()

    # Any change (options, a watch added, changed or removed) reloads the
    # entry; the engine resumes from its stored state.
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    coordinator.async_entities_ready()
    return True


async def _async_reload(hass: HomeAssistant, entry: MunichTerminConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(
    hass: HomeAssistant, entry: MunichTerminConfigEntry
) -> bool:
    """Stop the engine; a booking in progress is resumed after the reload."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(
    hass: HomeAssistant, entry: MunichTerminConfigEntry
) -> None:
    """Delete the stored engine state (reported slots, booking credentials)."""
    await HAStateStore(hass, entry.entry_id).async_remove()
