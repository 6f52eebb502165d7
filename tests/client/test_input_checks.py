"""Input is checked as the city would check it, before anything is sent.

* The library's constructors raise MTAValidationError (an MTAError) naming
  the field, never the value; pydantic's ValidationError stays inside.
* Names, e-mail addresses, phone numbers and free texts follow the city's
  rules (munich-api.md §2.6) plus sane limits, and hold no control or
  formatting characters (they would be stored by the city and printed raw).
* Watch ids are printable, the lead time at most a year.
* What ``mta`` prints has every control character escaped (text.safe).
"""

from __future__ import annotations

from datetime import timedelta
import io
import json
from pathlib import Path
import re
from typing import Any

import pytest

from mta_client import (
    ContactDetails,
    MTAError,
    MTAValidationError,
    ProcessCredentials,
    ServiceRequest,
    Watch,
    cli as mta_cli,
)
from mta_client.cli.exitcodes import CLIError, ExitCode
from mta_client.cli.output import Output, table
from mta_client.cli.watchdefs import watches_from_file
from mta_client.models import Catalogue
from mta_client.text import hidden_characters, normalized, safe, safe_json

from .helpers import load_fixture

NOWHERE = "http://127.0.0.1:9/"  # nobody listens: a request would fail loudly
ESCAPES = [
    "\x1b[2J",  # clear the screen
    "\x1b]0;owned\x07",  # set the terminal's title
    "\r",
    "\x00",
    "\x08",
    "\x7f",
    "\x9b31m",  # C1 CSI
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200b",  # zero-width space
    "\ufeff",
    "\u2028",  # line separator
    "\U000e0041",  # a tag character
    "\udc80",  # a lone surrogate: a non-UTF-8 byte of argv or the environment
    "\ud83d",
]


def watch(**values: Any) -> Watch:
    defaults: dict[str, Any] = {
        "id": "w",
        "services": [ServiceRequest(service_id=1063475)],
        "office_ids": [10489],
    }
    return Watch(**{**defaults, **values})


# --- every constructor raises MTAValidationError ------------------------------------

CONSTRUCTORS = [
    (ContactDetails, {"family_name": ""}, "family_name"),
    (ContactDetails, {"family_name": "Muster", "email": "x"}, "email"),
    (ContactDetails, {"family_name": "Muster", "fax": "1"}, "fax"),
    (ContactDetails, {}, "family_name"),
    (ServiceRequest, {"service_id": 0}, "service_id"),
    (ServiceRequest, {"service_id": True}, "service_id"),
    (ServiceRequest, {"service_id": 1.5}, "service_id"),
    (ServiceRequest, {"service_id": 1063475, "count": 26}, "count"),
    (ProcessCredentials, {"process_id": True, "auth_key": "fb43"}, "process_id"),
    (ProcessCredentials, {"process_id": 2**31, "auth_key": "fb43"}, "process_id"),
    (ProcessCredentials, {"process_id": 1, "auth_key": "geheim"}, "auth_key"),
    (Watch, {"id": "w", "services": [], "office_ids": [1]}, "services"),
    (Watch, {"id": "w", "services": [{"service_id": -1}], "office_ids": [1]}, None),
    (
        Watch,
        {
            "id": "w",
            "services": [{"service_id": 1}],
            "office_ids": [1],
            "auto_book": True,
        },
        "auto_book",
    ),
    (
        Watch,
        {
            "id": "w",
            "services": [{"service_id": 1}],
            "office_ids": [1],
            "contact": {"family_name": "Muster", "email": "geheim+x@example.org"},
        },
        "contact.email",
    ),
]


