"""The Telegram Bot API stand-in over localhost HTTP: our sender, raw calls, PTB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
import subprocess
import sys
import time
from typing import Any, cast

import aiohttp
import pytest

from mta_client.telegram import (
    InlineButton,
    TelegramAuthError,
    TelegramBadRequestError,
    TelegramRateLimitError,
    TelegramSender,
)
from mta_client.telegram_standin import (
    Fault,
    TelegramStandin,
    TelegramStandinServer,
    main,
)
from tests.conftest import FakeClock

TOKEN = "4242:standin-test-token"
CHAT = 42


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """Home Assistant's test plugin blocks sockets; localhost is all we use."""


@pytest.fixture(name="server")
async def server_fixture() -> AsyncIterator[TelegramStandinServer]:
    standin = TelegramStandin(token=TOKEN, chat_ids=[CHAT], max_long_poll=0.5)
    async with TelegramStandinServer(standin) as server:
        yield server


@pytest.fixture(name="http")
async def http_fixture() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(name="sender")
async def sender_fixture(
    server: TelegramStandinServer, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[TelegramSender]:
    async with TelegramSender(
        token=TOKEN, session=http, api_url=server.api_url, clock=clock
    ) as sender:
        yield sender


async def control(
    http: aiohttp.ClientSession,
    server: TelegramStandinServer,
    path: str,
    body: object | None = None,
    *,
    status: int = 200,
) -> dict[str, Any]:
    url = f"{server.api_url}/_standin/{path}"
    if body is None:
        async with http.get(url) as response:
            assert response.status == status
            return cast("dict[str, Any]", await response.json())
    async with http.post(url, json=body) as response:
        assert response.status == status, await response.text()
        if status != 200:
            return {}
        return cast("dict[str, Any]", await response.json())


async def bot_call(
    http: aiohttp.ClientSession,
    server: TelegramStandinServer,
    method: str,
    *,
    token: str = TOKEN,
    form: dict[str, str] | None = None,
    json_body: dict[str, object] | None = None,
) -> tuple[int, dict[str, Any]]:
    url = f"{server.api_url}/bot{token}/{method}"
    async with http.post(url, data=form, json=json_body) as response:
        return response.status, await response.json()


async def test_sender_round_trip(
    server: TelegramStandinServer,
    sender: TelegramSender,
    http: aiohttp.ClientSession,
) -> None:
    me = await sender.get_me()
    assert me["is_bot"] is True
    assert me["id"] == 4242
    message_id = await sender.send_message(
        CHAT,
        "New slot",
        buttons=[[InlineButton("Book it", callback_data="/mt_book 7f3a")]],
    )
    shown = await control(http, server, f"messages?chat_id={CHAT}")
    assert shown == {
        "chats": {
            "42": [
                {
                    "message_id": message_id,
                    "chat_id": CHAT,
                    "text": "New slot",
                    "parse_mode": None,
                    "buttons": [
                        [{"text": "Book it", "callback_data": "/mt_book 7f3a"}]
                    ],
                    "edits": [],
                    "deleted": False,
                    "date": shown["chats"]["42"][0]["date"],
                }
            ]
        }
    }

    pressed = await control(
        http, server, "press", {"chat_id": CHAT, "message_id": message_id}
    )
    updates = await sender.get_updates(long_poll=1)
    assert [u["update_id"] for u in updates] == [pressed["update_id"]]
    query = updates[0]["callback_query"]
    assert query["data"] == "/mt_book 7f3a"
    assert query["message"]["message_id"] == message_id
    assert query["from"]["id"] == CHAT
    await sender.answer_callback_query(query["id"], "Booking…")
    with pytest.raises(TelegramBadRequestError, match="query ID is invalid"):
        await sender.answer_callback_query(query["id"])

    await sender.edit_message_text(CHAT, message_id, "Booked")
    await sender.edit_message_text(CHAT, message_id, "Booked")  # not modified
    await sender.edit_message_reply_markup(
        CHAT, message_id, buttons=[[InlineButton("Open", url="https://x.test")]]
    )
    with pytest.raises(TelegramBadRequestError, match="not found"):
        await sender.edit_message_text(CHAT, 999, "x")

    message = server.standin.sent(CHAT)[0]
    assert message.text == "Booked"
    assert message.edits == [
        {"text": "Booked", "buttons": []},
        {"text": "Booked", "buttons": [[{"text": "Open", "url": "https://x.test"}]]},
    ]
    answers = await control(http, server, "answers")
    assert answers == {
        "answers": [
            {"callback_query_id": query["id"], "text": "Booking…", "show_alert": False}
        ]
    }
    # Confirming the offset empties the queue.
    assert await sender.get_updates(offset=pressed["update_id"] + 1) == []


async def test_chat_and_token_checks(
    server: TelegramStandinServer,
    sender: TelegramSender,
    http: aiohttp.ClientSession,
) -> None:
    with pytest.raises(TelegramBadRequestError, match="chat not found"):
        await sender.send_message(7, "who?")
    async with TelegramSender(
        token="4242:wrong", session=http, api_url=server.api_url
    ) as wrong:
        with pytest.raises(TelegramAuthError) as info:
            await wrong.get_me()
    assert "wrong" not in str(info.value)
    status, body = await bot_call(http, server, "noSuchMethod")
    assert (status, body["description"]) == (404, "Not Found")


async def test_injected_faults(
    server: TelegramStandinServer,
    sender: TelegramSender,
    http: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    await control(
        http,
        server,
        "faults",
        {"method": "sendMessage", "status": 429, "retry_after": 3},
    )
    assert await sender.send_message(CHAT, "after a short wait") == 1
    assert 3.0 in clock.sleeps

    await control(
        http,
        server,
        "faults",
        {"method": "sendMessage", "status": 429, "retry_after": 90},
    )
    with pytest.raises(TelegramRateLimitError) as limited:
        await sender.send_message(CHAT, "too long a wait")
    assert limited.value.retry_after == 90
    clock.advance(91)

    await control(http, server, "faults", {"method": "*", "status": 401, "count": -1})
    assert (await control(http, server, "faults"))["faults"] == [
        {
            "method": "*",
            "status": 401,
            "retry_after": None,
            "description": None,
            "count": -1,
            "migrate_to_chat_id": None,
        }
    ]
    for _ in range(2):
        with pytest.raises(TelegramAuthError):
            await sender.get_me()
    async with http.delete(f"{server.api_url}/_standin/faults") as response:
        assert response.status == 200
    assert (await sender.get_me())["username"] == "mta_standin_bot"


async def test_gateway_fault_is_html(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    server.standin.faults.append(Fault(method="GetMe", status=502))
    async with http.post(f"{server.api_url}/bot{TOKEN}/getMe") as response:
        assert response.status == 502
        assert response.content_type == "text/html"


async def test_flood_interval(http: aiohttp.ClientSession) -> None:
    standin = TelegramStandin(token=TOKEN, flood_interval=5.0)
    async with TelegramStandinServer(standin) as server:
        body = {"chat_id": 1, "text": "a"}
        assert (await bot_call(http, server, "sendMessage", json_body=body))[0] == 200
        status, answer = await bot_call(http, server, "sendMessage", json_body=body)
        assert status == 429
        assert answer["parameters"] == {"retry_after": 5}
        other = {"chat_id": 2, "text": "b"}
        assert (await bot_call(http, server, "sendMessage", json_body=other))[0] == 200


async def test_form_encoded_calls_as_ptb_sends_them(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "x" * 65}]]}
    status, body = await bot_call(
        http,
        server,
        "sendMessage",
        form={"chat_id": "42", "text": "1234", "reply_markup": json.dumps(markup)},
    )
    assert (status, body["description"]) == (400, "Bad Request: BUTTON_DATA_INVALID")
    status, body = await bot_call(
        http, server, "sendMessage", form={"chat_id": "42", "text": "1234"}
    )
    assert status == 200
    assert body["result"]["text"] == "1234"
    commands = [{"command": "termin", "description": "Next slot"}]
    status, _ = await bot_call(
        http, server, "setMyCommands", form={"commands": json.dumps(commands)}
    )
    assert status == 200
    assert (await bot_call(http, server, "getMyCommands"))[1]["result"] == commands
    assert (await bot_call(http, server, "deleteMyCommands"))[1]["result"] is True
    status, body = await bot_call(
        http, server, "setMyCommands", form={"commands": "not json"}
    )
    assert status == 400
    status, body = await bot_call(http, server, "sendMessage", form={"chat_id": "42"})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, _ = await bot_call(
        http, server, "deleteMessage", form={"chat_id": "42", "message_id": "1"}
    )
    assert status == 200
    assert server.standin.sent(42)[0].deleted
    calls = (await control(http, server, "calls"))["calls"]
    assert [c["method"] for c in calls][:2] == ["sendMessage", "sendMessage"]


