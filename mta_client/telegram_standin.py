"""A local stand-in for the Telegram Bot API, for tests and development.

It speaks the part of the Bot API that :class:`~mta_client.telegram.TelegramSender`
and Home Assistant's ``telegram_bot`` integration (python-telegram-bot, in
polling mode) use: ``getMe``, ``sendMessage`` with inline keyboards,
``editMessageText``, ``editMessageReplyMarkup``, ``deleteMessage``,
``answerCallbackQuery``, ``getUpdates`` (long polling, bounded to a few
seconds), ``getChat``, ``deleteWebhook``/``setWebhook``/``getWebhookInfo``,
``setMyCommands``/``getMyCommands``/``deleteMyCommands``, ``sendChatAction``,
``logOut`` and ``close``. Requests go to ``{api_url}/bot{token}/{method}`` as
JSON, form fields (python-telegram-bot JSON-encodes non-string values) or a
query string, and are answered in the Bot API's envelope
(``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ...,
"description": ..., "parameters": {"retry_after": N}}``). A wrong token gets
401 Unauthorized, an unknown method 404 Not Found.

``getChat`` answers for the allowed chats (``telegram_bot``'s "add allowed
chat" flow asks it).

The control surface under ``/_standin/`` plays the person on the other end:

* ``GET /_standin/messages[?chat_id=C]`` - the messages the bot sent, per chat,
  with their buttons and every edit;
* ``GET /_standin/calls`` - every Bot API call received (method and parameters);
* ``GET /_standin/answers`` - the answers to callback queries;
* ``POST /_standin/press`` ``{"chat_id", "message_id", "callback_data"|"text"}``
  - press a button: queues a ``callback_query`` update for ``getUpdates``;
* ``POST /_standin/send`` ``{"chat_id", "text"}`` - a text or command
  (``"/termin"``) from the chat: queues a ``message`` update;
* ``POST /_standin/faults`` ``{"method": "sendMessage"|"*", "status": 429,
  "retry_after": 5, "count": 1}`` - the next matching calls fail (``count``
  ``-1``: until cleared; ``"status": 400, "migrate_to_chat_id": -100…`` says
  a group became a supergroup); ``DELETE /_standin/faults`` clears them;
* ``POST /_standin/reset`` - forget everything.

Run it with ``python -m mta_client.telegram_standin --port 8081 --token T
--chat-id C``; it binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
import contextlib
from dataclasses import dataclass, field
import itertools
import json
import time
from typing import Any

from aiohttp import web

from mta_client.localserver import LocalServer

__all__ = [
    "Fault",
    "StandinMessage",
    "TelegramStandin",
    "TelegramStandinServer",
    "main",
    "serve",
]

DEFAULT_TOKEN = "123456789:standin-token"  # noqa: S105 - the stand-in's own, not a secret
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64

_STANDIN: web.AppKey[TelegramStandin] = web.AppKey("telegram_standin")
type _Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class BotAPIError(Exception):
    """A Bot API error answer."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Store what the answer says."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def response(self) -> web.Response:
        """Return the error in the Bot API's envelope."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        parameters = {
            key: value
            for key, value in (
                ("retry_after", self.retry_after),
                ("migrate_to_chat_id", self.migrate_to_chat_id),
            )
            if value is not None
        }
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=self.status)


def _bad(description: str) -> BotAPIError:
    return BotAPIError(400, f"Bad Request: {description}")


_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(kw_only=True)
class Fault:
    """Make matching Bot API calls fail.

    ``method`` is a Bot API method name (case-insensitive) or ``"*"``;
    ``count`` is how many calls fail (``-1``: until cleared). A 502 is
    answered as a gateway's HTML page, everything else in the Bot API's
    envelope (a 429 with ``parameters.retry_after``).
    """

    method: str = "*"
    status: int = 429
    retry_after: int | None = None
    description: str | None = None
    count: int = 1
    migrate_to_chat_id: int | None = None
    """With status 400: the group became this supergroup."""

    def __post_init__(self) -> None:
        """Method names are case-insensitive, as in the Bot API."""
        self.method = self.method.lower()

    def matches(self, method: str) -> bool:
        """Whether this fault applies to a call of ``method``."""
        return self.count != 0 and self.method in {"*", method.lower()}

    def response(self) -> web.Response:
        """Answer the call as the fault says."""
        if self.status == 502:  # noqa: PLR2004
            return web.Response(
                status=502,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        retry_after = self.retry_after
        if self.status == 429 and retry_after is None:  # noqa: PLR2004
            retry_after = 1
        description = self.description or _DESCRIPTIONS.get(self.status, "Error")
        if self.status == 429 and self.description is None:  # noqa: PLR2004
            description = f"Too Many Requests: retry after {retry_after}"
        if self.migrate_to_chat_id is not None and self.description is None:
            description = "Bad Request: group chat was upgraded to a supergroup chat"
        return BotAPIError(
            self.status,
            description,
            retry_after=retry_after,
            migrate_to_chat_id=self.migrate_to_chat_id,
        ).response()


@dataclass(kw_only=True)
class StandinMessage:
    """A message the bot sent, as the stand-in keeps it."""

    message_id: int
    chat_id: int | str
    text: str
    date: int
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    deleted: bool = False

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """The inline keyboard's rows (empty without one)."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    def to_control(self) -> dict[str, Any]:
        """The message as the control surface shows it."""
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "text": self.text,
            "parse_mode": self.parse_mode,
            "buttons": self.buttons,
            "edits": self.edits,
            "deleted": self.deleted,
            "date": self.date,
        }


