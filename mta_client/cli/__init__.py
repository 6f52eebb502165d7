"""The ``mta`` command line (also ``python -m mta_client``).

``main(argv)`` parses the arguments, runs one command against the city's
server (or ``--base-url``), prints a table or one JSON document, and returns
an exit code from :class:`ExitCode`. Errors become one line on stderr,
``mta: error: …``, without personal data; ``-v`` adds logs and tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import ipaddress
import json
import logging
import os
import socket
import sys
import traceback
from typing import TYPE_CHECKING, Any

from yarl import URL

from mta_client.client import MTAClient, RetryPolicy
from mta_client.exceptions import MTAError

from .booking import (
    BookingRequest,
    book,
    cancel,
    choose_slot,
    confirm,
    contact_from,
    credentials_from,
)
from .catalogue import list_offices, list_services, with_fresh_catalogue
from .exitcodes import CLIError, ExitCode, describe, exit_code_for, server_name
from .output import Output
from .parsing import build_parser
from .session import (
    CATALOGUE_FILE,
    CATALOGUE_TTL,
    TOKEN_FILE,
    BudgetNotice,
    CatalogueFile,
    TokenFile,
    state_folder,
)
from .slots import SlotQuery, fetch_calendar, plan_query, show_slots
from .telegram import TelegramRelay, telegram_settings
from .watchdefs import check_file_conflicts, watches_from_args
from .watching import (
    FailureReport,
    StateLock,
    WatchRun,
    check_state,
    load_catalogue,
    poll_policy,
    run_watches,
    state_store,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Sequence

    from mta_client.models import AvailableCalendar, Catalogue, Slot
    from mta_client.watch import Watch

__all__ = [
    "ExitCode",
    "SlotQuery",
    "WatchRun",
    "build_parser",
    "main",
    "run_watches",
]

_LOGGER = logging.getLogger(__name__)

RETRY_POLICY = RetryPolicy()
"""How the command retries GETs; tests replace it with a faster one."""

SIMULATOR_HINT = (
    "the simulator needs extra packages: pip install 'mta-client[simulator]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mta`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:  # argparse: --help (0) or a usage error (2)
        return err.code if isinstance(err.code, int) else ExitCode.USAGE
    out = Output(json_mode=args.json)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    else:
        _quiet_library_logs()
    try:
        code = _run_command(args, out)
        out.flush()
    except BrokenPipeError:
        # The reader went away (`mta slots | head`): stop quietly.
        _silence_stdout()
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        # Ctrl-C is how a watch or the simulator is meant to end.
        stopping = args.command in {"watch", "simulate"}
        out.flush()
        return ExitCode.OK if stopping else 130
    except Exception as err:  # noqa: BLE001 - every error becomes an exit code
        return _fail(out, err, verbose=args.verbose, server=_server(args))
    return int(code)


def _server(args: argparse.Namespace) -> str | None:
    """The name of the server asked in messages (None: the city's)."""
    try:
        return server_name(args.base_url)
    except ValueError:  # not a URL: reported as a usage error
        return None


def _quiet_library_logs() -> None:
    """Keep the library's warnings out of the output unless ``-v`` asks for logs.

    Without any handler, Python would print them bare on stderr (its "last
    resort"); the command reports failures in its own words instead.
    """
    logger = logging.getLogger("mta_client")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests)
        pass


def _run_command(args: argparse.Namespace, out: Output) -> ExitCode:
    if args.command == "simulate":
        return _simulate(args, out)
    _check_base_url(args.base_url)
    return asyncio.run(_run(args, out))


def _fail(
    out: Output, err: BaseException, *, verbose: bool, server: str | None = None
) -> int:
    code = exit_code_for(err)
    message = describe(err, server=server)
    if verbose:
        traceback.print_exception(err, file=out.stderr)
    out.error(message)
    if out.json_mode:
        error: dict[str, object] = {
            "exit_code": int(code),
            "kind": code.name.lower(),
            "type": type(err).__name__
            if isinstance(err, MTAError)
            else getattr(err, "error_type", None),
            "message": message,
        }
        if (retry_after := getattr(err, "retry_after", None)) is not None:
            error["retry_after"] = retry_after
        out.stdout.write(json.dumps({"error": error}, ensure_ascii=False) + "\n")
        out.stdout.flush()
    return int(code)


_MAX_PORT = 65535


