"""``mta watch``: the watch engine from the command line, one line per event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
import fcntl
import io
import json
from pathlib import Path
import re
import time as real_time
from typing import TYPE_CHECKING, Any

import pytest

from mta_client.cli import ExitCode
from mta_client.cli.output import Output
from mta_client.cli.watching import WatchPrinter
from mta_client.client import BERLIN
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind
from mta_client.watcher import PollPolicy

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Result, Run

FUEHRERSCHEIN = 10308174  # no captcha; e-mail required; two per address
UMSCHREIBUNG = 1071896
WATCH = ("watch", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
WATCH_ID = f"{UMSCHREIBUNG}@{FUEHRERSCHEIN}"
NAME = "Geheimnisvoll-Mustermann"
EMAIL = "geheim.person@example.org"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CANCEL_HINT = "cancel with: mta cancel <link from the city's e-mail>"

type Fits = Callable[[datetime], bool]


def free_starts(sim: Simulator) -> list[datetime]:
    """Every bookable start of the watched service, in Munich time."""
    times = sim.bookable_times(FUEHRERSCHEIN, [UMSCHREIBUNG])
    return [datetime.fromtimestamp(t, BERLIN) for t in sorted(times)]


def free_days(sim: Simulator) -> list[date]:
    """The fixed scenario's days: three weekdays soon, one a month later."""
    return sorted({start.date() for start in free_starts(sim)})


def reported(result: Result) -> list[datetime]:
    return [
        datetime.fromtimestamp(e["timestamp"], BERLIN)
        for e in result.lines()
        if e["event"] == "new"
    ]


def assert_private(result: Result, *secrets: str) -> None:
    for secret in (NAME, EMAIL, *secrets):
        assert secret not in result.out
        assert secret not in result.err


def test_watch_once(mta: Run, sim: Simulator) -> None:
    result = mta(*WATCH, "--once")
    assert result.code == 0
    first_day = [s for s in free_starts(sim) if s.date() == free_days(sim)[0]]
    assert result.out.splitlines() == [
        f"new   {start:%a %Y-%m-%d %H:%M}  Führerscheinstelle ({FUEHRERSCHEIN})  "
        f"[watch {WATCH_ID}]"
        for start in first_day
    ]
    # No live status line: stderr is not a terminal here.
    assert result.err == ""


def test_watch_once_json(mta: Run) -> None:
    result = mta(*WATCH, "--once", "--json")
    assert result.code == 0
    events = result.lines()
    assert {e["event"] for e in events} == {"new"}
    event = events[0]
    assert event["watch_id"] == WATCH_ID
    assert event["office_id"] == FUEHRERSCHEIN
    assert event["office_name"] == "Führerscheinstelle"
    assert event["services"] == [{"service_id": UMSCHREIBUNG, "count": 1}]
    assert datetime.fromisoformat(event["start"]).timestamp() == event["timestamp"]
    assert (
        abs(datetime.fromisoformat(event["seen_at"]).timestamp() - real_time.time())
        < 60
    )


def _filters(sim: Simulator) -> dict[str, tuple[list[str], Fits]]:
    days = free_days(sim)
    today = datetime.now(BERLIN).date()
    now = datetime.now(BERLIN)
    second, third = days[1], days[2]
    return {
        "weekday": (
            ["--weekday", DAY_NAMES[third.weekday()]],
            lambda s: s.weekday() == third.weekday(),
        ),
        "time": (
            ["--time", "14:00-14:30"],
            lambda s: time(14) <= s.time() < time(14, 30),
        ),
        "within and weekdays": (
            [
                "--within",
                str((second - today).days),
                "--weekday",
                f"{second.weekday()},{DAY_NAMES[third.weekday()]}",
            ],
            lambda s: s.date() <= second and s.weekday() == second.weekday(),
        ),
        "lead": (["--lead", "2d"], lambda s: s - now >= timedelta(days=2)),
        "all": (
            ["--weekday", "mon-sun", "--time", "09:15-10:00", "--lead", "90m"],
            lambda s: (
                time(9, 15) <= s.time() < time(10) and s - now >= timedelta(minutes=90)
            ),
        ),
    }