class TelegramStandin:
    """The stand-in's state and its aiohttp application.

    Args:
        token: the one bot token accepted.
        chat_ids: chats the bot may write to; empty accepts every chat.
        bot_id, bot_username: what ``getMe`` answers.
        max_long_poll: the longest ``getUpdates`` waits, whatever its
            ``timeout`` asks (keeps tests and shutdowns quick).
        flood_interval: when set, a second message to one chat within this
            many seconds is answered 429 (as Telegram does to floods).

    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        chat_ids: Iterable[int | str] = (),
        bot_id: int | None = None,
        bot_username: str = "mta_standin_bot",
        max_long_poll: float = 2.0,
        flood_interval: float | None = None,
    ) -> None:
        """Start with no messages, no updates and no faults."""
        self.token = token
        self.chat_ids = {_chat_key(c) for c in chat_ids}
        head = token.split(":", 1)[0]
        self.bot_id = (
            bot_id if bot_id is not None else (int(head) if head.isdigit() else 1)
        )
        self.bot_username = bot_username
        self.max_long_poll = max_long_poll
        self.flood_interval = flood_interval
        self.shutdown_event = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget messages, updates, calls, answers, faults and the webhook."""
        self.messages: dict[str, list[StandinMessage]] = {}
        self.updates: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.webhook_url = ""
        self.commands: list[dict[str, Any]] = []
        self.allowed_updates: list[str] | None = None
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._open_queries: dict[str, dict[str, Any]] = {}
        self._last_sent: dict[str, float] = {}
        self._new_update = asyncio.Event()

    # --- the person's side ------------------------------------------------------

    def sent(self, chat_id: int | str | None = None) -> list[StandinMessage]:
        """Messages the bot sent (to one chat, or to all in order)."""
        if chat_id is not None:
            return list(self.messages.get(_chat_key(chat_id), []))
        every = [m for chat in self.messages.values() for m in chat]
        return sorted(every, key=lambda m: m.message_id)

    def press(
        self,
        chat_id: int | str,
        message_id: int,
        *,
        callback_data: str | None = None,
        text: str | None = None,
        user_id: int | None = None,
    ) -> dict[str, Any]:
        """Press a button of a sent message; queue the ``callback_query`` update.

        The button is found by its ``callback_data`` or its label; the first
        callback button when neither is given.

        Raises:
            LookupError: no such message or button.

        """
        message = self._message(_chat_key(chat_id), message_id)
        if message is None or message.deleted:
            raise LookupError("no such message")
        button = _find_button(message.buttons, callback_data, text)
        query_id = str(next(self._query_ids))
        query = {
            "id": query_id,
            "from": self._user(message.chat_id, user_id),
            "chat_instance": f"standin-{message.chat_id}",
            "data": button["callback_data"],
            "message": self._message_json(message),
        }
        self._open_queries[query_id] = query
        update = self._queue_update({"callback_query": query})
        return {"update_id": update["update_id"], "callback_query_id": query_id}

    def send_from_chat(
        self, chat_id: int | str, text: str, *, user_id: int | None = None
    ) -> dict[str, Any]:
        """Queue a ``message`` update: text, or a command such as ``/termin``."""
        chat = _chat_id_value(chat_id)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": self._user(chat, user_id),
            "chat": _chat(chat),
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command)}
            ]
        return self._queue_update({"message": message})

    # --- the application ------------------------------------------------------

    def create_app(self) -> web.Application:
        """Return the aiohttp application: the Bot API and the control surface."""
        app = web.Application()
        app[_STANDIN] = self
        app.router.add_get("/_standin/messages", _control_messages)
        app.router.add_get("/_standin/calls", _control_calls)
        app.router.add_get("/_standin/answers", _control_answers)
        app.router.add_get("/_standin/faults", _control_faults)
        app.router.add_post("/_standin/faults", _control_add_fault)
        app.router.add_delete("/_standin/faults", _control_clear_faults)
        app.router.add_post("/_standin/press", _control_press)
        app.router.add_post("/_standin/send", _control_send)
        app.router.add_post("/_standin/reset", _control_reset)
        app.router.add_route("*", "/{bot}/{method}", _bot_api)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.shutdown_event.set()
        self._new_update.set()

    async def handle(self, token: str, method: str, params: dict[str, Any]) -> Any:
        """Answer one Bot API call; raises :class:`BotAPIError` for an error."""
        if token != self.token:
            raise BotAPIError(401, "Unauthorized")
        handler = self._methods().get(method.lower())
        if handler is None:
            raise BotAPIError(404, "Not Found")
        return await handler(params)

    def take_fault(self, method: str) -> Fault | None:
        """The fault that applies to this call, if any (and count it)."""
        for fault in self.faults:
            if fault.matches(method):
                if fault.count > 0:
                    fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _methods(self) -> dict[str, _Handler]:
        return {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "getupdates": self._get_updates,
            "getchat": self._get_chat,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendchataction": self._true,
            "logout": self._true,
            "close": self._true,
        }

    # --- Bot API methods --------------------------------------------------------

    async def _get_me(self, _params: dict[str, Any]) -> dict[str, Any]:
        return self._bot_user(full=True)

    async def _true(self, _params: dict[str, Any]) -> bool:
        return True

    async def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """A chat's ``ChatFullInfo`` (telegram_bot checks an allowed chat with it)."""
        chat = self._known_chat(params)
        return {
            **_chat(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._known_chat(params)
        text = _text(params)
        markup = _markup(params)
        key = _chat_key(chat)
        now = time.monotonic()
        if self.flood_interval is not None:
            last = self._last_sent.get(key)
            if last is not None and now - last < self.flood_interval:
                wait = max(1, round(self.flood_interval - (now - last) + 0.5))
                raise BotAPIError(
                    429, f"Too Many Requests: retry after {wait}", retry_after=wait
                )
        self._last_sent[key] = now
        message = StandinMessage(
            message_id=next(self._message_ids),
            chat_id=chat,
            text=text,
            date=int(time.time()),
            parse_mode=_optional_str(params, "parse_mode"),
            reply_markup=markup,
        )
        self.messages.setdefault(key, []).append(message)
        return self._message_json(message)

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._editable(params)
        text = _text(params)
        markup = _markup(params)
        if text == message.text and markup == message.reply_markup:
            raise _bad(
                "message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and "
                "reply markup of the message"
            )
        message.text = text
        message.reply_markup = markup
        message.parse_mode = _optional_str(params, "parse_mode")
        message.edits.append({"text": text, "buttons": message.buttons})
        return self._message_json(message)

    async def _edit_message_reply_markup(
        self, params: dict[str, Any]
    ) -> dict[str, Any]:
        message = self._editable(params)
        markup = _markup(params)
        if markup == message.reply_markup:
            raise _bad(
                "message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and "
                "reply markup of the message"
            )
        message.reply_markup = markup
        message.edits.append({"text": message.text, "buttons": message.buttons})
        return self._message_json(message)

    async def _delete_message(self, params: dict[str, Any]) -> bool:
        message = self._message(
            _chat_key(_required(params, "chat_id")), _int(params, "message_id")
        )
        if message is None or message.deleted:
            raise _bad("message to delete not found")
        message.deleted = True
        return True

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(_required(params, "callback_query_id"))
        if self._open_queries.pop(query_id, None) is None:
            raise _bad(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.answers.append(
            {
                "callback_query_id": query_id,
                "text": _optional_str(params, "text"),
                "show_alert": _bool(params, "show_alert"),
            }
        )
        return True

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise BotAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params, "offset", default=0)
        limit = min(100, max(1, _int(params, "limit", default=100)))
        timeout = max(0.0, float(_int(params, "timeout", default=0)))
        allowed = _json(params, "allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = [str(a) for a in allowed]
        self._confirm(offset)
        if not self.updates and timeout > 0 and not self.shutdown_event.is_set():
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(timeout, self.max_long_poll)):
                    await self._new_update.wait()
        return self.updates[:limit]

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = ""
        if _bool(params, "drop_pending_updates"):
            self.updates.clear()
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = _optional_str(params, "url") or ""
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        if _bool(params, "drop_pending_updates"):
            self.updates.clear()
        return True

    async def _get_webhook_info(self, _params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.allowed_updates is not None:
            info["allowed_updates"] = self.allowed_updates
        return info

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = _json(params, "commands")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and "command" in c and "description" in c
            for c in commands
        ):
            raise _bad("can't parse commands JSON object")
        self.commands = commands
        return True

    async def _get_my_commands(self, _params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    async def _delete_my_commands(self, _params: dict[str, Any]) -> bool:
        self.commands = []
        return True

    # --- helpers ----------------------------------------------------------------

    def _known_chat(self, params: dict[str, Any]) -> int | str:
        chat = _chat_id_value(_required(params, "chat_id"))
        if self.chat_ids and _chat_key(chat) not in self.chat_ids:
            raise _bad("chat not found")
        return chat

    def _editable(self, params: dict[str, Any]) -> StandinMessage:
        if "inline_message_id" in params:
            raise _bad("inline messages are not supported by the stand-in")
        chat = _chat_key(_required(params, "chat_id"))
        message = self._message(chat, _int(params, "message_id"))
        if message is None or message.deleted:
            raise _bad("message to edit not found")
        return message

    def _message(self, chat: str, message_id: int) -> StandinMessage | None:
        for message in self.messages.get(chat, []):
            if message.message_id == message_id:
                return message
        return None

    def _confirm(self, offset: int) -> None:
        """Forget updates below ``offset`` (a negative one keeps the last -offset)."""
        if offset < 0:
            del self.updates[:offset]
        elif offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def _queue_update(self, content: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **content}
        self.updates.append(update)
        self._new_update.set()
        return update

    def _bot_user(self, *, full: bool = False) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "MTA Stand-in",
            "username": self.bot_username,
        }
        if full:
            user |= {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        return user

    @staticmethod
    def _user(chat: int | str, user_id: int | None) -> dict[str, Any]:
        if user_id is None:
            user_id = chat if isinstance(chat, int) and chat > 0 else 1000
        return {"id": user_id, "is_bot": False, "first_name": "Tester"}

    def _message_json(self, message: StandinMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_user(),
            "chat": _chat(message.chat_id),
            "date": message.date,
            "text": message.text,
        }
        if message.edits:
            data["edit_date"] = int(time.time())
        if message.buttons:
            data["reply_markup"] = {"inline_keyboard": message.buttons}
        return data


# --- parameters -------------------------------------------------------------------


def _chat_id_value(value: Any) -> int | str:
    if isinstance(value, bool):
        raise _bad("chat not found")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("@") and len(text) > 1:
        return text
    raise _bad("chat not found")


def _chat_key(value: Any) -> str:
    return str(_chat_id_value(value))


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):
        return {"id": -1_001_000_000_001, "type": "channel", "username": chat_id[1:]}
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Tester"}
    return {"id": chat_id, "type": "supergroup", "title": "Stand-in group"}


def _required(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _bad(f"{name} is empty")
    return value


def _int(params: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise _bad(f"{name} is empty")
        return default
    if isinstance(value, bool):
        raise _bad(f"invalid {name}")
    if isinstance(value, int):
        return value
    try:
        return int(float(str(value)))
    except ValueError:
        raise _bad(f"invalid {name}") from None


def _bool(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in {"true", "1"}
    return bool(value)


def _optional_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else str(value)


def _json(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"can't parse {name} JSON object") from None
    return value


def _text(params: Mapping[str, Any]) -> str:
    text = _optional_str(params, "text")
    if text is None or not text.strip():
        raise _bad("message text is empty")
    if len(text) > MAX_TEXT:
        raise _bad("message is too long")
    return text


def _markup(params: Mapping[str, Any]) -> dict[str, Any] | None:
    markup = _json(params, "reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup  # a reply keyboard: kept, not checked
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _bad("can't parse inline keyboard button: InlineKeyboardMarkup expected")
    for row in rows:
        for button in row:
            _check_button(button)
    return {"inline_keyboard": rows} if any(rows) else None


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not button.get("text"):
        raise _bad("can't parse inline keyboard button: Text buttons are unallowed")
    data = button.get("callback_data")
    if data is not None and not (
        isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA
    ):
        raise _bad("BUTTON_DATA_INVALID")
    actions = [k for k in button if k != "text"]
    if len(actions) != 1:
        raise _bad("can't parse inline keyboard button: exactly one action expected")


def _find_button(
    rows: Sequence[Sequence[dict[str, Any]]],
    callback_data: str | None,
    text: str | None,
) -> dict[str, Any]:
    for row in rows:
        for button in row:
            if "callback_data" not in button:
                continue
            if callback_data is not None and button["callback_data"] != callback_data:
                continue
            if text is not None and button.get("text") != text:
                continue
            return button
    raise LookupError("no such button")


async def _params(request: web.Request) -> dict[str, Any]:
    """Query string, then a JSON, form or multipart body."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad("can't parse JSON body") from None
        if not isinstance(body, dict):
            raise _bad("can't parse JSON body")
        params.update(body)
    elif request.content_type in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


# --- handlers ---------------------------------------------------------------------


async def _bot_api(request: web.Request) -> web.StreamResponse:
    standin = request.app[_STANDIN]
    bot = request.match_info["bot"]
    method = request.match_info["method"]
    if not bot.startswith("bot"):
        return BotAPIError(404, "Not Found").response()
    try:
        params = await _params(request)
        standin.calls.append({"method": method, "params": params})
        fault = standin.take_fault(method)
        if fault is not None:
            return fault.response()
        result = await standin.handle(bot.removeprefix("bot"), method, params)
    except BotAPIError as err:
        return err.response()
    return web.json_response({"ok": True, "result": result})


async def _control_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def _control_messages(request: web.Request) -> web.Response:
    standin = request.app[_STANDIN]
    chat = request.query.get("chat_id")
    if chat is not None:
        try:
            _chat_key(chat)
        except BotAPIError:
            raise web.HTTPBadRequest(text="bad chat_id") from None
    chats = (
        {_chat_key(chat): standin.sent(chat)}
        if chat is not None
        else {key: list(value) for key, value in standin.messages.items()}
    )
    return web.json_response(
        {"chats": {key: [m.to_control() for m in ms] for key, ms in chats.items()}}
    )


async def _control_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[_STANDIN].calls})


async def _control_answers(request: web.Request) -> web.Response:
    return web.json_response({"answers": request.app[_STANDIN].answers})


async def _control_faults(request: web.Request) -> web.Response:
    faults = [vars(f) for f in request.app[_STANDIN].faults]
    return web.json_response({"faults": faults})


async def _control_add_fault(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        fault = Fault(
            method=str(body.get("method", "*")).lower(),
            status=int(body.get("status", 429)),
            retry_after=(
                int(body["retry_after"])
                if body.get("retry_after") is not None
                else None
            ),
            description=body.get("description"),
            count=int(body.get("count", 1)),
            migrate_to_chat_id=(
                int(body["migrate_to_chat_id"])
                if body.get("migrate_to_chat_id") is not None
                else None
            ),
        )
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="bad fault") from None
    request.app[_STANDIN].faults.append(fault)
    return web.json_response({"faults": len(request.app[_STANDIN].faults)})


async def _control_clear_faults(request: web.Request) -> web.Response:
    request.app[_STANDIN].faults.clear()
    return web.json_response({"faults": 0})


async def _control_press(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        result = request.app[_STANDIN].press(
            body["chat_id"],
            int(body["message_id"]),
            callback_data=body.get("callback_data"),
            text=body.get("text"),
            user_id=body.get("user_id"),
        )
    except (KeyError, TypeError, ValueError, BotAPIError):
        raise web.HTTPBadRequest(text="need chat_id and message_id") from None
    except LookupError as err:
        raise web.HTTPNotFound(text=str(err)) from None
    return web.json_response(result)


async def _control_send(request: web.Request) -> web.Response:
    body = await _control_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text or "chat_id" not in body:
        raise web.HTTPBadRequest(text="need chat_id and text")
    try:
        update = request.app[_STANDIN].send_from_chat(
            body["chat_id"], text, user_id=body.get("user_id")
        )
    except BotAPIError:
        raise web.HTTPBadRequest(text="bad chat_id") from None
    return web.json_response({"update_id": update["update_id"]})


async def _control_reset(request: web.Request) -> web.Response:
    request.app[_STANDIN].reset()
    return web.json_response({"reset": True})


# --- serving ----------------------------------------------------------------------


class TelegramStandinServer(LocalServer):
    """Run a :class:`TelegramStandin` on a local TCP port.

    Example::

        async with TelegramStandinServer(TelegramStandin(token=T)) as server:
            sender = TelegramSender(token=T, api_url=server.api_url)
    """

    def __init__(
        self, standin: TelegramStandin, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """Prepare the server; ``port=0`` picks a free port."""
        super().__init__(host=host, port=port)
        self.standin = standin

    @property
    def api_url(self) -> str:
        """The Bot API root to give a client (``{api_url}/bot{token}/...``)."""
        return f"http://{self.host}:{self.port}"

    def create_app(self) -> web.Application:
        """The stand-in's Bot API and control surface."""
        return self.standin.create_app()

    def stopping(self) -> None:
        """End the long polls at once."""
        self.standin.shutdown_event.set()
        self.standin._new_update.set()  # noqa: SLF001 - wake the long polls


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    token: str = DEFAULT_TOKEN,
    chat_ids: Sequence[int | str] = (),
    flood_interval: float | None = None,
) -> None:
    """Serve a stand-in until cancelled; prints one line when ready."""
    standin = TelegramStandin(
        token=token, chat_ids=chat_ids, flood_interval=flood_interval
    )
    async with TelegramStandinServer(standin, host=host, port=port) as server:
        chats = ", ".join(map(str, chat_ids)) or "any chat"
        print(  # noqa: T201 - the command's one line of output
            f"Telegram Bot API stand-in listening on {server.api_url} ({chats}); "
            f"control surface at {server.api_url}/_standin/messages",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mta_client.telegram_standin``."""
    parser = argparse.ArgumentParser(
        prog="python -m mta_client.telegram_standin",
        description="A local stand-in for the Telegram Bot API (tests, development).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="default: 8081")
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="the one bot token accepted"
    )
    parser.add_argument(
        "--chat-id",
        action="append",
        default=[],
        dest="chat_ids",
        help="a chat the bot may write to (repeat; default: any)",
    )
    parser.add_argument(
        "--flood-interval",
        type=float,
        default=None,
        help="answer 429 to a second message to one chat within this many seconds",
    )
    args = parser.parse_args(argv)
    try:
        chat_ids = [_chat_id_value(c) for c in args.chat_ids]
    except BotAPIError:
        parser.error("--chat-id must be a number or @channel")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                token=args.token,
                chat_ids=chat_ids,
                flood_interval=args.flood_interval,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
