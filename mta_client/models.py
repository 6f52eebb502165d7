"""Pydantic models of the city's responses and of the client's requests.

Responses are read by the city's published JSON schemas
(``zmsentities/schema/citizenapi/*.json``), field by field:

* ``null`` is accepted exactly where the schema allows it, and means "not
  set". Where "not set" differs from a value (yes/no flags, numbers, dates)
  the field is ``Optional`` and stays ``None``; where it does not (display
  names, lists) it becomes the empty value, so callers need no ``None``
  checks. A field the schema does not require may be missing.
* Types are checked strictly: no ``"1"`` for ``1``, no ``1`` for ``true``.
  A value the schema forbids makes the whole answer invalid (the client
  raises :class:`~mta_client.exceptions.MTAInvalidResponseError`).
* PHP writes an empty map as ``[]`` and the schemas allow ``array`` and
  ``null`` wherever an object is expected: an empty array reads as a missing
  object, and empty or ``null`` entries of lists are skipped.

Where the city's server code and its schema disagree, the model follows what
the server writes and says so at the field (the scope's yes/no flags are
``?bool`` there, office coordinates are strings, sub-request counts are
objects, statuses may be new). Entries a client cannot use at all (a service
or relation without an id) are left out of the catalogue.

The city's quirks become proper types: office ids as strings in the
calendar, Unix seconds (numbers in the calendar, strings in appointments),
CSV strings for id lists. Times are aware ``datetime`` objects in UTC, always
read as *seconds* (:func:`from_unix_seconds`). Personal data and credentials
are hidden from ``repr``.

Whatever parses can be used: times and days lie between 1970 and 8999, and
durations (reservation, activation, slot lengths) within a year, so that
showing them in Munich's time or adding them never overflows; anything
beyond is an invalid response.

Models of the caller's input (:class:`InputModel`: the person's data,
services, credentials, watches) check every field as the city would, and
their constructors raise :class:`~mta_client.exceptions.MTAValidationError`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
import json
import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .exceptions import MTAInvalidResponseError, MTAValidationError
from .text import hidden_characters, normalized

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "Address",
    "Appointment",
    "AppointmentStatus",
    "AvailableCalendar",
    "AvailableDay",
    "CaptchaDetails",
    "Catalogue",
    "Contact",
    "ContactDetails",
    "Geo",
    "InputModel",
    "LeadTime",
    "Office",
    "OfficeSlots",
    "ProcessCredentials",
    "Provider",
    "Relation",
    "Scope",
    "Service",
    "ServiceRequest",
    "Slot",
    "SubRequestCount",
    "WatchId",
    "from_unix_seconds",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_SIGNED_DIGITS = re.compile(r"^[+-]?[0-9]+\Z")
_DIGITS = re.compile(r"^[0-9]+\Z")
_MAX_SECONDS_DIGITS = 20  # far beyond year 9999, far below int()'s limit
# The times and days a client can work with: from the Unix epoch (the city
# counts from it; its calendar's times are >= 0) to the end of year 8999, so
# that every one can be shown in Munich's time and moved by any duration a
# client computes (a lead time, an activation deadline, an appointment's
# length) without leaving ``datetime``, which ends with year 9999.
_FIRST_DAY = date(1970, 1, 1)
_LAST_DAY = date(8999, 12, 31)
_FIRST_MOMENT = datetime.combine(_FIRST_DAY, datetime.min.time(), UTC)
_LAST_MOMENT = datetime.combine(_LAST_DAY, datetime.max.time(), UTC)
_OUT_OF_RANGE = "outside the supported range (years 1970 to 8999)"
# Durations an answer states, bounded for the same reason.
MAX_MINUTES = 366 * 24 * 60
"""Reservation and activation durations: at most a year (Munich: 15 and 30)."""
MAX_SLOT_MINUTES = 24 * 60
"""An office's slot length, and the slots a service takes: at most a day's."""


def from_unix_seconds(value: int | str) -> datetime:
    """Read a Unix time in *seconds* (an int, or a string of digits) as UTC.

    The city counts in seconds everywhere. Pydantic's own int-to-datetime
    conversion would guess: it takes numbers above 2·10¹⁰ for milliseconds.

    Raises:
        MTAInvalidResponseError: not a whole number of seconds, or outside
            the range of ``datetime`` (years 1 to 9999).

    """
    if isinstance(value, str) and _SIGNED_DIGITS.match(text := value.strip()):
        if len(text) > _MAX_SECONDS_DIGITS:
            msg = "a Unix time is outside the supported range (years 1 to 9999)"
            raise MTAInvalidResponseError(msg)
        seconds = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        msg = "a Unix time must be a whole number of seconds"
        raise MTAInvalidResponseError(msg)
    try:
        # Arithmetic instead of fromtimestamp(): same result, but no
        # platform limits (negative times, year 2038) and one error type.
        return _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        msg = "a Unix time is outside the supported range (years 1 to 9999)"
        raise MTAInvalidResponseError(msg) from None


# --- field readers (before-validators) -------------------------------------------
# They raise ValueError, which pydantic collects with the field's location.


def _seconds(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
        if moment.tzinfo is None:
            return moment
    else:
        try:
            moment = from_unix_seconds(value)
        except MTAInvalidResponseError as err:
            raise ValueError(str(err)) from None
    if not _FIRST_MOMENT <= moment <= _LAST_MOMENT:
        msg = f"a time {_OUT_OF_RANGE}"
        raise ValueError(msg)
    return moment


def _calendar_seconds(value: Any) -> datetime:
    # available-calendar/ sends integers >= 0 (schema: "minimum": 0).
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = "a slot time must be a non-negative integer of Unix seconds"
        raise ValueError(msg)
    return _seconds(value)


def _seconds_string(value: Any) -> Any:
    # ThinnedProcess.timestamp is a string of seconds (or null).
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        msg = "must be a string of Unix seconds"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    return _seconds(value)


def _iso_day(value: Any) -> Any:
    # The schemas' "YYYY-MM-DD" pattern; pydantic alone would also take
    # Unix numbers and date-times for a date.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        msg = "must be a date as YYYY-MM-DD"
        raise ValueError(msg)
    day = date.fromisoformat(value)
    if not _FIRST_DAY <= day <= _LAST_DAY:
        msg = f"a day {_OUT_OF_RANGE}"
        raise ValueError(msg)
    return day


def _not_null(value: Any) -> Any:
    # For fields the schema does not require but does not let be null either.
    if value is None:
        msg = "must not be null"
        raise ValueError(msg)
    return value


def _null_as_empty_string(value: Any) -> Any:
    return "" if value is None else value


def _null_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _no_object(value: Any) -> Any:
    """Read PHP's empty array (an empty map) as a missing object."""
    return None if value == [] else value


