"""What one run of ``mta`` keeps for the next, and what it says while it waits.

* :class:`TokenFile` keeps the captcha token between runs, so that a second
  ``mta slots`` within the token's life sends no proof of work (two requests
  fewer). One token per server (base URL), in the state folder
  (``$XDG_STATE_HOME/mta/`` or ``~/.local/state/mta/``), file mode 0600; a
  token past its expiry is neither used nor kept. The token is a credential
  of this client: it is never printed or logged.
* :class:`BudgetNotice` says on stderr (and in the log) when the request
  budget makes the command wait, and for how long, instead of a silent
  pause.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import json
import logging
import math
import os
from pathlib import Path
import tempfile
from typing import TYPE_CHECKING, Any

from mta_client.clock import monotonic_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mta_client.client import MTAClient
    from mta_client.ratelimit import RequestBudget

    from .output import Output

__all__ = ["TOKEN_FILE", "BudgetNotice", "TokenFile", "state_folder"]

_LOGGER = logging.getLogger(__name__)

TOKEN_FILE = "captcha-tokens.json"  # noqa: S105 - a file name, not a secret
"""The name of the token file in the state folder."""


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
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as err:
            _LOGGER.debug("Ignoring the token file: %s", type(err).__name__)
            return {}
        return data if isinstance(data, dict) else {}

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

    def save_from(self, client: MTAClient) -> None:
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
        try:
            self._write(json.dumps(kept, indent=2, sort_keys=True))
        except OSError as err:
            _LOGGER.debug("Cannot keep the captcha token: %s", err.strerror)
            return
        self._seeded = current

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o600)  # noqa: PTH101 - the new file, before it is used
            os.replace(tmp, self.path)  # noqa: PTH105 - atomic rename
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise


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
