"""Clocks: where the library reads the time and how it waits.

Everything that paces requests (the request budget, retries, the watch
scheduler) and the simulator read time through a :class:`Clock`, so that a
test or benchmark can run a simulated week in seconds.

A clock tells two times. :meth:`Clock.time` is wall time (Unix seconds): what
the city sees - dates, slot times, lead times, release windows, the cron's
minute grid, a captcha token's ``exp``. :meth:`Clock.monotonic` never jumps:
waits, budgets and expiries are measured on it, so that an NTP correction or
a daylight-saving bug in the host's clock neither stalls the request budget
nor makes a fresh captcha token look stale.

* :class:`SystemClock` is the real wall clock (the default).
* :class:`LoopClock` follows the running event loop's ``time()``; together with
  :func:`mta_client.simulator.virtual_time_loop` a whole process (client and
  simulator) runs on virtual time.
* :class:`ScaledClock` runs faster than real time (``mta simulate --speed``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "LoopClock", "ScaledClock", "SystemClock", "monotonic_of"]


@runtime_checkable
class Clock(Protocol):
    """Source of the current time and of waiting."""

    def time(self) -> float:
        """Return the current time as Unix seconds."""
        ...

    def monotonic(self) -> float:
        """Return seconds on a clock that never jumps (any origin).

        It advances at the same rate as :meth:`time` and as :meth:`sleep`
        waits.
        """
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        """Return the current Unix time."""
        return time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """Unix time derived from the running event loop's monotonic clock.

    ``epoch`` is the Unix time that loop time ``0`` stands for; by default it
    is fixed at construction so that ``time()`` starts at the real time.
    """

    def __init__(self, *, epoch: float | None = None) -> None:
        """Anchor loop time to Unix time."""
        self._epoch = epoch

    def time(self) -> float:
        """Return the loop's time as Unix seconds."""
        loop_now = asyncio.get_running_loop().time()
        if self._epoch is None:
            self._epoch = time.time() - loop_now
        return self._epoch + loop_now

    def monotonic(self) -> float:
        """Return the loop's own (monotonic, possibly virtual) time."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop (virtual when the loop's time is)."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock that runs ``speed`` times faster than real time from ``start``."""

    def __init__(self, *, speed: float = 1.0, start: float | None = None) -> None:
        """Start the scaled clock at ``start`` (Unix seconds, default now)."""
        if speed <= 0:
            msg = "speed must be positive"
            raise ValueError(msg)
        self.speed = speed
        self._real_start = time.monotonic()
        self._start = time.time() if start is None else start

    def time(self) -> float:
        """Return the scaled Unix time."""
        return self._start + self.monotonic()

    def monotonic(self) -> float:
        """Return scaled seconds since the clock was made."""
        return (time.monotonic() - self._real_start) * self.speed

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of scaled time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)


def monotonic_of(clock: Clock) -> float:
    """Read ``clock.monotonic()``, or its wall time for a clock without one.

    Clocks written before :meth:`Clock.monotonic` joined the protocol (test
    doubles, a host's own) keep working: their wall time stands in, which is
    what they measured waits with before.
    """
    reader = getattr(clock, "monotonic", None)
    return float(reader()) if callable(reader) else clock.time()
