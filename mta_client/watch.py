"""What a person is waiting for, and what the watcher reports.

A :class:`Watch` names the services (with counts), the acceptable offices, a
date window (absolute, or relative such as "the next 14 days"), weekdays,
time-of-day ranges and a minimum lead time, and whether to book the first
fitting slot with the person's :class:`~mta_client.models.ContactDetails`.
All times are judged in Munich's local time (Europe/Berlin), so a filter such
as "08:00-12:00" means the same on the days the clocks change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .client import BERLIN
from .models import (
    MAX_RANGE_DAYS,
    Catalogue,
    ContactDetails,
    InputModel,
    LeadTime,
    ServiceRequest,
    Slot,
    WatchId,
)

__all__ = [
    "URGENCIES",
    "BookingEvent",
    "BookingState",
    "SlotEvent",
    "TimeRange",
    "Watch",
    "WatchEvent",
    "parse_weekdays",
]

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Without an end, a watch looks as far ahead as the city's frontend does.
DEFAULT_WINDOW_DAYS = 182

type Urgency = Literal["relaxed", "normal", "urgent"]
URGENCIES: tuple[Urgency, ...] = ("relaxed", "normal", "urgent")
"""How much the person is willing to spend on a watch: ``relaxed`` takes
fewer requests and sees new slots later, ``urgent`` more requests and sooner
(see :class:`~mta_client.watcher.PollPolicy`)."""


class TimeRange(BaseModel):
    """A time-of-day range in Munich time, start inclusive, end exclusive."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            msg = "end must be after start"
            raise ValueError(msg)
        return self

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """Parse ``"08:00-12:30"``."""
        start, sep, end = text.partition("-")
        try:
            if not sep:
                raise ValueError  # noqa: TRY301 - one message for every shape error
            first = time.fromisoformat(start.strip())
            last = time.fromisoformat(end.strip())
        except ValueError:
            msg = "expected HH:MM-HH:MM"
            raise ValueError(msg) from None
        return cls(start=first, end=last)

    def __contains__(self, moment: time) -> bool:
        """Whether a local time of day falls into the range."""
        return self.start <= moment < self.end


DAY_NAMES = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


def _weekday(value: Any) -> int:
    """A weekday as 0-6 from a number or a name ("mon", "Monday")."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:  # noqa: PLR2004
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if len(key) == 1 and key in "0123456":
            return int(key)
        for index, name in enumerate(DAY_NAMES):
            if key in (name, WEEKDAY_NAMES[index]):
                return index
    msg = "weekdays are mon-sun (or monday-sunday, or 0-6 with 0 = Monday)"
    raise ValueError(msg)


def parse_weekdays(value: Any) -> frozenset[int]:
    """Weekdays (0 = Monday) from names, numbers and ranges.

    Accepts ``"mon,wed"``, ``"mon-fri"``, ``"fri-mon"`` (a range may wrap
    around the weekend), ``"0,2"``, ``"Monday"`` and lists of these. The
    message of a mistake does not repeat the value.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    days: set[int] = set()
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        first, dash, last = (
            item.partition("-") if isinstance(item, str) else (item, "", "")
        )
        start = _weekday(first)
        end = _weekday(last) if dash else start
        days.update((start + step) % 7 for step in range((end - start) % 7 + 1))
    if not days:
        msg = "name at least one weekday"
        raise ValueError(msg)
    return frozenset(days)


