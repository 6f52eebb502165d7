"""The simulator's "sent e-mails", so tests can click activation links."""

from __future__ import annotations

import base64
from dataclasses import dataclass
import json

__all__ = ["APPOINTMENT_URL", "Mail", "Outbox", "appointment_hash", "parse_link"]

APPOINTMENT_URL = "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"


def appointment_hash(process_id: int, auth_key: str) -> str:
    """Return the city's link hash: base64 of ``{"id": …, "authKey": …}``."""
    raw = json.dumps({"id": process_id, "authKey": auth_key}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def parse_link(link: str) -> tuple[int, str]:
    """Return ``(processId, authKey)`` of an activation or appointment link.

    Accepts links with stripped ``=`` padding, like the city's frontend.

    Raises:
        ValueError: not an appointment link.

    """
    _, sep, fragment = link.partition("#/appointment/")
    if not sep:
        msg = "not an appointment link"
        raise ValueError(msg)
    token = fragment.removeprefix("confirm/")
    data = json.loads(base64.b64decode(token + "=" * (-len(token) % 4)))
    return int(data["id"]), str(data["authKey"])


@dataclass(frozen=True, slots=True)
class Mail:
    """One e-mail the city would have sent.

    Attributes:
        to: recipient address.
        kind: ``preconfirmation`` (with the activation link), ``confirmation``
            or ``cancellation``.
        process_id: the appointment.
        subject: subject line.
        body: plain-text body.
        link: the activation link (``preconfirmation``) or the appointment
            link (``confirmation``); ``None`` for cancellations.
        sent_at: Unix time on the simulator's clock.

    """

    to: str
    kind: str
    process_id: int
    subject: str
    body: str
    link: str | None
    sent_at: float


class Outbox(list[Mail]):
    """Every mail sent so far, oldest first."""

    def to_address(self, address: str) -> list[Mail]:
        """Return the mails sent to ``address`` (case-insensitive)."""
        return [m for m in self if m.to.lower() == address.lower()]

    def activation_link(self, process_id: int) -> str:
        """Return the latest activation link sent for an appointment.

        Raises:
            LookupError: no activation mail was sent for it.

        """
        for mail in reversed(self):
            if mail.process_id == process_id and mail.kind == "preconfirmation":
                assert mail.link is not None  # noqa: S101 - always set for this kind
                return mail.link
        msg = f"no activation mail for process {process_id}"
        raise LookupError(msg)
