"""Fault injection: what the city's gateway and servers do on a bad day.

Faults act in front of the city's middleware stack (like the F5/gateway), so
they are not counted by the rate limiter. Example::

    sim.faults.add(route="available-calendar/", kind="html_block", times=1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

__all__ = ["FAULT_KINDS", "NULLABLE_FIELDS", "FaultInjector", "FaultRule", "with_nulls"]

FAULT_KINDS: dict[str, str] = {
    "server_error": "HTTP 500 with the city's uncaught-error envelope "
    '{"error":{"message":…,"code":500}} (status configurable)',
    "bad_gateway": "HTTP 502 HTML page from the gateway (status configurable)",
    "slow": "answer normally after `delay` seconds (default 5); the request is "
    "carried out even when the client gave up waiting",
    "hang": "never answer (until `delay` seconds, default 3600, or shutdown); "
    "the request is carried out only if the client is still there",
    "reset": "close the connection without an answer",
    "html_block": "HTTP 403 HTML block page (F5 'Request Rejected')",
    "maintenance": "HTTP 503 serviceUnavailable",
    "malformed_json": "HTTP 200, JSON content type, truncated body",
    "extra_fields": "the normal answer with unknown new fields added",
    "nulls": "the normal answer with null wherever the city's schema allows it "
    "(see NULLABLE_FIELDS)",
    "rate_limit": "HTTP 429 rateLimitExceeded without X-RateLimit headers",
    "captcha_upstream": "captcha routes: HTTP 200 "
    '{"meta":{"success":false,"error":"Request error: …"},"data":null}',
}

NULLABLE_FIELDS = frozenset(
    {
        # available-calendar/
        "prevBookableDate",
        "nextBookableDate",
        # offices-and-services/: offices, their scopes, services and relations
        "showAlternativeLocations",
        "displayNameAlternatives",
        "organization",
        "organizationUnit",
        "slotsPerAppointment",
        "parentId",
        "disabledByServices",
        "allowDisabledServicesMix",
        "sharedBookingOfficeIds",
        "priority",
        "shortName",
        "emailFrom",
        "customTextfieldLabel",
        "customTextfield2Label",
        "infoForAppointment",
        "infoForAllAppointments",
        "whitelistedMails",
        "hint",
        "maxQuantity",
        "public",
        # appointments: the ThinnedProcess
        "displayNumber",
        "icsContent",
        "officeName",
        "serviceName",
    }
)
"""Fields the ``nulls`` fault sets to ``null`` wherever they occur: the ones the
city's schemas let be null (or its PHP writes as null) that a client reads."""


def with_nulls(value: Any) -> Any:
    """Return ``value`` (decoded JSON) with every :data:`NULLABLE_FIELDS` key null."""
    if isinstance(value, dict):
        return {
            k: None if k in NULLABLE_FIELDS else with_nulls(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [with_nulls(v) for v in value]
    return value


@dataclass(slots=True)
class FaultRule:
    """One fault to inject.

    Attributes:
        kind: one of :data:`FAULT_KINDS`.
        route: route relative to the API prefix (``"available-calendar/"``),
            or ``None`` for every route.
        method: ``GET``/``POST`` or ``None`` for any.
        times: how many more requests to hit; ``None`` = unlimited.
        probability: chance that a matching request is hit.
        status: HTTP status for ``server_error``/``bad_gateway``.
        delay: seconds for ``slow``/``hang``.

    """

    kind: str
    route: str | None = None
    method: str | None = None
    times: int | None = 1
    probability: float = 1.0
    status: int | None = None
    delay: float | None = None
    hits: int = 0

    def matches(self, route: str, method: str) -> bool:
        """Return whether this rule applies to a request."""
        if self.times is not None and self.times <= 0:
            return False
        if self.route is not None and self.route.strip("/") != route.strip("/"):
            return False
        return self.method is None or self.method.upper() == method.upper()


class FaultInjector:
    """The list of active fault rules."""

    def __init__(self, rng: random.Random) -> None:
        """Use ``rng`` (the simulator's seeded RNG) for probabilities."""
        self._rng = rng
        self.rules: list[FaultRule] = []

    def add(
        self,
        *,
        kind: str,
        route: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        probability: float = 1.0,
        status: int | None = None,
        delay: float | None = None,
    ) -> FaultRule:
        """Add a fault rule and return it (see :class:`FaultRule`).

        Raises:
            ValueError: unknown ``kind``.

        """
        if kind not in FAULT_KINDS:
            msg = f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)
        rule = FaultRule(
            kind=kind,
            route=route,
            method=method,
            times=times,
            probability=probability,
            status=status,
            delay=delay,
        )
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def take(self, route: str, method: str) -> FaultRule | None:
        """Return the first rule hitting this request and use up one of its times."""
        for rule in self.rules:
            if not rule.matches(route, method):
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rule.hits += 1
            if rule.times is not None:
                rule.times -= 1
            return rule
        return None
