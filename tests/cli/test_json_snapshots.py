"""Snapshots of the ``--json`` output of every ``mta`` command.

Scripts read this output, so any change to it shows up here as a diff. The
commands run in-process against the seeded simulator (scenario ``fixed``)
with the wall clock frozen, so ids, keys and times are the same on every
run; ``slots`` on two days runs against aioresponses. Personal data never
appears in the output (checked), and auth keys only where a command prints
them by design (``--show-credentials``, not snapshotted).
"""

from __future__ import annotations

from collections.abc import Iterator
import json
from typing import TYPE_CHECKING, Any

from freezegun import freeze_time
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension

from mta_client import cli
from mta_client.cli import ExitCode
from tests.client.helpers import route
from tests.conftest import BASE_URL

if TYPE_CHECKING:
    from aioresponses import aioresponses

    from mta_client.simulator import Simulator

    from .conftest import Result, Run

# A Tuesday, 08:00 in Munich: the fixed scenario's slots are the next
# three weekdays at 09:00 and 14:00, and one day five weeks later.
NOW = "2026-12-01T07:00:00Z"
FUEHRERSCHEIN = 10308174  # no captcha
UMSCHREIBUNG = 1071896
PASING = 54261
WOHNSITZ = 1063475
NAME = "Geheimnisvoll-Mustermann"
EMAIL = "geheim.person@example.org"
BOOK = ("book", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))


