"""Constants of the Munich Termin integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "munich_termin"
LOGGER = logging.getLogger(__package__)

SUBENTRY_WATCH: Final = "watch"

# --- the entry (config flow) -------------------------------------------------
CONF_BASE_URL: Final = "base_url"
SECTION_ADVANCED: Final = "advanced"

# --- options of the entry (options flow), used by the alert forwarder ---------
CONF_NOTIFY_ENTITIES: Final = "notify_entities"
CONF_TELEGRAM_TOKEN: Final = "telegram_token"  # noqa: S105
CONF_TELEGRAM_CHAT_ID: Final = "telegram_chat_id"
CONF_TELEGRAM_API_URL: Final = "telegram_api_url"
CONF_ALERT_NEW: Final = "alert_new"
CONF_ALERT_GONE: Final = "alert_gone"
CONF_ALERT_BOOKING: Final = "alert_booking"
SECTION_TELEGRAM: Final = "telegram"

# --- a watch (config subentry) -------------------------------------------------
CONF_NAME: Final = "name"
CONF_SERVICES: Final = "services"
CONF_SERVICE_ID: Final = "service_id"
CONF_COUNT: Final = "count"
CONF_OFFICE_IDS: Final = "office_ids"
CONF_WITHIN_DAYS: Final = "within_days"
CONF_START_DATE: Final = "start_date"
CONF_END_DATE: Final = "end_date"
CONF_WEEKDAYS: Final = "weekdays"
CONF_TIME_RANGES: Final = "time_ranges"
CONF_MIN_LEAD: Final = "min_lead"
CONF_AUTO_BOOK: Final = "auto_book"
CONF_CONTACT: Final = "contact"
CONF_FAMILY_NAME: Final = "family_name"
CONF_EMAIL: Final = "email"
CONF_TELEPHONE: Final = "telephone"
CONF_CUSTOM_TEXTFIELD: Final = "custom_textfield"
CONF_CUSTOM_TEXTFIELD2: Final = "custom_textfield2"
CONTACT_FIELDS: Final = (
    CONF_FAMILY_NAME,
    CONF_EMAIL,
    CONF_TELEPHONE,
    CONF_CUSTOM_TEXTFIELD,
    CONF_CUSTOM_TEXTFIELD2,
)

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WITHIN_DAYS: Final = 28

# --- events -------------------------------------------------------------------
EVENT_SLOT_FOUND: Final = "slot_found"
EVENT_SLOT_GONE: Final = "slot_gone"
EVENT_BOOKED: Final = "booked"
EVENT_BOOKING_FAILED: Final = "booking_failed"
EVENT_ACTIVATION_DUE: Final = "activation_due"
EVENT_ACTIVATION_LAPSED: Final = "activation_lapsed"
EVENT_TYPES: Final = (
    EVENT_SLOT_FOUND,
    EVENT_SLOT_GONE,
    EVENT_BOOKED,
    EVENT_BOOKING_FAILED,
    EVENT_ACTIVATION_DUE,
    EVENT_ACTIVATION_LAPSED,
)
# The activation reminder comes this long before the city's deadline.
ACTIVATION_REMINDER_SECONDS: Final = 600

# Booking states shown by the booking status sensor (the library's, plus the
# ones the engine reports after confirming or cancelling).
BOOKING_STATES: Final = (
    "idle",
    "reserving",
    "reserved",
    "preconfirming",
    "booked",
    "confirmed",
    "lapsed",
    "cancelled",
    "failed",
)

# A maintenance answer lasting longer than this becomes a repair issue.
MAINTENANCE_ISSUE_AFTER: Final = 3600.0
# The coordinator never polls faster than this, whatever the engine says.
MIN_POLL_DELAY: Final = 1.0

ATTR_OFFER: Final = "offer"
ATTR_OFFICE_ID: Final = "office_id"
ATTR_OFFICE: Final = "office"
ATTR_START: Final = "start"
ATTR_WATCH: Final = "watch"
