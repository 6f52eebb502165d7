"""The "Munich Termin alerts" notify entity: send through the entry's alert targets.

Anything sent to it (from an automation, a script or the UI) goes where the
integration's own alerts go: the chosen notify entities and/or the Telegram
bot of the options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.notify import NotifyEntity
from homeassistant.components.notify.const import NotifyEntityFeature
from homeassistant.exceptions import HomeAssistantError

from .alerts import notify_unique_id
from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import MunichTerminConfigEntry

# Sending waits for the targets; one message at a time keeps them in order.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the entry's one notify entity."""
    async_add_entities([MunichTerminNotifyEntity(entry)])


class MunichTerminNotifyEntity(NotifyEntity):
    """Sends a message through the entry's alert forwarder."""

    _attr_has_entity_name = True
    _attr_translation_key = "alerts"
    _attr_supported_features = NotifyEntityFeature.TITLE

    def __init__(self, entry: MunichTerminConfigEntry) -> None:
        """One per entry.

        It stands on no device: under the service device ("Munich Termin")
        its name would read "Munich Termin Munich Termin alerts".
        """
        self.entry = entry
        self._attr_unique_id = notify_unique_id(entry.entry_id)

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Forward the message (errors are translated)."""
        forwarder = self.entry.runtime_data.alerts
        if forwarder is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="alerts_not_configured"
            )
        await forwarder.async_send(message, title)
