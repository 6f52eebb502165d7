"""The activation link is read strictly, and never repeated.

The city's e-mail links ``…#/appointment/confirm/<base64>`` (the confirmation
mail ``…#/appointment/<base64>``), where the base64 part encodes exactly
``{"id": processId, "authKey": key}`` (munich-api.md §3). Whatever else a
link holds is an MTAValidationError for the field ``link`` whose message
names the part that is wrong; the link and what it holds appear nowhere (not
in the message, the exception's chain, the logs, or the CLI's output).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from aioresponses import aioresponses
import pytest

from mta_client import MTAClient, ProcessCredentials, cli as mta_cli
from mta_client.cli.exitcodes import ExitCode
from mta_client.exceptions import MTAValidationError
from mta_client.models import MAX_ID

from .helpers import sent

KEY64 = "5e" * 32
KEY4 = "fb43"
PAGE = "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"


def encode(payload: Any, *, url_safe: bool = False, padded: bool = False) -> str:
    """Base64 of a payload (a value is JSON-encoded, bytes are taken as they are)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    text = (base64.urlsafe_b64encode if url_safe else base64.b64encode)(raw).decode()
    return text if padded else text.rstrip("=")


def confirm_link(token: str) -> str:
    return f"{PAGE}#/appointment/confirm/{token}"


# --- what the city sends is read -----------------------------------------------------


@pytest.mark.parametrize("url_safe", [False, True], ids=["standard", "url-safe"])
@pytest.mark.parametrize("padded", [False, True], ids=["stripped", "padded"])
@pytest.mark.parametrize(
    "form",
    [
        "{page}#/appointment/confirm/{token}",
        "{page}#/appointment/{token}",
        "{page}#/appointment/confirm/{token}/",
        "#/appointment/confirm/{token}",
        "{token}",
        "  {page}#/appointment/confirm/{token}\n",
    ],
)
def test_every_form_of_the_link_is_read(
    form: str, *, url_safe: bool, padded: bool
) -> None:
    # The city's JSON is ASCII without ">", "?" or "~", so its base64 never has
    # "+" or "/": both alphabets give the same text, and the parser takes both.
    payload = {"id": 182201, "authKey": "ff" * 31 + "fb"}
    token = encode(payload, url_safe=url_safe, padded=padded)
    link = form.format(page=PAGE, token=token)

    credentials = ProcessCredentials.from_activation_link(link)

    assert credentials.process_id == 182201
    assert credentials.auth_key == "ff" * 31 + "fb"


@pytest.mark.parametrize(
    ("process_id", "auth_key"),
    [(1, KEY4), (MAX_ID, KEY64), (4711, KEY64.upper()), ("182201", KEY4)],
)
def test_the_bounds_and_php_digit_strings(process_id: Any, auth_key: str) -> None:
    token = encode({"id": process_id, "authKey": auth_key})
    credentials = ProcessCredentials.from_activation_link(confirm_link(token))
    assert credentials.process_id == int(process_id)
    assert credentials.auth_key == auth_key


def test_percent_encoded_link_is_read() -> None:
    # Mail clients may percent-encode the fragment ("=" padding, "/").
    token = encode({"id": 4711, "authKey": KEY64}, padded=True)
    quoted = token.replace("=", "%3D").replace("/", "%2F").replace("+", "%2B")
    credentials = ProcessCredentials.from_activation_link(confirm_link(quoted))
    assert credentials.process_id == 4711


# --- anything else is refused, naming the part, echoing nothing ----------------------

BAD_IDS = [
    True,
    False,
    None,
    182201.7,
    182201.0,
    1e5,
    0,
    -1,
    MAX_ID + 1,
    10**30,
    "abc",
    "",
    "0182201",
    " 182201",
    "182201 ",
    "+182201",
    "18\u0662201",  # an Arabic-Indic digit
    "99999999999",
    [182201],
    {"id": 182201},
]


@pytest.mark.parametrize("process_id", BAD_IDS, ids=repr)
def test_an_id_that_is_not_a_process_id(process_id: Any) -> None:
    # Before: True became process 1, 182201.7 became 182201, "abc" crashed
    # with a ValueError that repeated the text.
    token = encode({"id": process_id, "authKey": KEY64})
    err = _refused(confirm_link(token), token, KEY64)
    assert "id" in str(err)
    assert "authKey" not in str(err)


BAD_KEYS = [None, True, 4711, "", "abc", "abcde", "a" * 63, "a" * 65, "g" * 64, [KEY4]]


