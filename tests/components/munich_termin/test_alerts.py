"""The alert forwarder: notify entities and the Telegram Bot API (the stand-in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import logging
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin import alerts as alerts_module
from custom_components.munich_termin.alerts import (
    BOOK_COMMAND,
    ISSUE_NOTIFY_MISSING,
    ISSUE_TELEGRAM_REJECTED,
    AlertForwarder,
    notify_unique_id,
)
from custom_components.munich_termin.const import (
    CONF_ALERT_BOOKING,
    CONF_ALERT_GONE,
    CONF_ALERT_NEW,
    CONF_NOTIFY_ENTITIES,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    DOMAIN,
)
from custom_components.munich_termin.offers import parse_offer
from mta_client.models import Catalogue, ContactDetails, ServiceRequest
from mta_client.telegram_standin import Fault, TelegramStandinServer
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind, Watch

from .conftest import telegram_options, telegram_standin

TOKEN = "777:forwarder-secret-token"
CHAT = 4711
WATCH_ID = "01JWATCH000000000000000000"
START = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)  # 08:30 in Munich
CATALOGUE = Catalogue.model_validate(
    {
        "offices": [{"id": 10489, "name": "Bürgerbüro Ruppertstraße"}],
        "services": [{"id": 1063475, "name": "Anmeldung einer Wohnung"}],
        "relations": [],
    }
)
FAMILY_NAME = "Geheimhuber"
EMAIL = "geheim@example.org"


def watch(*, contact: bool = True) -> Watch:
    return Watch(
        id=WATCH_ID,
        services=[ServiceRequest(service_id=1063475)],
        office_ids=[10489],
        contact=ContactDetails(family_name=FAMILY_NAME, email=EMAIL)
        if contact
        else None,
    )


def slot(kind: SlotEventKind = SlotEventKind.NEW, start: datetime = START) -> SlotEvent:
    return SlotEvent(
        kind=kind,
        watch_id=WATCH_ID,
        office_id=10489,
        start=start,
        services=((1063475, 1),),
        seen_at=0.0,
    )


def booked() -> BookingEvent:
    return BookingEvent(
        state=BookingState.BOOKED,
        watch_id=WATCH_ID,
        office_id=10489,
        start=START,
        process_id=99887,
        auth_key="secret-auth-key-123",
        activation_deadline=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    )


@pytest.fixture(name="notify_calls")
def notify_calls_fixture(hass: HomeAssistant) -> list[ServiceCall]:
    """A fake notify.send_message action, and two notify entities."""
    calls: list[ServiceCall] = []

    async def send_message(call: ServiceCall) -> None:
        calls.append(call)

    hass.services.async_register("notify", "send_message", send_message)
    hass.states.async_set("notify.chat", "unknown", {"supported_features": 1})
    hass.states.async_set("notify.plain", "unknown", {"supported_features": 0})
    return calls


@pytest.fixture(name="standin")
async def standin_fixture() -> AsyncIterator[TelegramStandinServer]:
    async with telegram_standin(TOKEN, CHAT) as server:
        yield server


def make_entry(hass: HomeAssistant, **options: Any) -> MockConfigEntry:
    entry = MockConfigEntry(domain=DOMAIN, title="Munich Termin", options=options)
    entry.add_to_hass(hass)
    return entry


async def started(hass: HomeAssistant, entry: MockConfigEntry) -> AlertForwarder:
    forwarder = AlertForwarder(hass, entry)
    await forwarder.async_start()
    await forwarder.async_start()  # once only
    return forwarder


async def stop(
    hass: HomeAssistant, entry: MockConfigEntry, forwarder: AlertForwarder
) -> None:
    await forwarder.async_stop()
    await entry._async_process_on_unload(hass)


async def settle(hass: HomeAssistant, forwarder: AlertForwarder) -> None:
    await hass.async_block_till_done()
    if forwarder.queue is not None:
        await asyncio.wait_for(forwarder.queue.join(), 10)
    await hass.async_block_till_done()


async def until(condition: Any) -> None:
    """Wait (in real time, 10 s at most) until a background task made it true."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the condition never came true")


# --- notify entities ----------------------------------------------------------------


