"""Fixtures: the project's simulator on 127.0.0.1, and a set-up entry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from unittest.mock import PropertyMock, patch
from zoneinfo import ZoneInfo

import freezegun
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant, ServiceResponse, State
from homeassistant.data_entry_flow import FlowResult
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.munich_termin.const import (
    CONF_BASE_URL,
    CONF_TELEGRAM_API_URL,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    DOMAIN,
    SUBENTRY_WATCH,
)
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer
from mta_client.telegram_standin import TelegramStandin, TelegramStandinServer

# The captcha solver's time limit is real computing time; frozen time would
# make it give up at once.
freezegun.configure(extend_ignore_list=["mta_client.captcha"])

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 23 November 2026, 08:30 in Munich: outside the release windows.
START = datetime(2026, 11, 23, 8, 30, tzinfo=BERLIN)
WOHNSITZ = 1063475
PERSONALAUSWEIS = 1063441
EINBUERGERUNG = 1071907
RUPPERT = 10489
ORLEANS = 102522
EINBUERGERUNGSBEHOERDE = 10471
WATCH_ID = "01JWATCH000000000000000000"
FAMILY_NAME = "Zwackelmann"
EMAIL = "zenzi.zwackelmann@example.org"
TELEPHONE = "+4915112345678"


def watch_data(**changes: Any) -> dict[str, Any]:
    """A watch subentry's data as the flow stores it."""
    data: dict[str, Any] = {
        "services": [{"service_id": WOHNSITZ, "count": 1}],
        "office_ids": [RUPPERT],
        "within_days": 28,
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "time_ranges": [],
        "min_lead": {},
        "contact": {"family_name": FAMILY_NAME, "email": EMAIL},
        "auto_book": False,
    }
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load the integration from custom_components."""


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """The simulator serves real HTTP on 127.0.0.1; nothing else is reached."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's snapshot extension."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Enable the entities that are disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def frozen(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Time stands at START (a Monday morning) until a test moves it.

    Only for tests that need fixed slot times: asyncio's sleeps do not end
    while time stands, so a test that retries must not freeze it.
    """
    freezer.move_to(START)
    return freezer


@pytest.fixture
def sim_options() -> dict[str, Any]:
    """Override in a test module to configure the simulator."""
    return {}


@pytest.fixture
def sim(sim_options: dict[str, Any]) -> Simulator:
    """The city, as the project's simulator plays it (fixed slots)."""
    options: dict[str, Any] = {
        "scenario": "fixed",
        "seed": 7,
        "captcha": CaptchaConfig(cost=5),
        "rate_limit": 60,
        **sim_options,
    }
    return Simulator(**options)


@pytest.fixture
async def server(sim: Simulator) -> AsyncIterator[SimulatorServer]:
    """The simulator on a free port of 127.0.0.1."""
    async with SimulatorServer(sim, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def subentries() -> list[ConfigSubentryData]:
    """The entry's watches (override per test module)."""
    return [
        ConfigSubentryDataWithId(
            data=watch_data(),
            subentry_id=WATCH_ID,
            subentry_type=SUBENTRY_WATCH,
            title="Wohnsitz",
            unique_id=None,
        )
    ]


@pytest.fixture
def config_entry(
    server: SimulatorServer, subentries: list[ConfigSubentryData]
) -> MockConfigEntry:
    """The entry of the booking service, pointed at the simulator."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Munich Termin",
        data={CONF_BASE_URL: server.base_url},
        subentries_data=subentries,
        entry_id="01JENTRY0000000000000000000",
    )


@asynccontextmanager
async def telegram_standin(
    token: str, chat: int | str
) -> AsyncIterator[TelegramStandinServer]:
    """The project's Bot API stand-in on 127.0.0.1, for one bot and one chat."""
    standin = TelegramStandin(token=token, chat_ids=[chat], max_long_poll=0.2)
    async with TelegramStandinServer(standin) as server:
        yield server


def telegram_options(
    server: TelegramStandinServer, token: str, chat: int | str
) -> dict[str, Any]:
    """Entry options that send the alerts straight to the stand-in."""
    return {
        CONF_TELEGRAM_TOKEN: token,
        CONF_TELEGRAM_CHAT_ID: str(chat),
        CONF_TELEGRAM_API_URL: server.api_url,
    }


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up an entry, waiting for everything it starts."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The entry, set up against the simulator."""
    await setup_entry(hass, config_entry)
    return config_entry


def watch_id(entry: MockConfigEntry) -> str:
    """The (only) watch's id."""
    subentry_id: str = next(iter(entry.subentries))
    return subentry_id


def form_schema(result: FlowResult[Any, Any]) -> probatio.Schema:
    """The data schema of a flow's form, which the test expects."""
    schema = result["data_schema"]
    assert schema is not None
    return schema


def response_of(response: ServiceResponse) -> dict[str, Any]:
    """An action's response, asked for with ``return_response=True``."""
    assert response is not None
    return response


def state_of(hass: HomeAssistant, entity_id: str) -> State:
    """The entity's state, which the test expects to exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state
