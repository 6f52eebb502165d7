"""A real ``hass`` process, the simulator and the Telegram stand-in.

These tests run in their own pytest invocation without the
pytest-homeassistant-custom-component plugin (it blocks sockets and would
patch Home Assistant in this process): ``scripts/test`` runs
``pytest -p no:pytest_homeassistant_custom_component tests/realhass``.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import signal
import sys
from typing import Any

import aiohttp
import pytest

from devtools.realhass import RealHass, free_port, write_config

BOT_TOKEN = "987654:E2E-token-for-the-stand-in"
CHAT_ID = 515151
USERNAME = "e2e"
PASSWORD = "e2e-password-1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse to run beside the phacc plugin (it blocks sockets)."""
    del items
    if "pytest_homeassistant_custom_component.plugins" in sys.modules:
        # Only reached when someone runs tests/realhass in the main run.
        pytest.exit(
            "tests/realhass must run without the phacc plugin: "
            "scripts/test tests/realhass (pytest -p no:homeassistant tests/realhass)",
            returncode=4,
        )


@dataclass
class Service:
    """A helper process and its base URL."""

    process: asyncio.subprocess.Process
    url: str

    async def get(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}{path}") as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    async def post(self, path: str, body: Any) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}{path}", json=body) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()


async def _spawn(log: Path, *argv: str) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()


async def _wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} did not come up")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


@pytest.fixture(name="simulator")
async def simulator_fixture(tmp_path: Path) -> AsyncIterator[Service]:
    port = free_port()
    process = await _spawn(
        tmp_path / "simulator.log",
        str(Path(sys.executable).with_name("mta")),
        "simulate",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--scenario",
        "fixed",
        "--control",
    )
    service = Service(process, f"http://127.0.0.1:{port}")
    try:
        await _wait_http(f"{service.url}/_simulator/")
        yield service
    finally:
        await _stop(process)


@pytest.fixture(name="telegram")
async def telegram_fixture(tmp_path: Path) -> AsyncIterator[Service]:
    port = free_port()
    process = await _spawn(
        tmp_path / "telegram.log",
        sys.executable,
        "-m",
        "mta_client.telegram_standin",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--token",
        BOT_TOKEN,
        "--chat-id",
        str(CHAT_ID),
    )
    service = Service(process, f"http://127.0.0.1:{port}")
    try:
        await _wait_http(f"{service.url}/_standin/messages")
        yield service
    finally:
        await _stop(process)


@pytest.fixture(name="hass_config")
def hass_config_fixture(tmp_path: Path) -> tuple[Path, int]:
    config = tmp_path / "config"
    port = free_port()
    write_config(config, port=port)
    return config, port


@pytest.fixture(name="real_hass")
async def real_hass_fixture(hass_config: tuple[Path, int]) -> AsyncIterator[RealHass]:
    config, port = hass_config
    hass = RealHass(config, port=port)
    try:
        await hass.start()
        await hass.onboard(username=USERNAME, password=PASSWORD)
        yield hass
    finally:
        await hass.stop()
