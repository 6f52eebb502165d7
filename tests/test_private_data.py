"""Private data stays private: the command line and the library (issue 10).

The whole flow runs with distinctive personal values and a bot token:
``mta book``, ``mta confirm LINK``, ``mta cancel LINK``, ``mta watch --book
--once`` (text and ``--json``, all with ``-v``), the Telegram relay of a
watcher that books, and a bad e-mail address. Every log record (debug level,
every logger of this process but the simulator's and the stand-in's, which
play the city and Telegram), everything printed, every exception message
and the ``repr()`` and ``str()`` of every object that holds the values are
searched for them. They may only be where they must be kept: the state file
(mode 0600, with the booking's credentials) and the captcha token file
(mode 0600).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
import dataclasses
import json
import logging
import os
from pathlib import Path
import stat
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from mta_client import (
    ContactDetails,
    MTAClient,
    ProcessCredentials,
    RetryPolicy,
    ServiceRequest,
    cli,
)
from mta_client.cli.session import TOKEN_FILE
from mta_client.cli.telegram import TelegramRelay, TelegramSettings
from mta_client.exceptions import MTAError
from mta_client.models import _link_token  # the base64 part of a link
from mta_client.simulator import Simulator, SimulatorServer
from mta_client.telegram import AlertQueue, TelegramSender
from mta_client.telegram_standin import Fault, TelegramStandin, TelegramStandinServer
from mta_client.watch import Watch, WatchEvent
from mta_client.watcher import Watcher
from tests.cli.conftest import SimulatorThread

PASING = 54261  # Bürgerbüro Pasing: captcha required
WOHNSITZ = 1063475
UMSCHREIBUNG = 1071896
FUEHRERSCHEIN = 10308174  # no captcha; e-mail required

NAME = "Zwetschgenbaum-Quaxlhuber"
EMAIL = "quaxl.zwetschgenbaum@example.org"
PHONE = "+4989555019770"
TEXT = "Kuckucksei-Geheimnis 4711"
TEXT2 = "Zweiter Vermerk Hollerstaude"
BOT_TOKEN = "7012345678:AAHquaxlPrivateBotToken_0123456789xyz"
CHAT = 4242
CONTACT = {
    "family_name": NAME,
    "email": EMAIL,
    "telephone": PHONE,
    "custom_textfield": TEXT,
    "custom_textfield2": TEXT2,
}

# The city's side and Telegram's side: they must know the values.
REMOTE_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "mta_client.simulator",
    "mta_client.telegram_standin",
)


# --- the simulator and the search -----------------------------------------------


@pytest.fixture(name="sim")
def sim_fixture() -> Simulator:
    return Simulator(scenario="fixed", seed=11, control=True)


@pytest.fixture(name="served")
def served_fixture(sim: Simulator, socket_enabled: None) -> Iterator[SimulatorThread]:
    with SimulatorThread(sim) as served:
        yield served


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(
        cli, "RETRY_POLICY", RetryPolicy(max_tries=2, base_delay=0.01, max_delay=0.01)
    )
    for name in ("MTA_BASE_URL", "MTA_AUTH_KEY", "MTA_TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # The person's data comes from the environment, as the help recommends.
    monkeypatch.setenv("MTA_NAME", NAME)
    monkeypatch.setenv("MTA_EMAIL", EMAIL)
    monkeypatch.setenv("MTA_PHONE", PHONE)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def variants(value: str) -> set[str]:
    """A value as it could show: as is, lower case, URL-quoted, JSON-escaped."""
    forms = {value, value.lower(), quote(value, safe=""), quote(value)}
    forms |= {json.dumps(form)[1:-1] for form in set(forms)}
    return forms


def leaks(secrets: dict[str, str], texts: dict[str, str]) -> list[str]:
    """Which secret shows in which text (``"what in where"``)."""
    found = []
    for where, text in texts.items():
        for what, value in secrets.items():
            if any(form in text for form in variants(value)):
                found.append(f"{what} in {where}")
    return found


def person() -> dict[str, str]:
    return {
        "family name": NAME,
        "e-mail": EMAIL,
        "phone": PHONE,
        "phone digits": PHONE.removeprefix("+"),
        "custom text": TEXT,
        "custom text 2": TEXT2,
        "bot token": BOT_TOKEN,
        "bot token secret": BOT_TOKEN.split(":", 1)[1],
    }


def log_texts(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Every record of this process's own loggers, fully formatted, with extras."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    plain = set(vars(logging.makeLogRecord({})))
    texts = {}
    for number, record in enumerate(caplog.records):
        if record.name.startswith(REMOTE_LOGGERS):
            continue
        extras = {k: v for k, v in vars(record).items() if k not in plain}
        text = formatter.format(record)
        texts[f"log record {number} ({record.name})"] = f"{text} {extras!r}"
    return texts


def assert_search_finds(secrets: dict[str, str], sim: Simulator) -> None:
    """The search works: it finds the values where the city keeps them."""
    city = {
        str(p.process_id): repr(dataclasses.asdict(p))
        + repr([dataclasses.asdict(m) for m in sim.outbox])
        for p in sim.bookings.processes.values()
    }
    found = {leak.split(" in ", 1)[0] for leak in leaks(secrets, city)}
    assert {"family name", "e-mail", "phone", "custom text"} <= found, found
    assert any(what.startswith("auth key") for what in found), found
    assert any(what.startswith("preconfirmation link") for what in found), found


def assert_mode_0600(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)


# --- the command line -------------------------------------------------------------


class Runner:
    """Runs ``mta -v ARGS --base-url <simulator>`` and keeps what it printed."""

    def __init__(self, served: SimulatorThread, capsys: pytest.CaptureFixture[str]):
        self.served = served
        self.capsys = capsys
        self.texts: dict[str, str] = {}
        self.auth_keys: dict[int, list[str]] = {}
        """Every auth key each booking had (the city changes it on cancel)."""

    def __call__(self, *args: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = cli.main([*args, "-v", "--base-url", self.served.base_url])
        captured = self.capsys.readouterr()
        label = f"{len(self.texts) // 2}: mta {args[0]}{' --json' * ('--json' in args)}"
        self.texts[f"stdout of {label}"] = captured.out
        self.texts[f"stderr of {label}"] = captured.err
        for process in self.served.sim.bookings.processes.values():
            keys = self.auth_keys.setdefault(process.process_id, [])
            if process.auth_key not in keys:
                keys.append(process.auth_key)
        return code, captured.out

    def secrets(self) -> dict[str, str]:
        """The auth keys and the base64 of the links the city sent."""
        secrets = {
            f"auth key {n} of {process_id}": key
            for process_id, keys in self.auth_keys.items()
            for n, key in enumerate(keys)
        }
        for mail in self.served.sim.outbox:
            if mail.link:
                token = _link_token(mail.link)
                assert token
                secrets[f"{mail.kind} link of {mail.process_id}"] = token
        return secrets


def activation_link(sim: Simulator, process_id: int) -> str:
    return sim.outbox.activation_link(process_id)


def test_command_line_flow(  # noqa: PLR0915, PLR0917 - one flow; fixtures
    served: SimulatorThread,
    sim: Simulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    mta = Runner(served, capsys)
    where = ("--service", str(WOHNSITZ), "--office", str(PASING))
    personal = ("--text", TEXT, "--text2", TEXT2)

    # mta book (text), confirm (JSON), cancel (text): a captcha office.
    code, _ = mta("book", *where, *personal, "--earliest")
    assert code == 0, mta.texts
    (first,) = sim.bookings.processes.values()
    assert (first.family_name, first.email, first.telephone) == (NAME, EMAIL, PHONE)
    link = activation_link(sim, first.process_id)
    code, out = mta("confirm", link, "--json")
    assert code == 0, mta.texts
    assert json.loads(out)["process_id"] == first.process_id
    assert mta("cancel", link)[0] == 0, mta.texts
    assert first.status == "deleted"

    # mta book (JSON), confirm (text), cancel (JSON).
    code, out = mta("book", *where, *personal, "--earliest", "--json")
    assert code == 0, mta.texts
    second = sim.bookings.processes[json.loads(out)["process_id"]]
    link = activation_link(sim, second.process_id)
    assert mta("confirm", link)[0] == 0, mta.texts
    assert mta("cancel", link, "--json")[0] == 0, mta.texts
    assert second.status == "deleted"

    # mta watch --book --once (text, then JSON), then confirm and cancel.
    state = tmp_path / "state.json"
    watched: tuple[str, ...] = ("watch", *where, "--once", "--book", *personal)
    assert mta(*watched, "--state", str(state))[0] == 0, mta.texts
    state_json = tmp_path / "state-json.json"
    watched = ("watch", "--service", str(UMSCHREIBUNG), "--office", str(FUEHRERSCHEIN))
    assert (
        mta(*watched, "--once", "--book", "--json", "--state", str(state_json))[0] == 0
    )
    booked = [p for p in sim.bookings.processes.values() if p.status == "preconfirmed"]
    assert len(booked) == 2, mta.texts
    booked_keys = [p.auth_key for p in booked]
    for process in booked:
        link = activation_link(sim, process.process_id)
        assert mta("confirm", link)[0] == 0, mta.texts
        assert mta("cancel", link, "--json")[0] == 0, mta.texts

    # Credentials on the command line: a stale key, one from the environment,
    # one that is no key at all (it holds the name).
    process_id = str(first.process_id)
    stale = mta.auth_keys[first.process_id][0]
    code, _ = mta("cancel", "--process-id", process_id, "--auth-key", stale)
    assert code != 0
    monkeypatch.setenv("MTA_AUTH_KEY", stale)
    assert mta("cancel", "--process-id", process_id, "--json")[0] != 0
    monkeypatch.delenv("MTA_AUTH_KEY")
    code, _ = mta("cancel", "--process-id", process_id, "--auth-key", NAME)
    assert code == cli.ExitCode.USAGE
    # The plan of a booking watch, and a watch file that holds the person.
    assert mta(*watched, "--book", "--explain")[0] == 0, mta.texts
    watch_file = tmp_path / "watches.json"
    watch_file.write_text(
        json.dumps(
            [
                {
                    "id": "from-file",
                    "services": [{"service_id": WOHNSITZ}],
                    "office_ids": [PASING],
                    "auto_book": True,
                    "contact": {**CONTACT, "email": f"{NAME}@@{EMAIL}"},
                }
            ]
        ),
        encoding="utf-8",
    )
    code, _ = mta("watch", "--file", str(watch_file), "--once", "--no-state")
    assert code == cli.ExitCode.USAGE

    # A bad e-mail address that holds the name is refused without echoing it.
    bad_email = f"{NAME}@@{EMAIL}"
    code, _ = mta("book", *where, "--earliest", "--email", bad_email)
    assert code == cli.ExitCode.USAGE

    # The captcha token the client got, from its cache between runs.
    tokens = Path(os.environ["XDG_STATE_HOME"]) / "mta" / TOKEN_FILE
    (entry,) = json.loads(tokens.read_text(encoding="utf-8")).values()
    captcha_token = entry["token"]
    assert_mode_0600(tokens)

    secrets = {**person(), **mta.secrets(), "captcha token": captcha_token}
    assert_search_finds(secrets, sim)
    found = leaks(secrets, {**mta.texts, **log_texts(caplog)})
    assert not found, found
    # Nothing else written holds them: only the state and the token files.
    kept = {state, state_json, tokens, watch_file}
    files = {
        str(path): path.read_text(encoding="utf-8", errors="replace")
        for path in tmp_path.rglob("*")
        if path.is_file() and path not in kept
    }
    found = leaks(secrets, files)
    assert not found, found
    assert any(r.levelno == logging.DEBUG for r in caplog.records)

    # The state file keeps what it must (the credentials), mode 0600.
    for path in (state, state_json):
        assert_mode_0600(path)
        text = path.read_text(encoding="utf-8")
        kept_keys = [key for key in booked_keys if key in text]
        assert len(kept_keys) == 1, path
        personal_leaks = leaks(person(), {str(path): text})
        assert not personal_leaks, personal_leaks


# --- the library and the Telegram relay -------------------------------------------


def shown(objects: dict[str, object]) -> dict[str, str]:
    """The ``repr()`` and ``str()`` of each object."""
    texts = {}
    for name, value in objects.items():
        texts[f"repr of {name}"] = repr(value)
        texts[f"str of {name}"] = str(value)
    return texts


def raised(texts: dict[str, str], name: str, err: BaseException) -> None:
    """Keep an exception's message, repr, notes and causes, down the chain."""
    seen: BaseException | None = err
    depth = 0
    while seen is not None and depth < 10:
        texts[f"str of {name} [{depth}]"] = str(seen)
        texts[f"repr of {name} [{depth}]"] = repr(seen)
        texts[f"args of {name} [{depth}]"] = repr(seen.args)
        texts[f"notes of {name} [{depth}]"] = repr(getattr(seen, "__notes__", []))
        texts[f"fields of {name} [{depth}]"] = repr(vars(seen))
        seen = seen.__cause__ or seen.__context__
        depth += 1


