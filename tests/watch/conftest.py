"""The watcher tests talk to the simulator on 127.0.0.1."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _allow_local_sockets(socket_enabled: None) -> None:
    """Home Assistant's test plugin blocks sockets; localhost is all we use."""
