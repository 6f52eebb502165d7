"""Diagnostics and system health: useful, and free of personal data."""

from __future__ import annotations

import json

from homeassistant.components.system_health import DOMAIN as SYSTEM_HEALTH
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    get_system_health_info,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.munich_termin.const import DOMAIN

from .conftest import EMAIL, FAMILY_NAME, TELEPHONE, WATCH_ID, response_of

TOKEN = "123456789:AAsecretSECRETsecretSECRETsecret00"
CHAT = "987654321"


async def test_diagnostics_redact_personal_data(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    subentry = loaded_entry.subentries[WATCH_ID]
    hass.config_entries.async_update_subentry(
        loaded_entry,
        subentry,
        data={
            **subentry.data,
            "contact": {
                "family_name": FAMILY_NAME,
                "email": EMAIL,
                "telephone": TELEPHONE,
                "custom_textfield": "Aktenzeichen 4711-XYZ",
            },
        },
    )
    hass.config_entries.async_update_entry(
        loaded_entry,
        options={"telegram_token": TOKEN, "telegram_chat_id": CHAT},
    )
    await hass.async_block_till_done()
    # Book, so that the engine holds credentials too.
    booking = await hass.services.async_call(
        DOMAIN, "book", {"watch": WATCH_ID}, blocking=True, return_response=True
    )
    process_id = response_of(booking)["booking"]["process_id"]
    auth_key = loaded_entry.runtime_data.watcher.credentials(WATCH_ID).auth_key

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )
    text = json.dumps(diagnostics)
    for secret in (
        FAMILY_NAME,
        EMAIL,
        TELEPHONE,
        "4711-XYZ",
        TOKEN,
        CHAT,
        auth_key,
        f'"process_id": {process_id}',
    ):
        assert secret not in text, secret
    watch = diagnostics["watches"][WATCH_ID]
    # The filters are what one needs to understand a report: they stay.
    assert watch["data"]["services"] == [{"service_id": 1063475, "count": 1}]
    assert watch["data"]["office_ids"] == [10489]
    assert watch["data"]["contact"] == "**REDACTED**"
    assert watch["has_contact"] is True
    # Stored without an urgency (from before it was asked for): runs as normal.
    assert "urgency" not in watch["data"]
    assert watch["urgency"] == "normal"
    status = diagnostics["statuses"][WATCH_ID]
    assert status["booking"]["state"] == "booked"
    assert status["booking"]["has_process"] is True
    assert diagnostics["coordinator"]["last_update_success"] is True
    assert diagnostics["budget"]["limit"] >= 1
    assert diagnostics["entry"]["options"]["telegram_token"] == "**REDACTED**"


async def test_diagnostics_show_the_urgency(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    subentry = loaded_entry.subentries[WATCH_ID]
    hass.config_entries.async_update_subentry(
        loaded_entry, subentry, data={**subentry.data, "urgency": "urgent"}
    )
    await hass.async_block_till_done()
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, loaded_entry
    )
    watch = diagnostics["watches"][WATCH_ID]
    assert watch["data"]["urgency"] == watch["urgency"] == "urgent"
    assert watch["running"] is True


async def test_system_health(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    assert await async_setup_component(hass, SYSTEM_HEALTH, {})
    await hass.async_block_till_done()
    info = await get_system_health_info(hass, DOMAIN)
    for key, value in info.items():
        if hasattr(value, "__await__"):
            info[key] = await value
    assert info["loaded"] is True
    assert info["server_reachable"] == "ok"
    assert info["watches"] == 1
    assert info["budget_left"] >= 0
    assert info["last_check"] != "-"


async def test_system_health_not_loaded(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, SYSTEM_HEALTH, {})
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    info = await get_system_health_info(hass, DOMAIN)
    assert info == {"loaded": False}
