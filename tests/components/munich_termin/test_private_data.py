"""Private data stays private in Home Assistant (issue 10).

A watch with auto-booking and distinctive personal data, and the direct
Telegram alerts with a distinctive bot token (the project's stand-in), book
on their own; then the actions run (confirm with the link, cancel, book,
find_slots, and mistakes). Everything Home Assistant can show or keep is
searched for the values: every log record at debug level (but the
simulator's and the stand-in's, which play the city and Telegram), the
diagnostics, every state and attribute, every event on the bus and every
dispatcher signal of the integration, the notifications (notify entity
calls, Telegram messages), repairs, system health, the action answers and
errors, and every Store. Allowed only: the config entry (its subentry keeps
the person's data, its options the bot token) and the engine's own Store,
which must keep the booking's credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
import json
import logging
from typing import Any
from urllib.parse import quote

from homeassistant.components.system_health import DOMAIN as SYSTEM_HEALTH
from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigSubentryData,
    ConfigSubentryDataWithId,
)
from homeassistant.const import ATTR_SERVICE_DATA, EVENT_CALL_SERVICE, MATCH_ALL
from homeassistant.core import Event, HomeAssistant, ServiceCall
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.json import JSONEncoder
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    get_system_health_info,
)

from custom_components.munich_termin.alerts import ISSUE_TELEGRAM_REJECTED
from custom_components.munich_termin.const import (
    CONF_ALERT_GONE,
    CONF_BASE_URL,
    CONF_NOTIFY_ENTITIES,
    DOMAIN,
    SUBENTRY_WATCH,
)
from custom_components.munich_termin.coordinator import ISSUE_CONTACT, signal_event
from custom_components.munich_termin.diagnostics import (
    async_get_config_entry_diagnostics,
)
from mta_client.models import _link_token  # the base64 part of a link
from mta_client.simulator import SimulatorServer
from mta_client.telegram_standin import Fault, TelegramStandinServer
from mta_client.watch import BookingState
from tests.test_private_data import (  # the same made-up person and bot
    BOT_TOKEN,
    CHAT,
    CONTACT,
    EMAIL,
    NAME,
    PHONE,
    REMOTE_LOGGERS as LIBRARY_REMOTE_LOGGERS,
    TEXT,
    TEXT2,
)

from .conftest import (
    RUPPERT,
    WATCH_ID,
    WOHNSITZ,
    form_schema,
    setup_entry,
    telegram_options,
    telegram_standin,
    watch_data,
)

PERSON = {
    "family name": NAME,
    "e-mail": EMAIL,
    "phone": PHONE,
    "phone digits": PHONE.removeprefix("+"),
    "custom text": TEXT,
    "custom text 2": TEXT2,
}
TOKEN = {"bot token": BOT_TOKEN, "bot token secret": BOT_TOKEN.split(":", 1)[1]}
# The city's side and Telegram's side: they must know the values.
_REMOTE_LOGGERS = (
    *LIBRARY_REMOTE_LOGGERS,
    # The test harness's Store logs what it writes: the Store is checked below.
    "pytest_homeassistant_custom_component.common",
)
UMSCHREIBUNG = 1071896
FUEHRERSCHEINSTELLE = 10308174
UNSUITABLE_ID = "01JWATCHUNSUITABLE00000000"
ENGINE_STORE = f"{DOMAIN}.01JENTRYPRIVATE00000000000"


def variants(value: str) -> set[str]:
    """A value as it could show: as is, lower case, URL-quoted, JSON-escaped."""
    forms = {value, value.lower(), quote(value, safe=""), quote(value)}
    forms |= {json.dumps(form)[1:-1] for form in set(forms)}
    return forms


def leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    """Which secret shows in which text (``"what in where"``)."""
    return [
        f"{what} in {where}"
        for where, text in texts.items()
        for what, value in secrets.items()
        if any(form in text for form in variants(value))
    ]


def dumped(value: Any) -> str:
    return json.dumps(value, cls=JSONEncoder, default=repr, ensure_ascii=False)


@pytest.fixture(name="standin")
async def standin_fixture() -> AsyncIterator[TelegramStandinServer]:
    async with telegram_standin(BOT_TOKEN, CHAT) as server:
        yield server


@pytest.fixture(name="subentries")
def subentries_fixture() -> list[ConfigSubentryData]:
    return [
        ConfigSubentryDataWithId(
            data=watch_data(contact=CONTACT, auto_book=True),
            subentry_id=WATCH_ID,
            subentry_type=SUBENTRY_WATCH,
            title="Wohnsitz",
            unique_id=None,
        ),
        # The Führerscheinstelle needs an e-mail address: this watch is set
        # aside with a repair that names the field, never a value.
        ConfigSubentryDataWithId(
            data=watch_data(
                services=[{"service_id": UMSCHREIBUNG, "count": 1}],
                office_ids=[FUEHRERSCHEINSTELLE],
                contact={k: v for k, v in CONTACT.items() if k != "email"},
                auto_book=True,
            ),
            subentry_id=UNSUITABLE_ID,
            subentry_type=SUBENTRY_WATCH,
            title="Führerschein",
            unique_id=None,
        ),
    ]


@pytest.fixture(name="config_entry")
def config_entry_fixture(
    server: SimulatorServer,
    subentries: list[ConfigSubentryData],
    standin: TelegramStandinServer,
) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Munich Termin",
        data={CONF_BASE_URL: server.base_url},
        options={
            **telegram_options(standin, BOT_TOKEN, CHAT),
            CONF_NOTIFY_ENTITIES: ["notify.chat"],
            CONF_ALERT_GONE: True,
        },
        subentries_data=subentries,
        entry_id=ENGINE_STORE.removeprefix(f"{DOMAIN}."),
    )


async def until(condition: Callable[[], object]) -> None:
    """Wait (in real time, 20 s at most) until a background task made it true."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the condition never came true")


