"""Real Home Assistant, end to end, as the frontend would drive it.

One scenario, in order (each step needs the ones before it):

1. onboarding over REST, a token;
2. ``telegram_bot`` (polling, API endpoint = the stand-in, one allowed chat)
   and ``munich_termin`` (pointed at the simulator, alerts through the
   ``telegram_bot`` notify entity) through their config flows, and two watch
   subentries through the subentry flow endpoint, one auto-booking;
3. the sensors show the simulator's slots and the stand-in has the "new
   slot" message with a "Book it" button;
4. the button is pressed at the stand-in; the shipped blueprint books it; the
   booking is in the simulator and in the booking-status sensor, and the
   message is edited to say so;
5. the activation link from the simulator's outbox goes to
   ``munich_termin.confirm`` over the websocket; the calendar shows the
   appointment;
6. the auto-booking watch books on its own, exactly once, also across a
   restart of ``hass`` in the middle of its booking;
7. unloading the entry leaves nothing of ours running, and the log has no
   error or warning of ours, no blocking call and no traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
import re
import time
from typing import Any, cast

import pytest

from devtools.realhass import RealHass

from .conftest import BOT_TOKEN, CHAT_ID, Service

WOHNSITZ = "1063475"
PASING = "54261"
ORLEANSPLATZ = "102522"
RUPPERT = "10489"
BEN_EMAIL = "ben.bauer@example.org"
BOOK_BUTTON_AUTOMATION = """\
- id: munich_termin_book_button
  alias: Book from Telegram
  use_blueprint:
    path: munich_termin/telegram_book_button.yaml
    input:
      watch_events: []
      telegram_chat: {notify}
      chat_id: "{chat}"
      send_offers: false
- id: munich_termin_status
  alias: Termin status
  use_blueprint:
    path: munich_termin/telegram_status_command.yaml
    input:
      earliest_sensors:
        - sensor.anna_earliest_slot
      chat_ids:
        - "{chat}"
