"""Alert texts for watch events, in English and German."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mta_client.alerts import (
    Alert,
    AlertKind,
    alert_kind,
    booking_page_url,
    format_event,
    format_local_time,
    format_slot_events,
)
from mta_client.models import Catalogue, ContactDetails, ServiceRequest
from mta_client.telegram import InlineButton
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind, Watch

# 07:30 UTC in November is 08:30 in Munich (CET, UTC+1); in July 09:30 (CEST).
WINTER = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
SUMMER = datetime(2026, 7, 7, 7, 30, tzinfo=UTC)

TIMES = "\N{MULTIPLICATION SIGN}"
CATALOGUE = Catalogue.model_validate(
    {
        "offices": [{"id": 10489, "name": "Bürgerbüro Ruppertstraße"}],
        "services": [
            {"id": 1063453, "name": "Personalausweis"},
            {"id": 1063441, "name": "Reisepass"},
        ],
        "relations": [],
    }
)

SECRET_NAME = "Mustermann-Geheim"
SECRET_MAIL = "secret.person@example.test"
AUTH_KEY = "a1b2c3d4e5-secret-auth"


def slot_event(
    kind: SlotEventKind = SlotEventKind.NEW, start: datetime = WINTER
) -> SlotEvent:
    return SlotEvent(
        kind=kind,
        watch_id="passport",
        office_id=10489,
        start=start,
        services=((1063441, 1), (1063453, 2)),
        seen_at=0.0,
    )


def watch() -> Watch:
    return Watch(
        id="passport",
        services=[
            ServiceRequest(service_id=1063453, count=2),
            ServiceRequest(service_id=1063441),
        ],
        office_ids=[10489],
        auto_book=True,
        contact=ContactDetails(family_name=SECRET_NAME, email=SECRET_MAIL),
    )


def booked() -> BookingEvent:
    return BookingEvent(
        state=BookingState.BOOKED,
        watch_id="passport",
        office_id=10489,
        start=WINTER,
        process_id=123456,
        auth_key=AUTH_KEY,
        activation_deadline=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
    )


def assert_private(alert: Alert) -> None:
    everything = alert.text + repr(alert)
    for secret in (SECRET_NAME, SECRET_MAIL, AUTH_KEY):
        assert secret not in everything


def test_booking_page_url() -> None:
    assert booking_page_url(1063441, 10489) == (
        "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"
        "#/services/1063441/locations/10489"
    )


def test_local_time_in_munich() -> None:
    assert format_local_time(WINTER) == "Tue 24 Nov 2026, 08:30"
    assert format_local_time(SUMMER) == "Tue 7 Jul 2026, 09:30"
    assert format_local_time(WINTER, language="de") == "Di., 24.11.2026, 08:30 Uhr"
    assert format_local_time(SUMMER, language="de_DE") == "Di., 07.07.2026, 09:30 Uhr"


def test_new_slot_english() -> None:
    alert = format_event(slot_event(), catalogue=CATALOGUE, book_token="mt:7f3a")
    url = booking_page_url(1063441, 10489)
    assert alert.kind is AlertKind.NEW
    assert alert.title == "New appointment slot: Tue 24 Nov 2026, 08:30"
    assert alert.message == (
        "Office: Bürgerbüro Ruppertstraße\n"
        "Time: Tue 24 Nov 2026, 08:30 (Munich time)\n"
        f"Services: Reisepass, 2 {TIMES} Personalausweis\n"
        "Watch: passport\n"
        f"Book at: {url}"
    )
    assert alert.text == f"{alert.title}\n{alert.message}"
    assert alert.url == url
    assert alert.buttons == (
        (
            InlineButton("Book it", callback_data="mt:7f3a"),
            InlineButton("Open booking page", url=url),
        ),
    )


def test_new_slot_german_without_catalogue_or_token() -> None:
    alert = format_event(slot_event(start=SUMMER), language="de")
    assert alert.title == "Neuer freier Termin: Di., 07.07.2026, 09:30 Uhr"
    assert alert.message.splitlines()[:4] == [
        "Standort: Standort 10489",
        "Zeit: Di., 07.07.2026, 09:30 Uhr (Münchner Zeit)",
        f"Leistungen: Leistung 1063441, 2 {TIMES} Leistung 1063453",
        "Suche: passport",
    ]
    assert [b.text for b in alert.buttons[0]] == ["Buchungsseite öffnen"]


def test_gone_slot() -> None:
    alert = format_event(slot_event(SlotEventKind.GONE), catalogue=CATALOGUE)
    assert alert.kind is AlertKind.GONE
    assert alert.title == "Slot taken: Tue 24 Nov 2026, 08:30"
    assert alert.message.endswith("This slot is no longer offered.")
    assert alert.buttons == ()
    assert alert.url is None
    german = format_event(slot_event(SlotEventKind.GONE), language="de")
    assert german.title == "Termin vergeben: Di., 24.11.2026, 08:30 Uhr"


def test_slot_without_services_has_no_link() -> None:
    event = SlotEvent(
        kind=SlotEventKind.NEW,
        watch_id="w",
        office_id=1,
        start=WINTER,
        services=(),
        seen_at=0.0,
    )
    alert = format_event(event, book_token="t")
    assert alert.url is None
    assert alert.buttons == ((InlineButton("Book it", callback_data="t"),),)
    assert "Services" not in alert.message


def test_booked_english_keeps_private_data_out() -> None:
    alert = format_event(booked(), catalogue=CATALOGUE, watch=watch())
    assert alert.kind is AlertKind.BOOKING
    assert alert.title == "Appointment booked: Tue 24 Nov 2026, 08:30"
    assert alert.message == (
        "Office: Bürgerbüro Ruppertstraße\n"
        "Time: Tue 24 Nov 2026, 08:30 (Munich time)\n"
        f"Services: Reisepass, 2 {TIMES} Personalausweis\n"
        "Watch: passport\n"
        "Booking number: 123456\n"
        "Click the activation link in the city's e-mail by "
        "Fri 20 Nov 2026, 10:15, or the booking lapses."
    )
    assert alert.buttons == ()
    assert_private(alert)


def test_booked_german() -> None:
    alert = format_event(booked(), catalogue=CATALOGUE, watch=watch(), language="de")
    assert alert.title == "Termin gebucht: Di., 24.11.2026, 08:30 Uhr"
    assert "Vorgangsnummer: 123456" in alert.message
    assert (
        "Bitte den Aktivierungslink in der E-Mail der Stadt bis "
        "Fr., 20.11.2026, 10:15 Uhr anklicken, sonst verfällt die Buchung."
    ) in alert.message
    assert_private(alert)


def test_booked_without_deadline() -> None:
    event = BookingEvent(state=BookingState.BOOKED, watch_id="w", start=WINTER)
    alert = format_event(event)
    assert alert.message.splitlines() == [
        "Time: Tue 24 Nov 2026, 08:30 (Munich time)",
        "Watch: w",
        "Click the activation link in the city's e-mail soon, or the booking lapses.",
    ]


@pytest.mark.parametrize(
    ("state", "title", "last"),
    [
        (
            BookingState.FAILED,
            "Booking failed",
            "No more automatic tries for this watch.",
        ),
        (BookingState.IDLE, "Booking attempt failed", "A later look may try again."),
    ],
)
def test_failed_booking(state: BookingState, title: str, last: str) -> None:
    event = BookingEvent(
        state=state,
        watch_id="w",
        office_id=10489,
        start=WINTER,
        reason="MTAInvalidEmailError (invalidEmail)",
    )
    alert = format_event(event, catalogue=CATALOGUE)
    assert alert.title == title
    lines = alert.message.splitlines()
    assert lines[-2:] == ["Reason: MTAInvalidEmailError (invalidEmail)", last]


def test_an_unanswered_preconfirmation_and_how_it_settled() -> None:
    unanswered = BookingEvent(
        state=BookingState.PRECONFIRMING,
        watch_id="w",
        office_id=10489,
        start=WINTER,
        process_id=182201,
        reason="MTATimeoutError",
        released=False,
    )
    alert = format_event(unanswered, catalogue=CATALOGUE)
    assert alert.title == "Booking not answered: Tue 24 Nov 2026, 08:30"
    assert "Booking number: 182201" in alert.message
    assert "books nothing else until it knows" in alert.message
    german = format_event(unanswered, catalogue=CATALOGUE, language="de")
    assert german.title == "Buchung ohne Antwort: Di., 24.11.2026, 08:30 Uhr"

    settled = BookingEvent(
        state=BookingState.IDLE,
        watch_id="w",
        office_id=10489,
        start=WINTER,
        reason="unanswered",
    )
    alert = format_event(settled, catalogue=CATALOGUE)
    assert alert.title == "No booking held: Tue 24 Nov 2026, 08:30"
    assert alert.message.splitlines()[-1] == (
        "The city holds no appointment from the unanswered booking. "
        "The watch may book again."
    )


def test_booking_step_and_unknown_state() -> None:
    event = BookingEvent(state=BookingState.RESERVED, watch_id="w")
    assert format_event(event).title == "Booking: slot reserved"
    assert format_event(event, language="de").title == "Buchung: Termin reserviert"


def test_unknown_language_is_english() -> None:
    assert format_event(slot_event(), language="fr").title.startswith("New")


def test_alert_kind() -> None:
    assert alert_kind(slot_event()) is AlertKind.NEW
    assert alert_kind(slot_event(SlotEventKind.GONE)) is AlertKind.GONE
    assert alert_kind(booked()) is AlertKind.BOOKING


def test_book_token_is_checked() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        format_event(slot_event(), book_token="x" * 65)


def many(kind: SlotEventKind, count: int) -> list[SlotEvent]:
    return [
        SlotEvent(
            kind=kind,
            watch_id="passport",
            office_id=10489,
            start=WINTER.replace(minute=30 + 5 * i)
            if i < 6
            else WINTER.replace(hour=9),
            services=((1063441, 1),),
            seen_at=0.0,
        )
        for i in reversed(range(count))
    ]


def test_many_new_slots_in_one_alert() -> None:
    alert = format_slot_events(
        many(SlotEventKind.NEW, 7), catalogue=CATALOGUE, book_token="tok", limit=3
    )
    url = booking_page_url(1063441, 10489)
    assert alert.kind is AlertKind.NEW
    assert alert.title == "7 new appointment slots, the earliest Tue 24 Nov 2026, 08:30"
    assert alert.message == (
        "• Tue 24 Nov 2026, 08:30, Bürgerbüro Ruppertstraße\n"
        "• Tue 24 Nov 2026, 08:35, Bürgerbüro Ruppertstraße\n"
        "• Tue 24 Nov 2026, 08:40, Bürgerbüro Ruppertstraße\n"
        "… and 4 more\n"
        "Services: Reisepass\n"
        "Watch: passport\n"
        f"Book at: {url}"
    )
    assert alert.buttons == (
        (
            InlineButton("Book it", callback_data="tok"),
            InlineButton("Open booking page", url=url),
        ),
    )


def test_many_gone_slots_german() -> None:
    alert = format_slot_events(many(SlotEventKind.GONE, 2), language="de")
    assert alert.kind is AlertKind.GONE
    assert alert.title == "2 Termine vergeben, der früheste Di., 24.11.2026, 08:30 Uhr"
    assert alert.buttons == ()
    assert "… und" not in alert.message


def test_one_slot_event_is_the_single_alert() -> None:
    [event] = many(SlotEventKind.NEW, 1)
    assert format_slot_events([event]) == format_event(event)


def test_slot_events_must_be_of_one_kind() -> None:
    with pytest.raises(ValueError, match="no events"):
        format_slot_events([])
    mixed = [*many(SlotEventKind.NEW, 1), *many(SlotEventKind.GONE, 1)]
    with pytest.raises(ValueError, match="one kind"):
        format_slot_events(mixed)


def test_watch_names_replace_ids() -> None:
    names = {"passport": "Anna's passport"}
    single = format_event(slot_event(), watch_names=names)
    assert "Watch: Anna's passport" in single.message
    batch = format_slot_events(many(SlotEventKind.NEW, 2), watch_names=names)
    assert "Watch: Anna's passport" in batch.message
    booking = format_event(booked(), watch_names={}, language="de")
    assert "Suche: passport" in booking.message