def _entries(value: Any) -> Any:
    """Skip the null and empty-array entries the schemas allow in lists."""
    if isinstance(value, list):
        return [entry for entry in value if entry is not None and entry != []]
    return value


def _array_entries(value: Any) -> Any:
    """Skip empty-array entries where the schema allows arrays but not null."""
    if isinstance(value, list):
        return [entry for entry in value if entry != []]
    return value


def _digits(value: Any) -> Any:
    """An id the schema sends as a string (or as string or integer)."""
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    msg = "must be an id (digits)"
    raise ValueError(msg)


def _digits_string(value: Any) -> Any:
    """An id the schema declares as a string only (calendar office ids)."""
    if not isinstance(value, str):
        msg = "must be a string of digits"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    return _digits(value)


def _count(value: Any) -> Any:
    """``string|integer|null`` counts; ``""`` (PHP's unset text) is not set."""
    if value is None or value == "":
        return None
    return _digits(value)


def _csv_ints(value: Any) -> Any:
    """Turn ``"10489,10502"`` into ``[10489, 10502]`` (the schema: a string)."""
    if not isinstance(value, str):
        msg = "must be a comma-separated string of ids"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    return [_digits(part.strip()) for part in value.split(",") if part.strip()]


def _coordinate(value: Any) -> Any:
    # The schema says number; the city's Office model sends numeric strings.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    msg = "must be a number"
    raise ValueError(msg)


def _provider_id(value: Any) -> Any:
    # The schema says string; a number (as in this project's first fixtures)
    # is read as its text rather than refused.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _not_null(value)


type _Latitude = Annotated[float, Field(ge=-90, le=90)]
type _Longitude = Annotated[float, Field(ge=-180, le=180)]
type _Day = Annotated[date, BeforeValidator(_iso_day)]
type _OptionalDay = Annotated[_Day | None, BeforeValidator(_not_null)]
type _Flag = StrictBool | None
"""A yes/no setting: ``None`` when the city did not say (``null``/missing)."""
type _Text = StrictStr | None
type _Number = StrictInt | None
type _Name = Annotated[StrictStr, BeforeValidator(_null_as_empty_string)]
type _Minutes = Annotated[StrictInt, Field(ge=0, le=MAX_MINUTES)] | None
type _SlotCount = Annotated[StrictInt, Field(ge=0, le=MAX_SLOT_MINUTES)] | None


