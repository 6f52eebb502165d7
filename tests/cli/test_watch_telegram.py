"""``mta watch --telegram-chat``: the watch's events reach a Telegram chat."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import threading
from typing import Self

import pytest

from mta_client.telegram_standin import TelegramStandin, TelegramStandinServer

from .conftest import Run

TOKEN = "4242:watch-test-token"
CHAT = 777
WOHNSITZ = "1063475"
PASING = "54261"


class StandinThread:
    """The Bot API stand-in on its own loop, beside an in-process ``mta``."""

    def __init__(self, standin: TelegramStandin) -> None:
        self.standin = standin
        self.api_url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()))

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with TelegramStandinServer(self.standin) as server:
            self.api_url = server.api_url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(name="telegram")
def telegram_fixture(socket_enabled: None) -> Iterator[StandinThread]:
    standin = TelegramStandin(token=TOKEN, chat_ids=[CHAT], max_long_poll=0.2)
    with StandinThread(standin) as thread:
        yield thread


def _watch(telegram: StandinThread, *extra: str) -> tuple[str, ...]:
    return (
        "watch",
        "--no-state",
        "--once",
        "--service",
        WOHNSITZ,
        "--office",
        PASING,
        "--within",
        "14",
        "--telegram-chat",
        str(CHAT),
        "--telegram-api-url",
        telegram.api_url,
        *extra,
    )


def test_new_slots_go_to_the_chat(
    mta: Run, telegram: StandinThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTA_TELEGRAM_TOKEN", TOKEN)
    result = mta(*_watch(telegram, "--telegram-language", "de"))
    assert result.code == 0, result.err
    assert result.out.startswith("new ")
    [message] = telegram.standin.sent(CHAT)
    # One message for the look, in German, with the city's booking page.
    assert "Bürgerbüro Pasing" in message.text
    assert "#/services/1063475/locations/54261" in message.text
    assert TOKEN not in result.out + result.err


def test_without_a_token_it_is_a_usage_error(
    mta: Run, telegram: StandinThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTA_TELEGRAM_TOKEN", raising=False)
    result = mta(*_watch(telegram))
    assert result.code == 2
    assert "MTA_TELEGRAM_TOKEN" in result.err
    assert telegram.standin.sent(CHAT) == []


def test_a_rejected_token_stops_before_looking(
    mta: Run, telegram: StandinThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTA_TELEGRAM_TOKEN", "4242:not-the-token")
    result = mta(*_watch(telegram))
    assert result.code == 2
    assert "rejected the bot token" in result.err
    assert "not-the-token" not in result.err
    assert result.out == ""
