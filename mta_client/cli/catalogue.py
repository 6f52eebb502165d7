"""``mta offices`` and ``mta services``, and catalogue look-ups for all commands."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final
import unicodedata

from mta_client.exceptions import (
    MTACaptchaMissingError,
    MTAError,
    MTAInvalidLocationAndServiceCombinationError,
    MTAProviderNotFoundError,
    MTARequestNotFoundError,
    MTAScopeNotFoundError,
    MTAScopesNotFoundError,
)

from .exitcodes import CLIError, ExitCode
from .output import format_address, table

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from mta_client.client import MTAClient
    from mta_client.models import Catalogue, Office, Service

    from .output import Output
    from .session import CatalogueFile

__all__ = [
    "CONTRADICTIONS",
    "NotInCatalogueError",
    "list_offices",
    "list_services",
    "matches",
    "resolve_offices",
    "resolve_services",
    "with_fresh_catalogue",
]

_LOGGER = logging.getLogger(__name__)


class NotInCatalogueError(CLIError):
    """An id the catalogue does not know, or services its offices do not offer."""


CONTRADICTIONS: Final[tuple[type[MTAError], ...]] = (
    MTAInvalidLocationAndServiceCombinationError,
    MTAProviderNotFoundError,
    MTARequestNotFoundError,
    MTAScopeNotFoundError,
    MTAScopesNotFoundError,
    MTACaptchaMissingError,
)
"""The server's answers that say the catalogue asked by is out of date.

An office no longer offers a service (``invalidLocationAndServiceCombination``),
an office, service or scope is gone (``providerNotFound``, ``requestNotFound``,
``scopeNotFound``, ``scopesNotFound``), or an office wants a captcha now that
did not (``captchaMissing``: the client sent none because the catalogue said
so).
"""

_OUT_OF_DATE: Final[tuple[type[Exception], ...]] = (
    NotInCatalogueError,
    *CONTRADICTIONS,
)


async def with_fresh_catalogue[T](
    kept: CatalogueFile | None, attempt: Callable[[bool], Awaitable[T]]
) -> T:
    """Run ``attempt(False)``; once more as ``attempt(True)`` if the catalogue was old.

    ``attempt(refresh)`` plans with the catalogue (``refresh``: ask the
    server for it first) and sends what it plans. When it fails on an id
    the catalogue does not know (:class:`NotInCatalogueError`) or on one of
    :data:`CONTRADICTIONS`, and the catalogue came from the file kept
    between runs, the catalogue may be out of date: it is asked for again
    and the attempt made once more, whose outcome counts. A catalogue the
    server gave in this run is not asked for again.
    """
    try:
        return await attempt(False)  # noqa: FBT003 - the attempt's own flag
    except _OUT_OF_DATE as err:
        if kept is None or not kept.from_cache:
            raise
        _LOGGER.info(
            "The kept catalogue may be out of date (%s); asking the server",
            type(err).__name__,
        )
    return await attempt(True)  # noqa: FBT003


_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _forms(text: str) -> set[str]:
    """Spellings of a text a search should find: ``ü``, ``ue`` and ``u``."""
    folded = " ".join(text.casefold().replace("\u2013", "-").split())
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c)
    )
    return {folded, folded.translate(_TRANSLITERATION), stripped}


def matches(query: str, name: str) -> bool:
    """Case-insensitive, umlaut-tolerant substring search.

    ``burgerburo``, ``buergerbuero`` and ``Bürgerbüro`` all find
    "Bürgerbüro"; ``strasse`` finds "Straße".
    """
    names = _forms(name)
    return any(q in n for q in _forms(query) for n in names)


def resolve_services(catalogue: Catalogue, service_ids: Iterable[int]) -> list[Service]:
    """Return the catalogue's services, or fail naming the unknown id."""
    found: list[Service] = []
    for service_id in service_ids:
        service = catalogue.service(service_id)
        if service is None:
            msg = f"unknown service {service_id} (see `mta services`)"
            raise NotInCatalogueError(msg, ExitCode.NOT_FOUND)
        found.append(service)
    return found