async def test_notify_entities_get_each_kind_once(
    hass: HomeAssistant, notify_calls: list[ServiceCall]
) -> None:
    entry = make_entry(hass, **{CONF_NOTIFY_ENTITIES: ["notify.chat", "notify.plain"]})
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=watch(), catalogue=CATALOGUE)
    forwarder.handle_event(slot(), watch=watch(), catalogue=CATALOGUE)  # repeated
    await settle(hass, forwarder)  # the next look:
    forwarder.handle_event(slot(SlotEventKind.GONE), watch=watch(), catalogue=CATALOGUE)
    forwarder.handle_event(booked(), watch=watch(), catalogue=CATALOGUE)
    await settle(hass, forwarder)
    # New slot and booking (gone is off by default), each to both entities:
    # the one with titles gets title and message, the other one text.
    assert [(c.data["entity_id"], set(c.data)) for c in notify_calls] == [
        (["notify.chat"], {"entity_id", "message", "title"}),
        (["notify.plain"], {"entity_id", "message"}),
        (["notify.chat"], {"entity_id", "message", "title"}),
        (["notify.plain"], {"entity_id", "message"}),
    ]
    first = notify_calls[0].data
    assert first["title"] == "New appointment slot: Tue 24 Nov 2026, 08:30"
    assert "Office: Bürgerbüro Ruppertstraße" in first["message"]
    assert "#/services/1063475/locations/10489" in first["message"]
    assert notify_calls[1].data["message"] == f"{first['title']}\n{first['message']}"
    booking = notify_calls[2].data
    assert booking["title"].startswith("Appointment booked")
    assert "99887" in booking["message"]
    for call in notify_calls:
        text = str(call.data)
        assert FAMILY_NAME not in text
        assert EMAIL not in text
        assert "secret-auth-key" not in text
    await stop(hass, entry, forwarder)


async def test_telegram_bot_chat_gets_the_book_button(
    hass: HomeAssistant,
    notify_calls: list[ServiceCall],
    entity_registry: er.EntityRegistry,
) -> None:
    """A chosen telegram_bot chat is sent to with telegram_bot.send_message."""
    telegram_calls: list[ServiceCall] = []

    async def send_message(call: ServiceCall) -> None:
        telegram_calls.append(call)

    hass.services.async_register("telegram_bot", "send_message", send_message)
    chat = entity_registry.async_get_or_create(
        "notify", "telegram_bot", "bot_424242", suggested_object_id="anna_chat"
    )
    hass.states.async_set(chat.entity_id, "unknown", {"supported_features": 1})
    entry = make_entry(hass, **{CONF_NOTIFY_ENTITIES: [chat.entity_id, "notify.plain"]})
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=watch(), catalogue=CATALOGUE)
    await settle(hass, forwarder)
    [call] = telegram_calls
    assert call.data["entity_id"] == [chat.entity_id]
    book, page = call.data["inline_keyboard"]
    command, _, offer = book.removeprefix("Book it:").partition(" ")
    assert command == BOOK_COMMAND
    assert parse_offer(offer) == (WATCH_ID, 10489, START)
    assert len(book.removeprefix("Book it:").encode()) <= 64
    assert page.startswith("Open booking page:https://stadt.muenchen.de/")
    assert call.data["title"].startswith("New appointment slot")
    # The other entity still gets the plain notification, without buttons.
    assert [c.data["entity_id"] for c in notify_calls] == [["notify.plain"]]
    # Without the person's data there is nothing to book: the page link only.
    forwarder.handle_event(
        slot(start=START + timedelta(hours=1)),
        watch=watch(contact=False),
        catalogue=None,
    )
    await settle(hass, forwarder)
    labels = [b.partition(":")[0] for b in telegram_calls[1].data["inline_keyboard"]]
    assert labels == ["Open booking page"]
    await stop(hass, entry, forwarder)


async def test_kinds_are_switchable(
    hass: HomeAssistant, notify_calls: list[ServiceCall]
) -> None:
    entry = make_entry(
        hass,
        **{
            CONF_NOTIFY_ENTITIES: ["notify.chat"],
            CONF_ALERT_NEW: False,
            CONF_ALERT_GONE: True,
            CONF_ALERT_BOOKING: False,
        },
    )
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=watch(), catalogue=None)
    forwarder.handle_event(slot(SlotEventKind.GONE), watch=watch(), catalogue=None)
    forwarder.handle_event(booked(), watch=watch(), catalogue=None)
    await settle(hass, forwarder)
    assert [c.data["title"] for c in notify_calls] == [
        "Slot taken: Tue 24 Nov 2026, 08:30"
    ]
    await stop(hass, entry, forwarder)


