"""``mta`` on a bad day: odd answers, failed bookings, shared and broken state
files, out-of-range options, waits, lost reserves and repeated failures.

Each test is a reproduction of one item of issue 10 ("Reliability and
security"); the comments name what used to happen.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import io
import json
from pathlib import Path
import re
import socket
from typing import TYPE_CHECKING, Any

import pytest

from mta_client import cli
from mta_client.cli import ExitCode
from mta_client.cli.exitcodes import (
    describe,
    error_class_of_reason,
    exit_code_for,
    exit_code_for_class,
)
from mta_client.cli.output import Output
from mta_client.cli.session import TOKEN_FILE, BudgetNotice
from mta_client.cli.watching import FailureReport, StateLock, WatchPrinter
from mta_client.client import BERLIN
from mta_client.exceptions import (
    MTAApiError,
    MTABlockedError,
    MTAProtocolError,
    MTAServerError,
    error_class_for,
)
from mta_client.ratelimit import RequestBudget
from mta_client.watch import SlotEvent

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Result, Run, SimulatorThread

FUEHRERSCHEIN = 10308174  # no captcha; e-mail required; two per address
UMSCHREIBUNG = 1071896
RUPPERTSTRASSE = 10489  # asks for a captcha
WOHNSITZ = 1063475
WATCH = ("watch", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
WATCH_ID = f"{UMSCHREIBUNG}@{FUEHRERSCHEIN}"
NAME = "Geheimnisvoll-Mustermann"
EMAIL = "geheim.person@example.org"
CATALOGUE = "offices-and-services/"


def _no_python_internals(result: Result) -> None:
    assert "Traceback" not in result.err
    for name in ("ValueError", "OverflowError", "OSError", "UnicodeDecodeError"):
        assert name not in result.err
    assert "unexpected" not in result.err


@pytest.fixture(name="stop_after_first_slot")
def stop_after_first_slot_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """End a continuous watch (as Ctrl-C does) once it reported a slot."""
    original = WatchPrinter.__call__

    def call(self: WatchPrinter, event: Any) -> None:
        original(self, event)
        if isinstance(event, SlotEvent):
            raise KeyboardInterrupt

    monkeypatch.setattr(WatchPrinter, "__call__", call)


# --- 1. odd answers at the start of a watch ------------------------------------


@pytest.mark.parametrize(
    ("fault", "first"),
    [
        ({"kind": "malformed_json"}, "expected JSON"),
        ({"kind": "bad_gateway", "status": 418}, "HTTP 418"),
        ({"kind": "server_error", "status": 418}, "HTTP 418"),
        ({"kind": "server_error", "status": 400}, "HTTP 400"),
        ({"kind": "server_error"}, "HTTP 500"),
    ],
    ids=["truncated", "html 418", "json 418", "json 400", "json 500"],
)
@pytest.mark.usefixtures("stop_after_first_slot")
def test_a_watch_waits_for_the_catalogue(
    mta: Run, sim: Simulator, server: str, fault: dict[str, Any], first: str
) -> None:
    # It used to end the watch at once (exit 11, or 1 for an unknown 4xx).
    sim.faults.add(route=CATALOGUE, times=3, **fault)
    result = mta(*WATCH, "--interval", "0.05", "--no-state")
    assert result.code == ExitCode.OK, result.err
    assert result.out.startswith("new ")
    lines = result.err.splitlines()
    assert lines[0].startswith("mta: loading the offices and services failed: ")
    assert first in lines[0]
    assert re.search(r"; next try in 0(\.\d)? s$", lines[0])
    assert lines[1].startswith(
        "mta: loading the offices and services still failing (2 times): "
    )
    assert lines[2].startswith(
        "mta: loading the offices and services still failing (3 times): "
    )
    assert lines[3] == f"mta: the server {server} answers again (after 3 failed tries)"
    assert len(lines) == 4
    # Three answered by the fault (in front of the city's counting), then one.
    assert sim.stats.faults[fault["kind"]] == 3
    assert sim.stats.requests_by_route[CATALOGUE] == 1
    _no_python_internals(result)


@pytest.mark.parametrize("status", [400, 409, 418, 422, 451])
def test_an_unknown_4xx_is_a_protocol_error(status: int) -> None:
    cls = error_class_for(None, status)
    assert cls is MTAProtocolError
    error = cls("Teapot", status=status)
    assert exit_code_for(error) is ExitCode.INVALID_RESPONSE
    assert describe(error).startswith(
        "the city's server refused the request for a reason this mta does not know"
    )
    # Categories by status stay as they were.
    assert error_class_for(None, 403) is MTABlockedError
    assert error_class_for(None, 500) is MTAServerError
    # Even a category made later is never "unexpected".
    assert exit_code_for(MTAApiError("new", status=status)) == 11


def test_an_unknown_4xx_ends_a_one_off_command_with_11(
    mta: Run, sim: Simulator, server: str
) -> None:
    sim.faults.add(kind="server_error", status=418, route=CATALOGUE)
    result = mta("offices", "--json")
    assert result.code == ExitCode.INVALID_RESPONSE
    assert result.json()["error"]["type"] == "MTAProtocolError"
    assert result.err.startswith(
        f"mta: error: the server {server} refused the request for a reason "
    )


# --- 2. a booking that failed for good ------------------------------------------


@pytest.fixture(name="person")
def person_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTA_NAME", NAME)
    monkeypatch.setenv("MTA_EMAIL", EMAIL)


@pytest.mark.usefixtures("person")
def test_watch_book_once_ends_with_the_bookings_error(mta: Run) -> None:
    # It used to exit 0: "a fitting slot is free".
    book = ("book", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
    assert mta(*book, "--earliest").code == 0
    assert mta(*book, "--earliest").code == 0  # the city's limit: two per e-mail
    refused = mta(*book, "--earliest")
    result = mta(*WATCH, "--once", "--book", "--no-state", "--json")
    assert result.code == refused.code == ExitCode.APPOINTMENT_STATE
    *events, error = result.lines()
    assert [e["state"] for e in events if e["event"] == "booking"] == ["failed"]
    assert error == {
        "error": {
            "exit_code": 12,
            "kind": "appointment_state",
            "type": "MTATooManyAppointmentsWithSameMailError",
            "message": result.err.removeprefix("mta: error: ").strip(),
        }
    }
    assert "for good" in result.err
    assert NAME not in result.err
    assert EMAIL not in result.err + result.out


# --- 3. one state file, one watch, whatever the path ---------------------------


def _hold(lock: StateLock) -> None:
    asyncio.run(lock.__aenter__())


def test_a_symlink_does_not_get_around_the_lock(
    mta: Run, sim: Simulator, tmp_path: Path
) -> None:
    real = tmp_path / "s.json"
    link = tmp_path / "link.json"
    link.symlink_to("s.json")
    held = StateLock(link)
    _hold(held)  # a watch runs on link.json...
    try:
        result = mta(*WATCH, "--once", "--state", str(real))  # ...and one on s.json
    finally:
        asyncio.run(held.__aexit__())
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"mta: error: another `mta watch` is using the state file {real}; "
        "stop it first, or use another --state FILE\n"
    )
    assert sum(sim.stats.requests_by_route.values()) == 0
    assert held.path == real.resolve().with_name("s.json.lock")


def test_a_watch_through_a_symlink_writes_the_real_file(
    mta: Run, tmp_path: Path
) -> None:
    # It used to replace the link with a regular file: two state files.
    real = tmp_path / "s.json"
    link = tmp_path / "link.json"
    link.symlink_to("s.json")
    first = mta(*WATCH, "--once", "--state", str(link))
    assert first.code == 0
    assert link.is_symlink()
    assert json.loads(real.read_text(encoding="utf-8"))["watches"][WATCH_ID]
    # The other path sees the same memory: nothing is new.
    second = mta(*WATCH, "--once", "--state", str(real))
    assert second.code == 0
    assert second.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link.json",
        "s.json",
        "s.json.lock",
        "xdg-state",  # the state folder: the kept catalogue, not a state file
    ]


# --- 4. a state file of the wrong shape -----------------------------------------

CREDENTIALS = {"process_id": 4711, "auth_key": "ab" * 16}
BOOKED = {"state": "booked", "office_id": FUEHRERSCHEIN, **CREDENTIALS}


def _state(booking: dict[str, Any] | None = None, **entry: Any) -> bytes:
    watch = {**entry, **({"booking": booking} if booking else {})}
    document = {"version": 2, "watches": {WATCH_ID: watch}}
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (_state(reported=[1, 2]), "reported"),
        (_state(reported={"abc": 1}), "reported"),
        (_state(reported={f"{FUEHRERSCHEIN}@99999999999999": 1}), "reported"),
        (_state({"state": "weird"}), "booking.state"),
        (_state({"state": "booked", "office_id": FUEHRERSCHEIN}), "auth_key"),
        (_state({**BOOKED, "start": "9999-12-31T23:59:59Z"}), "plausible"),
        (_state({**BOOKED, "start": 1e20}), "booking.start"),
        (b'{"version": 2, "watches": {}, "\xff": 1}', "UTF-8"),
        (b'{"version": true, "watches": {}}', "version"),
        (b'{"version": 1, "watches": {"w": {"booking": "abc"}}}', "booking"),
    ],
    ids=[
        "reported list",
        "bad slot key",
        "huge slot time",
        "unknown booking state",
        "missing credentials",
        "year 9999",
        "huge timestamp",
        "not utf-8",
        "version true",
        "v1 text booking",
    ],
)
def test_a_state_file_of_the_wrong_shape_is_refused_and_kept(
    mta: Run, sim: Simulator, tmp_path: Path, content: bytes, detail: str
) -> None:
    # It used to crash with exit 1 and "unexpected ValueError" (or rewrite a
    # file with "version": true as a migrated version 1).
    path = tmp_path / "state.json"
    path.write_bytes(content)
    result = mta(*WATCH, "--once", "--state", str(path))
    assert result.code == ExitCode.USAGE
    (line,) = result.err.splitlines()
    assert line.startswith(f"mta: error: the state file {path} ")
    assert detail in line
    assert line.endswith(
        "; it was left unchanged "
        "(fix or move it, or use another --state FILE, or --no-state)"
    )
    _no_python_internals(result)
    assert path.read_bytes() == content
    assert sum(sim.stats.requests_by_route.values()) == 0


def test_unknown_top_level_keys_are_kept(mta: Run, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps({"version": 2, "watches": {}, "written_by": {"mta": "9.0"}}),
        encoding="utf-8",
    )
    result = mta(*WATCH, "--once", "--state", str(path))
    assert result.code == 0
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["watches"][WATCH_ID]["reported"]
    assert saved["written_by"] == {"mta": "9.0"}


# --- 5. out-of-range options ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (
            [
                "book",
                "--service",
                str(UMSCHREIBUNG),
                "--office",
                str(FUEHRERSCHEIN),
                "--slot",
                "99999999999999999999",
            ],
            "--slot",
        ),
        (
            ["book", "--service", "1", "--office", "1", "--slot", "9999-12-31T23:30"],
            "--slot",
        ),
        (["slots", "--service", str(WOHNSITZ), "--from", "9999-12-31"], "--from"),
        (["slots", "--service", str(WOHNSITZ), "--to", "+9999"], "--to"),
        ([*WATCH, "--interval", "inf"], "--interval"),
        ([*WATCH, "--interval", "nan"], "--interval"),
        ([*WATCH, "--interval", "1e300"], "--interval"),
        (["offices", "--timeout", "inf"], "--timeout"),
        (["simulate", "--port", "99999"], "--port"),
        (["simulate", "--speed", "inf"], "--speed"),
        (["simulate", "--host", "256.1.1.1"], "--host"),
        (["offices", "--base-url", "http://127.0.0.1:99999/"], "--base-url"),
        (["offices", "--base-url", "http://127.0.0.1:abc/"], "--base-url"),
        (["offices", "--base-url", "http://127.0.0.1:0/"], "--base-url"),
    ],
)
def test_out_of_range_options_are_usage_errors(
    args: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # They used to end in tracebacks (--slot, --from), exit 1 (--base-url,
    # simulate) or a watch that never looked again (--interval inf).
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("mta: error: invalid ", f"mta {args[0]}: error: "))
    assert option in last
    assert "Traceback" not in err


def test_simulate_on_a_port_in_use(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["simulate", "--port", str(port)])
    assert code == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"mta: error: invalid --port: {port} is already in use on 127.0.0.1\n"
    )


# --- 10. waits are said; the captcha token is kept ---------------------------------


async def test_a_budget_wait_is_said_with_its_length() -> None:
    stderr = io.StringIO()
    budget = RequestBudget(limit=1, window=1.5, safety=0.0, priority_reserve=0)
    budget.on_wait = BudgetNotice(
        out=Output(stderr=stderr), budget=budget, server="127.0.0.1:8080"
    )
    await budget.acquire()
    await budget.acquire()
    assert stderr.getvalue() == (
        "mta: waiting 2 s for the request budget (the server 127.0.0.1:8080 "
        "allows 1 requests per 1.5 s)\n"
    )


@pytest.mark.parametrize("sim_options", [{"rate_limit": 3}])
def test_a_command_that_waits_for_the_budget_says_so(
    mta: Run, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    # It used to wait a minute in silence.
    def short(**kwargs: Any) -> RequestBudget:
        return RequestBudget(window=0.5, safety=0.0, **kwargs)

    monkeypatch.setattr("mta_client.client.RequestBudget", short)
    result = mta(
        "slots", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN)
    )
    assert result.code == 0
    assert result.err == (
        f"mta: waiting 1 s for the request budget (the server {server} allows "
        "3 requests per 0.5 s)\n"
    )


def _slots(mta: Run) -> Result:
    return mta("slots", "--service", str(WOHNSITZ), "--office", str(RUPPERTSTRASSE))


def test_the_captcha_token_is_kept_between_runs(
    mta: Run, sim: Simulator, served: SimulatorThread, tmp_path: Path
) -> None:
    first = _slots(mta)
    second = _slots(mta)
    assert first.code == second.code == 0
    assert second.out == first.out
    # One proof of work for both runs: the second costs two requests, not four.
    assert sim.stats.captcha_challenges == 1
    assert sim.stats.requests_by_route["available-calendar/"] == 2
    tokens = tmp_path / "xdg-state" / "mta" / TOKEN_FILE
    assert tokens.stat().st_mode & 0o777 == 0o600
    (entry,) = json.loads(tokens.read_text(encoding="utf-8")).values()
    assert entry["expires_at"] > datetime.now(UTC).timestamp()
    for run in (first, second):
        assert entry["token"] not in run.out + run.err


def test_an_expired_or_foreign_token_is_not_used(
    mta: Run, sim: Simulator, served: SimulatorThread, tmp_path: Path
) -> None:
    tokens = tmp_path / "xdg-state" / "mta" / TOKEN_FILE
    tokens.parent.mkdir(parents=True)
    past = (datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    soon = (datetime.now(UTC) + timedelta(minutes=5)).timestamp()
    tokens.write_text(
        json.dumps(
            {
                served.base_url: {"token": "x.y.z", "expires_at": past},
                "https://elsewhere.example/api/": {
                    "token": "a.b.c",
                    "expires_at": soon,
                },
            }
        ),
        encoding="utf-8",
    )
    assert _slots(mta).code == 0
    assert sim.stats.captcha_challenges == 1
    kept = json.loads(tokens.read_text(encoding="utf-8"))
    assert kept[served.base_url]["token"] != "x.y.z"
    # Another server's token is its own business.
    assert kept["https://elsewhere.example/api/"]["token"] == "a.b.c"


def test_a_watch_without_state_keeps_no_token(mta: Run, tmp_path: Path) -> None:
    watch = ("watch", "--service", str(WOHNSITZ), "--office", str(RUPPERTSTRASSE))
    assert mta(*watch, "--once", "--no-state").code == 0
    assert not (tmp_path / "xdg-state").exists()


# --- 11. a reserve whose answer was lost ------------------------------------------


def test_a_lost_reserve_is_told_at_the_next_start(mta: Run, tmp_path: Path) -> None:
    # It used to start over in silence, while the slot may stay blocked.
    since = datetime.now(UTC) - timedelta(minutes=2)
    start = datetime.now(BERLIN).replace(microsecond=0) + timedelta(days=3)
    path = tmp_path / "state.json"
    booking = {
        "state": "reserving",
        "office_id": FUEHRERSCHEIN,
        "start": start.isoformat(),
        "since": since.isoformat(),
    }
    path.write_bytes(_state(booking))
    result = mta(*WATCH, "--once", "--state", str(path))
    until = (since + timedelta(minutes=15)).astimezone(BERLIN)
    line = result.out.splitlines()[0]
    assert line == (
        f"an earlier run stopped while reserving {start:%a %Y-%m-%d %H:%M}  "
        f"Führerscheinstelle ({FUEHRERSCHEIN})  [watch {WATCH_ID}]: if that "
        f"reservation was made, the slot stays blocked until about {until:%H:%M} "
        "(the server's reservation timeout of 15 minutes); booking starts again"
    )
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["watches"][WATCH_ID]["booking"]["state"] == "idle"


def test_a_lost_reserve_in_json(mta: Run, tmp_path: Path) -> None:
    since = datetime.now(UTC) - timedelta(minutes=20)
    path = tmp_path / "state.json"
    path.write_bytes(
        _state({"state": "reserving", "office_id": FUEHRERSCHEIN, "since": f"{since}"})
    )
    result = mta(*WATCH, "--once", "--json", "--state", str(path))
    event = result.lines()[0]
    assert event["event"] == "booking"
    assert (event["state"], event["reason"]) == ("idle", "interrupted")
    blocked = datetime.fromisoformat(event["blocked_until"])
    assert abs(blocked - (since + timedelta(minutes=15))) < timedelta(seconds=1)


# --- 12. the same failure again is a count; a recovery is a line ------------------


def test_repeated_failures_are_counted() -> None:
    stderr = io.StringIO()
    report = FailureReport(out=Output(stderr=stderr), server="127.0.0.1:8080")
    blocked = MTABlockedError("Request Rejected", status=403)
    for _ in range(12):
        report.failed(blocked, 900)
    report.recovered()
    report.recovered()  # nothing failed since: nothing to say
    lines = stderr.getvalue().splitlines()
    message = (
        "blocked by the server 127.0.0.1:8080 (this IP address): "
        "Request Rejected (HTTP 403)"
    )
    assert lines == [
        f"mta: look failed: {message}; next try in 900 s",
        *(
            f"mta: look still failing ({n} times): {message}; next try in 900 s"
            for n in (2, 3, 5, 10)
        ),
        "mta: the server 127.0.0.1:8080 answers again (after 12 failed tries)",
    ]


def test_the_citys_server_is_called_so() -> None:
    stderr = io.StringIO()
    report = FailureReport(out=Output(stderr=stderr))
    report.failed(MTABlockedError("Request Rejected", status=403), 900)
    report.recovered()
    first = (
        "mta: look failed: blocked by the city's server (this IP address): "
        "Request Rejected (HTTP 403); next try in 900 s"
    )
    assert stderr.getvalue().splitlines() == [
        first,
        "mta: the city's server answers again (after 1 failed try)",
    ]


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (
            "MTATooManyAppointmentsWithSameMailError (tooManyAppointmentsWithSameMail)",
            12,
        ),
        ("MTAValidationError", 2),
        ("MTAConnectionError", 9),
        ("SomeoneElsesError (appointmentNotAvailable)", 8),
        ("MTAApiError (brandNew)", 11),
    ],
)
def test_a_bookings_reason_gives_its_exit_code(reason: str, code: int) -> None:
    cls = error_class_of_reason(reason)
    assert cls is not None
    assert exit_code_for_class(cls) == code
