"""What one run of ``mta`` keeps for the next, and what it says while it waits.

* :class:`TokenFile` keeps the captcha token between runs, so that a second
  ``mta slots`` within the token's life sends no proof of work (two requests
  fewer). One token per server (base URL), in the state folder
  (``$XDG_STATE_HOME/mta/`` or ``~/.local/state/mta/``), file mode 0600; a
  token past its expiry is neither used nor kept. The token is a credential
  of this client: it is never printed or logged.
* :class:`CatalogueFile` keeps the server's answer of
  ``offices-and-services/`` between runs, so that a repeated ``mta slots``
  costs one request (the calendar), not two. One answer per server, in the
  same folder and file mode; used for :data:`CATALOGUE_TTL`.
* :class:`BudgetNotice` says on stderr (and in the log) when the request
  budget makes the command wait, and for how long, instead of a silent
  pause.

Both files are caches: one that cannot be read, is damaged or of the wrong
shape is ignored (logged at debug level) and replaced; one that cannot be
written is left. They are written atomically, through a symbolic link to
the file it points to (the link stays a link), with mode 0600.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mta_client.clock import monotonic_of
from mta_client.exceptions import MTAInvalidResponseError
from mta_client.store import JSONFileStore, StoreError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mta_client.client import MTAClient
    from mta_client.ratelimit import RequestBudget

    from .output import Output

__all__ = [
    "CATALOGUE_FILE",
    "CATALOGUE_TTL",
    "MAX_CATALOGUE_BYTES",
    "TOKEN_FILE",
    "BudgetNotice",
    "CatalogueFile",
    "TokenFile",
    "state_folder",
]

_LOGGER = logging.getLogger(__name__)

TOKEN_FILE = "captcha-tokens.json"  # noqa: S105 - a file name, not a secret
"""The name of the token file in the state folder."""

MAX_TOKEN_BYTES: Final = 1024 * 1024
"""A larger token file is ignored unread."""

CATALOGUE_FILE: Final = "catalogue.json"
"""The name of the catalogue file in the state folder."""

CATALOGUE_TTL: Final = 24 * 3600.0
"""Seconds a kept catalogue is used: a day.

The catalogue (offices, services, which office offers which service, which
office needs a captcha) comes from the city's office and service database:
it changes rarely (an office added, a service moved), and the city's server
caches it for an hour itself. Kept for a day, it costs one request on the
first run of a day instead of one on every run. What a day-old catalogue
can get wrong is caught: an id it does not know, or an answer of the server
that contradicts it (an office that no longer offers a service, an office
that now wants a captcha), makes the command ask for the catalogue once
more and try again. A running watch asks for it again after a day.
"""

MAX_CATALOGUE_BYTES: Final = 16 * 1024 * 1024
"""A larger catalogue file is ignored unread: far more than any catalogue
(Munich's lists about a hundred offices and a few hundred services)."""


def state_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/mta``, or ``~/.local/state/mta``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "")
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local/state"
    return root / "mta"


def _key(client: MTAClient) -> str:
    return str(client.base_url).rstrip("/") + "/"


class TokenFile:
    """Captcha tokens kept between runs: one per base URL, file mode 0600.

    A cache: a file that cannot be read or written is ignored (logged at
    debug level), never an error of the command.
    """

    def __init__(self, path: Path) -> None:
        """Keep the tokens in the file at ``path``."""
        self.path = path
        self._seeded: tuple[str, float] | None = None

    def _read(self) -> dict[str, Any]:
        return _read_object(self.path, MAX_TOKEN_BYTES, "token file")

    def load_into(self, client: MTAClient) -> bool:
        """Give the client the token kept for its server; whether there was one."""
        entry = self._read().get(_key(client))
        if not isinstance(entry, dict):
            return False
        token, expires_at = entry.get("token"), entry.get("expires_at")
        if not isinstance(token, str) or isinstance(expires_at, bool):
            return False
        if not isinstance(expires_at, int | float) or not math.isfinite(expires_at):
            return False
        if not client.captcha.seed(token, expires_at=float(expires_at)):
            return False
        self._seeded = client.captcha.export()
        return True

    async def save_from(self, client: MTAClient) -> None:
        """Keep the client's token (or forget an unusable one) for the next run."""
        current = client.captcha.export()
        if current == self._seeded:
            return  # nothing new: do not touch the file
        data = self._read()
        now = client.clock.time()
        kept = {
            key: entry
            for key, entry in data.items()
            if isinstance(entry, dict)
            and isinstance(entry.get("expires_at"), int | float)
            and entry["expires_at"] > now
        }
        if current is None:
            kept.pop(_key(client), None)
        else:
            token, expires_at = current
            kept[_key(client)] = {"token": token, "expires_at": expires_at}
        if await _write_object(self.path, kept, "the captcha token"):
            self._seeded = current


