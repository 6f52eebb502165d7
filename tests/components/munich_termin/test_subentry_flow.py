"""The watch subentry flow: services, counts, offices and filters, booking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER, SubentryFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import SUBENTRY_WATCH
from mta_client import MTAConnectionError, MTAValidationError
from mta_client.watch import URGENCIES, Watch
from mta_client.watcher import Watcher

from .conftest import (
    EINBUERGERUNG,
    EINBUERGERUNGSBEHOERDE,
    EMAIL,
    FAMILY_NAME,
    ORLEANS,
    RUPPERT,
    TELEPHONE,
    WOHNSITZ,
    form_schema,
    watch_id,
)

ABMELDEN = 1063486  # at most once per appointment: no counts step
FUEHRERSCHEIN = 1071896  # the Führerscheinstelle takes no telephone number
FUEHRERSCHEINSTELLE = 10308174
ZUWANDERUNG = 10415066  # Servicestelle: the second text field is required
SERVICESTELLE = 54287

FILTERS = {
    "office_ids": [str(RUPPERT), str(ORLEANS)],
    "within_days": 14,
    "weekdays": ["mon", "wed"],
    "time_ranges": ["8:00-12:00", " ", "13:30-15:00"],
    "min_lead": {"hours": 2},
}
BOOKING = {"family_name": FAMILY_NAME, "email": EMAIL, "auto_book": True}


async def _start(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_WATCH), context={"source": SOURCE_USER}
    )


async def _next(
    hass: HomeAssistant, result: SubentryFlowResult, data: dict[str, Any]
) -> SubentryFlowResult:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


async def test_add_watch(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await _start(hass, loaded_entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "services"
    options = form_schema(result).schema["services"].config["options"]
    assert {"value": str(WOHNSITZ), "label": "Wohnsitzanmeldung"} in options

    result = await _next(hass, result, {"services": [str(WOHNSITZ)]})
    assert result["step_id"] == "counts"
    result = await _next(hass, result, {"Wohnsitzanmeldung": 2})
    assert result["step_id"] == "filters"
    offices = form_schema(result).schema["office_ids"].config["options"]
    assert {"value": str(RUPPERT), "label": "Bürgerbüro Ruppertstraße"} in offices
    assert all(o["value"] != str(EINBUERGERUNGSBEHOERDE) for o in offices)
    urgency = form_schema(result).schema["urgency"].config
    assert urgency["options"] == list(URGENCIES)
    assert urgency["translation_key"] == "urgency"
    assert _suggested(result)["urgency"] == "normal"

    result = await _next(hass, result, FILTERS)
    assert result["step_id"] == "booking"
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["email_required"].startswith("Bürgerbüro")
    result = await _next(hass, result, BOOKING)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Wohnsitzanmeldung"
    assert result["data"] == {
        "services": [{"service_id": WOHNSITZ, "count": 2}],
        "office_ids": [RUPPERT, ORLEANS],
        "within_days": 14,
        "weekdays": ["mon", "wed"],
        "time_ranges": ["08:00-12:00", "13:30-15:00"],
        "min_lead": {"hours": 2},
        "contact": {"family_name": FAMILY_NAME, "email": EMAIL},
        "auto_book": True,
        # Not chosen: the form's default.
        "urgency": "normal",
    }
    await hass.async_block_till_done()
    # The update listener reloaded the entry: the new watch runs.
    assert len(loaded_entry.runtime_data.watches) == 2


def _suggested(result: SubentryFlowResult) -> dict[str, Any]:
    """The values a form starts with, by field."""
    return {
        str(key): (key.description or {}).get("suggested_value")
        for key in form_schema(result).schema
    }


def _engine_watch(entry: MockConfigEntry, subentry_id: str) -> Watch:
    """The watch the coordinator's engine runs for a subentry."""
    watcher: Watcher = entry.runtime_data.watcher
    return next(w for w in watcher.watches if w.id == subentry_id)


def _plan_urgency(entry: MockConfigEntry, subentry_id: str) -> str:
    """The urgency the engine's plan gives the group of a subentry's watch."""
    watcher: Watcher = entry.runtime_data.watcher
    plan = watcher.explain()
    return next(g.urgency for g in plan.groups if subentry_id in g.watches)


