"""Base entities: one device per watch, and one for the service itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import EntityCategory
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, SUBENTRY_WATCH
from .coordinator import MunichTerminConfigEntry, MunichTerminCoordinator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from homeassistant.config_entries import ConfigSubentry
    from homeassistant.helpers.entity import Entity
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from mta_client.watch import Watch
    from mta_client.watcher import WatchStatus

MANUFACTURER = "Landeshauptstadt München"
BOOKING_PAGE = "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"


def _device_info(identifier: str, name: str, model: str) -> DeviceInfo:
    return DeviceInfo(
        identifiers={(DOMAIN, identifier)},
        name=name,
        entry_type=DeviceEntryType.SERVICE,
        manufacturer=MANUFACTURER,
        model=model,
        configuration_url=BOOKING_PAGE,
    )


def service_device_info(entry: MunichTerminConfigEntry) -> DeviceInfo:
    """The device of the booking service itself (each watch's links to it)."""
    return _device_info(entry.entry_id, entry.title, "Citizen appointment API")


class MunichTerminEntity(CoordinatorEntity[MunichTerminCoordinator]):
    """An entity of the integration."""

    _attr_has_entity_name = True


class WatchEntity(MunichTerminEntity):
    """An entity of one watch (a subentry, a device)."""

    def __init__(
        self,
        coordinator: MunichTerminCoordinator,
        subentry: ConfigSubentry,
        key: str,
    ) -> None:
        """Attach the entity to the watch's device."""
        super().__init__(coordinator)
        self.subentry = subentry
        self.watch_id = subentry.subentry_id
        self._attr_translation_key = key
        self._attr_unique_id = f"{subentry.subentry_id}_{key}"
        self._attr_device_info = _device_info(
            subentry.subentry_id, subentry.title, "Watch"
        )
        if coordinator.service_device_id is not None:
            # Shown "connected via" the booking service's device.
            self._attr_device_info["via_device_id"] = coordinator.service_device_id

    @property
    def available(self) -> bool:
        """Unavailable while the watch's last look failed."""
        return (
            super().available
            and self.watch_id in (self.coordinator.data or {})
            and self.watch_id not in self.coordinator.failed
        )

    @property
    def status(self) -> WatchStatus | None:
        """The watch's status from the last look."""
        return (self.coordinator.data or {}).get(self.watch_id)

    @property
    def watch(self) -> Watch | None:
        """The library's watch."""
        return self.coordinator.config_entry.runtime_data.watches.get(self.watch_id)


class ServiceEntity(MunichTerminEntity):
    """A diagnostic entity of the booking service itself."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: MunichTerminCoordinator, key: str) -> None:
        """Attach the entity to the service device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self._attr_translation_key = key
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = service_device_info(entry)


def add_watch_entities(
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: Callable[[MunichTerminCoordinator, ConfigSubentry], Iterable[Entity]],
) -> None:
    """Add a watch's entities to its subentry, for every running watch."""
    data = entry.runtime_data
    for subentry_id, subentry in entry.subentries.items():
        if subentry.subentry_type == SUBENTRY_WATCH and subentry_id in data.watches:
            async_add_entities(
                list(factory(data.coordinator, subentry)),
                config_subentry_id=subentry_id,
            )
