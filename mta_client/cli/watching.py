"""``mta watch``: the watch engine (:class:`~mta_client.watcher.Watcher`) at a prompt.

The watcher does the looking, the pacing, the remembering, the booking and
the waiting after failures (its :class:`~mta_client.watcher.PollPolicy`);
this module picks the policy's interval and the state store from the
options, prints the events (one line, or one JSON object, per event), draws
a live status line on a terminal, and decides when the command ends:

* without ``--once``/``--checks``, :meth:`Watcher.run` polls until Ctrl-C
  (exit 0). A failed look never ends it, nor does a failure to load the
  catalogue at the start: the watcher tries again after the policy's
  back-off (15 minutes after a block or maintenance answer), and the
  command prints the first failure, then a count of the same one ("still
  failing (3 times)", at 2, 3, 5, 10, 20, 50, ... times), and a line when
  the server answers again (:class:`FailureReport`);
* ``--once`` and ``--checks N`` look N times with :meth:`Watcher.check`,
  pausing as the watcher would; the first failed look ends the command
  with that error's exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import logging
import os
from pathlib import Path
import sys
from typing import TYPE_CHECKING, Any, Self, TextIO

from mta_client.booking import INTERRUPTED, UNANSWERED
from mta_client.client import DEFAULT_BASE_URL
from mta_client.exceptions import MTAApiError, MTAError
from mta_client.store import (
    JSONFileStore,
    MemoryStore,
    StateStore,
    StoreError,
    WatcherState,
    parse_state,
)
from mta_client.watch import BookingEvent, BookingState, SlotEvent, SlotEventKind
from mta_client.watcher import PollPolicy, Watcher

from .exitcodes import (
    CLIError,
    ExitCode,
    describe,
    error_class_of_reason,
    exit_code_for_class,
)
from .explain import explain_requested, print_plan
from .output import format_clock, format_time, iso_berlin

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from mta_client.client import MTAClient
    from mta_client.models import Catalogue
    from mta_client.watch import Watch, WatchEvent
    from mta_client.watcher import PollResult

    from .output import Output

__all__ = [
    "MIN_CITY_INTERVAL",
    "FailureReport",
    "StateLock",
    "WatchPrinter",
    "WatchRun",
    "check_state",
    "default_state_path",
    "load_catalogue",
    "poll_policy",
    "run_watches",
    "state_store",
]

MIN_CITY_INTERVAL = PollPolicy().min_city_interval
"""Shortest pause between looks against the city's own server (the policy's)."""

CANCEL_HINT = "cancel with: mta cancel <link from the city's e-mail>"
DEFAULT_RESERVATION_MINUTES = 15
"""The city's reservationDuration when the catalogue does not say."""

_LOGGER = logging.getLogger(__name__)


def poll_policy(base_url: str, interval: float | None) -> PollPolicy:
    """The watcher's policy for ``--interval`` (None: the defaults).

    See :meth:`PollPolicy.with_interval`: the pause outside the release
    windows, at most 30 s inside them, never below 30 s against the city.
    """
    if interval is None:
        return PollPolicy()
    return PollPolicy().with_interval(interval, base_url=base_url)


