"""The whole booking flow, end to end over HTTP, with a real proof of work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from mta_client import (
    AppointmentStatus,
    ContactDetails,
    MTAAppointmentNotAvailableError,
    MTAAppointmentNotFoundError,
    MTAAuthKeyMismatchError,
    MTAClient,
    MTAInvalidLocationAndServiceCombinationError,
    MTAProcessNotReservedAnymoreError,
    MTASlotUnavailableError,
    MTATooManyAppointmentsWithSameMailError,
    MTAValidationError,
    ProcessCredentials,
)
from mta_client.captcha import token_expiry

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import SimClock

RUPPERTSTRASSE = 10489
PASING = 54261
NOTFALL = 10461  # one appointment per e-mail address (scope 305)
WOHNSITZ = 1063475
NOTFALL_SERVICE = 10339028
CONTACT = ContactDetails(family_name="Mustermann", email="erika@example.org")
# Notfall-Hilfe also requires a telephone number and a remark.
NOTFALL_CONTACT = ContactDetails(
    family_name="Mustermann",
    email="erika@example.org",
    telephone="+4989123456",
    custom_textfield="Aufenthaltstitel läuft ab",
)


async def test_full_booking_flow(client: MTAClient, sim: Simulator) -> None:
    catalogue = await client.get_catalogue()
    office = catalogue.office(RUPPERTSTRASSE)
    assert office is not None
    assert office.captcha_required
    assert WOHNSITZ in catalogue.services_at(RUPPERTSTRASSE)

    token = await client.get_captcha_token()
    assert token.count(".") == 2  # a JWT from the simulator's verify route
    assert token_expiry(token) is not None
    assert sim.stats.captcha_verifies == 1

    calendar = await client.get_available_calendar(
        office_ids=[RUPPERTSTRASSE, PASING], services={WOHNSITZ: 1}
    )
    assert calendar.bookable_dates
    slots = calendar.slots
    assert slots
    assert {s.office_id for s in slots} == {RUPPERTSTRASSE, PASING}
    assert all(s.start > datetime.now(UTC) for s in slots)
    # The cached token served the calendar: no second proof of work.
    assert sim.stats.captcha_verifies == 1

    slot = slots[0]
    reserved = await client.reserve_appointment(
        office_id=slot.office_id, services={WOHNSITZ: 1}, timestamp=slot
    )
    assert reserved.status is AppointmentStatus.RESERVED
    assert reserved.timestamp == slot.start
    assert len(reserved.auth_key) == 64
    assert reserved.scope is not None
    assert reserved.scope.reservation_duration == 15

    updated = await client.update_appointment(credentials=reserved, contact=CONTACT)
    assert updated.status is AppointmentStatus.RESERVED
    assert updated.family_name == "Mustermann"

    preconfirmed = await client.preconfirm_appointment(credentials=reserved)
    assert preconfirmed.status is AppointmentStatus.PRECONFIRMED
    assert sim.bookings.processes[reserved.process_id].status == "preconfirmed"

    mails = sim.outbox.to_address("erika@example.org")
    assert [m.kind for m in mails] == ["preconfirmation"]
    link = sim.outbox.activation_link(reserved.process_id)
    assert "#/appointment/confirm/" in link

    confirmed = await client.confirm_from_link(link)
    assert confirmed.process_id == reserved.process_id
    assert confirmed.status is AppointmentStatus.CONFIRMED

    read = await client.get_appointment(credentials=reserved)
    assert read.status is AppointmentStatus.CONFIRMED
    assert read.office_id == slot.office_id

    cancelled = await client.cancel_appointment(credentials=reserved)
    assert cancelled.status is AppointmentStatus.DELETED
    assert sim.bookings.processes[reserved.process_id].status == "deleted"
    # The city rotates the key on cancel: the old credentials stop working.
    with pytest.raises(MTAAuthKeyMismatchError):
        await client.cancel_appointment(credentials=reserved)
    assert [m.kind for m in sim.outbox.to_address("erika@example.org")] == [
        "preconfirmation",
        "confirmation",
        "cancellation",
    ]


async def test_reserved_slot_disappears_from_the_calendar(
    client: MTAClient,
) -> None:
    calendar = await client.get_available_calendar(
        office_ids=[PASING], services=[WOHNSITZ]
    )
    slot = calendar.slots[0]
    await client.reserve_appointment(
        office_id=PASING, services=[WOHNSITZ], timestamp=slot.timestamp
    )
    day = slot.start.date()
    again = await client.get_available_calendar(
        office_ids=[PASING],
        services=[WOHNSITZ],
        slots_start_date=day,
        slots_end_date=day,
    )
    assert slot.timestamp not in {s.timestamp for s in again.slots}


async def test_slot_taken_by_someone_else(client: MTAClient, sim: Simulator) -> None:
    calendar = await client.get_available_calendar(
        office_ids=[RUPPERTSTRASSE], services=[WOHNSITZ]
    )
    slot = calendar.slots[0]
    assert sim.take_slot(RUPPERTSTRASSE, slot.timestamp) == 1
    with pytest.raises(MTASlotUnavailableError) as caught:
        await client.reserve_appointment(
            office_id=RUPPERTSTRASSE, services=[WOHNSITZ], timestamp=slot
        )
    assert isinstance(caught.value, MTAAppointmentNotAvailableError)
    assert caught.value.status == 404


async def test_per_mail_limit(client: MTAClient) -> None:
    calendar = await client.get_available_calendar(
        office_ids=[NOTFALL], services=[NOTFALL_SERVICE]
    )
    first, second = calendar.slots[0], calendar.slots[-1]
    booked = await client.reserve_appointment(
        office_id=NOTFALL, services=[NOTFALL_SERVICE], timestamp=first
    )
    await client.update_appointment(credentials=booked, contact=NOTFALL_CONTACT)
    await client.preconfirm_appointment(credentials=booked)

    another = await client.reserve_appointment(
        office_id=NOTFALL, services=[NOTFALL_SERVICE], timestamp=second
    )
    with pytest.raises(MTATooManyAppointmentsWithSameMailError) as caught:
        await client.update_appointment(credentials=another, contact=NOTFALL_CONTACT)
    assert caught.value.status == 406
    # The reservation that cannot be used is given back.
    await client.cancel_appointment(credentials=another)


async def test_state_errors(client: MTAClient, sim_clock: SimClock) -> None:
    calendar = await client.get_available_calendar(
        office_ids=[PASING], services=[WOHNSITZ]
    )
    reserved = await client.reserve_appointment(
        office_id=PASING, services=[WOHNSITZ], timestamp=calendar.slots[0]
    )
    await client.update_appointment(credentials=reserved, contact=CONTACT)
    await client.preconfirm_appointment(credentials=reserved)
    with pytest.raises(MTAProcessNotReservedAnymoreError):
        await client.preconfirm_appointment(credentials=reserved)
    # After the activation time (30 min) the city drops the appointment.
    sim_clock.advance(31 * 60 + 60)
    with pytest.raises(MTAAppointmentNotFoundError):
        await client.confirm_appointment(credentials=reserved)


async def test_validation_errors(client: MTAClient, sim: Simulator) -> None:
    # Caught by the client, never sent:
    with pytest.raises(MTAValidationError) as caught:
        await client.get_available_calendar(
            office_ids=[PASING], services={WOHNSITZ: 26}
        )
    assert caught.value.field == "count"
    with pytest.raises(MTAValidationError):
        ProcessCredentials.from_activation_link("https://example.org/#/nothing")
    sent_before = sum(sim.stats.requests_by_route.values())

    # Rejected by the server:
    with pytest.raises(MTAInvalidLocationAndServiceCombinationError) as server_said:
        await client.get_available_calendar(office_ids=[10308013], services=[WOHNSITZ])
    assert server_said.value.status == 400
    with pytest.raises(MTAAppointmentNotFoundError):
        await client.get_appointment(
            credentials=ProcessCredentials(process_id=1, auth_key="abcd")
        )
    assert sum(sim.stats.requests_by_route.values()) > sent_before
