"""Between a watch subentry's data and the library's :class:`Watch`.

The subentry stores plain JSON (what the config flow asked); the library's
models check it. Both the subentry flow and the setup build the watch here,
so what the flow accepted is exactly what the engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from mta_client import Catalogue, ContactDetails, MTAValidationError, Office, Scope
from mta_client.models import ServiceRequest, validated
from mta_client.watch import Watch

from .const import (
    CONF_AUTO_BOOK,
    CONF_CONTACT,
    CONF_COUNT,
    CONF_CUSTOM_TEXTFIELD,
    CONF_CUSTOM_TEXTFIELD2,
    CONF_END_DATE,
    CONF_FAMILY_NAME,
    CONF_MIN_LEAD,
    CONF_OFFICE_IDS,
    CONF_SERVICE_ID,
    CONF_SERVICES,
    CONF_START_DATE,
    CONF_TELEPHONE,
    CONF_TIME_RANGES,
    CONF_WEEKDAYS,
    CONF_WITHIN_DAYS,
    CONTACT_FIELDS,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mta_client.watch import Urgency

# How urgent a watch is (the library's Watch.urgency: requests traded for
# detection time). Subentries from before it was asked for have no such key
# and run as "normal", the library's default.
CONF_URGENCY = "urgency"
DEFAULT_URGENCY: Urgency = "normal"


@dataclass(frozen=True, kw_only=True)
class ContactProblem(Exception):  # noqa: N818 - a result, raised like an error
    """The person's data does not suit an office (or the city at all).

    ``error`` is the translation key of the form error, ``field`` the form
    field it belongs to, ``office`` the office's name where one is to blame.
    """

    field: str
    error: str
    office: str = ""


def duration(value: Mapping[str, Any] | None) -> timedelta:
    """A DurationSelector value as a timedelta."""
    if not value:
        return timedelta(0)
    return timedelta(
        days=float(value.get("days", 0)),
        hours=float(value.get("hours", 0)),
        minutes=float(value.get("minutes", 0)),
        seconds=float(value.get("seconds", 0)),
    )


def clean_contact(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """The filled-in contact fields only, stripped."""
    if not raw:
        return {}
    return {
        key: str(raw[key]).strip()
        for key in CONTACT_FIELDS
        if raw.get(key) is not None and str(raw[key]).strip()
    }


def contact_details(raw: Mapping[str, Any] | None) -> ContactDetails | None:
    """The person's data as the library's model (None when no name is given).

    Raises:
        ContactProblem: a field breaks the city's rules.

    """
    values = clean_contact(raw)
    if not values:
        return None
    if CONF_FAMILY_NAME not in values:
        raise ContactProblem(field=CONF_FAMILY_NAME, error="family_name_required")
    try:
        return validated(ContactDetails, **values)
    except MTAValidationError as err:
        raise ContactProblem(field=err.field, error=f"invalid_{err.field}") from None


_OPTIONAL = (
    (CONF_TELEPHONE, "telephone_activated"),
    (CONF_CUSTOM_TEXTFIELD, "custom_textfield_activated"),
    (CONF_CUSTOM_TEXTFIELD2, "custom_textfield2_activated"),
)


def check_contact(contact: ContactDetails, offices: list[Office]) -> None:
    """Check the person's data as each office's scope will.

    A field an office requires must be filled in, and a field an office does
    not take at all must stay empty (the city would refuse the update).

    Raises:
        ContactProblem: the first mismatch.

    """
    for office in offices:
        scope: Scope | None = office.scope
        if scope is None:
            continue
        try:
            contact.check_against(scope)
        except MTAValidationError as err:
            raise ContactProblem(
                field=err.field, error=f"{err.field}_required", office=office.name
            ) from None
        for field, activated in _OPTIONAL:
            if getattr(contact, field) and not getattr(scope, activated):
                raise ContactProblem(
                    field=field, error=f"{field}_not_accepted", office=office.name
                )


def services_of(data: Mapping[str, Any]) -> list[ServiceRequest]:
    """The watch's services with their counts."""
    return [
        ServiceRequest(
            service_id=int(item[CONF_SERVICE_ID]), count=int(item[CONF_COUNT])
        )
        for item in data[CONF_SERVICES]
    ]


def urgency_of(data: Mapping[str, Any]) -> Any:
    """The watch's urgency as stored; ``normal`` when the subentry has none.

    A value that is no urgency is passed on for the :class:`Watch` to refuse.
    """
    return data.get(CONF_URGENCY) or DEFAULT_URGENCY


def build_watch(watch_id: str, data: Mapping[str, Any]) -> Watch:
    """The library's watch for a subentry.

    Raises:
        MTAValidationError: the data does not make a valid watch.
        ContactProblem: the person's data breaks the city's rules.

    """
    contact = contact_details(data.get(CONF_CONTACT))
    start = data.get(CONF_START_DATE)
    end = data.get(CONF_END_DATE)
    return validated(
        Watch,
        id=watch_id,
        services=services_of(data),
        office_ids=[int(o) for o in data[CONF_OFFICE_IDS]],
        start_date=date.fromisoformat(start) if start else None,
        end_date=date.fromisoformat(end) if end else None,
        within_days=data.get(CONF_WITHIN_DAYS),
        weekdays=list(data.get(CONF_WEEKDAYS) or range(7)),
        time_ranges=list(data.get(CONF_TIME_RANGES) or ()),
        min_lead=duration(data.get(CONF_MIN_LEAD)),
        auto_book=bool(data.get(CONF_AUTO_BOOK)) and contact is not None,
        contact=contact,
        urgency=urgency_of(data),
    )


def has_contact(data: Mapping[str, Any]) -> bool:
    """Whether the watch holds the person's data (so it can book)."""
    return CONF_FAMILY_NAME in clean_contact(data.get(CONF_CONTACT))


def service_label(catalogue: Catalogue | None, service_id: int) -> str:
    """A service's name, or its id when the catalogue does not know it."""
    service = catalogue.service(service_id) if catalogue else None
    return service.name if service else str(service_id)


def office_label(catalogue: Catalogue | None, office_id: int) -> str:
    """An office's name, or its id when the catalogue does not know it."""
    office = catalogue.office(office_id) if catalogue else None
    return office.name if office else str(office_id)


def appointment_minutes(
    catalogue: Catalogue | None, office_id: int, watch: Watch | None
) -> int | None:
    """How long the watch's appointment takes at an office, as the city counts.

    Each service takes the relation's number of the office's time slots, once
    per count; None when the catalogue does not tell.
    """
    office = catalogue.office(office_id) if catalogue else None
    if catalogue is None or office is None or watch is None:
        return None
    step = office.slot_time_in_minutes
    if not step:
        return None
    units = 0
    for request in watch.services:
        relation = next(
            (
                r
                for r in catalogue.relations
                if r.office_id == office_id and r.service_id == request.service_id
            ),
            None,
        )
        units += ((relation.slots if relation else None) or 1) * request.count
    return step * max(units, 1)