def resolve_offices(
    catalogue: Catalogue, office_ids: Sequence[int] | None, service_ids: list[int]
) -> list[Office]:
    """Return the offices to ask, checked against the services.

    Without ids: every office offering all services, except those the city
    hides for them (``disabledByServices``: another office books them). The
    city requires every office of a calendar request to offer every service,
    so a mismatch is reported before anything is sent.
    """
    if not office_ids:
        wanted = set(service_ids)
        offices = [
            o
            for o in catalogue.offices_offering(wanted)
            if not wanted & set(o.disabled_by_services)
        ]
        if not offices:
            msg = "no office offers all these services together"
            raise NotInCatalogueError(msg, ExitCode.NOTHING_FOUND)
        return offices
    offices = []
    for office_id in dict.fromkeys(office_ids):
        office = catalogue.office(office_id)
        if office is None:
            msg = f"unknown office {office_id} (see `mta offices`)"
            raise NotInCatalogueError(msg, ExitCode.NOT_FOUND)
        missing = sorted(set(service_ids) - catalogue.services_at(office_id))
        if missing:
            ids = ", ".join(map(str, missing))
            msg = f"invalid --office: office {office_id} does not offer service {ids}"
            raise NotInCatalogueError(msg, ExitCode.USAGE)
        offices.append(office)
    return offices


async def list_offices(
    client: MTAClient, out: Output, *, services: list[tuple[int, int]] | None
) -> ExitCode:
    """List offices, optionally only those offering all given services.

    Asks the server: a listing shows what it offers now (the answer is kept
    for the next command, see :class:`~mta_client.cli.session.CatalogueFile`).
    """
    catalogue = await client.get_catalogue(refresh=True)
    service_ids = [s for s, _ in services or []]
    resolve_services(catalogue, service_ids)
    offices = (
        catalogue.offices_offering(service_ids) if service_ids else catalogue.offices
    )
    rows = [
        (o.id, o.name, format_address(o.address), "yes" if o.captcha_required else "no")
        for o in offices
    ]
    out.result(
        {
            "offices": [
                {
                    "id": o.id,
                    "name": o.name,
                    "address": format_address(o.address) or None,
                    "captcha_required": o.captcha_required,
                }
                for o in offices
            ]
        }
    )
    if not offices:
        out.note("no office offers all these services")
        return ExitCode.NOTHING_FOUND
    out.text(table(("ID", "NAME", "ADDRESS", "CAPTCHA"), rows))
    return ExitCode.OK


async def list_services(
    client: MTAClient, out: Output, *, search: str | None, office_id: int | None
) -> ExitCode:
    """List services, optionally by a name search and one office.

    Asks the server, as :func:`list_offices` does.
    """
    catalogue = await client.get_catalogue(refresh=True)
    services = catalogue.services
    if office_id is not None:
        if catalogue.office(office_id) is None:
            msg = f"unknown office {office_id} (see `mta offices`)"
            raise NotInCatalogueError(msg, ExitCode.NOT_FOUND)
        offered = catalogue.services_at(office_id)
        services = [s for s in services if s.id in offered]
    if search:
        services = [s for s in services if matches(search, s.name)]
    counts = {s.id: len(catalogue.offices_offering([s.id])) for s in services}
    out.result(
        {
            "services": [
                {
                    "id": s.id,
                    "name": s.name,
                    "max_quantity": s.max_quantity,
                    "offices": counts[s.id],
                }
                for s in services
            ]
        }
    )
    if not services:
        out.note("no service matches")
        return ExitCode.NOTHING_FOUND
    rows = [(s.id, s.name, s.max_quantity, counts[s.id]) for s in services]
    out.text(table(("ID", "NAME", "MAX", "OFFICES"), rows))
    return ExitCode.OK