async def test_webhook_and_long_polling(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    status, body = await bot_call(
        http, server, "setWebhook", json_body={"url": "http://insecure.test/hook"}
    )
    assert status == 400
    url = "https://ha.test/api/telegram_webhooks"
    await bot_call(http, server, "setWebhook", json_body={"url": url})
    info = (await bot_call(http, server, "getWebhookInfo"))[1]["result"]
    assert info["url"] == url
    status, body = await bot_call(http, server, "getUpdates")
    assert status == 409
    await bot_call(
        http, server, "deleteWebhook", json_body={"drop_pending_updates": True}
    )

    # A long poll is bounded by the stand-in's max_long_poll (0.5 s here).
    started = time.monotonic()
    status, body = await bot_call(http, server, "getUpdates", json_body={"timeout": 30})
    assert (status, body["result"]) == (200, [])
    assert time.monotonic() - started < 5

    # An update that arrives during a long poll ends it at once.
    poll = asyncio.create_task(
        bot_call(
            http,
            server,
            "getUpdates",
            json_body={"timeout": 30, "allowed_updates": ["message", "callback_query"]},
        )
    )
    await asyncio.sleep(0.05)
    sent = await control(http, server, "send", {"chat_id": CHAT, "text": "/termin 1"})
    _, body = await poll
    [update] = body["result"]
    assert update["update_id"] == sent["update_id"]
    assert update["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 7}
    ]
    info = (await bot_call(http, server, "getWebhookInfo"))[1]["result"]
    assert info["pending_update_count"] == 1
    assert info["allowed_updates"] == ["message", "callback_query"]
    # A negative offset keeps the last ones; a higher offset confirms.
    body = (await bot_call(http, server, "getUpdates", json_body={"offset": -1}))[1]
    assert len(body["result"]) == 1
    body = (
        await bot_call(
            http,
            server,
            "getUpdates",
            json_body={"offset": sent["update_id"] + 1},
        )
    )[1]
    assert body["result"] == []


async def test_control_surface_errors(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    await control(http, server, "press", {"chat_id": CHAT}, status=400)
    await control(http, server, "press", {"chat_id": CHAT, "message_id": 5}, status=404)
    await control(http, server, "send", {"chat_id": CHAT}, status=400)
    await control(http, server, "send", {"chat_id": "nope", "text": "x"}, status=400)
    await control(http, server, "faults", {"status": "x"}, status=400)
    async with http.post(
        f"{server.api_url}/_standin/press", data="not json"
    ) as response:
        assert response.status == 400
    async with http.get(f"{server.api_url}/_standin/messages?chat_id=x") as response:
        assert response.status == 400
    server.standin.send_from_chat(CHAT, "hi")
    await control(http, server, "reset", {})
    assert server.standin.updates == []
    assert (await control(http, server, "messages")) == {"chats": {}}


async def test_press_by_label_and_missing_button(
    server: TelegramStandinServer, sender: TelegramSender
) -> None:
    message_id = await sender.send_message(
        CHAT,
        "two buttons",
        buttons=[
            [
                InlineButton("Book it", callback_data="book"),
                InlineButton("Skip", callback_data="skip"),
            ]
        ],
    )
    standin = server.standin
    standin.press(CHAT, message_id, text="Skip")
    assert standin.updates[-1]["callback_query"]["data"] == "skip"
    with pytest.raises(LookupError):
        standin.press(CHAT, message_id, callback_data="other")


# --- python-telegram-bot, as Home Assistant's telegram_bot drives it --------------


async def test_python_telegram_bot_polling(
    server: TelegramStandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Opt in to PTB's coming timedelta retry_after (no deprecation warning).
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    telegram = pytest.importorskip("telegram")
    ext = pytest.importorskip("telegram.ext")
    request = pytest.importorskip("telegram.request")

    # As homeassistant/components/telegram_bot/bot.py:initialize_bot builds it.
    bot = telegram.Bot(
        token=TOKEN,
        base_url=f"{server.api_url}/bot",
        base_file_url=f"{server.api_url}/file/bot",
        request=request.HTTPXRequest(connection_pool_size=8, read_timeout=1800),
    )
    received: asyncio.Queue[object] = asyncio.Queue()

    async def handle(update: object, _context: object) -> None:
        await received.put(update)

    # As telegram_bot/polling.py starts it.
    application = ext.ApplicationBuilder().bot(bot).build()
    application.add_handler(ext.TypeHandler(telegram.Update, handle))
    await application.initialize()
    await application.updater.start_polling(
        allowed_updates=[telegram.Update.CALLBACK_QUERY, telegram.Update.MESSAGE]
    )
    await application.start()
    try:
        assert bot.username == "mta_standin_bot"
        # telegram_bot's "add allowed chat" flow checks the chat.
        chat = await bot.get_chat(CHAT)
        assert (chat.id, chat.type, chat.effective_name) == (CHAT, "private", "Tester")
        with pytest.raises(telegram.error.BadRequest, match=r"[Cc]hat not found"):
            await bot.get_chat(7)
        keyboard = telegram.InlineKeyboardMarkup(
            [[telegram.InlineKeyboardButton("Book it", callback_data="/mt_book 7f3a")]]
        )
        message = await bot.send_message(
            CHAT,
            "Munich Termin\nNew slot",
            reply_markup=keyboard,
            parse_mode="Markdown",
        )
        server.standin.press(CHAT, message.message_id)
        update = await asyncio.wait_for(received.get(), 10)
        assert update.callback_query.data == "/mt_book 7f3a"  # type: ignore[attr-defined]
        assert update.effective_chat.id == CHAT  # type: ignore[attr-defined]
        await bot.answer_callback_query(update.callback_query.id, text="Booking…")  # type: ignore[attr-defined]
        await bot.edit_message_text(
            "Booked", chat_id=CHAT, message_id=message.message_id
        )
        page = telegram.InlineKeyboardMarkup(
            [[telegram.InlineKeyboardButton("Open", url="https://x.test/")]]
        )
        await bot.edit_message_reply_markup(
            chat_id=CHAT, message_id=message.message_id, reply_markup=page
        )

        server.standin.send_from_chat(CHAT, "/termin")
        update = await asyncio.wait_for(received.get(), 10)
        assert ext.filters.COMMAND.filter(update.message)  # type: ignore[attr-defined]

        server.standin.faults.append(
            Fault(method="sendMessage", status=429, retry_after=7)
        )
        with pytest.raises(telegram.error.RetryAfter) as limited:
            await bot.send_message(CHAT, "flood")
        assert limited.value.retry_after.total_seconds() == 7
        server.standin.faults.append(Fault(method="getMe", status=401))
        with pytest.raises(telegram.error.InvalidToken):
            await bot.get_me()
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
    methods = {call["method"] for call in server.standin.calls}
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage"} <= methods
    sent = server.standin.sent(CHAT)
    assert sent[0].text == "Booked"
    assert sent[0].parse_mode is None
    assert sent[0].buttons == [[{"text": "Open", "url": "https://x.test/"}]]


# --- the command ------------------------------------------------------------------


def test_command_line_serves_on_loopback() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mta_client.telegram_standin",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--chat-id",
            "42",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(
            "Telegram Bot API stand-in listening on http://127.0.0.1:"
        )
        assert "(42)" in line
        assert TOKEN not in line
    finally:
        process.terminate()
        process.wait(10)


def test_command_line_rejects_bad_chat_id() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--chat-id", "not-a-chat"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("method", "body", "description"),
    [
        ("sendMessage", {"chat_id": 42, "text": "x" * 4097}, "message is too long"),
        ("sendMessage", {"chat_id": True, "text": "x"}, "chat not found"),
        ("sendMessage", {"chat_id": "nobody", "text": "x"}, "chat not found"),
        (
            "sendMessage",
            {"chat_id": 42, "text": "x", "reply_markup": "[]"},
            "reply keyboard",
        ),
        (
            "sendMessage",
            {"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": {}}},
            "InlineKeyboardMarkup expected",
        ),
        (
            "sendMessage",
            {
                "chat_id": 42,
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"url": "u"}]]},
            },
            "Text buttons",
        ),
        (
            "sendMessage",
            {
                "chat_id": 42,
                "text": "x",
                "reply_markup": {
                    "inline_keyboard": [
                        [{"text": "t", "url": "u", "callback_data": "c"}]
                    ]
                },
            },
            "exactly one action",
        ),
        ("editMessageText", {"inline_message_id": "1", "text": "x"}, "inline messages"),
        ("editMessageText", {"chat_id": 42, "text": "x"}, "message_id is empty"),
        (
            "editMessageText",
            {"chat_id": 42, "message_id": "one", "text": "x"},
            "invalid",
        ),
        (
            "editMessageText",
            {"chat_id": 42, "message_id": False, "text": "x"},
            "invalid",
        ),
        ("editMessageReplyMarkup", {"chat_id": 42, "message_id": 1}, "not modified"),
        ("deleteMessage", {"chat_id": 42, "message_id": 5}, "message to delete"),
        ("answerCallbackQuery", {}, "callback_query_id is empty"),
        ("setMyCommands", {"commands": [{"command": "x"}]}, "commands JSON"),
    ],
)
async def test_bad_requests(
    server: TelegramStandinServer,
    http: aiohttp.ClientSession,
    method: str,
    body: dict[str, object],
    description: str,
) -> None:
    await bot_call(
        http, server, "sendMessage", json_body={"chat_id": 42, "text": "one"}
    )
    status, answer = await bot_call(http, server, method, json_body=body)
    assert status == 400
    assert description in str(answer["description"])