class CatalogueFile:
    """The server's catalogue answer kept between runs: one per base URL.

    :meth:`load_into` gives the client the answer kept for its server, when
    it is younger than ``ttl``; it is parsed exactly like a fresh one (a
    :class:`~mta_client.models.Catalogue` cannot be written back, so the
    city's answer is kept as it came). :meth:`attach` makes the client keep
    every answer it fetches. The file maps each base URL to ``{"fetched_at":
    UNIX, "answer": {...}}``; answers older than ``ttl`` are dropped when it
    is written.
    """

    def __init__(self, path: Path, *, ttl: float = CATALOGUE_TTL) -> None:
        """Keep the answers in the file at ``path``, used for ``ttl`` seconds."""
        self.path = path
        self.ttl = ttl
        self.cached_at: float | None = None
        """When the catalogue the client uses was fetched (Unix time), if it
        came from the file; None once the client fetched one itself."""

    @property
    def from_cache(self) -> bool:
        """Whether the client's catalogue is the one read from the file."""
        return self.cached_at is not None

    def _read(self) -> dict[str, Any]:
        return _read_object(self.path, MAX_CATALOGUE_BYTES, "catalogue file")

    async def load_into(self, client: MTAClient) -> bool:
        """Give the client the catalogue kept for its server; whether there was one.

        Missing, older than ``ttl``, from the future, of another server or
        not a catalogue: nothing is given (the client asks the server).
        """
        entry = (await asyncio.to_thread(self._read)).get(_key(client))
        if entry is None:
            return False
        if not isinstance(entry, dict):
            _LOGGER.debug("Ignoring the kept catalogue: not a JSON object")
            return False
        fetched_at = entry.get("fetched_at")
        if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
            _LOGGER.debug("Ignoring the kept catalogue: no fetch time")
            return False
        try:
            used = client.seed_catalogue(entry.get("answer"), fetched_at=fetched_at)
        except MTAInvalidResponseError as err:
            _LOGGER.debug("Ignoring the kept catalogue: %s", err)
            return False
        if not used:
            _LOGGER.debug("Not using the kept catalogue: out of date")
            return False
        self.cached_at = float(fetched_at)
        _LOGGER.debug(
            "Using the catalogue kept from %.0f s ago",
            client.clock.time() - self.cached_at,
        )
        return True

    def attach(self, client: MTAClient) -> None:
        """Keep every catalogue the client fetches (:attr:`MTAClient.on_catalogue`)."""
        key = _key(client)

        async def keep(answer: Any, fetched_at: float) -> None:
            self.cached_at = None
            await self._save(key, answer, fetched_at)

        client.on_catalogue = keep

    async def _save(self, key: str, answer: Any, fetched_at: float) -> None:
        data = await asyncio.to_thread(self._read)
        kept = {
            other: entry
            for other, entry in data.items()
            if other != key and self._fresh(entry, fetched_at)
        }
        kept[key] = {"fetched_at": fetched_at, "answer": answer}
        await _write_object(self.path, kept, "the catalogue")

    def _fresh(self, entry: object, now: float) -> bool:
        if not isinstance(entry, dict):
            return False
        fetched_at = entry.get("fetched_at")
        if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
            return False
        return 0 <= now - fetched_at < self.ttl


def _refuse_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _read_object(path: Path, limit: int, what: str) -> dict[str, Any]:
    """The JSON object in the file; ``{}`` when it cannot be used (logged).

    At most ``limit`` bytes are read: a larger file is not used.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        return {}
    except OSError as err:
        _LOGGER.debug("Ignoring the %s: %s", what, err.strerror)
        return {}
    if len(raw) > limit:
        _LOGGER.debug("Ignoring the %s: larger than %d bytes", what, limit)
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        # Not UTF-8, not JSON, cut off, NaN, or nested too deep.
        _LOGGER.debug("Ignoring the %s: %s", what, type(err).__name__)
        return {}
    if not isinstance(data, dict):
        _LOGGER.debug("Ignoring the %s: not a JSON object", what)
        return {}
    return data


async def _write_object(path: Path, data: dict[str, Any], what: str) -> bool:
    """Write the file with the watch state's writer; whether that worked.

    Atomic (a temporary file renamed), mode 0600, and through a symbolic
    link to the file it points to. The state folder is made mode 0700.
    """
    try:
        await asyncio.to_thread(_make_folder, path)
        await JSONFileStore(path).save(data)
    except (OSError, StoreError) as err:
        _LOGGER.debug("Cannot keep %s: %s", what, err)
        return False
    except (ValueError, RecursionError) as err:  # an answer nested too deep
        _LOGGER.debug("Cannot keep %s: %s", what, type(err).__name__)
        return False
    return True


def _make_folder(path: Path) -> None:
    path.resolve().parent.mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass
class BudgetNotice:
    """Says when the request budget makes the command wait (``on_wait``).

    One line per wait that ends later than the one announced before, so
    requests that wait together are one line.
    """

    out: Output
    budget: RequestBudget
    server: str | None = None
    _until: float = 0.0

    def __call__(self, wait: float) -> None:
        """Announce a wait of ``wait`` seconds."""
        now = monotonic_of(self.budget.clock)
        if now + wait <= self._until + 1.0:
            return
        self._until = now + wait
        who = f"the server {self.server}" if self.server else "the city's server"
        message = (
            f"waiting {math.ceil(wait)} s for the request budget ({who} allows "
            f"{self.budget.limit} requests per {self.budget.window:g} s)"
        )
        _LOGGER.info("%s", message)
        self.out.note(message)