class _Model(BaseModel):
    """Base of every response model: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )


# --- catalogue ----------------------------------------------------------------


class Address(_Model):
    """Postal address of an office.

    The schema describes these fields only for arrays, so it allows any
    object; each field may be missing or ``null``.
    """

    street: _Text = None
    house_number: _Text = Field(default=None, alias="house_number")
    postal_code: _Text = Field(default=None, alias="postal_code")
    city: _Text = None
    hint: StrictStr | StrictBool | None = None


class Geo(_Model):
    """Coordinates of an office (WGS84 degrees).

    The schema says numbers; the city sends them as strings. Both are read.
    """

    lat: Annotated[_Latitude | None, BeforeValidator(_coordinate)] = None
    lon: Annotated[_Longitude | None, BeforeValidator(_coordinate)] = None


class Contact(_Model):
    """The postal contact of a scope's provider (``ThinnedContact``)."""

    city: _Text = None
    country: _Text = None
    name: _Text = None
    postal_code: _Text = None
    region: _Text = None
    street: _Text = None
    street_number: _Text = None


class Provider(_Model):
    """The office a scope belongs to, as the scope names it (``ThinnedProvider``)."""

    id: Annotated[StrictStr | None, BeforeValidator(_provider_id)] = None
    name: _Text = None
    display_name: _Text = None
    lat: StrictFloat | None = None
    lon: StrictFloat | None = None
    source: Annotated[StrictStr | None, BeforeValidator(_not_null)] = None
    contact: Annotated[Contact | None, BeforeValidator(_no_object)] = None


class Scope(_Model):
    """An office's booking settings (the city's ``ThinnedScope``).

    Every yes/no flag is ``None`` when the city did not set it: its server
    declares them ``?bool`` and writes ``null`` (the schema says boolean).
    Code asking "is X required" decides what ``None`` means; see
    :meth:`ContactDetails.check_against` and :attr:`Office.captcha_required`.
    """

    id: Annotated[int | None, BeforeValidator(_digits)] = None
    provider: Annotated[Provider | None, BeforeValidator(_no_object)] = None
    short_name: _Text = None
    email_from: _Text = None
    email_required: _Flag = None
    telephone_activated: _Flag = None
    telephone_required: _Flag = None
    custom_textfield_activated: _Flag = None
    custom_textfield_required: _Flag = None
    custom_textfield_label: _Text = None
    custom_textfield2_activated: _Flag = None
    custom_textfield2_required: _Flag = None
    custom_textfield2_label: _Text = None
    captcha_activated_required: _Flag = None
    info_for_appointment: _Text = None
    info_for_all_appointments: _Text = None
    slots_per_appointment: Annotated[int | None, BeforeValidator(_count)] = None
    appointments_per_mail: Annotated[int | None, BeforeValidator(_count)] = None
    whitelisted_mails: _Text = None
    reservation_duration: _Minutes = None
    """Minutes a reservation is held before the city releases it."""
    activation_duration: _Minutes = None
    """Minutes the person has to click the activation link."""
    hint: _Text = None


type _Scope = Annotated[Scope | None, BeforeValidator(_no_object)]


class Office(_Model):
    """A bookable office (the city's ``Office``; a DLDB "provider")."""

    id: StrictInt
    name: _Name = ""
    """The display name; empty when the city sends none."""
    address: Annotated[Address | None, BeforeValidator(_no_object)] = None
    show_alternative_locations: _Flag = None
    display_name_alternatives: Annotated[
        list[StrictStr], BeforeValidator(_null_as_empty_list)
    ] = Field(default_factory=list)
    organization: _Text = None
    organization_unit: _Text = None
    slot_time_in_minutes: _SlotCount = None
    # office.json's "version" (of the availability data) means nothing to a
    # client and is ignored, like every field not modelled here.
    geo: Annotated[Geo | None, BeforeValidator(_no_object)] = None
    disabled_by_services: Annotated[
        list[StrictInt], BeforeValidator(_null_as_empty_list)
    ] = Field(default_factory=list)
    """Services for which the city hides this office (another office serves them)."""
    priority: Annotated[int, BeforeValidator(lambda v: 1 if v is None else v)] = 1
    scope: _Scope = None
    parent_id: _Number = None
    allow_disabled_services_mix: Annotated[
        list[StrictInt] | StrictBool, BeforeValidator(_null_as_empty_list)
    ] = Field(default_factory=list)
    """Office ids of the group, or the legacy ``True`` (takes part in the mix)."""
    shared_booking_office_ids: Annotated[
        list[StrictInt], BeforeValidator(_null_as_empty_list)
    ] = Field(default_factory=list)
    slots_per_appointment: Annotated[int | None, BeforeValidator(_count)] = None

    @property
    def captcha_required(self) -> bool:
        """Whether calendar and reserve requests for this office need a token.

        A flag the city did not set counts as required: an unneeded token
        costs one solved challenge, a missing one a refused request.
        """
        return self.scope is not None and self.scope.captcha_activated_required in (
            True,
            None,
        )


