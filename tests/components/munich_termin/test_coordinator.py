"""The coordinator: the engine's pacing, failures, repairs and reminders."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
import logging
from typing import Any
from unittest.mock import patch

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import UpdateFailed
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.munich_termin.const import CONF_BASE_URL, DOMAIN, SUBENTRY_WATCH
from custom_components.munich_termin.coordinator import (
    MunichTerminCoordinator,
    TimedClient,
)
from custom_components.munich_termin.watches import build_watch
from mta_client import (
    MTABlockedError,
    MTAClient,
    MTAConnectionError,
    MTAError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAServerError,
)
from mta_client.simulator import CaptchaConfig, Simulator, SimulatorServer
from mta_client.store import StoreError
from mta_client.watch import BookingState
from mta_client.watcher import (
    BookingStatus,
    PollError,
    PollResult,
    Watcher,
    WatchStatus,
)
from tests.conftest import FakeClock

from .conftest import BERLIN, WATCH_ID, setup_entry, state_of, watch_data

GROUP = "group:1063475x1"


def _coordinator(entry: MockConfigEntry) -> MunichTerminCoordinator:
    coordinator: MunichTerminCoordinator = entry.runtime_data.coordinator
    return coordinator


def _failure(entry: MockConfigEntry) -> UpdateFailed:
    """The coordinator's last failure: a look that failed is an UpdateFailed."""
    failure = _coordinator(entry).last_exception
    assert isinstance(failure, UpdateFailed)
    return failure


def _succeeded(coordinator: MunichTerminCoordinator) -> bool:
    """``last_update_success`` read afresh.

    mypy keeps an asserted ``coordinator.last_update_success`` narrowed across
    the refresh that changes it, which would make the asserts after it
    unreachable.
    """
    return coordinator.last_update_success


def _result(
    entry: MockConfigEntry,
    *errors: PollError,
    delay: float = 60.0,
    requests: int = 1,
    statuses: dict[str, WatchStatus] | None = None,
) -> PollResult:
    return PollResult(
        events=(),
        statuses=statuses
        if statuses is not None
        else entry.runtime_data.watcher.statuses(),
        next_due=0.0,
        delay=delay,
        errors=errors,
        requests=requests,
    )


async def _refresh(hass: HomeAssistant, entry: MockConfigEntry, result: Any) -> None:
    mock = (
        {"side_effect": result}
        if isinstance(result, Exception)
        else {"return_value": result}
    )
    with patch.object(entry.runtime_data.watcher, "poll", **mock):
        await _coordinator(entry).async_refresh()
    await hass.async_block_till_done()


def _available(hass: HomeAssistant, entity_id: str) -> bool:
    return state_of(hass, entity_id).state != "unavailable"


@pytest.mark.parametrize(
    ("error", "what", "key", "issue"),
    [
        (MTABlockedError(), GROUP, "blocked", "ip_blocked"),
        (MTAMaintenanceError(), GROUP, "maintenance", None),
        (MTARateLimitError(retry_after=120), GROUP, "rate_limited", None),
        (MTAConnectionError("down"), GROUP, "cannot_connect", None),
        (
            MTAInvalidResponseError("html"),
            "catalogue",
            "invalid_response",
            "api_changed",
        ),
        (MTAServerError(), "captcha", "update_failed", None),
    ],
)
async def test_entry_wide_failures(  # noqa: PLR0917 - parametrized
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    error: MTAError,
    what: str,
    key: str,
    issue: str | None,
) -> None:
    coordinator = _coordinator(loaded_entry)
    await _refresh(
        hass,
        loaded_entry,
        _result(
            loaded_entry, PollError(error=error, retry_after=900, what=what), delay=900
        ),
    )
    assert _succeeded(coordinator) is False
    failure = _failure(loaded_entry)
    assert failure.translation_key == key
    assert failure.translation_domain == DOMAIN
    assert failure.retry_after is not None
    assert failure.retry_after >= 900
    assert not _available(hass, "sensor.wohnsitz_earliest_slot")
    # The connectivity sensor stays, and tells.
    assert _available(hass, "binary_sensor.munich_termin_city_api_reachable")
    registry = ir.async_get(hass)
    if issue is not None:
        assert registry.async_get_issue(DOMAIN, issue) is not None
    # The next good look brings everything back and clears the repair.
    await _refresh(hass, loaded_entry, _result(loaded_entry))
    assert coordinator.last_update_success is True
    assert _available(hass, "sensor.wohnsitz_earliest_slot")
    assert (
        state_of(hass, "binary_sensor.munich_termin_city_api_reachable").state == "on"
    )
    if issue is not None:
        assert registry.async_get_issue(DOMAIN, issue) is None


