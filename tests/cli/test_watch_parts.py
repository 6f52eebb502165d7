"""The parts of ``mta watch`` without a server: options, ids, pacing, state."""

from __future__ import annotations

import argparse
from datetime import time, timedelta
from pathlib import Path

import pytest

from mta_client.cli.parsing import (
    build_parser,
    duration_seconds,
    parse_days,
    parse_duration,
    parse_time_ranges,
    parse_urgency,
    parse_weekdays,
)
from mta_client.cli.watchdefs import default_watch_id
from mta_client.cli.watching import (
    MIN_CITY_INTERVAL,
    default_state_path,
    poll_policy,
    state_store,
)
from mta_client.client import DEFAULT_BASE_URL
from mta_client.store import JSONFileStore, MemoryStore
from mta_client.watch import TimeRange
from mta_client.watcher import PollPolicy

SIMULATOR = "http://127.0.0.1:8080/buergeransicht/api/citizen/"


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon", [0]),
        ("Monday, wed", [0, 2]),
        ("0,2,6", [0, 2, 6]),
        ("mon-fri", [0, 1, 2, 3, 4]),
        ("fri-mon", [0, 4, 5, 6]),
        ("sat-sun,tue", [1, 5, 6]),
        ("mon,", [0]),
    ],
)
def test_parse_weekdays(text: str, days: list[int]) -> None:
    assert parse_weekdays(text) == days


@pytest.mark.parametrize("text", ["", ",", "7", "monkey", "mon-", "mo", "-1"])
def test_parse_weekdays_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_weekdays(text)


def test_parse_time_ranges() -> None:
    assert parse_time_ranges("08:00-12:00, 14:00-16:30") == [
        TimeRange(start=time(8), end=time(12)),
        TimeRange(start=time(14), end=time(16, 30)),
    ]
    for text in ("08:00", "8-12", "12:00-08:00", "08:00-08:00"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_time_ranges(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("90m", 5400), ("2h", 7200), ("1d", 86400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_durations_combined_and_wrong() -> None:
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("1D 2H".replace(" ", "")) == 93600
    assert duration_seconds("PT90M") is None
    assert duration_seconds("-5") is None
    assert duration_seconds("nan") is None
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")


def test_parse_days() -> None:
    assert parse_days("0") == 0
    assert parse_days("365") == 365
    for text in ("366", "-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_days(text)


@pytest.mark.parametrize(
    ("text", "urgency"),
    [("relaxed", "relaxed"), ("normal", "normal"), (" URGENT ", "urgent")],
)
def test_parse_urgency(text: str, urgency: str) -> None:
    assert parse_urgency(text) == urgency


@pytest.mark.parametrize("text", ["", "panic", "urgent!", "2", "relax"])
def test_parse_urgency_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not an urgency"):
        parse_urgency(text)


def test_watch_urgency_option() -> None:
    parser = build_parser()
    # Not given: None, so that a watch file's own urgency (or the default) counts.
    assert parser.parse_args(["watch"]).urgency is None
    args = parser.parse_args(["watch", "--service", "1", "--urgency", "relaxed"])
    assert args.urgency == "relaxed"


def test_default_watch_id() -> None:
    assert default_watch_id([(1071896, 1)], None) == "1071896"
    assert default_watch_id([(2, 2), (1, 1)], [30, 10, 30]) == "1+2x2@10+30"
    long = default_watch_id([(1063475, 1)], list(range(100000, 100020)))
    assert len(long) == 64
    assert long.startswith("1063475@100000+100001+")
    assert long != default_watch_id([(1063475, 1)], list(range(100000, 100021)))


def test_poll_policy() -> None:
    assert poll_policy(DEFAULT_BASE_URL, None) == PollPolicy()
    city = poll_policy(DEFAULT_BASE_URL, 5)
    assert city.other_interval == city.window_interval == MIN_CITY_INTERVAL
    assert city.error_backoff == PollPolicy().error_backoff
    slow = poll_policy(DEFAULT_BASE_URL, 300)
    assert (slow.other_interval, slow.window_interval) == (300, 30)
    fast = poll_policy(SIMULATOR, 0.5)
    assert fast.other_interval == fast.window_interval == 0.5
    assert fast.error_backoff == fast.block_backoff == 0.5


def test_default_state_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    assert default_state_path({"XDG_STATE_HOME": "/var/state"}) == Path(
        "/var/state/mta/watch.json"
    )
    # A relative XDG_STATE_HOME is invalid (XDG spec) and ignored.
    expected = home / ".local/state/mta/watch.json"
    assert default_state_path({"XDG_STATE_HOME": "state"}) == expected
    assert default_state_path({}) == expected


def test_state_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    store, path = state_store(None)
    assert isinstance(store, JSONFileStore)
    assert path == store.path == tmp_path / "mta" / "watch.json"
    store, path = state_store(str(tmp_path / "w.json"))
    assert path == tmp_path / "w.json"
    for option, no_state in (("-", False), (None, True)):
        store, path = state_store(option, no_state=no_state)
        assert isinstance(store, MemoryStore)
        assert path is None


def test_state_is_kept_apart_per_server(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    city = default_state_path(env)
    assert city == tmp_path / "mta" / "watch.json"
    assert (
        default_state_path(
            env, base_url="https://www48.muenchen.de/buergeransicht/api/citizen"
        )
        == city
    )
    simulator = default_state_path(
        env, base_url="http://127.0.0.1:8080/buergeransicht/api/citizen/"
    )
    other = default_state_path(
        env, base_url="http://127.0.0.1:9090/buergeransicht/api/citizen/"
    )
    assert simulator.parent == city.parent
    assert len({city, simulator, other}) == 3