async def test_add_urgent_watch(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": [str(ABMELDEN)]})
    result = await _next(hass, result, {**FILTERS, "urgency": "urgent"})
    assert result["step_id"] == "booking"
    result = await _next(hass, result, {"auto_book": False})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["urgency"] == "urgent"
    await hass.async_block_till_done()
    added = next(
        sid
        for sid, subentry in loaded_entry.subentries.items()
        if subentry.data.get("urgency") == "urgent"
    )
    # The coordinator's engine runs the new watch at its urgency, the old
    # watch (stored without one) at normal.
    assert loaded_entry.runtime_data.watches[added].urgency == "urgent"
    assert _engine_watch(loaded_entry, added).urgency == "urgent"
    assert _plan_urgency(loaded_entry, added) == "urgent"
    old = next(sid for sid in loaded_entry.subentries if sid != added)
    assert _engine_watch(loaded_entry, old).urgency == "normal"
    assert _plan_urgency(loaded_entry, old) == "normal"


async def test_urgency_must_be_one_of_the_choices(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": [str(ABMELDEN)]})
    with pytest.raises(InvalidData):
        await _next(hass, result, {**FILTERS, "urgency": "panic"})


async def test_add_watch_without_counts_and_contact(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(
        hass, result, {"name": " Abmelden ", "services": [str(ABMELDEN)]}
    )
    assert result["step_id"] == "filters"
    result = await _next(
        hass,
        result,
        {
            "office_ids": [str(RUPPERT)],
            "start_date": dt_util.now().date().isoformat(),
            "end_date": (dt_util.now().date() + timedelta(days=30)).isoformat(),
            "weekdays": ["fri"],
        },
    )
    result = await _next(hass, result, {"auto_book": False})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Abmelden"
    data = result["data"]
    assert "within_days" not in data
    assert data["contact"] == {}
    assert data["min_lead"] == {}
    assert data["time_ranges"] == []
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("services", "error"),
    [([], "no_services"), ([str(WOHNSITZ), str(EINBUERGERUNG)], "no_office")],
)
async def test_services_errors(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    services: list[str],
    error: str,
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": services})
    assert result["errors"] == {"services": error}
    result = await _next(hass, result, {"services": [str(ABMELDEN)]})
    assert result["step_id"] == "filters"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"office_ids": []}, {"office_ids": "no_offices"}),
        ({"weekdays": []}, {"weekdays": "no_weekdays"}),
        ({"time_ranges": ["12:00-08:00"]}, {"time_ranges": "invalid_time_range"}),
        ({"time_ranges": ["morning"]}, {"time_ranges": "invalid_time_range"}),
        (
            {"start_date": "2026-12-10", "end_date": "2026-12-01"},
            {"end_date": "end_before_start"},
        ),
        (
            {"start_date": "2020-01-01", "end_date": "2020-01-31"},
            {"base": "window_over"},
        ),
    ],
)
async def test_filter_errors(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": [str(ABMELDEN)]})
    result = await _next(hass, result, {**FILTERS, **changes})
    assert result["step_id"] == "filters"
    assert result["errors"] == errors
    result = await _next(hass, result, FILTERS)
    assert result["step_id"] == "booking"


async def test_filters_the_library_refuses(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": [str(ABMELDEN)]})
    with patch(
        "custom_components.munich_termin.config_flow.build_watch",
        side_effect=MTAValidationError("within_days", "too far"),
    ):
        result = await _next(hass, result, FILTERS)
    assert result["errors"] == {"base": "invalid_watch"}


@pytest.mark.parametrize(
    ("service", "office", "booking", "errors"),
    [
        (WOHNSITZ, RUPPERT, {"email": EMAIL}, {"family_name": "family_name_required"}),
        (
            WOHNSITZ,
            RUPPERT,
            {"family_name": FAMILY_NAME, "email": "zenzi+termin@example.org"},
            {"email": "invalid_email"},
        ),
        (
            WOHNSITZ,
            RUPPERT,
            {"family_name": FAMILY_NAME, "email": EMAIL, "telephone": "123"},
            {"telephone": "invalid_telephone"},
        ),
        (
            WOHNSITZ,
            RUPPERT,
            {"family_name": FAMILY_NAME, "email": EMAIL, "custom_textfield": "x" * 251},
            {"custom_textfield": "invalid_custom_textfield"},
        ),
        (WOHNSITZ, RUPPERT, {"family_name": FAMILY_NAME}, {"email": "email_required"}),
        (
            FUEHRERSCHEIN,
            FUEHRERSCHEINSTELLE,
            {"family_name": FAMILY_NAME, "email": EMAIL, "telephone": TELEPHONE},
            {"telephone": "telephone_not_accepted"},
        ),
        (
            EINBUERGERUNG,
            EINBUERGERUNGSBEHOERDE,
            {"family_name": FAMILY_NAME, "email": EMAIL, "custom_textfield": "AZ 1"},
            {"custom_textfield": "custom_textfield_not_accepted"},
        ),
        (
            ZUWANDERUNG,
            SERVICESTELLE,
            {"family_name": FAMILY_NAME, "email": EMAIL},
            {"custom_textfield2": "custom_textfield2_required"},
        ),
        (
            WOHNSITZ,
            RUPPERT,
            {"auto_book": True},
            {"auto_book": "auto_book_needs_contact"},
        ),
    ],
)
async def test_booking_errors(  # noqa: PLR0917 - parametrized
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    service: int,
    office: int,
    booking: dict[str, Any],
    errors: dict[str, str],
) -> None:
    result = await _start(hass, loaded_entry)
    result = await _next(hass, result, {"services": [str(service)]})
    if result["step_id"] == "counts":
        result = await _next(hass, result, {})
    result = await _next(
        hass, result, {"office_ids": [str(office)], "weekdays": ["mon"]}
    )
    result = await _next(hass, result, {"auto_book": False, **booking})
    assert result["step_id"] == "booking"
    assert result["errors"] == errors
    result = await _next(
        hass,
        result,
        {
            "family_name": FAMILY_NAME,
            "email": EMAIL,
            "custom_textfield2": "deutsch",
            "auto_book": False,
        }
        if service == ZUWANDERUNG
        else {"family_name": FAMILY_NAME, "email": EMAIL, "auto_book": False},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_reconfigure_watch(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    subentry_id = watch_id(loaded_entry)
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, subentry_id)
    assert result["step_id"] == "services"
    result = await _next(hass, result, {"name": "Umzug", "services": [str(WOHNSITZ)]})
    assert result["step_id"] == "counts"
    result = await _next(hass, result, {"Wohnsitzanmeldung": 3})
    assert result["step_id"] == "filters"
    result = await _next(hass, result, {**FILTERS, "office_ids": [str(ORLEANS)]})
    assert result["step_id"] == "booking"
    result = await _next(
        hass, result, {"family_name": "Huber", "email": EMAIL, "auto_book": False}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = loaded_entry.subentries[subentry_id]
    assert subentry.title == "Umzug"
    assert subentry.data["services"] == [{"service_id": WOHNSITZ, "count": 3}]
    assert subentry.data["office_ids"] == [ORLEANS]
    assert subentry.data["contact"]["family_name"] == "Huber"
    # Reloaded: the engine runs the changed watch.
    assert loaded_entry.runtime_data.watches[subentry_id].office_ids == [ORLEANS]


async def test_reconfigure_changes_the_urgency(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    subentry_id = watch_id(loaded_entry)
    # A watch from before urgency was asked for: no key, and it runs as normal.
    assert "urgency" not in loaded_entry.subentries[subentry_id].data
    assert _engine_watch(loaded_entry, subentry_id).urgency == "normal"
    for before, after in (("normal", "relaxed"), ("relaxed", "urgent")):
        result = await loaded_entry.start_subentry_reconfigure_flow(hass, subentry_id)
        result = await _next(hass, result, {"services": [str(WOHNSITZ)]})
        result = await _next(hass, result, {"Wohnsitzanmeldung": 1})
        assert result["step_id"] == "filters"
        # The form starts with the stored urgency (normal when none is).
        assert _suggested(result)["urgency"] == before
        result = await _next(hass, result, {**FILTERS, "urgency": after})
        result = await _next(hass, result, {"family_name": FAMILY_NAME, "email": EMAIL})
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert loaded_entry.subentries[subentry_id].data["urgency"] == after
        # Reloaded: the engine runs the watch at its new urgency.
        assert loaded_entry.runtime_data.watches[subentry_id].urgency == after
        assert _engine_watch(loaded_entry, subentry_id).urgency == after
        assert _plan_urgency(loaded_entry, subentry_id) == after


async def test_reconfigure_keeps_settings_without_a_relative_window(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    subentry_id = watch_id(loaded_entry)
    subentry = loaded_entry.subentries[subentry_id]
    data = {k: v for k, v in subentry.data.items() if k != "within_days"}
    hass.config_entries.async_update_subentry(loaded_entry, subentry, data=data)
    await hass.async_block_till_done()
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, subentry_id)
    result = await _next(hass, result, {"services": [str(WOHNSITZ)]})
    result = await _next(hass, result, {"Wohnsitzanmeldung": 1})
    schema = form_schema(result).schema
    suggested = {
        str(key): (key.description or {}).get("suggested_value") for key in schema
    }
    assert suggested["within_days"] is None
    assert suggested["office_ids"] == [str(RUPPERT)]


async def test_entry_not_loaded(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    result = await _start(hass, config_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"
    result = await config_entry.start_subentry_reconfigure_flow(
        hass, watch_id(config_entry)
    )
    assert result["reason"] == "entry_not_loaded"


async def test_catalogue_unavailable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    with patch(
        "mta_client.client.MTAClient.get_catalogue",
        side_effect=MTAConnectionError("down"),
    ):
        result = await _start(hass, loaded_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
