"""Sending alerts through the Telegram Bot API.

:class:`TelegramSender` is the one place that talks to the Bot API
(``{api_url}/bot{token}/{method}``): it sends messages with inline buttons,
edits them, answers button presses and checks the token. It keeps Telegram's
pace (about one message a second per chat) on the library's
:class:`~mta_client.clock.Clock` and waits out a 429's ``retry_after``.

:class:`AlertQueue` sits in front of it: a bounded queue of outgoing
messages that survives Telegram being away (retried with exponential
back-off, a message is dropped only when it is older than a day) and stops
when the token is rejected, so that a host can ask for a new one.

The bot token is a secret. It is never logged, never part of an exception's
message and never in a ``repr``: every error is built from the method name,
the HTTP status and Telegram's description, with the token cut out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
import json
import logging
import math
from typing import Any

import aiohttp

from .client import SessionOwner
from .clock import Clock, SystemClock, monotonic_of
from .exceptions import MTAError

__all__ = [
    "DEFAULT_API_URL",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_MESSAGE_LENGTH",
    "AlertQueue",
    "InlineButton",
    "OutgoingMessage",
    "TelegramAuthError",
    "TelegramBadRequestError",
    "TelegramConnectionError",
    "TelegramError",
    "TelegramRateLimitError",
    "TelegramSender",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
MAX_CALLBACK_DATA_BYTES = 64
"""Telegram's limit for a button's ``callback_data`` (1-64 bytes)."""
MAX_MESSAGE_LENGTH = 4096
"""Telegram's limit for a message's text, in characters."""

_REDACTED = "**REDACTED**"
_NOT_MODIFIED = "message is not modified"


# --- errors -------------------------------------------------------------------


class TelegramError(MTAError):
    """The Bot API refused a request, or could not be reached.

    Attributes:
        method: the Bot API method (``sendMessage``).
        status: the HTTP status, None when nothing was answered.
        description: Telegram's description of the error (token removed).

    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        description: str | None = None,
    ) -> None:
        """Store what Telegram said next to the message."""
        super().__init__(message)
        self.method = method
        self.status = status
        self.description = description


class TelegramAuthError(TelegramError):
    """Telegram rejected the bot token (HTTP 401, or 404 for a malformed one)."""