@pytest.mark.parametrize(
    ("model", "values", "field"),
    CONSTRUCTORS,
    ids=[f"{m.__name__}-{f}" for m, _, f in CONSTRUCTORS],
)
def test_constructors_raise_mta_validation_error(
    model: type[Any], values: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        model(**values)
    err = excinfo.value
    assert isinstance(err, MTAError)
    assert isinstance(err, ValueError)  # as before: pydantic's was one too
    if field is not None:
        assert err.field == field
    assert str(err).startswith(f"{err.field}: ")
    for value in ("geheim", "Muster"):
        assert value not in str(err)


def test_a_nested_mistake_names_the_nested_field() -> None:
    # Raw input: the typed constructor only admits ServiceRequest objects.
    raw: dict[str, Any] = {"services": [{"service_id": 1, "count": 99}]}
    with pytest.raises(MTAValidationError) as excinfo:
        Watch(id="w", office_ids=[1], **raw)
    assert excinfo.value.field == "services.0.count"


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ESCAPES, ids=ascii)
def test_names_with_control_or_format_characters(escape: str) -> None:
    with pytest.raises(MTAValidationError, match="control or formatting") as excinfo:
        ContactDetails(family_name=f"Muster{escape}mann")
    assert excinfo.value.field == "family_name"
    assert "Muster" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 10_000, "at most 255 characters"),
        ("x" * 256, "at most 255 characters"),
        ("   ", "is required"),
        ("", "is required"),
    ],
)
def test_names_that_are_empty_or_too_long(name: str, message: str) -> None:
    with pytest.raises(MTAValidationError, match=message):
        ContactDetails(family_name=name)


def test_names_the_city_takes() -> None:
    assert ContactDetails(family_name="x" * 255).family_name == "x" * 255
    # NFC, single spaces, stripped; Persian names need the zero-width non-joiner.
    assert ContactDetails(
        family_name=" Mu\u0308ller  Lu\u0308denscheidt "
    ).family_name == ("M\u00fcller L\u00fcdenscheidt")
    assert ContactDetails(family_name="\u0645\u06cc\u200c\u0631").family_name == (
        "\u0645\u06cc\u200c\u0631"
    )
    assert ContactDetails(family_name="O'Brien-Żółć").family_name == "O'Brien-Żółć"


@pytest.mark.parametrize("value", [b"Muster", 7, ["Muster"]], ids=repr)
def test_names_that_are_not_text(value: Any) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        ContactDetails(family_name=value)
    assert excinfo.value.field == "family_name"


# --- e-mail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("anna.example.org", "no '@'"),
        ("", "no '@'"),
        ("anna+termin@example.org", "no '+' allowed"),
        ("anna@exa+mple.org", "no '+' allowed"),
        ("a" * 290 + "@example.org", "at most 254 characters"),  # 302 characters
        ("anna..huber@example.org", "not an address the city accepts"),
        (".anna@example.org", "not an address the city accepts"),
        ("anna.@example.org", "not an address the city accepts"),
        ("anna@example", "not an address the city accepts"),
        ("anna@example.o", "not an address the city accepts"),
        ("anna@@example.org", "not an address the city accepts"),
        ("an na@example.org", "not an address the city accepts"),
        ("an\u00a0na@example.org", "not an address the city accepts"),
        ("anna@example.org.", "not an address the city accepts"),
        ("anna@\x1b[2Jexample.org", "control or formatting"),
        ("anna@example.org\u202e", "control or formatting"),
        ("anna\udc80@example.org", "control or formatting"),
    ],
)
def test_email_checked_with_its_own_messages(email: str, message: str) -> None:
    with pytest.raises(MTAValidationError, match=re.escape(message)) as excinfo:
        ContactDetails(family_name="Muster", email=email)
    assert excinfo.value.field == "email"
    assert "anna" not in str(excinfo.value)
    if message == "no '@'":
        assert "+" not in str(excinfo.value)  # before: it talked about '+'


@pytest.mark.parametrize(
    "email",
    [
        "anna.huber@example.org",
        " anna.huber@example.org\n",
        "a" * 242 + "@example.org",  # 254 characters
        "anna_huber-1@sub.example.museum",
        "jörg@müller.de",
    ],
)
def test_email_addresses_the_city_takes(email: str) -> None:
    assert ContactDetails(family_name="Muster", email=email).email == email.strip()


