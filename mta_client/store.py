"""Where the watcher keeps what must survive a restart.

The state is one JSON-compatible dict: per watch, the slots already reported
and the progress of its automatic booking. Writing it before each booking
step is what keeps "at most one booking per watch" true across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import tempfile
from typing import Any, Protocol

from .exceptions import MTAError

__all__ = ["JSONFileStore", "MemoryStore", "StateStore", "StoreError"]


class StoreError(MTAError):
    """The state could not be read or written."""


class StateStore(Protocol):
    """Persistence for the watcher's state (any JSON-compatible dict)."""

    async def load(self) -> dict[str, Any]:
        """Return the saved state, or an empty dict."""
        ...

    async def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state."""
        ...


class MemoryStore:
    """Keeps the state in memory: for tests and one-off runs."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        """Start from a copy of ``state``."""
        self._state = json.loads(json.dumps(state or {}))
        self.saves = 0

    async def load(self) -> dict[str, Any]:
        """Return a copy of the state."""
        return json.loads(json.dumps(self._state))  # type: ignore[no-any-return]

    async def save(self, state: dict[str, Any]) -> None:
        """Replace the state with a copy."""
        self._state = json.loads(json.dumps(state))
        self.saves += 1


class JSONFileStore:
    """Keeps the state in a JSON file, written atomically, readable only by you.

    The file holds booking credentials (process id and auth key), so it is
    created with mode 0600. File I/O runs in a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Use the file at ``path`` (created on first save)."""
        self.path = Path(path)

    async def load(self) -> dict[str, Any]:
        """Read the file; a missing file is an empty state."""
        return await asyncio.to_thread(self._read)

    async def save(self, state: dict[str, Any]) -> None:
        """Write the file atomically (write a temporary file, then rename)."""
        text = json.dumps(state, indent=2, sort_keys=True)
        await asyncio.to_thread(self._write, text)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as err:
            msg = f"cannot read the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
        try:
            data = json.loads(text)
        except ValueError as err:
            msg = f"the state file {self.path} is not valid JSON"
            raise StoreError(msg) from err
        if not isinstance(data, dict):
            msg = f"the state file {self.path} does not hold an object"
            raise StoreError(msg)
        return data

    def _write(self, text: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", dir=self.path.parent
            )
        except OSError as err:
            msg = f"cannot write the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)  # noqa: PTH101 - on the open temporary file's path
            os.replace(tmp, self.path)  # noqa: PTH105 - atomic rename
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            msg = f"cannot write the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
