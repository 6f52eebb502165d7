"""The catalogue kept between runs: a repeated ``mta slots`` costs one request.

Issue 10, item 10: with the captcha token kept already, a second ``mta
slots`` still asked for the catalogue (``offices-and-services/``) and then
the calendar. The catalogue is kept now in the state folder, for a day, per
server, and asked for again when it is damaged, old, or contradicted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import contextlib
from functools import partial
import json
import logging
import math
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any
import urllib.request

import pytest

from mta_client import MTAClient, cli
from mta_client.cli import ExitCode
from mta_client.cli.catalogue import NotInCatalogueError, with_fresh_catalogue
from mta_client.cli.session import (
    CATALOGUE_FILE,
    CATALOGUE_TTL,
    MAX_CATALOGUE_BYTES,
    TOKEN_FILE,
    CatalogueFile,
)
from mta_client.exceptions import MTAInvalidLocationAndServiceCombinationError

from .conftest import free_port

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Run, SimulatorThread

FUEHRERSCHEIN = 10308174  # no captcha
UMSCHREIBUNG = 1071896
RUPPERTSTRASSE = 10489  # asks for a captcha
WOHNSITZ = 1063475
CATALOGUE = "offices-and-services/"
CALENDAR = "available-calendar/"
SLOTS = ("slots", "--service", str(WOHNSITZ), "--office", str(RUPPERTSTRASSE))
NO_CAPTCHA_SLOTS = (
    "slots",
    "--service",
    str(UMSCHREIBUNG),
    "--office",
    str(FUEHRERSCHEIN),
)
WATCH = ("watch", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
DAY = 24 * 3600.0


@pytest.fixture(name="folder")
def folder_fixture(tmp_path: Path) -> Path:
    """The state folder of the tests' runs (see the conftest)."""
    return tmp_path / "xdg-state" / "mta"


def counted(sim: Simulator) -> int:
    """Requests the simulator's rate limiter counted."""
    return sum(sim.stats.requests_by_ip.values())


def asked(sim: Simulator, route: str = CATALOGUE) -> int:
    return sim.stats.requests_by_route[route]


def kept(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (folder / CATALOGUE_FILE).read_text(encoding="utf-8")
    )
    return data


def keep(folder: Path, data: dict[str, Any] | bytes) -> None:
    """Write the catalogue file as another (older, damaged) run left it."""
    path = folder / CATALOGUE_FILE
    folder.mkdir(parents=True, exist_ok=True)
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    path.write_bytes(raw)
    path.chmod(0o644)


# --- what a run costs -------------------------------------------------------------


def test_a_repeated_slots_costs_one_request(mta: Run, sim: Simulator) -> None:
    first = mta(*SLOTS)
    assert first.code == 0
    # The catalogue, a captcha token (challenge, verify) and the calendar.
    assert counted(sim) == 4
    second = mta(*SLOTS)
    assert second.code == 0
    assert second.out == first.out
    assert second.err == ""
    # The calendar alone: catalogue and token came from the state folder.
    assert counted(sim) == 5
    assert asked(sim) == 1
    assert asked(sim, CALENDAR) == 2
    assert sim.stats.captcha_challenges == 1


def test_the_catalogue_file(mta: Run, served: SimulatorThread, folder: Path) -> None:
    before = time.time()
    assert mta(*SLOTS).code == 0
    path = folder / CATALOGUE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    ((key, entry),) = kept(folder).items()
    assert key == served.base_url
    assert before <= entry["fetched_at"] <= time.time()
    # The server's answer as it came (a Catalogue cannot be written back).
    with urllib.request.urlopen(served.base_url + CATALOGUE, timeout=10) as answer:  # noqa: S310 - the simulator
        assert entry["answer"] == json.loads(answer.read())
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_link_to_the_catalogue_file_stays_a_link(
    mta: Run, served: SimulatorThread, folder: Path, tmp_path: Path
) -> None:
    real = tmp_path / "catalogue-elsewhere.json"
    real.write_text("{}", encoding="utf-8")
    folder.mkdir(parents=True)
    (folder / CATALOGUE_FILE).symlink_to(real)
    assert mta(*SLOTS).code == 0
    assert (folder / CATALOGUE_FILE).is_symlink()
    assert served.base_url in json.loads(real.read_text(encoding="utf-8"))
    assert real.stat().st_mode & 0o777 == 0o600


