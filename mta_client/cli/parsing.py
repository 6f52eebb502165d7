"""The argument parser of ``mta`` and the types of its arguments."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
import os
import re

from mta_client.client import BERLIN, DEFAULT_BASE_URL

from .exitcodes import EXIT_CODE_HELP

__all__ = [
    "build_parser",
    "parse_date",
    "parse_service",
    "parse_slot",
    "today",
]

_RELATIVE = re.compile(r"^\+(\d{1,4})$")
_SERVICE = re.compile(r"^(\d{1,10})(?::(\d{1,2}))?$")
_MAX_ID = 2**31 - 1
_MAX_COUNT = 25

DESCRIPTION = """\
Find and book appointments at Munich's citizen offices (Bürgerbüro, KVR,
Ausländerbehörde) through the city's public booking API.

Dates: YYYY-MM-DD, 'today', 'tomorrow' or '+N' (N days from today).
Times are shown in Europe/Berlin. Personal data for 'book' may come from
the environment (MTA_NAME, MTA_EMAIL, MTA_PHONE) to keep it out of the
shell history; it is never printed.
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
        return today() + timedelta(days=int(match.group(1)))
    try:
        return date.fromisoformat(value)
    except ValueError:
        msg = f"not a date: {text!r} (use YYYY-MM-DD, today, tomorrow or +N)"
        raise argparse.ArgumentTypeError(msg) from None


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
    if value.isdigit():
        return datetime.fromtimestamp(int(value), BERLIN)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        msg = f"not a slot: {text!r} (a Unix timestamp or 2026-12-01T08:30)"
        raise argparse.ArgumentTypeError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BERLIN)


def parse_positive(text: str) -> float:
    """Parse a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"not a positive number: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


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


def _add_services(parser: argparse.ArgumentParser, *, required: bool) -> None:
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


def _add_offices(parser: argparse.ArgumentParser, *, required: bool) -> None:
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


def _add_range(parser: argparse.ArgumentParser) -> None:
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
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary)
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

    _add_book(_command(commands, "book", "reserve and pre-confirm a slot"))

    cancel = _command(commands, "cancel", "cancel an appointment")
    cancel.add_argument("link", nargs="?", metavar="LINK", help="link from the e-mail")
    cancel.add_argument("--process-id", type=parse_id, metavar="ID")
    cancel.add_argument(
        "--auth-key", metavar="KEY", help="the appointment's key (or $MTA_AUTH_KEY)"
    )

    confirm = _command(commands, "confirm", "activate a booking from its e-mail link")
    confirm.add_argument("link", metavar="LINK", help="the activation link")

    _add_watch(_command(commands, "watch", "report new and vanished slots"))

    simulate = _command(commands, "simulate", "run the local simulator")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8080)
    simulate.add_argument("--scenario", metavar="NAME", default=None)
    simulate.add_argument("--speed", type=parse_positive, default=1.0, metavar="X")
    return parser


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
    book.add_argument("--name", help="family name (or $MTA_NAME)")
    book.add_argument("--email", help="e-mail address (or $MTA_EMAIL)")
    book.add_argument("--phone", help="telephone number (or $MTA_PHONE)")
    book.add_argument("--text", help="remark for the office, if it asks for one")
    book.add_argument(
        "--show-credentials",
        action="store_true",
        help="also print the auth key (needed to cancel without the e-mail link)",
    )


def _add_watch(watch: argparse.ArgumentParser) -> None:
    _add_services(watch, required=True)
    _add_offices(watch, required=False)
    _add_range(watch)
    watch.add_argument(
        "--interval",
        type=parse_positive,
        default=60.0,
        metavar="SECONDS",
        help="seconds between checks (default: 60; the budget may stretch it)",
    )
    stop = watch.add_mutually_exclusive_group()
    stop.add_argument(
        "--once",
        action="store_true",
        help="check once and exit (exit code 3 when nothing is free)",
    )
    stop.add_argument(
        "--checks", type=int, metavar="N", help="stop after N checks (default: never)"
    )