async def test_requests_in_other_shapes(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    server.standin.chat_ids = set()  # any chat
    base = f"{server.api_url}/bot{TOKEN}"
    async with http.get(
        f"{base}/sendMessage", params={"chat_id": "42", "text": "q"}
    ) as r:
        assert r.status == 200
    async with http.post(
        f"{base}/sendMessage",
        data="{not json",
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400
    async with http.post(f"{base}/sendMessage", json=[1, 2]) as r:
        assert r.status == 400
    async with http.post(f"{server.api_url}/nobot/getMe") as r:
        assert r.status == 404
    async with http.post(f"{server.api_url}/_standin/send", json=[1]) as r:
        assert r.status == 400
    form = aiohttp.FormData({"chat_id": "-1001", "text": "multipart"})
    form.add_field("document", b"bytes", filename="a.txt")
    async with http.post(f"{base}/sendMessage", data=form) as r:
        assert r.status == 200
        result = (await r.json())["result"]
    assert result["chat"]["type"] == "supergroup"
    markup = {"keyboard": [["/termin"]]}
    status, body = await bot_call(
        http,
        server,
        "sendMessage",
        json_body={"chat_id": "@chan", "text": "k", "reply_markup": markup},
    )
    assert status == 200
    assert body["result"]["chat"]["type"] == "channel"
    status, _ = await bot_call(
        http, server, "setWebhook", form={"url": "", "drop_pending_updates": "true"}
    )
    assert status == 200
    assert [m.text for m in server.standin.sent()] == ["q", "multipart", "k"]


async def test_faults_with_defaults(
    server: TelegramStandinServer, http: aiohttp.ClientSession
) -> None:
    server.standin.faults.append(Fault())
    server.standin.faults.append(Fault(status=500))
    status, body = await bot_call(http, server, "getMe")
    assert (status, body["parameters"]) == (429, {"retry_after": 1})
    status, body = await bot_call(http, server, "getMe")
    assert (status, body["description"]) == (500, "Internal Server Error")
    assert server.standin.faults == []


async def test_serve_prints_and_runs_until_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mta_client.telegram_standin import serve  # noqa: PLC0415

    task = asyncio.create_task(serve(port=0, token=TOKEN, chat_ids=[1, "@c"]))
    for _ in range(100):
        if capsys.readouterr().out:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_main_passes_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    async def fake_serve(**options: object) -> None:
        seen.update(options)

    monkeypatch.setattr("mta_client.telegram_standin.serve", fake_serve)
    assert (
        main(
            [
                "--port",
                "9",
                "--chat-id",
                "-5",
                "--chat-id",
                "@c",
                "--flood-interval",
                "1",
            ]
        )
        == 0
    )
    assert seen == {
        "host": "127.0.0.1",
        "port": 9,
        "token": "123456789:standin-token",
        "chat_ids": [-5, "@c"],
        "flood_interval": 1.0,
    }
