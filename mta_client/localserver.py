"""An aiohttp application served on a local TCP port, for stand-ins.

The simulator of the city's API and the Telegram Bot API stand-in both run
this way: in tests, benchmarks, ``mta simulate`` and ``scripts/develop``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from aiohttp import web

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["LocalServer"]


class LocalServer:
    """Serve :meth:`create_app` on ``host:port`` (``port=0`` picks a free one).

    Subclasses build the application and say, in :meth:`stopping`, what must
    wake up before the server shuts down (long polls, open requests).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare the server; nothing listens before :meth:`start`."""
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def create_app(self) -> web.Application:
        """The application to serve."""
        raise NotImplementedError

    def stopping(self) -> None:
        """Called before shutting down, to end what is still waiting."""

    async def start(self) -> None:
        """Start listening; ``port`` is then the port really bound."""
        self._runner = web.AppRunner(
            self.create_app(),
            access_log=None,
            shutdown_timeout=1.0,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break

    async def close(self) -> None:
        """Stop listening and end open requests."""
        if self._runner is not None:
            self.stopping()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.close()
