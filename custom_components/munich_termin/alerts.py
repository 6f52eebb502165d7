"""The alert forwarder: watch events to notify entities and to Telegram.

Alerts go where the entry's options say, both ways when both are set:

* through the notify entities the user picked (``notify.send_message``; for
  example a chat of Home Assistant's ``telegram_bot``), with the title folded
  into the message for a notifier without titles;
* directly through the Telegram Bot API with the bot token, chat id and API
  endpoint of the options, through the library's
  :class:`~mta_client.telegram.AlertQueue` (paced, retried while Telegram is
  away). A new slot carries a "Book it" button (``/mt_book <offer>``, which
  the book-button blueprint answers when the same bot is set up in
  ``telegram_bot``) and a link to the city's booking page; when the slot is
  gone, the button is taken off that message.

Each kind of event (new slot, slot gone, booking) can be switched off, and
each event is announced once. A rejected bot token stops the Telegram
sending, starts the reauth flow once and raises a repair issue.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.components.notify.const import NotifyEntityFeature
from homeassistant.const import ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from mta_client.alerts import (
    Alert,
    AlertKind,
    alert_kind,
    format_event,
    format_slot_events,
)
from mta_client.telegram import (
    DEFAULT_API_URL,
    AlertQueue,
    TelegramAuthError,
    TelegramError,
    TelegramSender,
)
from mta_client.watch import SlotEvent, SlotEventKind

from .const import (
    CONF_ALERT_BOOKING,
    CONF_ALERT_GONE,
    CONF_ALERT_NEW,
    CONF_NOTIFY_ENTITIES,
    CONF_TELEGRAM_API_URL,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    DOMAIN,
    LOGGER,
)
from .offers import offer_token

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from mta_client.models import Catalogue
    from mta_client.watch import Watch, WatchEvent

__all__ = [
    "BOOK_COMMAND",
    "ISSUE_NOTIFY_MISSING",
    "ISSUE_TELEGRAM_REJECTED",
    "AlertForwarder",
    "notify_unique_id",
]

TELEGRAM_BOT = "telegram_bot"  # a string: importing its const would need a dependency
BOOK_COMMAND = "/mt_book"
"""The command of a "Book it" button: ``/mt_book <offer>`` (telegram_callback)."""
ISSUE_TELEGRAM_REJECTED = "telegram_token_rejected"
ISSUE_NOTIFY_MISSING = "notify_entity_missing"

# Defaults as the options flow shows them.
_DEFAULT_KINDS = {
    AlertKind.NEW: (CONF_ALERT_NEW, True),
    AlertKind.GONE: (CONF_ALERT_GONE, False),
    AlertKind.BOOKING: (CONF_ALERT_BOOKING, True),
}
# A notify call that fails is tried again after these pauses, then dropped.
_NOTIFY_RETRIES = (10.0, 60.0)
# How many announced events (and sent messages) are remembered.
_MEMORY = 1000


def notify_unique_id(entry_id: str) -> str:
    """The unique id of the entry's own notify entity."""
    return f"{entry_id}_alerts"


@dataclass(frozen=True, kw_only=True)
class _Notification:
    title: str | None
    message: str
    # Inline buttons as telegram_bot's ``inline_keyboard`` takes them
    # ("Label:/command args"), for the chosen entities of telegram_bot.
    keyboard: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class _Batch:
    """Slot events of one watch and kind, waiting for the end of the look."""

    watch: Watch | None
    catalogue: Catalogue | None
    events: list[WatchEvent] = field(default_factory=list)


