"""Helpers for the library's tests."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from aioresponses import aioresponses
from yarl import URL

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    """Return a JSON fixture from tests/client/fixtures."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def route(path: str) -> re.Pattern[str]:
    """Match one API route with any query string."""
    return re.compile(
        rf"^http://city\.test/buergeransicht/api/citizen/{re.escape(path)}(\?.*)?$"
    )


def sent(responses: aioresponses) -> list[tuple[str, URL, dict[str, Any]]]:
    """Every request the client sent: (method, URL with query, kwargs)."""
    return [
        (method, url, call.kwargs)
        for (method, url), calls in responses.requests.items()
        for call in calls
    ]


def error_body(
    code: str, status: int, message: str = "m", kind: str = "error"
) -> dict[str, Any]:
    """One error in the city's ``errors[]`` envelope."""
    return {
        "errors": [
            {
                "errorCode": code,
                "errorMessage": message,
                "statusCode": status,
                "errorType": kind,
            }
        ]
    }


def process(status: str = "reserved", **overrides: Any) -> dict[str, Any]:
    """A ThinnedProcess as the city sends it."""
    body: dict[str, Any] = {
        "processId": 4711,
        "timestamp": "1790006400",
        "authKey": "a" * 64,
        "familyName": "",
        "customTextfield": "",
        "customTextfield2": "",
        "email": "test@muenchen.de",
        "telephone": "",
        "officeName": "Bürgerbüro Ruppertstraße",
        "officeId": 10489,
        "scope": {
            "id": 160,
            "emailRequired": True,
            "telephoneActivated": True,
            "captchaActivatedRequired": True,
            "reservationDuration": 15,
            "activationDuration": 30,
        },
        "subRequestCounts": [],
        "serviceId": 1063475,
        "serviceName": "Wohnsitzanmeldung",
        "serviceCount": 1,
        "status": status,
        "captchaToken": None,
        "slotCount": 3,
        "displayNumber": None,
        "icsContent": None,
    }
    body.update(overrides)
    return body
