"""The auto-booking switch of a watch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory

from .const import CONF_AUTO_BOOK
from .entity import WatchEntity, add_watch_entities
from .watches import has_contact

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import MunichTerminConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add every watch's switch."""
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: [
            AutoBookSwitch(coordinator, subentry, "auto_book")
        ],
    )


class AutoBookSwitch(WatchEntity, SwitchEntity):
    """Whether the watch books the first fitting slot by itself.

    Stored in the watch's subentry, so the change survives restarts; the
    entry reloads and the engine resumes from its stored state.
    """

    _attr_entity_category = EntityCategory.CONFIG

    @property
    def available(self) -> bool:
        """Only a watch with the person's data can book."""
        return super().available and has_contact(self.subentry.data)

    @property
    def is_on(self) -> bool:
        """Whether auto-booking is on."""
        return bool(self.subentry.data.get(CONF_AUTO_BOOK))

    async def async_turn_on(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Book the first fitting slot from now on."""
        self._set(on=True)

    async def async_turn_off(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Only report fitting slots."""
        self._set(on=False)

    def _set(self, *, on: bool) -> None:
        entry = self.coordinator.config_entry
        self.hass.config_entries.async_update_subentry(
            entry, self.subentry, data={**self.subentry.data, CONF_AUTO_BOOK: on}
        )
