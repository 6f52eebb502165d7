"""``mta`` as a user runs it: output, JSON and exit codes of every command."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from mta_client import cli
from mta_client.cli import ExitCode
from mta_client.client import BERLIN

from .conftest import free_port

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Run, SimulatorThread

RUPPERTSTRASSE = 10489
PASING = 54261
FUEHRERSCHEIN = 10308174  # no captcha
KFZ = 10308013
WOHNSITZ = 1063475
UMSCHREIBUNG = 1071896  # foreign driving licence, at the Führerscheinstelle
NOTFALL_SERVICE = 10339028


def test_exit_codes_are_stable() -> None:
    assert [c.value for c in ExitCode] == list(range(14))


def test_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for line in ("3  nothing found", "5  blocked by the city", "9  could not connect"):
        assert line in out
    for command in ("offices", "services", "slots", "book", "cancel", "confirm"):
        assert command in out


def test_usage_error_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == ExitCode.USAGE
    assert "usage: mta" in capsys.readouterr().err


# --- offices and services --------------------------------------------------------


def test_offices_table(mta: Run) -> None:
    result = mta("offices")
    assert result.code == 0
    header, *rows = result.out.splitlines()
    assert header.split() == ["ID", "NAME", "ADDRESS", "CAPTCHA"]
    pasing = next(r for r in rows if r.startswith(str(PASING)))
    assert "Bürgerbüro Pasing" in pasing
    assert "Landsberger Straße 486, 81241 München" in pasing
    assert pasing.rstrip().endswith("yes")
    assert next(r for r in rows if r.startswith(str(FUEHRERSCHEIN))).endswith("no")
    assert result.err == ""


def test_offices_json_filtered_by_services(mta: Run) -> None:
    result = mta("offices", "--service", str(NOTFALL_SERVICE), "--json")
    assert result.code == 0
    offices = result.json()["offices"]
    assert [(o["id"], o["captcha_required"]) for o in offices] == [(10461, True)]
    both = mta("offices", "--service", str(WOHNSITZ), str(UMSCHREIBUNG), "--json")
    assert both.code == ExitCode.NOTHING_FOUND
    assert both.json() == {"offices": []}


def test_services_search_is_umlaut_tolerant(mta: Run) -> None:
    for query in ("führerschein", "FUEHRERSCHEIN", "fuhrerschein"):
        result = mta("services", "--search", query, "--json")
        assert result.code == 0
        names = [s["name"] for s in result.json()["services"]]
        assert "Umschreibung eines ausländischen Führerscheins" in names
        assert all("Führerschein" in n for n in names)


def test_services_of_one_office(mta: Run) -> None:
    result = mta("services", "--office", str(FUEHRERSCHEIN))
    assert result.code == 0
    assert "Umschreibung eines ausländischen Führerscheins" in result.out
    assert "Wohnsitzanmeldung" not in result.out


def test_services_nothing_matches(mta: Run) -> None:
    result = mta("services", "--search", "Mondlandung")
    assert result.code == ExitCode.NOTHING_FOUND
    assert result.err == "mta: no service matches\n"


def test_unknown_office(mta: Run) -> None:
    result = mta("services", "--office", "999999")
    assert result.code == ExitCode.NOT_FOUND
    assert result.err == "mta: error: unknown office 999999 (see `mta offices`)\n"


# --- slots -------------------------------------------------------------------------


def test_slots_table(mta: Run) -> None:
    result = mta("slots", "--service", str(WOHNSITZ), "--office", str(PASING))
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("Bookable days: ")
    assert lines[1].startswith("Free slots on ")
    assert lines[2].split() == ["OFFICE", "NAME", "FREE", "TIMES"]
    assert lines[3].startswith(f"{PASING}   Bürgerbüro Pasing")
    assert "09:00 09:05" in lines[3]  # Berlin time, the fixed scenario's hours
    assert any("14:00" in line for line in lines)


def test_slots_json_all_offices(mta: Run, sim: Simulator) -> None:
    result = mta("slots", "--service", str(WOHNSITZ), "--json")
    assert result.code == 0
    data = result.json()
    assert data["bookable_dates"]
    assert data["slots_date"] == data["bookable_dates"][0]
    offices = {s["office_id"] for s in data["slots"]}
    # Every Bürgerbüro offering the service, asked in one request.
    assert {RUPPERTSTRASSE, PASING, 102522} <= offices
    assert sim.stats.requests_by_route["available-calendar/"] == 1
    first = data["slots"][0]
    start = datetime.fromisoformat(first["start"])
    assert (
        start.utcoffset()
        == datetime.fromtimestamp(first["timestamp"], BERLIN).utcoffset()
    )
    assert int(start.timestamp()) == first["timestamp"]
    assert start.astimezone(BERLIN).date().isoformat() == data["slots_date"]
    assert first["office_name"]


def test_slots_of_a_given_day(mta: Run) -> None:
    first = mta("slots", "--service", str(UMSCHREIBUNG), "--json").json()
    day = first["bookable_dates"][1]
    result = mta(
        "slots",
        "--service",
        str(UMSCHREIBUNG),
        "--office",
        str(FUEHRERSCHEIN),
        "--day",
        day,
        "--json",
    )
    assert result.code == 0
    data = result.json()
    assert data["slots_date"] == day
    assert {s["start"][:10] for s in data["slots"]} == {day}


@pytest.mark.parametrize("sim_options", [{"scenario": "quiet"}])
def test_slots_nothing_found(mta: Run) -> None:
    result = mta(
        "slots", "--service", str(UMSCHREIBUNG), "--from", "today", "--to", "+30"
    )
    assert result.code == ExitCode.NOTHING_FOUND
    assert result.out == ""
    assert result.err == "mta: no free slots\n"
    as_json = mta("slots", "--service", str(UMSCHREIBUNG), "--json")
    assert as_json.code == ExitCode.NOTHING_FOUND
    assert as_json.json()["slots"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["--service", "abc"],
        ["--service", "0"],
        ["--service", f"{WOHNSITZ}:26"],
        ["--service", str(WOHNSITZ), "--from", "someday"],
        ["--service", str(WOHNSITZ), "--office", "-3"],
    ],
)
def test_slots_bad_arguments(mta: Run, args: list[str], sim: Simulator) -> None:
    result = mta("slots", *args)
    assert result.code == ExitCode.USAGE
    assert "mta slots: error: argument" in result.err
    assert result.out == ""
    assert sum(sim.stats.requests_by_route.values()) == 0


def test_slots_unknown_service(mta: Run) -> None:
    result = mta("slots", "--service", "4242")
    assert result.code == ExitCode.NOT_FOUND
    assert result.err == "mta: error: unknown service 4242 (see `mta services`)\n"


def test_slots_office_without_the_service(mta: Run, sim: Simulator) -> None:
    result = mta("slots", "--service", str(WOHNSITZ), "--office", str(KFZ))
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"mta: error: invalid --office: office {KFZ} "
        f"does not offer service {WOHNSITZ}\n"
    )
    assert sim.stats.requests_by_route["available-calendar/"] == 0


def test_slots_reversed_range_names_the_option(mta: Run) -> None:
    result = mta("slots", "--service", str(UMSCHREIBUNG), "--from", "+5", "--to", "+1")
    assert result.code == ExitCode.USAGE
    assert result.err == "mta: error: invalid --to: must not be before the start date\n"


# --- errors of the city's server --------------------------------------------------


def test_maintenance(mta: Run, sim: Simulator, server: str) -> None:
    sim.maintenance = True
    result = mta("offices")
    assert result.code == ExitCode.MAINTENANCE
    # Messages name the server asked: the simulator, not the city.
    assert result.err.startswith(
        f"mta: error: the booking system at {server} is in maintenance"
    )
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


@pytest.mark.parametrize("sim_options", [{"blacklist": ["127.0.0.1"]}])
def test_blocked(mta: Run, server: str) -> None:
    result = mta("slots", "--service", str(WOHNSITZ), "--json")
    assert result.code == ExitCode.BLOCKED
    assert result.err.startswith(f"mta: error: blocked by the server {server}")
    error = result.json()["error"]
    assert error == {
        "exit_code": 5,
        "kind": "blocked",
        "type": "MTAIpBlacklistedError",
        "message": result.err.removeprefix("mta: error: ").strip(),
    }


def test_gateway_block_page(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="html_block")
    assert mta("offices").code == ExitCode.BLOCKED


def test_rate_limited(mta: Run, sim: Simulator, server: str) -> None:
    sim.faults.add(kind="rate_limit", times=None)
    result = mta("offices", "--json")
    assert result.code == ExitCode.RATE_LIMITED
    assert result.err == (
        f"mta: error: rate limited by the server {server}; retry in 61 s\n"
    )
    assert result.json()["error"]["retry_after"] == 61


def test_unreachable(mta: Run) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/buergeransicht/api/citizen/"
    result = mta("offices", base_url=url)
    assert result.code == ExitCode.UNREACHABLE
    assert result.err.startswith(
        f"mta: error: could not reach the server 127.0.0.1:{port} "
    )
    assert result.err.count("\n") == 1


def test_timeout(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="hang", times=None, delay=30)
    result = mta("offices", "--timeout", "0.2")
    assert result.code == ExitCode.UNREACHABLE
    assert result.err.startswith("mta: error: timed out after")


def test_invalid_response(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="malformed_json")
    result = mta("offices")
    assert result.code == ExitCode.INVALID_RESPONSE
    assert result.err.startswith("mta: error: expected JSON")


def test_server_error(mta: Run, sim: Simulator) -> None:
    sim.faults.add(kind="bad_gateway", times=None)
    assert mta("offices").code == ExitCode.INVALID_RESPONSE


def test_verbose_shows_the_traceback(mta: Run, sim: Simulator) -> None:
    sim.maintenance = True
    quiet = mta("offices")
    loud = mta("offices", "-v")
    assert "Traceback" not in quiet.err
    assert "Traceback (most recent call last)" in loud.err
    assert loud.err.rstrip().splitlines()[-1] == quiet.err.strip()
    assert loud.code == quiet.code == ExitCode.MAINTENANCE


def test_bad_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["offices", "--base-url", "www48.muenchen.de"]) == ExitCode.USAGE
    assert "invalid --base-url" in capsys.readouterr().err


def test_base_url_from_the_environment(
    served: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MTA_BASE_URL", served.base_url)
    assert cli.main(["offices", "--json"]) == 0
    assert capsys.readouterr().out.startswith("{")


def test_simulate_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "altcha", None)
    assert cli.main(["simulate"]) == ExitCode.UNEXPECTED
    assert capsys.readouterr().err == (
        "mta: error: the simulator needs extra packages: "
        "pip install 'mta-client[simulator]'\n"
    )


def test_simulate_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "--scenario", "mars"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "invalid --scenario: unknown 'mars'" in err
    assert "munich-weekday" in err
