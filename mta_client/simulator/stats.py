"""Statistics of a simulator run, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompetitorTake", "SimulatorStats", "SlotAppearance", "SlotChange"]


@dataclass(frozen=True, slots=True)
class SlotAppearance:
    """A run of units that became free (visible) at ``appeared_at``.

    Attributes:
        office_id: the office.
        start: Unix time of the first unit.
        units: how many consecutive units appeared.
        appeared_at: Unix time (simulator clock) it became visible.
        source: ``initial``, ``release``, ``cancellation`` (of someone
            outside the run), ``competitor-cancellation`` (a competitor
            cancelled what they booked during the run), ``manual``,
            ``expiry`` (a reservation or activation ran out) or
            ``deallocation`` (an appointment cancelled over the API).

    """

    office_id: int
    start: int
    units: int
    appeared_at: float
    source: str


@dataclass(frozen=True, slots=True)
class SlotChange:
    """Units of an office became free or stopped being free at ``at``.

    Attributes:
        office_id: the office.
        units: the unit starts (Unix seconds) that changed.
        at: Unix time (simulator clock) of the change.
        free: whether they became free (else: taken, reserved).
        source: for free units the :class:`SlotAppearance` source; else
            ``competitor``, ``reserved`` (a process of the API) or ``manual``.

    """

    office_id: int
    units: tuple[int, ...]
    at: float
    free: bool
    source: str


@dataclass(frozen=True, slots=True)
class CompetitorTake:
    """A competing citizen took units at ``taken_at``."""

    office_id: int
    start: int
    units: int
    taken_at: float
    appeared_at: float


@dataclass(slots=True)
class SimulatorStats:
    """Counters the simulator keeps while it runs."""

    requests_by_ip: Counter[str] = field(default_factory=Counter)
    """Requests counted by the rate limiter, per client IP."""
    requests_by_route: Counter[str] = field(default_factory=Counter)
    """Requests that reached the routes, per route (``available-calendar/``…)."""
    rate_limited_by_ip: Counter[str] = field(default_factory=Counter)
    """429 answers per client IP."""
    blocked_by_ip: Counter[str] = field(default_factory=Counter)
    """403 ``IP_BLACKLISTED`` answers per client IP."""
    faults: Counter[str] = field(default_factory=Counter)
    """Injected faults per kind."""
    captcha_challenges: int = 0
    captcha_verifies: int = 0
    captcha_verify_failures: int = 0
    reservations: int = 0
    preconfirmed_by_email: Counter[str] = field(default_factory=Counter)
    confirmed_by_email: Counter[str] = field(default_factory=Counter)
    cancellations: int = 0
    competitor_cancellations: int = 0
    """Appointments competitors booked during the run and then cancelled."""
    expired_reservations: int = 0
    expired_activations: int = 0
    competitor_takes: list[CompetitorTake] = field(default_factory=list)
    slot_appearances: list[SlotAppearance] = field(default_factory=list)

    @property
    def rate_limited(self) -> int:
        """Total 429 answers."""
        return sum(self.rate_limited_by_ip.values())

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as plain JSON-serialisable data."""
        return {
            "requests_by_ip": dict(self.requests_by_ip),
            "requests_by_route": dict(self.requests_by_route),
            "rate_limited_by_ip": dict(self.rate_limited_by_ip),
            "blocked_by_ip": dict(self.blocked_by_ip),
            "faults": dict(self.faults),
            "captcha_challenges": self.captcha_challenges,
            "captcha_verifies": self.captcha_verifies,
            "captcha_verify_failures": self.captcha_verify_failures,
            "reservations": self.reservations,
            "preconfirmed_by_email": dict(self.preconfirmed_by_email),
            "confirmed_by_email": dict(self.confirmed_by_email),
            "cancellations": self.cancellations,
            "competitor_cancellations": self.competitor_cancellations,
            "expired_reservations": self.expired_reservations,
            "expired_activations": self.expired_activations,
            "competitor_takes": len(self.competitor_takes),
            "slot_appearances": len(self.slot_appearances),
        }
