"""The watches of ``mta watch``: from its options, or from a JSON file.

Everything is checked before the first calendar request: the services and
offices against the catalogue, the person's data against each office's
rules, and every field against :class:`~mta_client.watch.Watch`. Mistakes
name the option or field, never the value: a watch file may hold a name, an
e-mail address or a phone number.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import timedelta
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from mta_client.exceptions import MTAValidationError
from mta_client.watch import Watch

from .booking import contact_from
from .catalogue import NotInCatalogueError, resolve_offices, resolve_services
from .exitcodes import CLIError, ExitCode
from .parsing import duration_seconds, parse_weekdays

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic_core import ErrorDetails

    from mta_client.models import Catalogue, ContactDetails
    from mta_client.watch import Urgency

__all__ = [
    "FILE_CONFLICTS",
    "ContactSource",
    "check_file_conflicts",
    "default_watch_id",
    "watches_from_args",
    "watches_from_file",
]

MAX_ID_LENGTH = 64
MAX_ERRORS_SHOWN = 3

# The options that describe a watch; with --file, the file does.
FILE_CONFLICTS = {
    "services": "--service",
    "offices": "--office",
    "start": "--from",
    "end": "--to",
    "within": "--within",
    "weekdays": "--weekday",
    "times": "--time",
    "lead": "--lead",
    "watch_id": "--id",
    "book": "--book",
}

# Watch fields as the options that set them.
FIELD_OPTIONS = {
    "id": "--id",
    "services": "--service",
    "office_ids": "--office",
    "start_date": "--from",
    "end_date": "--to",
    "within_days": "--within",
    "weekdays": "--weekday",
    "time_ranges": "--time",
    "min_lead": "--lead",
    "auto_book": "--book",
    "urgency": "--urgency",
}

# What to say about a field whose own check failed: the check's message may
# repeat the value (a time the parser did not understand), so it is not shown.
VALUE_HINTS = {
    "time_ranges": "use HH:MM-HH:MM with the end after the start",
    "weekdays": "use mon..sun or 0-6 (0 = Monday)",
    "services": "each service may be listed once",
    "id": "use printable characters, not only spaces",
    "min_lead": "must be from 0 to 365 days",
}

_BOOL = TypeAdapter(bool)


@dataclass
class ContactSource:
    """The person's data from the options or the environment, read when needed.

    Watches that do not book never need it, so nothing is asked for then.
    """

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    text: str | None = None
    text2: str | None = None
    _contact: ContactDetails | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ContactSource:
        """Take ``--name``, ``--email``, ``--phone``, ``--text``, ``--text2``."""
        return cls(
            name=args.name,
            email=args.email,
            phone=args.phone,
            text=args.text,
            text2=args.text2,
        )

    def get(self) -> ContactDetails:
        """Return the checked details (``MTA_NAME`` etc. fill the gaps)."""
        if self._contact is None:
            self._contact = contact_from(
                name=self.name,
                email=self.email,
                phone=self.phone,
                text=self.text,
                text2=self.text2,
            )
        return self._contact


def default_watch_id(
    services: Sequence[tuple[int, int]], office_ids: Sequence[int] | None
) -> str:
    """Name a watch after its services and offices: ``1071896x2@10308174+10489``.

    Without offices (every office offering the services) only the services
    count. Too long a name is shortened with a hash of the whole.
    """
    text = "+".join(
        str(service) if count == 1 else f"{service}x{count}"
        for service, count in sorted(services)
    )
    if office_ids:
        text += "@" + "+".join(str(o) for o in sorted(set(office_ids)))
    if len(text) <= MAX_ID_LENGTH:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{text[: MAX_ID_LENGTH - len(digest) - 1]}~{digest}"


def watches_from_args(args: argparse.Namespace, catalogue: Catalogue) -> list[Watch]:
    """Return the watches the options ask for (one, or those of ``--file``).

    ``--urgency`` is the urgency of the watch the options describe, and
    with ``--file`` that of each watch in it that does not say.
    """
    contact = ContactSource.from_args(args)
    if args.file is not None:
        return watches_from_file(
            Path(args.file), catalogue, contact.get, urgency=args.urgency
        )
    return [_watch_from_options(args, catalogue, contact)]


def check_file_conflicts(args: argparse.Namespace) -> None:
    """Refuse options that would describe a watch next to ``--file``."""
    if args.file is None:
        if not args.services:
            msg = "give the services to watch with --service ID (or use --file)"
            raise CLIError(msg, ExitCode.USAGE)
        return
    given = [
        option
        for name, option in FILE_CONFLICTS.items()
        if _given(getattr(args, name, None))
    ]
    if given:
        msg = f"--file cannot be combined with {', '.join(given)}"
        raise CLIError(msg, ExitCode.USAGE)


def _given(value: object) -> bool:
    """Whether an option was used (``--within 0`` was; ``--book`` unset was not)."""
    return value is not None and value is not False and value != []


def _watch_from_options(
    args: argparse.Namespace, catalogue: Catalogue, contact: ContactSource
) -> Watch:
    service_ids = [s for s, _ in args.services]
    resolve_services(catalogue, service_ids)
    offices = resolve_offices(catalogue, args.offices, service_ids)
    if args.start and args.end and args.end < args.start:
        msg = "invalid --to: must not be before --from"
        raise CLIError(msg, ExitCode.USAGE)
    values: dict[str, Any] = {
        "id": args.watch_id or default_watch_id(args.services, args.offices),
        "services": [{"service_id": s, "count": c} for s, c in args.services],
        "office_ids": [o.id for o in offices],
        "start_date": args.start,
        "end_date": args.end,
        "within_days": args.within,
        "time_ranges": tuple(args.times or ()),
        "min_lead": args.lead or timedelta(0),
        "auto_book": args.book,
        "contact": contact.get() if args.book else None,
    }
    if args.urgency is not None:
        values["urgency"] = args.urgency
    if args.weekdays:
        values["weekdays"] = args.weekdays
    watch = _validated(values, prefix="", names=FIELD_OPTIONS)
    watch.check_contact(catalogue)
    return watch


def watches_from_file(
    path: Path,
    catalogue: Catalogue,
    contact: Callable[[], ContactDetails],
    *,
    urgency: Urgency | None = None,
) -> list[Watch]:
    """Read a JSON list of watches.

    Booking watches without ``contact`` get the person's data from
    ``contact()``; watches without ``urgency`` (or with null) get ``urgency``
    (when given; else the default, normal).
    """
    where = f"invalid --file {path}"
    items = _read_list(path, where)
    watches: list[Watch] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(items, 1):
        prefix = f"{where}: watch {number}: "
        if not isinstance(item, dict):
            raise CLIError(f"{prefix}expected a JSON object", ExitCode.USAGE)
        values = _prepared(item, contact, prefix)
        if values.get("urgency") is None:  # not said (or null): the default
            values.pop("urgency", None)
            if urgency is not None:
                values["urgency"] = urgency
        watch = _validated(values, prefix=prefix, names={})
        if watch.id in seen:
            msg = f"{prefix}its id is also the id of watch {seen[watch.id]}"
            raise CLIError(msg, ExitCode.USAGE)
        seen[watch.id] = number
        _check_catalogue(watch, catalogue, prefix)
        try:
            watch.check_contact(catalogue)
        except MTAValidationError as err:
            raise CLIError(f"{prefix}contact.{err}", ExitCode.USAGE) from None
        watches.append(watch)
    return watches


def _read_list(path: Path, where: str) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CLIError(f"{where}: {err.strerror}", ExitCode.USAGE) from None
    except UnicodeDecodeError:
        raise CLIError(f"{where}: not UTF-8 text", ExitCode.USAGE) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        # The position, not the text around it: the file may hold personal data.
        msg = f"{where}: not valid JSON (line {err.lineno}, column {err.colno})"
        raise CLIError(msg, ExitCode.USAGE) from None
    except RecursionError:
        msg = f"{where}: not valid JSON (nested too deeply)"
        raise CLIError(msg, ExitCode.USAGE) from None
    if not isinstance(data, list) or not data:
        raise CLIError(f"{where}: expected a JSON list of watches", ExitCode.USAGE)
    return data


def _prepared(
    item: dict[str, Any], contact: Callable[[], ContactDetails], prefix: str
) -> dict[str, Any]:
    """Fill in what the file may leave out or write more simply."""
    values = dict(item)
    if isinstance(lead := values.get("min_lead"), str):
        seconds = duration_seconds(lead)
        if seconds is not None:
            values["min_lead"] = seconds
    weekdays = values.get("weekdays")
    if isinstance(weekdays, str | list):
        values["weekdays"] = _weekdays(weekdays, prefix)
    if values.get("contact") is None and _books(values.get("auto_book")):
        values["contact"] = contact()
    return values


def _weekdays(value: str | list[Any], prefix: str) -> Any:
    """Read ``"mon-fri"`` and ``["mon", 2]`` with the options' rules."""
    parts = [value] if isinstance(value, str) else value
    days: set[int] = set()
    for part in parts:
        if not isinstance(part, str):
            return value  # numbers (or nonsense): the Watch checks them
        try:
            days.update(parse_weekdays(part))
        except argparse.ArgumentTypeError:
            msg = f"{prefix}weekdays: {VALUE_HINTS['weekdays']}"
            raise CLIError(msg, ExitCode.USAGE) from None
    return sorted(days)