def _combinable(value: Any) -> Any:
    """Flatten ``{"1": {"<serviceId>": [officeIds]}, …}`` (or ``[]``).

    Each entry maps exactly one combinable service to the offices offering
    both; PHP writes the outer map as an array when it is empty (or has
    keys 0…n), and an entry as ``[]`` when it is empty.
    """
    if isinstance(value, dict):
        entries = [v for k, v in value.items() if _DIGITS.match(str(k))]
    elif isinstance(value, list):
        entries = value
    else:
        msg = "must be an object or an array"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    merged: dict[int, list[int]] = {}
    for entry in entries:
        if entry == []:
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            msg = "each entry must map one service id to office ids"
            raise ValueError(msg)
        ((service, offices),) = entry.items()
        if not (isinstance(service, str) and _DIGITS.match(service)):
            msg = "service ids must be digits"
            raise ValueError(msg)
        if not isinstance(offices, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in offices
        ):
            msg = "office ids must be integers"
            raise ValueError(msg)
        merged[int(service)] = offices
    return merged


class Service(_Model):
    """A service that can be booked (the city's ``Service``; a DLDB "request")."""

    id: StrictInt
    name: _Name
    """The display name; empty when the city sends none."""
    max_quantity: Annotated[
        StrictInt, BeforeValidator(lambda v: 1 if v is None else v)
    ] = 1
    """How often the service can be booked at once (the city's default: 1)."""
    combinable: Annotated[dict[int, list[int]], BeforeValidator(_combinable)] = Field(
        default_factory=dict
    )
    """Combinable services mapped to the offices that offer both."""
    public: _Flag = None
    parent_id: _Number = None
    variant_id: _Number = None
    root_parent_id: _Number = None
    show_on_start_page: _Flag = None
    """Whether the city's start page lists it; ``None`` when not set."""


class Relation(_Model):
    """That an office offers a service, and how many time slots it takes there."""

    office_id: StrictInt
    service_id: StrictInt
    slots: _SlotCount
    """Time slots the service takes at this office; ``None`` when not set."""
    public: bool | None = None
    max_quantity: int | None = None


def _usable(*keys: str) -> Any:
    """Skip empty entries and those whose identifying ``keys`` are null."""

    def skip(value: Any) -> Any:
        value = _entries(value)
        if isinstance(value, list):
            return [
                entry
                for entry in value
                if not (
                    isinstance(entry, dict)
                    and any(key in entry and entry[key] is None for key in keys)
                )
            ]
        return value

    return BeforeValidator(skip)


class Catalogue(_Model):
    """The answer of ``offices-and-services/``: offices, services, relations.

    Services and relations whose ids are ``null`` (the schema allows it) can
    be neither booked nor looked up, so they are left out.
    """

    offices: Annotated[list[Office], BeforeValidator(_array_entries)]
    services: Annotated[list[Service], _usable("id")]
    relations: Annotated[list[Relation], _usable("officeId", "serviceId")]

    def office(self, office_id: int) -> Office | None:
        """Return the office with this id, if the catalogue has it."""
        return next((o for o in self.offices if o.id == office_id), None)

    def service(self, service_id: int) -> Service | None:
        """Return the service with this id, if the catalogue has it."""
        return next((s for s in self.services if s.id == service_id), None)

    def services_at(self, office_id: int) -> set[int]:
        """Return the ids of the services an office offers."""
        return {r.service_id for r in self.relations if r.office_id == office_id}

    def offices_offering(self, service_ids: Iterable[int]) -> list[Office]:
        """Return the offices that offer every one of these services."""
        wanted = set(service_ids)
        return [o for o in self.offices if wanted <= self.services_at(o.id)]

    def captcha_required(self, office_ids: Iterable[int]) -> bool:
        """Whether any of these offices requires a captcha token.

        Unknown offices count as requiring one: asking without a token would
        only earn a ``captchaMissing`` and waste a request.
        """
        for office_id in office_ids:
            office = self.office(office_id)
            if office is None or office.captcha_required:
                return True
        return False


# --- availability ---------------------------------------------------------------


class OfficeSlots(_Model):
    """Free slot start times at one office on one day."""

    office_id: Annotated[int, BeforeValidator(_digits_string)]
    appointments: Annotated[
        list[Annotated[datetime, BeforeValidator(_calendar_seconds)]],
        BeforeValidator(_null_as_empty_list),
    ] = Field(default_factory=list)


class AvailableDay(_Model):
    """A bookable day. Only the first bookable day of the slots window has times."""

    date: _Day
    provider_ids: Annotated[
        list[int], BeforeValidator(_csv_ints), BeforeValidator(_not_null)
    ] = Field(
        default_factory=list,
        validation_alias=AliasChoices("providerIDs", "providerIds"),
    )
    offices: Annotated[
        list[OfficeSlots],
        BeforeValidator(_entries),
        BeforeValidator(_null_as_empty_list),
    ] = Field(default_factory=list)


