"""The argument parser of ``mta`` and the types of its arguments."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
import math
import os
import re

from mta_client.client import BERLIN, DEFAULT_BASE_URL
from mta_client.models import MAX_RANGE_DAYS
from mta_client.watch import (
    URGENCIES,
    TimeRange,
    Urgency,
    parse_weekdays as watch_weekdays,
)

from .exitcodes import EXIT_CODE_HELP
from .explain import ExplainAction
from .telegram import add_telegram_arguments

__all__ = [
    "build_parser",
    "duration_seconds",
    "parse_date",
    "parse_days",
    "parse_duration",
    "parse_service",
    "parse_slot",
    "parse_time_ranges",
    "parse_urgency",
    "parse_weekdays",
    "today",
]

_RELATIVE = re.compile(r"^\+(\d{1,4})$")
_SERVICE = re.compile(r"^(\d{1,10})(?::(\d{1,2}))?$")
_SECONDS = re.compile(r"^\d{1,9}(?:\.\d{1,6})?$")
_DURATION = re.compile(r"^(?:\d{1,6}(?:\.\d{1,6})?[smhd])+$")
_DURATION_PART = re.compile(r"(\d{1,6}(?:\.\d{1,6})?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_LEAD = timedelta(days=MAX_RANGE_DAYS)
_MAX_ID = 2**31 - 1
_MAX_COUNT = 25
# Dates beyond these are mistakes (and overflow date arithmetic): the city
# books months ahead, not decades.
_FIRST_DAY = date(2000, 1, 1)
_MAX_AHEAD = timedelta(days=3660)
_MAX_SECONDS = 1_000_000.0

DESCRIPTION = """\
Find and book appointments at Munich's citizen offices (Bürgerbüro, KVR,
Ausländerbehörde) through the city's public booking API.

Dates: YYYY-MM-DD, 'today', 'tomorrow' or '+N' (N days from today).
Times are shown in Europe/Berlin. Personal data for 'book' and 'watch
--book' may come from the environment (MTA_NAME, MTA_EMAIL, MTA_PHONE) to
keep it out of the shell history; it is never printed.