def test_the_captcha_token_file_is_written_through_a_link(
    mta: Run, served: SimulatorThread, folder: Path, tmp_path: Path
) -> None:
    real = tmp_path / "tokens-elsewhere.json"
    real.write_text("{}", encoding="utf-8")
    folder.mkdir(parents=True)
    (folder / TOKEN_FILE).symlink_to(real)
    assert mta(*SLOTS).code == 0
    assert (folder / TOKEN_FILE).is_symlink()
    assert served.base_url in json.loads(real.read_text(encoding="utf-8"))
    assert real.stat().st_mode & 0o777 == 0o600


# --- how long, and for which server -----------------------------------------------


@pytest.mark.parametrize(
    ("age", "again"),
    [
        (60.0, 0),
        (CATALOGUE_TTL - 60, 0),
        (CATALOGUE_TTL + 1, 1),
        (-3600.0, 1),
    ],
    ids=["a minute", "almost a day", "over a day", "from the future"],
)
def test_the_kept_catalogue_is_used_for_a_day(  # noqa: PLR0917 - fixtures
    mta: Run,
    sim: Simulator,
    served: SimulatorThread,
    folder: Path,
    age: float,
    again: int,
) -> None:
    first = mta(*SLOTS)
    data = kept(folder)
    data[served.base_url]["fetched_at"] = time.time() - age
    keep(folder, data)
    second = mta(*SLOTS)
    assert second.code == 0
    assert second.out == first.out
    assert asked(sim) == 1 + again
    fetched_at = kept(folder)[served.base_url]["fetched_at"]
    if again:  # replaced by the new answer
        assert abs(fetched_at - time.time()) < 60
    else:
        assert fetched_at == data[served.base_url]["fetched_at"]


def test_the_kept_catalogue_is_per_server(
    mta: Run, sim: Simulator, served: SimulatorThread, folder: Path
) -> None:
    assert mta(*SLOTS).code == 0
    entry = kept(folder)[served.base_url]
    other = "https://elsewhere.example/api/"
    gone = "https://gone.example/api/"
    old = {**entry, "fetched_at": time.time() - 2 * DAY}
    keep(folder, {other: entry, gone: old})
    # Another server's catalogue is not this one's.
    assert mta(*SLOTS).code == 0
    assert asked(sim) == 2
    # It is kept; one past its day is dropped.
    assert set(kept(folder)) == {other, served.base_url}
    # The same URL without its last slash is the same server.
    assert mta(*SLOTS, base_url=served.base_url.rstrip("/")).code == 0
    assert asked(sim) == 2


# --- damaged files ----------------------------------------------------------------


