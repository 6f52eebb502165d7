"""The examples run as scripts against a simulator in a background thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mta_client.simulator import Simulator
from tests.cli.conftest import SimulatorThread


@pytest.fixture(name="sim")
def sim_fixture() -> Simulator:
    return Simulator(scenario="fixed", seed=3)


@pytest.fixture(name="served")
def served_fixture(sim: Simulator, socket_enabled: None) -> Iterator[SimulatorThread]:
    with SimulatorThread(sim) as served:
        yield served