class Slot(_Model):
    """One free slot: an office and a start time."""

    office_id: int
    start: Annotated[datetime, BeforeValidator(_seconds)]
    """Aware UTC start; an int given here is read as Unix seconds."""

    @property
    def timestamp(self) -> int:
        """The Unix timestamp the city expects when reserving."""
        return int(self.start.timestamp())


class AvailableCalendar(_Model):
    """The answer of ``available-calendar/``."""

    start_date: _Day
    end_date: _Day
    slots_start_date: _OptionalDay = None
    slots_end_date: _OptionalDay = None
    prev_bookable_date: _Day | None = None
    next_bookable_date: _Day | None = None
    available_days: Annotated[list[AvailableDay], BeforeValidator(_entries)]

    @property
    def bookable_dates(self) -> list[date]:
        """Every bookable day listed (with or without slot times)."""
        return [day.date for day in self.available_days]

    @property
    def slots(self) -> list[Slot]:
        """Every slot with a time, sorted by start and office."""
        found = [
            Slot(office_id=bucket.office_id, start=start)
            for day in self.available_days
            for bucket in day.offices
            for start in bucket.appointments
        ]
        return sorted(found, key=lambda slot: (slot.start, slot.office_id))


# --- captcha ----------------------------------------------------------------------


class CaptchaDetails(_Model):
    """The answer of ``captcha-details/`` (every field required, none null)."""

    site_key: StrictStr
    captcha_challenge: StrictStr
    captcha_verify: StrictStr
    captcha_enabled: StrictBool


# --- appointments ----------------------------------------------------------------


class AppointmentStatus(StrEnum):
    """States of an appointment ("process") in the city's system."""

    FREE = "free"
    RESERVED = "reserved"
    PRECONFIRMED = "preconfirmed"
    CONFIRMED = "confirmed"
    QUEUED = "queued"
    CALLED = "called"
    PROCESSING = "processing"
    PENDING = "pending"
    FINISHED = "finished"
    MISSED = "missed"
    PARKED = "parked"
    ARCHIVED = "archived"
    DELETED = "deleted"
    ANONYMIZED = "anonymized"
    BLOCKED = "blocked"
    CONFLICT = "conflict"
    UNKNOWN = "unknown"
    """The city did not say (``null``), or sent a state this version lacks."""


def _status(value: Any) -> Any:
    """Keep parsing when the city adds a state this version does not know."""
    if value is None:
        return AppointmentStatus.UNKNOWN
    if not isinstance(value, str):
        msg = "must be a string"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    if value not in AppointmentStatus.__members__.values():
        return AppointmentStatus.UNKNOWN
    return value


class SubRequestCount(_Model):
    """A further service of a multi-service appointment.

    The city's server writes ``{id, name, count}``; its schema describes
    bare integers, which are read as a count without an id.
    """

    id: StrictInt | None = None
    name: _Text = None
    count: StrictInt = 1


def _sub_requests(value: Any) -> Any:
    value = _entries(_null_as_empty_list(value))
    if isinstance(value, list):
        return [
            {"count": v} if isinstance(v, int) and not isinstance(v, bool) else v
            for v in value
        ]
    return value


class Appointment(_Model):
    """An appointment ("ThinnedProcess"): what reserve, update, … return.

    ``process_id`` and ``auth_key`` are the only credentials of a booking;
    they, the captcha token and the person's data are hidden from ``repr``.
    The schema lets ``processId`` be ``null``, but an answer without one
    names no appointment, so it is an invalid response here.
    """

    process_id: StrictInt
    timestamp: Annotated[datetime | None, BeforeValidator(_seconds_string)] = None
    """The appointment's start (the city sends a string of Unix seconds)."""
    auth_key: Annotated[StrictStr, BeforeValidator(_null_as_empty_string)] = Field(
        default="", repr=False
    )
    family_name: _Text = Field(default=None, repr=False)
    custom_textfield: _Text = Field(default=None, repr=False)
    custom_textfield2: _Text = Field(default=None, repr=False)
    email: _Text = Field(default=None, repr=False)
    telephone: _Text = Field(default=None, repr=False)
    office_name: _Text = None
    office_id: _Number = None
    scope: _Scope = None
    sub_request_counts: Annotated[
        list[SubRequestCount], BeforeValidator(_sub_requests)
    ] = Field(default_factory=list)
    service_id: _Number = None
    service_name: _Text = None
    service_count: _Number = None
    status: Annotated[AppointmentStatus, BeforeValidator(_status)] = (
        AppointmentStatus.UNKNOWN
    )
    captcha_token: _Text = Field(default=None, repr=False)
    slot_count: _Number = None
    display_number: _Text = None
    ics_content: _Text = Field(default=None, repr=False)

    @property
    def credentials(self) -> ProcessCredentials:
        """The process id and auth key that later calls need.

        Raises:
            MTAInvalidResponseError: the city's answer holds no usable ones
                (an auth key that is not 4 or 64 hex digits, say).

        """
        try:
            return ProcessCredentials(
                process_id=self.process_id, auth_key=self.auth_key
            )
        except MTAValidationError as err:
            msg = f"the city's answer holds no usable credentials ({err})"
            raise MTAInvalidResponseError(msg) from None


