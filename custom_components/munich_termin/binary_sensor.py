"""Binary sensors: a fitting slot is free; the city's API answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass

from .entity import ServiceEntity, WatchEntity, add_watch_entities

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
    """Add the connectivity sensor and every watch's "slot available"."""
    async_add_entities(
        [ApiReachableSensor(entry.runtime_data.coordinator, "api_reachable")]
    )
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: [
            SlotAvailableSensor(coordinator, subentry, "slot_available")
        ],
    )


class SlotAvailableSensor(WatchEntity, BinarySensorEntity):
    """On while at least one fitting slot is free."""

    @property
    def is_on(self) -> bool | None:
        """Whether a fitting slot is free."""
        status = self.status
        return None if status is None else bool(status.slots)


class ApiReachableSensor(ServiceEntity, BinarySensorEntity):
    """Whether the city's API answers; stays available when it does not."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY

    @property
    def available(self) -> bool:
        """Always: being unreachable is what this sensor shows."""
        return True

    @property
    def is_on(self) -> bool | None:
        """Whether the last look reached the city's API."""
        return self.coordinator.reachable