@pytest.mark.parametrize("auth_key", BAD_KEYS, ids=repr)
def test_an_auth_key_that_is_not_one(auth_key: Any) -> None:
    token = encode({"id": 4711, "authKey": auth_key})
    err = _refused(confirm_link(token), token, "4711")
    assert "authKey" in str(err)


SHAPES = {
    "no authKey": encode({"id": 4711}),
    "no id": encode({"authKey": KEY64}),
    "a third key": encode({"id": 4711, "authKey": KEY64, "scope": 160}),
    "a key twice": encode(b'{"id": 1, "id": 4711, "authKey": "%s"}' % KEY64.encode()),
    "a list": encode([4711, KEY64]),
    "a string": encode(KEY64),
    "a number": encode(4711),
    "null": encode(None),
    "NaN": encode(b'{"id": NaN, "authKey": "fb43"}'),
    "Infinity": encode(b'{"id": Infinity, "authKey": "fb43"}'),
    "not UTF-8": encode(b'{"id": 4711, "authKey": "\xff\xfe"}'),
    "truncated JSON": encode(b'{"id": 4711, "authKey": "fb43"'),
    "deep JSON": encode(b"[" * 100 + b"]" * 100),
    "not base64": "not-base64!!",
    "one char too many": encode({"id": 4711, "authKey": KEY4}) + "A",
    "padding in the middle": "eyJp=ZCI6",
    "too much padding": encode({"id": 4711, "authKey": KEY4}, padded=True) + "===",
    "mixed alphabets": "ab+c-d_e/f",
    "a huge token": "A" * 10_000,
}


@pytest.mark.parametrize("token", SHAPES.values(), ids=SHAPES.keys())
def test_a_link_of_another_shape(token: str) -> None:
    _refused(confirm_link(token), token, KEY64)


@pytest.mark.parametrize(
    "link",
    [
        "",
        "   ",
        f"{PAGE}#/nothing",
        f"{PAGE}#/appointment/",
        f"{PAGE}#/appointment/confirm/",
        f"{PAGE}#/appointment/cancel/{encode({'id': 4711, 'authKey': KEY4})}",
        f"{PAGE}/appointment/confirm/{encode({'id': 4711, 'authKey': KEY4})}",
        f"{PAGE}?id=4711&authKey={KEY4}",
        "https://evil.example/#/appointment/confirm/\x1b[2J",
        "x" * 100_000,
    ],
)
def test_a_link_that_is_no_activation_link(link: str) -> None:
    _refused(link, link.strip() or "\x00", KEY4)


@pytest.mark.parametrize("link", [None, b"eyJpZCI6MX0", 4711])
def test_a_link_that_is_not_text(link: Any) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        ProcessCredentials.from_activation_link(link)
    assert excinfo.value.field == "link"


def _refused(link: str, token: str, secret: str) -> MTAValidationError:
    """Check that the link is refused without echoing it; return the error."""
    with pytest.raises(MTAValidationError) as excinfo:
        ProcessCredentials.from_activation_link(link)
    err = excinfo.value
    assert err.field == "link"
    shown = " ".join([str(err), repr(err), *map(str, err.args)])
    assert token not in shown
    assert secret not in shown
    assert "\x1b" not in shown
    # No chained exception carries the decoded text (a traceback would print it).
    assert err.__cause__ is None
    assert err.__context__ is None
    return err


async def test_client_sends_nothing_and_logs_nothing(
    client: MTAClient, responses: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    token = encode({"id": True, "authKey": KEY64})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MTAValidationError, match="id"):
        await client.confirm_from_link(confirm_link(token))
    assert sent(responses) == []
    assert token not in caplog.text
    assert KEY64 not in caplog.text


@pytest.mark.parametrize(
    "payload",
    [
        {"id": True, "authKey": KEY64},
        {"id": 182201.7, "authKey": KEY64},
        {"id": None, "authKey": KEY64},
        {"id": "geheim", "authKey": KEY64},
        {"id": 10**40, "authKey": KEY64},
        {"id": 4711, "authKey": "geheim"},
    ],
    ids=repr,
)
def test_cli_confirm_refuses_as_usage_error(
    payload: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: exit 1 ("unexpected ValueError: invalid literal … 'geheim'"), or
    # a confirmation sent for another process. Nothing is sent: the base URL
    # points at a port where nobody listens.
    token = encode(payload)
    code = mta_cli.main(
        ["confirm", confirm_link(token), "--base-url", "http://127.0.0.1:9/"]
    )
    out, err = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert err.startswith("mta: error: invalid LINK: ")
    for secret in (token, KEY64, "geheim", str(10**40)):
        assert secret not in out + err
