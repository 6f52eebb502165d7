"""Pydantic models of the city's responses and of the client's requests.

Responses are parsed leniently: unknown fields are ignored, ``null`` is
accepted where the city sends it, and the API's quirks (office ids as strings
in the calendar, timestamps as strings in appointments, CSV strings for id
lists) are turned into proper types. Timestamps become aware ``datetime``
objects in UTC. Personal data and credentials are hidden from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from enum import StrEnum
import json
import re
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .exceptions import MTAValidationError

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
    "ContactDetails",
    "Geo",
    "Office",
    "OfficeSlots",
    "ProcessCredentials",
    "Relation",
    "Scope",
    "Service",
    "ServiceRequest",
    "Slot",
    "SubRequestCount",
]


def _csv_ints(value: Any) -> Any:
    """Turn ``"10489,10502"`` into ``[10489, 10502]``; pass lists through."""
    if isinstance(value, str):
        return [int(part) for part in value.split(",") if part.strip()]
    return value


def _empty_list(value: Any) -> Any:
    """Treat ``null`` (or PHP's ``[]`` for an empty map) as an empty list/map."""
    return [] if value is None else value


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
    """Postal address of an office."""

    street: str | None = None
    house_number: str | None = Field(default=None, alias="house_number")
    postal_code: str | None = Field(default=None, alias="postal_code")
    city: str | None = None
    hint: str | bool | None = None


class Geo(_Model):
    """Coordinates of an office (the city sends them as strings)."""

    lat: float
    lon: float


class Scope(_Model):
    """An office's booking settings (the city's ``ThinnedScope``)."""

    id: int
    short_name: str | None = None
    email_required: bool = False
    telephone_activated: bool = False
    telephone_required: bool = False
    custom_textfield_activated: bool = False
    custom_textfield_required: bool = False
    custom_textfield_label: str | None = None
    custom_textfield2_activated: bool = False
    custom_textfield2_required: bool = False
    custom_textfield2_label: str | None = None
    captcha_activated_required: bool = False
    info_for_appointment: str | None = None
    info_for_all_appointments: str | None = None
    slots_per_appointment: int | None = None
    appointments_per_mail: int | None = None
    reservation_duration: int | None = None
    """Minutes a reservation is held before the city releases it."""
    activation_duration: int | None = None
    """Minutes the person has to click the activation link."""
    hint: str | None = None

    @field_validator("slots_per_appointment", "appointments_per_mail", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class Office(_Model):
    """A bookable office (the city's ``Office``; a DLDB "provider")."""

    id: int
    name: str
    address: Address | None = None
    show_alternative_locations: bool | None = None
    display_name_alternatives: list[str] = Field(default_factory=list)
    organization: str | None = None
    organization_unit: str | None = None
    slot_time_in_minutes: int | None = None
    geo: Geo | None = None
    disabled_by_services: Annotated[list[int], BeforeValidator(_empty_list)] = Field(
        default_factory=list
    )
    """Services for which the city hides this office (another office serves them)."""
    priority: int = 1
    scope: Scope | None = None
    parent_id: int | None = None
    allow_disabled_services_mix: Annotated[list[int], BeforeValidator(_empty_list)] = (
        Field(default_factory=list)
    )
    shared_booking_office_ids: Annotated[list[int], BeforeValidator(_empty_list)] = (
        Field(default_factory=list)
    )

    @property
    def captcha_required(self) -> bool:
        """Whether calendar and reserve requests for this office need a token."""
        return self.scope is not None and self.scope.captcha_activated_required


class Service(_Model):
    """A service that can be booked (the city's ``Service``; a DLDB "request")."""

    id: int
    name: str
    max_quantity: int = 1
    combinable: dict[int, list[int]] = Field(default_factory=dict)
    """Combinable services mapped to the offices that offer both."""
    parent_id: int | None = None
    variant_id: int | None = None
    root_parent_id: int | None = None
    show_on_start_page: bool = True

    @field_validator("combinable", mode="before")
    @classmethod
    def _flatten_combinable(cls, value: Any) -> Any:
        # The city sends {"1": {"<serviceId>": [officeIds]}, "2": {...}}, or []
        # when there is nothing to combine (PHP's empty array).
        if not value:
            return {}
        if isinstance(value, dict):
            merged: dict[Any, Any] = {}
            for entry in value.values():
                if isinstance(entry, dict):
                    merged.update(entry)
            return merged
        return value


class Relation(_Model):
    """That an office offers a service, and how many time slots it takes there."""

    office_id: int
    service_id: int
    slots: int = 1
    public: bool = True
    max_quantity: int | None = None


class Catalogue(_Model):
    """The answer of ``offices-and-services/``: offices, services, relations."""

    offices: list[Office] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)

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

    office_id: int
    appointments: list[datetime] = Field(default_factory=list)


class AvailableDay(_Model):
    """A bookable day. Only the first bookable day of the slots window has times."""

    date: date
    provider_ids: Annotated[list[int], BeforeValidator(_csv_ints)] = Field(
        default_factory=list,
        validation_alias=AliasChoices("providerIDs", "providerIds"),
    )
    offices: list[OfficeSlots] = Field(default_factory=list)


class Slot(_Model):
    """One free slot: an office and a start time."""

    office_id: int
    start: datetime

    @property
    def timestamp(self) -> int:
        """The Unix timestamp the city expects when reserving."""
        return int(self.start.timestamp())


class AvailableCalendar(_Model):
    """The answer of ``available-calendar/``."""

    start_date: date
    end_date: date
    slots_start_date: date | None = None
    slots_end_date: date | None = None
    prev_bookable_date: date | None = None
    next_bookable_date: date | None = None
    available_days: Annotated[list[AvailableDay], BeforeValidator(_empty_list)] = Field(
        default_factory=list
    )

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
    """The answer of ``captcha-details/``."""

    site_key: str | None = None
    captcha_challenge: str | None = None
    captcha_verify: str | None = None
    captcha_enabled: bool = False


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


def _status(value: Any) -> Any:
    """Keep parsing when the city adds a state this version does not know."""
    if isinstance(value, str) and value not in AppointmentStatus.__members__.values():
        return AppointmentStatus.UNKNOWN
    return value


class SubRequestCount(_Model):
    """A further service of a multi-service appointment."""

    id: int
    name: str | None = None
    count: int = 1


class Appointment(_Model):
    """An appointment ("ThinnedProcess"): what reserve, update, … return.

    ``process_id`` and ``auth_key`` are the only credentials of a booking;
    they, the captcha token and the person's data are hidden from ``repr``.
    """

    process_id: int
    timestamp: datetime | None = None
    auth_key: str = Field(default="", repr=False)
    family_name: str | None = Field(default=None, repr=False)
    custom_textfield: str | None = Field(default=None, repr=False)
    custom_textfield2: str | None = Field(default=None, repr=False)
    email: str | None = Field(default=None, repr=False)
    telephone: str | None = Field(default=None, repr=False)
    office_name: str | None = None
    office_id: int | None = None
    scope: Scope | None = None
    sub_request_counts: Annotated[
        list[SubRequestCount], BeforeValidator(_empty_list)
    ] = Field(default_factory=list)
    service_id: int | None = None
    service_name: str | None = None
    service_count: int | None = None
    status: Annotated[AppointmentStatus, BeforeValidator(_status)] = (
        AppointmentStatus.UNKNOWN
    )
    captcha_token: str | None = Field(default=None, repr=False)
    slot_count: int | None = None
    display_number: str | None = None
    ics_content: str | None = Field(default=None, repr=False)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_from_string(cls, value: Any) -> Any:
        # The city sends the Unix time as a string here ("1760455200").
        if isinstance(value, str) and value.strip().isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
        return value

    @property
    def credentials(self) -> ProcessCredentials:
        """The process id and auth key that later calls need."""
        return ProcessCredentials(process_id=self.process_id, auth_key=self.auth_key)


# --- requests ----------------------------------------------------------------------

# The city's own e-mail check (validateAppointmentUpdateFields): no "+" anywhere.
EMAIL_PATTERN = re.compile(
    r"^(?!.*\.\.)(?!\.)(?!.*\.$)[^\s@+]+(?<!\.)@(?!\.)[^\s@+]+\.[^\s@]{2,}$"
)
TELEPHONE_PATTERN = re.compile(r"^\+?[0-9]\d{6,14}$")
AUTH_KEY_PATTERN = re.compile(r"^(?:[0-9a-fA-F]{4}|[0-9a-fA-F]{64})$")
MAX_CUSTOM_TEXT = 250
MAX_SERVICE_COUNT = 25
MAX_RANGE_DAYS = 365
MAX_ID = 2**31 - 1


class _Request(BaseModel):
    """Base of request models: strict about unknown names, quiet about values."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )


def validated[T: BaseModel](model: type[T], **values: Any) -> T:
    """Build a request model, turning pydantic errors into MTAValidationError.

    The error names the field and what is wrong, never the value.
    """
    try:
        return model(**values)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or model.__name__
        message = first["msg"].removeprefix("Value error, ")
        raise MTAValidationError(field, message) from None


class ServiceRequest(_Request):
    """A service and how many times it is needed (1-25)."""

    service_id: int = Field(gt=0, le=MAX_ID)
    count: int = Field(default=1, ge=1, le=MAX_SERVICE_COUNT)


class ProcessCredentials(_Request):
    """The process id and auth key of an appointment."""

    process_id: int = Field(gt=0, le=MAX_ID)
    auth_key: str = Field(repr=False)

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
        part encodes ``{"id": processId, "authKey": key}``, often with its
        ``=`` padding stripped. The bare base64 part is accepted too.
        """
        token = unquote(link.strip()).rstrip("/").rsplit("/", 1)[-1]
        token += "=" * (-len(token) % 4)
        try:
            raw = base64.b64decode(token.replace("-", "+").replace("_", "/"))
            data = json.loads(raw)
            process_id, auth_key = data["id"], data["authKey"]
        except (binascii.Error, ValueError, TypeError, KeyError):
            msg = "not an activation link of the city's booking system"
            raise MTAValidationError("link", msg) from None
        return validated(cls, process_id=int(process_id), auth_key=str(auth_key))


class ContactDetails(_Request):
    """The person's data for ``update-appointment/``.

    Checked here with the city's own rules, so that a mistake is reported
    before a reserved slot is put at risk.
    """

    family_name: str = Field(repr=False)
    email: str | None = Field(default=None, repr=False)
    telephone: str | None = Field(default=None, repr=False)
    custom_textfield: str | None = Field(default=None, repr=False)
    custom_textfield2: str | None = Field(default=None, repr=False)

    @field_validator("family_name")
    @classmethod
    def _name_present(cls, value: str) -> str:
        value = value.strip()
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
        if not EMAIL_PATTERN.match(value):
            msg = "is not an address the city accepts (no '+' allowed)"
            raise ValueError(msg)
        return value

    @field_validator("telephone")
    @classmethod
    def _telephone_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = re.sub(r"[\s/()-]", "", value)
        if not TELEPHONE_PATTERN.match(compact):
            msg = "must be 7 to 15 digits, optionally with a leading '+'"
            raise ValueError(msg)
        return compact

    @field_validator("custom_textfield", "custom_textfield2")
    @classmethod
    def _custom_length(cls, value: str | None) -> str | None:
        if value is not None and len(value.strip()) > MAX_CUSTOM_TEXT:
            msg = f"must be at most {MAX_CUSTOM_TEXT} characters"
            raise ValueError(msg)
        return value

    def check_against(self, scope: Scope | None) -> None:
        """Check the details against what an office's scope requires."""
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
            if needed and not (value and value.strip()):
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


def check_date_range(start: date, end: date, *, field: str = "end_date") -> None:
    """Check a date range the way the city does (ordered, at most 365 days)."""
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise MTAValidationError(field, "must be a date, not a datetime")
    if end < start:
        raise MTAValidationError(field, "must not be before the start date")
    if (end - start).days > MAX_RANGE_DAYS:
        raise MTAValidationError(field, f"range must be at most {MAX_RANGE_DAYS} days")