def _books(value: Any) -> bool:
    try:
        return _BOOL.validate_python(value if value is not None else False)
    except ValidationError:
        return False  # the Watch reports it


def _validated(values: dict[str, Any], *, prefix: str, names: dict[str, str]) -> Watch:
    try:
        return Watch.model_validate(values)
    except ValidationError as err:
        problems = [_problem(e, names) for e in err.errors(include_input=False)]
        shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
        if len(problems) > MAX_ERRORS_SHOWN:
            shown += f"; and {len(problems) - MAX_ERRORS_SHOWN} more"
        message = f"{prefix}{shown}" if prefix else f"invalid {shown}"
        raise CLIError(message, ExitCode.USAGE) from None


def _problem(error: ErrorDetails, names: dict[str, str]) -> str:
    """One mistake, by field name; the value is never repeated."""
    loc = [str(part) for part in error["loc"]]
    if not loc:
        # The Watch's own consistency checks: fixed texts naming fields.
        return error["msg"].removeprefix("Value error, ")
    top = loc[0]
    label = names.get(top) or ".".join(loc)
    if error["type"] == "value_error":
        detail = VALUE_HINTS.get(top, "is not valid")
    elif error["type"] == "missing":
        detail = "is required"
    elif error["type"] == "extra_forbidden":
        detail = "is not a watch field"
    else:
        # pydantic's own messages describe the expectation, not the input.
        detail = error["msg"]
    return f"{label}: {detail}"


def _check_catalogue(watch: Watch, catalogue: Catalogue, prefix: str) -> None:
    service_ids = [s.service_id for s in watch.services]
    try:
        resolve_services(catalogue, service_ids)
    except CLIError as err:
        raise NotInCatalogueError(prefix + str(err), err.code) from None
    for office_id in watch.office_ids:
        if catalogue.office(office_id) is None:
            msg = f"{prefix}unknown office {office_id} (see `mta offices`)"
            raise NotInCatalogueError(msg, ExitCode.NOT_FOUND)
        missing = sorted(set(service_ids) - catalogue.services_at(office_id))
        if missing:
            ids = ", ".join(map(str, missing))
            msg = f"{prefix}office {office_id} does not offer service {ids}"
            raise NotInCatalogueError(msg, ExitCode.USAGE)
