"""Exit codes for every error category, interrupts, pipes, and a failed release."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from mta_client import cli
from mta_client.cli import ExitCode
from mta_client.cli.exitcodes import CLIError, describe, exit_code_for
from mta_client.cli.watching import MIN_CITY_INTERVAL
from mta_client.client import DEFAULT_BASE_URL
from mta_client.exceptions import (
    MTAAppointmentNotAvailableError,
    MTAAppointmentNotFoundError,
    MTAAuthKeyMismatchError,
    MTABudgetExceededError,
    MTACaptchaExpiredError,
    MTAConnectionError,
    MTAError,
    MTAInvalidEmailError,
    MTAInvalidResponseError,
    MTAIpBlacklistedError,
    MTAProcessNotReservedAnymoreError,
    MTARateLimitExceededError,
    MTARouteNotFoundError,
    MTAServiceUnavailableError,
    MTATimeoutError,
    MTATooManyAppointmentsWithSameMailError,
    MTAUnknownError,
    MTAValidationError,
)
from mta_client.watcher import PollPolicy

if TYPE_CHECKING:
    from mta_client.simulator import Simulator

    from .conftest import Run


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MTAValidationError("email", "bad"), ExitCode.USAGE),
        (MTAInvalidEmailError(), ExitCode.USAGE),
        (MTARateLimitExceededError(), ExitCode.RATE_LIMITED),
        (MTABudgetExceededError(12.0), ExitCode.RATE_LIMITED),
        (MTAIpBlacklistedError(), ExitCode.BLOCKED),
        (MTAServiceUnavailableError(), ExitCode.MAINTENANCE),
        (MTARouteNotFoundError(), ExitCode.INVALID_RESPONSE),
        (MTAAppointmentNotFoundError(), ExitCode.NOT_FOUND),
        (MTAAppointmentNotAvailableError(), ExitCode.SLOT_TAKEN),
        (MTAConnectionError("refused"), ExitCode.UNREACHABLE),
        (MTATimeoutError("slow"), ExitCode.UNREACHABLE),
        (MTACaptchaExpiredError(), ExitCode.CAPTCHA),
        (MTAInvalidResponseError("odd"), ExitCode.INVALID_RESPONSE),
        (MTAUnknownError(), ExitCode.INVALID_RESPONSE),
        (MTAProcessNotReservedAnymoreError(), ExitCode.APPOINTMENT_STATE),
        (MTAAuthKeyMismatchError(), ExitCode.APPOINTMENT_STATE),
        (MTATooManyAppointmentsWithSameMailError(), ExitCode.APPOINTMENT_STATE),
        (CLIError("nothing", ExitCode.NOTHING_FOUND), ExitCode.NOTHING_FOUND),
        (MTAError("other"), ExitCode.UNEXPECTED),
        (RuntimeError("boom"), ExitCode.UNEXPECTED),
    ],
)
def test_exit_code_for(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) is code
    message = describe(error)
    assert message
    assert "\n" not in message


def test_describe() -> None:
    assert describe(MTABudgetExceededError(12.4)) == (
        "request budget exhausted (the city's rate limit); retry in 12 s"
    )
    assert describe(MTAValidationError("family_name", "is required")) == (
        "invalid --name: is required"
    )
    assert describe(RuntimeError("boom")) == "unexpected RuntimeError: boom"
    assert describe(MTAError("plain")) == "plain"


def polite_interval(base_url: str, interval: float) -> float:
    """The pause the policy keeps toward ``base_url`` for a chosen one."""
    policy = PollPolicy(window_interval=interval, other_interval=interval)
    return policy.toward(base_url).other_interval


def test_polite_interval() -> None:
    assert polite_interval(DEFAULT_BASE_URL, 5) == MIN_CITY_INTERVAL
    assert polite_interval(DEFAULT_BASE_URL, 90) == 90
    assert polite_interval("http://127.0.0.1:8080/buergeransicht/api/citizen/", 1) == 1


def _interrupt(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise KeyboardInterrupt


def test_ctrl_c_ends_a_watch_with_0(mta: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "run_watches", _interrupt)
    result = mta("watch", "--service", "1071896")
    assert result.code == 0
    assert result.err == ""


def test_ctrl_c_elsewhere_is_130(mta: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "list_offices", _interrupt)
    assert mta("offices").code == 130


class _ClosedPipe:
    def write(self, _text: str) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        raise BrokenPipeError

    def fileno(self) -> int:
        raise io.UnsupportedOperation


def test_closed_pipe_is_quiet(mta: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    result = mta("offices")
    assert result.code == 0
    assert result.err == ""


def test_release_failure_is_reported(
    mta: Run, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTA_NAME", "Geheim")
    monkeypatch.setenv("MTA_EMAIL", "geheim@example.org")
    sim.faults.add(kind="server_error", route="update-appointment/")
    sim.faults.add(kind="server_error", route="cancel-appointment/")
    result = mta("book", "--service", "1071896", "--office", "10308174", "--earliest")
    assert result.code == ExitCode.INVALID_RESPONSE
    (process,) = sim.bookings.processes.values()
    assert process.status == "reserved"  # the city lets it expire
    assert result.err.splitlines()[0] == (
        "mta: could not cancel the reservation (An internal error has occurred. "
        "(HTTP 500)); the city releases it within 15 minutes"
    )
    assert "Geheim" not in result.err
