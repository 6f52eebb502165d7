"""Where the watcher keeps what must survive a restart.

The state is a typed, versioned model (:class:`WatcherState`): per watch, the
slots already reported and the progress of its booking. Writing it before
each booking step is what keeps "at most one booking per watch" true across
restarts.

Stores stay dict-in, dict-out (:class:`StateStore`), so that any JSON store
fits - Home Assistant's ``helpers.storage.Store`` with a tiny adapter::

    class HAStateStore:
        def __init__(self, store: Store[dict[str, Any]]) -> None:
            self._store = store

        async def load(self) -> dict[str, Any]:
            return await self._store.async_load() or {}

        async def save(self, state: dict[str, Any]) -> None:
            await self._store.async_save(state)

:func:`parse_state` reads what a store returned - today's version, or an
older one, migrated - and refuses a version it does not know rather than
dropping it: a dropped state would report every slot again, or book twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import tempfile
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .exceptions import MTAError
from .watch import BookingState

__all__ = [
    "STATE_VERSION",
    "BookingRecord",
    "JSONFileStore",
    "MemoryStore",
    "StateStore",
    "StoreError",
    "WatchState",
    "WatcherState",
    "dump_state",
    "parse_state",
]

STATE_VERSION = 2
"""The version of :class:`WatcherState` this library writes."""


class StoreError(MTAError):
    """The state could not be read or written."""


class BookingRecord(BaseModel):
    """Where a watch's booking stands, as stored.

    ``auth_key`` is a credential: it is never in ``repr()``.
    """

    model_config = ConfigDict(extra="ignore")

    state: BookingState = BookingState.IDLE
    office_id: int | None = None
    start: datetime | None = None
    process_id: int | None = None
    auth_key: str | None = Field(default=None, repr=False)
    activation_minutes: int | None = None
    activation_deadline: datetime | None = None
    reason: str | None = None
    released: bool | None = None
    """After a failed attempt: whether its reservation was cancelled."""

    @field_validator("start", "activation_deadline")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Aware UTC throughout; a naive time was written as UTC.
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class WatchState(BaseModel):
    """What one watch remembers: reported slots and its booking."""

    model_config = ConfigDict(extra="ignore")

    reported: dict[str, float] = Field(default_factory=dict)
    """Slot key (``"<office>@<unix start>"``) -> Unix time first reported."""
    booking: BookingRecord = Field(default_factory=BookingRecord)


class WatcherState(BaseModel):
    """Everything the watcher keeps across restarts (see :data:`STATE_VERSION`)."""

    model_config = ConfigDict(extra="ignore")

    version: int = STATE_VERSION
    watches: dict[str, WatchState] = Field(default_factory=dict)


def parse_state(data: dict[str, Any]) -> WatcherState:
    """Read a stored state: empty, version 1 (migrated) or version 2.

    Raises:
        StoreError: an unknown version, or content that does not fit it.

    """
    if not data:
        return WatcherState()
    version = data.get("version", 1)
    if version == 1:
        data = _migrate_v1(data)
    elif version != STATE_VERSION:
        # Dropping it could report everything again, or book twice.
        msg = f"stored state of version {version}; this one reads {STATE_VERSION}"
        raise StoreError(msg)
    try:
        return WatcherState.model_validate(data)
    except ValidationError as err:
        where = ".".join(map(str, err.errors()[0]["loc"]))
        msg = f"the stored watch state does not fit version {STATE_VERSION} ({where})"
        raise StoreError(msg) from None


def dump_state(state: WatcherState) -> dict[str, Any]:
    """The JSON-compatible dict a store saves."""
    return state.model_dump(mode="json")


def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept string-keyed dicts with Unix times for the booking."""
    watches: dict[str, Any] = {}
    raw = data.get("watches")
    for watch_id, entry in (raw if isinstance(raw, dict) else {}).items():
        if not isinstance(entry, dict):
            continue
        booking = dict(entry.get("booking") or {})
        for name in ("start", "activation_deadline"):
            if isinstance(booking.get(name), int | float):
                booking[name] = datetime.fromtimestamp(booking[name], UTC)
        watches[watch_id] = {
            "reported": entry.get("reported") or {},
            "booking": booking,
        }
    return {"version": STATE_VERSION, "watches": watches}


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
