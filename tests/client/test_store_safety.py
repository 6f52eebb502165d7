"""The state store refuses what it cannot trust, keeps what it does not know.

A state file may be old, hand-edited, written by a newer version, or reached
through a symbolic link: none of that may crash the engine, lose data, or
turn the link into a second file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mta_client.store import (
    STATE_VERSION,
    JSONFileStore,
    StoreError,
    dump_state,
    parse_state,
)
from mta_client.watch import BookingState

WATCH = "1071896@10308174"
START = "2026-12-02T08:00:00Z"
CREDENTIALS = {"process_id": 4711, "auth_key": "ab" * 16}


def _v2(booking: object = None, reported: object = None) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if booking is not None:
        entry["booking"] = booking
    if reported is not None:
        entry["reported"] = reported
    return {"version": STATE_VERSION, "watches": {WATCH: entry}}


BAD_STATES: dict[str, tuple[dict[str, Any], str]] = {
    "watches is a list": ({"version": 2, "watches": []}, "watches"),
    "a watch is a number": ({"version": 2, "watches": {WATCH: 5}}, WATCH),
    "unknown booking state": (_v2({"state": "weird"}), "booking.state"),
    "process id is text": (
        _v2({"state": "booked", "process_id": "many", "auth_key": "k"}),
        "booking.process_id",
    ),
    "booked without credentials": (
        _v2({"state": "booked", "office_id": 10308174, "start": START}),
        "needs process_id and auth_key",
    ),
    "reserved without auth key": (
        _v2({"state": "reserved", "process_id": 4711, "start": START}),
        "needs process_id and auth_key",
    ),
    "huge booking time": (
        _v2({"state": "booked", **CREDENTIALS, "start": 1e20}),
        "booking.start",
    ),
    "year 9999 deadline": (
        _v2(
            {
                "state": "booked",
                **CREDENTIALS,
                "start": START,
                "activation_deadline": "9999-12-31T23:59:59Z",
            }
        ),
        "not a plausible time",
    ),
    "slot key is not a slot": (_v2(reported={"abc": 1.0}), "reported"),
    "slot key in year 9500": (
        _v2(reported={"10308174@237623848560": 1.0}),
        "implausible time",
    ),
    "slot key beyond datetime": (
        _v2(reported={"10308174@99999999999999": 1.0}),
        "reported",
    ),
    "first seen is NaN": (
        _v2(reported={"10308174@1764748800": float("nan")}),
        "reported",
    ),
    "first seen is text": (_v2(reported={"10308174@1764748800": "soon"}), "reported"),
    "version is text": ({"version": "2", "watches": {}}, "no version number"),
    "version is true": ({"version": True, "watches": {}}, "no version number"),
    "version 1 with a text booking": (
        {"version": 1, "watches": {WATCH: {"booking": "abc"}}},
        "booking",
    ),
    "version 1 with a huge time": (
        {"version": 1, "watches": {WATCH: {"booking": {"start": 10**20}}}},
        "booking.start",
    ),
}


@pytest.mark.parametrize("name", BAD_STATES)
def test_a_state_of_the_wrong_shape_is_refused(name: str) -> None:
    data, where = BAD_STATES[name]
    with pytest.raises(StoreError) as excinfo:
        parse_state(data)
    message = str(excinfo.value)
    assert where in message
    assert "\n" not in message
    # Clear words, no Python internals.
    assert "Error" not in message
    assert "https://errors.pydantic.dev" not in message


def test_an_unknown_version_is_refused_not_dropped() -> None:
    with pytest.raises(StoreError, match="stored state of version 3"):
        parse_state({"version": 3, "watches": {}})


def test_good_states_still_parse() -> None:
    state = parse_state(
        _v2(
            {"state": "booked", **CREDENTIALS, "office_id": 10308174, "start": START},
            reported={"10308174@1764748800": 1_764_700_000.0},
        )
    )
    booking = state.watches[WATCH].booking
    assert booking.state is BookingState.BOOKED
    # Cancelled bookings keep the process id, not the (rotated) auth key.
    cancelled = parse_state(_v2({"state": "cancelled", "process_id": 4711}))
    assert cancelled.watches[WATCH].booking.state is BookingState.CANCELLED
    # A lost reserve has no credentials (the answer never came), but a time.
    reserving = parse_state(
        _v2({"state": "reserving", "start": START, "since": "2026-12-01T22:30:00Z"})
    )
    since = reserving.watches[WATCH].booking.since
    assert since is not None
    assert since.isoformat() == "2026-12-01T22:30:00+00:00"


def test_unknown_top_level_keys_survive_parse_and_dump() -> None:
    data = {**_v2(reported={}), "written_by": "mta 9", "future": {"a": [1, 2]}}
    again = dump_state(parse_state(data))
    assert again["written_by"] == "mta 9"
    assert again["future"] == {"a": [1, 2]}
    # Version 1 files keep theirs through the migration too.
    migrated = dump_state(parse_state({"version": 1, "watches": {}, "note": "hi"}))
    assert migrated["note"] == "hi"
    assert migrated["version"] == STATE_VERSION


async def test_the_file_store_writes_back_keys_it_does_not_know(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({**_v2(reported={}), "future": 1}), encoding="utf-8")
    store = JSONFileStore(path)
    loaded = await store.load()
    # A host that keeps only what it knows (the watcher) saves less...
    await store.save({"version": STATE_VERSION, "watches": {}})
    # ...and the file still has the key.
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == {"version": STATE_VERSION, "watches": {}, "future": 1}
    assert "future" in loaded


async def test_a_file_that_is_not_utf8_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"version": 2, "watches": {}, "\xff\xfe": 1}')
    with pytest.raises(StoreError, match="is not UTF-8 text"):
        await JSONFileStore(path).load()


async def test_a_deeply_nested_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(StoreError, match="is not valid JSON"):
        await JSONFileStore(path).load()


async def test_saving_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "s.json"
    real.write_text(json.dumps(_v2(reported={})), encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)  # relative, as `ln -s s.json link.json` makes it
    store = JSONFileStore(link)
    assert store.target == real.resolve()

    await store.save({"version": STATE_VERSION, "watches": {"other": {}}})

    assert link.is_symlink()
    assert link.readlink() == Path("s.json")
    assert not real.is_symlink()
    assert json.loads(real.read_text(encoding="utf-8"))["watches"] == {"other": {}}
    assert real.stat().st_mode & 0o777 == 0o600
    # No stray temporary files next to either.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "s.json"]


async def test_a_dangling_symlink_gets_its_target_created(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real" / "state.json")
    store = JSONFileStore(link)
    assert await store.load() == {}
    await store.save({"version": STATE_VERSION, "watches": {}})
    assert link.is_symlink()
    assert (tmp_path / "real" / "state.json").is_file()
