"""``mta book``, ``mta cancel`` and ``mta confirm``.

Booking is honest: reserve, fill in the person's data, pre-confirm, and
leave the activation to the person, who gets the city's e-mail. When a step
after the reservation fails, the reservation is cancelled so that the slot is
free for others again. Personal data is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import os
from typing import TYPE_CHECKING, Any

from mta_client.client import BERLIN
from mta_client.models import ContactDetails, ProcessCredentials, validated

from .exitcodes import CLIError, ExitCode, describe
from .output import format_clock, format_time, iso_berlin
from .slots import fetch_calendar

if TYPE_CHECKING:
    from mta_client.client import MTAClient
    from mta_client.models import Appointment, Catalogue, Scope, Slot

    from .output import Output
    from .slots import SlotQuery

__all__ = ["BookingRequest", "book", "cancel", "confirm", "contact_from"]


@dataclass(frozen=True, kw_only=True)
class BookingRequest:
    """Which slot to book: a given start, or the earliest free one."""

    query: SlotQuery
    slot: datetime | None
    show_credentials: bool = False


def contact_from(
    *,
    name: str | None,
    email: str | None,
    phone: str | None,
    text: str | None,
    text2: str | None = None,
    environ: dict[str, str] | None = None,
) -> ContactDetails:
    """Build the person's data from options or ``MTA_NAME``/``MTA_EMAIL``/``MTA_PHONE``.

    Checked with the city's rules before anything is reserved.
    """
    env = os.environ if environ is None else environ
    name = name or env.get("MTA_NAME")
    if not name:
        msg = "invalid --name: a family name is required (--name or $MTA_NAME)"
        raise CLIError(msg, ExitCode.USAGE)
    return validated(
        ContactDetails,
        family_name=name,
        email=email or env.get("MTA_EMAIL") or None,
        telephone=phone or env.get("MTA_PHONE") or None,
        custom_textfield=text,
        custom_textfield2=text2,
    )


async def _choose_slot(client: MTAClient, request: BookingRequest) -> Slot:
    """Find the slot to reserve: the earliest, or the one asked for."""
    query = request.query
    if request.slot is not None:
        day = request.slot.astimezone(BERLIN).date()
        query = type(query)(services=query.services, offices=query.offices, day=day)
    calendar = await fetch_calendar(client, query)
    slots = calendar.slots
    if request.slot is None:
        if not slots:
            raise CLIError("no free slots", ExitCode.NOTHING_FOUND)
        return slots[0]
    wanted = int(request.slot.timestamp())
    for slot in slots:
        if slot.timestamp == wanted:
            return slot
    msg = f"the slot {format_time(request.slot)} is not free (any more)"
    raise CLIError(msg, ExitCode.SLOT_TAKEN)


def _scope_of(catalogue: Catalogue, office_id: int) -> Scope | None:
    office = catalogue.office(office_id)
    return office.scope if office else None


async def book(
    client: MTAClient,
    out: Output,
    request: BookingRequest,
    *,
    contact: ContactDetails,
    catalogue: Catalogue,
) -> ExitCode:
    """Reserve, update and pre-confirm; cancel the reservation if that fails."""
    # Check the data against every office's rules before a slot is taken.
    for office in request.query.offices:
        contact.check_against(office.scope)
    slot = await _choose_slot(client, request)
    reserved = await client.reserve_appointment(
        office_id=slot.office_id,
        services=list(request.query.services),
        timestamp=slot.timestamp,
    )
    try:
        await client.update_appointment(credentials=reserved, contact=contact)
        booked = await client.preconfirm_appointment(credentials=reserved)
    except BaseException:
        await _release(client, out, reserved)
        raise
    preconfirmed_at = datetime.now(UTC).replace(microsecond=0)
    scope = booked.scope or reserved.scope or _scope_of(catalogue, slot.office_id)
    _report_booking(
        out,
        booked=booked,
        slot=slot,
        scope=scope,
        preconfirmed_at=preconfirmed_at,
        request=request,
    )
    return ExitCode.OK


async def _release(client: MTAClient, out: Output, reserved: Appointment) -> None:
    """Cancel a reservation that will not be used (best effort, reported)."""
    try:
        await client.cancel_appointment(credentials=reserved)
    except Exception as err:  # noqa: BLE001 - reported, the first error wins
        minutes = reserved.scope.reservation_duration if reserved.scope else None
        when = f" within {minutes} minutes" if minutes else ""
        out.note(
            f"could not cancel the reservation ({describe(err)}); "
            f"the city releases it{when}"
        )
    else:
        out.note(
            f"booking failed; reservation {reserved.process_id} was cancelled "
            "so the slot is free again"
        )


def _report_booking(
    out: Output,
    *,
    booked: Appointment,
    slot: Slot,
    scope: Scope | None,
    preconfirmed_at: datetime,
    request: BookingRequest,
) -> None:
    minutes = scope.activation_duration if scope else None
    deadline = preconfirmed_at + timedelta(minutes=minutes) if minutes else None
    office = booked.office_name or request.query.office_names.get(slot.office_id)
    document: dict[str, Any] = {
        "process_id": booked.process_id,
        "status": booked.status.value,
        "start": iso_berlin(slot.start),
        "timestamp": slot.timestamp,
        "office_id": slot.office_id,
        "office_name": office,
        "activation_deadline": iso_berlin(deadline) if deadline else None,
        "activation_minutes": minutes,
    }
    if request.show_credentials:
        document["auth_key"] = booked.auth_key or None
    out.result(document)
    out.text(f"Pre-confirmed appointment {booked.process_id}")
    out.text(f"  time:    {format_time(slot.start)} (Europe/Berlin)")
    out.text(f"  office:  {office} ({slot.office_id})")
    if request.show_credentials:
        out.text(f"  auth key: {booked.auth_key}")
    until = (
        f"by {format_clock(deadline)} ({minutes} minutes)"
        if deadline
        else "soon (the city's deadline is short)"
    )
    out.text("The city will e-mail an activation link to the address given.")
    out.text(
        f"Click it (or run `mta confirm LINK`) {until}, or the appointment is released."
    )


def credentials_from(
    *, link: str | None, process_id: int | None, auth_key: str | None
) -> ProcessCredentials:
    """Read credentials from a link, or from ``--process-id`` and ``--auth-key``."""
    if link:
        if process_id is not None or auth_key:
            msg = "give either LINK or --process-id with --auth-key, not both"
            raise CLIError(msg, ExitCode.USAGE)
        return ProcessCredentials.from_activation_link(link)
    auth_key = auth_key or os.environ.get("MTA_AUTH_KEY")
    if process_id is None or not auth_key:
        msg = "give the e-mail LINK, or --process-id and --auth-key ($MTA_AUTH_KEY)"
        raise CLIError(msg, ExitCode.USAGE)
    return validated(ProcessCredentials, process_id=process_id, auth_key=auth_key)


def _appointment_json(appointment: Appointment) -> dict[str, Any]:
    return {
        "process_id": appointment.process_id,
        "status": appointment.status.value,
        "start": iso_berlin(appointment.timestamp) if appointment.timestamp else None,
        "office_id": appointment.office_id,
        "office_name": appointment.office_name,
    }


def _appointment_text(out: Output, title: str, appointment: Appointment) -> None:
    out.text(f"{title} {appointment.process_id} ({appointment.status.value})")
    if appointment.timestamp:
        out.text(f"  time:    {format_time(appointment.timestamp)} (Europe/Berlin)")
    if appointment.office_name:
        out.text(f"  office:  {appointment.office_name} ({appointment.office_id})")


async def cancel(
    client: MTAClient, out: Output, credentials: ProcessCredentials
) -> ExitCode:
    """Cancel an appointment."""
    cancelled = await client.cancel_appointment(credentials=credentials)
    out.result(_appointment_json(cancelled))
    _appointment_text(out, "Cancelled appointment", cancelled)
    return ExitCode.OK


async def confirm(client: MTAClient, out: Output, link: str) -> ExitCode:
    """Activate an appointment from the link in the city's e-mail."""
    confirmed = await client.confirm_from_link(link)
    out.result(_appointment_json(confirmed))
    _appointment_text(out, "Confirmed appointment", confirmed)
    return ExitCode.OK
