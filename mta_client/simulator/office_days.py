"""Days the city's offices are closed: Munich's public holidays.

The offices of the Kreisverwaltungsreferat keep no hours on a public holiday,
so the simulated city never offers a slot on one (neither in the calendar nor
to reserve). Which days those are comes from the ``holidays`` package for
Bavaria (``subdiv="BY"``): its ``PUBLIC`` category has the holidays of all of
Bavaria, and Assumption Day (15 August) is in the ``CATHOLIC`` category
because it is a holiday only in Bavaria's predominantly Catholic
municipalities - Munich is one of them, so both categories count. The
``Augsburg`` subdivision (Peace Festival, 8 August) is Augsburg's alone.
"""

from __future__ import annotations

import datetime as dt

import holidays
from holidays.constants import CATHOLIC, PUBLIC

__all__ = ["MunichHolidays"]


class MunichHolidays:
    """Munich's public holidays (Bavaria, with Assumption Day)."""

    def __init__(self) -> None:
        """Prepare the calendar; years are filled in on first use."""
        self._days = holidays.country_holidays(
            "DE", subdiv="BY", categories=(PUBLIC, CATHOLIC)
        )

    def __contains__(self, day: object) -> bool:
        """Return whether ``day`` (a date) is a public holiday in Munich."""
        return isinstance(day, dt.date) and day in self._days

    def name(self, day: dt.date) -> str | None:
        """Return the holiday's German name, or ``None`` on a working day."""
        return self._days.get(day)

    def is_open(self, day: dt.date) -> bool:
        """Return whether the offices open on ``day``: a weekday, not a holiday."""
        return day.weekday() < 5 and day not in self  # Monday to Friday
