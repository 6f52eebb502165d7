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

``Simulator(visibility=...)`` picks when the city's per-minute cron makes
released, cancelled and expired slots visible (:mod:`.visibility`):
``"cron"`` exactly at the full minute (the default here, so that tests can
count on whole minutes), ``"delayed"`` a log-normal number of seconds later
(median 6 s, 15 s in bulk-release windows, at most 50 s; the default of
``mta simulate``) or ``"random"`` at a uniformly random second of the minute.
In ``munich-weekday`` competitors also cancel 15 % of what they book, at
random times; the slot is free again at the deallocation cron 15 minutes
later (:class:`CompetitorCancellations`).

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
    CompetitorCancellations,
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
from .stats import CompetitorTake, SimulatorStats, SlotAppearance, SlotChange
from .virtual_time import VirtualTimeLoop, run_virtual, virtual_time_loop
from .visibility import (
    BULK_DELAY,
    NORMAL_DELAY,
    VISIBILITY_MODELS,
    CronDelay,
    Visibility,
    cron_run,
)

__all__ = [
    "API_GENERATIONS",
    "API_PREFIX",
    "BULK_DELAY",
    "CONTROL_PREFIX",
    "FAULT_KINDS",
    "NORMAL_DELAY",
    "VISIBILITY_MODELS",
    "CaptchaConfig",
    "Catalogue",
    "Competition",
    "CompetitorCancellations",
    "CompetitorTake",
    "CronDelay",
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
    "SlotChange",
    "VirtualTimeLoop",
    "Visibility",
    "create_app",
    "cron_run",
    "get_scenario",
    "load_catalogue",
    "parse_link",
    "register_scenario",
    "run_virtual",
    "scenario_names",
    "serve",
    "virtual_time_loop",
]