async def test_rate_limit_waits_its_retry_after(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    error = MTARateLimitError(retry_after=1800)
    await _refresh(
        hass,
        loaded_entry,
        _result(
            loaded_entry, PollError(error=error, retry_after=1800, what=GROUP), delay=61
        ),
    )
    assert _failure(loaded_entry).retry_after == 1800


async def test_unreachable(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    error = PollError(error=MTAConnectionError("down"), retry_after=60, what=GROUP)
    await _refresh(hass, loaded_entry, _result(loaded_entry, error))
    assert (
        state_of(hass, "binary_sensor.munich_termin_city_api_reachable").state == "off"
    )
    # A poll with nothing due changes nothing.
    await _refresh(hass, loaded_entry, _result(loaded_entry, requests=0))
    assert (
        state_of(hass, "binary_sensor.munich_termin_city_api_reachable").state == "off"
    )


async def test_a_failed_watch_goes_unavailable_and_comes_back(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    failure = PollError(
        error=MTAServerError(),
        retry_after=60,
        what="day:1063475x1:2026-12-01",
        watch_ids=(WATCH_ID,),
    )
    await _refresh(hass, loaded_entry, _result(loaded_entry, failure))
    assert _coordinator(loaded_entry).last_update_success is True
    assert not _available(hass, "sensor.wohnsitz_earliest_slot")
    assert _available(hass, "sensor.munich_termin_last_successful_check")
    await _refresh(hass, loaded_entry, _result(loaded_entry, failure))
    assert caplog.text.count("looking for slots failed; unavailable") == 1
    other = PollError(
        error=MTAServerError(),
        retry_after=60,
        what="group:1x1",
        watch_ids=("another-watch",),
    )
    await _refresh(hass, loaded_entry, _result(loaded_entry, other))
    assert _available(hass, "sensor.wohnsitz_earliest_slot")
    assert caplog.text.count("looking for slots works again") == 1
    booking = PollError(
        error=StoreError("disk"),
        retry_after=0,
        what=f"booking:{WATCH_ID}",
        watch_ids=(WATCH_ID,),
    )
    await _refresh(hass, loaded_entry, _result(loaded_entry, booking))
    assert not _available(hass, "sensor.wohnsitz_earliest_slot")


async def test_store_failure(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    await _refresh(hass, loaded_entry, StoreError("disk full"))
    assert _failure(loaded_entry).translation_key == "store_failed"


async def test_long_maintenance_is_a_repair(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, loaded_entry: MockConfigEntry
) -> None:
    registry = ir.async_get(hass)
    failure = PollError(error=MTAMaintenanceError(), retry_after=900, what=GROUP)
    await _refresh(hass, loaded_entry, _result(loaded_entry, failure))
    assert registry.async_get_issue(DOMAIN, "maintenance") is None
    frozen.tick(timedelta(minutes=61))
    await _refresh(hass, loaded_entry, _result(loaded_entry, failure))
    assert registry.async_get_issue(DOMAIN, "maintenance") is not None
    await _refresh(hass, loaded_entry, _result(loaded_entry))
    assert registry.async_get_issue(DOMAIN, "maintenance") is None


async def test_activation_reminder(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, loaded_entry: MockConfigEntry
) -> None:
    from homeassistant.util import dt as dt_util  # noqa: PLC0415

    deadline = dt_util.utcnow() + timedelta(minutes=30)
    status = WatchStatus(
        watch_id=WATCH_ID,
        slots=(),
        booking=BookingStatus(
            state=BookingState.BOOKED,
            office_id=10489,
            start=dt_util.utcnow() + timedelta(days=1),
            process_id=1,
            activation_deadline=deadline,
        ),
        last_checked=dt_util.utcnow(),
    )
    await _refresh(
        hass, loaded_entry, _result(loaded_entry, statuses={WATCH_ID: status})
    )
    assert state_of(hass, "event.wohnsitz_events").attributes["event_type"] != (
        "activation_due"
    )
    frozen.tick(timedelta(minutes=21))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    state = state_of(hass, "event.wohnsitz_events")
    assert state.attributes["event_type"] == "activation_due"
    assert state.attributes["activation_deadline"] == deadline.isoformat()
    # Once per deadline, however often the coordinator refreshes.
    fired = state.last_changed
    await _refresh(
        hass, loaded_entry, _result(loaded_entry, statuses={WATCH_ID: status})
    )
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert state_of(hass, "event.wohnsitz_events").last_changed == fired
    # A new deadline (another booking) replaces the reminder; none is left after.
    later = WatchStatus(
        watch_id=WATCH_ID,
        slots=(),
        booking=BookingStatus(state=BookingState.IDLE),
        last_checked=None,
    )
    await _refresh(
        hass, loaded_entry, _result(loaded_entry, statuses={WATCH_ID: later})
    )
    assert _coordinator(loaded_entry)._reminders == {}


async def test_past_deadline_needs_no_reminder(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    from homeassistant.util import dt as dt_util  # noqa: PLC0415

    status = WatchStatus(
        watch_id=WATCH_ID,
        slots=(),
        booking=BookingStatus(
            state=BookingState.BOOKED,
            activation_deadline=dt_util.utcnow() - timedelta(minutes=1),
        ),
        last_checked=None,
    )
    await _refresh(
        hass, loaded_entry, _result(loaded_entry, statuses={WATCH_ID: status})
    )
    assert _coordinator(loaded_entry)._reminders == {}


async def test_requests_in_the_last_hour(
    hass: HomeAssistant, frozen: FrozenDateTimeFactory, loaded_entry: MockConfigEntry
) -> None:
    coordinator = _coordinator(loaded_entry)
    first = coordinator.requests_last_hour
    assert first == loaded_entry.runtime_data.client.budget.sent
    frozen.tick(timedelta(minutes=61))
    await _refresh(hass, loaded_entry, _result(loaded_entry, requests=0))
    frozen.tick(timedelta(minutes=1))
    await _refresh(hass, loaded_entry, _result(loaded_entry, requests=0))
    # The requests of the first look are more than an hour old now.
    assert coordinator.requests_last_hour == 0


# --- pacing ------------------------------------------------------------------------

STRETCH = 24 * 3600.0  # a whole Monday: the three release windows and quiet time


def _city(clock: FakeClock) -> Simulator:
    return Simulator(
        clock=clock,
        scenario="munich-weekday",
        seed=3,
        captcha=CaptchaConfig(cost=5),
        rate_limit=60,
    )


@pytest.mark.parametrize(
    ("stored", "urgency"),
    [
        ({}, "normal"),
        ({"urgency": "relaxed"}, "relaxed"),
        ({"urgency": "urgent"}, "urgent"),
    ],
)
async def test_the_engine_runs_a_watch_at_its_urgency(
    hass: HomeAssistant,
    server: SimulatorServer,
    stored: dict[str, Any],
    urgency: str,
) -> None:
    """The subentry's urgency (none stored: normal) is the Watch's, and the plan's."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_BASE_URL: server.base_url},
        subentries_data=[
            ConfigSubentryDataWithId(
                data=watch_data(**stored),
                subentry_id=WATCH_ID,
                subentry_type=SUBENTRY_WATCH,
                title="Wohnsitz",
                unique_id=None,
            )
        ],
    )
    await setup_entry(hass, entry)
    watcher = entry.runtime_data.watcher
    assert [w.urgency for w in watcher.watches] == [urgency]
    (group,) = watcher.explain().groups
    assert group.urgency == urgency
    policy = watcher.policy
    assert group.requests_per_day == pytest.approx(
        policy.requests_per_day * policy.urgency_factor(urgency)
    )


async def test_pacing_is_the_engines(
    hass: HomeAssistant, server: SimulatorServer
) -> None:
    """Driven by the coordinator, the engine asks exactly what it asks alone.

    The coordinator comes back after the delay each poll names; over a
    simulated Monday (all three release windows included) Home Assistant's run
    and the bare engine send the same requests, and the city never answers 429.
    """
    start = datetime(2026, 11, 23, 0, 0, tzinfo=BERLIN).timestamp()
    clock = FakeClock(start)
    city = _city(clock)
    async with SimulatorServer(city) as running:
        entry = MockConfigEntry(
            domain=DOMAIN,
            data={CONF_BASE_URL: running.base_url},
            subentries_data=[
                ConfigSubentryDataWithId(
                    data=watch_data(office_ids=[10489, 102522], within_days=60),
                    subentry_id=WATCH_ID,
                    subentry_type=SUBENTRY_WATCH,
                    title="Wohnsitz",
                    unique_id=None,
                )
            ],
        )
        with patch(
            "custom_components.munich_termin.TimedClient",
            partial(TimedClient, clock=clock),
        ):
            await setup_entry(hass, entry)
        coordinator = _coordinator(entry)
        intervals: list[float] = []
        with patch.object(coordinator, "_schedule_refresh"):
            while clock.now - start < STRETCH:
                interval = coordinator.engine_delay
                assert interval is not None
                # Home Assistant comes back then (plus the second's fraction
                # its scheduler drops).
                assert coordinator.update_interval is not None
                assert 0 <= coordinator.update_interval.total_seconds() - interval < 1
                intervals.append(interval)
                clock.now += interval
                await coordinator.async_refresh()
                assert coordinator.last_update_success
        ha_requests = dict(city.stats.requests_by_route)
        await hass.config_entries.async_unload(entry.entry_id)
    assert city.stats.rate_limited == 0
    # Denser inside the windows (30 s) than outside (60 s), as the engine paces.
    assert min(intervals) < 40 < max(intervals)

    clock = FakeClock(start)
    bare_city = _city(clock)
    async with (
        SimulatorServer(bare_city) as running,
        aiohttp.ClientSession() as session,
    ):
        watcher = Watcher(
            MTAClient(session=session, base_url=running.base_url, clock=clock)
        )
        watcher.add(
            build_watch(
                WATCH_ID, watch_data(office_ids=[10489, 102522], within_days=60)
            )
        )
        result = await watcher.poll()
        while clock.now - start < STRETCH:
            clock.now += max(result.delay, 1.0)
            result = await watcher.poll()
        await watcher.aclose()
    assert dict(bare_city.stats.requests_by_route) == ha_requests
    assert bare_city.stats.rate_limited == 0
