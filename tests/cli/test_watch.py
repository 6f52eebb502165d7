"""``mta watch``: new and vanished slots, one line per event."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
import io
import time as real_time
from typing import TYPE_CHECKING

import pytest

from mta_client.cli import ExitCode, WatchEvent
from mta_client.cli.watching import StreamSink
from mta_client.client import BERLIN
from mta_client.models import Slot

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Run

FUEHRERSCHEIN = 10308174
UMSCHREIBUNG = 1071896
WATCH = ("watch", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))


def test_watch_once(mta: Run) -> None:
    result = mta(*WATCH, "--once")
    assert result.code == 0
    lines = result.out.splitlines()
    days = [line for line in lines if "  day   " in line]
    new = [line for line in lines if "  new   " in line]
    assert days
    assert all(line.endswith(" bookable") for line in days)
    assert new
    assert all(line.endswith(f"{FUEHRERSCHEIN}  Führerscheinstelle") for line in new)
    assert "gone" not in result.out
    # No live status line: stderr is not a terminal here.
    assert result.err == ""


def test_watch_once_json(mta: Run) -> None:
    result = mta(*WATCH, "--once", "--json")
    assert result.code == 0
    events = result.lines()
    kinds = {e["event"] for e in events}
    assert kinds == {"day_new", "new"}
    slot = next(e for e in events if e["event"] == "new")["slot"]
    assert slot["office_id"] == FUEHRERSCHEIN
    assert slot["office_name"] == "Führerscheinstelle"
    assert datetime.fromisoformat(slot["start"]).timestamp() == slot["timestamp"]


@pytest.mark.parametrize("sim_options", [{"scenario": "quiet"}])
def test_watch_reports_new_and_vanished_slots(mta: Run, sim: Simulator) -> None:
    day = date.today() + timedelta(days=2)  # noqa: DTZ011 - any near day will do
    start = datetime.combine(day, time(10), tzinfo=BERLIN)
    now = real_time.time()
    sim.release_slot(FUEHRERSCHEIN, start, minutes=60, at=now + 0.3)
    units = sim.slots.units(FUEHRERSCHEIN, int(start.timestamp()), 12)

    def someone_books(_at: float) -> None:
        sim.slots.take(FUEHRERSCHEIN, units)

    sim.schedule(now + 0.9, someone_books)

    result = mta(*WATCH, "--checks", "3", "--interval", "0.6", "--json")

    events = result.lines()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "day_new"
    assert events[0]["date"] == day.isoformat()
    appeared = [e["slot"]["timestamp"] for e in events if e["event"] == "new"]
    vanished = [e["slot"]["timestamp"] for e in events if e["event"] == "gone"]
    assert appeared
    assert appeared[0] == int(start.timestamp())
    assert sorted(vanished) == sorted(appeared)
    assert kinds.index("day_gone") > kinds.index("new")
    # The last check saw nothing.
    assert result.code == ExitCode.NOTHING_FOUND


def test_watch_survives_a_transient_failure(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="server_error", route="available-calendar/", times=1)
    result = mta(*WATCH, "--checks", "2", "--interval", "0.05", "--json")
    assert result.code == 0
    assert result.err.startswith("mta: check failed: An internal error has occurred.")
    assert "next try in 0 s" in result.err
    events = result.lines()
    assert events[0]["event"] == "error"
    assert events[0]["error"] == "MTAServerError"
    assert any(e["event"] == "new" for e in events[1:])


def test_watch_fails_loudly_on_the_last_check(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="server_error", route="available-calendar/", times=None)
    result = mta(*WATCH, "--once")
    assert result.code == ExitCode.INVALID_RESPONSE
    assert result.err == "mta: error: An internal error has occurred. (HTTP 500)\n"


def test_watch_stops_on_a_block(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="html_block", route="available-calendar/", times=None)
    result = mta(*WATCH, "--interval", "0.05")  # would run forever otherwise
    assert result.code == ExitCode.BLOCKED


def test_watch_rejects_zero_checks(mta: Run) -> None:
    result = mta(*WATCH, "--checks", "0")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --checks: must be at least 1\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_only_on_a_terminal() -> None:
    names = {FUEHRERSCHEIN: "Führerscheinstelle"}
    at = datetime(2026, 11, 24, 8, 0, 5, tzinfo=UTC)
    slot = Slot(office_id=FUEHRERSCHEIN, start=at + timedelta(days=1))
    terminal, plain, out = _Terminal(), io.StringIO(), io.StringIO()

    live = StreamSink(names=names, stdout=out, stderr=terminal)
    live.status(checked_at=at.timestamp(), requests=7, next_at=at.timestamp() + 60)
    assert terminal.getvalue() == (
        "\r\x1b[Klast check 09:00:05 · 7 requests · next 09:01:05"
    )
    live.event(WatchEvent(kind="new", at=at, slot=slot))
    assert terminal.getvalue().endswith("\r\x1b[K")  # cleared before the event
    assert out.getvalue() == (
        "2026-11-24 09:00:05  new   "
        "Wed 2026-11-25 09:00  10308174  Führerscheinstelle\n"
    )

    quiet = StreamSink(names=names, stdout=io.StringIO(), stderr=plain)
    quiet.status(checked_at=at.timestamp(), requests=7, next_at=at.timestamp() + 60)
    quiet.close()
    assert plain.getvalue() == ""
