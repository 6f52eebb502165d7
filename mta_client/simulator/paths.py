"""Where the simulated city answers: its API prefix and the control prefix.

A module of its own so that the application, the server and the simulator's
state can all name the paths without importing one another.
"""

from __future__ import annotations

__all__ = ["API_PREFIX", "CONTROL_PREFIX"]

API_PREFIX = "/buergeransicht/api/citizen/"
"""The public path of the city's citizen API (as on www48.muenchen.de)."""

CONTROL_PREFIX = "/_simulator/"
"""The simulator's own control surface (only when asked for; never the city's)."""
