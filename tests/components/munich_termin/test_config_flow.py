"""The config flow of the booking service: user, reconfigure, reauth, options."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import (
    CONF_ALERT_BOOKING,
    CONF_ALERT_GONE,
    CONF_ALERT_NEW,
    CONF_BASE_URL,
    CONF_NOTIFY_ENTITIES,
    CONF_TELEGRAM_API_URL,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    DOMAIN,
)
from custom_components.munich_termin.coordinator import ISSUE_TELEGRAM
from mta_client import (
    DEFAULT_BASE_URL,
    Catalogue,
    MTABlockedError,
    MTAConnectionError,
    MTAError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAServerError,
)
from mta_client.exceptions import MTAOutdatedAPIError
from mta_client.simulator import Simulator, SimulatorServer
from mta_client.telegram import DEFAULT_API_URL, TelegramAuthError, TelegramError

from .conftest import form_schema, telegram_standin

CATALOGUE = "mta_client.client.MTAClient.get_catalogue"
SENDER = "custom_components.munich_termin.config_flow.TelegramSender"
TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ"


async def test_user_creates_entry_against_the_simulator(
    hass: HomeAssistant, server: SimulatorServer
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {CONF_BASE_URL: server.base_url}}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Munich Termin"
    assert result["data"] == {CONF_BASE_URL: server.base_url}
    # The flow asked once; setting up the new entry asks again.
    assert server.simulator.stats.requests_by_route["offices-and-services/"] >= 1
    await hass.async_block_till_done()


async def test_user_defaults_to_the_city(hass: HomeAssistant) -> None:
    with patch(CATALOGUE, return_value=_catalogue()):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"advanced": {}}
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_BASE_URL: DEFAULT_BASE_URL}


def _catalogue() -> Catalogue:
    return Catalogue.model_validate(
        {
            "offices": [{"id": 1, "name": "Office"}],
            "services": [{"id": 2, "name": "Service"}],
            "relations": [{"officeId": 1, "serviceId": 2, "slots": 1}],
        }
    )


@pytest.mark.parametrize(
    ("url", "side_effect", "error"),
    [
        ("ftp://example.org/", None, "invalid_url"),
        ("http://[", None, "invalid_url"),
        ("not a url", None, "invalid_url"),
        (None, MTAConnectionError("down"), "cannot_connect"),
        (None, MTABlockedError(), "blocked"),
        (None, MTAMaintenanceError(), "maintenance"),
        (None, MTARateLimitError(), "rate_limited"),
        (None, MTAInvalidResponseError("html"), "invalid_response"),
        (None, MTAOutdatedAPIError(), "invalid_response"),
        (None, MTAServerError(), "unknown_response"),
        (None, MTAError("odd"), "unknown_response"),
        (None, RuntimeError("bug"), "unknown"),
        (None, Catalogue(offices=[], services=[], relations=[]), "invalid_response"),
    ],
)
async def test_user_errors_recover(
    hass: HomeAssistant,
    server: SimulatorServer,
    url: str | None,
    side_effect: Any,
    error: str,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    mock = (
        {"return_value": side_effect}
        if isinstance(side_effect, Catalogue)
        else {"side_effect": side_effect}
    )
    with patch(CATALOGUE, **mock):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"advanced": {CONF_BASE_URL: url or server.base_url}}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {CONF_BASE_URL: server.base_url}}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_single_instance(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


# --- reconfigure -------------------------------------------------------------------


async def test_reconfigure(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, server: SimulatorServer
) -> None:
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    with patch(CATALOGUE, side_effect=MTAConnectionError("down")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_BASE_URL: "http://127.0.0.1:1/api/"}
        )
    assert result["errors"] == {"base": "cannot_connect"}
    async with SimulatorServer(Simulator(scenario="quiet")) as second:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_BASE_URL: second.base_url}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert loaded_entry.data[CONF_BASE_URL] == second.base_url
        # The update listener reloaded the entry onto the new URL.
        assert str(loaded_entry.runtime_data.client.base_url) == second.base_url
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


# --- reauth (the Telegram bot token) -------------------------------------------------


async def test_reauth_asks_for_a_new_token(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            CONF_TELEGRAM_TOKEN: "old",
            CONF_TELEGRAM_CHAT_ID: "42",
            CONF_TELEGRAM_API_URL: "http://127.0.0.1:9/",
        },
    )
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_TELEGRAM,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_TELEGRAM,
    )
    result = await config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    with patch(SENDER) as sender:
        sender.return_value.get_me = AsyncMock(side_effect=TelegramAuthError("no"))
        sender.return_value.aclose = AsyncMock()
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TELEGRAM_TOKEN: "bad"}
        )
        assert result["errors"] == {"base": "invalid_token"}
        sender.return_value.get_me = AsyncMock(return_value={"id": 1})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TELEGRAM_TOKEN: f" {TOKEN} "}
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.options[CONF_TELEGRAM_TOKEN] == TOKEN
    assert config_entry.options[CONF_TELEGRAM_CHAT_ID] == "42"
    assert sender.call_args.kwargs["api_url"] == "http://127.0.0.1:9/"
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_TELEGRAM) is None


async def test_reauth_default_api_url(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reauth_flow(hass)
    with patch(SENDER) as sender:
        sender.return_value.get_me = AsyncMock(return_value={"id": 1})
        sender.return_value.aclose = AsyncMock()
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TELEGRAM_TOKEN: TOKEN}
        )
    assert result["reason"] == "reauth_successful"
    assert sender.call_args.kwargs["api_url"] == DEFAULT_API_URL


# --- options: alerts ------------------------------------------------------------------


def _options(**telegram: str) -> dict[str, Any]:
    return {
        CONF_NOTIFY_ENTITIES: ["notify.phone"],
        "telegram": telegram,
        CONF_ALERT_NEW: True,
        CONF_ALERT_GONE: True,
        CONF_ALERT_BOOKING: False,
    }


async def test_options_notify_entities_only(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options()
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {
        CONF_NOTIFY_ENTITIES: ["notify.phone"],
        CONF_ALERT_NEW: True,
        CONF_ALERT_GONE: True,
        CONF_ALERT_BOOKING: False,
    }
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("telegram", "get_me", "error"),
    [
        ({CONF_TELEGRAM_TOKEN: TOKEN}, None, "chat_id_required"),
        ({CONF_TELEGRAM_CHAT_ID: "42"}, None, "token_required"),
        (
            {CONF_TELEGRAM_TOKEN: TOKEN, CONF_TELEGRAM_CHAT_ID: "42"},
            TelegramAuthError("401"),
            "invalid_token",
        ),
        (
            {CONF_TELEGRAM_TOKEN: TOKEN, CONF_TELEGRAM_CHAT_ID: "42"},
            TelegramError("down"),
            "telegram_cannot_connect",
        ),
        (
            {
                CONF_TELEGRAM_TOKEN: TOKEN,
                CONF_TELEGRAM_CHAT_ID: "42",
                CONF_TELEGRAM_API_URL: "telegram",
            },
            None,
            "invalid_api_url",
        ),
    ],
)
async def test_options_telegram_errors_recover(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    telegram: dict[str, str],
    get_me: Exception | None,
    error: str,
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    with patch(SENDER) as sender:
        sender.return_value.get_me = AsyncMock(side_effect=get_me)
        sender.return_value.aclose = AsyncMock()
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], _options(**telegram)
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": error}
        sender.return_value.get_me = AsyncMock(return_value={"id": 1})
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            _options(
                telegram_token=TOKEN,
                telegram_chat_id="42",
                telegram_api_url="http://127.0.0.1:8081",
            ),
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options[CONF_TELEGRAM_TOKEN] == TOKEN
    assert config_entry.options[CONF_TELEGRAM_CHAT_ID] == "42"
    assert config_entry.options[CONF_TELEGRAM_API_URL] == "http://127.0.0.1:8081"
    sender.assert_called_with(
        token=TOKEN,
        session=sender.call_args.kwargs["session"],
        api_url="http://127.0.0.1:8081",
    )


async def test_options_show_current_settings(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            CONF_NOTIFY_ENTITIES: ["notify.phone"],
            CONF_TELEGRAM_TOKEN: TOKEN,
            CONF_TELEGRAM_CHAT_ID: "42",
            CONF_TELEGRAM_API_URL: DEFAULT_API_URL,
            CONF_ALERT_NEW: False,
            CONF_ALERT_GONE: False,
            CONF_ALERT_BOOKING: True,
        },
    )
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    schema = form_schema(result).schema
    suggested = {
        str(key): (key.description or {}).get("suggested_value") for key in schema
    }
    assert suggested[CONF_NOTIFY_ENTITIES] == ["notify.phone"]
    assert suggested[CONF_ALERT_NEW] is False
    telegram = next(value for key, value in schema.items() if str(key) == "telegram")
    inner = {
        str(key): (key.description or {}).get("suggested_value")
        for key in telegram.schema.schema
    }
    assert inner == {
        CONF_TELEGRAM_TOKEN: TOKEN,
        CONF_TELEGRAM_CHAT_ID: "42",
        CONF_TELEGRAM_API_URL: DEFAULT_API_URL,
    }
    assert telegram.options["collapsed"] is False


async def test_options_check_the_token_with_the_bot_api_standin(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """No mocks: ``getMe`` goes to the project's Bot API stand-in on 127.0.0.1."""
    async with telegram_standin(TOKEN, "42") as server:
        result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
        wrong = {
            "telegram_token": "123456789:wrong",
            "telegram_chat_id": "42",
            "telegram_api_url": server.api_url,
        }
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], _options(**wrong)
        )
        assert result["errors"] == {"base": "invalid_token"}
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], _options(**{**wrong, "telegram_token": TOKEN})
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    # The flow asked twice (the wrong token, then the right one); the alert
    # forwarder of the reloaded entry may ask once more.
    assert len([c for c in server.standin.calls if c["method"] == "getMe"]) >= 2
