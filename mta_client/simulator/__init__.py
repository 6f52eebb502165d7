"""A faithful local simulator of Munich's citizen appointment API.

Every test, demo and benchmark of the project runs against this stand-in::

    from mta_client.simulator import Simulator, SimulatorServer

    sim = Simulator(scenario="fixed", seed=1)
    async with SimulatorServer(sim) as server:
        ...  # point a client at server.base_url

``Simulator(api_generation="muc45")`` speaks the legacy availability routes
of that release instead of ``available-calendar/``; ``control=True`` adds the
JSON control surface under ``/_simulator/`` (see :mod:`.control`). Munich's
public holidays never have slots (:mod:`.office_days`).

What only the simulator needs (the ``altcha`` package) is the optional extra
``mta-client[simulator]``; it is imported on first use of the captcha.
"""

from __future__ import annotations

from .app import create_app
from .captcha import CaptchaConfig
from .catalogue import Catalogue, load_catalogue
from .faults import FAULT_KINDS, FaultInjector, FaultRule
from .outbox import Mail, Outbox, parse_link
from .paths import API_PREFIX, CONTROL_PREFIX
from .scenarios import (
    Competition,
    FixedScenario,
    MunichWeekday,
    QuietScenario,
    Release,
    ReleaseRule,
    Scenario,
    get_scenario,
    register_scenario,
    scenario_names,
)
from .server import SimulatorServer, serve
from .simulator import API_GENERATIONS, Simulator
from .stats import CompetitorTake, SimulatorStats, SlotAppearance
from .virtual_time import VirtualTimeLoop, run_virtual, virtual_time_loop

__all__ = [
    "API_GENERATIONS",
    "API_PREFIX",
    "CONTROL_PREFIX",
    "FAULT_KINDS",
    "CaptchaConfig",
    "Catalogue",
    "Competition",
    "CompetitorTake",
    "FaultInjector",
    "FaultRule",
    "FixedScenario",
    "Mail",
    "MunichWeekday",
    "Outbox",
    "QuietScenario",
    "Release",
    "ReleaseRule",
    "Scenario",
    "Simulator",
    "SimulatorServer",
    "SimulatorStats",
    "SlotAppearance",
    "VirtualTimeLoop",
    "create_app",
    "get_scenario",
    "load_catalogue",
    "parse_link",
    "register_scenario",
    "run_virtual",
    "scenario_names",
    "serve",
    "virtual_time_loop",
]