def _check_base_url(base_url: str) -> None:
    try:
        url = URL(base_url)
        port = url.port
    except ValueError:
        msg = "invalid --base-url: not a URL (its port must be a number 1 to 65535)"
        raise CLIError(msg, ExitCode.USAGE) from None
    if url.scheme not in {"http", "https"} or not url.host:
        msg = "invalid --base-url: must be an http(s) URL"
        raise CLIError(msg, ExitCode.USAGE)
    if port is not None and not 0 < port <= _MAX_PORT:
        msg = f"invalid --base-url: the port must be 1 to {_MAX_PORT}"
        raise CLIError(msg, ExitCode.USAGE)


# The commands that look ids up in the catalogue kept between runs. The
# listings (offices, services) ask the server: they show what it offers now,
# and keep that for the next command.
_KEPT_CATALOGUE = frozenset({"slots", "book", "watch"})


def _keeps_state(args: argparse.Namespace) -> bool:
    """Whether the run keeps the captcha token and the catalogue for the next."""
    return not (args.command == "watch" and (args.no_state or args.state == "-"))


async def _run(args: argparse.Namespace, out: Output) -> ExitCode:
    """Run a command that talks to the API."""
    command = _COMMANDS[args.command]
    async with MTAClient(
        base_url=args.base_url,
        request_timeout=args.timeout,
        retry=RETRY_POLICY,
        # A watch asks for the catalogue again after this (see CATALOGUE_TTL).
        catalogue_ttl=CATALOGUE_TTL,
    ) as client:
        client.budget.on_wait = BudgetNotice(
            out=out, budget=client.budget, server=_server(args)
        )
        if not _keeps_state(args):
            return await command(client, out, args, None)
        folder = state_folder()
        tokens = TokenFile(folder / TOKEN_FILE)
        tokens.load_into(client)
        catalogues = CatalogueFile(folder / CATALOGUE_FILE)
        catalogues.attach(client)
        if args.command in _KEPT_CATALOGUE and not args.refresh_catalogue:
            await catalogues.load_into(client)
        try:
            return await command(client, out, args, catalogues)
        finally:
            await tokens.save_from(client)


async def _offices(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    _kept: CatalogueFile | None,
) -> ExitCode:
    return await list_offices(client, out, services=args.services)


async def _services(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    _kept: CatalogueFile | None,
) -> ExitCode:
    return await list_services(client, out, search=args.search, office_id=args.office)


async def _slots(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    kept: CatalogueFile | None,
) -> ExitCode:
    async def look(refresh: bool) -> tuple[SlotQuery, AvailableCalendar]:  # noqa: FBT001
        query, _ = await plan_query(
            client,
            services=args.services,
            office_ids=args.offices,
            start=args.start,
            end=args.end,
            day=args.day,
            refresh=refresh,
        )
        return query, await fetch_calendar(client, query)

    query, calendar = await with_fresh_catalogue(kept, look)
    return show_slots(out, query, calendar)


async def _cancel(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    _kept: CatalogueFile | None,
) -> ExitCode:
    credentials = credentials_from(
        link=args.link, process_id=args.process_id, auth_key=args.auth_key
    )
    return await cancel(client, out, credentials)


async def _confirm(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    _kept: CatalogueFile | None,
) -> ExitCode:
    return await confirm(client, out, args.link)


async def _book(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    kept: CatalogueFile | None,
) -> ExitCode:
    # The person's data is checked before anything is sent.
    contact = contact_from(
        name=args.name,
        email=args.email,
        phone=args.phone,
        text=args.text,
        text2=args.text2,
    )

    async def choose(refresh: bool) -> tuple[BookingRequest, Catalogue, Slot]:  # noqa: FBT001
        query, catalogue = await plan_query(
            client,
            services=args.services,
            office_ids=args.offices,
            start=args.start,
            end=args.end,
            refresh=refresh,
        )
        request = BookingRequest(
            query=query, slot=args.slot, show_credentials=args.show_credentials
        )
        return request, catalogue, await choose_slot(client, request, contact)

    # Nothing is reserved before the slot is chosen: trying that again with
    # a new catalogue is safe.
    request, catalogue, slot = await with_fresh_catalogue(kept, choose)
    return await book(
        client, out, request, slot=slot, contact=contact, catalogue=catalogue
    )


