"""The "Munich Termin alerts" notify entity, in a set-up entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
import re

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import ATTR_SUPPORTED_FEATURES, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.alerts import BOOK_COMMAND
from custom_components.munich_termin.const import CONF_BASE_URL, DOMAIN
from mta_client.simulator import SimulatorServer
from mta_client.telegram_standin import TelegramStandinServer

from .conftest import EMAIL, FAMILY_NAME, telegram_options, telegram_standin

TOKEN = "31337:notify-test-token"
CHAT = 815
ENTITY_ID = "notify.munich_termin_alerts"


@pytest.fixture(name="standin")
async def standin_fixture() -> AsyncIterator[TelegramStandinServer]:
    async with telegram_standin(TOKEN, CHAT) as server:
        yield server


@pytest.fixture(name="options")
def options_fixture(standin: TelegramStandinServer) -> dict[str, object]:
    return telegram_options(standin, TOKEN, CHAT)


@pytest.fixture(name="config_entry")
def config_entry_fixture(
    server: SimulatorServer,
    subentries: list[ConfigSubentryData],
    options: dict[str, object],
) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Munich Termin",
        data={CONF_BASE_URL: server.base_url},
        options=options,
        subentries_data=subentries,
        entry_id="01JENTRYNOTIFY000000000000",
    )


async def wait_sent(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await hass.async_block_till_done()
    forwarder = entry.runtime_data.alerts
    assert forwarder is not None
    assert forwarder.queue is not None
    await forwarder.queue.join()


async def test_the_entity(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    entity = entity_registry.async_get(ENTITY_ID)
    assert entity is not None
    assert entity.unique_id == f"{loaded_entry.entry_id}_alerts"
    assert entity.translation_key == "alerts"
    assert entity.has_entity_name
    assert entity.config_entry_id == loaded_entry.entry_id
    state = hass.states.get(ENTITY_ID)
    assert state is not None
    assert state.state == STATE_UNKNOWN
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == 1
    assert state.attributes["friendly_name"] == "Munich Termin alerts"


async def test_send_message_goes_to_telegram(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: TelegramStandinServer,
) -> None:
    await wait_sent(hass, loaded_entry)
    before = len(standin.standin.sent(CHAT))
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": ENTITY_ID, "message": "Test from HA", "title": "Munich Termin"},
        blocking=True,
    )
    await wait_sent(hass, loaded_entry)
    sent = standin.standin.sent(CHAT)
    assert len(sent) == before + 1
    assert sent[-1].text == "Munich Termin\nTest from HA"
    state = hass.states.get(ENTITY_ID)
    assert state is not None
    assert state.state != STATE_UNKNOWN  # the time of the last message
    calls = [c for c in standin.standin.calls if c["method"] == "sendMessage"]
    assert all(TOKEN not in str(c["params"]) for c in calls)


async def test_found_slots_are_announced(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    standin: TelegramStandinServer,
) -> None:
    # The first look of the set-up found the simulator's fixed slots: one
    # message for all of them, with a "Book it" for the earliest.
    await wait_sent(hass, loaded_entry)
    [message] = standin.standin.sent(CHAT)
    title, *lines = message.text.splitlines()
    assert re.fullmatch(r"\d+ new appointment slots, the earliest .+", title)
    assert lines[0].startswith("\N{BULLET} ")
    assert "Watch: Wohnsitz" in lines  # the subentry's title, not its id
    assert lines[-1].startswith(
        "Book at: https://stadt.muenchen.de/buergerservice/terminvereinbarung.html#/"
    )
    book, page = message.buttons[0]
    assert book["callback_data"].startswith(f"{BOOK_COMMAND} ")
    assert len(book["callback_data"].encode()) <= 64
    assert page["url"] == lines[-1].removeprefix("Book at: ")
    for secret in (FAMILY_NAME, EMAIL):
        assert secret not in message.text


@pytest.mark.parametrize("options", [{}])
async def test_send_message_without_targets(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(
            "notify",
            "send_message",
            {"entity_id": ENTITY_ID, "message": "nobody listens"},
            blocking=True,
        )
    assert info.value.translation_key == "alerts_not_configured"


async def test_send_message_while_the_forwarder_is_gone(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    loaded_entry.runtime_data.alerts = None
    with pytest.raises(HomeAssistantError) as info:
        await hass.services.async_call(
            "notify",
            "send_message",
            {"entity_id": ENTITY_ID, "message": "x"},
            blocking=True,
        )
    assert info.value.translation_key == "alerts_not_configured"
