"""The ``mta`` command line (also ``python -m mta_client``).

``main(argv)`` parses the arguments, runs one command against the city's
server (or ``--base-url``), prints a table or one JSON document, and returns
an exit code from :class:`ExitCode`. Errors become one line on stderr,
``mta: error: …``, without personal data; ``-v`` adds logs and tracebacks.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
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
    confirm,
    contact_from,
    credentials_from,
)
from .catalogue import list_offices, list_services
from .exitcodes import CLIError, ExitCode, describe, exit_code_for
from .output import Output
from .parsing import build_parser
from .slots import SlotQuery, plan_query, show_slots
from .watchdefs import check_file_conflicts, watches_from_args
from .watching import WatchRun, poll_policy, run_watches, state_store

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Sequence

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
        return _fail(out, err, verbose=args.verbose)
    return int(code)


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


def _fail(out: Output, err: BaseException, *, verbose: bool) -> int:
    code = exit_code_for(err)
    message = describe(err)
    if verbose:
        traceback.print_exception(err, file=out.stderr)
    out.error(message)
    if out.json_mode:
        error: dict[str, object] = {
            "exit_code": int(code),
            "kind": code.name.lower(),
            "type": type(err).__name__ if isinstance(err, MTAError) else None,
            "message": message,
        }
        if (retry_after := getattr(err, "retry_after", None)) is not None:
            error["retry_after"] = retry_after
        out.stdout.write(json.dumps({"error": error}, ensure_ascii=False) + "\n")
        out.stdout.flush()
    return int(code)


def _check_base_url(base_url: str) -> None:
    url = URL(base_url)
    if url.scheme not in {"http", "https"} or not url.host:
        msg = "invalid --base-url: must be an http(s) URL"
        raise CLIError(msg, ExitCode.USAGE)


async def _run(args: argparse.Namespace, out: Output) -> ExitCode:
    """Run a command that talks to the API."""
    command = _COMMANDS[args.command]
    async with MTAClient(
        base_url=args.base_url, request_timeout=args.timeout, retry=RETRY_POLICY
    ) as client:
        return await command(client, out, args)


async def _offices(
    client: MTAClient, out: Output, args: argparse.Namespace
) -> ExitCode:
    return await list_offices(client, out, services=args.services)


async def _services(
    client: MTAClient, out: Output, args: argparse.Namespace
) -> ExitCode:
    return await list_services(client, out, search=args.search, office_id=args.office)


async def _slots(client: MTAClient, out: Output, args: argparse.Namespace) -> ExitCode:
    query, _ = await plan_query(
        client,
        services=args.services,
        office_ids=args.offices,
        start=args.start,
        end=args.end,
        day=args.day,
    )
    return await show_slots(client, out, query)


async def _cancel(client: MTAClient, out: Output, args: argparse.Namespace) -> ExitCode:
    credentials = credentials_from(
        link=args.link, process_id=args.process_id, auth_key=args.auth_key
    )
    return await cancel(client, out, credentials)


async def _confirm(
    client: MTAClient, out: Output, args: argparse.Namespace
) -> ExitCode:
    return await confirm(client, out, args.link)


async def _book(client: MTAClient, out: Output, args: argparse.Namespace) -> ExitCode:
    # The person's data is checked before anything is sent.
    contact = contact_from(
        name=args.name,
        email=args.email,
        phone=args.phone,
        text=args.text,
        text2=args.text2,
    )
    query, catalogue = await plan_query(
        client,
        services=args.services,
        office_ids=args.offices,
        start=args.start,
        end=args.end,
    )
    request = BookingRequest(
        query=query, slot=args.slot, show_credentials=args.show_credentials
    )
    return await book(client, out, request, contact=contact, catalogue=catalogue)


async def _watch(client: MTAClient, out: Output, args: argparse.Namespace) -> ExitCode:
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
    catalogue = await client.get_catalogue()
    watches = watches_from_args(args, catalogue)
    store, path = state_store(
        args.state, no_state=args.no_state, base_url=str(client.base_url)
    )
    run = WatchRun(
        watches=tuple(watches),
        store=store,
        state_path=path,
        policy=policy,
        checks=checks,
        show_credentials=args.show_credentials,
    )
    names = {office.id: office.name for office in catalogue.offices}
    return await run_watches(client, out, run, names=names)


type _Command = Callable[[MTAClient, Output, argparse.Namespace], Awaitable[ExitCode]]

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

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "control": args.control,
        "api_generation": args.api_generation,
    }
    if args.scenario is not None:
        if args.scenario not in scenario_names():
            known = ", ".join(scenario_names())
            msg = f"invalid --scenario: unknown {args.scenario!r} (known: {known})"
            raise CLIError(msg, ExitCode.USAGE)
        options["scenario"] = args.scenario
    asyncio.run(serve(speed=args.speed, **options))
    return ExitCode.OK
