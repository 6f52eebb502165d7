"""``scripts/develop``: a real Home Assistant with the integration, offline.

Starts, all on 127.0.0.1:

* the city's simulator with its control surface (``mta simulate --control``),
* the project's stand-in for the Telegram Bot API,
* Home Assistant (``hass --skip-pip``) with the config folder ``config/``
  (git-ignored) and ``custom_components/munich_termin`` linked into it,

and, on the first run, onboards Home Assistant (user ``dev``), sets up
Home Assistant's own ``telegram_bot`` (polling, API endpoint = the stand-in,
one allowed chat) and ``munich_termin`` (pointed at the simulator, alerts
forwarded through the ``telegram_bot`` notify entity) through their config
flows, as the frontend would. Ctrl-C stops every process it started, and
only those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from pathlib import Path
import signal
import sys
from typing import Any

import aiohttp

from .realhass import ROOT, HassError, RealHass, write_config

USERNAME = "dev"
PASSWORD = "munich-termin-dev"  # noqa: S105 - a local development login, printed
BOT_TOKEN = "123456:DEV-TOKEN-for-the-local-stand-in"  # noqa: S105
CHAT_ID = 424242
STATE_FILE = ".develop.json"


async def _spawn(*argv: str, log: Path) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()


async def _wait_http(url: str, *, seconds: float = 30) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(seconds * 5)):
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            await asyncio.sleep(0.2)
    msg = f"{url} did not answer within {seconds:.0f} s"
    raise HassError(msg)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def set_up_telegram(hass: RealHass, *, api_url: str) -> dict[str, Any]:
    """``telegram_bot`` through its config flow: polling, the stand-in, one chat."""
    result = await hass.config_flow(
        "telegram_bot",
        {
            "platform": "polling",
            "api_key": BOT_TOKEN,
            "additional_settings": {"api_endpoint": api_url},
        },
    )
    if result.get("type") != "create_entry":
        msg = f"telegram_bot flow: {json.dumps(result)[:400]}"
        raise HassError(msg)
    entry_id = result["result"]["entry_id"]
    chat = await hass.subentry_flow(entry_id, "allowed_chat_ids", {"chat_id": CHAT_ID})
    if chat.get("type") != "create_entry":
        msg = f"telegram_bot chat subentry flow: {json.dumps(chat)[:400]}"
        raise HassError(msg)
    return dict(result["result"])


async def telegram_notify_entity(hass: RealHass) -> str | None:
    """The notify entity telegram_bot made for the allowed chat."""
    for _ in range(60):
        registry = await hass.ws({"type": "config/entity_registry/list"})
        for entity in registry:
            if entity.get("platform") == "telegram_bot" and str(
                entity.get("entity_id", "")
            ).startswith("notify."):
                return str(entity["entity_id"])
        await asyncio.sleep(0.5)
    return None


async def set_up_munich_termin(
    hass: RealHass, *, base_url: str, notify_entity: str | None
) -> dict[str, Any]:
    """``munich_termin`` through its config flow, pointed at the simulator."""
    result = await hass.config_flow(
        "munich_termin", {"advanced": {"base_url": base_url}}
    )
    if result.get("type") != "create_entry":
        msg = f"munich_termin flow: {json.dumps(result)[:400]}"
        raise HassError(msg)
    entry = dict(result["result"])
    if notify_entity is not None:
        await hass.options_flow(
            entry["entry_id"],
            {
                "notify_entities": [notify_entity],
                "telegram": {},
                "alert_new": True,
                "alert_gone": False,
                "alert_booking": True,
            },
        )
    return entry


async def develop(args: argparse.Namespace) -> None:
    """Run everything until Ctrl-C."""
    config = Path(args.config).resolve()
    logs = config / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    sim_url = f"http://127.0.0.1:{args.simulator_port}/buergeransicht/api/citizen/"
    tg_url = f"http://127.0.0.1:{args.telegram_port}"
    children: list[asyncio.subprocess.Process] = []
    hass = RealHass(config, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        children.append(
            await _spawn(
                str(bin_dir / "mta"),
                "simulate",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.simulator_port),
                "--control",
                log=logs / "simulator.log",
            )
        )
        children.append(
            await _spawn(
                sys.executable,
                "-m",
                "mta_client.telegram_standin",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.telegram_port),
                "--token",
                BOT_TOKEN,
                "--chat-id",
                str(CHAT_ID),
                log=logs / "telegram.log",
            )
        )
        await _wait_http(f"{sim_url}offices-and-services/")
        await _wait_http(f"{tg_url}/_standin/messages")
        write_config(config, port=args.port)
        state_file = config / STATE_FILE
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        if state.get("token"):
            hass.token = state["token"]
        await hass.start()
        if not state.get("token"):
            state["token"] = await hass.onboard(username=USERNAME, password=PASSWORD)
            state_file.write_text(json.dumps(state))
        await hass.confirm_http_config()
        if not await hass.entries("telegram_bot"):
            await set_up_telegram(hass, api_url=tg_url)
        if not await hass.entries("munich_termin"):
            notify = await telegram_notify_entity(hass)
            await set_up_munich_termin(hass, base_url=sim_url, notify_entity=notify)
        print(
            f"\nHome Assistant: http://localhost:{args.port}  "
            f"(login {USERNAME} / {PASSWORD})\n"
            f"Simulator: {sim_url}  (control: http://127.0.0.1:{args.simulator_port}/_simulator/)\n"
            f"Telegram stand-in: {tg_url}/_standin/messages\n"
            f"Logs: {config}/home-assistant.log, {logs}/\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        await stop.wait()
    finally:
        await hass.stop()
        for child in children:
            await _stop(child)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description="A real Home Assistant, offline.")
    parser.add_argument("--config", default=str(ROOT / "config"))
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--simulator-port", type=int, default=8080)
    parser.add_argument("--telegram-port", type=int, default=8081)
    args = parser.parse_args()
    try:
        asyncio.run(develop(args))
    except HassError as err:
        sys.exit(f"scripts/develop: {err}")


if __name__ == "__main__":
    main()
