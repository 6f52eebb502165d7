"""Telegram alerts for ``mta watch --telegram-chat ID``.

:func:`add_telegram_arguments` adds the options; :func:`telegram_settings`
reads them (the bot token comes from the environment, ``MTA_TELEGRAM_TOKEN``,
never from the command line, where other users could read it);
:class:`TelegramRelay` turns the watcher's events into messages::

    settings = telegram_settings(args)
    async with TelegramRelay(settings, catalogue=catalogue, watches=watches) as relay:
        watcher = Watcher(client, on_event=relay)
        ...

The relay checks the token when it starts (a rejected token ends the command
with a usage error), sends through an :class:`~mta_client.telegram.AlertQueue`
(paced, retried while Telegram is away), puts the slots one look finds into
one message per watch, and on the way out waits a little for what is still
queued.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import os
from typing import TYPE_CHECKING, Self

from mta_client.alerts import alert_kind, format_event, format_slot_events
from mta_client.telegram import (
    DEFAULT_API_URL,
    AlertQueue,
    TelegramAuthError,
    TelegramError,
    TelegramSender,
)
from mta_client.watch import SlotEvent, SlotEventKind

from .exitcodes import CLIError, ExitCode

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping
    from types import TracebackType

    import aiohttp

    from mta_client.alerts import AlertKind
    from mta_client.clock import Clock
    from mta_client.models import Catalogue
    from mta_client.watch import Watch, WatchEvent

__all__ = [
    "ENV_TOKEN",
    "TelegramRelay",
    "TelegramSettings",
    "add_telegram_arguments",
    "telegram_settings",
]

_LOGGER = logging.getLogger(__name__)

ENV_TOKEN = "MTA_TELEGRAM_TOKEN"  # noqa: S105 - the variable's name, not a token
LANGUAGES = ("en", "de")


@dataclass(frozen=True, kw_only=True)
class TelegramSettings:
    """Where ``mta watch`` sends its alerts."""

    token: str
    chat_id: int | str
    api_url: str = DEFAULT_API_URL
    language: str = "en"
    gone: bool = False
    """Also announce slots that are no longer offered."""

    def __repr__(self) -> str:
        """Everything but the token."""
        return (
            f"TelegramSettings(chat_id={self.chat_id!r}, api_url={self.api_url!r}, "
            f"language={self.language!r}, gone={self.gone!r})"
        )


def add_telegram_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--telegram-chat``, ``--telegram-api-url``, ``--telegram-language``, ``--telegram-gone``."""  # noqa: E501
    group = parser.add_argument_group(
        "Telegram alerts (the bot token is read from $MTA_TELEGRAM_TOKEN)"
    )
    group.add_argument(
        "--telegram-chat",
        metavar="ID",
        help="send alerts to this Telegram chat (a number, or @channel)",
    )
    group.add_argument(
        "--telegram-api-url",
        metavar="URL",
        help=f"the Bot API server (default: {DEFAULT_API_URL}; a local stand-in "
        "or Bot API server for tests)",
    )
    group.add_argument(
        "--telegram-language",
        choices=LANGUAGES,
        default="en",
        help="language of the alerts (default: en)",
    )
    group.add_argument(
        "--telegram-gone",
        action="store_true",
        help="also tell when a fitting slot is no longer offered",
    )