def default_state_path(
    environ: Mapping[str, str] | None = None, *, base_url: str = DEFAULT_BASE_URL
) -> Path:
    """``$XDG_STATE_HOME/mta/watch.json``, or ``~/.local/state/mta/watch.json``.

    For another server than the city's (the simulator), the file is
    ``watch-<hash of the URL>.json``: a booking made in a demo must not
    count as the watch's booking at the city.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME", "")
    # The XDG spec: a relative path is invalid and is to be ignored.
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local/state"
    if base_url.rstrip("/") == DEFAULT_BASE_URL.rstrip("/"):
        return root / "mta" / "watch.json"
    digest = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:12]
    return root / "mta" / f"watch-{digest}.json"


def state_store(
    option: str | None, *, no_state: bool = False, base_url: str = DEFAULT_BASE_URL
) -> tuple[StateStore, Path | None]:
    """The store for ``--state FILE`` / ``--state -`` / ``--no-state``, and its path."""
    if no_state or option == "-":
        return MemoryStore(), None
    path = (
        Path(option).expanduser() if option else default_state_path(base_url=base_url)
    )
    return JSONFileStore(path), path


class StateLock:
    """Keeps a second ``mta watch`` off a state file while one runs.

    Two watchers on one file would each book from their own memory of it,
    so "never books twice" holds only for one at a time. The lock is an
    advisory ``flock`` on ``<state file>.lock`` (not on Windows) next to
    the file that is really written - symbolic links resolved, so that a
    link to the file is the same file; the lock file stays, since removing
    it would race with the next watch taking it.
    """

    def __init__(self, state_path: Path) -> None:
        """Lock for the state file at ``state_path``."""
        self.state_path = state_path
        target = state_path.expanduser().resolve()
        self.path = target.with_name(target.name + ".lock")
        self._handle: TextIO | None = None

    async def __aenter__(self) -> Self:
        """Take the lock, or fail with a usage error naming the file."""
        await asyncio.to_thread(self._acquire)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Release the lock."""
        if self._handle is not None:
            await asyncio.to_thread(self._handle.close)  # closing releases it
            self._handle = None

    def _acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a", encoding="utf-8")
        except OSError as err:
            msg = (
                f"cannot use the state file {self.state_path}: {err.strerror} "
                "(use another --state FILE, or --no-state)"
            )
            raise CLIError(msg, ExitCode.USAGE) from None
        if sys.platform != "win32":
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                msg = (
                    f"another `mta watch` is using the state file {self.state_path}"
                    "; stop it first, or use another --state FILE"
                )
                raise CLIError(msg, ExitCode.USAGE) from None
        self._handle = handle


def _worth_a_line(count: int) -> bool:
    """Whether the ``count``-th same failure is printed: 1-3, then 5, 10, 20, 50..."""
    if count <= 3:  # noqa: PLR2004
        return True
    while count % 10 == 0:
        count //= 10
    return count in {1, 2, 5}


def _seconds(value: float) -> str:
    """``900``, ``60``, or ``0.5`` for the short pauses of a fast simulator."""
    if value >= 10:  # noqa: PLR2004
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0")


def _error_key(err: MTAError) -> tuple[str, str | None, int | None]:
    """What makes two failures "the same": not their messages (retry times)."""
    code = err.error_code if isinstance(err, MTAApiError) else None
    return type(err).__name__, code, getattr(err, "status", None)


@dataclass
class FailureReport:
    """Reports failures without a line for each try.

    The first failure of a kind is a line; the same one again is counted and
    shown at 2, 3, 5, 10, 20, 50, ... times ("still failing (3 times)"); the
    first success after failures says the server answers again. Messages
    name ``server`` (``host[:port]``) when it is not the city's.
    """

    out: Output
    server: str | None = None
    _counts: dict[tuple[str, str | None, int | None], int] = field(
        default_factory=dict, repr=False
    )

    @property
    def failing(self) -> int:
        """Failures since the last success."""
        return sum(self._counts.values())

    def failed(self, err: MTAError, retry_in: float, *, what: str = "look") -> None:
        """Report one failure of ``what``, tried again in ``retry_in`` seconds."""
        key = _error_key(err)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        message = describe(err, server=self.server)
        _LOGGER.warning("%s failed (%d times): %s", what, count, message)
        if not _worth_a_line(count):
            return
        later = f"next try in {_seconds(retry_in)} s"
        if count == 1:
            self.out.note(f"{what} failed: {message}; {later}")
        else:
            self.out.note(f"{what} still failing ({count} times): {message}; {later}")
        if self.out.json_mode:
            self.out.json_line(
                {
                    "event": "error",
                    "error": type(err).__name__,
                    "message": message,
                    "retry_in": retry_in,
                    "count": count,
                }
            )

    def recovered(self) -> None:
        """Say that the server answers again, if something had failed."""
        failures = self.failing
        if not failures:
            return
        self._counts.clear()
        who = f"the server {self.server}" if self.server else "the city's server"
        tries = "try" if failures == 1 else "tries"
        self.out.note(f"{who} answers again (after {failures} failed {tries})")
        if self.out.json_mode:
            self.out.json_line({"event": "recovered", "failures": failures})


@dataclass(frozen=True, kw_only=True)
class Interrupted:
    """A booking an earlier run left in ``reserving`` (its answer was lost)."""

    since: datetime | None
    """When the reserve was sent (None: an older state did not say)."""
    minutes: int
    """The office's reservation timeout."""

    def blocked_until(self) -> datetime | None:
        """Until when the slot may stay blocked, if the city took the reserve."""
        if self.since is None:
            return None
        return self.since + timedelta(minutes=self.minutes)