"""
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [A-Z]+ ")
OURS = re.compile(r"\[(custom_components\.munich_termin|mta_client)[^\]]*\]")


async def _until[T](
    probe: Callable[[], Awaitable[T | None]], *, what: str, seconds: float = 90
) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


async def _set_up_telegram(hass: RealHass, telegram: Service) -> str:
    result = await hass.config_flow(
        "telegram_bot",
        {
            "platform": "polling",
            "api_key": BOT_TOKEN,
            "additional_settings": {"api_endpoint": telegram.url},
        },
    )
    assert result["type"] == "create_entry", result
    entry_id = str(result["result"]["entry_id"])
    chat = await hass.subentry_flow(entry_id, "allowed_chat_ids", {"chat_id": CHAT_ID})
    assert chat["type"] == "create_entry", chat

    async def notify_entity() -> str | None:
        for entity in await hass.ws({"type": "config/entity_registry/list"}):
            if entity["platform"] == "telegram_bot" and entity["entity_id"].startswith(
                "notify."
            ):
                return str(entity["entity_id"])
        return None

    return await _until(notify_entity, what="telegram_bot's notify entity")


async def _add_watch(
    hass: RealHass,
    entry_id: str,
    *,
    name: str,
    offices: list[str],
    booking: dict[str, Any],
) -> dict[str, Any]:
    result = await hass.subentry_flow(
        entry_id, "watch", {"name": name, "services": [WOHNSITZ]}
    )
    if result.get("step_id") == "counts":
        result = await hass.post(
            f"/api/config/config_entries/subentries/flow/{result['flow_id']}",
            {field["name"]: 1 for field in result["data_schema"]},
        )
    result = await hass.post(
        f"/api/config/config_entries/subentries/flow/{result['flow_id']}",
        {
            "office_ids": offices,
            "within_days": 14,
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        },
    )
    assert result.get("step_id") == "booking", result
    result = await hass.post(
        f"/api/config/config_entries/subentries/flow/{result['flow_id']}", booking
    )
    assert result["type"] == "create_entry", result
    return cast("dict[str, Any]", result)


def hass_state(states: list[dict[str, Any]], entity_id: str) -> str:
    """The state of one entity in a states list."""
    return str(next(s["state"] for s in states if s["entity_id"] == entity_id))


def _entity(states: list[dict[str, Any]], prefix: str, suffix: str) -> dict[str, Any]:
    found = [
        s
        for s in states
        if s["entity_id"].startswith(prefix) and s["entity_id"].endswith(suffix)
    ]
    assert len(found) == 1, (prefix, suffix, [s["entity_id"] for s in states])
    return found[0]


@pytest.mark.timeout(900)
async def test_real_home_assistant_end_to_end(  # noqa: C901, PLR0915 - one scenario
    real_hass: RealHass, simulator: Service, telegram: Service
) -> None:
    hass = real_hass
    api = f"{simulator.url}/buergeransicht/api/citizen/"

    # 2. telegram_bot, munich_termin, the alert options, the blueprint.
    notify = await _set_up_telegram(hass, telegram)
    result = await hass.config_flow("munich_termin", {"advanced": {"base_url": api}})
    assert result["type"] == "create_entry", result
    entry_id = str(result["result"]["entry_id"])
    options = await hass.options_flow(
        entry_id,
        {
            "notify_entities": [notify],
            "telegram": {},
            "alert_new": True,
            "alert_gone": False,
            "alert_booking": True,
        },
    )
    assert options["type"] == "create_entry", options
    (hass.config_dir / "automations.yaml").write_text(
        BOOK_BUTTON_AUTOMATION.format(notify=notify, chat=CHAT_ID), encoding="utf-8"
    )
    await hass.call_service("automation", "reload")

    await _add_watch(
        hass,
        entry_id,
        name="Anna",
        offices=[PASING, ORLEANSPLATZ],
        # Her data, so that a found slot can be booked, but no auto-booking.
        booking={
            "family_name": "Huber",
            "email": "anna.huber@example.org",
            "auto_book": False,
        },
    )

    # 3. Sensors and the Telegram alert with its button.
    async def anna_slots() -> list[dict[str, Any]] | None:
        states = await hass.states()
        count = [s for s in states if s["entity_id"] == "sensor.anna_fitting_slots"]
        if count and count[0]["state"] not in {"0", "unknown", "unavailable"}:
            return states
        return None

    states = await _until(anna_slots, what="Anna's sensors to show slots")
    earliest = _entity(states, "sensor.anna", "earliest_slot")
    assert earliest["state"] not in {"unknown", "unavailable"}
    assert _entity(states, "binary_sensor.anna", "slot_available")["state"] == "on"

    async def book_button() -> tuple[int, str] | None:
        chats = (await telegram.get("/_standin/messages"))["chats"]
        for message in chats.get(str(CHAT_ID), []):
            for row in message["buttons"]:
                for button in row:
                    if button["text"] == "Book it" and button.get("callback_data"):
                        return message["message_id"], button["callback_data"]
        return None

    message_id, callback = await _until(book_button, what="the Book it message")
    assert callback.startswith("/mt_book ")
    assert len(callback.encode()) <= 64  # Telegram's limit for callback_data

    # 4. Press it: the blueprint books; the simulator holds the booking.
    await telegram.post(
        "/_standin/press",
        {"chat_id": CHAT_ID, "message_id": message_id, "callback_data": callback},
    )

    async def booked_in_simulator() -> list[dict[str, Any]] | None:
        bookings = (await simulator.get("/_simulator/bookings"))["bookings"]
        done = [b for b in bookings if b["status"] == "preconfirmed"]
        return done or None

    bookings = await _until(booked_in_simulator, what="the booking in the simulator")
    assert len(bookings) == 1

    async def anna_booked() -> dict[str, Any] | None:
        state = await hass.state("sensor.anna_booking_status")
        return state if state and state["state"] == "booked" else None

    await _until(anna_booked, what="Anna's booking status")

    async def edited() -> bool:
        chats = (await telegram.get("/_standin/messages"))["chats"]
        message = next(m for m in chats[str(CHAT_ID)] if m["message_id"] == message_id)
        return any("Booked" in edit.get("text", "") for edit in message["edits"])

    try:
        await _until(edited, what="the message to be edited", seconds=30)
    except BaseException:
        print(await telegram.get("/_standin/messages"))  # noqa: T201 - for the failure
        print(await telegram.get("/_standin/calls"))  # noqa: T201
        traces = await hass.ws({"type": "trace/list", "domain": "automation"})
        for trace in traces:
            detail = await hass.ws(
                {
                    "type": "trace/get",
                    "domain": "automation",
                    "item_id": trace["item_id"],
                    "run_id": trace["run_id"],
                }
            )
            print(detail["trace"])  # noqa: T201
        raise
    answers = (await telegram.get("/_standin/answers"))["answers"]
    assert answers, "the callback query was not answered"

    # 5. Confirm from the activation link, over the websocket.
    process_id = bookings[0]["process_id"]
    mails = (await simulator.get(f"/_simulator/outbox?process_id={process_id}"))[
        "mails"
    ]
    link = next(m["link"] for m in mails if m["kind"] == "preconfirmation")
    response = await hass.call_service(
        "munich_termin", "confirm", {"link": link}, return_response=True
    )
    confirmed = response["booking"]
    assert confirmed["state"] == "confirmed"
    status = (await simulator.get("/_simulator/bookings"))["bookings"]
    assert [b["status"] for b in status if b["process_id"] == process_id] == [
        "confirmed"
    ]
    calendar = _entity(await hass.states(), "calendar.anna", "")
    start = datetime.fromisoformat(confirmed["start"])
    day = start.date().isoformat()
    events = await hass.get(
        f"/api/calendars/{calendar['entity_id']}"
        f"?start={day}T00:00:00Z&end={day}T23:59:59Z"
    )
    appointment = [
        event
        for event in events
        if datetime.fromisoformat(event["start"]["dateTime"]) == start
        and "Bürgerbüro Pasing" in str(event.get("location"))
    ]
    assert appointment, events

    # The status blueprint: /termin in the allowed chat answers with the watch.
    await telegram.post("/_standin/send", {"chat_id": CHAT_ID, "text": "/termin"})

    async def status_answer() -> str | None:
        chats = (await telegram.get("/_standin/messages"))["chats"]
        texts = [str(m["text"]) for m in chats.get(str(CHAT_ID), [])]
        return next((t for t in texts if t.startswith("Munich Termin")), None)

    answer = await _until(status_answer, what="the /termin answer")
    assert "Anna" in answer
    assert "booking confirmed" in answer

    # 6. The auto-booking watch: slow down its update so hass restarts mid-booking.
    await simulator.post(
        "/_simulator/faults",
        {"kind": "slow", "route": "update-appointment/", "times": 1, "delay": 20},
    )
    await _add_watch(
        hass,
        entry_id,
        name="Ben",
        offices=[RUPPERT],
        booking={
            "family_name": "Bauer",
            "email": BEN_EMAIL,
            "auto_book": True,
        },
    )

    async def reserved() -> bool:
        bookings = (await simulator.get("/_simulator/bookings"))["bookings"]
        return any(
            b["status"] == "reserved"
            for b in bookings
            if b["office_id"] == int(RUPPERT)
        )

    await _until(reserved, what="Ben's reservation")
    await hass.restart()

    async def ben_booked() -> list[dict[str, Any]] | None:
        bookings = (await simulator.get("/_simulator/bookings"))["bookings"]
        ben = [
            b
            for b in bookings
            if b.get("email") == "ben.bauer@example.org"
            and b["status"] == "preconfirmed"
        ]
        return ben or None

    ben = await _until(ben_booked, what="Ben's automatic booking", seconds=180)
    await asyncio.sleep(15)  # a second booking would show up by now
    bookings = (await simulator.get("/_simulator/bookings"))["bookings"]
    assert (
        len(
            [
                b
                for b in bookings
                if b.get("email") == "ben.bauer@example.org"
                and b["status"] in {"preconfirmed", "confirmed"}
            ]
        )
        == 1
    ), ben

    # 7. Unload; nothing of ours left; a clean log.
    await hass.ws(
        {"type": "config_entries/disable", "entry_id": entry_id, "disabled_by": "user"}
    )
    states = await hass.states()
    ours = [
        s
        for s in states
        if s["entity_id"].startswith(("sensor.anna", "sensor.ben"))
        and s["state"] != "unavailable"
    ]
    assert ours == []
    # Nothing of ours keeps running: no look goes to the city any more.
    before = (await simulator.get("/_simulator/stats"))["requests_by_route"]
    await asyncio.sleep(65)  # longer than the engine's longest interval
    after = (await simulator.get("/_simulator/stats"))["requests_by_route"]
    assert after == before
    assert _log_problems(hass.log_text()) == []


def _log_problems(log: str) -> list[str]:
    """Records of ours at WARNING or above, blocking calls, our tracebacks.

    A fresh offline Home Assistant logs errors of its own (core integrations
    whose packages are not installed, onboarding's discovery flows that need
    the internet); those are not ours. A traceback is ours when a frame or
    the record's logger is of munich_termin or mta_client.
    """
    records: list[str] = []
    for line in log.splitlines():
        if RECORD.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    problems = []
    for record in records:
        head = record.splitlines()[0]
        ours = OURS.search(head) or "munich_termin" in record or "mta_client" in record
        if "Detected blocking call" in record:
            problems.append(head)
        elif (
            ours
            and (" ERROR " in head or " WARNING " in head or "Traceback" in record)
            and "has not been tested by Home Assistant" not in head
        ):
            problems.append(record[:2000])
    return problems
