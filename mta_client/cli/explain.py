"""``mta watch --explain``: how the watcher plans to spend its requests.

Prints the watcher's :class:`~mta_client.watcher.Plan` - per query group
the watches it serves, its budget of requests per day, the release windows
it spends on, and the detection time the pace gives inside and outside them
- and exits without looking for slots.

The option is an :class:`ExplainAction`: it marks the command line it was
parsed from (:func:`explain_requested`), so that the watch command can stop
right after setting the watcher up.
"""

from __future__ import annotations

import argparse
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .exitcodes import ExitCode
from .output import table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mta_client.watcher import GroupPlan, Plan, Watcher

    from .output import Output

__all__ = [
    "ExplainAction",
    "explain_requested",
    "plan_document",
    "plan_text",
    "print_plan",
]

_REQUESTED: ContextVar[bool] = ContextVar("mta_watch_explain", default=False)


class ExplainAction(argparse.Action):
    """``--explain``: a flag that also marks the command line as explaining.

    A new parser starts unmarked, so one ``mta`` run does not leak into the
    next in the same process (tests).
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        """Set up the flag (no value); a new parser starts unmarked."""
        kwargs.setdefault("default", False)
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        _REQUESTED.set(False)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Set the flag and mark the command line."""
        del parser, values, option_string
        setattr(namespace, self.dest, True)
        _REQUESTED.set(True)


def explain_requested() -> bool:
    """Whether the command line asked for ``--explain``."""
    return _REQUESTED.get()


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 120:  # noqa: PLR2004 - minutes read better from two on
        return f"{value / 60:.0f} min"
    return f"{value:.0f} s"


def _pace(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/min"


def plan_text(plan: Plan) -> str:
    """The plan as a table for people, with a line on the totals."""
    if plan.fixed_interval is not None:
        head = (
            f"A fixed pace (--interval {plan.fixed_interval:.0f} s) instead of "
            "the budget; the plan below is what the budget would do."
        )
    else:
        head = (
            f"{len(plan.groups)} request(s) per look, "
            f"{plan.requests_per_day:.0f} requests a day in all "
            f"(at most {plan.limit_per_minute:.0f} a minute together)."
        )
    rows = [
        (
            group.key,
            ", ".join(group.watches),
            group.urgency,
            f"{group.requests_per_day:.0f}",
            ", ".join(group.windows) or "-",
            _pace(group.looks_per_minute_in_windows),
            _seconds(group.detect_in_windows),
            _seconds(group.pause_outside),
            _seconds(group.detect_outside),
        )
        for group in plan.groups
    ]
    headers = (
        "services",
        "watches",
        "urgency",
        "requests/day",
        "windows",
        "in windows",
        "detect",
        "pause outside",
        "detect",
    )
    return head + "\n" + table(headers, rows)


def _group_document(group: GroupPlan) -> dict[str, Any]:
    return {
        "services": [
            {"service_id": service, "count": count} for service, count in group.services
        ],
        "office_ids": list(group.office_ids),
        "watches": list(group.watches),
        "urgency": group.urgency,
        "requests_per_day": round(group.requests_per_day, 1),
        "windows": list(group.windows),
        "looks_per_minute_in_windows": (
            None
            if group.looks_per_minute_in_windows is None
            else round(group.looks_per_minute_in_windows, 2)
        ),
        "detect_in_windows_s": (
            None
            if group.detect_in_windows is None
            else round(group.detect_in_windows, 1)
        ),
        "pause_outside_s": round(group.pause_outside, 1),
        "detect_outside_s": round(group.detect_outside, 1),
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as JSON data (``mta watch --explain --json``)."""
    return {
        "groups": [_group_document(group) for group in plan.groups],
        "requests_per_day": round(plan.requests_per_day, 1),
        "limit_per_minute": round(plan.limit_per_minute, 1),
        "fixed_interval": plan.fixed_interval,
    }


def print_plan(watcher: Watcher, out: Output) -> ExitCode:
    """Print the watcher's plan (text, or the JSON document); no look is made."""
    plan = watcher.explain()
    out.result({"plan": plan_document(plan)})
    out.text(plan_text(plan))
    return ExitCode.OK