class AlertForwarder:
    """Forwards watch events (and the notify entity's messages) to their targets."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Read the entry's options; nothing is sent before :meth:`async_start`."""
        self.hass = hass
        self.entry = entry
        options = entry.options
        self.notify_entities: list[str] = list(options.get(CONF_NOTIFY_ENTITIES) or [])
        self.kinds = {
            kind: bool(options.get(key, default))
            for kind, (key, default) in _DEFAULT_KINDS.items()
        }
        token = (options.get(CONF_TELEGRAM_TOKEN) or "").strip()
        chat_id = str(options.get(CONF_TELEGRAM_CHAT_ID) or "").strip()
        self.chat_id: int | str | None = _chat_id(chat_id) if token else None
        self.queue: AlertQueue | None = None
        if token and self.chat_id is not None:
            sender = TelegramSender(
                token=token,
                session=async_get_clientsession(hass),
                api_url=(options.get(CONF_TELEGRAM_API_URL) or DEFAULT_API_URL),
            )
            self.queue = AlertQueue(
                sender,
                on_auth_failed=self._token_rejected,
                on_chat_migrated=self._chat_migrated,
            )
        self._notifications: asyncio.Queue[_Notification] = asyncio.Queue(maxsize=500)
        self._announced: OrderedDict[str, str] = OrderedDict()
        self._messages: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._batches: dict[tuple[str, AlertKind], _Batch] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._reauth_started = False
        self._started = False

    def __repr__(self) -> str:
        """Show the targets, never the token."""
        return (
            f"{type(self).__name__}(notify_entities={self.notify_entities!r}, "
            f"telegram={self.queue is not None})"
        )

    @property
    def configured(self) -> bool:
        """Whether alerts have anywhere to go."""
        return bool(self.notify_entities) or self.queue is not None

    # --- lifecycle ------------------------------------------------------------

    async def async_start(self) -> None:
        """Start the workers (tasks of the entry, cancelled when it unloads)."""
        if self._started:
            return
        self._started = True
        if self.notify_entities:
            self.entry.async_create_background_task(
                self.hass, self._notify_worker(), f"{DOMAIN} notify alerts"
            )
        if self.queue is not None:
            self.entry.async_create_background_task(
                self.hass, self._check_token(self.queue), f"{DOMAIN} telegram check"
            )
            self.entry.async_create_background_task(
                self.hass, self.queue.run(), f"{DOMAIN} telegram alerts"
            )

    async def async_stop(self) -> None:
        """Stop sending (the entry cancels the workers; pending alerts are dropped)."""
        self._started = False
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.queue is not None and self.queue.pending:
            LOGGER.debug("%s Telegram alerts not sent at unload", self.queue.pending)

    # --- sending --------------------------------------------------------------

    async def async_send(self, message: str, title: str | None = None) -> None:
        """Send one message to every target now (the notify entity's action).

        Notify entities are called at once (their errors are raised); the
        Telegram message is queued.
        """
        if not self.configured:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="alerts_not_configured"
            )
        if self.queue is not None:
            if self.queue.failed_auth:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="telegram_token_rejected",
                )
            assert self.chat_id is not None  # noqa: S101 - set with the queue
            self.queue.put(self.chat_id, f"{title}\n{message}" if title else message)
        if self.notify_entities:
            try:
                await self._notify(_Notification(title=title, message=message))
            except HomeAssistantError as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="notify_failed",
                    translation_placeholders={"error": str(err) or type(err).__name__},
                ) from err

    @callback
    def handle_event(
        self,
        event: WatchEvent,
        *,
        watch: Watch | None,
        catalogue: Catalogue | None,
    ) -> None:
        """Announce a watch event, once, if its kind is switched on.

        The slot events of one look (delivered one after the other, in one
        go) become one message per watch and kind; a booking event flushes
        them and goes out on its own.
        """
        kind = alert_kind(event)
        subject, state = _event_key(event)
        if isinstance(event, SlotEvent):
            # A slot that came and went before the end of the look is news
            # no more.
            self._unbatch(event)
            if kind is AlertKind.GONE:
                self._take_button_off(subject, event, catalogue)
        repeated = self._announced.get(subject) == state
        self._remember(self._announced, subject, state)
        if repeated or not self.kinds[kind]:
            return
        if isinstance(event, SlotEvent):
            batch = self._batches.setdefault(
                (event.watch_id, kind), _Batch(watch=watch, catalogue=catalogue)
            )
            batch.events.append(event)
            if self._flush_handle is None:
                self._flush_handle = self.hass.loop.call_soon(self._flush)
            return
        self._flush()
        self._announce([event], watch, catalogue)

    def _unbatch(self, event: SlotEvent) -> None:
        other = AlertKind.GONE if event.kind is SlotEventKind.NEW else AlertKind.NEW
        batch = self._batches.get((event.watch_id, other))
        if batch is None:
            return
        batch.events = [
            e
            for e in batch.events
            if not (isinstance(e, SlotEvent) and e.key == event.key)
        ]
        if not batch.events:
            del self._batches[(event.watch_id, other)]

    @callback
    def _flush(self) -> None:
        """Announce the slot events gathered since the last flush."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batches, self._batches = self._batches, {}
        for batch in batches.values():
            self._announce(batch.events, batch.watch, batch.catalogue)

    def _announce(
        self,
        events: list[WatchEvent],
        watch: Watch | None,
        catalogue: Catalogue | None,
    ) -> None:
        language = self.hass.config.language
        slots = [e for e in events if isinstance(e, SlotEvent)]
        earliest = min(slots, key=lambda e: (e.start, e.office_id)) if slots else None

        # Watches are subentries: show their titles, not their ids.
        titles = {key: sub.title for key, sub in self.entry.subentries.items()}

        def alert(book_token: str | None = None) -> Alert:
            if slots:
                return format_slot_events(
                    slots,
                    catalogue=catalogue,
                    language=language,
                    book_token=book_token,
                    watch_names=titles,
                )
            return format_event(
                events[0],
                catalogue=catalogue,
                watch=watch,
                language=language,
                watch_names=titles,
            )

        token = _book_token(earliest, watch) if earliest is not None else None
        if self.notify_entities:
            self._queue_notification(alert(token))
        if self.queue is None or self.chat_id is None:
            return
        message = alert(token)
        text = message.text
        on_sent = None
        if token is not None and earliest is not None:
            # The "Book it" button books the earliest slot: when it is gone,
            # the button goes.
            subject = _event_key(earliest)[0]

            def on_sent(message_id: int) -> None:
                self._remember(self._messages, subject, (message_id, text))

        self.queue.put(self.chat_id, text, buttons=message.buttons, on_sent=on_sent)

    # --- notify entities ------------------------------------------------------

    def _queue_notification(self, alert: Alert) -> None:
        keyboard = [
            f"{button.text}:{button.callback_data or button.url}"
            for row in alert.buttons
            for button in row
            if button.callback_data or button.url
        ]
        try:
            self._notifications.put_nowait(
                _Notification(
                    title=alert.title, message=alert.message, keyboard=keyboard
                )
            )
        except asyncio.QueueFull:
            LOGGER.warning("Too many alerts waiting for the notify entities; dropped")

    async def _notify_worker(self) -> None:
        while True:
            notification = await self._notifications.get()
            for pause in (*_NOTIFY_RETRIES, None):
                try:
                    await self._notify(notification)
                    break
                except HomeAssistantError as err:
                    if pause is None:
                        LOGGER.warning("An alert could not be sent: %s", err)
                        break
                    LOGGER.debug("Alert not sent (%s); next try in %.0f s", err, pause)
                    await asyncio.sleep(pause)

    async def _notify(self, notification: _Notification) -> None:
        """Call ``notify.send_message`` on the chosen entities that exist.

        A chat of Home Assistant's ``telegram_bot`` gets the message through
        ``telegram_bot.send_message`` instead, so that it carries the "Book
        it" button (``notify.send_message`` has no buttons); the book-button
        blueprint answers the press.
        """
        with_title: list[str] = []
        without_title: list[str] = []
        telegram: list[str] = []
        missing: list[str] = []
        registry = er.async_get(self.hass)
        own = registry.async_get_entity_id(
            "notify", DOMAIN, notify_unique_id(self.entry.entry_id)
        )
        for entity_id in self.notify_entities:
            if entity_id == own:
                continue  # never forward to ourselves: that would loop
            state = self.hass.states.get(entity_id)
            if state is None:
                missing.append(entity_id)
                continue
            entry = registry.async_get(entity_id)
            if (
                notification.keyboard
                and entry is not None
                and entry.platform == TELEGRAM_BOT
                and self.hass.services.has_service(TELEGRAM_BOT, "send_message")
            ):
                telegram.append(entity_id)
                continue
            features = state.attributes.get(ATTR_SUPPORTED_FEATURES) or 0
            if features & NotifyEntityFeature.TITLE:
                with_title.append(entity_id)
            else:
                without_title.append(entity_id)
        self._missing_issue(missing)
        title, message = notification.title, notification.message
        data: dict[str, Any]
        if telegram:
            data = {"message": message, "inline_keyboard": notification.keyboard}
            if title:
                data["title"] = title
            await self.hass.services.async_call(
                TELEGRAM_BOT,
                "send_message",
                {"entity_id": telegram, **data},
                blocking=True,
            )
        if with_title:
            data = {"message": message}
            if title:
                data["title"] = title
            await self._call_notify(with_title, data)
        if without_title:
            text = f"{title}\n{message}" if title else message
            await self._call_notify(without_title, {"message": text})

    async def _call_notify(self, entity_ids: list[str], data: dict[str, Any]) -> None:
        await self.hass.services.async_call(
            "notify",
            "send_message",
            data,
            target={"entity_id": entity_ids},
            blocking=True,
        )

    def _missing_issue(self, missing: list[str]) -> None:
        issue_id = f"{ISSUE_NOTIFY_MISSING}_{self.entry.entry_id}"
        if not missing:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_NOTIFY_MISSING,
            translation_placeholders={"entities": ", ".join(missing)},
        )

    # --- Telegram -------------------------------------------------------------

    async def _check_token(self, queue: AlertQueue) -> None:
        """Ask Telegram about the token at once, not only at the first alert.

        A token that works again (changed in the options) clears the repair
        issue; a rejected one stops the queue and starts the reauth flow.
        """
        try:
            await queue.sender.get_me()
        except TelegramAuthError as err:
            queue.mark_auth_failed(err)  # calls _token_rejected
        except TelegramError as err:
            LOGGER.debug("Telegram not reachable to check the token: %s", err)
        else:
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_TELEGRAM_REJECTED)

    @callback
    def _chat_migrated(self, old: int | str, new: int) -> None:
        """The group became a supergroup: later alerts go to its new id."""
        if str(self.chat_id) == str(old):
            self.chat_id = new
        LOGGER.warning(
            "The Telegram group %s is now %s; change the chat id in the options",
            old,
            new,
        )

    @callback
    def _token_rejected(self, _err: TelegramAuthError) -> None:
        """Telegram refused the token: ask for a new one, once."""
        if self._reauth_started:
            return
        self._reauth_started = True
        LOGGER.warning("Telegram rejected the alerts' bot token; alerts are held")
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            ISSUE_TELEGRAM_REJECTED,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_TELEGRAM_REJECTED,
        )
        self.entry.async_start_reauth(self.hass)

    def _take_button_off(
        self, slot: str, event: SlotEvent, catalogue: Catalogue | None
    ) -> None:
        """Edit the new-slot message of a gone slot: no "Book it" any more."""
        sent = self._messages.pop(slot, None)
        if sent is None or self.queue is None or self.chat_id is None:
            return
        message_id, text = sent
        gone = format_event(
            event, catalogue=catalogue, language=self.hass.config.language
        )
        self.entry.async_create_background_task(
            self.hass,
            self._edit(self.queue, self.chat_id, message_id, f"{text}\n\n{gone.title}"),
            f"{DOMAIN} telegram edit",
        )

    @staticmethod
    async def _edit(
        queue: AlertQueue, chat_id: int | str, message_id: int, text: str
    ) -> None:
        try:
            await queue.sender.edit_message_text(chat_id, message_id, text)
        except TelegramError as err:
            LOGGER.debug("Could not take the button off an alert: %s", err)

    @staticmethod
    def _remember(memory: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)


def _chat_id(text: str) -> int | str | None:
    if not text:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _event_key(event: WatchEvent) -> tuple[str, str]:
    """(subject, state): a subject is announced again only in another state."""
    if isinstance(event, SlotEvent):
        return f"slot:{event.watch_id}:{event.key}", event.kind.value
    start = int(event.start.timestamp()) if event.start else None
    subject = f"booking:{event.watch_id}:{event.process_id}:{start}"
    return subject, f"{event.state}:{event.reason}"


def _book_token(event: SlotEvent, watch: Watch | None) -> str | None:
    """``/mt_book <offer>`` for a new slot of a watch that can book."""
    if event.kind is not SlotEventKind.NEW:
        return None
    if watch is None or watch.contact is None:
        return None
    token = (
        f"{BOOK_COMMAND} {offer_token(event.watch_id, event.office_id, event.start)}"
    )
    return token if len(token.encode()) <= 64 else None  # noqa: PLR2004
