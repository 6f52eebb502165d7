"""``mta book``, ``mta cancel`` and ``mta confirm``.

Booking is honest: reserve, fill in the person's data, pre-confirm, and
leave the activation to the person, who gets the city's e-mail - the
library's one booking flow, :func:`mta_client.booking.book_slot`. When a step
after the reservation fails, the reservation is cancelled so that the slot is
free for others again, and the command says whether that worked. Personal
data is never printed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import os
from typing import TYPE_CHECKING, Any

from mta_client.booking import BookingStep, book_slot
from mta_client.client import BERLIN
from mta_client.models import ContactDetails, ProcessCredentials, validated

from .exitcodes import CLIError, ExitCode, describe
from .output import format_clock, format_time, iso_berlin
from .slots import fetch_calendar

if TYPE_CHECKING:
    from datetime import datetime

    from mta_client.booking import BookedAppointment, BookingProgress
    from mta_client.client import MTAClient
    from mta_client.models import Appointment, Catalogue, Scope, Slot

    from .output import Output
    from .slots import SlotQuery

__all__ = [
    "BookingRequest",
    "book",
    "cancel",
    "choose_slot",
    "confirm",
    "contact_from",
]


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


async def choose_slot(
    client: MTAClient, request: BookingRequest, contact: ContactDetails
) -> Slot:
    """Find the slot to reserve: the earliest, or the one asked for.

    The person's data is checked against every office's rules first, so
    that a mistake costs no request.
    """
    query = request.query
    for office in query.offices:
        contact.check_against(office.scope)
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
    slot: Slot,
    contact: ContactDetails,
    catalogue: Catalogue,
) -> ExitCode:
    """Reserve ``slot``, update and pre-confirm (:func:`mta_client.booking.book_slot`).

    ``slot`` is what :func:`choose_slot` found. A reservation a later step
    cannot use is cancelled by the flow; the command says whether that
    worked. Ctrl-C after the reservation cancels it too: nothing would
    resume this booking.
    """
    steps = _StepReporter(out)
    try:
        booked = await book_slot(
            client,
            office_id=slot.office_id,
            services=list(request.query.services),
            slot=slot,
            contact=contact,
            on_step=steps,
            scope=_scope_of(catalogue, slot.office_id),
        )
    except asyncio.CancelledError:
        if steps.held is not None:
            await _release(client, steps, steps.held)
        raise
    _report_booking(out, booked=booked, request=request)
    return ExitCode.OK


@dataclass
class _StepReporter:
    """Follows the booking's steps; reports how a failed attempt ended."""

    out: Output
    held: ProcessCredentials | None = None
    reservation_minutes: int | None = None

    def __call__(self, progress: BookingProgress) -> None:
        """Note the credentials while held; report the release of a failed one."""
        match progress.step:
            case BookingStep.RESERVED:
                self.held = progress.credentials
                scope = progress.scope
                self.reservation_minutes = scope.reservation_duration if scope else None
            case BookingStep.BOOKED:
                self.held = None
            case BookingStep.RELEASED:
                self.held = None
                self.released(progress.credentials)
            case BookingStep.RELEASE_FAILED:
                self.held = None
                self.release_failed(progress.cancel_error)
            case _:
                pass

    def released(self, credentials: ProcessCredentials | None) -> None:
        """Say that the reservation was cancelled."""
        number = credentials.process_id if credentials else "?"
        self.out.note(
            f"booking failed; reservation {number} was cancelled "
            "so the slot is free again"
        )

    def release_failed(self, err: BaseException | None) -> None:
        """Say that the reservation could not be cancelled."""
        minutes = self.reservation_minutes
        when = f" within {minutes} minutes" if minutes else ""
        why = describe(err) if err is not None else "unknown error"
        self.out.note(
            f"could not cancel the reservation ({why}); the city releases it{when}"
        )


async def _release(
    client: MTAClient, steps: _StepReporter, credentials: ProcessCredentials
) -> None:
    """Cancel a reservation left by an interrupted booking (best effort)."""
    try:
        await client.cancel_appointment(credentials=credentials)
    except Exception as err:  # noqa: BLE001 - reported; the interrupt wins
        steps.release_failed(err)
    else:
        steps.released(credentials)


def _report_booking(
    out: Output, *, booked: BookedAppointment, request: BookingRequest
) -> None:
    appointment = booked.appointment
    slot = booked.slot
    minutes = booked.activation_minutes
    deadline = booked.activation_deadline
    office = appointment.office_name or request.query.office_names.get(slot.office_id)
    document: dict[str, Any] = {
        "process_id": booked.process_id,
        "status": appointment.status.value,
        "start": iso_berlin(slot.start),
        "timestamp": slot.timestamp,
        "office_id": slot.office_id,
        "office_name": office,
        "activation_deadline": iso_berlin(deadline),
        "activation_minutes": minutes,
    }
    if request.show_credentials:
        document["auth_key"] = booked.credentials.auth_key or None
    out.result(document)
    out.text(f"Pre-confirmed appointment {booked.process_id}")
    out.text(f"  time:    {format_time(slot.start)} (Europe/Berlin)")
    out.text(f"  office:  {office} ({slot.office_id})")
    if request.show_credentials:
        out.text(f"  auth key: {booked.credentials.auth_key}")
    out.text("The city will e-mail an activation link to the address given.")
    out.text(
        f"Click it (or run `mta confirm LINK`) by {format_clock(deadline)} "
        f"({minutes} minutes), or the appointment is released."
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
