"""System health: can the city's server be reached, the budget, the last look."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components import system_health
from homeassistant.core import HomeAssistant, callback

from mta_client import DEFAULT_BASE_URL

from .const import CONF_BASE_URL, DOMAIN

if TYPE_CHECKING:
    from .coordinator import MunichTerminConfigEntry


@callback
def async_register(
    hass: HomeAssistant,  # noqa: ARG001
    register: system_health.SystemHealthRegistration,
) -> None:
    """Register the info callback."""
    register.async_register_info(system_health_info)


async def system_health_info(hass: HomeAssistant) -> dict[str, Any]:
    """What the system health page shows."""
    entries: list[MunichTerminConfigEntry] = hass.config_entries.async_loaded_entries(
        DOMAIN
    )
    if not entries:
        return {"loaded": False}
    entry = entries[0]
    data = entry.runtime_data
    base_url = entry.data.get(CONF_BASE_URL) or DEFAULT_BASE_URL
    last = data.coordinator.last_success
    return {
        "loaded": True,
        "server_reachable": system_health.async_check_can_reach_url(
            hass, f"{base_url.rstrip('/')}/offices-and-services/"
        ),
        "budget_left": data.client.budget.remaining(),
        "requests_last_hour": data.coordinator.requests_last_hour,
        "watches": len(data.watches),
        "last_check": last.isoformat() if last else "-",
    }
