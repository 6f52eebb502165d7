"""Diagnostics: the watches' filters and statuses, never the person's data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data

from .const import (
    CONF_CONTACT,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    CONTACT_FIELDS,
)
from .watches import urgency_of

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from mta_client.watcher import WatchStatus

    from .coordinator import MunichTerminConfigEntry

TO_REDACT = {
    *CONTACT_FIELDS,
    CONF_CONTACT,
    CONF_TELEGRAM_TOKEN,
    CONF_TELEGRAM_CHAT_ID,
    "auth_key",
    "authKey",
    "captcha_token",
    "captchaToken",
    "process_id",
}


def _status(status: WatchStatus) -> dict[str, Any]:
    booking = status.booking
    return {
        "slots": [
            {"office_id": s.office_id, "start": s.start.isoformat()}
            for s in status.slots
        ],
        "last_checked": status.last_checked.isoformat()
        if status.last_checked
        else None,
        "booking": {
            "state": str(booking.state),
            "office_id": booking.office_id,
            "start": booking.start.isoformat() if booking.start else None,
            "activation_deadline": booking.activation_deadline.isoformat()
            if booking.activation_deadline
            else None,
            "reason": booking.reason,
            "has_process": booking.process_id is not None,
        },
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
) -> dict[str, Any]:
    """The entry, its watches (filters kept), the engine and the budget."""
    data = entry.runtime_data
    coordinator = data.coordinator
    budget = data.client.budget
    return {
        "entry": {
            "data": dict(entry.data),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "watches": {
            subentry_id: {
                "title": subentry.title,
                "running": subentry_id in data.watches,
                "data": async_redact_data(dict(subentry.data), TO_REDACT),
                "has_contact": bool(subentry.data.get(CONF_CONTACT)),
                # What the engine runs: normal for a watch stored without one.
                "urgency": urgency_of(subentry.data),
            }
            for subentry_id, subentry in entry.subentries.items()
        },
        "statuses": {
            watch_id: _status(status)
            for watch_id, status in (coordinator.data or {}).items()
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "update_interval": coordinator.update_interval.total_seconds()
            if coordinator.update_interval
            else None,
            "failed_watches": sorted(coordinator.failed),
            "reachable": coordinator.reachable,
            "last_errors": [
                {
                    "what": p.what,
                    "error": type(p.error).__name__,
                    "retry_after": p.retry_after,
                }
                for p in coordinator.last_errors
            ],
            "requests_last_hour": coordinator.requests_last_hour,
        },
        "budget": {
            "limit": budget.limit,
            "remaining": budget.remaining(),
            "sent": budget.sent,
            "rate_limited": budget.rate_limited,
        },
        "alerts": data.alerts is not None,
    }
