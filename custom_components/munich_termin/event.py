"""The event entity of a watch: slots found and gone, bookings, reminders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.event import EventEntity
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import EVENT_TYPES
from .coordinator import signal_event
from .entity import WatchEntity, add_watch_entities

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import MunichTerminConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add every watch's event entity."""
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: [
            WatchEventEntity(coordinator, subentry, "events")
        ],
    )


class WatchEventEntity(WatchEntity, EventEntity):
    """Fires when a fitting slot appears or goes, and on booking steps."""

    _attr_event_types = list(EVENT_TYPES)  # noqa: RUF012 - Home Assistant's type
    _unrecorded_attributes = frozenset({"offer"})

    async def async_added_to_hass(self) -> None:
        """Listen to the coordinator's events for this watch."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_event(self.coordinator.config_entry.entry_id),
                self._on_event,
            )
        )

    @callback
    def _on_event(self, watch_id: str, kind: str, attributes: dict[str, Any]) -> None:
        if watch_id != self.watch_id:
            return
        self._trigger_event(kind, attributes)
        self.async_write_ha_state()