@pytest.mark.parametrize(
    "name", ["weekday", "time", "within and weekdays", "lead", "all"]
)
def test_watch_once_applies_the_filters(mta: Run, sim: Simulator, name: str) -> None:
    args, fits = _filters(sim)[name]
    result = mta(*WATCH, "--once", "--json", "--no-state", *args)
    assert result.code == 0, result.err
    starts = reported(result)
    assert starts
    assert all(fits(s) for s in starts)
    # The earliest fitting day is reported in full.
    expected = [s for s in free_starts(sim) if fits(s)]
    first_day = expected[0].date()
    assert [s for s in starts if s.date() == first_day] == [
        s for s in expected if s.date() == first_day
    ]


def test_watch_once_nothing_fits(mta: Run) -> None:
    result = mta(*WATCH, "--once", "--time", "06:00-07:00", "--within", "40")
    assert result.code == ExitCode.NOTHING_FOUND
    assert result.out == ""


@pytest.mark.parametrize("sim_options", [{"scenario": "quiet"}])
def test_watch_reports_new_and_vanished_slots(mta: Run, sim: Simulator) -> None:
    day = date.today() + timedelta(days=2)  # noqa: DTZ011 - any near day will do
    start = datetime.combine(day, time(10), tzinfo=BERLIN)
    now = real_time.time()
    # One request per look, 30 % of the rate limit (60 a minute): a look
    # every 3.3 s at most, whatever --interval says. Looks at 0, 3.3, 6.7 s.
    sim.release_slot(FUEHRERSCHEIN, start, minutes=60, at=now + 1.0)
    units = sim.slots.units(FUEHRERSCHEIN, int(start.timestamp()), 12)

    def someone_books(_at: float) -> None:
        sim.slots.take(FUEHRERSCHEIN, units)

    sim.schedule(now + 5.0, someone_books)

    result = mta(*WATCH, "--checks", "3", "--interval", "0.6", "--json")

    events = result.lines()
    kinds = [e["event"] for e in events]
    appeared = [e["timestamp"] for e in events if e["event"] == "new"]
    vanished = [e["timestamp"] for e in events if e["event"] == "gone"]
    assert appeared
    assert appeared[0] == int(start.timestamp())
    assert sorted(vanished) == sorted(appeared)
    assert kinds.index("gone") > kinds.index("new")
    # The last look saw nothing.
    assert result.code == ExitCode.NOTHING_FOUND


def test_watch_checks_end_at_a_failed_look(mta: Run, sim: Simulator) -> None:
    # Counted looks are for scripts: the first failure is the exit code; the
    # waiting and retrying is the continuous watch's (see tests/watch).
    sim.faults.add(kind="server_error", route="available-calendar/", times=1)
    result = mta(*WATCH, "--checks", "2", "--interval", "0.05")
    assert result.code == ExitCode.INVALID_RESPONSE
    assert result.err == "mta: error: An internal error has occurred. (HTTP 500)\n"
    assert sim.stats.faults["server_error"] == 1


def test_watch_fails_loudly_on_the_last_check(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="server_error", route="available-calendar/", times=None)
    result = mta(*WATCH, "--once")
    assert result.code == ExitCode.INVALID_RESPONSE
    assert result.err == "mta: error: An internal error has occurred. (HTTP 500)\n"


def test_watch_checks_end_on_a_block(mta: Run, sim: Simulator, server: str) -> None:
    sim.faults.add(kind="html_block", route="available-calendar/", times=None)
    result = mta(*WATCH, "--checks", "3", "--interval", "0.05")
    assert result.code == ExitCode.BLOCKED
    assert result.err.startswith(f"mta: error: blocked by the server {server}")
    assert sim.stats.faults["html_block"] == 1  # no second look


