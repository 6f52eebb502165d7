"""``python -m mta_client`` as a real process: simulate, slots, watch + Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import IO

import pytest

from .conftest import free_port

FUEHRERSCHEIN = 10308174
UMSCHREIBUNG = 1071896
WAIT = 20.0  # seconds any step may take at most


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _mta(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mta_client", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _first_line(stream: IO[str]) -> str:
    """Read one line, waiting at most WAIT seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=WAIT)
    except queue.Empty:
        pytest.fail("no output from the process in time")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C the process and collect its exit code and the rest of its output."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the process did not stop on Ctrl-C")
    return process.returncode, out, err


@pytest.fixture(name="simulator_process")
def simulator_process_fixture(socket_enabled: None) -> Iterator[str]:
    """``mta simulate`` on a free port; yields its base URL."""
    port = free_port()
    process = _mta("simulate", "--port", str(port), "--scenario", "fixed")
    try:
        line = _first_line(process.stdout)  # type: ignore[arg-type]
        assert line.startswith("Simulator (fixed, speed 1) listening on "), line
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url == f"http://127.0.0.1:{port}/buergeransicht/api/citizen/"
        yield base_url
        code, _, err = _stop(process)
        assert code == 0, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=WAIT)


def test_slots_against_simulate(simulator_process: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mta_client",
            "slots",
            "--service",
            str(UMSCHREIBUNG),
            "--base-url",
            simulator_process,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["slots"]
    assert {s["office_id"] for s in data["slots"]} == {FUEHRERSCHEIN}
    assert result.stderr == ""


def test_watch_ends_cleanly_on_ctrl_c(simulator_process: str) -> None:
    process = _mta(
        "watch",
        "--service",
        str(UMSCHREIBUNG),
        "--office",
        str(FUEHRERSCHEIN),
        "--interval",
        "0.2",
        "--base-url",
        simulator_process,
    )
    try:
        first = _first_line(process.stdout)  # type: ignore[arg-type]
        assert first.startswith("new   ")
        watch_id = f"{UMSCHREIBUNG}@{FUEHRERSCHEIN}"
        assert first.endswith(
            f"Führerscheinstelle ({FUEHRERSCHEIN})  [watch {watch_id}]\n"
        )
        code, _, err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