class Capture:
    """What Home Assistant showed, said or kept, by where."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self.texts: dict[str, str] = {}
        self.events: list[Event] = []
        self.signals: list[tuple[Any, ...]] = []
        self.notify_calls: list[ServiceCall] = []

    def add(self, where: str, value: Any) -> None:
        text = value if isinstance(value, str) else dumped(value)
        self.texts[f"{len(self.texts)}: {where}"] = text

    def error(self, where: str, err: HomeAssistantError) -> None:
        self.add(f"{where}: str", str(err))
        self.add(f"{where}: repr", repr(err))
        self.add(f"{where}: placeholders", err.translation_placeholders or {})
        if err.__cause__ is not None:
            self.add(f"{where}: cause", repr(err.__cause__))

    async def call(self, action: str, data: dict[str, Any]) -> Any:
        answer = await self.hass.services.async_call(
            DOMAIN, action, data, blocking=True, return_response=True
        )
        self.add(f"answer of {action}", answer)
        return answer

    async def fails(self, action: str, data: dict[str, Any]) -> HomeAssistantError:
        with pytest.raises(HomeAssistantError) as info:
            await self.hass.services.async_call(
                DOMAIN, action, data, blocking=True, return_response=True
            )
        self.error(f"error of {action}", info.value)
        return info.value

    async def add_watch_by_flow(self, entry: MockConfigEntry) -> None:
        """Add a watch with auto-booking; a bad e-mail address first."""
        flows = self.hass.config_entries.subentries
        # The Bürgerbüro has no second remark field.
        contact = {k: v for k, v in CONTACT.items() if k != "custom_textfield2"}
        result = await flows.async_init(
            (entry.entry_id, SUBENTRY_WATCH), context={"source": SOURCE_USER}
        )
        steps: list[dict[str, Any]] = [
            {"services": [str(WOHNSITZ)]},
            {
                "office_ids": [str(RUPPERT)],
                "within_days": 28,
                "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            },
            {**contact, "email": f"{NAME}@@{EMAIL}", "auto_book": True},
            {**contact, "auto_book": True},
        ]
        while steps:
            data: dict[str, Any]
            if result["step_id"] == "counts":
                data = {str(key): 1 for key in form_schema(result).schema}
            else:
                data = steps.pop(0)
            result = await flows.async_configure(result["flow_id"], data)
            self.add(f"flow errors after {result.get('step_id')}", result.get("errors"))
            self.add("flow placeholders", result.get("description_placeholders"))
            if result["type"] is not FlowResultType.FORM:
                break
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        self.add("flow title", result["title"])
        await self.hass.async_block_till_done()

    async def shown(self, entry: MockConfigEntry) -> None:
        """Diagnostics, states, repairs, system health, notifications, signals."""
        hass = self.hass
        self.add("diagnostics", await async_get_config_entry_diagnostics(hass, entry))
        for state in hass.states.async_all():
            self.add(f"state of {state.entity_id}", state.as_dict())
            self.add(f"repr of {state.entity_id}", repr(state))
        for issue in ir.async_get(hass).issues.values():
            self.add(f"repair {issue.issue_id}", repr(issue))
        assert await async_setup_component(hass, SYSTEM_HEALTH, {})
        await hass.async_block_till_done()
        info = await get_system_health_info(hass, DOMAIN)
        for key, value in info.items():
            shown = await value if hasattr(value, "__await__") else value
            self.add(f"system health {key}", shown)
        alerts = entry.runtime_data.alerts
        self.add("runtime data", repr(entry.runtime_data))
        self.add("alert forwarder", repr(alerts))
        for name, value in vars(alerts).items():
            self.add(f"alert forwarder's {name}", repr(value))
        for number, call in enumerate(self.notify_calls):
            self.add(f"notify call {number}", dict(call.data))
        for number, signal in enumerate(self.signals):
            self.add(f"signal {number}", signal)


async def test_home_assistant_flow(  # noqa: PLR0915, PLR0917 - one flow; fixtures
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    server: SimulatorServer,
    standin: TelegramStandinServer,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = server.simulator
    seen = Capture(hass)
    hass.bus.async_listen(MATCH_ALL, seen.events.append)
    async_dispatcher_connect(
        hass, signal_event(config_entry.entry_id), lambda *a: seen.signals.append(a)
    )

    async def send_message(call: ServiceCall) -> None:
        seen.notify_calls.append(call)

    # Home Assistant's notify first, so that setting up our notify platform
    # later does not register the real send_message over the fake one.
    assert await async_setup_component(hass, "notify", {})
    hass.services.async_register("notify", "send_message", send_message)
    hass.states.async_set("notify.chat", "unknown", {"supported_features": 1})

    # It books on its own.
    await setup_entry(hass, config_entry)
    watcher = config_entry.runtime_data.watcher
    # Booked: reserved, filled in and pre-confirmed, so the city sent the
    # activation mail (credentials alone exist from the reservation on).
    await until(lambda: watcher.status(WATCH_ID).booking.state is BookingState.BOOKED)
    await hass.async_block_till_done()
    # The alerts go out from the forwarder's own background task.
    await until(lambda: bool(seen.notify_calls))
    (process,) = sim.bookings.processes.values()
    assert (process.family_name, process.email, process.telephone) == (
        NAME,
        EMAIL,
        PHONE,
    )
    assert process.custom_textfield == TEXT
    auth_keys = [process.auth_key]
    captcha = config_entry.runtime_data.client.captcha.export()
    assert captcha is not None, "the Bürgerbüro needs a captcha"
    links = [sim.outbox.activation_link(process.process_id)]
    booked_store = dumped(hass_storage.get(ENGINE_STORE))

    # The actions, and mistakes.
    await seen.fails("book", {"watch": WATCH_ID})  # one booking per watch
    await seen.call("confirm", {"link": links[0]})
    await seen.fails("confirm", {"link": links[0][:-8] + "QUFBQQ"})
    await seen.fails("confirm", {"link": f"{NAME} {EMAIL}"})
    await seen.call("cancel", {"watch": WATCH_ID})
    auth_keys.append(process.auth_key)
    await seen.fails("cancel", {"watch": WATCH_ID})
    answer = await seen.call("book", {"watch": WATCH_ID})
    second = sim.bookings.processes[answer["booking"]["process_id"]]
    auth_keys.append(second.auth_key)
    links.append(sim.outbox.activation_link(second.process_id))
    await seen.call("find_slots", {"services": [f"{WOHNSITZ}:1"]})
    await hass.async_block_till_done()

    # A second watch through the flow: a mistake first, then one whose
    # auto-booking fails (the city errs on the person's data). The entry
    # reloads and resumes the first watch's booking from its Store.
    sim.faults.add(kind="server_error", route="update-appointment/", times=None)
    await seen.add_watch_by_flow(config_entry)
    (other,) = set(config_entry.subentries) - {WATCH_ID, UNSUITABLE_ID}
    await until(lambda: config_entry.runtime_data.watcher.status(other).booking.reason)
    await hass.async_block_till_done()
    assert config_entry.runtime_data.watcher.credentials(WATCH_ID) is not None
    alerts = config_entry.runtime_data.alerts
    assert alerts is not None
    assert alerts.queue is not None
    await asyncio.wait_for(alerts.queue.join(), 20)
    await hass.async_block_till_done()
    resumed_store = dumped(hass_storage[ENGINE_STORE])

    # Telegram rejects the token now: a repair and a reauth flow.
    standin.standin.faults.append(Fault(method="*", status=401, count=-1))
    await seen.call("cancel", {"watch": WATCH_ID})
    await until(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_TELEGRAM_REJECTED)
    )
    await hass.async_block_till_done()
    for number, flow in enumerate(hass.config_entries.flow.async_progress()):
        seen.add(f"flow in progress {number}", flow)
    assert ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_CONTACT}_{UNSUITABLE_ID}"
    )

    # What it shows.
    await seen.shown(config_entry)
    messages = standin.standin.sent(CHAT)
    for number, message in enumerate(messages):
        seen.add(f"Telegram message {number}", message.text)
        seen.add(f"Telegram buttons {number}", message.buttons)

    # What it keeps: everything but the config entries and the engine's state.
    await hass.config_entries.async_unload(config_entry.entry_id)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=1))
    await hass.async_block_till_done()
    for key, stored in hass_storage.items():
        if key not in {"core.config_entries", ENGINE_STORE}:
            seen.add(f"Store {key}", stored)
    # Every event on the bus; call_service of this integration's actions
    # holds what the caller typed (the link, and a mistaken one): Home
    # Assistant's own record of the call, not the integration's.
    for number, event in enumerate(seen.events):
        data = dict(event.as_dict())
        if event.event_type == EVENT_CALL_SERVICE and event.data["domain"] == DOMAIN:
            data["data"] = {**event.data, ATTR_SERVICE_DATA: "(the caller's)"}
        seen.add(f"event {number} {event.event_type}", data)
    for number, record in enumerate(caplog.records):
        if not record.name.startswith(_REMOTE_LOGGERS):
            seen.add(
                f"log record {number} ({record.name})", caplog.handler.format(record)
            )

    assert any(
        r.levelno == logging.DEBUG and r.name.startswith("custom_components")
        for r in caplog.records
    ), "the integration's debug logs are captured"
    assert seen.notify_calls, "alerts reach the notify entity"
    assert messages, "alerts reach Telegram"
    secrets = {
        **PERSON,
        **TOKEN,
        **{f"auth key {n}": key for n, key in enumerate(auth_keys)},
        **{f"link {n}": _link_token(link) or link for n, link in enumerate(links)},
        "captcha token": captcha[0],
    }
    found = leaks(secrets, seen.texts)
    assert not found, "\n".join(found)

    # Where they must be kept: the entry, and the engine's Store.
    entries = dumped(config_entry.as_dict())
    assert not {"family name", "e-mail", "bot token"} - {
        leak.split(" in ", 1)[0] for leak in leaks(PERSON | TOKEN, {"e": entries})
    }
    engine = dumped(hass_storage[ENGINE_STORE])
    assert auth_keys[0] in booked_store
    assert auth_keys[2] in resumed_store
    personal_in_store = leaks(
        PERSON | TOKEN,
        {"engine store": engine, "booked": booked_store, "resumed": resumed_store},
    )
    assert not personal_in_store, personal_in_store