async def _watch(
    client: MTAClient,
    out: Output,
    args: argparse.Namespace,
    kept: CatalogueFile | None,
) -> ExitCode:
    checks = 1 if args.once else args.checks
    if checks is not None and checks < 1:
        msg = "invalid --checks: must be at least 1"
        raise CLIError(msg, ExitCode.USAGE)
    check_file_conflicts(args)
    policy = poll_policy(str(client.base_url), args.interval)
    if args.interval is not None and policy.other_interval != args.interval:
        out.note(
            f"--interval raised to {policy.other_interval:.0f} s for the city's server"
        )
    server = server_name(client.base_url)
    store, path = state_store(
        args.state, no_state=args.no_state, base_url=str(client.base_url)
    )
    async with contextlib.AsyncExitStack() as stack:
        # The lock first, then the state: a second watch, or a state file
        # that cannot be used, is refused before anything is sent.
        if path is not None:
            await stack.enter_async_context(StateLock(path))
        await check_state(store, path)
        # A long watch waits for the server; counted looks end at a failure.
        failures = FailureReport(out=out, server=server)

        async def prepare(refresh: bool) -> tuple[Catalogue, list[Watch]]:  # noqa: FBT001
            catalogue = await load_catalogue(
                client, failures, policy, retry=checks is None, refresh=refresh
            )
            return catalogue, watches_from_args(args, catalogue)

        catalogue, watches = await with_fresh_catalogue(kept, prepare)
        relay = None
        if (telegram := telegram_settings(args)) is not None:
            # Checks the token first: a rejected one ends the command (exit 2).
            relay = await stack.enter_async_context(
                TelegramRelay(telegram, catalogue=catalogue, watches=watches)
            )
        run = WatchRun(
            watches=tuple(watches),
            store=store,
            state_path=path,
            policy=policy,
            checks=checks,
            show_credentials=args.show_credentials,
            lock=False,
            server=server,
            interrupted=await check_state(store, path, catalogue=catalogue),
            alerts=relay,
        )
        names = {office.id: office.name for office in catalogue.offices}
        return await run_watches(client, out, run, names=names)


type _Command = Callable[
    [MTAClient, Output, argparse.Namespace, CatalogueFile | None], Awaitable[ExitCode]
]

_COMMANDS: dict[str, _Command] = {
    "offices": _offices,
    "services": _services,
    "slots": _slots,
    "book": _book,
    "cancel": _cancel,
    "confirm": _confirm,
    "watch": _watch,
}


def _simulate(args: argparse.Namespace, out: Output) -> ExitCode:
    """Start the local simulator until Ctrl-C; it prints its base URL."""
    # The simulator imports altcha only when the first captcha is asked for;
    # check now rather than fail inside a running server.
    if importlib.util.find_spec("altcha") is None:
        out.error(SIMULATOR_HINT)
        return ExitCode.UNEXPECTED
    from mta_client.simulator import scenario_names, serve  # noqa: PLC0415

    if not 0 <= args.port <= _MAX_PORT:
        msg = f"invalid --port: must be 0 (any free port) to {_MAX_PORT}"
        raise CLIError(msg, ExitCode.USAGE)
    _check_host(args.host)

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "control": args.control,
        "api_generation": args.api_generation,
        "visibility": args.visibility,
    }
    if args.scenario is not None:
        if args.scenario not in scenario_names():
            known = ", ".join(scenario_names())
            msg = f"invalid --scenario: unknown {args.scenario!r} (known: {known})"
            raise CLIError(msg, ExitCode.USAGE)
        options["scenario"] = args.scenario
    try:
        asyncio.run(serve(speed=args.speed, **options))
    except OSError as err:
        message = _listen_error(err, host=args.host, port=args.port)
        if message is None:
            raise
        raise CLIError(message, ExitCode.USAGE) from None
    return ExitCode.OK


def _check_host(host: str) -> None:
    """Refuse a host that only looks like an IP address (never resolved by DNS)."""
    if host and all(c.isdigit() or c == "." for c in host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            msg = f"invalid --host: {host!r} is not an IP address"
            raise CLIError(msg, ExitCode.USAGE) from None


# Why a server cannot listen, by the option that is wrong.
_HOST_ERRORS = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})
_PORT_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES})


def _listen_error(err: OSError, *, host: str, port: int) -> str | None:
    """The one-line message for a server that cannot listen (None: another error)."""
    # asyncio says "could not bind on any address" without an errno when
    # no address of the host could be bound.
    unbound = err.errno is None and "bind" in str(err)
    if isinstance(err, socket.gaierror) or err.errno in _HOST_ERRORS or unbound:
        reason = err.strerror or "not an address of this machine"
        return f"invalid --host: cannot listen on {host!r}: {reason}"
    if err.errno == errno.EADDRINUSE:
        return f"invalid --port: {port} is already in use on {host}"
    if err.errno in _PORT_ERRORS:
        return f"invalid --port: no permission to listen on port {port}"
    return None