def telegram_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> TelegramSettings | None:
    """The Telegram settings of the options, or None without ``--telegram-chat``.

    Raises:
        CLIError: a chat without a token, or a malformed chat id or URL (usage).

    """
    chat = getattr(args, "telegram_chat", None)
    if not chat:
        return None
    env = os.environ if environ is None else environ
    token = (env.get(ENV_TOKEN) or "").strip()
    if not token:
        msg = f"--telegram-chat needs the bot token in ${ENV_TOKEN}"
        raise CLIError(msg, ExitCode.USAGE)
    if "/" in token or any(c.isspace() for c in token):
        msg = f"${ENV_TOKEN} does not look like a bot token"
        raise CLIError(msg, ExitCode.USAGE)
    text = str(chat).strip()
    if text.lstrip("-").isdigit():
        chat_id: int | str = int(text)
    elif text.startswith("@") and len(text) > 1:
        chat_id = text
    else:
        msg = "invalid --telegram-chat: a chat id is a number, or @channel"
        raise CLIError(msg, ExitCode.USAGE)
    api_url = (getattr(args, "telegram_api_url", None) or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        msg = "invalid --telegram-api-url: expected an http(s) URL"
        raise CLIError(msg, ExitCode.USAGE)
    return TelegramSettings(
        token=token,
        chat_id=chat_id,
        api_url=api_url,
        language=getattr(args, "telegram_language", None) or "en",
        gone=bool(getattr(args, "telegram_gone", False)),
    )


class TelegramRelay:
    """Sends the watcher's events to one Telegram chat.

    Call it with every event (it is a valid ``on_event`` of the
    :class:`~mta_client.watcher.Watcher`); use it as an async context manager
    around the watch.

    Args:
        settings: token, chat, API endpoint, language.
        catalogue: for office and service names.
        watches: for the services of booking events.
        session: an aiohttp session to use (one is made otherwise).
        clock: the time source for pacing and back-off.
        flush_timeout: seconds the exit waits for queued messages.

    """

    def __init__(
        self,
        settings: TelegramSettings,
        *,
        catalogue: Catalogue | None = None,
        watches: Iterable[Watch] = (),
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        flush_timeout: float = 10.0,
    ) -> None:
        """Prepare the sender and the queue; nothing is sent before entering."""
        self.settings = settings
        self.catalogue = catalogue
        self.watches = {w.id: w for w in watches}
        self.flush_timeout = flush_timeout
        self.sender = TelegramSender(
            token=settings.token, session=session, api_url=settings.api_url, clock=clock
        )
        self.queue = AlertQueue(self.sender, on_auth_failed=self._auth_failed)
        self.bot_name: str | None = None
        self._worker: asyncio.Task[None] | None = None
        self._batch: dict[tuple[str, AlertKind], list[SlotEvent]] = {}
        self._flush_handle: asyncio.Handle | None = None

    def __repr__(self) -> str:
        """The chat and the counters, never the token."""
        return f"TelegramRelay(chat_id={self.settings.chat_id!r}, queue={self.queue!r})"

    async def __aenter__(self) -> Self:
        """Check the token and start sending.

        Raises:
            CLIError: Telegram rejected the token (usage) or is unreachable.

        """
        try:
            me = await self.sender.get_me()
        except TelegramAuthError:
            await self.sender.aclose()
            msg = f"Telegram rejected the bot token in ${ENV_TOKEN}"
            raise CLIError(msg, ExitCode.USAGE) from None
        except TelegramError as err:
            await self.sender.aclose()
            msg = f"could not reach Telegram: {err}"
            raise CLIError(msg, ExitCode.UNREACHABLE) from None
        username = me.get("username")
        self.bot_name = username if isinstance(username, str) else None
        self._worker = asyncio.create_task(self.queue.run(), name="mta-telegram")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Send what is gathered, wait a little for the queue, then stop."""
        self._flush()
        if self.queue.pending and not self.queue.failed_auth:
            try:
                async with asyncio.timeout(self.flush_timeout):
                    await self.queue.join()
            except TimeoutError:
                _LOGGER.warning(
                    "%d Telegram alert(s) not sent before exit", self.queue.pending
                )
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        await self.sender.aclose()

    def __call__(self, event: WatchEvent) -> None:
        """Queue the alert for an event (the slots of one look go together)."""
        if isinstance(event, SlotEvent):
            kind = alert_kind(event)
            if event.kind is SlotEventKind.GONE and not self.settings.gone:
                return
            self._batch.setdefault((event.watch_id, kind), []).append(event)
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
            return
        self._flush()
        alert = format_event(
            event,
            catalogue=self.catalogue,
            watch=self.watches.get(event.watch_id),
            language=self.settings.language,
        )
        self.queue.put(self.settings.chat_id, alert.text, buttons=alert.buttons)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._batch = self._batch, {}
        for events in batch.values():
            alert = format_slot_events(
                events, catalogue=self.catalogue, language=self.settings.language
            )
            self.queue.put(self.settings.chat_id, alert.text, buttons=alert.buttons)

    def _auth_failed(self, _err: TelegramAuthError) -> None:
        _LOGGER.error(
            "Telegram rejected the bot token in $%s; no more alerts are sent", ENV_TOKEN
        )
