"""Sensors: the earliest fitting slot, their number, the booking, diagnostics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import UnitOfTime

from .const import ATTR_OFFER, ATTR_OFFICE, ATTR_OFFICE_ID, BOOKING_STATES
from .entity import ServiceEntity, WatchEntity, add_watch_entities
from .offers import offer_token
from .watches import office_label

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.config_entries import ConfigSubentry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from mta_client.watcher import WatchStatus

    from .coordinator import MunichTerminConfigEntry, MunichTerminCoordinator

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class WatchSensorDescription(SensorEntityDescription):
    """A sensor of a watch, read from its status."""

    value: Callable[[WatchStatus], StateType | datetime]


@dataclass(frozen=True, kw_only=True)
class ServiceSensorDescription(SensorEntityDescription):
    """A diagnostic sensor of the service, read from the coordinator."""

    value: Callable[[MunichTerminCoordinator], StateType | datetime]


def _earliest(status: WatchStatus) -> datetime | None:
    return status.slots[0].start if status.slots else None


WATCH_SENSORS = (
    WatchSensorDescription(
        key="earliest_slot",
        translation_key="earliest_slot",
        device_class=SensorDeviceClass.TIMESTAMP,
        value=_earliest,
    ),
    WatchSensorDescription(
        key="fitting_slots",
        translation_key="fitting_slots",
        state_class=SensorStateClass.MEASUREMENT,
        value=lambda status: len(status.slots),
    ),
    WatchSensorDescription(
        key="booking_status",
        translation_key="booking_status",
        device_class=SensorDeviceClass.ENUM,
        options=list(BOOKING_STATES),
        value=lambda status: str(status.booking.state),
    ),
    WatchSensorDescription(
        key="activation_deadline",
        translation_key="activation_deadline",
        device_class=SensorDeviceClass.TIMESTAMP,
        value=lambda status: status.booking.activation_deadline,
    ),
)

SERVICE_SENSORS = (
    ServiceSensorDescription(
        key="last_check",
        translation_key="last_check",
        device_class=SensorDeviceClass.TIMESTAMP,
        value=lambda coordinator: coordinator.last_success,
    ),
    ServiceSensorDescription(
        key="requests_last_hour",
        translation_key="requests_last_hour",
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value=lambda coordinator: coordinator.requests_last_hour,
    ),
    ServiceSensorDescription(
        key="budget_left",
        translation_key="budget_left",
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value=lambda coordinator: coordinator.client.budget.remaining(),
    ),
    ServiceSensorDescription(
        key="captcha_solve_time",
        translation_key="captcha_solve_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_registry_enabled_default=False,
        value=lambda coordinator: getattr(
            coordinator.client, "last_captcha_seconds", None
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of the service and of every watch."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        ServiceSensor(coordinator, description) for description in SERVICE_SENSORS
    )
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: (
            WatchSensor(coordinator, subentry, description)
            for description in WATCH_SENSORS
        ),
    )


class WatchSensor(WatchEntity, SensorEntity):
    """A sensor of one watch."""

    entity_description: WatchSensorDescription
    _unrecorded_attributes = frozenset({ATTR_OFFER, "slots"})

    def __init__(
        self,
        coordinator: MunichTerminCoordinator,
        subentry: ConfigSubentry,
        description: WatchSensorDescription,
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, subentry, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the watch's status."""
        status = self.status
        return None if status is None else self.entity_description.value(status)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Where the earliest slot is, and its offer for ``munich_termin.book``."""
        status = self.status
        key = self.entity_description.key
        if status is None or not status.slots:
            return None
        catalogue = self.coordinator.catalogue
        if key == "earliest_slot":
            slot = status.slots[0]
            return {
                ATTR_OFFICE_ID: slot.office_id,
                ATTR_OFFICE: office_label(catalogue, slot.office_id),
                ATTR_OFFER: offer_token(self.watch_id, slot.office_id, slot.start),
            }
        if key == "fitting_slots":
            return {
                "slots": [
                    {
                        "start": slot.start.isoformat(),
                        ATTR_OFFICE_ID: slot.office_id,
                        ATTR_OFFICE: office_label(catalogue, slot.office_id),
                        ATTR_OFFER: offer_token(
                            self.watch_id, slot.office_id, slot.start
                        ),
                    }
                    for slot in status.slots[:10]
                ]
            }
        return None


class ServiceSensor(ServiceEntity, SensorEntity):
    """A diagnostic sensor of the booking service."""

    entity_description: ServiceSensorDescription

    def __init__(
        self,
        coordinator: MunichTerminCoordinator,
        description: ServiceSensorDescription,
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the coordinator."""
        return self.entity_description.value(self.coordinator)