# --- requests ----------------------------------------------------------------------

# The city's own e-mail check (validateAppointmentUpdateFields): no "+" anywhere.
EMAIL_PATTERN = re.compile(
    r"^(?!.*\.\.)(?!\.)(?!.*\.$)[^\s@+]+(?<!\.)@(?!\.)[^\s@+]+\.[^\s@]{2,}$"
)
# PHP's \d (without the /u modifier) is ASCII only; so is this one.
TELEPHONE_PATTERN = re.compile(r"^\+?[0-9]\d{6,14}$", re.ASCII)
AUTH_KEY_PATTERN = re.compile(r"^(?:[0-9a-fA-F]{4}|[0-9a-fA-F]{64})\Z")
MAX_CUSTOM_TEXT = 250
MAX_FAMILY_NAME = 255
MAX_EMAIL = 254
MAX_SERVICE_COUNT = 25
MAX_RANGE_DAYS = 365
MAX_LEAD = timedelta(days=MAX_RANGE_DAYS)
MAX_WATCH_ID = 64
MAX_ID = 2**31 - 1
_MAX_ID_DIGITS = len(str(MAX_ID))
_HIDDEN_TEXT = "must not contain control or formatting characters"


def input_error(model: type[BaseModel], err: ValidationError) -> MTAValidationError:
    """Turn pydantic's error about a caller's input into MTAValidationError.

    The error names the field (dotted, for nested ones) and what is wrong,
    never the value. A check of the whole model whose message starts with a
    field's name ("end_date must not be before start_date") names that field.
    """
    first = err.errors(include_url=False, include_context=False, include_input=False)[0]
    loc = [str(part) for part in first["loc"]]
    message = first["msg"].removeprefix("Value error, ")
    if not loc:
        name, _, rest = message.partition(" ")
        if name in model.model_fields and rest:
            loc, message = [name], rest
    return MTAValidationError(".".join(loc) or model.__name__, message)


def validated[T: BaseModel](model: type[T], **values: Any) -> T:
    """Build a request model, turning pydantic errors into MTAValidationError.

    Models derived from :class:`InputModel` do that themselves; this helper
    does it for any model. The error names the field, never the value.
    """
    try:
        return model(**values)
    except ValidationError as err:
        raise input_error(model, err) from None


class InputModel(BaseModel):
    """Base of the models built from a caller's input (requests, watches).

    Every field is checked as the city would check it, before anything is
    sent. A mistake raises :class:`~mta_client.exceptions.MTAValidationError`
    from the constructor, naming the field, never its value: every exception
    of the library derives from ``MTAError``. (``model_validate`` keeps
    pydantic's ``ValidationError``, which lists every mistake at once.)
    """

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    def __init__(self, /, **data: Any) -> None:
        """Check the input; a mistake is an MTAValidationError."""
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise input_error(type(self), err) from None

    # Only for the constructor: pydantic calls an __init__ without this mark
    # for nested models and model_validate too, and would wrap its error.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


def _whole_number(value: Any) -> Any:
    """An id or a count: an integer or its ASCII digits; never a bool or float."""
    if isinstance(value, str) and _DIGITS.match(text := value.strip()):
        if len(text) > _MAX_ID_DIGITS:
            msg = f"must be at most {MAX_ID}"
            raise ValueError(msg)
        return int(text)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    msg = "must be a whole number"
    raise ValueError(msg)


type _Id = Annotated[int, BeforeValidator(_whole_number), Field(gt=0, le=MAX_ID)]
type _Count = Annotated[
    int, BeforeValidator(_whole_number), Field(ge=1, le=MAX_SERVICE_COUNT)
]


class ServiceRequest(InputModel):
    """A service and how many times it is needed (1-25)."""

    service_id: _Id
    count: _Count = 1


# --- activation links -------------------------------------------------------------

_MAX_LINK = 4096
_MAX_LINK_TOKEN = 512  # {"id":2147483647,"authKey":"<64 hex>"} takes 120
_LINK_FRAGMENT = re.compile(
    r"/?appointment/(?:confirm/)?(?P<token>[A-Za-z0-9+/_=-]+?)/?", re.ASCII
)
_LINK_TOKEN = re.compile(r"[A-Za-z0-9+/_-]+={0,2}", re.ASCII)
_NOT_A_LINK = "not an activation link of the city's booking system"
_LINK_ID = f"the link's id must be a whole number from 1 to {MAX_ID}"
_LINK_AUTH_KEY = "the link's authKey must be 4 or 64 hexadecimal characters"