async def test_library_and_telegram_flow(  # noqa: PLR0915 - one flow, many looks
    caplog: pytest.LogCaptureFixture, socket_enabled: None
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: dict[str, str] = {}
    objects: dict[str, object] = {}
    events: list[WatchEvent] = []
    sim = Simulator(scenario="fixed", seed=11)
    standin = TelegramStandin(token=BOT_TOKEN, chat_ids=[CHAT], max_long_poll=0.2)
    contact = ContactDetails(**CONTACT)
    watched = Watch(
        id="private",
        services=[ServiceRequest(service_id=WOHNSITZ)],
        office_ids=[PASING],
        auto_book=True,
        contact=contact,
    )
    settings = TelegramSettings(token=BOT_TOKEN, chat_id=CHAT, api_url="")
    async with (
        SimulatorServer(sim, host="127.0.0.1", port=0) as server,
        TelegramStandinServer(standin) as telegram,
        aiohttp.ClientSession() as session,
        MTAClient(session=session, base_url=server.base_url) as client,
    ):
        catalogue = await client.get_catalogue()
        settings = dataclasses.replace(settings, api_url=telegram.api_url)
        async with TelegramRelay(
            settings, catalogue=catalogue, watches=[watched], session=session
        ) as relay:

            def on_event(event: WatchEvent) -> None:
                events.append(event)
                relay(event)

            watcher = Watcher(client, on_event=on_event)
            watcher.add(watched)
            result = await watcher.poll()  # looks, and books on its own
            for _ in range(20):
                if watcher.credentials(watched.id) is not None:
                    break
                await asyncio.sleep(0.1)
                result = await watcher.poll()
            credentials = watcher.credentials(watched.id)
            assert credentials is not None, events
            (process,) = sim.bookings.processes.values()
            assert process.family_name == NAME
            assert process.custom_textfield == TEXT
            auth_keys = [process.auth_key]
            link = sim.outbox.activation_link(process.process_id)
            objects |= {
                "poll result": result,
                "watch status": watcher.status(watched.id),
                "watch statuses": watcher.statuses(),
                "credentials": credentials,
                "watch": watched,
                "contact": contact,
                "client": client,
                "captcha cache": client.captcha,
                "watcher": watcher,
                "relay": relay,
                "settings": settings,
                "sender": relay.sender,
                "queue": relay.queue,
                "sender's own queue": AlertQueue(relay.sender),
            }
            captcha = client.captcha.export()
            assert captcha is not None, "a captcha office: the client has a token"
            confirmed = await watcher.confirm(link)
            appointment = await client.get_appointment(credentials=credentials)
            objects |= {"confirmed event": confirmed, "appointment": appointment}
            assert appointment.family_name == NAME  # the city sends it back
            cancelled = await watcher.cancel(watched.id)
            auth_keys.append(process.auth_key)
            objects |= {
                "cancelled event": cancelled,
                "final status": watcher.status(watched.id),
            }

            # Errors along the way: stale credentials, a link gone bad.
            with pytest.raises(MTAError) as stale:
                await client.cancel_appointment(credentials=credentials)
            raised(texts, "stale cancel", stale.value)
            with pytest.raises(MTAError) as bad_link:
                await client.confirm_from_link(link[:-6] + "AAAA")
            raised(texts, "bad link", bad_link.value)
            await relay.queue.join()
            await watcher.aclose()

        # A token Telegram rejects: the error does not repeat it.
        wrong = TelegramSender(token=BOT_TOKEN + "x", api_url=telegram.api_url)
        objects["wrong sender"] = wrong
        with pytest.raises(MTAError) as rejected:
            await wrong.get_me()
        raised(texts, "rejected token", rejected.value)
        await wrong.aclose()
        messages = standin.sent(CHAT)

    kinds = [getattr(e, "state", None) for e in events]
    assert {"booked", "confirmed", "cancelled"} <= {str(k) for k in kinds}, kinds
    assert messages, "the relay sent alerts"
    for number, message in enumerate(messages):
        texts[f"Telegram message {number}"] = message.text
        texts[f"Telegram buttons {number}"] = json.dumps(message.buttons)
    for number, event in enumerate(events):
        texts[f"event {number}"] = repr(event)
    texts |= shown(objects)
    texts |= log_texts(caplog)
    secrets = {
        **person(),
        **{f"auth key {n}": key for n, key in enumerate(auth_keys)},
        "activation link": _link_token(link) or link,
        "captcha token": captcha[0],
    }
    found = leaks(secrets, texts)
    assert not found, found


def test_exceptions_do_not_echo_personal_data() -> None:
    texts: dict[str, str] = {}
    bad = {
        "email": f"{NAME}@@{EMAIL}",
        "telephone": f"{PHONE}-{NAME}",
        "family_name": f"{NAME}\x1b[31m",
        "custom_textfield": TEXT * 20,
        "custom_textfield2": f"{TEXT2}\u202e",
    }
    for field, value in bad.items():
        with pytest.raises(MTAError) as info:
            ContactDetails(**{**CONTACT, field: value})
        raised(texts, f"bad {field}", info.value)
        # pydantic's own error (model_validate) hides the input too.
        with pytest.raises(ValueError, match=field) as info_:
            ContactDetails.model_validate({**CONTACT, field: value})
        raised(texts, f"validated bad {field}", info_.value)
    raw: dict[str, Any] = {
        "id": "w",
        "services": [{"service_id": WOHNSITZ}],
        "office_ids": [PASING],
        "auto_book": True,
        "contact": {**CONTACT, "email": f"{NAME}@@x"},
    }
    with pytest.raises(MTAError) as info:
        Watch(**raw)
    raised(texts, "watch with a bad contact", info.value)
    key = "c0ffee" * 10 + "beef"
    with pytest.raises(MTAError) as info:
        ProcessCredentials(process_id=1, auth_key=key + "g")
    raised(texts, "bad auth key", info.value)
    with pytest.raises(MTAError) as info:
        ProcessCredentials.from_activation_link(
            f"https://x/#/appointment/confirm/{key}"
        )
    raised(texts, "bad link", info.value)
    found = leaks({**person(), "auth key": key}, texts)
    assert not found, found
    assert texts["str of bad email [0]"], "the errors say something"


# --- failures along the way -------------------------------------------------------

CITY_FAULTS = (
    "server_error",
    "bad_gateway",
    "reset",
    "html_block",
    "maintenance",
    "malformed_json",
    "hang",
)


async def test_failures_do_not_quote_private_data(  # noqa: PLR0915 - one flow
    caplog: pytest.LogCaptureFixture, socket_enabled: None
) -> None:
    """Every way a call with credentials or personal data can fail, and logs."""
    caplog.set_level(logging.DEBUG)
    texts: dict[str, str] = {}
    sim = Simulator(scenario="fixed", seed=11)
    standin = TelegramStandin(token=BOT_TOKEN, chat_ids=[CHAT], max_long_poll=0.2)
    watched = Watch(
        id="private",
        services=[ServiceRequest(service_id=WOHNSITZ)],
        office_ids=[PASING],
        contact=ContactDetails(**CONTACT),
    )
    async with (
        SimulatorServer(sim, host="127.0.0.1", port=0) as server,
        TelegramStandinServer(standin) as telegram,
        MTAClient(
            base_url=server.base_url,
            retry=RetryPolicy(max_tries=1),
            request_timeout=0.5,
        ) as client,
    ):
        watcher = Watcher(client)
        watcher.add(watched)
        # The person's data is sent in update-appointment/: make it fail.
        for kind in ("server_error", "reset", "malformed_json"):
            await watcher.check()
            sim.faults.add(kind=kind, route="update-appointment/")
            with pytest.raises(MTAError) as info:
                await watcher.book(watched.id)
            raised(texts, f"booking, update failing with {kind}", info.value)
        await watcher.check()
        event = await watcher.book(watched.id)
        texts["booked event"] = repr(event)
        credentials = watcher.credentials(watched.id)
        assert credentials is not None
        assert event.process_id is not None
        process = sim.bookings.processes[event.process_id]
        auth_keys = {p.auth_key for p in sim.bookings.processes.values()}
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "get": lambda: client.get_appointment(credentials=credentials),
            "confirm": lambda: client.confirm_appointment(credentials=credentials),
            "cancel": lambda: client.cancel_appointment(credentials=credentials),
            "confirm link": lambda: client.confirm_from_link(
                sim.outbox.activation_link(process.process_id)
            ),
        }
        for kind in CITY_FAULTS:
            for name, call in calls.items():
                sim.faults.add(kind=kind, times=1, delay=2.0)
                try:
                    await call()
                except MTAError as err:
                    raised(texts, f"{name} with {kind}", err)
                else:
                    texts[f"{name} with {kind}"] = "(answered)"
                sim.faults.clear()
        await watcher.aclose()

        # Telegram failing: errors, the queue's logs, the sender's repr.
        sender = TelegramSender(
            token=BOT_TOKEN, api_url=telegram.api_url, min_interval=0.0
        )
        for status in (500, 502, 400, 401, 403):
            standin.faults.append(Fault(method="sendMessage", status=status))
            with pytest.raises(MTAError) as info:
                await sender.send_message(CHAT, "Hallo")
            raised(texts, f"Telegram {status}", info.value)
        queue = AlertQueue(sender, base_delay=0.05, max_delay=0.1)
        standin.faults.append(Fault(method="sendMessage", status=500, count=2))
        queue.put(CHAT, "Hallo")
        worker = asyncio.create_task(queue.run())
        await asyncio.wait_for(queue.join(), 20)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        texts |= shown({"sender": sender, "queue": queue})
        await sender.aclose()
    unreachable = TelegramSender(token=BOT_TOKEN, api_url=telegram.api_url)
    with pytest.raises(MTAError) as info:
        await unreachable.get_me()
    raised(texts, "Telegram unreachable", info.value)
    await unreachable.aclose()

    texts |= log_texts(caplog)
    secrets = {
        **person(),
        **{f"auth key {n}": key for n, key in enumerate(sorted(auth_keys))},
        "activation link": _link_token(sim.outbox.activation_link(process.process_id))
        or "",
    }
    failed = [what for what, text in texts.items() if text == "(answered)"]
    assert len(failed) < len(calls), failed
    found = leaks(secrets, texts)
    assert not found, "\n".join(found)