@dataclass
class WatchPrinter:
    """Writes events to stdout; notes, problems and the live status to stderr.

    Called with every event of the watcher. Booking credentials are printed
    only with ``show_credentials``; personal data is never in an event.
    ``server`` names the server asked when it is not the city's.
    """

    out: Output
    names: Mapping[int, str]
    show_credentials: bool = False
    state_path: Path | None = None
    server: str | None = None
    interrupted: Mapping[str, Interrupted] = field(default_factory=dict)
    new_slots: int = 0
    bookings: int = 0
    errors: int = 0
    last_look: float | None = None
    requests: int = 0
    failed_booking: BookingEvent | None = None
    """The last failed booking attempt (None once one succeeded)."""
    _status_shown: bool = field(default=False, repr=False)
    _failures: FailureReport | None = field(default=None, repr=False)
    _looked_before: float | None = field(default=None, repr=False)

    @property
    def failures(self) -> FailureReport:
        """Where failed looks are reported."""
        if self._failures is None:
            self._failures = FailureReport(out=self.out, server=self.server)
        return self._failures

    @property
    def live(self) -> bool:
        """Whether a live status line is drawn (stderr is a terminal)."""
        return self.out.stderr.isatty()

    def __call__(self, event: WatchEvent) -> None:
        """Write one event."""
        self._clear_status()
        if isinstance(event, SlotEvent):
            if event.kind is SlotEventKind.NEW:
                self.new_slots += 1
            if self.out.json_mode:
                self.out.json_line(self._slot_json(event))
            else:
                self.out.line(self._slot_text(event))
            return
        if self.out.json_mode:
            self.out.json_line(self._booking_json(event))
        else:
            self.out.line(self._booking_text(event))
        if event.state is BookingState.BOOKED:
            self.bookings += 1
            self.failed_booking = None
            self.out.note(self._credentials_note())
        elif (
            event.reason is not None
            and event.reason not in {INTERRUPTED, UNANSWERED}
            and event.state is not BookingState.LAPSED
        ):
            self.failed_booking = event

    def after_look(self, result: PollResult, *, clock_time: float) -> None:
        """Report a poll's errors (see :class:`FailureReport`); redraw the status.

        The watcher retries failed work by itself, often for a long time
        (a block); the first failure is a line, the same again only a
        count. Once a look has worked (``last_look`` moved on in a poll
        without errors), a line says so.
        """
        if result.errors:
            self._clear_status()
        for failure in result.errors:
            self.failures.failed(failure.error, failure.retry_after)
        if not result.errors and self.last_look != self._looked_before:
            self.failures.recovered()
        self._looked_before = self.last_look
        self.errors += len(result.errors)
        self.status(
            last_look=self.last_look,
            requests=self.requests,
            errors=self.errors,
            next_at=clock_time + result.delay,
        )

    def problem(self, err: MTAError, retry_in: float) -> None:
        """Report a failed look on stderr (and as a JSON line in JSON mode)."""
        self._clear_status()
        self.failures.failed(err, retry_in)

    def status(
        self,
        *,
        last_look: float | None,
        requests: int,
        errors: int = 0,
        next_at: float | None = None,
    ) -> None:
        """Draw the one-line status on a terminal (nothing otherwise)."""
        if not self.live:
            return
        parts = [f"last look {_clock(last_look)}" if last_look else "no look yet"]
        parts.append(f"{requests} requests")
        if next_at is not None:
            parts.append(f"next {_clock(next_at)}")
        if errors:
            parts.append(f"{errors} failed")
        self.out.stderr.write("\r\x1b[K" + " · ".join(parts))
        self.out.stderr.flush()
        self._status_shown = True

    def close(self) -> None:
        """End the status line."""
        self._clear_status()

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.stderr.write("\r\x1b[K")
            self.out.stderr.flush()
            self._status_shown = False

    def _office(self, office_id: int | None) -> str:
        if office_id is None:
            return "?"
        return f"{self.names.get(office_id, '?')} ({office_id})"

    def _slot_text(self, event: SlotEvent) -> str:
        return (
            f"{event.kind.value:<4}  {format_time(event.start)}  "
            f"{self._office(event.office_id)}  [watch {event.watch_id}]"
        )

    def _interrupted_text(self, event: BookingEvent) -> str:
        when = format_time(event.start) if event.start else "a slot"
        lost = self.interrupted.get(event.watch_id)
        minutes = lost.minutes if lost else DEFAULT_RESERVATION_MINUTES
        until = lost.blocked_until() if lost else None
        whose = "the server's" if self.server else "the city's"
        head = (
            f"an earlier run stopped while reserving {when}  "
            f"{self._office(event.office_id)}  [watch {event.watch_id}]: "
        )
        if until is not None and until <= datetime.now(UTC):
            return (
                f"{head}a reservation it made was released at "
                f"{format_clock(until)} ({whose} reservation timeout of {minutes} "
                "minutes); booking starts again"
            )
        by = f"until about {format_clock(until)}" if until else f"for {minutes} min"
        return (
            f"{head}if that reservation was made, the slot stays blocked {by} "
            f"({whose} reservation timeout of {minutes} minutes); "
            "booking starts again"
        )

    def _settled_text(self, event: BookingEvent, what: str) -> str | None:
        """The line of what the city said of a booking, if it said something.

        Confirmed, lapsed, an unanswered pre-confirmation and what became of it.
        """
        if event.state is BookingState.CONFIRMED:
            return f"confirmed  {what}  process {event.process_id}"
        if event.state is BookingState.LAPSED:
            return (
                f"lapsed  {what}  process {event.process_id}: the city no longer "
                f"holds it ({event.reason}); the watch may book again"
            )
        whose = f"the server {self.server}" if self.server else "the city"
        if event.state is BookingState.PRECONFIRMING and event.released is False:
            return (
                f"booking not answered  {what}  process {event.process_id}: the "
                f"pre-confirmation was sent but its answer was lost ({event.reason}) "
                f"and the reservation could not be released; {whose} may hold it - "
                "asking before booking anything else"
            )
        if event.reason == UNANSWERED:
            return (
                f"no booking held  {what}: {whose} holds nothing from the "
                "unanswered pre-confirmation; the watch may book again"
            )
        return None

    def _booking_text(self, event: BookingEvent) -> str:
        tag = f"[watch {event.watch_id}]"
        if event.reason == INTERRUPTED:
            return self._interrupted_text(event)
        if event.state is BookingState.FAILED:
            return f"booking failed: {event.reason}; no more tries  {tag}"
        when = format_time(event.start) if event.start else "?"
        where = self._office(event.office_id)
        settled = self._settled_text(event, f"{when}  {where}  {tag}")
        if settled is not None:
            return settled
        if event.state is not BookingState.BOOKED:
            return (
                f"booking attempt failed: {event.reason}; a later look may try "
                f"again  {tag}"
            )
        by = (
            f"by {format_clock(event.activation_deadline)}"
            if event.activation_deadline
            else "soon"
        )
        text = (
            f"booked  {when}  {where}  {tag}  "
            f"process {event.process_id}; activation link must be clicked {by}; "
            f"{CANCEL_HINT}"
        )
        if self.show_credentials:
            text += f"; auth key {event.auth_key}"
        return text

    def _credentials_note(self) -> str:
        if self.state_path is None:
            return (
                "the booking's auth key is kept nowhere (no state file); "
                "keep the city's e-mail to cancel"
            )
        return (
            f"the state file {self.state_path} holds the booking's process id "
            "and auth key: keep it private"
        )

    def _slot_json(self, event: SlotEvent) -> dict[str, Any]:
        return {
            "event": event.kind.value,
            "watch_id": event.watch_id,
            "office_id": event.office_id,
            "office_name": self.names.get(event.office_id),
            "start": iso_berlin(event.start),
            "timestamp": int(event.start.timestamp()),
            "services": [{"service_id": s, "count": c} for s, c in event.services],
            "seen_at": iso_berlin(datetime.fromtimestamp(event.seen_at, UTC)),
        }

    def _booking_json(self, event: BookingEvent) -> dict[str, Any]:
        deadline = event.activation_deadline
        document: dict[str, Any] = {
            "event": "booking",
            "state": event.state.value,
            "watch_id": event.watch_id,
            "office_id": event.office_id,
            "office_name": self.names.get(event.office_id)
            if event.office_id is not None
            else None,
            "start": iso_berlin(event.start) if event.start else None,
            "timestamp": int(event.start.timestamp()) if event.start else None,
            "process_id": event.process_id,
            "activation_deadline": iso_berlin(deadline) if deadline else None,
            "reason": event.reason,
        }
        lost = self.interrupted.get(event.watch_id)
        if event.reason == INTERRUPTED:
            until = lost.blocked_until() if lost else None
            document["blocked_until"] = iso_berlin(until) if until else None
        if self.show_credentials:
            document["auth_key"] = event.auth_key
        return document


