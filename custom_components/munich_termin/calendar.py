"""The calendar of a watch: free fitting slots (tentative) and the booking."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from homeassistant.components.calendar import CalendarEntity, CalendarEvent
from homeassistant.components.calendar.const import CalendarEventStatus
from homeassistant.util import dt as dt_util

from .entity import WatchEntity, add_watch_entities
from .offers import offer_token
from .watches import appointment_minutes, office_label

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import MunichTerminConfigEntry

PARALLEL_UPDATES = 0
DEFAULT_SLOT_MINUTES = 15
_TEXT = {
    "en": ("Free slot: {office}", "Appointment: {office}", "Offer: {offer}"),
    "de": ("Freier Termin: {office}", "Termin: {office}", "Angebot: {offer}"),
}


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: MunichTerminConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add every watch's calendar."""
    add_watch_entities(
        entry,
        async_add_entities,
        lambda coordinator, subentry: [WatchCalendar(coordinator, subentry, "slots")],
    )


class WatchCalendar(WatchEntity, CalendarEntity):
    """The watch's free fitting slots and its booked appointment."""

    def _events(self) -> list[CalendarEvent]:
        status = self.status
        if status is None:
            return []
        free, booked, offer_text = _TEXT.get(
            self.hass.config.language.split("-")[0], _TEXT["en"]
        )
        catalogue = self.coordinator.catalogue
        events: list[CalendarEvent] = []
        booking = status.booking
        if (
            booking.start is not None
            and booking.office_id is not None
            and str(booking.state) in ("booked", "confirmed")
        ):
            events.append(
                CalendarEvent(
                    start=dt_util.as_local(booking.start),
                    end=dt_util.as_local(booking.start)
                    + self._length(booking.office_id),
                    summary=booked.format(
                        office=office_label(catalogue, booking.office_id)
                    ),
                    location=office_label(catalogue, booking.office_id),
                    uid=f"{self.watch_id}-booking",
                    status=CalendarEventStatus.CONFIRMED,
                )
            )
        for slot in status.slots:
            office = office_label(catalogue, slot.office_id)
            offer = offer_token(self.watch_id, slot.office_id, slot.start)
            events.append(
                CalendarEvent(
                    start=dt_util.as_local(slot.start),
                    end=dt_util.as_local(slot.start) + self._length(slot.office_id),
                    summary=free.format(office=office),
                    location=office,
                    description=offer_text.format(offer=offer),
                    uid=offer,
                    status=CalendarEventStatus.TENTATIVE,
                )
            )
        return sorted(events, key=lambda e: e.start_datetime_local)

    def _length(self, office_id: int) -> timedelta:
        minutes = appointment_minutes(self.coordinator.catalogue, office_id, self.watch)
        return timedelta(minutes=minutes or DEFAULT_SLOT_MINUTES)

    @property
    def event(self) -> CalendarEvent | None:
        """The booked appointment, or else the earliest free slot."""
        events = self._events()
        confirmed = [e for e in events if e.status is CalendarEventStatus.CONFIRMED]
        chosen = confirmed or events
        return chosen[0] if chosen else None

    async def async_get_events(
        self,
        hass: HomeAssistant,  # noqa: ARG002
        start_date: datetime,
        end_date: datetime,
    ) -> list[CalendarEvent]:
        """The slots and the booking between two moments."""
        return [
            e
            for e in self._events()
            if e.end_datetime_local > start_date and e.start_datetime_local < end_date
        ]
