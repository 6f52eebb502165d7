"""Whatever a person types: every flow field and action field, fuzzed.

Each value either passes or is refused with a translated message (a form
error whose key the translation files have, or a ``ServiceValidationError`` /
``HomeAssistantError`` of this integration with a translated key, or Home
Assistant's own schema error), and nothing changes: no entry, no subentry,
no booking. No URL leaves 127.0.0.1 (the fuzzed server URLs are either
refused before any connection or point at a closed local port).
"""

from __future__ import annotations

import json
from pathlib import Path
import string
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from hypothesis import HealthCheck, given, settings, strategies as st
import probatio as vol
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.munich_termin.const import DOMAIN, SUBENTRY_WATCH

from .conftest import RUPPERT, WATCH_ID, WOHNSITZ

TRANSLATIONS = json.loads(
    (
        Path(__file__).resolve().parents[3]
        / "custom_components/munich_termin/translations/en.json"
    ).read_text(encoding="utf-8")
)
ACTION_KEYS = set(TRANSLATIONS["exceptions"])
CONFIG_ERRORS = set(TRANSLATIONS["config"]["error"])
WATCH_ERRORS = set(TRANSLATIONS["config_subentries"][SUBENTRY_WATCH]["error"])

# Odd text a person (or a pasted e-mail) may bring.
ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.printable, max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x1b[31mred",
            "a@b",
            "anna+x@example.org",
            "+49 89 123",
            "0" * 300,
            "😀",
            "\ud800",
            "null",
            "../../etc",
        ]
    ),
)
ANY_VALUE = st.one_of(
    ODD_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(ODD_TEXT, max_size=3),
)


