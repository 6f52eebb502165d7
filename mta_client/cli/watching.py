"""``mta watch``: keep looking and report slots that appear or vanish.

The loop is :func:`watch_slots`; it talks to the outside only through a
:class:`WatchSink`, so a richer watch engine can replace it without touching
the command line. Every request goes through the client's request budget,
so a watch never exceeds the city's rate limit however short the interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
import json
import sys
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from yarl import URL

from mta_client.client import DEFAULT_BASE_URL
from mta_client.exceptions import (
    MTABudgetExceededError,
    MTACaptchaError,
    MTAConnectionError,
    MTAError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAServerError,
)

from .exitcodes import ExitCode, describe
from .output import format_clock, format_day, format_moment, iso_berlin, slot_line
from .slots import fetch_calendar, slot_json

if TYPE_CHECKING:
    from mta_client.client import MTAClient
    from mta_client.models import Slot

    from .slots import SlotQuery

__all__ = [
    "MIN_CITY_INTERVAL",
    "StreamSink",
    "WatchEvent",
    "WatchSink",
    "polite_interval",
    "watch_slots",
]

# Errors worth waiting out; anything else (blocked, invalid input, a changed
# API) ends the watch loudly.
TRANSIENT_ERRORS = (
    MTAConnectionError,
    MTAServerError,
    MTARateLimitError,
    MTABudgetExceededError,
    MTAMaintenanceError,
    MTACaptchaError,
)

MIN_CITY_INTERVAL = 30.0
"""Shortest watch interval against the city's own server (good citizen)."""

type EventKind = Literal["new", "gone", "day_new", "day_gone"]


@dataclass(frozen=True, kw_only=True)
class WatchEvent:
    """A change seen by the watch: a slot or a bookable day came or went."""

    kind: EventKind
    at: datetime
    slot: Slot | None = None
    day: date | None = None


class WatchSink(Protocol):
    """Where the watch loop reports what it sees."""

    def event(self, event: WatchEvent) -> None:
        """Report one change."""

    def problem(self, err: MTAError, retry_in: float) -> None:
        """Report a transient failure; the loop tries again in ``retry_in`` s."""

    def status(self, *, checked_at: float, requests: int, next_at: float) -> None:
        """Report that a check is done and when the next one is due."""


@dataclass
class _State:
    """What the previous check saw."""

    slots: dict[tuple[int, int], Slot] = field(default_factory=dict)
    days: set[date] = field(default_factory=set)


def _order(key: tuple[int, int]) -> tuple[int, int]:
    office_id, timestamp = key
    return timestamp, office_id


def _diff(
    state: _State, slots: list[Slot], days: list[date], at: datetime
) -> list[WatchEvent]:
    """Return the changes since the last check and remember the new state."""
    current = {(s.office_id, s.timestamp): s for s in slots}
    seen_days = set(days)
    events = [
        WatchEvent(kind="day_new", at=at, day=d) for d in sorted(seen_days - state.days)
    ]
    events += [
        WatchEvent(kind="day_gone", at=at, day=d)
        for d in sorted(state.days - seen_days)
    ]
    events += [
        WatchEvent(kind="new", at=at, slot=current[k])
        for k in sorted(current.keys() - state.slots.keys(), key=_order)
    ]
    events += [
        WatchEvent(kind="gone", at=at, slot=state.slots[k])
        for k in sorted(state.slots.keys() - current.keys(), key=_order)
    ]
    state.slots, state.days = current, seen_days
    return events


def polite_interval(base_url: str, interval: float) -> float:
    """Return the interval to use: at least 30 s against the city's server.

    The request budget alone would let a watch spend the city's whole rate
    limit; one person's watch has no need for that. Other servers (the
    simulator) may be asked as often as wanted.
    """
    if URL(base_url).host == URL(DEFAULT_BASE_URL).host:
        return max(interval, MIN_CITY_INTERVAL)
    return interval


async def watch_slots(
    client: MTAClient,
    query: SlotQuery,
    sink: WatchSink,
    *,
    interval: float,
    max_checks: int | None = None,
) -> ExitCode:
    """Check the calendar every ``interval`` seconds and report changes.

    The first check reports every slot found as new. Transient failures
    (connection, server, rate limit, maintenance, captcha) are reported and
    waited out, except on the last check, where they propagate like any
    other error. Runs until cancelled unless ``max_checks`` is given; then
    returns ``NOTHING_FOUND`` when the last check saw no slot.
    """
    state = _State()
    checks = 0
    while True:
        checks += 1
        last = max_checks is not None and checks >= max_checks
        wait = interval
        try:
            calendar = await fetch_calendar(client, query)
        except TRANSIENT_ERRORS as err:
            if last:
                raise
            wait = max(interval, getattr(err, "retry_after", 0.0))
            sink.problem(err, wait)
        else:
            at = datetime.fromtimestamp(client.clock.time(), UTC)
            for event in _diff(state, calendar.slots, calendar.bookable_dates, at):
                sink.event(event)
        if last:
            return ExitCode.OK if state.slots else ExitCode.NOTHING_FOUND
        now = client.clock.time()
        sink.status(checked_at=now, requests=client.budget.sent, next_at=now + wait)
        await client.clock.sleep(wait)


@dataclass
class StreamSink:
    """Writes events to stdout (text or JSON lines), status and problems to stderr.

    The live status line is drawn only when stderr is a terminal.
    """

    names: dict[int, str]
    json_mode: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    _status_shown: bool = False

    @property
    def live(self) -> bool:
        """Whether a live status line is drawn."""
        return self.stderr.isatty()

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stderr.write("\r\x1b[K")
            self.stderr.flush()
            self._status_shown = False

    def event(self, event: WatchEvent) -> None:
        """Write one event as a line."""
        self._clear_status()
        if self.json_mode:
            document: dict[str, object] = {
                "event": event.kind,
                "at": iso_berlin(event.at),
            }
            if event.slot is not None:
                document["slot"] = slot_json(event.slot, self.names)
            if event.day is not None:
                document["date"] = event.day.isoformat()
            line = json.dumps(document, ensure_ascii=False)
        else:
            line = f"{format_moment(event.at)}  {_event_text(event, self.names)}"
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def problem(self, err: MTAError, retry_in: float) -> None:
        """Report a failed check on stderr (and as a JSON line in JSON mode)."""
        self._clear_status()
        message = describe(err)
        self.stderr.write(
            f"mta: check failed: {message}; next try in {retry_in:.0f} s\n"
        )
        self.stderr.flush()
        if self.json_mode:
            document = {
                "event": "error",
                "error": type(err).__name__,
                "message": message,
                "retry_in": retry_in,
            }
            self.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
            self.stdout.flush()

    def status(self, *, checked_at: float, requests: int, next_at: float) -> None:
        """Draw the one-line status on a terminal."""
        if not self.live:
            return
        last = format_clock(datetime.fromtimestamp(checked_at, UTC), seconds=True)
        upcoming = format_clock(datetime.fromtimestamp(next_at, UTC), seconds=True)
        self.stderr.write(
            f"\r\x1b[Klast check {last} · {requests} requests · next {upcoming}"
        )
        self.stderr.flush()
        self._status_shown = True

    def close(self) -> None:
        """End the status line."""
        self._clear_status()


def _event_text(event: WatchEvent, names: dict[int, str]) -> str:
    if event.slot is not None:
        label = "new " if event.kind == "new" else "gone"
        return f"{label}  {slot_line(event.slot, names)}"
    day = format_day(event.day) if event.day else "?"
    what = "bookable" if event.kind == "day_new" else "no longer bookable"
    return f"day   {day} {what}"
