"""``mta watch --telegram-chat``: the options and the relay of watch events."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import logging
import socket

import aiohttp
import pytest

from mta_client import LoopClock
from mta_client.cli.exitcodes import CLIError, ExitCode
from mta_client.cli.telegram import (
    ENV_TOKEN,
    TelegramRelay,
    TelegramSettings,
    add_telegram_arguments,
    telegram_settings,
)
from mta_client.telegram_standin import Fault, TelegramStandin, TelegramStandinServer
from mta_client.watch import (
    BookingEvent,
    BookingState,
    SlotEvent,
    SlotEventKind,
    WatchEvent,
)
from tests.watch.env import environment, virtual, watch

TOKEN = "2024:cli-relay-secret"
CHAT = 99


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """Home Assistant's test plugin blocks sockets; localhost is all we use."""


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_telegram_arguments(parser)
    return parser.parse_args(argv)


def test_no_chat_no_telegram() -> None:
    assert telegram_settings(parse(), {ENV_TOKEN: TOKEN}) is None


def test_settings_from_options_and_environment() -> None:
    settings = telegram_settings(
        parse(
            "--telegram-chat",
            "-100123",
            "--telegram-api-url",
            "http://127.0.0.1:8081/",
            "--telegram-language",
            "de",
            "--telegram-gone",
        ),
        {ENV_TOKEN: f" {TOKEN} "},
    )
    assert settings == TelegramSettings(
        token=TOKEN,
        chat_id=-100123,
        api_url="http://127.0.0.1:8081",
        language="de",
        gone=True,
    )
    assert TOKEN not in repr(settings)
    channel = telegram_settings(
        parse("--telegram-chat", "@termine"), {ENV_TOKEN: TOKEN}
    )
    assert channel is not None
    assert channel.chat_id == "@termine"
    assert channel.api_url == "https://api.telegram.org"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (("--telegram-chat", "42"), {}, "needs the bot token in $MTA_TELEGRAM_TOKEN"),
        (
            ("--telegram-chat", "42"),
            {ENV_TOKEN: "a b"},
            "does not look like a bot token",
        ),
        (("--telegram-chat", "me"), {ENV_TOKEN: TOKEN}, "invalid --telegram-chat"),
        (
            ("--telegram-chat", "42", "--telegram-api-url", "ftp://x"),
            {ENV_TOKEN: TOKEN},
            "invalid --telegram-api-url",
        ),
    ],
)
def test_usage_errors(argv: tuple[str, ...], env: dict[str, str], message: str) -> None:
    with pytest.raises(CLIError, match=message.replace("$", r"\$")) as info:
        telegram_settings(parse(*argv), env)
    assert info.value.code is ExitCode.USAGE
    assert TOKEN not in str(info.value)


@pytest.fixture(name="standin")
async def standin_fixture() -> AsyncIterator[TelegramStandinServer]:
    standin = TelegramStandin(token=TOKEN, chat_ids=[CHAT], max_long_poll=0.2)
    async with TelegramStandinServer(standin) as server:
        yield server


def settings_for(server: TelegramStandinServer, **changes: object) -> TelegramSettings:
    values: dict[str, object] = {
        "token": TOKEN,
        "chat_id": CHAT,
        "api_url": server.api_url,
    }
    values.update(changes)
    return TelegramSettings(**values)  # type: ignore[arg-type]


START = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)


def slot(kind: SlotEventKind, hour: int) -> SlotEvent:
    return SlotEvent(
        kind=kind,
        watch_id="w",
        office_id=10489,
        start=START.replace(hour=hour),
        services=((1063475, 1),),
        seen_at=0.0,
    )


async def test_relay_batches_a_look_and_flushes_on_exit(
    standin: TelegramStandinServer,
) -> None:
    async with TelegramRelay(settings_for(standin), flush_timeout=10) as relay:
        assert relay.bot_name == "mta_standin_bot"
        for hour in (9, 8, 10):
            relay(slot(SlotEventKind.NEW, hour))
        relay(slot(SlotEventKind.GONE, 11))  # not asked for
        relay(
            BookingEvent(
                state=BookingState.BOOKED,
                watch_id="w",
                office_id=10489,
                start=START,
                process_id=1234,
                auth_key="secret-auth",
            )
        )
    first, second = standin.standin.sent(CHAT)
    assert first.text.startswith("3 new appointment slots, the earliest Tue 24 Nov")
    assert [b["text"] for b in first.buttons[0]] == ["Open booking page"]
    assert second.text.startswith("Appointment booked")
    assert "secret-auth" not in second.text
    assert (relay.queue.sent, relay.queue.pending) == (2, 0)
    assert TOKEN not in repr(relay)


async def test_relay_gone_and_german(standin: TelegramStandinServer) -> None:
    settings = settings_for(standin, gone=True, language="de")
    async with TelegramRelay(settings) as relay:
        relay(slot(SlotEventKind.GONE, 11))
        await relay.queue.join()
    [message] = standin.standin.sent(CHAT)
    assert message.text.startswith("Termin vergeben: ")


async def test_rejected_token_is_a_usage_error(standin: TelegramStandinServer) -> None:
    relay = TelegramRelay(settings_for(standin, token="2024:wrong-token"))
    with pytest.raises(CLIError) as info:
        await relay.__aenter__()
    assert info.value.code is ExitCode.USAGE
    assert "wrong-token" not in str(info.value)


async def test_unreachable_telegram() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = TelegramSettings(
        token=TOKEN, chat_id=CHAT, api_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(CLIError, match="could not reach Telegram") as info:
        await TelegramRelay(settings).__aenter__()
    assert info.value.code is ExitCode.UNREACHABLE


async def test_token_rejected_while_watching(
    standin: TelegramStandinServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with TelegramRelay(settings_for(standin), flush_timeout=5) as relay:
        standin.standin.faults.append(Fault(method="sendMessage", status=401, count=-1))
        relay(slot(SlotEventKind.NEW, 9))
        relay._flush()
        await relay.queue.join()
        assert relay.queue.failed_auth
    assert "Telegram rejected the bot token in $MTA_TELEGRAM_TOKEN" in caplog.text
    assert TOKEN not in caplog.text


@virtual
async def test_watcher_events_reach_telegram() -> None:
    """The watcher's first look against the simulator, relayed to the stand-in."""
    clock = LoopClock(epoch=0.0)
    standin = TelegramStandin(token=TOKEN, chat_ids=[CHAT], max_long_poll=0.2)
    async with (
        TelegramStandinServer(standin) as server,
        environment("fixed") as env,
        aiohttp.ClientSession() as session,
    ):
        catalogue = await env.client.get_catalogue()
        watched = watch()
        settings = settings_for(server)
        async with TelegramRelay(
            settings,
            catalogue=catalogue,
            watches=[watched],
            session=session,
            clock=clock,
        ) as relay:
            watcher = env.watcher()

            def both(event: WatchEvent) -> None:
                env.events.append(event)
                relay(event)

            watcher.on_event = both
            watcher.add(watched)
            await watcher.check()
            await watcher.aclose()
        new = env.new()
    assert new, "the fixed scenario offers slots"
    [message] = standin.sent(CHAT)
    assert message.text.splitlines()[0].startswith(
        f"{len(new)} new appointment slots" if len(new) > 1 else "New appointment slot"
    )
    assert "Bürgerbüro" in message.text
