"""The library's errors as translated Home Assistant errors, saying what to do."""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from mta_client import (
    MTAAppointmentStateError,
    MTABlockedError,
    MTABudgetExceededError,
    MTACaptchaError,
    MTAConnectionError,
    MTAError,
    MTAInvalidInputError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTANotFoundError,
    MTAQuotaError,
    MTARateLimitError,
    MTASlotUnavailableError,
    MTAValidationError,
)
from mta_client.booking import BookingConflictError, NoFittingSlotError
from mta_client.exceptions import MTANoSlotsError, MTAProtocolError

from .const import DOMAIN

# Most specific first: several of these derive from one another.
_KEYS: tuple[tuple[type[MTAError], str], ...] = (
    (BookingConflictError, "booking_conflict"),
    (NoFittingSlotError, "no_slot"),
    (MTANoSlotsError, "no_slot"),
    (MTAProtocolError, "invalid_response"),
    (MTASlotUnavailableError, "slot_taken"),
    (MTABlockedError, "blocked"),
    (MTAMaintenanceError, "maintenance"),
    (MTARateLimitError, "rate_limited"),
    (MTABudgetExceededError, "rate_limited"),
    (MTACaptchaError, "captcha_failed"),
    (MTAQuotaError, "quota_reached"),
    (MTAAppointmentStateError, "appointment_state"),
    (MTANotFoundError, "appointment_state"),
    (MTAInvalidInputError, "city_refused_input"),
    (MTAConnectionError, "cannot_connect"),
    (MTAInvalidResponseError, "invalid_response"),
)


def translate_error(err: MTAError) -> HomeAssistantError:
    """The error to raise from an action for a failure of the library."""
    if isinstance(err, MTAValidationError):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_input",
            translation_placeholders={"field": err.field},
        )
    if isinstance(err, BookingConflictError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="booking_conflict",
            translation_placeholders={"state": str(err.state)},
        )
    key = next((k for cls, k in _KEYS if isinstance(err, cls)), "city_error")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"error": type(err).__name__},
    )
