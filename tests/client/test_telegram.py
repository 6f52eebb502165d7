"""The Telegram sender and the alert queue, against a faked Bot API."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aioresponses import aioresponses
import pytest
from yarl import URL

from mta_client.exceptions import MTAError
from mta_client.telegram import (
    DEFAULT_API_URL,
    AlertQueue,
    InlineButton,
    TelegramAuthError,
    TelegramBadRequestError,
    TelegramConnectionError,
    TelegramError,
    TelegramRateLimitError,
    TelegramSender,
)
from tests.conftest import FakeClock

TOKEN = "123456:AAE-secret-token_value"
API = "http://telegram.test"
SEND = f"{API}/bot{TOKEN}/sendMessage"


def ok(result: object) -> dict[str, object]:
    return {"ok": True, "result": result}


def refused(code: int, description: str, **parameters: object) -> dict[str, object]:
    """A Bot API error answer."""
    body: dict[str, object] = {
        "ok": False,
        "error_code": code,
        "description": description,
    }
    if parameters:
        body["parameters"] = parameters
    return body


def rate_limited(seconds: int) -> dict[str, object]:
    return refused(
        429, f"Too Many Requests: retry after {seconds}", retry_after=seconds
    )


UNAUTHORIZED = refused(401, "Unauthorized")


def migrated(chat_id: int) -> dict[str, object]:
    return refused(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=chat_id,
    )


def message(message_id: int = 1, chat_id: int = 42) -> dict[str, object]:
    return ok(
        {
            "message_id": message_id,
            "date": 0,
            "chat": {"id": chat_id, "type": "private"},
        }
    )


def sent_json(responses: aioresponses, url: str) -> list[dict[str, object]]:
    return [call.kwargs["json"] for call in responses.requests[("POST", URL(url))]]


@pytest.fixture(name="sender")
async def sender_fixture(clock: FakeClock):
    async with (
        aiohttp.ClientSession() as session,
        TelegramSender(token=TOKEN, session=session, api_url=API, clock=clock) as s,
    ):
        yield s


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
        assert "AAE-secret" not in text


# --- the sender -----------------------------------------------------------------


async def test_send_message_posts_text_and_buttons(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, payload=message(17))
    buttons = [
        [
            InlineButton("Book it", callback_data="mt_book 7f3a"),
            InlineButton("Open", url="https://example.test/x"),
        ]
    ]
    message_id = await sender.send_message(42, "Hello", buttons=buttons)
    assert message_id == 17
    assert sent_json(responses, SEND) == [
        {
            "chat_id": 42,
            "text": "Hello",
            "reply_markup": {
                "inline_keyboard": [
                    [
                        {"text": "Book it", "callback_data": "mt_book 7f3a"},
                        {"text": "Open", "url": "https://example.test/x"},
                    ]
                ]
            },
        }
    ]


async def test_default_api_url_and_repr() -> None:
    sender = TelegramSender(token=TOKEN)
    assert sender.api_url == DEFAULT_API_URL == "https://api.telegram.org"
    assert_no_token(repr(sender), str(vars(sender)))
    await sender.aclose()


async def test_own_session_is_created_and_closed(responses: aioresponses) -> None:
    responses.post(f"{API}/bot{TOKEN}/getMe", payload=ok({"id": 1, "is_bot": True}))
    sender = TelegramSender(token=TOKEN, api_url=API + "/")
    assert await sender.get_me() == {"id": 1, "is_bot": True}
    session = sender._session
    assert session is not None
    await sender.aclose()
    assert session.closed


def test_malformed_token_is_refused_without_echo() -> None:
    with pytest.raises(ValueError, match="malformed") as info:
        TelegramSender(token="abc/def")
    assert "abc/def" not in str(info.value)


async def test_long_text_is_cut_to_telegram_limit(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, payload=message())
    await sender.send_message(42, "x" * 5000)
    text = sent_json(responses, SEND)[0]["text"]
    assert isinstance(text, str)
    assert len(text) == 4096
    assert text.endswith("…")


async def test_messages_to_one_chat_are_paced(
    responses: aioresponses, sender: TelegramSender, clock: FakeClock
) -> None:
    for _ in range(3):
        responses.post(SEND, payload=message())
    await sender.send_message(42, "one")
    await sender.send_message(43, "other chat: no wait")
    assert clock.sleeps == []
    await sender.send_message(42, "two")
    assert clock.sleeps == [pytest.approx(1.0)]


async def test_pacing_is_per_chat_under_concurrency(
    responses: aioresponses, clock: FakeClock
) -> None:
    responses.post(SEND, payload=message(), repeat=True)
    async with TelegramSender(
        token=TOKEN, api_url=API, clock=clock, min_interval=2.5
    ) as sender:
        await asyncio.gather(*(sender.send_message(42, f"m{i}") for i in range(3)))
    assert clock.sleeps == [pytest.approx(2.5), pytest.approx(2.5)]


async def test_short_429_is_waited_out_once(
    responses: aioresponses, sender: TelegramSender, clock: FakeClock
) -> None:
    responses.post(SEND, status=429, payload=rate_limited(5))
    responses.post(SEND, payload=message(3))
    assert await sender.send_message(42, "hi") == 3
    assert 5.0 in clock.sleeps


async def test_long_429_raises_with_retry_after(
    responses: aioresponses, sender: TelegramSender, clock: FakeClock
) -> None:
    responses.post(SEND, status=429, payload=rate_limited(120))
    with pytest.raises(TelegramRateLimitError) as info:
        await sender.send_message(42, "hi")
    assert info.value.retry_after == 120
    assert isinstance(info.value, MTAError)
    # The next call does not even ask Telegram while the wait lasts.
    clock.advance(60)
    with pytest.raises(TelegramRateLimitError) as again:
        await sender.send_message(42, "hi")
    assert again.value.retry_after == pytest.approx(60)
    assert len(responses.requests[("POST", URL(SEND))]) == 1


async def test_401_is_an_auth_error_without_the_token(
    responses: aioresponses,
    sender: TelegramSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(SEND, status=401, payload=UNAUTHORIZED)
    with pytest.raises(TelegramAuthError) as info:
        await sender.send_message(42, "hi")
    err = info.value
    assert err.status == 401
    assert err.method == "sendMessage"
    assert_no_token(str(err), repr(err), caplog.text)


async def test_404_html_is_an_auth_error(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(f"{API}/bot{TOKEN}/getMe", status=404, body="<html>Not Found</html>")
    with pytest.raises(TelegramAuthError) as info:
        await sender.get_me()
    assert_no_token(str(info.value))


async def test_token_echoed_by_server_is_scrubbed(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(
        SEND,
        status=400,
        payload=refused(400, f"Bad Request: chat not found for bot{TOKEN}"),
    )
    with pytest.raises(TelegramBadRequestError) as info:
        await sender.send_message(42, "hi")
    assert_no_token(str(info.value), str(info.value.description))
    assert "chat not found" in str(info.value)


async def test_connection_error_hides_the_url(
    responses: aioresponses,
    sender: TelegramSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(
        SEND, exception=aiohttp.ClientConnectionError(f"cannot connect to {SEND}")
    )
    with pytest.raises(TelegramConnectionError) as info:
        await sender.send_message(42, "hi")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert_no_token(str(info.value), repr(info.value), caplog.text)


async def test_timeout_is_a_connection_error(
    responses: aioresponses, clock: FakeClock
) -> None:
    responses.post(SEND, exception=TimeoutError())
    async with TelegramSender(token=TOKEN, api_url=API, clock=clock) as sender:
        with pytest.raises(TelegramConnectionError, match="did not answer"):
            await sender.send_message(42, "hi")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            500,
            refused(500, "Internal"),
            TelegramConnectionError,
        ),
        (502, "<html>Bad Gateway</html>", TelegramConnectionError),
        (
            403,
            refused(403, "Forbidden: bot was blocked by the user"),
            TelegramBadRequestError,
        ),
        (200, "not json", TelegramError),
        (200, {"ok": True, "result": True}, TelegramError),
    ],
)
async def test_error_mapping(
    responses: aioresponses,
    sender: TelegramSender,
    status: int,
    body: object,
    error: type[TelegramError],
) -> None:
    if isinstance(body, dict):
        responses.post(SEND, status=status, payload=body)
    else:
        responses.post(SEND, status=status, body=str(body))
    with pytest.raises(error):
        await sender.send_message(42, "hi")


async def test_migrated_group_carries_the_new_chat_id(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, status=400, payload=migrated(-1001234))
    with pytest.raises(TelegramBadRequestError) as info:
        await sender.send_message(-42, "hi")
    assert info.value.migrate_to_chat_id == -1001234


async def test_edits_and_callback_answers(
    responses: aioresponses, sender: TelegramSender
) -> None:
    edit_text = f"{API}/bot{TOKEN}/editMessageText"
    edit_markup = f"{API}/bot{TOKEN}/editMessageReplyMarkup"
    answer = f"{API}/bot{TOKEN}/answerCallbackQuery"
    responses.post(edit_text, payload=message(5))
    responses.post(
        edit_text,
        status=400,
        payload=refused(
            400,
            "Bad Request: message is not modified: specified new "
            "message content and reply markup are exactly the same",
        ),
    )
    responses.post(edit_markup, payload=ok(True))
    responses.post(answer, payload=ok(True))
    await sender.edit_message_text(42, 5, "Booked", buttons=None)
    await sender.edit_message_text(42, 5, "Booked")  # not modified: no error
    await sender.edit_message_reply_markup(42, 5)
    await sender.answer_callback_query("cbq-1", "Booking…", show_alert=True)
    assert sent_json(responses, edit_text)[0] == {
        "chat_id": 42,
        "message_id": 5,
        "text": "Booked",
        "reply_markup": {"inline_keyboard": []},
    }
    assert sent_json(responses, edit_markup) == [
        {"chat_id": 42, "message_id": 5, "reply_markup": {"inline_keyboard": []}}
    ]
    assert sent_json(responses, answer) == [
        {"callback_query_id": "cbq-1", "text": "Booking…", "show_alert": True}
    ]


async def test_other_bad_edit_is_raised(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(
        f"{API}/bot{TOKEN}/editMessageText",
        status=400,
        payload=refused(400, "Bad Request: message to edit not found"),
    )
    with pytest.raises(TelegramBadRequestError, match="not found"):
        await sender.edit_message_text(42, 99, "x")


async def test_get_updates(responses: aioresponses, sender: TelegramSender) -> None:
    url = f"{API}/bot{TOKEN}/getUpdates"
    responses.post(url, payload=ok([{"update_id": 7}, "junk"]))
    assert await sender.get_updates(offset=3, long_poll=1) == [{"update_id": 7}]
    assert sent_json(responses, url) == [{"timeout": 1, "offset": 3}]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"callback_data": "x" * 65},
        {"callback_data": ""},
        {},
        {"callback_data": "a", "url": "https://x.test"},
    ],
)
def test_button_rules(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"callback_data|button"):
        InlineButton("label", **kwargs)


def test_button_label_required() -> None:
    with pytest.raises(ValueError, match="label"):
        InlineButton("", callback_data="x")
    assert InlineButton("ok", callback_data="é" * 32).to_api()["callback_data"]


# --- the queue ------------------------------------------------------------------


async def test_queue_sends_in_order_and_counts(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, payload=message(1))
    responses.post(SEND, payload=message(2))
    ids: list[int] = []
    queue = AlertQueue(sender)
    queue.put(42, "first", on_sent=ids.append)
    queue.put(42, "second", buttons=[[InlineButton("B", callback_data="t")]])
    assert queue.pending == 2
    worker = asyncio.create_task(queue.run())
    await asyncio.wait_for(queue.join(), 5)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    assert (queue.sent, queue.dropped, queue.pending) == (2, 0, 0)
    assert ids == [1]
    assert [m["text"] for m in sent_json(responses, SEND)] == ["first", "second"]
    assert "pending=0" in repr(queue)


async def test_queue_backs_off_while_telegram_is_away(
    responses: aioresponses, sender: TelegramSender, clock: FakeClock
) -> None:
    for _ in range(4):
        responses.post(SEND, status=502, body="Bad Gateway")
    responses.post(SEND, status=429, payload=rate_limited(300))
    responses.post(SEND, payload=message(9))
    queue = AlertQueue(sender, base_delay=2.0, max_delay=10.0)
    queue.put(42, "hello")
    delays = []
    for _ in range(6):
        delays.append(await queue.send_next())
        clock.advance(delays[-1])
    assert delays == [2.0, 4.0, 8.0, 10.0, 300.0, 0.0]
    assert queue.sent == 1
    assert queue.pending == 0
    assert queue.last_error is None


async def test_queue_drops_only_after_a_day(
    responses: aioresponses, sender: TelegramSender, clock: FakeClock
) -> None:
    responses.post(SEND, status=503, body="", repeat=True)
    queue = AlertQueue(sender)
    queue.put(42, "old")
    clock.advance(3600)
    queue.put(42, "newer")
    await queue.send_next()
    assert (queue.pending, queue.dropped) == (2, 0)
    clock.advance(86_400 - 3600 + 1)
    await queue.send_next()
    assert (queue.pending, queue.dropped) == (1, 1)
    assert isinstance(queue.last_error, TelegramConnectionError)


async def test_full_queue_drops_the_oldest(sender: TelegramSender) -> None:
    queue = AlertQueue(sender, maxsize=2)
    for text in ("a", "b", "c"):
        queue.put(42, text)
    assert (queue.pending, queue.dropped) == (2, 1)
    assert [m.text for m in queue._messages] == ["b", "c"]
    with pytest.raises(ValueError, match="maxsize"):
        AlertQueue(sender, maxsize=0)


async def test_refused_message_is_dropped_and_next_sent(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(
        SEND,
        status=400,
        payload=refused(400, "Bad Request: chat not found"),
    )
    responses.post(SEND, payload=message(2))
    queue = AlertQueue(sender)
    queue.put(1, "to nowhere")
    queue.put(42, "fine")
    await queue.send_next()
    await queue.send_next()
    assert (queue.sent, queue.dropped, queue.pending) == (1, 1, 0)


def auth_failed(queue: AlertQueue) -> bool:
    """``queue.failed_auth`` read afresh.

    mypy keeps an asserted ``queue.failed_auth`` narrowed across the awaits that
    change it, which would make the asserts after a resume unreachable.
    """
    return queue.failed_auth


async def test_rejected_token_stops_the_queue_until_resumed(
    responses: aioresponses,
    sender: TelegramSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(SEND, status=401, payload=UNAUTHORIZED)
    responses.post(SEND, payload=message(4))
    failures: list[TelegramAuthError] = []
    queue = AlertQueue(sender, on_auth_failed=failures.append)
    queue.put(42, "one")
    queue.put(42, "two")
    worker = asyncio.create_task(queue.run())
    await asyncio.wait_for(queue.join(), 5)
    assert auth_failed(queue)
    assert len(failures) == 1
    assert queue.pending == 2
    assert await queue.send_next() == 0.0  # held: nothing is sent
    assert len(responses.requests[("POST", URL(SEND))]) == 1
    queue.resume(sender)
    responses.post(SEND, payload=message(5))
    await asyncio.wait_for(queue.join(), 5)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    assert not queue.failed_auth
    assert (queue.sent, queue.pending) == (2, 0)
    assert_no_token(caplog.text, repr(queue))


async def test_host_marks_the_token_rejected_once(sender: TelegramSender) -> None:
    failures: list[TelegramAuthError] = []
    queue = AlertQueue(sender, on_auth_failed=failures.append)
    queue.put(42, "held")
    err = TelegramAuthError("rejected", status=401)
    queue.mark_auth_failed(err)
    queue.mark_auth_failed(err)
    assert failures == [err]
    assert queue.failed_auth
    await asyncio.wait_for(queue.join(), 1)  # held counts as idle
    assert queue.pending == 1


async def test_send_options_and_bad_answers(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, payload=message())
    await sender.send_message(
        42, "<b>x</b>", parse_mode="HTML", disable_notification=True
    )
    assert sent_json(responses, SEND)[0] == {
        "chat_id": 42,
        "text": "<b>x</b>",
        "parse_mode": "HTML",
        "disable_notification": True,
    }
    with pytest.raises(ValueError, match="needs text"):
        await sender.send_message(42, "")
    responses.post(f"{API}/bot{TOKEN}/getMe", payload=ok([]))
    with pytest.raises(TelegramError, match="not the Bot API"):
        await sender.get_me()
    responses.post(f"{API}/bot{TOKEN}/getUpdates", payload=ok({}))
    with pytest.raises(TelegramError, match="not the Bot API"):
        await sender.get_updates()


async def test_queue_follows_a_migrated_group(
    responses: aioresponses, sender: TelegramSender
) -> None:
    responses.post(SEND, status=400, payload=migrated(-100777))
    responses.post(SEND, payload=message(1, -100777))
    responses.post(SEND, payload=message(2, -100777))
    moves: list[tuple[int | str, int]] = []
    queue = AlertQueue(
        sender, on_chat_migrated=lambda old, new: moves.append((old, new))
    )
    queue.put(-42, "one")
    queue.put("-42", "two")
    queue.put(7, "other chat")
    assert await queue.send_next() == 0.0
    assert moves == [(-42, -100777)]
    assert [m.chat_id for m in queue._messages] == [-100777, -100777, 7]
    await queue.send_next()
    await queue.send_next()
    assert [c["chat_id"] for c in sent_json(responses, SEND)] == [-42, -100777, -100777]
    assert (queue.sent, queue.dropped) == (2, 0)