def _booking_error(event: BookingEvent, *, server: str | None) -> CLIError:
    """The command's error for a failed booking, from the event's reason."""
    cls = error_class_of_reason(event.reason)
    code = exit_code_for_class(cls) if cls is not None else ExitCode.UNEXPECTED
    if cls is not None and issubclass(cls, MTAApiError) and cls.code:
        why = describe(cls(), server=server).split(" (HTTP ")[0]
        why = f"{why} [{cls.code}]"
    else:
        why = event.reason or "unknown error"
    final = (
        "failed for good" if event.state is BookingState.FAILED else "failed this time"
    )
    if event.state is BookingState.PRECONFIRMING:
        final = "was not answered (the next run asks whether it was booked)"
    message = f"booking for watch {event.watch_id} {final}: {why}"
    return CLIError(message, code, error_type=cls.__name__ if cls else None)


def _clock(moment: float) -> str:
    return format_clock(datetime.fromtimestamp(moment, UTC), seconds=True)


@dataclass(frozen=True, kw_only=True)
class WatchRun:
    """What ``mta watch`` runs: the watches, where they remember, how long.

    ``checks`` is the number of looks (``--once`` is 1), or None to watch
    until Ctrl-C. ``lock``: take the state file's :class:`StateLock`
    (False when the caller holds it already). ``server``: the server's name
    in messages when it is not the city's. ``interrupted``: bookings an
    earlier run left in ``reserving`` (see :func:`check_state`). ``alerts``:
    also told every event (the Telegram relay of ``--telegram-chat``).
    """

    watches: tuple[Watch, ...]
    store: StateStore
    state_path: Path | None = None
    policy: PollPolicy = field(default_factory=PollPolicy)
    checks: int | None = None
    show_credentials: bool = False
    lock: bool = True
    server: str | None = None
    interrupted: Mapping[str, Interrupted] = field(default_factory=dict)
    alerts: Callable[[WatchEvent], None] | None = None
    """Also called with every event (``--telegram-chat``: the Telegram relay)."""