def test_watch_rejects_zero_checks(mta: Run) -> None:
    result = mta(*WATCH, "--checks", "0")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --checks: must be at least 1\n"


# --- state ----------------------------------------------------------------------


def test_watch_remembers_what_it_reported(mta: Run, tmp_path: Path) -> None:
    first = mta(*WATCH, "--once")
    assert first.code == 0
    count = len(first.out.splitlines())
    assert count
    # The simulator's state is kept apart from the city's watch.json.
    (state,) = (tmp_path / "xdg-state" / "mta").glob("watch-*.json")
    assert state.stat().st_mode & 0o777 == 0o600

    second = mta(*WATCH, "--once")
    assert second.code == 0  # the slots are still free
    assert second.out == ""
    assert second.err == (
        f"mta: no new slots; {count} fitting slot(s) reported before are still "
        f"free (remembered in {state})\n"
    )


def test_watch_without_state(mta: Run, tmp_path: Path) -> None:
    first = mta(*WATCH, "--once", "--no-state")
    second = mta(*WATCH, "--once", "--state", "-")
    assert first.code == second.code == 0
    assert first.out
    assert second.out == first.out
    assert not (tmp_path / "xdg-state").exists()


def test_watch_bad_state_file(mta: Run, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[1, 2", encoding="utf-8")
    result = mta(*WATCH, "--once", "--state", str(state))
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"mta: error: the state file {state} is not valid JSON; it was left "
        "unchanged (fix or move it, or use another --state FILE, or --no-state)\n"
    )


def test_watch_state_file_in_use(mta: Run, sim: Simulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with (tmp_path / "state.json.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = mta(*WATCH, "--once", "--state", str(state))
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"mta: error: another `mta watch` is using the state file {state}; "
        "stop it first, or use another --state FILE\n"
    )
    assert sim.stats.requests_by_route["available-calendar/"] == 0
    # Released at the end of a run: the next one may take it.
    assert mta(*WATCH, "--once", "--state", str(state)).code == 0
    assert mta(*WATCH, "--once", "--state", str(state)).code == 0


def test_watch_state_file_unusable(mta: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    state = tmp_path / "file" / "state.json"
    result = mta(*WATCH, "--once", "--state", str(state))
    assert result.code == ExitCode.USAGE
    assert result.err.startswith(f"mta: error: cannot use the state file {state}: ")
    assert result.err.endswith("(use another --state FILE, or --no-state)\n")


# --- booking --------------------------------------------------------------------


@pytest.fixture(name="person")
def person_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Personal data comes from the environment, as the help recommends."""
    monkeypatch.setenv("MTA_NAME", NAME)
    monkeypatch.setenv("MTA_EMAIL", EMAIL)


@pytest.mark.usefixtures("person")
@pytest.mark.parametrize("sim_options", [{"scenario": "quiet"}])
def test_booking_the_only_fitting_slot_is_success(mta: Run, sim: Simulator) -> None:
    day = datetime.now(BERLIN).date() + timedelta(days=2)
    sim.release_slot(FUEHRERSCHEIN, datetime.combine(day, time(9), BERLIN), minutes=60)
    result = mta(*WATCH, "--time", "09:00-09:01", "--once", "--book", "--no-state")
    assert [line.split()[0] for line in result.out.splitlines()] == ["new", "booked"]
    # The booked slot is no longer free, but the run found what it wanted.
    assert result.code == 0, result.err


@pytest.mark.usefixtures("person")
def test_watch_books_once(mta: Run, sim: Simulator, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    earliest = free_starts(sim)[0]
    before = datetime.now(UTC)
    first = mta(*WATCH, "--once", "--book", "--state", str(state))
    after = datetime.now(UTC)
    assert first.code == 0, first.err
    (process,) = sim.bookings.processes.values()
    assert process.status == "preconfirmed"
    assert process.family_name == NAME
    assert process.timestamp == earliest.timestamp()
    start = earliest
    (line,) = [line for line in first.out.splitlines() if line.startswith("booked")]
    match = re.fullmatch(
        rf"booked  {start:%a %Y-%m-%d %H:%M}  Führerscheinstelle \({FUEHRERSCHEIN}\)"
        rf"  \[watch {WATCH_ID}\]  process {process.process_id}; activation link "
        rf"must be clicked by (\d\d:\d\d); {re.escape(CANCEL_HINT)}",
        line,
    )
    assert match, line
    minutes = sim.catalogue.offices[FUEHRERSCHEIN].scope.activation_minutes
    deadlines = {
        f"{(moment + timedelta(minutes=minutes)).astimezone(BERLIN):%H:%M}"
        for moment in (before, after)
    }
    assert match.group(1) in deadlines
    assert first.err == (
        f"mta: the state file {state} holds the booking's process id and auth "
        "key: keep it private\n"
    )
    assert_private(first, process.auth_key)
    text = state.read_text(encoding="utf-8")
    assert process.auth_key in text
    assert NAME not in text
    assert EMAIL not in text

    second = mta(*WATCH, "--once", "--book", "--state", str(state))
    assert second.code == 0, second.err
    assert "new " not in second.out
    assert "booked" not in second.out
    assert len(sim.bookings.processes) == 1
    assert sim.stats.preconfirmed_by_email[EMAIL] == 1
    assert_private(second, process.auth_key)


@pytest.mark.usefixtures("person")
def test_watch_booking_json_with_credentials(mta: Run, sim: Simulator) -> None:
    result = mta(
        *WATCH, "--once", "--book", "--no-state", "--json", "--show-credentials"
    )
    assert result.code == 0, result.err
    (process,) = sim.bookings.processes.values()
    (booking,) = [e for e in result.lines() if e["event"] == "booking"]
    assert booking["state"] == "booked"
    assert booking["watch_id"] == WATCH_ID
    assert booking["process_id"] == process.process_id
    assert booking["timestamp"] == process.timestamp
    assert booking["auth_key"] == process.auth_key
    assert datetime.fromisoformat(booking["activation_deadline"]) > datetime.now(UTC)
    assert "kept nowhere (no state file)" in result.err
    assert_private(result)


@pytest.mark.usefixtures("person")
def test_watch_booking_json_hides_the_auth_key(mta: Run, sim: Simulator) -> None:
    result = mta(*WATCH, "--once", "--book", "--no-state", "--json")
    (process,) = sim.bookings.processes.values()
    (booking,) = [e for e in result.lines() if e["event"] == "booking"]
    assert "auth_key" not in booking
    assert_private(result, process.auth_key)


@pytest.mark.usefixtures("person")
def test_watch_booking_failed(mta: Run, sim: Simulator) -> None:
    book = ("book", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
    assert mta(*book, "--earliest").code == 0
    assert mta(*book, "--earliest").code == 0  # two per e-mail address
    result = mta(*WATCH, "--once", "--book", "--no-state")
    # Failed for good: the error's exit code, as `mta book` would end.
    assert result.code == ExitCode.APPOINTMENT_STATE
    assert result.err.startswith(
        f"mta: error: booking for watch {WATCH_ID} failed for good: You can only "
    )
    assert result.err.endswith(" [tooManyAppointmentsWithSameMail]\n")
    (line,) = [line for line in result.out.splitlines() if "booking" in line]
    assert line == (
        "booking failed: MTATooManyAppointmentsWithSameMailError "
        f"(tooManyAppointmentsWithSameMail); no more tries  [watch {WATCH_ID}]"
    )
    assert sim.stats.preconfirmed_by_email[EMAIL] == 2
    statuses = sorted(p.status for p in sim.bookings.processes.values())
    assert statuses == ["deleted", "preconfirmed", "preconfirmed"]
    assert_private(result)


def test_watch_book_needs_the_person(
    mta: Run, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = mta(*WATCH, "--once", "--book")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: invalid --name: a family name is required (--name or $MTA_NAME)\n"
    )
    monkeypatch.setenv("MTA_NAME", NAME)
    result = mta(*WATCH, "--once", "--book")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --email: is required by this office\n"
    assert sim.stats.requests_by_route["available-calendar/"] == 0
    assert not sim.bookings.processes
    assert_private(result)


# --- watch files ----------------------------------------------------------------


def write_watches(tmp_path: Path, watches: Any) -> str:
    path = tmp_path / "watches.json"
    path.write_text(json.dumps(watches), encoding="utf-8")
    return str(path)


def file_watch(**fields: Any) -> dict[str, Any]:
    return {
        "id": "w",
        "services": [{"service_id": UMSCHREIBUNG, "count": 1}],
        "office_ids": [FUEHRERSCHEIN],
        **fields,
    }


def test_watch_file_with_two_watches(mta: Run, sim: Simulator, tmp_path: Path) -> None:
    days = free_days(sim)
    path = write_watches(
        tmp_path,
        [
            file_watch(id="morning", time_ranges=["09:00-09:30"]),
            file_watch(
                id="later",
                weekdays=DAY_NAMES[days[2].weekday()],
                time_ranges="14:00-15:00",
                min_lead="1h",
            ),
        ],
    )
    result = mta("watch", "--file", path, "--once", "--json")
    assert result.code == 0, result.err
    events = result.lines()
    by_watch: dict[str, list[datetime]] = {"morning": [], "later": []}
    for event in events:
        start = datetime.fromtimestamp(event["timestamp"], BERLIN)
        by_watch[event["watch_id"]].append(start)
    # Both watches want the same services: one group, its answers fan out.
    morning = [s for s in free_starts(sim) if s.time() < time(9, 30)]
    assert by_watch["morning"][:2] == morning[:2]
    assert set(by_watch["morning"]) <= set(morning)
    assert by_watch["later"] == [
        s for s in free_starts(sim) if s.date() == days[2] and s.hour == 14
    ]


@pytest.mark.usefixtures("person")
def test_watch_file_takes_the_person_from_the_environment(
    mta: Run, sim: Simulator, tmp_path: Path
) -> None:
    path = write_watches(tmp_path, [file_watch(auto_book=True), file_watch(id="x")])
    result = mta("watch", "--file", path, "--once", "--no-state")
    assert result.code == 0, result.err
    assert [line for line in result.out.splitlines() if "booked" in line]
    assert sim.stats.preconfirmed_by_email[EMAIL] == 1
    assert_private(result)


SECRET_TIME = "25:61-26:00"


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        ("{", ExitCode.USAGE, "not valid JSON (line 1, column 2)"),
        ("{}", ExitCode.USAGE, "expected a JSON list of watches"),
        ("[]", ExitCode.USAGE, "expected a JSON list of watches"),
        ("[1]", ExitCode.USAGE, "watch 1: expected a JSON object"),
        (
            [file_watch(weekdays=f"{NAME},mon")],
            ExitCode.USAGE,
            "watch 1: weekdays: use mon..sun or 0-6 (0 = Monday)",
        ),
        (
            [file_watch(), file_watch(id="b", time_ranges=[SECRET_TIME])],
            ExitCode.USAGE,
            "watch 2: time_ranges: use HH:MM-HH:MM with the end after the start",
        ),
        (
            [
                file_watch(
                    auto_book=True,
                    contact={"family_name": NAME, "email": f"{NAME}+x@example.org"},
                )
            ],
            ExitCode.USAGE,
            "watch 1: contact.email: is not valid",
        ),
        (
            [file_watch(contact={"family_name": NAME, "phone": EMAIL})],
            ExitCode.USAGE,
            "watch 1: contact.phone: is not a watch field",
        ),
        (
            [file_watch(weekday="mon", within_days=999, services=None)],
            ExitCode.USAGE,
            (
                "watch 1: services: Input should be a valid list; within_days: "
                "Input should be less than or equal to 365; weekday: is not a "
                "watch field"
            ),
        ),
        (
            [{"services": [{"service_id": UMSCHREIBUNG}], "office_ids": [1]}],
            ExitCode.USAGE,
            "watch 1: id: is required",
        ),
        (
            [file_watch(start_date="2026-12-10", end_date="2026-12-01")],
            ExitCode.USAGE,
            "watch 1: end_date must not be before start_date",
        ),
        (
            [file_watch(), file_watch()],
            ExitCode.USAGE,
            "watch 2: its id is also the id of watch 1",
        ),
        (
            [file_watch(urgency="panic")],
            ExitCode.USAGE,
            "watch 1: urgency: Input should be 'relaxed', 'normal' or 'urgent'",
        ),
        (
            [file_watch(office_ids=[1])],
            ExitCode.NOT_FOUND,
            "watch 1: unknown office 1 (see `mta offices`)",
        ),
        (
            [file_watch(services=[{"service_id": 1}])],
            ExitCode.NOT_FOUND,
            "watch 1: unknown service 1 (see `mta services`)",
        ),
        (
            [file_watch(office_ids=[10489])],
            ExitCode.USAGE,
            f"watch 1: office 10489 does not offer service {UMSCHREIBUNG}",
        ),
        (
            [file_watch(contact={"family_name": NAME})],
            ExitCode.USAGE,
            "watch 1: contact.email: is required by this office",
        ),
    ],
)
def test_watch_bad_file(  # noqa: PLR0917 - pytest passes fixtures positionally
    mta: Run,
    sim: Simulator,
    tmp_path: Path,
    content: Any,
    code: ExitCode,
    message: str,
) -> None:
    path = tmp_path / "watches.json"
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text, encoding="utf-8")
    result = mta("watch", "--file", str(path), "--once")
    assert result.code == code
    assert result.err == f"mta: error: invalid --file {path}: {message}\n"
    assert_private(result, SECRET_TIME)
    assert sim.stats.requests_by_route["available-calendar/"] == 0


def test_watch_missing_file(mta: Run, tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    result = mta("watch", "--file", str(path))
    assert result.code == ExitCode.USAGE
    assert (
        result.err == f"mta: error: invalid --file {path}: No such file or directory\n"
    )


def test_watch_file_and_watch_options(mta: Run, tmp_path: Path) -> None:
    path = write_watches(tmp_path, [file_watch()])
    result = mta(*WATCH, "--file", path, "--weekday", "mon", "--within", "0", "--book")
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: --file cannot be combined with --service, --office, "
        "--within, --weekday, --book\n"
    )


def test_watch_needs_services(mta: Run) -> None:
    result = mta("watch", "--office", str(FUEHRERSCHEIN))
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: give the services to watch with --service ID (or use --file)\n"
    )


# --- options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--time", SECRET_TIME, "not a time range"),
        ("--time", "12:00-08:00", "not a time range"),
        ("--weekday", NAME, "not weekdays"),
        ("--weekday", "mon-funday", "not weekdays"),
        ("--lead", NAME, "not a duration"),
        ("--lead", "400d", "a lead time must be at most 365 days"),
        ("--urgency", "panic", "not an urgency (use relaxed, normal or urgent)"),
        ("--urgency", "", "not an urgency"),
    ],
)
def test_watch_bad_option(mta: Run, option: str, value: str, message: str) -> None:
    result = mta(*WATCH, option, value)
    assert result.code == ExitCode.USAGE
    assert f"mta watch: error: argument {option}: {message}" in result.err
    assert not value or value not in result.err


def test_watch_bad_id(mta: Run) -> None:
    result = mta(*WATCH, "--once", "--id", "x" * 65)
    assert result.code == ExitCode.USAGE
    assert result.err == (
        "mta: error: invalid --id: String should have at most 64 characters\n"
    )


def test_watch_dates_in_order(mta: Run) -> None:
    result = mta(*WATCH, "--once", "--from", "+5", "--to", "+2")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --to: must not be before --from\n"


def test_watch_help(mta: Run) -> None:
    result = mta("watch", "--help")
    assert result.code == 0
    assert "--file FILE holds a JSON list of watches" in result.out
    assert "activation link must be clicked by" in result.out
    assert "--urgency {relaxed,normal,urgent}" in result.out
    # The default budget as the pacing paragraph states it.
    budget = PollPolicy().requests_per_day
    assert f"{budget:.0f} a day for one\nwatch" in result.out
    looks = PollPolicy().looks_per_minute_cap("normal")
    assert looks == 5
    assert "up to five times a minute" in result.out


# --- urgency and --explain ------------------------------------------------------


def explained(result: Result) -> dict[str, Any]:
    """The groups of ``mta watch --explain --json``, by their watches."""
    assert result.code == 0, result.err
    plan: dict[str, Any] = result.json()["plan"]
    return {", ".join(group["watches"]): group for group in plan["groups"]}


def test_watch_urgency_in_the_plan(mta: Run, sim: Simulator) -> None:
    normal = explained(mta(*WATCH, "--explain", "--json"))[WATCH_ID]
    assert normal["urgency"] == "normal"
    plans = {
        urgency: explained(mta(*WATCH, "--urgency", urgency, "--explain", "--json"))[
            WATCH_ID
        ]
        for urgency in ("relaxed", "normal", "urgent")
    }
    assert plans["normal"] == normal
    for urgency, group in plans.items():
        assert group["urgency"] == urgency
    # Requests for detection time: half and twice the budget of normal.
    assert plans["relaxed"]["requests_per_day"] == normal["requests_per_day"] / 2
    assert plans["urgent"]["requests_per_day"] == normal["requests_per_day"] * 2
    assert (
        plans["relaxed"]["looks_per_minute_in_windows"]
        < normal["looks_per_minute_in_windows"]
        < plans["urgent"]["looks_per_minute_in_windows"]
    )
    assert (
        plans["relaxed"]["detect_in_windows_s"]
        > normal["detect_in_windows_s"]
        > plans["urgent"]["detect_in_windows_s"]
    )
    assert plans["relaxed"]["detect_outside_s"] > plans["urgent"]["detect_outside_s"]
    # The plan is all: nothing was looked for.
    assert sim.stats.requests_by_route["available-calendar/"] == 0


def test_watch_urgency_in_the_plan_as_text(mta: Run) -> None:
    result = mta(*WATCH, "--urgency", "urgent", "--explain")
    assert result.code == 0, result.err
    header, row = result.out.splitlines()[1:3]
    assert header.split()[2] == "urgency"
    assert row.split()[:3] == ["1071896x1", WATCH_ID, "urgent"]
    budget = PollPolicy().requests_per_day * PollPolicy().urgent_factor
    assert f"{budget:.0f} requests a day in all" in result.out


def test_watch_urgency_is_the_default_of_a_watch_file(mta: Run, tmp_path: Path) -> None:
    path = write_watches(
        tmp_path,
        [
            file_watch(id="unsaid"),
            file_watch(
                id="null",
                urgency=None,
                office_ids=[10489],
                services=[{"service_id": 1063475}],
            ),
            file_watch(
                id="own",
                urgency="normal",
                services=[{"service_id": 1063441}],
                office_ids=[10489],
            ),
        ],
    )
    plain = explained(mta("watch", "--file", path, "--explain", "--json"))
    assert {w: g["urgency"] for w, g in plain.items()} == {
        "unsaid": "normal",
        "null": "normal",
        "own": "normal",
    }
    relaxed = explained(
        mta("watch", "--file", path, "--urgency", "relaxed", "--explain", "--json")
    )
    # --urgency is for the watches that do not say; "own" keeps its own.
    assert {w: g["urgency"] for w, g in relaxed.items()} == {
        "unsaid": "relaxed",
        "null": "relaxed",
        "own": "normal",
    }
    assert relaxed["own"]["requests_per_day"] == plain["own"]["requests_per_day"]
    assert (
        relaxed["unsaid"]["requests_per_day"] == plain["unsaid"]["requests_per_day"] / 2
    )


# --- the printer ----------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_only_on_a_terminal() -> None:
    names = {FUEHRERSCHEIN: "Führerscheinstelle"}
    at = datetime(2026, 11, 24, 8, 0, 5, tzinfo=UTC)
    terminal, plain, out = _Terminal(), io.StringIO(), io.StringIO()

    live = WatchPrinter(out=Output(stdout=out, stderr=terminal), names=names)
    live.status(last_look=at.timestamp(), requests=7, next_at=at.timestamp() + 60)
    assert terminal.getvalue() == (
        "\r\x1b[Klast look 09:00:05 · 7 requests · next 09:01:05"
    )
    live(
        SlotEvent(
            kind=SlotEventKind.NEW,
            watch_id="w",
            office_id=FUEHRERSCHEIN,
            start=at + timedelta(days=1),
            services=((UMSCHREIBUNG, 1),),
            seen_at=at.timestamp(),
        )
    )
    assert terminal.getvalue().endswith("\r\x1b[K")  # cleared before the event
    assert out.getvalue() == (
        "new   Wed 2026-11-25 09:00  Führerscheinstelle (10308174)  [watch w]\n"
    )
    live.status(last_look=None, requests=0, errors=2)
    assert terminal.getvalue().endswith("\r\x1b[Kno look yet · 0 requests · 2 failed")
    live.close()
    assert terminal.getvalue().endswith("\r\x1b[K")

    quiet = WatchPrinter(out=Output(stdout=io.StringIO(), stderr=plain), names=names)
    quiet.status(last_look=at.timestamp(), requests=7, next_at=at.timestamp() + 60)
    quiet.close()
    assert plain.getvalue() == ""


def test_booking_lines() -> None:
    out = io.StringIO()
    printer = WatchPrinter(
        out=Output(stdout=out, stderr=io.StringIO()), names={}, show_credentials=True
    )
    printer(
        BookingEvent(state=BookingState.IDLE, watch_id="w", reason="MTAServerError")
    )
    printer(
        BookingEvent(
            state=BookingState.BOOKED,
            watch_id="w",
            office_id=1,
            process_id=2,
            auth_key="abcd",
        )
    )
    assert out.getvalue().splitlines() == [
        "booking attempt failed: MTAServerError; a later look may try again  [watch w]",
        (
            "booked  ?  ? (1)  [watch w]  process 2; activation link must be "
            f"clicked soon; {CANCEL_HINT}; auth key abcd"
        ),
    ]


def test_unanswered_booking_lines_name_the_server() -> None:
    out = io.StringIO()
    printer = WatchPrinter(
        out=Output(stdout=out, stderr=io.StringIO()),
        names={},
        server="127.0.0.1:8080",
    )
    printer(
        BookingEvent(
            state=BookingState.PRECONFIRMING,
            watch_id="w",
            office_id=1,
            process_id=2,
            reason="MTATimeoutError",
            released=False,
        )
    )
    printer(
        BookingEvent(
            state=BookingState.IDLE, watch_id="w", office_id=1, reason="unanswered"
        )
    )
    assert out.getvalue().splitlines() == [
        (
            "booking not answered  ?  ? (1)  [watch w]  process 2: the "
            "pre-confirmation was sent but its answer was lost (MTATimeoutError) "
            "and the reservation could not be released; the server 127.0.0.1:8080 "
            "may hold it - asking before booking anything else"
        ),
        (
            "no booking held  ?  ? (1)  [watch w]: the server 127.0.0.1:8080 holds "
            "nothing from the unanswered pre-confirmation; the watch may book again"
        ),
    ]
    # --once ends with the unanswered one's exit code (its error's); the
    # "no booking held" line is news, not a failure.
    assert printer.failed_booking is not None
    assert printer.failed_booking.state is BookingState.PRECONFIRMING
