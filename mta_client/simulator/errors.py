"""Error bodies of the simulated city server, built from the client's catalogue.

The simulator and the client share :data:`mta_client.exceptions.ERROR_CLASSES`,
so a code, its HTTP status, message and type are defined exactly once.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from mta_client.exceptions import ERROR_CLASSES

__all__ = [
    "CONTENT_TYPE",
    "CityError",
    "error_body",
    "error_response",
    "internal_error_response",
    "json_response",
]

CONTENT_TYPE = "application/json; charset=utf-8"


def dumps(data: Any) -> str:
    """Encode JSON the way the city's PHP does (unescaped unicode, compact)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Return ``data`` as the city's JSON response."""
    return web.Response(
        body=dumps(data).encode(),
        status=status,
        headers={"Content-Type": CONTENT_TYPE},
    )


def error_body(*codes: str) -> tuple[dict[str, Any], int]:
    """Return the city's ``{"errors": [...]}`` body and its HTTP status.

    The status is the highest ``statusCode`` among the errors, as the city's
    ``ErrorMessages::getHighestStatusCode`` computes it. Unknown codes become
    ``unknownError`` (HTTP 520), like ``ErrorMessages::get``.
    """
    entries: list[dict[str, Any]] = []
    for code in codes:
        cls = ERROR_CLASSES.get(code, ERROR_CLASSES["unknownError"])
        entries.append(
            {
                "errorCode": cls.code,
                "errorMessage": cls.default_message,
                "statusCode": cls.default_status,
                "errorType": cls.default_error_type,
            }
        )
    status = max(int(e["statusCode"]) for e in entries)
    return {"errors": entries}, status


def error_response(*codes: str, status: int | None = None) -> web.Response:
    """Return the city's error response for ``codes``.

    Args:
        *codes: the city's ``errorCode`` values, in order.
        status: HTTP status overriding the computed one (the city does this for
            a few routes, e.g. ``/my-appointments/`` answers 401).

    """
    body, computed = error_body(*codes)
    return json_response(body, status=status if status is not None else computed)


def internal_error_response(code: int = 500) -> web.Response:
    """Return the city's envelope for an uncaught exception (``ErrorHandler``)."""
    body = {"error": {"message": "An internal error has occurred.", "code": code}}
    return json_response(body, status=code)


class CityError(Exception):
    """Raised inside the simulator to answer with the city's error body."""

    def __init__(self, *codes: str, status: int | None = None) -> None:
        """Remember the error codes (all of one validation step)."""
        super().__init__(", ".join(codes))
        self.codes = codes
        self.status = status

    def response(self) -> web.Response:
        """Return the error as an HTTP response."""
        return error_response(*self.codes, status=self.status)


class InternalError(Exception):
    """Raised where the city's PHP would throw an uncaught error (HTTP 500)."""