@pytest.fixture(name="amber")
def amber_fixture(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    # Home Assistant's plugin swaps in its own extension (a `snapshots/`
    # folder); the library's snapshots use syrupy's default `__snapshots__`.
    return snapshot.use_extension(AmberSnapshotExtension)


@pytest.fixture(name="frozen")
def frozen_fixture() -> Iterator[None]:
    # Frozen for the simulator's thread too; asyncio keeps its real clock,
    # so timeouts and sleeps still work, and so does the captcha solver's
    # time limit (a frozen monotonic clock made it give up at once).
    with freeze_time(NOW, real_asyncio=True, ignore=["mta_client.captcha"]):
        yield


@pytest.fixture(autouse=True)
def _person(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTA_NAME", NAME)
    monkeypatch.setenv("MTA_EMAIL", EMAIL)


def private(result: Result, *secrets: str) -> Result:
    """Return the result after checking it leaks no personal data or secrets."""
    for secret in (NAME, EMAIL, *secrets):
        assert secret not in result.out
        assert secret not in result.err
    return result


@pytest.mark.usefixtures("frozen")
@pytest.mark.parametrize(
    "args",
    [
        ("offices",),
        ("offices", "--service", str(WOHNSITZ)),
        ("offices", "--service", "10339028", str(WOHNSITZ)),  # nothing found
        ("services",),
        ("services", "--office", str(FUEHRERSCHEIN)),
        ("services", "--search", "führerschein"),
        ("slots", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN)),
        ("slots", "--service", str(WOHNSITZ), "--office", str(PASING)),
        (
            "slots",
            "--service",
            str(UMSCHREIBUNG),
            "--office",
            str(FUEHRERSCHEIN),
            "--day",
            "2026-12-03",
        ),
        ("slots", "--service", str(UMSCHREIBUNG), "--day", "2026-12-05"),  # Saturday
        ("services", "--office", "999999"),  # the error document
    ],
    ids=" ".join,
)
def test_read_only_commands(
    mta: Run, amber: SnapshotAssertion, args: tuple[str, ...]
) -> None:
    result = private(mta(*args, "--json"))
    assert {"code": result.code, "json": result.json()} == amber


@pytest.mark.usefixtures("frozen")
def test_book_confirm_cancel(
    mta: Run, sim: Simulator, amber: SnapshotAssertion
) -> None:
    booked = mta(*BOOK, "--earliest", "--json")
    assert booked.code == ExitCode.OK, booked.err
    (process,) = sim.bookings.processes.values()
    link = sim.outbox.activation_link(process.process_id)
    private(booked, process.auth_key, link)
    assert booked.json() == amber(name="book")

    confirmed = private(mta("confirm", link, "--json"), process.auth_key, link)
    assert confirmed.code == ExitCode.OK, confirmed.err
    assert confirmed.json() == amber(name="confirm")

    cancelled = private(mta("cancel", link, "--json"), process.auth_key, link)
    assert cancelled.code == ExitCode.OK, cancelled.err
    assert cancelled.json() == amber(name="cancel")
    # The city rotated the key: the same link now fails, as a JSON error.
    again = private(mta("cancel", link, "--json"), process.auth_key, link)
    assert {"code": again.code, "json": again.json()} == amber(name="cancel again")


@pytest.mark.usefixtures("frozen")
def test_book_a_given_slot(mta: Run, amber: SnapshotAssertion) -> None:
    slot = "2026-12-03T14:00"
    result = private(mta(*BOOK, "--slot", slot, "--json"))
    assert result.code == ExitCode.OK, result.err
    assert result.json() == amber


@pytest.mark.usefixtures("frozen")
def test_watch_once(mta: Run, amber: SnapshotAssertion) -> None:
    result = private(
        mta(
            "watch",
            "--service",
            str(UMSCHREIBUNG),
            "--office",
            str(FUEHRERSCHEIN),
            "--once",
            "--no-state",
            "--json",
        )
    )
    assert result.code == ExitCode.OK, result.err
    assert result.lines() == amber


# --- slots on two days (aioresponses) ---------------------------------------------

THU_0900 = 1796284800  # 2026-12-03 09:00 in Munich
FRI_0030 = 1796340600  # 2026-12-04 00:30 in Munich, still Thursday in UTC
FRI_0900 = 1796371200  # 2026-12-04 09:00 in Munich

CATALOGUE: dict[str, Any] = {
    "offices": [
        {
            "id": FUEHRERSCHEIN,
            "name": "Führerscheinstelle",
            "scope": {"id": 230, "captchaActivatedRequired": False},
        }
    ],
    "services": [{"id": UMSCHREIBUNG, "name": "Umschreibung", "combinable": []}],
    "relations": [{"officeId": FUEHRERSCHEIN, "serviceId": UMSCHREIBUNG, "slots": 1}],
}
TWO_DAYS: dict[str, Any] = {
    "startDate": "2026-12-03",
    "endDate": "2026-12-04",
    "slotsStartDate": "2026-12-03",
    "slotsEndDate": "2026-12-04",
    "prevBookableDate": None,
    "nextBookableDate": None,
    "availableDays": [
        {
            "date": "2026-12-03",
            "providerIDs": str(FUEHRERSCHEIN),
            "offices": [{"officeId": str(FUEHRERSCHEIN), "appointments": [THU_0900]}],
        },
        {
            "date": "2026-12-04",
            "providerIDs": str(FUEHRERSCHEIN),
            "offices": [
                {
                    "officeId": str(FUEHRERSCHEIN),
                    "appointments": [FRI_0030, FRI_0900],
                }
            ],
        },
    ],
}
SLOTS = (
    "slots",
    "--service",
    str(UMSCHREIBUNG),
    "--office",
    str(FUEHRERSCHEIN),
    "--from",
    "2026-12-03",
    "--to",
    "2026-12-04",
)


def run_mocked(
    responses: aioresponses, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    responses.get(route("offices-and-services/"), payload=CATALOGUE)
    responses.get(route("available-calendar/"), payload=TWO_DAYS)
    capsys.readouterr()
    code = cli.main([*args, "--base-url", BASE_URL])
    return code, capsys.readouterr().out


@pytest.mark.usefixtures("frozen")
def test_slots_on_two_days_json(
    responses: aioresponses,
    capsys: pytest.CaptureFixture[str],
    amber: SnapshotAssertion,
) -> None:
    code, out = run_mocked(responses, capsys, *SLOTS, "--json")
    assert code == ExitCode.OK
    data = json.loads(out)
    # Each slot carries its own Munich day, not the window's first day.
    assert [(s["timestamp"], s["date"]) for s in data["slots"]] == [
        (THU_0900, "2026-12-03"),
        (FRI_0030, "2026-12-04"),
        (FRI_0900, "2026-12-04"),
    ]
    assert data["slots_dates"] == ["2026-12-03", "2026-12-04"]
    assert data == amber


@pytest.mark.usefixtures("frozen")
def test_slots_on_two_days_text(
    responses: aioresponses, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_mocked(responses, capsys, *SLOTS)
    assert code == ExitCode.OK
    lines = out.splitlines()
    thursday = lines.index("Free slots on Thu 2026-12-03:")
    friday = lines.index("Free slots on Fri 2026-12-04:")
    assert thursday < friday
    assert lines[thursday + 2].split()[-1:] == ["09:00"]
    assert lines[friday + 2].split()[-2:] == ["00:30", "09:00"]
