"""Tests of the state stores and the clocks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import time

import pytest

from mta_client import LoopClock, ScaledClock, SystemClock
from mta_client.store import JSONFileStore, MemoryStore, StoreError


async def test_json_store_round_trip_and_private_mode(tmp_path: Path) -> None:
    store = JSONFileStore(tmp_path / "sub" / "state.json")
    assert await store.load() == {}
    await store.save({"watches": {"w": {"reported": {"1@2": 3.0}}}})
    assert await store.load() == {"watches": {"w": {"reported": {"1@2": 3.0}}}}
    assert (tmp_path / "sub" / "state.json").stat().st_mode & 0o777 == 0o600
    assert list((tmp_path / "sub").iterdir()) == [tmp_path / "sub" / "state.json"]


@pytest.mark.parametrize(
    ("content", "match"),
    [("{oops", "not valid JSON"), ("[1, 2]", "does not hold an object")],
)
async def test_json_store_rejects_bad_files(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StoreError, match=match):
        await JSONFileStore(path).load()
    assert path.read_text(encoding="utf-8") == content  # nothing is lost


async def test_json_store_unreadable_and_unwritable(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read"):
        await JSONFileStore(tmp_path).load()  # a directory
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot write"):
        await JSONFileStore(blocker / "state.json").save({})


async def test_json_store_failed_write_keeps_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    store = JSONFileStore(path)
    await store.save({"a": 1})

    def broken(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mta_client.store.os.replace", broken)
    with pytest.raises(StoreError, match="No space left"):
        await store.save({"a": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1}
    assert list(tmp_path.iterdir()) == [path]


async def test_memory_store_copies() -> None:
    original = {"a": [1]}
    store = MemoryStore(original)
    loaded = await store.load()
    loaded["a"].append(2)
    assert await store.load() == {"a": [1]}
    await store.save(loaded)
    assert store.saves == 1
    assert await store.load() == {"a": [1, 2]}


async def test_system_and_loop_clocks() -> None:
    assert abs(SystemClock().time() - time.time()) < 1
    loop_clock = LoopClock()
    assert abs(loop_clock.time() - time.time()) < 1
    anchored = LoopClock(epoch=100.0)
    assert anchored.time() == pytest.approx(100.0 + asyncio.get_running_loop().time())
    before = loop_clock.time()
    await loop_clock.sleep(0.01)
    await SystemClock().sleep(-1)
    assert loop_clock.time() >= before + 0.009


async def test_scaled_clock() -> None:
    clock = ScaledClock(speed=1000, start=1_000_000.0)
    assert clock.time() == pytest.approx(1_000_000.0, abs=5)
    started = time.monotonic()
    await clock.sleep(20)  # 20 ms of real time
    assert time.monotonic() - started < 1
    assert clock.time() >= 1_000_019.0
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(speed=0)
