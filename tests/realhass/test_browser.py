"""What a person sees: the watch's device page and a dashboard, in Chromium.

Headless Debian Chromium driven by Playwright (its own browser download does
not work here, so ``executable_path`` points at ``/usr/bin/chromium``). The
screenshots are saved under ``screenshots/`` (git-ignored) and the test reads
the rendered page: entity names and the slot values must be on it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from typing import Any

import pytest

from devtools.realhass import RealHass

from .conftest import SCREENSHOTS, Service
from .test_real_home_assistant import WOHNSITZ

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright  # noqa: PLC0415
    except ImportError:  # pragma: no cover - a machine without the package
        return None
    return async_playwright


async def _seen(page: Any, text: str, *, ms: float = 30_000) -> None:
    """Wait until ``text`` is shown (visible, in any shadow root; any case)."""
    locator = page.get_by_text(text).locator("visible=true").first
    await locator.wait_for(timeout=ms)


async def _watch_with_slots(hass: RealHass, simulator: Service) -> str:
    api = f"{simulator.url}/buergeransicht/api/citizen/"
    result = await hass.config_flow("munich_termin", {"advanced": {"base_url": api}})
    entry_id = str(result["result"]["entry_id"])
    flow = await hass.subentry_flow(
        entry_id, "watch", {"name": "Anna", "services": [WOHNSITZ]}
    )
    base = "/api/config/config_entries/subentries/flow/"
    if flow.get("step_id") == "counts":
        flow = await hass.post(
            f"{base}{flow['flow_id']}",
            {field["name"]: 1 for field in flow["data_schema"]},
        )
    flow = await hass.post(
        f"{base}{flow['flow_id']}",
        {
            "office_ids": ["54261", "102522"],
            "within_days": 14,
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        },
    )
    flow = await hass.post(f"{base}{flow['flow_id']}", {"auto_book": False})
    assert flow["type"] == "create_entry", flow
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = await hass.state("sensor.anna_fitting_slots")
        if state and state["state"] not in {"0", "unknown", "unavailable"}:
            return str(state["state"])
        await asyncio.sleep(0.5)
    pytest.fail("the watch's sensors never showed slots")


async def _dashboard(hass: RealHass) -> str:
    await hass.ws(
        {
            "type": "lovelace/dashboards/create",
            "url_path": "termin-test",
            "title": "Termin",
            "mode": "storage",
            "require_admin": False,
            "show_in_sidebar": True,
        }
    )
    await hass.ws(
        {
            "type": "lovelace/config/save",
            "url_path": "termin-test",
            "config": {
                "views": [
                    {
                        "title": "Anna",
                        "cards": [
                            {
                                "type": "entities",
                                "title": "Anna's appointment",
                                "entities": [
                                    "sensor.anna_earliest_slot",
                                    "sensor.anna_fitting_slots",
                                    "binary_sensor.anna_slot_available",
                                    "sensor.anna_booking_status",
                                ],
                            }
                        ],
                    }
                ]
            },
        }
    )
    return "/termin-test/0"


@pytest.mark.timeout(600)
async def test_device_page_and_dashboard_show_the_watch(
    real_hass: RealHass, simulator: Service
) -> None:
    playwright = _playwright()
    if CHROMIUM is None or playwright is None:
        pytest.skip("no Chromium (Debian's chromium package) or no playwright here")
    hass = real_hass
    count = await _watch_with_slots(hass, simulator)
    devices = await hass.ws({"type": "config/device_registry/list"})
    device = next(d for d in devices if d.get("name") == "Anna")
    dashboard = await _dashboard(hass)
    token = await hass.long_lived_token()
    tokens = json.dumps(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 1800,
            "hassUrl": hass.base,
            "clientId": hass.client_id,
            "expires": 9999999999999,
            "refresh_token": "",
        }
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    async with playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.add_init_script(
                f"window.localStorage.setItem('hassTokens', {json.dumps(tokens)});"
                "window.localStorage.setItem('selectedLanguage', '\"en\"');"
            )
            await page.goto(f"{hass.base}/config/devices/device/{device['id']}")
            for text in ("Earliest slot", "Fitting slots", "Booking status", "Idle"):
                await _seen(page, text, ms=60_000)
            await _seen(page, f"{count} slots")
            await page.wait_for_timeout(1500)
            await page.screenshot(path=str(SCREENSHOTS / "device.png"), full_page=True)

            await page.goto(f"{hass.base}{dashboard}")
            await _seen(page, "Anna's appointment", ms=60_000)
            for text in ("Earliest slot", "Fitting slots", "Slot available"):
                await _seen(page, text)
            await _seen(page, f"{count} slots")
            await page.wait_for_timeout(1000)
            await page.screenshot(
                path=str(SCREENSHOTS / "dashboard.png"), full_page=True
            )
        finally:
            await browser.close()
    assert (SCREENSHOTS / "device.png").stat().st_size > 10_000
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 10_000