class _BadLinkError(Exception):
    """Raised inside the link parser; never leaves it."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _BadLinkError
    return dict(pairs)


def _no_constant(_: str) -> Any:
    raise _BadLinkError  # NaN and Infinity are not JSON


def _link_token(link: str) -> str | None:
    """The base64 part of a link: after ``#/appointment/[confirm/]``, or bare."""
    text = link.strip()
    if "#" in text:
        match = _LINK_FRAGMENT.fullmatch(unquote(text.split("#", 1)[1]))
        return match["token"] if match else None
    text = unquote(text)
    return text if _LINK_TOKEN.fullmatch(text) else None


def _link_data(token: str) -> Any:
    """Decode base64 (standard or URL-safe, padded or not) of strict JSON."""
    body = token.rstrip("=")
    padding = len(token) - len(body)
    url_safe = "-" in body or "_" in body
    if (
        len(token) > _MAX_LINK_TOKEN
        or "=" in body
        or len(body) % 4 == 1
        or (padding and (len(body) + padding) % 4)
        or (url_safe and ("+" in body or "/" in body))
    ):
        return None
    try:
        raw = base64.b64decode(
            body.translate(str.maketrans("-_", "+/")) + "=" * (-len(body) % 4),
            validate=True,
        )
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
        )
    except (_BadLinkError, binascii.Error, ValueError, RecursionError):
        return None


def _link_process_id(value: Any) -> int | None:
    """The link's ``id``: a JSON integer, or the same as canonical digits."""
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]{0,9}", value, re.ASCII):
        value = int(value)
    if type(value) is int and 0 < value <= MAX_ID:
        return value
    return None


