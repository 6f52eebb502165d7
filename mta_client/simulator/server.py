"""Serving the simulator over real HTTP."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mta_client.clock import ScaledClock, SystemClock
from mta_client.localserver import LocalServer

from .app import create_app
from .paths import API_PREFIX, CONTROL_PREFIX
from .simulator import Simulator

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["SimulatorServer", "serve"]


class SimulatorServer(LocalServer):
    """Run a :class:`Simulator` on a local TCP port.

    Example::

        async with SimulatorServer(Simulator(scenario="fixed")) as server:
            client = MTAClient(base_url=server.base_url)
    """

    def __init__(
        self, simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """Prepare the server; ``port=0`` picks a free port."""
        super().__init__(host=host, port=port)
        self.simulator = simulator

    @property
    def base_url(self) -> str:
        """The client base URL, ending in ``/buergeransicht/api/citizen/``."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def control_url(self) -> str:
        """The root of the control surface, ``…/_simulator/`` (if it is on)."""
        return f"http://{self.host}:{self.port}{CONTROL_PREFIX}"

    def create_app(self) -> web.Application:
        """The simulated city's application."""
        return create_app(self.simulator)

    def stopping(self) -> None:
        """End the requests that wait (hanging faults, slow answers)."""
        self.simulator.shutdown_event.set()


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    scenario: str = "munich-weekday",
    speed: float = 1.0,
    seed: int = 0,
    control: bool = False,
    api_generation: str = "muc47",
    visibility: str = "delayed",
) -> None:
    """Serve a simulator until cancelled (``mta simulate``).

    Prints one line with the base URL when ready (and one with the control
    surface's URL when ``control`` is on). ``speed`` > 1 runs the simulated
    city faster than real time (:class:`ScaledClock`); ``api_generation``
    picks the routes (see :data:`~mta_client.simulator.API_GENERATIONS`);
    ``visibility`` when the cron's changes become visible (default
    ``delayed``, the honest model; see :mod:`~mta_client.simulator.visibility`).
    """
    clock = SystemClock() if speed == 1.0 else ScaledClock(speed=speed)
    simulator = Simulator(
        clock=clock,
        scenario=scenario,
        seed=seed,
        control=control,
        api_generation=api_generation,
        visibility=visibility,
    )
    async with SimulatorServer(simulator, host=host, port=port) as server:
        generation = "" if api_generation == "muc47" else f", API {api_generation}"
        if visibility != "delayed":
            generation += f", visibility {visibility}"
        print(  # noqa: T201 - the command's output
            f"Simulator ({scenario}, speed {speed:g}{generation}) "
            f"listening on {server.base_url}",
            flush=True,
        )
        if control:
            print(f"Control surface on {server.control_url}", flush=True)  # noqa: T201
        await asyncio.Event().wait()