async def test_a_slot_back_after_gone_is_new_again(
    hass: HomeAssistant, notify_calls: list[ServiceCall]
) -> None:
    entry = make_entry(hass, **{CONF_NOTIFY_ENTITIES: ["notify.chat"]})
    forwarder = await started(hass, entry)
    for kind in (SlotEventKind.NEW, SlotEventKind.GONE, SlotEventKind.NEW):
        forwarder.handle_event(slot(kind), watch=None, catalogue=None)
        await settle(hass, forwarder)  # one look each
    assert len(notify_calls) == 2
    # Within one look, a slot that comes and goes is not announced.
    later = START.replace(hour=10)
    forwarder.handle_event(slot(start=later), watch=None, catalogue=None)
    forwarder.handle_event(slot(SlotEventKind.GONE, later), watch=None, catalogue=None)
    await settle(hass, forwarder)
    assert len(notify_calls) == 2
    await stop(hass, entry, forwarder)


async def test_german_texts(
    hass: HomeAssistant, notify_calls: list[ServiceCall]
) -> None:
    hass.config.language = "de"
    entry = make_entry(hass, **{CONF_NOTIFY_ENTITIES: ["notify.chat"]})
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=None, catalogue=CATALOGUE)
    await settle(hass, forwarder)
    assert (
        notify_calls[0].data["title"]
        == "Neuer freier Termin: Di., 24.11.2026, 08:30 Uhr"
    )
    await stop(hass, entry, forwarder)