class ProcessCredentials(InputModel):
    """The process id and auth key of an appointment."""

    process_id: _Id
    auth_key: StrictStr = Field(repr=False)

    @field_validator("auth_key")
    @classmethod
    def _auth_key_shape(cls, value: str) -> str:
        if not AUTH_KEY_PATTERN.match(value):
            msg = "must be 4 or 64 hexadecimal characters"
            raise ValueError(msg)
        return value

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body the city expects."""
        return {"processId": self.process_id, "authKey": self.auth_key}

    @classmethod
    def from_activation_link(cls, link: str) -> ProcessCredentials:
        """Read the credentials from the activation link in the city's e-mail.

        The link ends in ``#/appointment/confirm/<base64>`` (or
        ``#/appointment/<base64>`` in the confirmation mail), where the base64
        part (standard or URL-safe, often without its ``=`` padding) encodes
        exactly ``{"id": processId, "authKey": key}``. The bare base64 part is
        accepted too. ``id`` must be an integer from 1 to 2³¹-1 (never
        ``true``, ``null`` or ``182201.7``; PHP's digit string of it is read
        as the number), ``authKey`` 4 or 64 hexadecimal characters.

        Raises:
            MTAValidationError: field ``link``; the message says which part
                is wrong and never repeats the link or what it holds.

        """
        problem = _link_problem(link)
        if isinstance(problem, str):
            raise MTAValidationError("link", problem)
        process_id, auth_key = problem
        return cls(process_id=process_id, auth_key=auth_key)


def _link_problem(link: object) -> str | tuple[int, str]:
    """What is wrong with a link, or its process id and auth key."""
    if not isinstance(link, str):
        return "must be text"
    if len(link) > _MAX_LINK:
        return f"{_NOT_A_LINK} (too long)"
    token = _link_token(link)
    data = None if token is None else _link_data(token)
    if not isinstance(data, dict):
        return _NOT_A_LINK
    missing = [key for key in ("id", "authKey") if key not in data]
    if missing:
        return f"{_NOT_A_LINK} (it has no {' and no '.join(missing)})"
    if len(data) != 2:  # noqa: PLR2004 - id and authKey
        return f"{_NOT_A_LINK} (it holds more than id and authKey)"
    return _link_fields(data["id"], data["authKey"])


def _link_fields(process_id: Any, auth_key: Any) -> str | tuple[int, str]:
    number = _link_process_id(process_id)
    if number is None:
        return _LINK_ID
    if not isinstance(auth_key, str) or not AUTH_KEY_PATTERN.match(auth_key):
        return _LINK_AUTH_KEY
    return number, auth_key


# --- the person's data ------------------------------------------------------------


def _free_text(value: str, *, limit: int) -> str:
    """Visible characters only; at most ``limit`` once normalised (returned)."""
    if hidden_characters(value):
        raise ValueError(_HIDDEN_TEXT)
    text = normalized(value)
    if len(text) > limit:
        msg = f"must be at most {limit} characters"
        raise ValueError(msg)
    return text


class ContactDetails(InputModel):
    """The person's data for ``update-appointment/``.

    Checked here with the city's own rules (and sane limits), so that a
    mistake is reported before a slot is reserved: a family name that is not
    empty, at most 255 characters; an e-mail address by the city's pattern
    (no ``+``), at most 254 characters; a telephone number of 7-15 digits;
    free texts of at most 250 characters. No field may hold control or
    formatting characters (escape sequences, bidirectional overrides, lone
    surrogates). Text is stored in NFC with runs of whitespace made single.
    """

    family_name: StrictStr = Field(repr=False)
    email: StrictStr | None = Field(default=None, repr=False)
    telephone: StrictStr | None = Field(default=None, repr=False)
    custom_textfield: StrictStr | None = Field(default=None, repr=False)
    custom_textfield2: StrictStr | None = Field(default=None, repr=False)

    @field_validator("family_name")
    @classmethod
    def _name_present(cls, value: str) -> str:
        value = _free_text(value, limit=MAX_FAMILY_NAME)
        if not value:
            msg = "is required"
            raise ValueError(msg)
        return value

    @field_validator("email")
    @classmethod
    def _email_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if hidden_characters(value):
            msg = _HIDDEN_TEXT
        elif len(value) > MAX_EMAIL:
            msg = f"must be at most {MAX_EMAIL} characters"
        elif "@" not in value:
            msg = "is not an e-mail address (it has no '@')"
        elif "+" in value:
            msg = "is not an address the city accepts (no '+' allowed)"
        elif not EMAIL_PATTERN.fullmatch(value):
            msg = "is not an address the city accepts"
        else:
            return value
        raise ValueError(msg)

    @field_validator("telephone")
    @classmethod
    def _telephone_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = re.sub(r"[\s/()-]", "", value)
        if not TELEPHONE_PATTERN.fullmatch(compact):
            msg = "must be 7 to 15 digits, optionally with a leading '+'"
            raise ValueError(msg)
        return compact

    @field_validator("custom_textfield", "custom_textfield2")
    @classmethod
    def _custom_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _free_text(value, limit=MAX_CUSTOM_TEXT)

    def check_against(self, scope: Scope | None) -> None:
        """Check the details against what an office's scope requires.

        Only a flag set to ``True`` makes a field required. A flag the city
        left unset (``None``) does not: the city's own check asks the same
        truthy flag, and refusing here would stop a booking the city takes.
        """
        if scope is None:
            return
        required = (
            ("email", scope.email_required, self.email),
            ("telephone", scope.telephone_required, self.telephone),
            (
                "custom_textfield",
                scope.custom_textfield_required,
                self.custom_textfield,
            ),
            (
                "custom_textfield2",
                scope.custom_textfield2_required,
                self.custom_textfield2,
            ),
        )
        for field, needed, value in required:
            if needed is True and not (value and value.strip()):
                raise MTAValidationError(field, "is required by this office")

    def to_body(self, credentials: ProcessCredentials) -> dict[str, Any]:
        """Return the JSON body of ``update-appointment/``."""
        body = credentials.to_body()
        body["familyName"] = self.family_name
        for key, value in (
            ("email", self.email),
            ("telephone", self.telephone),
            ("customTextfield", self.custom_textfield),
            ("customTextfield2", self.custom_textfield2),
        ):
            if value is not None:
                body[key] = value
        return body


# --- watches ------------------------------------------------------------------------


def _watch_id(value: str) -> str:
    if not value.strip():
        msg = "must not be only spaces"
    elif not value.isprintable():
        msg = "must be printable, without control or formatting characters"
    else:
        return value
    raise ValueError(msg)


def _lead_time(value: timedelta) -> timedelta:
    if value < timedelta(0):
        msg = "must not be negative"
    elif value > MAX_LEAD:
        msg = f"must be at most {MAX_RANGE_DAYS} days"
    else:
        return value
    raise ValueError(msg)


type WatchId = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_WATCH_ID), AfterValidator(_watch_id)
]
"""A watch's name: 1-64 printable characters (events and state are keyed by it)."""
type LeadTime = Annotated[timedelta, AfterValidator(_lead_time)]
"""A watch's minimum lead time: from 0 to 365 days."""


def check_date_range(start: date, end: date, *, field: str = "end_date") -> None:
    """Check a date range the way the city does (ordered, at most 365 days)."""
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise MTAValidationError(field, "must be a date, not a datetime")
    if end < start:
        raise MTAValidationError(field, "must not be before the start date")
    if (end - start).days > MAX_RANGE_DAYS:
        raise MTAValidationError(field, f"range must be at most {MAX_RANGE_DAYS} days")
