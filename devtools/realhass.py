"""Drive a real Home Assistant process, as its frontend would.

Used by ``scripts/develop`` and by the end-to-end tests: it writes a config
folder (``configuration.yaml`` with only the integrations it needs, the
integration linked into ``custom_components``), starts ``hass --skip-pip``,
waits until Home Assistant reports ``RUNNING``, completes onboarding over
REST, and then runs config flows, subentry flows and actions over REST and
the websocket, the way the frontend does.

Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import sys
import time
from typing import Any, Self

import aiohttp

__all__ = ["HassError", "RealHass", "free_port", "write_config"]

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "munich_termin"
BLUEPRINTS = ROOT / "blueprints"

CONFIGURATION = """\
# Written by devtools/realhass.py; only what the project needs is loaded
# (no default_config: it pulls in cloud, bluetooth and more).
homeassistant:
  name: Munich Termin (development)
  time_zone: Europe/Berlin
  country: DE
  language: en
  unit_system: metric
  latitude: 48.137
  longitude: 11.575
  elevation: 519
  currency: EUR

frontend:
http:
  server_host: 127.0.0.1
  server_port: {port}

automation: !include automations.yaml
script:
logger:
  default: warning
  logs:
    custom_components.munich_termin: debug
    mta_client: debug
"""


class HassError(RuntimeError):
    """Home Assistant did not start, or answered a request with an error."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(config_dir: Path, *, port: int, automations: str = "[]\n") -> None:
    """Write a config folder that loads the integration from this checkout."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION.format(port=port), encoding="utf-8"
    )
    automations_file = config_dir / "automations.yaml"
    if not automations_file.exists():
        automations_file.write_text(automations, encoding="utf-8")
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / "munich_termin"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == INTEGRATION:
            pass
        elif link.is_symlink():
            link.unlink()
            link.symlink_to(INTEGRATION, target_is_directory=True)
        else:
            shutil.rmtree(link)
            link.symlink_to(INTEGRATION, target_is_directory=True)
    else:
        link.symlink_to(INTEGRATION, target_is_directory=True)
    if BLUEPRINTS.exists():
        target = config_dir / "blueprints" / "automation" / "munich_termin"
        target.parent.mkdir(parents=True, exist_ok=True)
        source = BLUEPRINTS / "automation" / "munich_termin"
        if source.exists() and not target.exists():
            target.symlink_to(source, target_is_directory=True)


class RealHass:
    """One ``hass`` process and a REST/websocket client for it.

    Args:
        config_dir: the config folder (see :func:`write_config`).
        port: the HTTP port written in its ``configuration.yaml``.
        hass: the ``hass`` executable (default: the one beside this Python).
        env: extra environment for the process.

    """

    def __init__(
        self,
        config_dir: Path,
        *,
        port: int,
        hass: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Prepare; nothing runs before :meth:`start`."""
        self.config_dir = config_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = f"{self.base}/"
        self.hass = hass or str(Path(sys.executable).with_name("hass"))
        self.env = {**os.environ, **(env or {})}
        self.token: str | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ws_id = 0

    # --- process -------------------------------------------------------------

    async def start(self, *, timeout: float = 240) -> None:
        """Start ``hass``; wait until it answers HTTP (RUNNING once we have a token).

        Before onboarding there is no token, and ``/api/config`` (which tells
        ``RUNNING``) needs one: :meth:`onboard` waits for it then.
        """
        log = (self.config_dir / "hass.stdout.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            self.hass,
            "-c",
            str(self.config_dir),
            "--skip-pip",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        self._session = aiohttp.ClientSession()
        if self.token is None:
            await self._wait(self._http_up, timeout, "answer HTTP")
        else:
            await self._wait(self._running, timeout, "reach RUNNING")

    async def _wait(self, probe: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.returncode is not None:
                msg = f"hass exited with {self.process.returncode}; see {self.log_path}"
                raise HassError(msg)
            with contextlib.suppress(
                aiohttp.ClientError, OSError, TimeoutError, ValueError
            ):
                if await probe():
                    return
            await asyncio.sleep(0.5)
        msg = f"hass did not {what} within {timeout:.0f} s; see {self.log_path}"
        raise HassError(msg)

    async def _http_up(self) -> bool:
        session = self._require_session()
        async with session.get(
            f"{self.base}/api/onboarding", timeout=aiohttp.ClientTimeout(total=5)
        ) as resp:
            return resp.status == 200

    async def _running(self) -> bool:
        session = self._require_session()
        async with session.get(
            f"{self.base}/api/config",
            headers=self._headers(),
            timeout=aiohttp.ClientTimeout(total=5),
        ) as resp:
            return resp.status == 200 and (await resp.json()).get("state") == "RUNNING"

    async def stop(self, *, timeout: float = 60) -> int | None:
        """Stop ``hass`` with SIGINT (SIGKILL after ``timeout``)."""
        await self._close_clients()
        process = self.process
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return await process.wait()

    async def restart(self, *, timeout: float = 240) -> None:
        """Stop and start again (the same config folder and token)."""
        await self.stop()
        await self.start(timeout=timeout)

    @property
    def log_path(self) -> Path:
        """Home Assistant's own log file."""
        return self.config_dir / "home-assistant.log"

    def log_text(self) -> str:
        """Everything Home Assistant logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def __aenter__(self) -> Self:
        """Start."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop."""
        await self.stop()

    # --- onboarding ----------------------------------------------------------

    async def onboard(self, *, username: str, password: str) -> str:
        """Create the owner, finish onboarding; return an access token."""
        session = self._require_session()
        async with session.post(
            f"{self.base}/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": "Developer",
                "username": username,
                "password": password,
                "language": "en",
            },
        ) as resp:
            await _check(resp)
            auth_code = (await resp.json())["auth_code"]
        self.token = await self._exchange(auth_code)
        # RUNNING is only readable with a token.
        await self._wait(self._running, 180, "reach RUNNING")
        await self.post("/api/onboarding/core_config", {})
        await self.post("/api/onboarding/analytics", {})
        await self.confirm_http_config()
        await self.post(
            "/api/onboarding/integration",
            {
                "client_id": self.client_id,
                "redirect_uri": f"{self.base}/?auth_callback=1",
            },
        )
        return self.token

    async def confirm_http_config(self) -> None:
        """Keep the ``http:`` settings of configuration.yaml.

        Since 2026.10 Home Assistant moves them into its storage as a trial
        that reverts after five minutes (to listening on every interface, at
        port 8123) unless confirmed - what the frontend's "Confirm new HTTP
        server configuration" dialog does.
        """
        with contextlib.suppress(HassError):  # nothing pending: already kept
            await self.ws({"type": "http/config/promote"})

    async def _exchange(self, code: str) -> str:
        session = self._require_session()
        async with session.post(
            f"{self.base}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            },
        ) as resp:
            await _check(resp)
            return str((await resp.json())["access_token"])

    async def long_lived_token(self) -> str:
        """A long-lived access token (for the browser)."""
        result = await self.ws(
            {
                "type": "auth/long_lived_access_token",
                "client_name": "e2e",
                "lifespan": 30,
            }
        )
        return str(result)

    # --- REST ----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.token is None:
            msg = "not onboarded: no token"
            raise HassError(msg)
        return {"Authorization": f"Bearer {self.token}"}

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            msg = "hass is not started"
            raise HassError(msg)
        return self._session

    async def get(self, path: str) -> Any:
        """GET a REST path; the decoded JSON."""
        session = self._require_session()
        async with session.get(f"{self.base}{path}", headers=self._headers()) as resp:
            await _check(resp)
            return await resp.json()

    async def post(self, path: str, body: Any) -> Any:
        """POST JSON to a REST path; the decoded JSON (or None)."""
        session = self._require_session()
        async with session.post(
            f"{self.base}{path}", json=body, headers=self._headers()
        ) as resp:
            await _check(resp)
            if resp.content_type == "application/json":
                return await resp.json()
            return None

    async def delete(self, path: str) -> Any:
        """DELETE a REST path; the decoded JSON."""
        session = self._require_session()
        async with session.delete(
            f"{self.base}{path}", headers=self._headers()
        ) as resp:
            await _check(resp)
            return await resp.json()

    async def config_flow(self, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """Run a config flow with one user input per form; the last result."""
        result = await self.post(
            "/api/config/config_entries/flow",
            {"handler": handler, "show_advanced_options": True},
        )
        return await self._steps("/api/config/config_entries/flow", result, steps)

    async def options_flow(
        self, entry_id: str, *steps: dict[str, Any]
    ) -> dict[str, Any]:
        """Run an entry's options flow."""
        result = await self.post(
            "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        return await self._steps(
            "/api/config/config_entries/options/flow", result, steps
        )

    async def subentry_flow(
        self, entry_id: str, subentry_type: str, *steps: dict[str, Any]
    ) -> dict[str, Any]:
        """Add a subentry through its flow."""
        result = await self.post(
            "/api/config/config_entries/subentries/flow",
            {"handler": [entry_id, subentry_type]},
        )
        return await self._steps(
            "/api/config/config_entries/subentries/flow", result, steps
        )

    async def _steps(
        self, base: str, result: dict[str, Any], steps: tuple[dict[str, Any], ...]
    ) -> dict[str, Any]:
        for user_input in steps:
            if result.get("type") != "form":
                msg = f"flow ended early: {json.dumps(result)[:500]}"
                raise HassError(msg)
            result = await self.post(f"{base}/{result['flow_id']}", user_input)
        return result

    async def entries(self, domain: str) -> list[dict[str, Any]]:
        """The config entries of a domain."""
        entries = await self.get(f"/api/config/config_entries/entry?domain={domain}")
        return list(entries)

    async def states(self) -> list[dict[str, Any]]:
        """Every entity state."""
        return list(await self.get("/api/states"))

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """One entity's state, or None."""
        session = self._require_session()
        async with session.get(
            f"{self.base}/api/states/{entity_id}", headers=self._headers()
        ) as resp:
            if resp.status == 404:
                return None
            await _check(resp)
            return dict(await resp.json())

    # --- websocket -----------------------------------------------------------

    async def ws(self, message: dict[str, Any], *, timeout: float = 60) -> Any:
        """Send one websocket command; its result (raises on failure)."""
        socket_ = await self._websocket()
        self._ws_id += 1
        ident = self._ws_id
        await socket_.send_json({"id": ident, **message})
        async with asyncio.timeout(timeout):
            while True:
                reply = await socket_.receive_json()
                if reply.get("id") != ident or reply.get("type") != "result":
                    continue
                if not reply.get("success"):
                    msg = f"{message.get('type')} failed: {reply.get('error')}"
                    raise HassError(msg)
                return reply.get("result")

    async def call_service(
        self,
        domain: str,
        service: str,
        data: dict[str, Any] | None = None,
        *,
        target: dict[str, Any] | None = None,
        return_response: bool = False,
    ) -> Any:
        """Call an action over the websocket, as the frontend does."""
        message: dict[str, Any] = {
            "type": "call_service",
            "domain": domain,
            "service": service,
            "service_data": data or {},
            "return_response": return_response,
        }
        if target:
            message["target"] = target
        result = await self.ws(message)
        return result.get("response") if return_response else result

    async def _websocket(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is not None and not self._ws.closed:
            return self._ws
        session = self._require_session()
        self._ws = await session.ws_connect(f"{self.base}/api/websocket")
        hello = await self._ws.receive_json()
        if hello.get("type") != "auth_required":
            msg = f"unexpected websocket greeting {hello}"
            raise HassError(msg)
        await self._ws.send_json({"type": "auth", "access_token": self.token})
        reply = await self._ws.receive_json()
        if reply.get("type") != "auth_ok":
            msg = "websocket authentication failed"
            raise HassError(msg)
        return self._ws

    async def _close_clients(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _check(resp: aiohttp.ClientResponse) -> None:
    if resp.status >= 400:
        body = await resp.text()
        msg = f"{resp.method} {resp.url.path} answered {resp.status}: {body[:500]}"
        raise HassError(msg)
