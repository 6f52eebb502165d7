"""What the person hears of a lapsed (or elsewhere confirmed) booking."""

from __future__ import annotations

from datetime import UTC, datetime
import io

from mta_client.alerts import AlertKind, format_event
from mta_client.booking import ACTIVATION_LAPSED
from mta_client.cli.output import Output
from mta_client.cli.watching import WatchPrinter
from mta_client.watch import BookingEvent, BookingState


def lapsed_event() -> BookingEvent:
    return BookingEvent(
        state=BookingState.LAPSED,
        watch_id="w",
        office_id=10489,
        start=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        process_id=182201,
        reason=ACTIVATION_LAPSED,
    )


def test_the_alert_tells_the_person_the_activation_lapsed() -> None:
    english = format_event(lapsed_event(), language="en")
    assert english.kind is AlertKind.BOOKING
    assert english.title == "Activation lapsed: Tue 24 Nov 2026, 09:00"
    assert "Booking number: 182201" in english.message
    assert "not used in time" in english.message
    assert "may book again" in english.message
    german = format_event(lapsed_event(), language="de")
    assert german.title.startswith("Aktivierung verfallen: ")
    assert "nicht rechtzeitig" in german.message


def test_mta_watch_prints_lapsed_and_confirmed_and_does_not_call_them_failures() -> (
    None
):
    stdout = io.StringIO()
    printer = WatchPrinter(
        out=Output(stdout=stdout, stderr=io.StringIO()),
        names={10489: "Bürgerbüro Ruppertstraße"},
    )
    printer(lapsed_event())
    confirmed = BookingEvent(
        state=BookingState.CONFIRMED,
        watch_id="w",
        office_id=10489,
        start=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        process_id=182201,
    )
    printer(confirmed)
    lapsed_line, confirmed_line = stdout.getvalue().splitlines()
    assert lapsed_line.startswith("lapsed  ")
    assert "process 182201" in lapsed_line
    assert ACTIVATION_LAPSED in lapsed_line
    assert "may book again" in lapsed_line
    assert confirmed_line.startswith("confirmed  ")
    assert "Bürgerbüro Ruppertstraße (10489)" in confirmed_line
    assert printer.failed_booking is None