class Watch(InputModel):
    """A standing request: tell me (or book) when a fitting slot appears.

    Attributes:
        id: a stable name; events and stored state are keyed by it.
        services: what to book, with counts.
        office_ids: acceptable offices (each must offer every service).
        start_date, end_date: an absolute window (either may be omitted).
        within_days: a relative window: from today to today + N days.
        weekdays: acceptable weekdays, 0 = Monday (default: every day).
        time_ranges: acceptable local times of day (default: any time).
        min_lead: how far ahead a slot must be, at least.
        auto_book: reserve, fill in and pre-confirm the first fitting slot.
        contact: the person's data, required for ``auto_book``.
        urgency: ``relaxed``, ``normal`` (default) or ``urgent``: trades
            requests for detection time (see :data:`URGENCIES`).

    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    id: WatchId
    services: list[ServiceRequest] = Field(min_length=1)
    office_ids: list[int] = Field(min_length=1)
    start_date: date | None = None
    end_date: date | None = None
    within_days: int | None = Field(default=None, ge=0, le=MAX_RANGE_DAYS)
    weekdays: frozenset[Annotated[int, Field(ge=0, le=6)]] = frozenset(range(7))
    time_ranges: tuple[TimeRange, ...] = ()
    min_lead: LeadTime = timedelta(0)
    auto_book: bool = False
    contact: ContactDetails | None = Field(default=None, repr=False)
    urgency: Urgency = "normal"

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekday_names(cls, value: Any) -> Any:
        if isinstance(value, str | list | tuple | set | frozenset):
            return parse_weekdays(value)
        return value

    @field_validator("time_ranges", mode="before")
    @classmethod
    def _time_range_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(TimeRange.parse(v) if isinstance(v, str) else v for v in value)
        return value

    @field_validator("services")
    @classmethod
    def _distinct_services(cls, value: list[ServiceRequest]) -> list[ServiceRequest]:
        if len({s.service_id for s in value}) != len(value):
            msg = "each service may be listed once"
            raise ValueError(msg)
        return sorted(value, key=lambda s: s.service_id)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.weekdays:
            msg = "weekdays must not be empty"
            raise ValueError(msg)
        if self.start_date and self.end_date and self.end_date < self.start_date:
            msg = "end_date must not be before start_date"
            raise ValueError(msg)
        if self.auto_book and self.contact is None:
            msg = "auto_book needs the person's contact details"
            raise ValueError(msg)
        if self.min_lead < timedelta(0):
            msg = "min_lead must not be negative"
            raise ValueError(msg)
        return self

    @property
    def service_key(self) -> tuple[tuple[int, int], ...]:
        """The services as a hashable key: watches with equal keys share requests."""
        return tuple((s.service_id, s.count) for s in self.services)

    def window(self, now: datetime) -> tuple[date, date] | None:
        """The dates this watch still looks at, or None when the window is over."""
        today = now.astimezone(BERLIN).date()
        start = max(today, self.start_date or today)
        limits = [today + timedelta(days=MAX_RANGE_DAYS)]
        if self.end_date:
            limits.append(self.end_date)
        if self.within_days is not None:
            limits.append(today + timedelta(days=self.within_days))
        if self.end_date is None and self.within_days is None:
            limits.append(today + timedelta(days=DEFAULT_WINDOW_DAYS))
        end = min(limits)
        return (start, end) if end >= start else None

    def check_contact(self, catalogue: Catalogue) -> None:
        """Check the person's data against the rules of every office watched.

        Raises:
            MTAValidationError: a field an office requires is missing.

        """
        if self.contact is None:
            return
        for office_id in self.office_ids:
            office = catalogue.office(office_id)
            if office is not None:
                self.contact.check_against(office.scope)

    def day_fits(self, day: date, now: datetime) -> bool:
        """Whether a day could hold a fitting slot (window, weekday, lead time)."""
        window = self.window(now)
        if window is None or not window[0] <= day <= window[1]:
            return False
        if day.weekday() not in self.weekdays:
            return False
        end_of_day = datetime.combine(day + timedelta(days=1), time(), BERLIN)
        return end_of_day - now > self.min_lead

    def matches(self, slot: Slot, now: datetime) -> bool:
        """Whether a slot fits every constraint of this watch."""
        if slot.office_id not in self.office_ids:
            return False
        local = slot.start.astimezone(BERLIN)
        if not self.day_fits(local.date(), now):
            return False
        if slot.start - now < self.min_lead:
            return False
        moment = local.time().replace(tzinfo=None)
        return not self.time_ranges or any(moment in r for r in self.time_ranges)


# --- events -------------------------------------------------------------------


class SlotEventKind(StrEnum):
    """What happened to a slot, as far as one watch is concerned."""

    NEW = "new"
    GONE = "gone"


@dataclass(frozen=True, kw_only=True)
class SlotEvent:
    """A fitting slot appeared (``new``) or is no longer offered (``gone``)."""

    kind: SlotEventKind
    watch_id: str
    office_id: int
    start: datetime
    services: tuple[tuple[int, int], ...]
    seen_at: float
    """Unix time at which the watcher saw the change."""

    @property
    def key(self) -> str:
        """The slot's identity within the watch: office and start time."""
        return slot_key(self.office_id, self.start)


class BookingState(StrEnum):
    """Where a watch's booking stands.

    ``reserving`` → ``reserved`` → ``preconfirming`` → ``booked`` (the city
    e-mailed the activation link) → ``confirmed`` (the link was used, through
    :meth:`Watcher.confirm` or in a browser: the engine asks the city after
    the activation deadline). ``lapsed``: the city no longer holds the
    pre-confirmed appointment - its activation link was not used in time
    (or it was cancelled outside the engine); the record keeps which one it
    was, and the watch may book again. ``cancelled``: the booking was
    cancelled through :meth:`Watcher.cancel`. ``failed``: an attempt failed
    in a way that would repeat with the same data; ``idle`` again after one
    that may work later. A watch books automatically only from ``idle`` and
    ``lapsed``.
    """

    IDLE = "idle"
    RESERVING = "reserving"
    RESERVED = "reserved"
    PRECONFIRMING = "preconfirming"
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        """Whether an attempt is under way (a reserve may have been sent)."""
        return self in _BUSY

    @property
    def holds_appointment(self) -> bool:
        """Whether the watch holds a pre-confirmed or confirmed appointment."""
        return self in _HOLDING

    @property
    def books_automatically(self) -> bool:
        """Whether an auto-booking watch books a fitting slot from this state."""
        return self in _AUTOMATIC


_BUSY = frozenset(
    {BookingState.RESERVING, BookingState.RESERVED, BookingState.PRECONFIRMING}
)
_HOLDING = frozenset({BookingState.BOOKED, BookingState.CONFIRMED})
_AUTOMATIC = frozenset({BookingState.IDLE, BookingState.LAPSED})


@dataclass(frozen=True, kw_only=True)
class BookingEvent:
    """The booking of a watch changed state.

    ``booked`` carries what the person needs: the appointment, the deadline
    for clicking the city's activation link, and the credentials for
    cancelling. Those credentials are private: do not log them. ``lapsed``
    names the appointment that lapsed (office, start, process id; no
    credentials) and why (:attr:`reason`:
    :data:`mta_client.booking.ACTIVATION_LAPSED` or ``GONE``).
    """

    state: BookingState
    watch_id: str
    office_id: int | None = None
    start: datetime | None = None
    process_id: int | None = None
    auth_key: str | None = field(default=None, repr=False)
    activation_deadline: datetime | None = None
    reason: str | None = None
    released: bool | None = None
    """After a failed attempt that had reserved a slot: whether that
    reservation was cancelled (True), or is left for the city to release
    (False). None when nothing was reserved."""


type WatchEvent = SlotEvent | BookingEvent


def slot_key(office_id: int, start: datetime) -> str:
    """A slot's identity as stored: ``"<office>@<unix time>"``."""
    return f"{office_id}@{int(start.timestamp())}"