class TelegramRateLimitError(TelegramError):
    """Telegram asked to wait (HTTP 429); ``retry_after`` is in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        method: str | None = None,
        status: int | None = 429,
        description: str | None = None,
    ) -> None:
        """Store how long Telegram asked to wait."""
        super().__init__(message, method=method, status=status, description=description)
        self.retry_after = retry_after


class TelegramConnectionError(TelegramError):
    """Telegram could not be reached, timed out or had a server error (5xx).

    Worth trying again later.
    """


class TelegramBadRequestError(TelegramError):
    """Telegram refused this request for good (400, 403: chat not found, blocked).

    Sending the same message again will not help. ``migrate_to_chat_id`` is
    set when a group became a supergroup with a new id.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        description: str | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Store the new chat id of a migrated group, if Telegram gave one."""
        super().__init__(message, method=method, status=status, description=description)
        self.migrate_to_chat_id = migrate_to_chat_id


# --- buttons ------------------------------------------------------------------


@dataclass(frozen=True)
class InlineButton:
    """One button under a message: a callback (``callback_data``) or a link (``url``).

    ``callback_data`` is what Telegram hands back when the button is pressed;
    it must be 1-64 bytes, so pass a short opaque token, never personal data.
    """

    text: str
    callback_data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        """Check Telegram's rules: a label, and exactly one action."""
        if not self.text:
            raise ValueError("a button needs a label")
        if (self.callback_data is None) == (self.url is None):
            raise ValueError("a button has either callback_data or url")
        if self.callback_data is not None and not (
            1 <= len(self.callback_data.encode()) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise ValueError(f"callback_data must be 1-{MAX_CALLBACK_DATA_BYTES} bytes")

    def to_api(self) -> dict[str, str]:
        """Return the Bot API's ``InlineKeyboardButton``."""
        button = {"text": self.text}
        if self.callback_data is not None:
            button["callback_data"] = self.callback_data
        if self.url is not None:
            button["url"] = self.url
        return button


type Keyboard = Sequence[Sequence[InlineButton]]
"""Rows of inline buttons."""


def _reply_markup(buttons: Keyboard | None) -> dict[str, Any]:
    rows = [[b.to_api() for b in row] for row in buttons or () if row]
    return {"inline_keyboard": rows}


# --- the sender ---------------------------------------------------------------


class _Secret:
    """A string that never shows itself in a repr."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return _REDACTED


class TelegramSender(SessionOwner):
    """Talks to the Telegram Bot API for one bot.

    Use it as an async context manager, or call :meth:`aclose` when done.

    Args:
        token: the bot token from @BotFather (a secret: never logged).
        session: an ``aiohttp.ClientSession`` to use; one is created (and
            closed by :meth:`aclose`) when none is given.
        api_url: the Bot API root, e.g. a local stand-in or a self-hosted
            Bot API server; requests go to ``{api_url}/bot{token}/{method}``.
        clock: the time source for pacing and waiting.
        min_interval: seconds between two messages (sent or edited) to the
            same chat; Telegram allows about one a second.
        request_timeout: seconds for one request.
        max_retry_after: a 429 asking to wait up to this long is waited out
            and the request sent again (once); a longer wait raises
            :class:`TelegramRateLimitError` at once.

    """

    def __init__(
        self,
        *,
        token: str,
        session: aiohttp.ClientSession | None = None,
        api_url: str = DEFAULT_API_URL,
        clock: Clock | None = None,
        min_interval: float = 1.0,
        request_timeout: float = 30.0,
        max_retry_after: float = 30.0,
    ) -> None:
        """Configure the sender; nothing is sent until the first call."""
        if not token or "/" in token or any(c.isspace() for c in token):
            raise ValueError("the bot token is empty or malformed")
        self._token = _Secret(token)
        self.api_url = api_url.rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.min_interval = min_interval
        self.request_timeout = request_timeout
        self.max_retry_after = max_retry_after
        self._init_session(session)
        self._next_send: dict[str, float] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._blocked_until = -math.inf

    def __repr__(self) -> str:
        """Show where the sender points, never the token."""
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    # --- lifecycle ------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP session if this sender created it."""
        await self._close_session_if_owned()

    # --- the Bot API methods --------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        """Return the bot's ``User`` (checks the token).

        Raises:
            TelegramAuthError: the token was rejected.
            TelegramError: any other failure.

        """
        result = await self._call("getMe", {})
        if not isinstance(result, dict):
            raise self._invalid("getMe")
        return result

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        buttons: Keyboard | None = None,
        parse_mode: str | None = None,
        disable_notification: bool = False,
    ) -> int:
        """Send a text message (cut to 4096 characters); return its ``message_id``.

        Waits for the chat's pace (``min_interval``) and for a short 429.
        """
        params: dict[str, Any] = {"chat_id": chat_id, "text": _fit(text)}
        if buttons:
            params["reply_markup"] = _reply_markup(buttons)
        if parse_mode:
            params["parse_mode"] = parse_mode
        if disable_notification:
            params["disable_notification"] = True
        result = await self._paced(chat_id, "sendMessage", params)
        if not isinstance(result, dict) or not isinstance(
            result.get("message_id"), int
        ):
            raise self._invalid("sendMessage")
        message_id: int = result["message_id"]
        return message_id

    async def edit_message_text(
        self,
        chat_id: int | str,
        message_id: int,
        text: str,
        *,
        buttons: Keyboard | None = None,
        parse_mode: str | None = None,
    ) -> None:
        """Replace a message's text (and its buttons: none when not given).

        An edit that changes nothing ("message is not modified") is no error.
        """
        params: dict[str, Any] = {
            "chat_id": chat_id,
            "message_id": message_id,
            "text": _fit(text),
            "reply_markup": _reply_markup(buttons),
        }
        if parse_mode:
            params["parse_mode"] = parse_mode
        await self._edit(chat_id, "editMessageText", params)

    async def edit_message_reply_markup(
        self,
        chat_id: int | str,
        message_id: int,
        *,
        buttons: Keyboard | None = None,
    ) -> None:
        """Replace a message's buttons (remove them when none are given)."""
        params: dict[str, Any] = {
            "chat_id": chat_id,
            "message_id": message_id,
            "reply_markup": _reply_markup(buttons),
        }
        await self._edit(chat_id, "editMessageReplyMarkup", params)

    async def answer_callback_query(
        self,
        callback_query_id: str,
        text: str | None = None,
        *,
        show_alert: bool = False,
    ) -> None:
        """Answer a button press (stops the spinner; shows ``text`` briefly)."""
        params: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            params["text"] = text[:200]
        if show_alert:
            params["show_alert"] = True
        await self._call("answerCallbackQuery", params)

    async def get_updates(
        self, *, offset: int | None = None, long_poll: int = 0
    ) -> list[dict[str, Any]]:
        """Return pending updates (long polling for up to ``long_poll`` seconds).

        Telegram allows one consumer of updates per token: do not call this
        with a token that Home Assistant's ``telegram_bot`` already polls.
        """
        params: dict[str, Any] = {"timeout": long_poll}
        if offset is not None:
            params["offset"] = offset
        result = await self._call(
            "getUpdates", params, limit=self.request_timeout + long_poll
        )
        if not isinstance(result, list):
            raise self._invalid("getUpdates")
        return [u for u in result if isinstance(u, dict)]

    # --- pacing ---------------------------------------------------------------

    async def _edit(self, chat_id: int | str, method: str, params: Any) -> None:
        try:
            await self._paced(chat_id, method, params)
        except TelegramBadRequestError as err:
            if _NOT_MODIFIED not in (err.description or "").lower():
                raise

    async def _paced(
        self, chat_id: int | str, method: str, params: Mapping[str, Any]
    ) -> Any:
        """Send to one chat no faster than ``min_interval``, one at a time."""
        key = str(chat_id)
        lock = self._chat_locks.setdefault(key, asyncio.Lock())
        async with lock:
            wait = self._next_send.get(key, -math.inf) - monotonic_of(self.clock)
            if wait > 0:
                await self.clock.sleep(wait)
            try:
                return await self._call(method, params)
            finally:
                self._next_send[key] = monotonic_of(self.clock) + self.min_interval

    # --- transport ------------------------------------------------------------

    async def _call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        limit: float | None = None,
    ) -> Any:
        """Call one method; wait out a short 429 once, and Telegram's last 429."""
        for attempt in (1, 2):
            wait = self._blocked_until - monotonic_of(self.clock)
            if wait > 0:
                if wait > self.max_retry_after:
                    raise TelegramRateLimitError(
                        f"Telegram asked to wait {wait:.0f} s ({method})",
                        retry_after=wait,
                        method=method,
                    )
                await self.clock.sleep(wait)
            try:
                return await self._post(method, params, limit=limit)
            except TelegramRateLimitError as err:
                self._blocked_until = monotonic_of(self.clock) + err.retry_after
                if attempt == 2 or err.retry_after > self.max_retry_after:  # noqa: PLR2004
                    raise
                _LOGGER.debug(
                    "Telegram %s: 429, waiting %.0f s", method, err.retry_after
                )
        raise AssertionError  # pragma: no cover - the loop returns or raises

    async def _post(
        self, method: str, params: Mapping[str, Any], *, limit: float | None
    ) -> Any:
        """The only place that touches aiohttp."""
        session = self._open_session()
        url = f"{self.api_url}/bot{self._token.value}/{method}"
        seconds = limit if limit is not None else self.request_timeout
        try:
            async with asyncio.timeout(seconds):
                async with session.post(url, json=dict(params)) as response:
                    status = response.status
                    text = await response.text(errors="replace")
        except TimeoutError:
            raise TelegramConnectionError(
                f"Telegram did not answer within {seconds:.0f} s ({method})",
                method=method,
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            # `from None`: aiohttp's errors may quote the URL, and the URL
            # holds the token.
            raise TelegramConnectionError(
                f"could not reach Telegram ({method}): {type(err).__name__}",
                method=method,
            ) from None
        return self._decode(method, status, text)

    def _decode(self, method: str, status: int, text: str) -> Any:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status >= 500 or status in {408, 502, 503, 504}:  # noqa: PLR2004
                raise TelegramConnectionError(
                    f"Telegram answered HTTP {status} ({method})",
                    method=method,
                    status=status,
                )
            if status in {401, 404}:
                raise TelegramAuthError(
                    f"Telegram rejected the bot token (HTTP {status}, {method})",
                    method=method,
                    status=status,
                )
            raise self._invalid(method, status)
        if body.get("ok") is True and status < 400:  # noqa: PLR2004
            return body.get("result")
        return self._raise_for(method, status, body)

    def _raise_for(self, method: str, status: int, body: dict[str, Any]) -> Any:
        code = body.get("error_code")
        code = code if isinstance(code, int) else status
        description = self._scrub(str(body.get("description") or f"HTTP {code}"))
        parameters = body.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        what = f"{description} (HTTP {code}, {method})"
        retry_after = parameters.get("retry_after")
        if code == 429 or isinstance(retry_after, int | float):  # noqa: PLR2004
            seconds = float(retry_after) if isinstance(retry_after, int | float) else 1
            raise TelegramRateLimitError(
                what,
                retry_after=max(0.0, seconds),
                method=method,
                status=code,
                description=description,
            )
        if code in {401, 404}:
            raise TelegramAuthError(
                f"Telegram rejected the bot token: {what}",
                method=method,
                status=code,
                description=description,
            )
        if code >= 500:  # noqa: PLR2004
            raise TelegramConnectionError(
                what, method=method, status=code, description=description
            )
        migrated = parameters.get("migrate_to_chat_id")
        raise TelegramBadRequestError(
            what,
            method=method,
            status=code,
            description=description,
            migrate_to_chat_id=migrated if isinstance(migrated, int) else None,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token.value, _REDACTED)

    @staticmethod
    def _invalid(method: str, status: int | None = None) -> TelegramError:
        where = f"HTTP {status}, {method}" if status is not None else method
        return TelegramError(
            f"Telegram's answer is not the Bot API's ({where})",
            method=method,
            status=status,
        )


def _fit(text: str) -> str:
    """Cut a text to Telegram's limit, marking the cut."""
    if not text:
        raise ValueError("a message needs text")
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[: MAX_MESSAGE_LENGTH - 1] + "…"


# --- the queue ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OutgoingMessage:
    """One message waiting in an :class:`AlertQueue`."""

    chat_id: int | str
    text: str
    buttons: tuple[tuple[InlineButton, ...], ...] = ()
    parse_mode: str | None = None
    queued_at: float = 0.0
    """Monotonic clock time at which the message was queued."""
    on_sent: Callable[[int], None] | None = field(default=None, compare=False)
    """Called with the ``message_id`` once sent (to edit the message later)."""


class AlertQueue:
    """A bounded queue of outgoing messages in front of a :class:`TelegramSender`.

    Messages go out in order. While Telegram is away (connection errors,
    5xx, long 429s) the head of the queue is tried again after an exponential
    back-off (``base_delay`` doubling up to ``max_delay``; a 429 waits its
    ``retry_after``); a message is dropped only once it is older than
    ``max_age`` (a day), or when the queue is full (the oldest goes), or when
    Telegram refuses it for good (400/403; a group that became a supergroup
    is followed to its new id, and ``on_chat_migrated`` is told). A rejected
    token stops all sending: ``failed_auth`` turns True, ``on_auth_failed``
    is called once, and nothing more is sent until :meth:`resume` (with a
    new sender).

    Counters: ``sent``, ``dropped``, ``pending`` and ``failed_auth``.

    Run the worker with :meth:`run` (a task) and stop it by cancelling it.
    """

    def __init__(
        self,
        sender: TelegramSender,
        *,
        maxsize: int = 500,
        max_age: float = 86_400.0,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        clock: Clock | None = None,
        on_auth_failed: Callable[[TelegramAuthError], None] | None = None,
        on_chat_migrated: Callable[[int | str, int], None] | None = None,
    ) -> None:
        """Configure the queue; :meth:`run` starts sending."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.sender = sender
        self.maxsize = maxsize
        self.max_age = max_age
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock: Clock = clock or sender.clock
        self.on_auth_failed = on_auth_failed
        self.on_chat_migrated = on_chat_migrated
        self.sent = 0
        self.dropped = 0
        self.failed_auth = False
        self.last_error: TelegramError | None = None
        self._messages: deque[OutgoingMessage] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failures = 0

    def __repr__(self) -> str:
        """Show the counters."""
        return (
            f"{type(self).__name__}(pending={self.pending}, sent={self.sent}, "
            f"dropped={self.dropped}, failed_auth={self.failed_auth})"
        )

    @property
    def pending(self) -> int:
        """Messages waiting to be sent."""
        return len(self._messages)

    def put(
        self,
        chat_id: int | str,
        text: str,
        *,
        buttons: Keyboard | None = None,
        parse_mode: str | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        """Queue a message (never blocks; a full queue drops its oldest)."""
        message = OutgoingMessage(
            chat_id=chat_id,
            text=text,
            buttons=tuple(tuple(row) for row in buttons or () if row),
            parse_mode=parse_mode,
            queued_at=monotonic_of(self.clock),
            on_sent=on_sent,
        )
        if len(self._messages) >= self.maxsize:
            self._messages.popleft()
            self.dropped += 1
            _LOGGER.warning("Telegram alert queue full: dropped the oldest message")
        self._messages.append(message)
        self._idle.clear()
        self._wakeup.set()

    def resume(self, sender: TelegramSender | None = None) -> None:
        """Send again after a rejected token (optionally with a new sender)."""
        if sender is not None:
            self.sender = sender
        self.failed_auth = False
        self._failures = 0
        if self._messages:
            self._idle.clear()
        self._wakeup.set()

    def mark_auth_failed(self, err: TelegramAuthError) -> None:
        """Hold every message: the token was rejected (here, or by a host's check).

        Calls ``on_auth_failed`` once, until :meth:`resume`.
        """
        self.last_error = err
        if self.failed_auth:
            return
        self.failed_auth = True
        self._idle.set()
        _LOGGER.warning("Telegram rejected the bot token; alerts are held")
        if self.on_auth_failed is not None:
            self.on_auth_failed(err)

    async def join(self) -> None:
        """Wait until every queued message is sent or dropped (or the token fails)."""
        await self._idle.wait()

    async def run(self) -> None:
        """Send queued messages until cancelled."""
        while True:
            if not self._messages or self.failed_auth:
                if not self._messages:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            delay = await self.send_next()
            if delay > 0:
                await self.clock.sleep(delay)
            # Give the loop a turn: a fake clock's sleep may not yield.
            await asyncio.sleep(0)

    async def send_next(self) -> float:
        """Try the head of the queue once; return the seconds to wait until the next."""
        self._expire()
        if not self._messages or self.failed_auth:
            return 0.0
        message = self._messages[0]
        try:
            message_id = await self.sender.send_message(
                message.chat_id,
                message.text,
                buttons=message.buttons,
                parse_mode=message.parse_mode,
            )
        except TelegramError as err:
            return self._failed(message, err)
        self._failures = 0
        self.last_error = None
        if self._messages and self._messages[0] is message:
            self._messages.popleft()
        if not self._messages:
            self._idle.set()
        self.sent += 1
        if message.on_sent is not None:
            message.on_sent(message_id)
        return 0.0

    def _failed(self, message: OutgoingMessage, err: TelegramError) -> float:
        """Deal with a failed send; return the seconds to wait."""
        if isinstance(err, TelegramAuthError):
            self.mark_auth_failed(err)
            return 0.0
        self.last_error = err
        if isinstance(err, TelegramBadRequestError):
            if err.migrate_to_chat_id is not None:
                self._migrate(message.chat_id, err.migrate_to_chat_id)
            else:
                self._drop_head()
                _LOGGER.warning("Telegram refused an alert for good: %s", err)
            return 0.0
        self._failures += 1
        if isinstance(err, TelegramRateLimitError):
            return err.retry_after
        delay = min(self.max_delay, self.base_delay * 2.0 ** (self._failures - 1))
        _LOGGER.debug("Telegram alert not sent (%s); next try in %.0f s", err, delay)
        return delay

    def _migrate(self, old: int | str, new: int) -> None:
        """A group became a supergroup: send its messages to the new id."""
        _LOGGER.warning("Telegram chat %s moved to %s; alerts follow it", old, new)
        self._messages = deque(
            replace(m, chat_id=new) if str(m.chat_id) == str(old) else m
            for m in self._messages
        )
        if self.on_chat_migrated is not None:
            self.on_chat_migrated(old, new)

    def _expire(self) -> None:
        now = monotonic_of(self.clock)
        while self._messages and now - self._messages[0].queued_at > self.max_age:
            self._drop_head()
            _LOGGER.warning("Telegram alert older than %.0f s dropped", self.max_age)

    def _drop_head(self) -> None:
        self._messages.popleft()
        self.dropped += 1
        if not self._messages:
            self._idle.set()
