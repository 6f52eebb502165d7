"""``mta book``, ``confirm`` and ``cancel``: honest booking, private data."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from mta_client.cli import ExitCode
from mta_client.client import BERLIN

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Result, Run

FUEHRERSCHEIN = 10308174  # no captcha; e-mail required; two per address
UMSCHREIBUNG = 1071896
PASING = 54261
RUPPERTSTRASSE = 10489
WOHNSITZ = 1063475
NAME = "Geheimnisvoll-Mustermann"
EMAIL = "geheim.person@example.org"
PHONE = "+4989555123"
BOOK = ("book", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))


@pytest.fixture(autouse=True)
def _person(monkeypatch: pytest.MonkeyPatch) -> None:
    """Personal data comes from the environment, as the help recommends."""
    monkeypatch.setenv("MTA_NAME", NAME)
    monkeypatch.setenv("MTA_EMAIL", EMAIL)


def assert_private(result: Result, *secrets: str) -> None:
    for secret in (NAME, EMAIL, PHONE, *secrets):
        assert secret not in result.out
        assert secret not in result.err


def test_book_earliest_confirm_and_cancel(mta: Run, sim: Simulator) -> None:
    result = mta(*BOOK, "--earliest")
    assert result.code == 0, result.err
    assert_private(result)
    (process,) = sim.bookings.processes.values()
    assert process.status == "preconfirmed"
    assert process.family_name == NAME
    assert process.email == EMAIL
    lines = result.out.splitlines()
    assert lines[0] == f"Pre-confirmed appointment {process.process_id}"
    start = datetime.fromtimestamp(process.timestamp, BERLIN)
    assert lines[1] == f"  time:    {start:%a %Y-%m-%d %H:%M} (Europe/Berlin)"
    assert lines[2] == f"  office:  Führerscheinstelle ({FUEHRERSCHEIN})"
    assert "e-mail an activation link" in result.out
    minutes = sim.catalogue.offices[FUEHRERSCHEIN].scope.activation_minutes
    assert f"({minutes} minutes), or the appointment is released" in result.out
    assert process.auth_key not in result.out

    link = sim.outbox.activation_link(process.process_id)
    confirmed = mta("confirm", link)
    assert confirmed.code == 0
    assert confirmed.out.splitlines()[0] == (
        f"Confirmed appointment {process.process_id} (confirmed)"
    )
    assert_private(confirmed, process.auth_key)
    assert process.status == "confirmed"

    cancelled = mta("cancel", link, "--json")
    assert cancelled.code == 0
    assert cancelled.json()["status"] == "deleted"
    assert cancelled.json()["process_id"] == process.process_id
    assert process.status == "deleted"
    # The city rotated the key: the link no longer works.
    again = mta("cancel", link)
    assert again.code == ExitCode.APPOINTMENT_STATE
    assert_private(again, process.auth_key)


def test_book_given_slot_among_offices(mta: Run, sim: Simulator) -> None:
    slots = mta(
        "slots",
        "--service",
        str(WOHNSITZ),
        "--office",
        str(RUPPERTSTRASSE),
        str(PASING),
        "--json",
    ).json()["slots"]
    wanted = next(s for s in slots if s["office_id"] == PASING)
    naive_berlin = wanted["start"][:16]  # 2026-11-24T09:00, no offset
    result = mta(
        "book",
        "--service",
        str(WOHNSITZ),
        "--office",
        str(RUPPERTSTRASSE),
        str(PASING),
        "--slot",
        naive_berlin,
        "--phone",
        PHONE,
        "--json",
        "--show-credentials",
    )
    assert result.code == 0, result.err
    data = result.json()
    process = sim.bookings.processes[data["process_id"]]
    assert process.timestamp == wanted["timestamp"]
    assert data["office_id"] == process.office_id
    assert data["office_id"] in {RUPPERTSTRASSE, PASING}
    assert data["status"] == "preconfirmed"
    assert data["auth_key"] == process.auth_key  # asked for explicitly
    assert data["activation_minutes"] == 30
    assert process.telephone == PHONE
    assert_private(result)

    cancelled = mta(
        "cancel",
        "--process-id",
        str(process.process_id),
        "--auth-key",
        process.auth_key,
    )
    assert cancelled.code == 0
    assert cancelled.out.startswith(f"Cancelled appointment {process.process_id}")
    assert process.status == "deleted"


def test_book_a_slot_that_is_not_free(mta: Run, sim: Simulator) -> None:
    first = mta("slots", "--service", str(UMSCHREIBUNG), "--json").json()["slots"][0]
    sim.take_slot(FUEHRERSCHEIN, first["timestamp"])
    result = mta(*BOOK, "--slot", str(first["timestamp"]))
    assert result.code == ExitCode.SLOT_TAKEN
    assert result.err.startswith("mta: error: the slot ")
    assert "is not free (any more)" in result.err
    assert sim.stats.reservations == 0


def test_failed_update_cancels_the_reservation(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="server_error", route="update-appointment/")
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.INVALID_RESPONSE
    (process,) = sim.bookings.processes.values()
    assert process.status == "deleted"
    assert sim.stats.cancellations == 1
    assert result.err.splitlines() == [
        (
            f"mta: booking failed; reservation {process.process_id} was cancelled "
            "so the slot is free again"
        ),
        "mta: error: An internal error has occurred. (HTTP 500)",
    ]
    assert result.out == ""
    assert_private(result, process.auth_key)


def test_failed_preconfirm_cancels_the_reservation(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="bad_gateway", route="preconfirm-appointment/")
    result = mta(*BOOK, "--earliest", "--json")
    assert result.code == ExitCode.INVALID_RESPONSE
    (process,) = sim.bookings.processes.values()
    assert process.status == "deleted"
    assert "was cancelled" in result.err
    assert result.json()["error"]["kind"] == "invalid_response"


def test_per_mail_limit_cancels_the_reservation(mta: Run, sim: Simulator) -> None:
    assert mta(*BOOK, "--earliest").code == 0
    assert mta(*BOOK, "--earliest").code == 0
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.APPOINTMENT_STATE
    assert "[tooManyAppointmentsWithSameMail]" in result.err
    statuses = sorted(p.status for p in sim.bookings.processes.values())
    assert statuses == ["deleted", "preconfirmed", "preconfirmed"]
    assert_private(result)


def test_invalid_email_reserves_nothing(
    mta: Run, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTA_EMAIL", "geheim+person@example.org")
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: invalid --email: is not an address the city accepts "
        "(no '+' allowed)\n"
    )
    assert "geheim" not in result.err
    assert sum(sim.stats.requests_by_route.values()) == 0


def test_email_required_by_the_office(
    mta: Run, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTA_EMAIL")
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --email: is required by this office\n"
    assert sim.stats.reservations == 0


def test_name_is_required(mta: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTA_NAME")
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.USAGE
    assert "--name or $MTA_NAME" in result.err


def test_slot_or_earliest_is_required(mta: Run) -> None:
    result = mta(*BOOK)
    assert result.code == ExitCode.USAGE
    assert "one of the arguments --slot --earliest is required" in result.err


@pytest.mark.parametrize("sim_options", [{"scenario": "quiet"}])
def test_book_earliest_nothing_found(mta: Run, sim: Simulator) -> None:
    result = mta(*BOOK, "--earliest")
    assert result.code == ExitCode.NOTHING_FOUND
    assert result.err == "mta: error: no free slots\n"
    assert sim.stats.reservations == 0


# --- confirm and cancel errors ----------------------------------------------------


def test_confirm_bad_link(mta: Run) -> None:
    result = mta("confirm", "https://stadt.muenchen.de/#/appointment/confirm/!!!")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: invalid LINK: "
        "not an activation link of the city's booking system\n"
    )


def test_cancel_unknown_appointment(mta: Run) -> None:
    key = "ab" * 32
    result = mta("cancel", "--process-id", "4711", "--auth-key", key)
    assert result.code == ExitCode.NOT_FOUND
    assert key not in result.err


def test_cancel_needs_credentials(mta: Run) -> None:
    assert mta("cancel").code == ExitCode.USAGE
    result = mta("cancel", "--process-id", "4711", "--auth-key", "xyz")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: invalid --auth-key: must be 4 or 64 hexadecimal characters\n"
    )


def test_cancel_link_and_ids_together(mta: Run) -> None:
    result = mta("cancel", "LINK", "--process-id", "1", "--auth-key", "abcd")
    assert result.code == ExitCode.USAGE
    assert "not both" in result.err
