"""``mta simulate`` with --control and --api-generation, as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys

import aiohttp
import pytest

from mta_client import cli
from mta_client.simulator import serve

WAIT = 30.0


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    env["PYTHONUNBUFFERED"] = "1"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mta_client",
        "simulate",
        "--port",
        "0",
        "--scenario",
        "quiet",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode()
    lines = [first]
    if "--control" in args:
        lines.append((await asyncio.wait_for(process.stdout.readline(), WAIT)).decode())
    return process, lines


async def _stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.communicate(), WAIT)
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail("mta simulate did not stop on Ctrl-C")
    assert process.returncode is not None
    return process.returncode


def _url(line: str) -> str:
    match = re.search(r"(http://\S+)", line)
    assert match, line
    return match.group(1)


async def test_simulate_with_control() -> None:
    process, lines = await _start("--control")
    try:
        assert "listening on http://127.0.0.1:" in lines[0]
        assert lines[1].startswith("Control surface on http://127.0.0.1:")
        control = _url(lines[1])
        assert control.endswith("/_simulator/")
        async with aiohttp.ClientSession() as session:
            async with session.get(control + "time") as response:
                assert response.status == 200
                assert "time" in await response.json()
            async with session.post(control + "faults", json={"kind": "reset"}) as r:
                assert r.status == 201
    finally:
        assert await _stop(process) == 0


async def test_simulate_without_control_and_muc45() -> None:
    process, lines = await _start("--api-generation", "muc45")
    try:
        assert "API muc45) listening on" in lines[0]
        base = _url(lines[0])
        root = base.split("/buergeransicht/")[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(root + "/_simulator/time") as response:
                assert response.status == 404
                body = await response.json()
            assert body["errors"][0]["errorCode"] == "notFound"
            async with session.get(base + "available-calendar/") as response:
                assert response.status == 404
    finally:
        assert await _stop(process) == 0


async def test_serve_in_process_prints_the_control_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = asyncio.create_task(serve(port=0, scenario="quiet", control=True))
    output = ""
    for _ in range(300):
        await asyncio.sleep(0.01)
        output += capsys.readouterr().out
        if "Control surface on" in output:
            break
    try:
        control = _url(output.splitlines()[-1])
        async with (
            aiohttp.ClientSession() as session,
            session.get(control) as response,
        ):
            assert response.status == 200
            assert "/_simulator/outbox" in (await response.json())["paths"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_simulate_help_documents_the_control_surface(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["simulate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--control" in text
    assert "--api-generation {muc47,muc45}" in text
    for path in ("outbox", "faults", "stats", "bookings", "slots", "time"):
        assert f"/_simulator/{path}" in text


def test_simulate_rejects_an_unknown_generation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["simulate", "--api-generation", "muc12"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_simulate_help_documents_the_visibility_models(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["simulate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--visibility {cron,delayed,random}" in text
    assert "median 6 s" in text
    assert "median 15 s" in text
    assert "capped at 50 s" in text


def test_simulate_visibility_option() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["simulate"]).visibility == "delayed"
    assert parser.parse_args(["simulate", "--visibility", "cron"]).visibility == "cron"
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--visibility", "late"])
