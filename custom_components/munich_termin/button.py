"""The "book earliest" button of a watch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.button import ButtonEntity

from .entity import WatchEntity, add_watch_entities
from .services import async_book

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import MunichTerminConfigEntry

# A booking holds a slot: one at a time.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add every watch's button."""
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: [
            BookEarliestButton(coordinator, subentry, "book_earliest")
        ],
    )


class BookEarliestButton(WatchEntity, ButtonEntity):
    """Books the earliest fitting slot now, with the watch's person's data."""

    async def async_press(self) -> None:
        """Book (errors are translated and say what to do)."""
        await async_book(self.coordinator.config_entry, self.watch_id)
