"""An asyncio event loop whose clock is virtual.

:class:`VirtualTimeLoop` is a :class:`asyncio.SelectorEventLoop` whose
``time()`` is a virtual Unix time. Whenever the loop would block in
``select()`` waiting for its next timer and no I/O is ready, it advances the
virtual time to that timer instead of sleeping. Real sockets still work:
before jumping, the real selector is polled, so the loopback traffic between
a client and a :class:`~mta_client.simulator.SimulatorServer` in the same
process is delivered in (virtually) no time. While work runs in executor
threads the loop waits in real time, so a DNS lookup cannot make a timeout
fire.

Use :class:`~mta_client.clock.LoopClock` with ``epoch=0.0`` on both sides::

    async def main() -> None:
        clock = LoopClock(epoch=0.0)
        sim = Simulator(clock=clock, scenario="munich-weekday")
        async with SimulatorServer(sim) as server:
            ...  # a week of polling takes seconds

    run_virtual(main(), start=1_795_000_000)
"""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping
    import concurrent.futures
    from selectors import SelectorKey

    from _typeshed import FileDescriptorLike

__all__ = ["VirtualTimeLoop", "run_virtual", "virtual_time_loop"]


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to the real selector; jumps virtual time instead of blocking."""

    def __init__(
        self,
        real: selectors.BaseSelector,
        loop: VirtualTimeLoop,
        polls: int,
        poll_interval: float,
    ) -> None:
        self._real = real
        self._loop = loop
        self._polls = polls
        self._poll_interval = poll_interval

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: FileDescriptorLike) -> SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, int]]:
        events = self._real.select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        # Give loopback I/O a moment to land before declaring the loop idle.
        for _ in range(self._polls):
            events = self._real.select(self._poll_interval)
            if events:
                return events
        if timeout is None:
            return self._real.select(None)  # nothing scheduled: only I/O can wake us
        if self._loop.busy_threads:
            return self._real.select(min(timeout, 0.01))
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop running on virtual time (Unix seconds).

    Args:
        start: the virtual Unix time the loop starts at (default: now).
        polls: how often to poll real I/O before jumping ahead.
        poll_interval: real seconds each poll may wait.

    """

    def __init__(
        self,
        *,
        start: float | None = None,
        polls: int = 2,
        poll_interval: float = 0.0,
    ) -> None:
        """Create the loop at virtual time ``start``."""
        super().__init__()
        self._virtual_now = time.time() if start is None else float(start)
        # Unix-sized floats have ~2.4e-7 s resolution; the default resolution
        # (1e-9) would vanish and timers due "now" would never run.
        self._clock_resolution = 1e-6
        self._busy_threads = 0
        real: selectors.BaseSelector = self._selector  # type: ignore[has-type]
        self._selector = _VirtualSelector(real, self, polls, poll_interval)

    def time(self) -> float:
        """Return the virtual time (Unix seconds)."""
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward."""
        self._virtual_now += max(0.0, seconds)

    @property
    def busy_threads(self) -> int:
        """How many executor jobs are running (time does not jump meanwhile)."""
        return self._busy_threads

    def _thread_done(self, _future: object) -> None:
        self._busy_threads -= 1

    def run_in_executor(  # type: ignore[override]
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[..., Any],
        *args: Any,
    ) -> asyncio.Future[Any]:
        """Run ``func`` in an executor; virtual time waits for it."""
        future = super().run_in_executor(executor, func, *args)
        self._busy_threads += 1
        future.add_done_callback(self._thread_done)
        return future

    async def shutdown_default_executor(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncio's signature
    ) -> None:
        """Join the default executor in real time."""
        self._busy_threads += 1
        try:
            await super().shutdown_default_executor(timeout)
        finally:
            self._busy_threads -= 1


def virtual_time_loop(*, start: float | None = None) -> VirtualTimeLoop:
    """Return a new :class:`VirtualTimeLoop` starting at ``start`` (Unix seconds)."""
    return VirtualTimeLoop(start=start)


def run_virtual[T](
    coro: Coroutine[Any, Any, T],
    *,
    start: float | None = None,
    debug: bool | None = None,
) -> T:
    """Run ``coro`` to completion on a new :class:`VirtualTimeLoop`.

    Like :func:`asyncio.run`, but the loop's clock starts at ``start`` (Unix
    seconds, default now) and jumps over idle waits.
    """
    with asyncio.Runner(
        loop_factory=lambda: VirtualTimeLoop(start=start), debug=debug
    ) as runner:
        return runner.run(coro)
