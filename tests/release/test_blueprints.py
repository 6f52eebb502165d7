"""The shipped blueprints, loaded and run by Home Assistant's automation.

The actions they call (``telegram_bot.*``, ``munich_termin.book``) are
replaced by recording fakes here; the end-to-end suite runs them for real.
"""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Any

from homeassistant.core import HomeAssistant, SupportsResponse
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "blueprints" / "automation" / "munich_termin"
CHAT = 424242
OFFER = "01JCWATCHSUBENTRYID0000000.28e9.6757a1b0"
BOT = {"config_entry_id": "bot-entry", "id": 1, "first_name": "Bot"}


@pytest.fixture(name="blueprints")
def blueprints_fixture(hass: HomeAssistant, tmp_path: Path) -> Path:
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "munich_termin"
    target.parent.mkdir(parents=True)
    shutil.copytree(SOURCE, target)
    return target


def _fakes(hass: HomeAssistant, *, book_fails: bool = False) -> dict[str, list[Any]]:
    return {
        "send": async_mock_service(hass, "telegram_bot", "send_message"),
        "answer": async_mock_service(hass, "telegram_bot", "answer_callback_query"),
        "edit": async_mock_service(hass, "telegram_bot", "edit_message"),
        "book": async_mock_service(
            hass,
            "munich_termin",
            "book",
            # The shape munich_termin.book answers with.
            response={
                "booking": {
                    "state": "booked",
                    "office": "Bürgerbüro Pasing",
                    "start": "2026-12-09T08:30:00+00:00",
                    "activation_deadline": "2026-12-02T10:30:00+00:00",
                }
            },
            supports_response=SupportsResponse.OPTIONAL,
            raise_exception=HomeAssistantError("gone") if book_fails else None,
        ),
    }


async def _book_button_automation(
    hass: HomeAssistant, *, send_offers: bool = True
) -> None:
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "book_button",
                "alias": "Book from Telegram",
                "use_blueprint": {
                    "path": "munich_termin/telegram_book_button.yaml",
                    "input": {
                        "watch_events": ["event.anna_events"],
                        "telegram_chat": "notify.anna_chat",
                        "chat_id": str(CHAT),
                        "send_offers": send_offers,
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get("automation.book_from_telegram")
    assert state is not None
    assert state.state == "on"


def _press(hass: HomeAssistant, *, chat_id: int, args: list[str]) -> None:
    hass.bus.async_fire(
        "telegram_callback",
        {
            "id": "cbq-1",
            "chat_id": chat_id,
            "user_id": 7,
            "data": f"/mt_book {' '.join(args)}",
            "command": "/mt_book",
            "args": args,
            "message": {"message_id": 55},
            "bot": BOT,
        },
    )


@pytest.mark.usefixtures("blueprints")
async def test_found_slot_sends_a_book_it_button(hass: HomeAssistant) -> None:
    fakes = _fakes(hass)
    await _book_button_automation(hass)
    hass.states.async_set(
        "event.anna_events",
        "2026-12-02T07:03:05.000+00:00",
        {
            "event_type": "slot_found",
            "offer": OFFER,
            "office": "Bürgerbüro Pasing",
            "office_id": 54261,
            "start": "2026-12-09T08:30:00+00:00",
        },
    )
    await hass.async_block_till_done()
    assert len(fakes["send"]) == 1
    data = fakes["send"][0].data
    assert data["entity_id"] == "notify.anna_chat"
    assert data["inline_keyboard"] == [f"Book it:/mt_book {OFFER}"]
    assert "Bürgerbüro Pasing" in data["message"]
    # Other event types send nothing.
    hass.states.async_set(
        "event.anna_events",
        "2026-12-02T07:04:05.000+00:00",
        {"event_type": "slot_gone", "office_id": 54261},
    )
    await hass.async_block_till_done()
    assert len(fakes["send"]) == 1


@pytest.mark.usefixtures("blueprints")
async def test_press_books_and_edits_the_message(hass: HomeAssistant) -> None:
    fakes = _fakes(hass)
    await _book_button_automation(hass)
    _press(hass, chat_id=CHAT, args=[OFFER])
    await hass.async_block_till_done()
    assert [c.data["callback_query_id"] for c in fakes["answer"]] == ["cbq-1"]
    assert [c.data["offer"] for c in fakes["book"]] == [OFFER]
    assert len(fakes["edit"]) == 1
    edit = fakes["edit"][0].data
    assert edit["message_id"] == 55
    assert str(edit["chat_id"]) == str(CHAT)
    assert edit["message"].startswith("Booked: Bürgerbüro Pasing")


@pytest.mark.usefixtures("blueprints")
async def test_press_from_another_chat_is_ignored(hass: HomeAssistant) -> None:
    fakes = _fakes(hass)
    await _book_button_automation(hass)
    _press(hass, chat_id=CHAT + 1, args=[OFFER])
    _press(hass, chat_id=CHAT, args=[])
    await hass.async_block_till_done()
    assert fakes["book"] == []
    assert fakes["answer"] == []
    assert fakes["edit"] == []


@pytest.mark.usefixtures("blueprints")
async def test_failed_booking_says_so(hass: HomeAssistant) -> None:
    fakes = _fakes(hass, book_fails=True)
    await _book_button_automation(hass)
    _press(hass, chat_id=CHAT, args=[OFFER])
    await hass.async_block_till_done()
    assert len(fakes["edit"]) == 1
    assert fakes["edit"][0].data["message"].startswith("Could not book")


@pytest.mark.usefixtures("blueprints")
async def test_status_command_answers_allowed_chats_only(hass: HomeAssistant) -> None:
    send = async_mock_service(hass, "telegram_bot", "send_message")
    hass.states.async_set(
        "sensor.anna_earliest_slot",
        "2026-12-09T08:30:00+00:00",
        {"device_class": "timestamp"},
    )
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "status",
                "use_blueprint": {
                    "path": "munich_termin/telegram_status_command.yaml",
                    "input": {
                        "earliest_sensors": ["sensor.anna_earliest_slot"],
                        "chat_ids": [str(CHAT)],
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    for chat in (CHAT + 1, CHAT):
        hass.bus.async_fire(
            "telegram_command",
            {"command": "/termin", "args": [], "chat_id": chat, "bot": BOT},
        )
    await hass.async_block_till_done()
    assert len(send) == 1
    data = send[0].data
    assert str(data["chat_id"]) == str(CHAT)
    assert data["config_entry_id"] == "bot-entry"
    assert "earliest" in data["message"]


@pytest.mark.usefixtures("blueprints")
async def test_without_offers_only_presses_are_answered(hass: HomeAssistant) -> None:
    fakes = _fakes(hass)
    await _book_button_automation(hass, send_offers=False)
    hass.states.async_set(
        "event.anna_events",
        "2026-12-02T07:03:05.000+00:00",
        {
            "event_type": "slot_found",
            "offer": OFFER,
            "start": "2026-12-09T08:30:00+00:00",
        },
    )
    _press(hass, chat_id=CHAT, args=[OFFER])
    await hass.async_block_till_done()
    assert fakes["send"] == []
    assert [c.data["offer"] for c in fakes["book"]] == [OFFER]
