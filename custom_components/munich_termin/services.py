"""Actions: book, cancel and confirm a watch's appointment; find free slots."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
from homeassistant.util import dt as dt_util

if TYPE_CHECKING:
    # Home Assistant runs voluptuous as probatio (its compatible successor,
    # installed under the old name); this gives type checkers its types.
    import probatio as vol
else:
    import voluptuous as vol

from mta_client import MTAError, Slot

from .const import (
    ATTR_OFFER,
    ATTR_OFFICE,
    ATTR_OFFICE_ID,
    ATTR_START,
    ATTR_WATCH,
    CONF_END_DATE,
    CONF_OFFICE_IDS,
    CONF_SERVICES,
    CONF_START_DATE,
    DOMAIN,
)
from .errors import translate_error
from .offers import InvalidOfferError, parse_offer
from .watches import office_label, service_label

if TYPE_CHECKING:
    from mta_client.watch import BookingEvent

    from .coordinator import MunichTerminConfigEntry

SERVICE_BOOK = "book"
SERVICE_CANCEL = "cancel"
SERVICE_CONFIRM = "confirm"
SERVICE_FIND_SLOTS = "find_slots"
ATTR_LINK = "link"
FIND_DEFAULT_DAYS = 182

_TARGET = {
    vol.Optional(ATTR_DEVICE_ID): cv.string,
    vol.Optional(ATTR_WATCH): cv.string,
}
BOOK_SCHEMA = vol.Schema(
    {
        **_TARGET,
        vol.Optional(ATTR_OFFER): cv.string,
        vol.Optional(ATTR_OFFICE_ID): vol.Coerce(int),
        vol.Optional(ATTR_START): cv.datetime,
    }
)
CANCEL_SCHEMA = vol.Schema(_TARGET)
CONFIRM_SCHEMA = vol.Schema({vol.Required(ATTR_LINK): cv.string})
FIND_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERVICES): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(CONF_OFFICE_IDS): vol.All(cv.ensure_list, [vol.Coerce(int)]),
        vol.Optional(CONF_START_DATE): cv.date,
        vol.Optional(CONF_END_DATE): cv.date,
    }
)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def _entry(hass: HomeAssistant) -> MunichTerminConfigEntry:
    """The loaded entry (the integration allows one)."""
    return cast(
        "MunichTerminConfigEntry", service.async_get_config_entry(hass, DOMAIN, None)
    )


def _target(
    hass: HomeAssistant, data: dict[str, Any]
) -> tuple[MunichTerminConfigEntry, str]:
    """The entry and watch id an action names (by device or watch id)."""
    device_id = data.get(ATTR_DEVICE_ID)
    watch_id = data.get(ATTR_WATCH)
    if (device_id is None) == (watch_id is None):
        raise _invalid("target_required")
    if device_id is not None:
        device, found = service.async_get_device_and_config_entry(
            hass, DOMAIN, device_id
        )
        entry = cast("MunichTerminConfigEntry", found)
        if device.config_subentry_id is None:
            raise _invalid("not_a_watch")
        watch_id = device.config_subentry_id
    else:
        entry = _entry(hass)
    assert watch_id is not None  # noqa: S101 - one of the two is given
    if watch_id not in entry.runtime_data.watches:
        raise _invalid("unknown_watch", watch=watch_id)
    return entry, watch_id


def booking_response(
    entry: MunichTerminConfigEntry, watch_id: str, event: BookingEvent
) -> dict[str, Any]:
    """What an action returns about a booking (never its auth key)."""
    catalogue = entry.runtime_data.coordinator.catalogue
    return {
        ATTR_WATCH: watch_id,
        "state": str(event.state),
        ATTR_OFFICE_ID: event.office_id,
        ATTR_OFFICE: office_label(catalogue, event.office_id)
        if event.office_id is not None
        else None,
        ATTR_START: event.start.isoformat() if event.start else None,
        "process_id": event.process_id,
        "activation_deadline": event.activation_deadline.isoformat()
        if event.activation_deadline
        else None,
        "reason": event.reason,
    }


@callback
def _refresh(entry: MunichTerminConfigEntry) -> None:
    """Show what an action changed at once, without moving the next look."""
    coordinator = entry.runtime_data.coordinator
    coordinator.data = {
        **(coordinator.data or {}),
        **entry.runtime_data.watcher.statuses(),
    }
    coordinator.async_update_listeners()


async def async_book(
    entry: MunichTerminConfigEntry, watch_id: str, slot: Slot | None = None
) -> BookingEvent:
    """Book for a watch; the library's errors become translated errors."""
    # Without a slot the engine tries the known fitting ones, earliest first,
    # and looks first when it knows none.
    try:
        event = await entry.runtime_data.watcher.book(watch_id, slot=slot)
    except MTAError as err:
        raise translate_error(err) from err
    finally:
        _refresh(entry)
    if str(event.state) not in ("booked", "confirmed"):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="booking_failed",
            translation_placeholders={"reason": event.reason or str(event.state)},
        )
    return event