async def test_own_entity_is_never_a_target_and_missing_ones_are_reported(
    hass: HomeAssistant,
    notify_calls: list[ServiceCall],
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = make_entry(
        hass,
        **{
            CONF_NOTIFY_ENTITIES: [
                "notify.munich_termin_alerts",
                "notify.gone_away",
                "notify.chat",
            ]
        },
    )
    entity_registry.async_get_or_create(
        "notify",
        DOMAIN,
        notify_unique_id(entry.entry_id),
        suggested_object_id="munich_termin_alerts",
        config_entry=entry,
    )
    hass.states.async_set(
        "notify.munich_termin_alerts", "unknown", {"supported_features": 1}
    )
    forwarder = await started(hass, entry)
    await forwarder.async_send("hello", "Title")
    assert [c.data["entity_id"] for c in notify_calls] == [["notify.chat"]]
    issue_id = f"{ISSUE_NOTIFY_MISSING}_{entry.entry_id}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_NOTIFY_MISSING
    assert issue.translation_placeholders == {"entities": "notify.gone_away"}
    hass.states.async_set("notify.gone_away", "unknown", {})
    await forwarder.async_send("hello again")
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert notify_calls[-1].data == {
        "entity_id": ["notify.gone_away"],
        "message": "hello again",
    }
    await stop(hass, entry, forwarder)


async def test_failing_notify_is_retried_then_dropped(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[ServiceCall] = []

    async def broken(call: ServiceCall) -> None:
        tries.append(call)
        raise HomeAssistantError("chat is away")

    hass.services.async_register("notify", "send_message", broken)
    hass.states.async_set("notify.chat", "unknown", {"supported_features": 1})
    entry = make_entry(hass, **{CONF_NOTIFY_ENTITIES: ["notify.chat"]})
    with patch.object(alerts_module, "_NOTIFY_RETRIES", (0.0, 0.0)):
        forwarder = await started(hass, entry)
        forwarder.handle_event(slot(), watch=None, catalogue=None)
        for _ in range(10):
            await asyncio.sleep(0)
            await hass.async_block_till_done()
    assert len(tries) == 3
    assert "An alert could not be sent: chat is away" in caplog.text
    with pytest.raises(HomeAssistantError) as info:
        await forwarder.async_send("direct")
    assert info.value.translation_key == "notify_failed"
    assert info.value.translation_placeholders == {"error": "chat is away"}
    await stop(hass, entry, forwarder)


async def test_nothing_configured(hass: HomeAssistant) -> None:
    entry = make_entry(hass)
    forwarder = await started(hass, entry)
    assert not forwarder.configured
    forwarder.handle_event(slot(), watch=None, catalogue=None)
    with pytest.raises(HomeAssistantError) as info:
        await forwarder.async_send("hi")
    assert info.value.translation_key == "alerts_not_configured"
    await stop(hass, entry, forwarder)


# --- Telegram, directly ---------------------------------------------------------------


async def test_telegram_new_slot_with_book_button_taken_off_when_gone(
    hass: HomeAssistant, standin: TelegramStandinServer
) -> None:
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    forwarder = await started(hass, entry)
    assert TOKEN not in repr(forwarder)
    forwarder.handle_event(slot(), watch=watch(), catalogue=CATALOGUE)
    await settle(hass, forwarder)
    [message] = standin.standin.sent(CHAT)
    assert message.text.startswith("New appointment slot: Tue 24 Nov 2026, 08:30\n")
    [[book, page]] = message.buttons
    assert book["text"] == "Book it"
    command, offer = book["callback_data"].split(" ")
    assert command == BOOK_COMMAND
    assert parse_offer(offer) == (WATCH_ID, 10489, START)
    assert len(book["callback_data"].encode()) <= 64
    assert page == {
        "text": "Open booking page",
        "url": "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"
        "#/services/1063475/locations/10489",
    }
    # Gone (not announced by default): the button goes, the text says so.
    forwarder.handle_event(slot(SlotEventKind.GONE), watch=watch(), catalogue=CATALOGUE)
    await settle(hass, forwarder)
    await until(lambda: message.edits)
    assert len(standin.standin.sent(CHAT)) == 1
    assert message.buttons == []
    assert message.text.endswith("\n\nSlot taken: Tue 24 Nov 2026, 08:30")
    await stop(hass, entry, forwarder)


async def test_telegram_no_book_button_without_contact(
    hass: HomeAssistant, standin: TelegramStandinServer
) -> None:
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=watch(contact=False), catalogue=None)
    forwarder.handle_event(booked(), watch=watch(), catalogue=None)
    await settle(hass, forwarder)
    first, second = standin.standin.sent(CHAT)
    assert [b["text"] for b in first.buttons[0]] == ["Open booking page"]
    assert second.text.startswith("Appointment booked")
    assert "secret-auth-key" not in second.text
    await stop(hass, entry, forwarder)


async def test_telegram_and_notify_both(
    hass: HomeAssistant,
    standin: TelegramStandinServer,
    notify_calls: list[ServiceCall],
) -> None:
    entry = make_entry(
        hass,
        **telegram_options(standin, TOKEN, CHAT),
        **{CONF_NOTIFY_ENTITIES: ["notify.chat"]},
    )
    forwarder = await started(hass, entry)
    await forwarder.async_send("Test message", "Munich Termin")
    await settle(hass, forwarder)
    assert [m.text for m in standin.standin.sent(CHAT)] == [
        "Munich Termin\nTest message"
    ]
    assert notify_calls[0].data["title"] == "Munich Termin"
    await stop(hass, entry, forwarder)


async def test_telegram_429_is_waited_out(
    hass: HomeAssistant, standin: TelegramStandinServer
) -> None:
    standin.standin.faults.append(
        Fault(method="sendMessage", status=429, retry_after=1)
    )
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    forwarder = await started(hass, entry)
    forwarder.handle_event(slot(), watch=None, catalogue=None)
    await settle(hass, forwarder)
    assert len(standin.standin.sent(CHAT)) == 1
    assert forwarder.queue is not None
    assert (forwarder.queue.sent, forwarder.queue.dropped) == (1, 0)
    await stop(hass, entry, forwarder)


async def test_telegram_rejected_token_starts_reauth_once(
    hass: HomeAssistant,
    standin: TelegramStandinServer,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    standin.standin.faults.append(Fault(method="*", status=401, count=-1))
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    with patch.object(MockConfigEntry, "async_start_reauth") as reauth:
        forwarder = await started(hass, entry)
        forwarder.handle_event(slot(), watch=None, catalogue=None)
        forwarder.handle_event(booked(), watch=None, catalogue=None)
        await settle(hass, forwarder)
        assert forwarder.queue is not None
        assert forwarder.queue.failed_auth
        assert forwarder.queue.pending == 2
        with pytest.raises(HomeAssistantError) as info:
            await forwarder.async_send("more")
        assert info.value.translation_key == "telegram_token_rejected"
        forwarder._token_rejected(forwarder.queue.last_error)  # type: ignore[arg-type]
    reauth.assert_called_once_with(hass)
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_TELEGRAM_REJECTED)
    assert issue is not None
    assert issue.translation_key == "telegram_token_rejected"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert TOKEN not in caplog.text
    assert "forwarder-secret" not in caplog.text
    await stop(hass, entry, forwarder)


async def test_telegram_channel_chat_id(hass: HomeAssistant) -> None:
    entry = make_entry(
        hass, **{CONF_TELEGRAM_TOKEN: TOKEN, CONF_TELEGRAM_CHAT_ID: "@termine"}
    )
    forwarder = AlertForwarder(hass, entry)
    assert forwarder.chat_id == "@termine"
    assert forwarder.queue is not None
    assert forwarder.queue.sender.api_url == "https://api.telegram.org"
    without_chat = AlertForwarder(
        hass, make_entry(hass, **{CONF_TELEGRAM_TOKEN: TOKEN})
    )
    assert without_chat.queue is None


async def test_one_look_many_slots_one_message(
    hass: HomeAssistant,
    standin: TelegramStandinServer,
    notify_calls: list[ServiceCall],
) -> None:
    entry = make_entry(
        hass,
        **telegram_options(standin, TOKEN, CHAT),
        **{CONF_NOTIFY_ENTITIES: ["notify.chat"]},
    )
    forwarder = await started(hass, entry)
    starts = [START.replace(hour=h) for h in (11, 8, 9)]
    for start in starts:
        forwarder.handle_event(slot(start=start), watch=watch(), catalogue=CATALOGUE)
    await settle(hass, forwarder)
    [message] = standin.standin.sent(CHAT)
    assert message.text.startswith(
        "3 new appointment slots, the earliest Tue 24 Nov 2026, 09:30\n"
    )
    [[book, _page]] = message.buttons
    assert parse_offer(book["callback_data"].split(" ")[1])[2] == START.replace(hour=8)
    assert [c.data["title"] for c in notify_calls] == [
        "3 new appointment slots, the earliest Tue 24 Nov 2026, 09:30"
    ]
    # A later slot gone leaves the button; the earliest gone takes it off.
    forwarder.handle_event(
        slot(SlotEventKind.GONE, START.replace(hour=11)), watch=watch(), catalogue=None
    )
    await settle(hass, forwarder)
    assert message.buttons
    forwarder.handle_event(
        slot(SlotEventKind.GONE, START.replace(hour=8)), watch=watch(), catalogue=None
    )
    await settle(hass, forwarder)
    await until(lambda: message.edits)
    assert message.buttons == []
    await stop(hass, entry, forwarder)


async def test_token_checked_at_start(
    hass: HomeAssistant,
    standin: TelegramStandinServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_TELEGRAM_REJECTED,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_TELEGRAM_REJECTED,
    )
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    forwarder = await started(hass, entry)
    await until(
        lambda: issue_registry.async_get_issue(DOMAIN, ISSUE_TELEGRAM_REJECTED) is None
    )
    assert [c["method"] for c in standin.standin.calls] == ["getMe"]
    await stop(hass, entry, forwarder)

    standin.standin.faults.append(Fault(method="getMe", status=401))
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    with patch.object(MockConfigEntry, "async_start_reauth") as reauth:
        forwarder = await started(hass, entry)
        await until(lambda: reauth.called)
    assert forwarder.queue is not None
    assert forwarder.queue.failed_auth
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_TELEGRAM_REJECTED) is not None
    await stop(hass, entry, forwarder)


async def test_telegram_group_moved(
    hass: HomeAssistant, standin: TelegramStandinServer
) -> None:
    standin.standin.chat_ids.add("-100555")
    standin.standin.faults.append(
        Fault(method="sendMessage", status=400, migrate_to_chat_id=-100555)
    )
    entry = make_entry(hass, **telegram_options(standin, TOKEN, CHAT))
    forwarder = await started(hass, entry)
    await forwarder.async_send("to the group")
    await settle(hass, forwarder)
    assert [m.text for m in standin.standin.sent(-100555)] == ["to the group"]
    assert forwarder.chat_id == -100555
    await stop(hass, entry, forwarder)