def examples(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` values of a strategy, the same on every run (no database)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


async def _action_is_refused_or_fine(
    hass: HomeAssistant, action: str, data: dict[str, Any]
) -> str:
    """How the call ended: ``fine``, ``refused`` (ours) or ``schema``."""
    error: HomeAssistantError | None = None
    try:
        await hass.services.async_call(
            DOMAIN, action, data, blocking=True, return_response=True
        )
    except vol.Invalid:
        return "schema"  # Home Assistant's own schema check, its own message
    except HomeAssistantError as err:
        error = err
    if error is None:
        return "fine"
    if isinstance(error, ServiceValidationError) and error.translation_domain != DOMAIN:
        assert error.translation_domain == "homeassistant", error
        return "schema"
    assert error.translation_domain == DOMAIN, error
    assert error.translation_key in ACTION_KEYS, error.translation_key
    return "refused"


async def test_book_fields(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Any
) -> None:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "watch": st.one_of(ODD_TEXT, st.just(WATCH_ID)),
            "offer": ANY_VALUE,
            "office_id": ANY_VALUE,
            "start": ANY_VALUE,
            "device_id": ODD_TEXT,
        },
    )
    before = len(sim.bookings.processes)
    outcomes: set[str] = set()
    for data in examples(fields, 120):
        if data.get("watch") == WATCH_ID and set(data) == {"watch"}:
            continue  # the one valid call: it would book for real
        outcomes.add(await _action_is_refused_or_fine(hass, "book", data))
    # Nothing was booked: every odd call was refused before the city, by
    # Home Assistant's schema or by the integration's own checks.
    assert len(sim.bookings.processes) == before
    assert {"refused", "schema"} <= outcomes


async def test_confirm_cancel_and_find_slots_fields(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Any
) -> None:
    before = len(sim.bookings.processes)
    links = {
        await _action_is_refused_or_fine(hass, "confirm", {"link": link})
        for link in examples(ANY_VALUE, 60)
    }
    assert "refused" in links
    assert "fine" not in links
    for value in examples(ANY_VALUE, 40):
        await _action_is_refused_or_fine(hass, "cancel", {"watch": value})
    finds = st.fixed_dictionaries(
        {"services": st.one_of(st.lists(ODD_TEXT, max_size=3), ANY_VALUE)},
        optional={
            "office_ids": st.one_of(st.lists(ANY_VALUE, max_size=3), ANY_VALUE),
            "start_date": ANY_VALUE,
            "end_date": ANY_VALUE,
        },
    )
    for data in examples(finds, 80):
        await _action_is_refused_or_fine(hass, "find_slots", data)
    assert len(sim.bookings.processes) == before


async def test_server_url_field(hass: HomeAssistant) -> None:
    urls = st.one_of(
        ODD_TEXT,
        st.builds(
            "http://127.0.0.1:{}/{}".format,
            st.integers(min_value=1, max_value=9),  # closed ports below 10
            st.text(alphabet=string.ascii_letters + "/%?#", max_size=12),
        ),
        st.sampled_from(["ftp://127.0.0.1/", "http://", "127.0.0.1", "http://[::1"]),
    )
    for url in examples(urls, 40):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_USER}
        )
        try:
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"advanced": {"base_url": url}}
            )
        except InvalidData:
            continue  # the form's own schema refused it
        assert result["type"] is FlowResultType.FORM, (url, result)
        assert set(result["errors"] or {}).issubset({"base", "advanced", "base_url"})
        assert set((result["errors"] or {}).values()) <= CONFIG_ERRORS
        hass.config_entries.flow.async_abort(result["flow_id"])
    assert hass.config_entries.async_entries(DOMAIN) == []


async def _watch_flow_to(
    hass: HomeAssistant, entry: MockConfigEntry, step: str
) -> dict[str, Any]:
    manager = hass.config_entries.subentries
    result: Any = await manager.async_init(
        (entry.entry_id, SUBENTRY_WATCH), context={"source": SOURCE_USER}
    )
    result = await manager.async_configure(
        result["flow_id"], {"services": [str(WOHNSITZ)]}
    )
    if result["step_id"] == "counts":
        result = await manager.async_configure(
            result["flow_id"], {"Wohnsitzanmeldung": 1}
        )
    if step == "booking":
        result = await manager.async_configure(
            result["flow_id"],
            {"office_ids": [str(RUPPERT)], "within_days": 14, "weekdays": ["mon"]},
        )
    assert result["step_id"] == step, result
    return dict(result)


def _form_refused_or_next(result: Any) -> None:
    if result["type"] is FlowResultType.FORM and result.get("errors"):
        assert set(result["errors"].values()) <= WATCH_ERRORS, result["errors"]


async def test_watch_filter_and_booking_fields(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    manager = hass.config_entries.subentries
    subentries = dict(loaded_entry.subentries)
    filters = st.fixed_dictionaries(
        {"office_ids": st.just([str(RUPPERT)]), "weekdays": st.just(["mon"])},
        optional={
            "within_days": st.one_of(st.integers(-5, 400), st.floats(allow_nan=False)),
            "start_date": ODD_TEXT,
            "end_date": ODD_TEXT,
            "time_ranges": st.lists(ODD_TEXT, max_size=3),
            "min_lead": st.dictionaries(
                st.sampled_from(["days", "hours", "minutes", "seconds"]),
                st.integers(-10, 10**6),
                max_size=2,
            ),
        },
    )
    for data in examples(filters, 40):
        result = await _watch_flow_to(hass, loaded_entry, "filters")
        try:
            result = dict(await manager.async_configure(result["flow_id"], data))
        except InvalidData:
            continue
        _form_refused_or_next(result)
        manager.async_abort(result["flow_id"])
    people = st.fixed_dictionaries(
        {"auto_book": st.booleans()},
        optional={
            "family_name": ODD_TEXT,
            "email": ODD_TEXT,
            "telephone": ODD_TEXT,
            "custom_textfield": ODD_TEXT,
            "custom_textfield2": ODD_TEXT,
        },
    )
    for data in examples(people, 40):
        result = await _watch_flow_to(hass, loaded_entry, "booking")
        try:
            result = dict(await manager.async_configure(result["flow_id"], data))
        except InvalidData:
            continue
        if result["type"] is FlowResultType.CREATE_ENTRY:
            # Accepted: then it was valid for the city too; take it out again.
            await hass.async_block_till_done()
            for subentry_id in set(loaded_entry.subentries) - set(subentries):
                hass.config_entries.async_remove_subentry(loaded_entry, subentry_id)
            await hass.async_block_till_done()
            continue
        _form_refused_or_next(result)
        assert result["type"] is FlowResultType.FORM
        manager.async_abort(result["flow_id"])
    assert set(loaded_entry.subentries) == set(subentries)
