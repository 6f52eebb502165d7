"""Scenarios: when slots appear and how fast competing citizens take them.

A :class:`Scenario` yields :class:`Release` events: at ``at`` a run of units
at an office becomes free. The simulator asks for the events of each local
day (Europe/Berlin) lazily, with a random generator seeded by the simulator
seed and the day, so runs are reproducible whatever the request timing.

Built-in scenarios (see :func:`scenario_names`):

* ``munich-weekday`` (default): a lively Munich weekday following the city's
  published release windows (Bürgerbüro: 7-8 h same-day, 9-11 h next week,
  overnight 42 days ahead; Führerscheinstelle 7-8 h and 7:30-8:30 h for
  14 days ahead; Ausländerbehörde Notfall-Hilfe Mon/Wed/Fri 6:30 h and
  Tue/Thu 7:30 h), single slots from cancellations at any time of day, and
  competitors who take most slots within about a minute - and who cancel
  some of what they booked later (:class:`CompetitorCancellations`: 15 % of
  their appointments, at a uniformly random time between 10 minutes after
  booking and 1 hour before the appointment; the slot is free again at the
  deallocation cron 15 minutes after the cancel). The release windows with
  many slots at once are the scenario's bulk-release windows
  (:meth:`Scenario.is_bulk`: weekdays 0:05-5 h, 6:30 h, 7-8:30 h, 9-11 h),
  in which the ``delayed`` visibility model's cron runs longer
  (:mod:`.visibility`).
* ``quiet``: nothing is ever free (slots only via :meth:`Simulator.release_slot`).
* ``fixed``: a small deterministic set of free slots, no releases, no
  competitors - for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import math
from typing import TYPE_CHECKING

from .office_days import MunichHolidays

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    import random

    from .catalogue import Catalogue

__all__ = [
    "Competition",
    "CompetitorCancellations",
    "FixedScenario",
    "MunichWeekday",
    "QuietScenario",
    "Release",
    "ReleaseRule",
    "Scenario",
    "get_scenario",
    "register_scenario",
    "scenario_names",
]

BUERGERBUEROS = (10489, 102522, 54261, 102526, 102523, 102524)
CANCELLATION_SOURCES = frozenset({"cancellation", "competitor-cancellation"})
"""Sources of slots freed by a cancellation (noticed later by competitors)."""
WEEKDAYS = (0, 1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class Release:
    """A run of ``minutes`` at ``office_id`` from ``start`` becomes free at ``at``.

    ``compete`` lets the scenario's competitors go after it.
    """

    at: float
    office_id: int
    start: int
    minutes: int
    source: str = "release"
    compete: bool = True


@dataclass(frozen=True, slots=True)
class Competition:
    """Competing citizens.

    Each appointment-sized chunk (``chunk_minutes``) of a new free run is taken
    with ``probability`` after a log-normal delay with median
    ``median_delay`` seconds and shape ``sigma``, at least ``min_delay``.
    """

    probability: float = 0.85
    median_delay: float = 40.0
    sigma: float = 1.0
    min_delay: float = 2.0
    chunk_minutes: int = 15

    def delay(self, rng: random.Random) -> float | None:
        """Return when a competitor takes a chunk, or ``None`` if nobody does."""
        if rng.random() >= self.probability:
            return None
        return max(
            self.min_delay, rng.lognormvariate(math.log(self.median_delay), self.sigma)
        )


@dataclass(frozen=True, slots=True)
class CompetitorCancellations:
    """Competing citizens cancel some of the appointments they booked.

    Each appointment a competitor takes is cancelled with ``probability``,
    at a uniformly random time from ``after`` seconds after booking to
    ``before`` seconds before the appointment starts (none if that span is
    empty). The city frees the slot at the deallocation cron
    (``Simulator(deallocation_minutes=15)`` after the cancel), subject to
    the visibility model, and competitors go after it again.
    """

    probability: float = 0.15
    after: float = 600.0
    before: float = 3600.0

    def cancel_at(
        self, rng: random.Random, booked_at: float, start: float
    ) -> float | None:
        """Return when a competitor cancels, or ``None`` if they keep it."""
        if rng.random() >= self.probability:
            return None
        lo, hi = booked_at + self.after, start - self.before
        if hi <= lo:
            return None
        return rng.uniform(lo, hi)


@dataclass(frozen=True, slots=True)
class ReleaseRule:
    """A published release window.

    On each local day whose weekday is in ``weekdays``, ``blocks`` runs of
    ``block_minutes`` are released at random times in ``window`` for
    appointments ``day_offsets`` days later, between ``hours``. ``bulk``
    marks a window in which many slots are released at once (the cron then
    runs longer, see :meth:`Scenario.is_bulk`).
    """

    offices: tuple[int, ...]
    weekdays: tuple[int, ...]
    window: tuple[dt.time, dt.time]
    day_offsets: tuple[int, int]
    blocks: tuple[int, int]
    block_minutes: tuple[int, int]
    hours: tuple[dt.time, dt.time] = (dt.time(8), dt.time(17))
    source: str = "release"
    competition: Competition | None = None
    bulk: bool = True


def _t(hour: int, minute: int = 0) -> dt.time:
    return dt.time(hour, minute)


class Scenario:
    """Base class: no slots, no releases, no competitors.

    Subclasses override :meth:`initial` and :meth:`releases_for_day`.
    """

    name = "custom"
    competition: Competition | None = None
    competitor_cancellations: CompetitorCancellations | None = None

    def initial(
        self, now: float, tz: dt.tzinfo, rng: random.Random, catalogue: Catalogue
    ) -> Iterable[Release]:
        """Return the runs that are free when the simulator starts."""
        del now, tz, rng, catalogue
        return ()

    def releases_for_day(
        self, day: dt.date, tz: dt.tzinfo, rng: random.Random, catalogue: Catalogue
    ) -> Iterable[Release]:
        """Return the releases happening on local ``day``."""
        del day, tz, rng, catalogue
        return ()

    def competition_for(self, release: Release) -> Competition | None:
        """Return who competes for a release (default: :attr:`competition`)."""
        return self.competition if release.compete else None

    def is_bulk(self, at: float, tz: dt.tzinfo) -> bool:
        """Whether ``at`` falls into a bulk-release window (default: never).

        The ``delayed`` visibility model's cron runs longer then.
        """
        del at, tz
        return False


class QuietScenario(Scenario):
    """Nothing is ever free."""

    name = "quiet"


class FixedScenario(Scenario):
    """A deterministic small set of free slots; no releases, no competitors.

    For every office: 09:00-10:00 and 14:00-15:00 on the first three working
    days after the start day, and 10:00-11:00 on the first working day 35
    days or more after the start day (another month, for month painting).
    Working days skip weekends and Munich's public holidays, so the set is
    the same size whatever day a test runs on.
    """

    name = "fixed"

    def initial(
        self, now: float, tz: dt.tzinfo, rng: random.Random, catalogue: Catalogue
    ) -> Iterable[Release]:
        """Return the fixed free runs."""
        del rng
        today = dt.datetime.fromtimestamp(now, tz).date()
        days = list(_working_days_after(today, 3))
        far = next(_working_days_after(today + dt.timedelta(days=34), 1))
        result: list[Release] = []
        for office_id in catalogue.offices:
            for day in days:
                for hour in (9, 14):
                    start = _ts(day, _t(hour), tz)
                    result.append(
                        Release(now, office_id, start, 60, "initial", compete=False)
                    )
            result.append(
                Release(
                    now, office_id, _ts(far, _t(10), tz), 60, "initial", compete=False
                )
            )
        return result


_HOLIDAYS = MunichHolidays()


def _working_days_after(day: dt.date, count: int) -> Iterator[dt.date]:
    found = 0
    while found < count:
        day += dt.timedelta(days=1)
        if _HOLIDAYS.is_open(day):
            found += 1
            yield day


def _ts(day: dt.date, time: dt.time, tz: dt.tzinfo) -> int:
    return int(dt.datetime.combine(day, time, tzinfo=tz).timestamp())


def _munich_rules() -> tuple[ReleaseRule, ...]:
    bb = (*BUERGERBUEROS, 10502, 10503)
    mwf, tt = (0, 2, 4), (1, 3)
    return (
        # Bürgerbüros, same day: "zwischen 7 und 8 Uhr tagesaktuelle Termine".
        ReleaseRule(
            bb, WEEKDAYS, (_t(7), _t(8)), (0, 0), (3, 8), (15, 45), (_t(8), _t(18))
        ),
        # Bürgerbüros, next week: "folgen zwischen 9 und 11 Uhr".
        ReleaseRule(bb, WEEKDAYS, (_t(9), _t(11)), (7, 11), (4, 10), (15, 60)),
        # Bürgerbüros, 42 days ahead: "über Nacht freigeschaltet".
        ReleaseRule(bb, WEEKDAYS, (_t(0, 5), _t(5)), (42, 42), (5, 12), (30, 90)),
        # Führerscheinstelle: same day 7-8 h, 14 days ahead 7:30-8:30 h
        ReleaseRule(
            (10308174,),
            WEEKDAYS,
            (_t(7), _t(8)),
            (0, 0),
            (2, 5),
            (20, 60),
            (_t(8), _t(15)),
        ),
        ReleaseRule(
            (10308174,),
            WEEKDAYS,
            (_t(7, 30), _t(8, 30)),
            (14, 14),
            (3, 8),
            (20, 80),
            (_t(8), _t(15)),
        ),
        # KfZ-Zulassung: max. 7 days ahead, new slots Mon-Fri 7-8 h
        ReleaseRule(
            (10308013,),
            WEEKDAYS,
            (_t(7), _t(8)),
            (0, 7),
            (4, 10),
            (15, 60),
            (_t(7, 30), _t(15)),
        ),
        # Ausländerbehörde Notfall-Hilfe: Mon/Wed/Fri 6:30 h, Tue/Thu 7:30 h
        ReleaseRule(
            (10187259, 10461),
            mwf,
            (_t(6, 30), _t(6, 31)),
            (0, 0),
            (3, 8),
            (10, 30),
            (_t(8), _t(12)),
        ),
        ReleaseRule(
            (10187259, 10461),
            tt,
            (_t(7, 30), _t(7, 31)),
            (0, 0),
            (3, 8),
            (10, 30),
            (_t(8), _t(12)),
        ),
        # Ausländerbehörde 54287: same day MWF ~7 h / TT ~8 h, next week 9-13 h,
        # three months ahead overnight
        ReleaseRule(
            (54287,),
            mwf,
            (_t(7), _t(7, 15)),
            (0, 0),
            (2, 6),
            (15, 45),
            (_t(8, 30), _t(15)),
        ),
        ReleaseRule(
            (54287,),
            tt,
            (_t(8), _t(8, 15)),
            (0, 0),
            (2, 6),
            (15, 45),
            (_t(8, 30), _t(15)),
        ),
        ReleaseRule(
            (54287,),
            WEEKDAYS,
            (_t(9), _t(13)),
            (7, 11),
            (2, 6),
            (15, 45),
            (_t(8, 30), _t(15)),
            bulk=False,
        ),
        ReleaseRule(
            (54287,),
            WEEKDAYS,
            (_t(0, 5), _t(5)),
            (91, 91),
            (2, 6),
            (15, 45),
            (_t(8, 30), _t(15)),
        ),
        # Einbürgerungsbehörde: few slots, weeks ahead, during office hours
        ReleaseRule(
            (10471,),
            WEEKDAYS,
            (_t(8), _t(16)),
            (30, 90),
            (0, 2),
            (60, 60),
            (_t(8), _t(15)),
            bulk=False,
        ),
    )


@dataclass
class MunichWeekday(Scenario):
    """A lively Munich weekday (the default scenario).

    Attributes:
        competition: competitors for scheduled releases.
        cancellation_competition: competitors for single cancelled slots.
        cancellations_per_hour: cancelled appointments per office and hour
            (06-23 h, every day) of people outside the simulation, each
            freeing one appointment somewhere in the next 42 days (at the
            deallocation cron, subject to the visibility model).
        competitor_cancellations: how the competitors cancel what they
            booked during the run.
        initial_density: chance that a weekday in the horizon starts with a
            leftover free run at an office.
        rules: the release windows.

    """

    name = "munich-weekday"
    competition: Competition | None = field(default_factory=Competition)
    cancellation_competition: Competition | None = field(
        default_factory=lambda: Competition(probability=0.6, median_delay=240.0)
    )
    competitor_cancellations: CompetitorCancellations | None = field(
        default_factory=CompetitorCancellations
    )
    cancellations_per_hour: float = 0.3
    initial_density: float = 0.15
    rules: tuple[ReleaseRule, ...] = field(default_factory=_munich_rules)

    def competition_for(self, release: Release) -> Competition | None:
        """Cancellations are noticed later than scheduled releases."""
        if not release.compete:
            return None
        if release.source in CANCELLATION_SOURCES:
            return self.cancellation_competition
        return self.competition

    def is_bulk(self, at: float, tz: dt.tzinfo) -> bool:
        """Inside one of the bulk release windows, its end minute included.

        Weekdays 0:05-5 h (overnight, 42 and 91 days ahead), 6:30 h
        (Notfall-Hilfe, Mon/Wed/Fri), 7-8:30 h (same-day slots, the
        Führerscheinstelle's 14 days) and 9-11 h (the Bürgerbüros' next
        week); not the few slots the Einbürgerungsbehörde (8-16 h) and the
        Ausländerbehörde (next week, 9-13 h) release over the day. The
        city's cron serves every office at once, so a window of one office
        slows the runs for all.
        """
        local = dt.datetime.fromtimestamp(at, tz)
        moment = local.time()
        return any(
            rule.bulk
            and local.weekday() in rule.weekdays
            and rule.window[0] <= moment <= rule.window[1]
            for rule in self.rules
        )

    def _offices(self) -> list[int]:
        return sorted({o for rule in self.rules for o in rule.offices})

    def initial(
        self, now: float, tz: dt.tzinfo, rng: random.Random, catalogue: Catalogue
    ) -> Iterable[Release]:
        """Leftover runs: rare in the next two weeks, more further out."""
        today = dt.datetime.fromtimestamp(now, tz).date()
        result: list[Release] = []
        for office_id in self._offices():
            if office_id not in catalogue.offices:
                continue
            for offset in range(1, 43):
                day = today + dt.timedelta(days=offset)
                density = self.initial_density * (0.3 if offset < 14 else 1.0)
                if day.weekday() >= 5 or rng.random() >= density:
                    continue
                start = _random_start(
                    day, (_t(8), _t(16)), 15, rng, tz, catalogue, office_id
                )
                result.append(
                    Release(now, office_id, start, 15, "initial", compete=False)
                )
        return result

    def releases_for_day(
        self, day: dt.date, tz: dt.tzinfo, rng: random.Random, catalogue: Catalogue
    ) -> Iterable[Release]:
        """The day's releases by the published windows, plus cancellations."""
        result: list[Release] = []
        for rule in self.rules:
            if day.weekday() not in rule.weekdays:
                continue
            for office_id in rule.offices:
                if office_id not in catalogue.offices:
                    continue
                step = catalogue.offices[office_id].slot_minutes
                for _ in range(rng.randint(*rule.blocks)):
                    at = _random_time(day, rule.window, rng, tz)
                    target = day + dt.timedelta(days=rng.randint(*rule.day_offsets))
                    if target.weekday() >= 5:
                        continue
                    minutes = max(step, rng.randint(*rule.block_minutes) // step * step)
                    start = _random_start(
                        target, rule.hours, minutes, rng, tz, catalogue, office_id
                    )
                    if start <= at + 15 * 60:
                        continue
                    result.append(Release(at, office_id, start, minutes, rule.source))
        for office_id in self._offices():
            if office_id not in catalogue.offices:
                continue
            step = catalogue.offices[office_id].slot_minutes
            count = _poisson(rng, self.cancellations_per_hour * 17)
            for _ in range(count):
                at = _random_time(day, (_t(6), _t(23)), rng, tz)
                target = day + dt.timedelta(days=rng.randint(1, 41))
                if target.weekday() >= 5:
                    continue
                minutes = max(step, 15 // step * step)
                start = _random_start(
                    target, (_t(8), _t(16)), minutes, rng, tz, catalogue, office_id
                )
                result.append(Release(at, office_id, start, minutes, "cancellation"))
        result.sort(key=lambda r: (r.at, r.office_id, r.start))
        return result


def _random_time(
    day: dt.date, window: tuple[dt.time, dt.time], rng: random.Random, tz: dt.tzinfo
) -> float:
    lo = dt.datetime.combine(day, window[0], tzinfo=tz).timestamp()
    hi = dt.datetime.combine(day, window[1], tzinfo=tz).timestamp()
    return float(int(rng.uniform(lo, hi)))


def _random_start(  # noqa: PLR0917 - private helper
    day: dt.date,
    hours: tuple[dt.time, dt.time],
    minutes: int,
    rng: random.Random,
    tz: dt.tzinfo,
    catalogue: Catalogue,
    office_id: int,
) -> int:
    step = catalogue.offices[office_id].slot_minutes * 60
    lo = _ts(day, hours[0], tz)
    hi = _ts(day, hours[1], tz) - minutes * 60
    cells = max(0, (hi - lo) // step)
    return lo + rng.randint(0, cells) * step


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth; means are small (a few per day).
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


_REGISTRY: dict[str, Callable[[], Scenario]] = {
    "munich-weekday": MunichWeekday,
    "quiet": QuietScenario,
    "fixed": FixedScenario,
}


def register_scenario(name: str, factory: Callable[[], Scenario]) -> None:
    """Register a scenario factory under ``name`` (replaces an existing one)."""
    _REGISTRY[name] = factory


def scenario_names() -> list[str]:
    """Return the names of the registered scenarios."""
    return sorted(_REGISTRY)


def get_scenario(name: str) -> Scenario:
    """Return a new scenario by name.

    Raises:
        KeyError: unknown name.

    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        msg = f"unknown scenario {name!r}; known: {', '.join(scenario_names())}"
        raise KeyError(msg) from None
    return factory()
