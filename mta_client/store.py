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
import math
import os
from pathlib import Path
import re
import tempfile
from typing import Any, Protocol, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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

# Times a state may hold: beyond these, date arithmetic and time zones
# overflow, and no booking system hands out such times anyway.
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_SLOT_KEY = re.compile(r"^(\d{1,10})@(\d{1,12})$")
# States in which the city answered a reserve: the credentials must be known.
_WITH_CREDENTIALS = frozenset(
    {
        BookingState.RESERVED,
        BookingState.PRECONFIRMING,
        BookingState.BOOKED,
        BookingState.CONFIRMED,
    }
)


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
    since: datetime | None = None
    """When this state began; for ``reserving``: when the reserve was sent."""
    checked_at: datetime | None = None
    """For ``booked``: when the city last said it still holds the appointment
    pre-confirmed (see :meth:`~mta_client.booking.Booker.check_status`)."""

    @field_validator("start", "activation_deadline", "since", "checked_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Aware UTC throughout; a naive time was written as UTC.
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if not _EARLIEST <= value <= _LATEST:
            msg = "is not a plausible time"
            raise ValueError(msg)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _credentials_known(self) -> Self:
        # A reserved or booked slot without its credentials could never be
        # cancelled or finished: the state is broken, not merely old.
        if self.state in _WITH_CREDENTIALS and (
            self.process_id is None or not self.auth_key
        ):
            msg = f"a {self.state.value} booking needs process_id and auth_key"
            raise ValueError(msg)
        return self


class WatchState(BaseModel):
    """What one watch remembers: reported slots and its booking."""

    model_config = ConfigDict(extra="ignore")

    reported: dict[str, float] = Field(default_factory=dict)
    """Slot key (``"<office>@<unix start>"``) -> Unix time first reported."""
    booking: BookingRecord = Field(default_factory=BookingRecord)

    @field_validator("reported")
    @classmethod
    def _slot_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, seen in value.items():
            match = _SLOT_KEY.match(key)
            if match is None:
                msg = "keys must be '<office id>@<unix time>'"
                raise ValueError(msg)
            start = datetime.fromtimestamp(int(match.group(2)), UTC)
            if not _EARLIEST <= start <= _LATEST or not math.isfinite(seen):
                msg = "holds an implausible time"
                raise ValueError(msg)
        return value


class WatcherState(BaseModel):
    """Everything the watcher keeps across restarts (see :data:`STATE_VERSION`).

    Top-level keys this version does not know (written by a newer one, or by
    hand) are kept and saved again, not dropped.
    """

    model_config = ConfigDict(extra="allow")

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
    if isinstance(version, bool) or not isinstance(version, int):
        shown = json.dumps(version)[:40]  # as the file has it: true, "2"
        msg = f"the stored watch state has no version number (version: {shown})"
        raise StoreError(msg)
    if version == 1:
        data = _migrate_v1(data)
    elif version != STATE_VERSION:
        # Dropping it could report everything again, or book twice.
        msg = f"stored state of version {version}; this one reads {STATE_VERSION}"
        raise StoreError(msg)
    try:
        return WatcherState.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "<top>"
        why = str(first["msg"]).removeprefix("Value error, ")
        msg = (
            f"the stored watch state does not fit version {STATE_VERSION} "
            f"({where}: {why})"
        )
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
        booking = entry.get("booking") or {}
        if isinstance(booking, dict):  # anything else: validation refuses it
            booking = dict(booking)
            for name in ("start", "activation_deadline"):
                booking[name] = _v1_time(booking.get(name))
        watches[watch_id] = {
            "reported": entry.get("reported") or {},
            "booking": booking,
        }
    others = {k: v for k, v in data.items() if k not in {"version", "watches"}}
    return {**others, "version": STATE_VERSION, "watches": watches}


def _v1_time(value: object) -> object:
    """A version 1 Unix time as a datetime; anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return value  # out of range: validation refuses it


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

    A symbolic link is followed: the file it points to is read and replaced,
    and the link stays a link (:attr:`target`). Top-level keys of the file
    that the state does not carry (a newer version's, or added by hand) are
    kept aside when it is read and written back with the next save.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Use the file at ``path`` (created on first save)."""
        self.path = Path(path)
        self._aside: dict[str, Any] = {}

    @property
    def target(self) -> Path:
        """The file really written: ``path`` with symbolic links resolved."""
        return self.path.resolve()

    async def load(self) -> dict[str, Any]:
        """Read the file; a missing file is an empty state."""
        data = await asyncio.to_thread(self._read)
        known = set(WatcherState.model_fields)
        self._aside = {k: v for k, v in data.items() if k not in known}
        return data

    async def save(self, state: dict[str, Any]) -> None:
        """Write the file atomically (write a temporary file, then rename).

        ``state`` is the caller's to give away: it is encoded in the worker
        thread too, so a big state does not hold up the event loop.
        """
        await asyncio.to_thread(self._write, {**self._aside, **state})

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError as err:
            msg = f"the state file {self.path} is not UTF-8 text"
            raise StoreError(msg) from err
        except OSError as err:
            msg = f"cannot read the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            msg = f"the state file {self.path} is not valid JSON"
            raise StoreError(msg) from err
        if not isinstance(data, dict):
            msg = f"the state file {self.path} does not hold an object"
            raise StoreError(msg)
        return data

    def _write(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True)
        # Replace the file a symbolic link points to, never the link itself.
        target = self.target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as err:
            msg = f"cannot write the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)  # noqa: PTH101 - on the open temporary file's path
            os.replace(tmp, target)  # noqa: PTH105 - atomic rename
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            msg = f"cannot write the state file {self.path}: {err.strerror}"
            raise StoreError(msg) from err
