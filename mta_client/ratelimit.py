"""The request budget: a client-side model of the city's rate limiter.

The city counts requests per client IP. Every counted request restarts a
60-second window; once ``limit`` requests are counted, every further request
is refused with 429 (and not counted) until 60 seconds after the last
*counted* one. The refusal carries no ``Retry-After`` and no ``X-RateLimit-*``
headers; normal answers carry ``X-RateLimit-Limit/-Remaining/-Reset``.

A :class:`RequestBudget` mirrors that state so that a client never sends a
request the server would refuse: :meth:`RequestBudget.acquire` waits (or
raises) instead. One budget stands for one egress IP, so every client that
shares the IP should share the budget. ``aiolimiter``'s leaky bucket does not
model a window that restarts on each request, hence this small class.

The window is measured on the clock's monotonic time: the server's window
runs in real seconds, so a jump of the host's wall clock must neither make
the budget wait for an hour nor let it think a full window has passed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .clock import Clock, SystemClock, monotonic_of
from .exceptions import MTABudgetExceededError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_LIMIT", "DEFAULT_WINDOW", "RequestBudget"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_LIMIT = 60
"""The city's default ``RATE_LIMIT_MAX_REQUESTS``, used until headers tell."""
DEFAULT_WINDOW = 60.0
"""The city's ``RATE_LIMIT_CACHE_TTL`` in seconds."""


class RequestBudget:
    """How many requests the city will still accept from this IP, and when.

    Args:
        limit: requests per window until the server's headers say otherwise.
        window: seconds of the server's window.
        safety: seconds added to the window before trusting it has expired,
            since the server counts a request slightly after we send it.
        priority_reserve: requests kept back for ``priority=True`` callers
            (bookings: reserve, update, pre-confirm and, if need be, cancel),
            so that polling can never make a booking wait.
        max_wait: longest time :meth:`acquire` waits before raising
            :class:`MTABudgetExceededError` instead.
        clock: where time comes from.
        on_wait: called with the seconds :meth:`acquire` is about to wait,
            before each such wait (a command line says so on the terminal);
            also settable later as the attribute of that name.

    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        safety: float = 1.0,
        priority_reserve: int = 4,
        max_wait: float = DEFAULT_WINDOW * 2,
        clock: Clock | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        """Start with a fresh window."""
        if limit < 1:
            msg = "limit must be at least 1"
            raise ValueError(msg)
        self.limit = limit
        self.window = window
        self.safety = safety
        self.priority_reserve = priority_reserve
        self.max_wait = max_wait
        self.clock: Clock = clock or SystemClock()
        self.on_wait = on_wait
        self.limit_learned = False
        self._count = 0
        self._window_end = 0.0
        self.sent = 0
        """Requests counted against the budget since creation."""
        self.rate_limited = 0
        """429 answers seen since creation."""

    def _now(self) -> float:
        return monotonic_of(self.clock)

    def _refresh(self, now: float) -> None:
        if now >= self._window_end + self.safety:
            self._count = 0

    def _cap(self, *, priority: bool) -> int:
        reserve = 0 if priority else min(self.priority_reserve, self.limit - 1)
        return self.limit - reserve

    def remaining(self, *, priority: bool = False) -> int:
        """Requests that may be sent right now without waiting."""
        self._refresh(self._now())
        return max(0, self._cap(priority=priority) - self._count)

    def wait_time(self, *, priority: bool = False) -> float:
        """Seconds until a request may be sent (0 when one may go now)."""
        now = self._now()
        self._refresh(now)
        if self._count < self._cap(priority=priority):
            return 0.0
        return max(0.0, self._window_end + self.safety - now)

    async def acquire(
        self, *, priority: bool = False, max_wait: float | None = None
    ) -> None:
        """Count one request, waiting until the server would accept it.

        Raises:
            MTABudgetExceededError: waiting would take longer than ``max_wait``.

        """
        limit = self.max_wait if max_wait is None else max_wait
        deadline = self._now() + limit
        # Checking and counting happen with no await in between, so callers
        # on one event loop cannot both take the last request of a window.
        while (wait := self.wait_time(priority=priority)) > 0:
            if self._now() + wait > deadline:
                raise MTABudgetExceededError(wait)
            _LOGGER.debug("Request budget spent; waiting %.1f s", wait)
            if self.on_wait is not None:
                self.on_wait(wait)
            await self.clock.sleep(wait)
        self._count += 1
        self.sent += 1
        self._window_end = self._now() + self.window

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the server's limit and count from ``X-RateLimit-*`` headers."""
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
        except (KeyError, ValueError):
            return
        if limit < 1:
            return
        if not self.limit_learned or limit != self.limit:
            _LOGGER.debug("Server rate limit is %d requests per window", limit)
        self.limit = limit
        self.limit_learned = True
        # Trust the server when it has counted more than we did (another
        # program on the same IP, or requests we did not see).
        counted = limit - max(remaining, 0)
        if counted > self._count:
            self._count = counted
            # The server's last counted request was at the latest now.
            self._window_end = max(self._window_end, self._now() + self.window)

    def on_rate_limited(self) -> float:
        """Record a 429: the window is full; cool down one whole window.

        Returns the seconds until the next request may go.
        """
        self.rate_limited += 1
        self._count = self.limit
        self._window_end = self._now() + self.window
        return self.window + self.safety
