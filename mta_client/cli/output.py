"""What ``mta`` writes: aligned tables for people, JSON for scripts.

Text from the city's server or from the user (office names, the city's
messages, watch ids) may hold escape sequences or other control characters:
every line written here goes through :func:`mta_client.text.safe`, and JSON
through :func:`mta_client.text.safe_json`, so none reaches the terminal raw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import sys
from typing import TYPE_CHECKING, Any, TextIO

from mta_client.client import BERLIN
from mta_client.text import safe, safe_json

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

    from mta_client.models import Address, Slot

__all__ = [
    "Output",
    "format_address",
    "format_clock",
    "format_day",
    "format_moment",
    "format_time",
    "iso_berlin",
    "slot_line",
    "table",
]


def format_time(moment: datetime) -> str:
    """Return ``Tue 2026-11-24 08:30`` in Berlin time."""
    return moment.astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M")


def format_moment(moment: datetime) -> str:
    """Return ``2026-11-24 08:30:05`` in Berlin time (when something happened)."""
    return moment.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")


def format_clock(moment: datetime, *, seconds: bool = False) -> str:
    """Return ``08:30`` (or ``08:30:05``) in Berlin time."""
    return moment.astimezone(BERLIN).strftime("%H:%M:%S" if seconds else "%H:%M")


def format_day(day: date) -> str:
    """Return ``Tue 2026-11-24``."""
    return day.strftime("%a %Y-%m-%d")


def iso_berlin(moment: datetime) -> str:
    """Return an ISO date-time with Berlin's offset (for JSON)."""
    return moment.astimezone(BERLIN).replace(microsecond=0).isoformat()


def format_address(address: Address | None) -> str:
    """Return ``Ruppertstraße 19, 80337 München`` (or an empty string)."""
    if address is None:
        return ""
    street = " ".join(p for p in (address.street, address.house_number) if p)
    town = " ".join(p for p in (address.postal_code, address.city) if p)
    return ", ".join(p for p in (street, town) if p)


def slot_line(slot: Slot, names: dict[int, str]) -> str:
    """Return ``Tue 2026-11-24 08:30  10489  Bürgerbüro Ruppertstraße``."""
    return (
        f"{format_time(slot.start)}  {slot.office_id}  {names.get(slot.office_id, '?')}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return rows as a left-aligned table with a header line."""
    cells = [[safe(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))

    return "\n".join(line(v).rstrip() for v in [list(headers), *cells])


@dataclass
class Output:
    """Where a command writes, and in which form.

    ``data`` collects the JSON document in ``--json`` mode; it is written
    once at the end, so stdout always holds exactly one document.
    """

    json_mode: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    data: dict[str, Any] | None = None

    def text(self, line: str = "") -> None:
        """Write a line for people (nothing in JSON mode)."""
        if not self.json_mode:
            self.stdout.write(safe(line, keep_newlines=True) + "\n")

    def line(self, line: str) -> None:
        """Write a line for people at once (streaming output; nothing in JSON mode)."""
        if not self.json_mode:
            self.stdout.write(safe(line, keep_newlines=True) + "\n")
            self.stdout.flush()

    def result(self, document: dict[str, Any]) -> None:
        """Set the JSON document of this command."""
        self.data = document

    def note(self, message: str) -> None:
        """Write a remark for people to stderr (both modes)."""
        self.stderr.write(f"mta: {safe(message)}\n")
        self.stderr.flush()

    def error(self, message: str) -> None:
        """Write the one-line error message to stderr."""
        self.stderr.write(f"mta: error: {safe(message)}\n")
        self.stderr.flush()

    def json_line(self, document: dict[str, Any]) -> None:
        """Write one compact JSON object as a line (streaming output)."""
        self.stdout.write(safe_json(document) + "\n")
        self.stdout.flush()

    def flush(self) -> None:
        """Write the collected JSON document, if any."""
        if self.json_mode and self.data is not None:
            self.stdout.write(safe_json(self.data, indent=2))
            self.stdout.write("\n")
        self.stdout.flush()
