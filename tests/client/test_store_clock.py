"""Tests of the state stores and the clocks."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
import time

import pytest

from mta_client import LoopClock, RequestBudget, ScaledClock, SystemClock
from mta_client.captcha import CaptchaTokenCache
from mta_client.clock import monotonic_of
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


# --- monotonic time: a jump of the wall clock changes nothing ---------------------


class JumpingClock:
    """Wall time that can jump; monotonic time that only sleeps move."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.wall = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def jump(self, seconds: float) -> None:
        self.wall += seconds


def test_every_clock_has_a_consistent_monotonic_time() -> None:
    system = SystemClock()
    assert abs(system.monotonic() - time.monotonic()) < 1
    scaled = ScaledClock(speed=1000, start=1_000_000.0)
    assert scaled.time() - scaled.monotonic() == pytest.approx(1_000_000.0)


async def test_loop_clock_monotonic_is_the_loop_time() -> None:
    clock = LoopClock(epoch=100.0)
    loop = asyncio.get_running_loop()
    assert clock.monotonic() == pytest.approx(loop.time(), abs=0.01)
    assert clock.time() - clock.monotonic() == pytest.approx(100.0, abs=0.01)


def test_monotonic_of_a_clock_without_one_is_its_wall_time() -> None:
    class Old:
        def time(self) -> float:
            return 42.0

        async def sleep(self, seconds: float) -> None:
            del seconds

    assert monotonic_of(Old()) == 42.0  # type: ignore[arg-type]
    assert monotonic_of(JumpingClock()) == 1000.0


@pytest.mark.parametrize("jump", [3600.0, -3600.0])
async def test_budget_ignores_wall_clock_jumps(jump: float) -> None:
    clock = JumpingClock()
    budget = RequestBudget(clock=clock, limit=3, priority_reserve=0)
    for _ in range(3):
        await budget.acquire()
    clock.jump(jump)
    # Back in time: the full window must not last an hour longer; forward:
    # it must not look expired.
    assert budget.wait_time() == pytest.approx(61.0)
    assert budget.remaining() == 0
    clock.advance(61.0)
    assert budget.remaining() == 3
    await budget.acquire()
    assert clock.sleeps == []


@pytest.mark.parametrize("jump", [3600.0, -3600.0])
async def test_captcha_token_expiry_ignores_wall_clock_jumps(jump: float) -> None:
    clock = JumpingClock()
    fetched: list[str] = []

    async def fetch() -> str:
        claims = {"exp": clock.time() + 300}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
        token = f"e30.{body.rstrip('=')}.sig{len(fetched)}"
        fetched.append(token)
        return token

    cache = CaptchaTokenCache(fetch=fetch, clock=clock, margin=30.0)
    first = await cache.get()
    clock.jump(jump)
    assert cache.expires_in() == pytest.approx(300.0)
    assert cache.expires_at == pytest.approx(clock.time() + 300.0)
    assert not cache.needs_refresh(269)
    assert await cache.get() == first  # neither expired by a jump forward...
    clock.advance(270)
    assert cache.needs_refresh(0)  # ...nor kept alive by a jump back
    assert await cache.get() != first
    assert len(fetched) == 2
