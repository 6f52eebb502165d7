"""The ``mta`` command against a simulator served from a background thread.

``main(argv)`` runs its own event loop (``asyncio.run``), so the simulator
lives on another loop in another thread; tests configure it between runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
import json
from pathlib import Path
import socket
import threading
from typing import Any, Self

import pytest
from yarl import URL

from mta_client import RetryPolicy, cli
from mta_client.simulator import Simulator, SimulatorServer


class SimulatorThread:
    """Serve a simulator on 127.0.0.1 from its own thread and loop."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # noqa: BLE001 - reported to the test
            self._error = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with SimulatorServer(self.sim, host="127.0.0.1", port=0) as server:
            self.base_url = server.base_url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "simulator did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        cli, "RETRY_POLICY", RetryPolicy(max_tries=2, base_delay=0.01, max_delay=0.01)
    )
    for name in ("MTA_NAME", "MTA_EMAIL", "MTA_PHONE", "MTA_AUTH_KEY", "MTA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # `mta watch` keeps its state under $XDG_STATE_HOME: never in the real home.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(name="sim_options")
def sim_options_fixture() -> dict[str, Any]:
    return {}


@pytest.fixture(name="sim")
def sim_fixture(sim_options: dict[str, Any]) -> Simulator:
    return Simulator(**{"scenario": "fixed", "seed": 11, **sim_options})


@pytest.fixture(name="served")
def served_fixture(sim: Simulator, socket_enabled: None) -> Iterator[SimulatorThread]:
    with SimulatorThread(sim) as served:
        yield served


@pytest.fixture(name="server")
def server_fixture(served: SimulatorThread) -> str:
    """The simulator as messages name it: ``127.0.0.1:PORT``, not "the city's"."""
    url = URL(served.base_url)
    return f"{url.host}:{url.port}"


@dataclass
class Result:
    """What one run of ``mta`` did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


type Run = Callable[..., Result]


@pytest.fixture(name="mta")
def mta_fixture(served: SimulatorThread, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``mta ARGS --base-url <simulator>`` in-process."""

    def run(*args: str, base_url: str | None = None) -> Result:
        capsys.readouterr()
        code = cli.main([*args, "--base-url", base_url or served.base_url])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def free_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