# --- telephone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+49 89 233-96000", "+498923396000"),
        ("(089) 233 96000", "08923396000"),
        ("1234567", "1234567"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_telephone_numbers_the_city_takes(phone: str, expected: str) -> None:
    assert ContactDetails(family_name="Muster", telephone=phone).telephone == expected


@pytest.mark.parametrize(
    "phone",
    [
        "123456",
        "1234567890123456",
        "++4989233",
        "089 233 9600x",
        "\u0660\u0668\u0669\u0662\u0663\u0663\u0669\u0666\u0660",  # Arabic-Indic
        "\uff10\uff18\uff19\uff12\uff13\uff13\uff19\uff16",  # full-width digits
        "0892339\x1b[2J6000",
        "08923396000\u202e",
        "1" * 10_000,
    ],
)
def test_telephone_numbers_the_city_refuses(phone: str) -> None:
    with pytest.raises(MTAValidationError, match="7 to 15 digits") as excinfo:
        ContactDetails(family_name="Muster", telephone=phone)
    assert excinfo.value.field == "telephone"


# --- free texts ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["custom_textfield", "custom_textfield2"])
def test_custom_texts(field: str) -> None:
    assert getattr(ContactDetails(family_name="M", **{field: "x" * 250}), field) == (
        "x" * 250
    )
    # Measured (and sent) after normalisation: runs of whitespace are one.
    spaced = "  ".join(["ab"] * 83)  # 247 characters normalised, 330 as typed
    assert getattr(ContactDetails(family_name="M", **{field: spaced}), field) == (
        " ".join(["ab"] * 83)
    )
    with pytest.raises(MTAValidationError, match="at most 250") as excinfo:
        ContactDetails(family_name="M", **{field: "x" * 251})
    assert excinfo.value.field == field
    for escape in ("\x1b[2J", "\n", "\u202e", "\udc80"):
        with pytest.raises(MTAValidationError, match="control or formatting"):
            ContactDetails(family_name="M", **{field: f"Termin{escape}"})


# --- watches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "watch_id",
    [
        "w\x1b[31m",
        "w\x1b]0;x\x07",
        "w\r",
        "w\n",
        "w\t",
        "w\u202e",
        "w\u200b",
        "w\u00a0",
        "w\udc80",
        "   ",
        "",
        "x" * 65,
    ],
    ids=ascii,
)
def test_watch_ids_the_watcher_refuses(watch_id: str) -> None:
    with pytest.raises(MTAValidationError) as excinfo:
        watch(id=watch_id)
    assert excinfo.value.field == "id"


@pytest.mark.parametrize(
    "watch_id", ["w", "1071896x2@10308174+10489", "Führerschein Anna", "x" * 64]
)
def test_watch_ids_the_watcher_takes(watch_id: str) -> None:
    assert watch(id=watch_id).id == watch_id


@pytest.mark.parametrize(
    ("lead", "ok"),
    [
        (timedelta(0), True),
        (timedelta(days=365), True),
        (timedelta(days=365, seconds=1), False),
        (timedelta(days=999_999), False),
        (timedelta(seconds=-1), False),
    ],
)
def test_watch_lead_time_at_most_a_year(lead: timedelta, *, ok: bool) -> None:
    if ok:
        assert watch(min_lead=lead).min_lead == lead
        return
    with pytest.raises(MTAValidationError) as excinfo:
        watch(min_lead=lead)
    assert excinfo.value.field == "min_lead"