async def run_watches(
    client: MTAClient, out: Output, run: WatchRun, *, names: Mapping[int, str]
) -> ExitCode:
    """Watch; return OK, or NOTHING_FOUND when counted looks found nothing.

    Without ``run.checks`` this returns only when cancelled (Ctrl-C).
    Counted looks end at the first failed one, raising its error (the
    command's exit code).
    """
    printer = WatchPrinter(
        out=out,
        names=names,
        show_credentials=run.show_credentials,
        state_path=run.state_path,
        server=run.server,
        interrupted=run.interrupted,
    )

    def after_look(result: PollResult) -> None:
        printer.last_look = watcher.stats.last_poll
        printer.requests = client.budget.sent
        printer.after_look(result, clock_time=watcher.clock.time())

    alerts = run.alerts

    def on_event(event: WatchEvent) -> None:
        printer(event)
        if alerts is not None:
            alerts(event)

    watcher = Watcher(
        client,
        store=run.store,
        policy=run.policy,
        on_event=printer if alerts is None else on_event,
        after_look=after_look if run.checks is None else None,
    )
    if (notice := client.budget.on_wait) is not None:
        # A note about a wait goes on a line of its own, not after the status.
        def on_wait(wait: float) -> None:
            printer.close()
            notice(wait)

        client.budget.on_wait = on_wait
    for watch in run.watches:
        watcher.add(watch)
    if explain_requested():  # mta watch --explain: the plan, nothing sent
        return print_plan(watcher, out)
    async with contextlib.AsyncExitStack() as stack:
        if run.state_path is not None and run.lock:
            await stack.enter_async_context(StateLock(run.state_path))
        stack.callback(printer.close)
        if run.checks is None:
            # The first poll reads the state and finishes bookings a restart
            # interrupted: a state file it cannot use ends the command, a
            # server that fails is reported and tried again.
            await watcher.run()
            return ExitCode.OK  # pragma: no cover - run() ends by cancelling
        # Reads the state and finishes bookings a restart interrupted; its
        # errors (an unreadable state file) end the command at once.
        await watcher.load()
        await _look(watcher, printer, run.checks)
    return _outcome(watcher, printer, out, run.state_path)