async def _book(call: ServiceCall) -> ServiceResponse:
    slot: Slot | None = None
    data = dict(call.data)
    if (offer := data.pop(ATTR_OFFER, None)) is not None:
        if ATTR_DEVICE_ID in data or ATTR_WATCH in data or ATTR_START in data:
            raise _invalid("offer_alone")
        try:
            watch_id, office_id, start = parse_offer(offer)
        except InvalidOfferError:
            raise _invalid("invalid_offer") from None
        data[ATTR_WATCH] = watch_id
        slot = Slot(office_id=office_id, start=start)
    elif ATTR_START in data or ATTR_OFFICE_ID in data:
        if ATTR_START not in data or ATTR_OFFICE_ID not in data:
            raise _invalid("slot_incomplete")
        start = dt_util.as_utc(
            data[ATTR_START]
            if data[ATTR_START].tzinfo
            else data[ATTR_START].replace(tzinfo=dt_util.get_default_time_zone())
        )
        slot = Slot(office_id=data[ATTR_OFFICE_ID], start=start)
    entry, watch_id = _target(call.hass, data)
    event = await async_book(entry, watch_id, slot)
    return (
        {"booking": booking_response(entry, watch_id, event)}
        if call.return_response
        else None
    )


async def _cancel(call: ServiceCall) -> ServiceResponse:
    entry, watch_id = _target(call.hass, dict(call.data))
    try:
        event = await entry.runtime_data.watcher.cancel(watch_id)
    except MTAError as err:
        raise translate_error(err) from err
    finally:
        _refresh(entry)
    return (
        {"booking": booking_response(entry, watch_id, event)}
        if call.return_response
        else None
    )


async def _confirm(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass)
    try:
        event = await entry.runtime_data.watcher.confirm(call.data[ATTR_LINK])
    except KeyError:
        raise _invalid("unknown_appointment") from None
    except MTAError as err:
        raise translate_error(err) from err
    finally:
        _refresh(entry)
    return (
        {"booking": booking_response(entry, event.watch_id, event)}
        if call.return_response
        else None
    )


def _service_arg(text: str) -> tuple[int, int]:
    """``"1063475"`` or ``"1063475:2"`` as (id, count)."""
    ident, _, count = text.partition(":")
    try:
        return int(ident), int(count or 1)
    except ValueError:
        raise _invalid("invalid_service", service=text) from None


async def _find_slots(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass)
    client = entry.runtime_data.client
    try:
        catalogue = await client.get_catalogue()
    except MTAError as err:
        raise translate_error(err) from err
    services = dict(_service_arg(text) for text in call.data[CONF_SERVICES])
    for service_id in services:
        if catalogue.service(service_id) is None:
            raise _invalid("invalid_service", service=str(service_id))
    offering = {o.id for o in catalogue.offices_offering(services)}
    offices = call.data.get(CONF_OFFICE_IDS) or sorted(offering)
    if not offices or not set(offices) <= offering:
        raise _invalid("no_office_offers")
    today = dt_util.now().date()
    start: date = call.data.get(CONF_START_DATE) or today
    end: date = call.data.get(CONF_END_DATE) or start + timedelta(
        days=FIND_DEFAULT_DAYS
    )
    try:
        calendar = await client.get_available_calendar(
            office_ids=offices, services=services, start_date=start, end_date=end
        )
    except MTAError as err:
        raise translate_error(err) from err
    return {
        CONF_SERVICES: [
            {"service_id": s, "name": service_label(catalogue, s), "count": c}
            for s, c in services.items()
        ],
        "bookable_days": [day.isoformat() for day in calendar.bookable_dates],
        "slots": [
            {
                ATTR_OFFICE_ID: slot.office_id,
                ATTR_OFFICE: office_label(catalogue, slot.office_id),
                ATTR_START: slot.start.isoformat(),
            }
            for slot in calendar.slots
        ],
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_BOOK,
        _book,
        schema=BOOK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL,
        _cancel,
        schema=CANCEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CONFIRM,
        _confirm,
        schema=CONFIRM_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_FIND_SLOTS,
        _find_slots,
        schema=FIND_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