The captcha token is kept between runs in the state folder
($XDG_STATE_HOME/mta/ or ~/.local/state/mta/, file mode 0600, one per
server, until it expires; never printed), so that the next command sends
no proof of work. So is the server's catalogue of offices and services,
for a day: slots, book and watch use it (--refresh-catalogue asks the
server instead; so does a watch after a day), and ask for it again when it
does not know an id or the server's answer contradicts it. offices and
services always ask the server and keep its answer. A repeated `mta slots`
costs one request. When the request budget (the server's rate limit)
makes a command wait, stderr says for how long.
"""


WATCH_EPILOG = """\
Each fitting slot is reported once, and again only after it was reported
gone. What was reported, and every booking, is kept in the state file, so a
restart reports nothing twice and never books twice. One line per event on
stdout (--json: one JSON object per line):

  new   Tue 2026-11-24 08:30  Führerscheinstelle (10308174)  [watch 1071896]
  gone  Tue 2026-11-24 08:30  Führerscheinstelle (10308174)  [watch 1071896]
  booked  ...  process 123456; activation link must be clicked by 08:47; ...
  booking failed: <reason>  [watch 1071896]

--book reserves, fills in and pre-confirms the first fitting slot, at most
once per watch id; the city then e-mails an activation link that must be
clicked in time (or run `mta confirm LINK`). The person's data comes from
--name/--email/--phone/--text/--text2 or, kept out of the shell history,
$MTA_NAME/$MTA_EMAIL/$MTA_PHONE; it is never printed. The state file (mode
0600) holds each booking's process id and auth key; --show-credentials
prints the auth key as well. To book again for the same services, use
another --id.

--file FILE holds a JSON list of watches with these fields:
  [{"id": "passport", "services": [{"service_id": 1063475, "count": 1}],
    "office_ids": [10489, 54261], "start_date": "2026-12-01",
    "end_date": null, "within_days": 30, "weekdays": "mon-fri" or [0, 2],
    "time_ranges": ["08:00-12:00"], "min_lead": "2h" (or seconds),
    "auto_book": false, "urgency": "normal", "contact": {"family_name": ...,
    "email": ..., "telephone": ..., "custom_textfield": ...,
    "custom_textfield2": ...}}]
Only id, services and office_ids are required. A booking watch without
"contact" takes the person's data from the options or the environment; a
watch without "urgency" takes --urgency (default: normal).

Pacing: all watches with the same services share one request. Each such
group spends a budget of requests where new slots appear: 720 a day for one
watch, as the average day of a week (weekdays with release windows get
more, weekends and holidays less); a group of n watches n**0.6 times that.
Inside the release windows that can bring it an earlier slot
(weekdays 07:00-08:00 same day, 09:00-11:00 next week, 00:00-06:00 six
weeks ahead; Munich time) it looks up to five times a minute, just after
the city's per-minute update; outside them every few minutes, least at
night; all groups together use at most 30 % of the city's rate limit, and
the minute of silence its limiter needs now and then comes after a
minute's first looks, so that every update of the city gets a look soon.
--urgency (or "urgency" in a watch file) trades requests for detection
time: relaxed halves the budget (at most four looks a minute), urgent
doubles it (at most six); a group goes by its most urgent watch. --explain
prints that plan and exits. --interval looks at a fixed pace instead,
whatever the urgency (inside the windows at most every 30 s; against the
city's own server never below 30 s).

Failed looks never end the watch, nor does a failure to load the offices
and services at the start: they are tried again (after 15 minutes when the
server blocks this address or is in maintenance, after a minute otherwise).
stderr gets the first failure, then a count of the same one ("look still
failing (3 times): ...", at 2, 3, 5, 10, 20, 50... times), and a line when
the server answers again. A live status line is drawn on stderr when it is
a terminal. Ctrl-C ends the watch (exit 0). --once looks once and exits
with 0 when a fitting slot is free (even one an earlier run reported), or 3
when none is; --once and --checks end at the first failed look, with its
exit code. With --book, a booking that failed ends them with its error's
exit code (e.g. 12 for the city's limit of appointments per e-mail), as
`mta book` would.

The state file is locked while a watch runs (a symbolic link to it is the
same file; the link stays a link). A state file that cannot be used (not
JSON, not UTF-8, of the wrong shape) is refused with exit 2 and left as it
is; keys it does not know are kept. A run stopped while reserving is told
at the next start: the slot may stay blocked until the city's reservation
timeout (15 minutes) has passed.
"""


def today() -> date:
    """Return today's date in Munich."""
    return datetime.now(BERLIN).date()


def parse_date(text: str) -> date:
    """Parse ``YYYY-MM-DD``, ``today``, ``tomorrow`` or ``+N``."""
    value = text.strip().lower()
    if value == "today":
        return today()
    if value == "tomorrow":
        return today() + timedelta(days=1)
    if match := _RELATIVE.match(value):
        return _plausible(today() + timedelta(days=int(match.group(1))), text)
    try:
        return _plausible(date.fromisoformat(value), text)
    except ValueError:
        msg = f"not a date: {text!r} (use YYYY-MM-DD, today, tomorrow or +N)"
        raise argparse.ArgumentTypeError(msg) from None


def _plausible(day: date, text: str) -> date:
    """Refuse a day the city could never be asked about."""
    if not _FIRST_DAY <= day <= today() + _MAX_AHEAD:
        msg = (
            f"date out of range: {text!r} (from {_FIRST_DAY.isoformat()} to "
            "ten years from today)"
        )
        raise argparse.ArgumentTypeError(msg)
    return day


def parse_service(text: str) -> tuple[int, int]:
    """Parse ``ID`` or ``ID:COUNT`` into ``(service_id, count)``."""
    match = _SERVICE.match(text.strip())
    if not match:
        msg = f"not a service: {text!r} (use ID or ID:COUNT, e.g. 1063475:2)"
        raise argparse.ArgumentTypeError(msg)
    service_id, count = int(match.group(1)), int(match.group(2) or 1)
    if not 0 < service_id <= _MAX_ID:
        msg = f"service id out of range: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if not 1 <= count <= _MAX_COUNT:
        msg = f"service count must be 1 to {_MAX_COUNT}: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return service_id, count


def parse_id(text: str) -> int:
    """Parse a positive 32-bit id (office, process)."""
    value = text.strip()
    if not value.isdigit() or not 0 < int(value) <= _MAX_ID:
        msg = f"not an id: {text!r} (a positive integer)"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def parse_slot(text: str) -> datetime:
    """Parse a slot as a Unix timestamp or an ISO date-time (Berlin if naive)."""
    value = text.strip()
    try:
        if value.isdigit():
            moment = datetime.fromtimestamp(int(value), BERLIN)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=BERLIN)
        _plausible(moment.astimezone(BERLIN).date(), text)
    except (ValueError, OverflowError, OSError, argparse.ArgumentTypeError):
        msg = (
            f"not a slot: {text!r} (a Unix timestamp or 2026-12-01T08:30, "
            "at most ten years ahead)"
        )
        raise argparse.ArgumentTypeError(msg) from None
    return moment


def parse_positive(text: str) -> float:
    """Parse a positive, finite number (seconds, a speed) up to a million."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        msg = f"not a positive number: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if value > _MAX_SECONDS:
        msg = f"too large: {text!r} (at most {_MAX_SECONDS:.0f})"
        raise argparse.ArgumentTypeError(msg)
    return value


def parse_port(text: str) -> int:
    """Parse a TCP port: 0 (any free one) to 65535."""
    value = text.strip()
    if not value.isdigit() or int(value) > 65535:  # noqa: PLR2004
        msg = f"not a port: {text!r} (0 for any free port, up to 65535)"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def parse_days(text: str) -> int:
    """Parse a number of days for ``--within`` (0 = today only)."""
    value = text.strip()
    if not value.isdigit() or int(value) > MAX_RANGE_DAYS:
        msg = f"not a number of days: {text!r} (0 to {MAX_RANGE_DAYS})"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def duration_seconds(text: str) -> float | None:
    """Seconds of ``90m``, ``2h``, ``1d``, ``1h30m`` or plain ``5400``; else None."""
    value = text.strip().lower()
    if _SECONDS.match(value):
        return float(value)
    if not _DURATION.match(value):
        return None
    return sum(
        float(number) * _UNIT_SECONDS[unit]
        for number, unit in _DURATION_PART.findall(value)
    )


def parse_duration(text: str) -> timedelta:
    """Parse a lead time for ``--lead`` (see :func:`duration_seconds`)."""
    seconds = duration_seconds(text)
    if seconds is None:
        msg = "not a duration (use e.g. 90m, 2h, 1d, 1h30m or seconds)"
        raise argparse.ArgumentTypeError(msg)
    lead = timedelta(seconds=seconds)
    if lead > _MAX_LEAD:
        msg = f"a lead time must be at most {MAX_RANGE_DAYS} days"
        raise argparse.ArgumentTypeError(msg)
    return lead


def parse_weekdays(text: str) -> list[int]:
    """Parse ``mon,wed``, ``mon-fri``, ``0,2`` or ``monday`` (0 = Monday).

    The message of a mistake does not repeat the text.
    """
    try:
        return sorted(watch_weekdays(text))
    except ValueError:
        msg = "not weekdays (use mon..sun or 0-6 with 0 = Monday, e.g. mon,wed)"
        raise argparse.ArgumentTypeError(msg) from None


def parse_time_ranges(text: str) -> list[TimeRange]:
    """Parse ``08:00-12:00`` (several with commas), in Munich time.

    The message of a mistake does not repeat the text.
    """
    ranges = []
    for part in text.split(","):
        try:
            ranges.append(TimeRange.parse(part))
        except ValueError:
            msg = (
                "not a time range (use HH:MM-HH:MM, end after start, e.g. 08:00-12:00)"
            )
            raise argparse.ArgumentTypeError(msg) from None
    return ranges


def parse_urgency(text: str) -> Urgency:
    """Parse ``relaxed``, ``normal`` or ``urgent`` (any case).

    The message of a mistake does not repeat the text.
    """
    value = text.strip().lower()
    for urgency in URGENCIES:
        if value == urgency:
            return urgency
    msg = "not an urgency (use relaxed, normal or urgent)"
    raise argparse.ArgumentTypeError(msg)


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Add the options every command takes.

    They are accepted before and after the command name; on the commands
    their default is SUPPRESS so that they do not overwrite the top level.
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default(os.environ.get("MTA_BASE_URL") or DEFAULT_BASE_URL),
        help="API root (default: the city's server, or $MTA_BASE_URL)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),  # noqa: FBT003 - argparse's API
        help="machine output: one JSON document on stdout (watch: one per line)",
    )
    group.add_argument(
        "--timeout",
        type=parse_positive,
        metavar="SECONDS",
        default=default(15.0),
        help="seconds for one request (default: 15)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),  # noqa: FBT003 - argparse's API
        help="log to stderr and show tracebacks",
    )


def _add_services(parser: argparse._ActionsContainer, *, required: bool) -> None:
    parser.add_argument(
        "--service",
        dest="services",
        type=parse_service,
        action="extend",
        nargs="+",
        required=required,
        metavar="ID[:COUNT]",
        help="service id, optionally with how many times (repeatable)",
    )


def _add_offices(parser: argparse._ActionsContainer, *, required: bool) -> None:
    parser.add_argument(
        "--office",
        dest="offices",
        type=parse_id,
        action="extend",
        nargs="+",
        required=required,
        metavar="ID",
        help="office id (repeatable)"
        + ("" if required else "; default: every office offering all services"),
    )


def _add_refresh(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--refresh-catalogue",
        action="store_true",
        help="ask the server for its offices and services instead of using "
        "the copy kept in the state folder (kept for a day)",
    )


def _add_range(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--from", dest="start", type=parse_date, metavar="DATE", help="first day"
    )
    parser.add_argument(
        "--to", dest="end", type=parse_date, metavar="DATE", help="last day"
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, top=False)
    parser.set_defaults(command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``mta`` and all its commands."""
    parser = argparse.ArgumentParser(
        prog="mta",
        description=DESCRIPTION,
        epilog=EXIT_CODE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, top=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True

    offices = _command(commands, "offices", "list offices")
    offices.add_argument(
        "--service",
        dest="services",
        type=parse_service,
        action="extend",
        nargs="+",
        metavar="ID",
        help="only offices offering all these services",
    )

    services = _command(commands, "services", "list services")
    services.add_argument("--search", metavar="TEXT", help="part of the name")
    services.add_argument(
        "--office", type=parse_id, metavar="ID", help="only services of this office"
    )

    slots = _command(commands, "slots", "show bookable days and free slots")
    _add_services(slots, required=True)
    _add_offices(slots, required=False)
    _add_range(slots)
    slots.add_argument(
        "--day", type=parse_date, metavar="DATE", help="show the times of this day"
    )
    _add_refresh(slots)

    _add_book(_command(commands, "book", "reserve and pre-confirm a slot"))

    cancel = _command(commands, "cancel", "cancel an appointment")
    cancel.add_argument("link", nargs="?", metavar="LINK", help="link from the e-mail")
    cancel.add_argument("--process-id", type=parse_id, metavar="ID")
    cancel.add_argument(
        "--auth-key", metavar="KEY", help="the appointment's key (or $MTA_AUTH_KEY)"
    )

    confirm = _command(commands, "confirm", "activate a booking from its e-mail link")
    confirm.add_argument("link", metavar="LINK", help="the activation link")

    _add_watch(
        _command(
            commands,
            "watch",
            "report (and book) fitting slots as they appear and vanish",
            WATCH_EPILOG,
        )
    )

    simulate = _command(
        commands, "simulate", "run the local simulator", SIMULATE_EPILOG
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument(
        "--port", type=parse_port, default=8080, help="0: any free port"
    )
    simulate.add_argument("--scenario", metavar="NAME", default=None)
    simulate.add_argument("--speed", type=parse_positive, default=1.0, metavar="X")
    simulate.add_argument(
        "--control",
        action="store_true",
        help="also serve the control surface under /_simulator/ (see below)",
    )
    simulate.add_argument(
        "--api-generation",
        # The simulator's API_GENERATIONS; not imported, to keep `mta` quick.
        choices=("muc47", "muc45"),
        default="muc47",
        help="the city's routes: muc47 (current, default) or muc45 (only the "
        "legacy availability routes; mta then exits with 13)",
    )
    simulate.add_argument(
        "--visibility",
        # The simulator's VISIBILITY_MODELS; not imported, to keep `mta` quick.
        choices=("cron", "delayed", "random"),
        default="delayed",
        help="when released, cancelled and expired slots become visible: "
        "delayed (default; seconds after the city's per-minute cron), cron "
        "(exactly at the full minute) or random (any second of the minute); "
        "see below",
    )
    return parser


SIMULATE_EPILOG = """\
The simulator answers like the city's API below
http://HOST:PORT/buergeransicht/api/citizen/ (point --base-url there).
Munich's public holidays have no slots.

Released, cancelled (15 min after the cancel) and expired slots are freed by
the city's per-minute cron; --visibility says when they show:
  delayed  the cron run takes a while: log-normal, median 6 s after the full
           minute (sigma 0.7, at least 1 s; p95 ~19 s), inside bulk-release
           windows (Buergerbuero 7-8 h, 9-11 h, overnight) median 15 s
           (sigma 0.6, at least 3 s; p95 ~40 s); capped at 50 s; one draw
           per run and office, seeded (default)
  cron     exactly at the full minute
  random   uniformly at any second of the minute after the full minute
Competing citizens take most new slots within a minute and cancel 15 % of
what they booked at random times (10 min after booking to 1 h before the
appointment).

--control adds a control surface on the same port (JSON in, JSON out; off
unless asked for, its paths then answer the city's 404 notFound). Control
requests are never rate limited, counted or faulted:
  GET    /_simulator/            the list of control paths
  GET    /_simulator/outbox      mails sent, with activation links
                                 (?to=ADDRESS, ?process_id=N, ?kind=KIND)
  GET    /_simulator/faults      injected faults and the fault kinds
  POST   /_simulator/faults      inject one: {"kind": "html_block",
                                 "route": "available-calendar/", "method":
                                 null, "times": 1, "probability": 1.0,
                                 "status": null, "delay": null}
  DELETE /_simulator/faults      clear all faults
  GET    /_simulator/stats       requests by route, 429s, bookings, ...
  GET    /_simulator/bookings    processes with their state (?status=S)
  POST   /_simulator/bookings    {"process_id": N, "action": "confirm" |
                                 "cancel" | "expire"}
  POST   /_simulator/slots       release slots: {"office_id": N, "start":
                                 UNIX, "minutes": 15}
  GET    /_simulator/time        the simulated time (see --speed)
"""


def _add_book(book: argparse.ArgumentParser) -> None:
    _add_services(book, required=True)
    _add_offices(book, required=True)
    which = book.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--slot",
        type=parse_slot,
        metavar="TIMESTAMP|ISO",
        help="the slot's start (Unix seconds or ISO, Berlin time if naive)",
    )
    which.add_argument(
        "--earliest", action="store_true", help="book the earliest free slot"
    )
    _add_range(book)
    _add_refresh(book)
    _add_person(book)


def _add_watch(watch: argparse.ArgumentParser) -> None:
    what = watch.add_argument_group("what to watch (one watch from options, or --file)")
    _add_services(what, required=False)
    _add_offices(what, required=False)
    _add_range(what)
    what.add_argument(
        "--within",
        type=parse_days,
        metavar="DAYS",
        help="only the next DAYS days (with --from/--to: the narrower window)",
    )
    what.add_argument(
        "--weekday",
        dest="weekdays",
        type=parse_weekdays,
        action="extend",
        metavar="DAYS",
        help="only these weekdays: mon,wed or mon-fri or 0-6 (repeatable)",
    )
    what.add_argument(
        "--time",
        dest="times",
        type=parse_time_ranges,
        action="extend",
        metavar="HH:MM-HH:MM",
        help="only slots starting in this range, Munich time (repeatable)",
    )
    what.add_argument(
        "--lead",
        type=parse_duration,
        metavar="DURATION",
        help="only slots at least this far ahead: 90m, 2h, 1d or seconds",
    )
    what.add_argument(
        "--id",
        dest="watch_id",
        metavar="NAME",
        help="the watch's name in events and the state file "
        "(default: from the services and offices)",
    )
    what.add_argument(
        "--urgency",
        type=parse_urgency,
        metavar="{" + ",".join(URGENCIES) + "}",
        help="how urgent the watch is: relaxed (half the requests, slower to "
        "notice a slot), normal (default) or urgent (twice the requests, "
        "quicker); with --file, for the watches that do not say",
    )
    what.add_argument(
        "--file",
        metavar="FILE",
        help="watch everything in this JSON file instead (see below)",
    )
    booking = watch.add_argument_group("automatic booking")
    booking.add_argument(
        "--book",
        action="store_true",
        help="reserve and pre-confirm the first fitting slot (once per watch)",
    )
    _add_person(booking)
    running = watch.add_argument_group("running")
    _add_state(running)
    _add_refresh(running)
    running.add_argument(
        "--interval",
        type=parse_positive,
        metavar="SECONDS",
        help="look at a fixed pace instead of the request budget: seconds "
        "between looks outside the city's release windows (inside them at "
        "most 30; never below 30 against the city's server)",
    )
    running.add_argument(
        "--explain",
        action=ExplainAction,
        help="print how the watcher plans to spend its requests (per group: "
        "its urgency, requests a day, looks in and outside the release "
        "windows, expected detection time) and exit without looking for slots",
    )
    add_telegram_arguments(watch)
    stop = running.add_mutually_exclusive_group()
    stop.add_argument(
        "--once",
        action="store_true",
        help="look once and exit (exit code 3 when nothing fitting is free)",
    )
    stop.add_argument(
        "--checks", type=int, metavar="N", help="stop after N looks (default: never)"
    )


def _add_person(group: argparse._ActionsContainer) -> None:
    group.add_argument("--name", help="family name (or $MTA_NAME)")
    group.add_argument("--email", help="e-mail address (or $MTA_EMAIL)")
    group.add_argument("--phone", help="telephone number (or $MTA_PHONE)")
    group.add_argument("--text", help="remark for the office, if it asks for one")
    group.add_argument("--text2", help="second remark, if the office asks for one")
    group.add_argument(
        "--show-credentials",
        action="store_true",
        help="also print the auth key (needed to cancel without the e-mail link)",
    )


def _add_state(group: argparse._ActionsContainer) -> None:
    state = group.add_mutually_exclusive_group()
    state.add_argument(
        "--state",
        metavar="FILE",
        help="where reported slots and bookings are kept across restarts "
        "(default: $XDG_STATE_HOME/mta/watch.json or "
        "~/.local/state/mta/watch.json; '-' for none)",
    )
    state.add_argument(
        "--no-state",
        action="store_true",
        help="keep nothing: every run reports every fitting slot again",
    )