async def _look(watcher: Watcher, printer: WatchPrinter, checks: int) -> None:
    """Look ``checks`` times, pausing as the watcher's policy says.

    A failed look raises: counted looks are for scripts, which want the
    error's exit code rather than a retry.
    """
    clock = watcher.clock
    budget = watcher.client.budget
    for number in range(1, checks + 1):
        sent = budget.sent
        await watcher.check()
        if number == checks:
            return
        pause = _pause(watcher, budget.sent - sent)
        now = clock.time()
        printer.status(last_look=now, requests=budget.sent, next_at=now + pause)
        await clock.sleep(pause)


def _pause(watcher: Watcher, used: int) -> float:
    """Seconds to the next look: the watcher's interval, or more.

    Stretched so that looks that took ``used`` requests stay within the
    watcher's share of the limit.
    """
    budget = watcher.client.budget
    per_second = budget.limit * watcher.policy.budget_share / budget.window
    return max(watcher.interval(), used / per_second)


def _outcome(
    watcher: Watcher, printer: WatchPrinter, out: Output, state_path: Path | None
) -> ExitCode:
    """OK when a slot was booked or some watch has a fitting free slot.

    A booking that was tried and failed ends with its error's exit code, as
    ``mta book`` would (and a line on stderr).
    """
    free = sum(len(watcher.reported(w.id)) for w in watcher.watches)
    if printer.bookings:
        return ExitCode.OK
    if printer.failed_booking is not None:
        raise _booking_error(printer.failed_booking, server=printer.server)
    if not free:
        return ExitCode.NOTHING_FOUND
    if not printer.new_slots and state_path is not None:
        out.note(
            f"no new slots; {free} fitting slot(s) reported before are still free "
            f"(remembered in {state_path})"
        )
    return ExitCode.OK


async def check_state(
    store: StateStore, path: Path | None, *, catalogue: Catalogue | None = None
) -> dict[str, Interrupted]:
    """Read and check the stored state before anything is sent.

    Returns the bookings an earlier run left in ``reserving`` (the process
    stopped while a reserve was under way), with the reservation timeout of
    their office from ``catalogue``.

    Raises:
        CLIError: the file cannot be used (exit 2); it is left unchanged.

    """
    try:
        state: WatcherState = parse_state(await store.load())
    except StoreError as err:
        where = f"the state file {path}" if path else "the stored state"
        text = str(err)
        if path is not None and str(path) in text:
            message = text
        else:
            message = f"{where} is unusable: {text}"
        msg = (
            f"{message}; it was left unchanged "
            "(fix or move it, or use another --state FILE, or --no-state)"
        )
        raise CLIError(msg, ExitCode.USAGE) from None
    lost: dict[str, Interrupted] = {}
    for watch_id, entry in state.watches.items():
        record = entry.booking
        if record.state is not BookingState.RESERVING:
            continue
        office = (
            catalogue.office(record.office_id)
            if catalogue is not None and record.office_id is not None
            else None
        )
        scope = office.scope if office is not None else None
        minutes = (
            scope.reservation_duration
            if scope is not None and scope.reservation_duration
            else DEFAULT_RESERVATION_MINUTES
        )
        lost[watch_id] = Interrupted(since=record.since, minutes=minutes)
    return lost


async def load_catalogue(
    client: MTAClient,
    failures: FailureReport,
    policy: PollPolicy,
    *,
    retry: bool,
    refresh: bool = False,
) -> Catalogue:
    """The catalogue; with ``retry``, tried again until it comes (a long watch).

    Each failure is reported through ``failures`` and followed by the
    policy's back-off (15 minutes after a block or maintenance answer).
    Without ``retry`` (counted looks) the first failure is raised.
    ``refresh``: ask the server, not the client's copy.
    """
    while True:
        try:
            catalogue = await client.get_catalogue(refresh=refresh)
        except MTAError as err:
            if not retry:
                raise
            delay = policy.retry_after(err)
            failures.failed(err, delay, what="loading the offices and services")
            await client.clock.sleep(delay)
            continue
        failures.recovered()
        return catalogue