def _truncated(_url: str, good: bytes) -> bytes:
    return good[: len(good) // 2]


def _not_utf8(_url: str, good: bytes) -> bytes:
    return good.replace(b"M\\u00fcnchen", b"M\xfcnchen", 1) + b"\xff"


def _not_json(_url: str, _good: bytes) -> bytes:
    return b"<html><body>502 Bad Gateway</body></html>"


def _nan(url: str, good: bytes) -> bytes:
    entry = json.loads(good)[url]
    return json.dumps({url: {**entry, "fetched_at": math.nan}}).encode()


def _deep(_url: str, _good: bytes) -> bytes:
    return b"[" * 100_000


def _huge(url: str, good: bytes) -> bytes:
    # Valid JSON, this server's fresh entry: only its size is wrong.
    return good[:-1] + b" " * MAX_CATALOGUE_BYTES + b"}"


def _shape(make: Callable[[str, dict[str, Any]], object]) -> Callable[..., bytes]:
    def damage(url: str, good: bytes) -> bytes:
        return json.dumps(make(url, json.loads(good)[url])).encode()

    return damage


DAMAGES: dict[str, Callable[[str, bytes], bytes]] = {
    "truncated": _truncated,
    "not UTF-8": _not_utf8,
    "not JSON": _not_json,
    "empty": lambda _url, _good: b"",
    "NaN fetch time": _nan,
    "nested too deep": _deep,
    "huge": _huge,
    "a list": _shape(lambda _url, entry: [entry]),
    "entry not an object": _shape(lambda url, _entry: {url: "yesterday"}),
    "no fetch time": _shape(lambda url, entry: {url: {"answer": entry["answer"]}}),
    "fetch time a string": _shape(
        lambda url, entry: {url: {**entry, "fetched_at": "yesterday"}}
    ),
    "fetch time true": _shape(lambda url, entry: {url: {**entry, "fetched_at": True}}),
    "no answer": _shape(lambda url, entry: {url: {"fetched_at": entry["fetched_at"]}}),
    "answer of the wrong shape": _shape(
        lambda url, entry: {url: {**entry, "answer": {"offices": 1, "services": {}}}}
    ),
    "office of the wrong shape": _shape(
        lambda url, entry: {
            url: {
                **entry,
                "answer": {
                    **entry["answer"],
                    "offices": [{"id": "ten", "name": None}],
                },
            }
        }
    ),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_catalogue_file_is_ignored_and_replaced(  # noqa: PLR0917 - fixtures
    mta: Run,
    sim: Simulator,
    served: SimulatorThread,
    folder: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[str, bytes], bytes],
) -> None:
    first = mta(*SLOTS)
    good = (folder / CATALOGUE_FILE).read_bytes()
    keep(folder, damage(served.base_url, good))
    caplog.set_level(logging.DEBUG, logger="mta_client.cli.session")
    second = mta(*SLOTS)
    assert second.code == 0
    assert second.out == first.out
    assert second.err == ""
    assert "gnoring" in caplog.text  # "Ignoring the catalogue file: …"
    assert asked(sim) == 2
    # Replaced: a whole, private file with the new answer, used next time.
    path = folder / CATALOGUE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    answer = json.loads(good)[served.base_url]["answer"]
    assert kept(folder)[served.base_url]["answer"] == answer
    assert mta(*SLOTS).code == 0
    assert asked(sim) == 2


def test_an_unreadable_catalogue_file_is_no_error(
    mta: Run, sim: Simulator, folder: Path
) -> None:
    folder.mkdir(parents=True)
    (folder / CATALOGUE_FILE).mkdir()  # cannot be read, nor replaced
    result = mta(*SLOTS)
    assert result.code == 0
    assert result.err == ""
    assert asked(sim) == 1


# --- asking the server instead ----------------------------------------------------


def test_refresh_catalogue_asks_the_server(
    mta: Run, sim: Simulator, served: SimulatorThread, folder: Path, tmp_path: Path
) -> None:
    first = mta(*SLOTS)
    before = kept(folder)[served.base_url]["fetched_at"]
    second = mta(*SLOTS, "--refresh-catalogue")
    assert second.code == 0
    assert second.out == first.out
    assert asked(sim) == 2
    assert kept(folder)[served.base_url]["fetched_at"] > before

    state = str(tmp_path / "state.json")
    assert mta(*WATCH, "--once", "--state", state).code == 0
    assert asked(sim) == 2  # the kept catalogue, at the start of a watch
    assert mta(*WATCH, "--once", "--state", state, "--refresh-catalogue").code == 0
    assert asked(sim) == 3

    book = (
        "book",
        "--service",
        str(UMSCHREIBUNG),
        "--office",
        str(FUEHRERSCHEIN),
        "--earliest",
        "--name",
        "Mustermann",
    )
    assert mta(*book, "--email", "a@example.org").code == 0
    assert asked(sim) == 3
    assert mta(*book, "--email", "b@example.org", "--refresh-catalogue").code == 0
    assert asked(sim) == 4


def test_the_listings_ask_the_server_and_keep_its_answer(
    mta: Run, sim: Simulator
) -> None:
    assert mta("services", "--search", "wohnsitz").code == 0
    assert mta("offices", "--service", str(WOHNSITZ)).code == 0
    assert asked(sim) == 2
    # What they fetched is what the next command uses.
    assert mta(*SLOTS).code == 0
    assert asked(sim) == 2


def test_a_watch_without_state_keeps_no_catalogue(
    mta: Run, sim: Simulator, folder: Path
) -> None:
    assert mta(*NO_CAPTCHA_SLOTS).code == 0
    assert mta(*WATCH, "--once", "--no-state").code == 0
    # It neither used the kept catalogue nor wrote one.
    assert asked(sim) == 2
    assert {p.name for p in folder.iterdir()} == {CATALOGUE_FILE}


# --- a catalogue the city has changed since ---------------------------------------


def _edit(folder: Path, url: str, change: Callable[[dict[str, Any]], None]) -> None:
    data = kept(folder)
    change(data[url]["answer"])
    keep(folder, data)


def test_a_service_the_kept_catalogue_lacks_is_asked_for_again(
    mta: Run, sim: Simulator, served: SimulatorThread, folder: Path
) -> None:
    first = mta(*SLOTS)

    def before_the_service(answer: dict[str, Any]) -> None:
        answer["services"] = [s for s in answer["services"] if s["id"] != WOHNSITZ]
        answer["relations"] = [
            r for r in answer["relations"] if r["serviceId"] != WOHNSITZ
        ]

    _edit(folder, served.base_url, before_the_service)
    second = mta(*SLOTS)
    assert second.code == 0
    assert second.out == first.out
    assert asked(sim) == 2
    services = kept(folder)[served.base_url]["answer"]["services"]
    assert WOHNSITZ in {s["id"] for s in services}


@pytest.mark.parametrize("from_file", [False, True], ids=["options", "--file"])
def test_a_watch_of_a_service_the_kept_catalogue_lacks(  # noqa: PLR0917 - fixtures
    mta: Run,
    sim: Simulator,
    served: SimulatorThread,
    folder: Path,
    tmp_path: Path,
    from_file: bool,
) -> None:
    assert mta(*NO_CAPTCHA_SLOTS).code == 0

    def before_the_service(answer: dict[str, Any]) -> None:
        answer["services"] = [s for s in answer["services"] if s["id"] != UMSCHREIBUNG]
        answer["relations"] = [
            r for r in answer["relations"] if r["serviceId"] != UMSCHREIBUNG
        ]

    _edit(folder, served.base_url, before_the_service)
    watch: tuple[str, ...] = WATCH
    if from_file:
        watches = tmp_path / "watches.json"
        item = {
            "id": "licence",
            "services": [{"service_id": UMSCHREIBUNG, "count": 1}],
            "office_ids": [FUEHRERSCHEIN],
        }
        watches.write_text(json.dumps([item]), encoding="utf-8")
        watch = ("watch", "--file", str(watches))
    result = mta(*watch, "--once", "--state", str(tmp_path / "state.json"))
    assert result.code == 0, result.err
    assert result.out.startswith("new ")
    assert asked(sim) == 2


def test_an_office_that_wants_a_captcha_now(
    mta: Run, sim: Simulator, served: SimulatorThread, folder: Path
) -> None:
    first = mta(*SLOTS)

    def before_the_captcha(answer: dict[str, Any]) -> None:
        for office in answer["offices"]:
            if office["id"] == RUPPERTSTRASSE:
                office["scope"]["captchaActivatedRequired"] = False

    _edit(folder, served.base_url, before_the_captcha)
    second = mta(*SLOTS)
    assert second.code == 0
    assert second.out == first.out
    # Asked without a token (captchaMissing), then the catalogue, then with it.
    assert asked(sim) == 2
    assert asked(sim, CALENDAR) == 3


def test_an_office_that_no_longer_offers_the_service(
    mta: Run, sim: Simulator, served: SimulatorThread, folder: Path
) -> None:
    assert mta(*NO_CAPTCHA_SLOTS).code == 0

    def before_the_change(answer: dict[str, Any]) -> None:
        answer["relations"].append(
            {"officeId": FUEHRERSCHEIN, "serviceId": WOHNSITZ, "slots": 1}
        )

    _edit(folder, served.base_url, before_the_change)
    result = mta("slots", "--service", str(WOHNSITZ), "--office", str(FUEHRERSCHEIN))
    # The server refused the combination; its catalogue says why.
    assert result.code == ExitCode.USAGE
    assert result.err == (
        f"mta: error: invalid --office: office {FUEHRERSCHEIN} does not offer "
        f"service {WOHNSITZ}\n"
    )
    assert asked(sim) == 2
    assert asked(sim, CALENDAR) == 2  # one refused, none sent again


async def test_a_catalogue_of_this_run_is_not_asked_for_again(tmp_path: Path) -> None:
    attempts: list[bool] = []

    async def attempt(refresh: bool) -> None:
        attempts.append(refresh)
        raise MTAInvalidLocationAndServiceCombinationError(status=400)

    fresh = CatalogueFile(tmp_path / CATALOGUE_FILE)
    for kept_file in (None, fresh):
        with pytest.raises(MTAInvalidLocationAndServiceCombinationError):
            await with_fresh_catalogue(kept_file, attempt)
    assert attempts == [False, False]

    async def unknown(refresh: bool) -> None:
        attempts.append(refresh)
        raise NotInCatalogueError("unknown office 1", ExitCode.NOT_FOUND)

    old = CatalogueFile(tmp_path / CATALOGUE_FILE)
    old.cached_at = time.time() - 3600
    with pytest.raises(NotInCatalogueError):
        await with_fresh_catalogue(old, unknown)
    # Once more with a new catalogue, whose outcome counts: no loop.
    assert attempts == [False, False, False, True]


# --- a long watch -----------------------------------------------------------------


class DayPerSleep:
    """Real time, a day later after each sleep (which does not wait)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.offset += DAY + max(0.0, seconds)
        await asyncio.sleep(0)


def test_a_long_watch_asks_for_the_catalogue_every_day(  # noqa: PLR0917 - fixtures
    mta: Run,
    sim: Simulator,
    served: SimulatorThread,
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert mta(*NO_CAPTCHA_SLOTS).code == 0
    clock = DayPerSleep()
    monkeypatch.setattr(cli, "MTAClient", partial(MTAClient, clock=clock))
    state = str(tmp_path / "state.json")
    result = mta(*WATCH, "--checks", "3", "--interval", "60", "--state", state)
    assert result.code in {ExitCode.OK, ExitCode.NOTHING_FOUND}, result.err
    assert clock.offset > 2 * DAY
    # The first look used the kept catalogue; the second and the third came
    # a day later each, and asked again.
    assert asked(sim) == 1 + 2
    assert asked(sim, CALENDAR) == 1 + 3
    # Each new answer was kept at once, with the watch's time.
    fetched_at = kept(folder)[served.base_url]["fetched_at"]
    assert fetched_at > time.time() + 2 * DAY - 60


# --- as a user measures it --------------------------------------------------------


def _stats(control: str) -> dict[str, Any]:
    with urllib.request.urlopen(control + "stats", timeout=10) as answer:  # noqa: S310 - the simulator
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


@pytest.fixture(name="simulate")
def simulate_fixture(socket_enabled: None) -> Iterator[tuple[str, str]]:
    """``mta simulate --control`` as a process: (base URL, control URL)."""
    port = free_port()
    command = ["simulate", "--control", "--port", str(port), "--scenario", "fixed"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mta_client", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MTA_")},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on" in line, line
        base_url = line.rsplit(" ", 1)[-1].strip()
        yield base_url, f"http://127.0.0.1:{port}/_simulator/"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=20)
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_second_slots_costs_one_request_against_mta_simulate(
    simulate: tuple[str, str],
) -> None:
    base_url, control = simulate

    def slots() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mta_client", *SLOTS, "--base-url", base_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("MTA_")},
        )

    first = slots()
    assert first.returncode == 0, first.stderr
    after_first = _stats(control)
    second = slots()
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    after_second = _stats(control)
    counted_first = sum(after_first["requests_by_ip"].values())
    counted_second = sum(after_second["requests_by_ip"].values())
    assert counted_first == 4
    assert counted_second - counted_first == 1
    assert after_second["requests_by_route"] == {
        **after_first["requests_by_route"],
        CALENDAR: after_first["requests_by_route"][CALENDAR] + 1,
    }