# --- nothing is sent with bad data ---------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("--name", "Muster\x1b[2Jmann", "--name"),
        ("--name", "Muster\udc80mann", "--name"),
        ("--name", "M" * 10_000, "--name"),
        ("--email", "a" * 290 + "@example.org", "--email"),
        ("--email", "muster.example.org", "--email"),
        ("--phone", "0892339\x1b[2J6000", "--phone"),
        ("--text", "x" * 251, "--text"),
    ],
    ids=["escape", "surrogate", "10 KB", "302 chars", "no @", "phone", "text"],
)
def test_book_refuses_before_the_first_request(
    option: str,
    value: str,
    shown: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MTA_NAME", "MTA_EMAIL", "MTA_PHONE"):
        monkeypatch.delenv(name, raising=False)
    values = {"--name": "Muster", "--email": "muster@example.org", option: value}
    args = [part for pair in values.items() for part in pair]
    code = mta_cli.main(
        [
            *("book", "--service", "1063475", "--office", "10489", "--earliest"),
            *args,
            *("--base-url", NOWHERE),
        ]
    )
    out, err = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert err.startswith(f"mta: error: invalid {shown}: ")
    assert value not in out + err
    assert "\x1b" not in out + err


# --- terminal output ------------------------------------------------------------------


@pytest.mark.parametrize("escape", ESCAPES, ids=ascii)
def test_safe_escapes_control_and_format_characters(escape: str) -> None:
    shown = safe(f"Bürgerbüro{escape}Ruppertstraße")
    assert shown.startswith("Bürgerbüro\\")
    assert shown.endswith("Ruppertstraße")
    assert not hidden_characters(shown)
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogate left: printing cannot fail


def test_safe_keeps_ordinary_text() -> None:
    for text in (
        "Bürgerbüro Ruppertstraße",
        "\u0645\u06cc\u200c\u0631",
        "👩‍👩‍👧",
        "a\\x1b",
    ):
        assert safe(text) == text
    assert safe("\x1b[2J") == "\\x1b[2J"
    assert safe("\u202e") == "\\u202e"
    assert safe("\U000e0041") == "\\U000e0041"
    assert safe("a\nb\rc") == "a\\x0ab\\x0dc"
    assert safe("a\nb\rc", keep_newlines=True) == "a\nb\\x0dc"
    assert safe(4711) == "4711"


def test_safe_json_is_the_same_document_without_hidden_characters() -> None:
    document = {"name": "A\x1b[2J\x9b\u202e\u2028\udc80\U000e0041Z", "n": [1, "ß"]}
    text = safe_json(document, indent=2)
    assert not hidden_characters(text, allow="\n")
    assert json.loads(text) == document
    assert "ß" in text  # non-ASCII text stays readable


def test_normalized() -> None:
    assert normalized("  a \u00a0 b\tc  ") == "a b c"
    assert normalized("Mu\u0308ller") == "M\u00fcller"


def test_output_escapes_everything_it_writes() -> None:
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    out.text("office: Evil\x1b[2J\nsecond line")
    out.line("new slot at Evil\x1b]0;x\x07")
    out.note("the city says \x9b31m")
    out.error("invalid\r--name")
    assert "\x1b" not in out.stdout.getvalue()  # type: ignore[attr-defined]
    assert out.stdout.getvalue() == (  # type: ignore[attr-defined]
        "office: Evil\\x1b[2J\nsecond line\nnew slot at Evil\\x1b]0;x\\x07\n"
    )
    assert out.stderr.getvalue() == (  # type: ignore[attr-defined]
        "mta: the city says \\x9b31m\nmta: error: invalid\\x0d--name\n"
    )


def test_output_json_escapes_hidden_characters() -> None:
    out = Output(json_mode=True, stdout=io.StringIO())
    out.json_line({"office": "Evil\x9b2J\u202e"})
    out.result({"office": "Evil\x1b[2J\u2028"})
    out.flush()
    text = out.stdout.getvalue()  # type: ignore[attr-defined]
    assert not hidden_characters(text, allow="\n")
    first, rest = text.split("\n", 1)
    assert json.loads(first) == {"office": "Evil\x9b2J\u202e"}
    assert json.loads(rest) == {"office": "Evil\x1b[2J\u2028"}


def test_table_cells_are_escaped_and_aligned() -> None:
    text = table(("ID", "NAME"), [(1, "Evil\x1b[2J"), (22, "Ok")])
    assert text.splitlines() == ["ID  NAME", "1   Evil\\x1b[2J", "22  Ok"]


def test_watch_file_with_an_escape_in_an_id(tmp_path: Path) -> None:
    path = tmp_path / "watches.json"
    entry = {
        "id": "w\x1b[2J",
        "services": [{"service_id": 1063475}],
        "office_ids": [10489],
    }
    path.write_text(json.dumps([entry]), encoding="utf-8")
    catalogue = Catalogue.model_validate(load_fixture("offices_and_services.json"))
    with pytest.raises(CLIError) as excinfo:
        watches_from_file(path, catalogue, lambda: ContactDetails(family_name="M"))
    assert str(excinfo.value).endswith(
        "watch 1: id: use printable characters, not only spaces"
    )
    assert excinfo.value.code == ExitCode.USAGE
