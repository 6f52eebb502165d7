"""When the city's per-minute cron makes a change visible: the visibility models.

The city's server does not free slots the moment staff release them or a
citizen cancels: ``calculateSlots``, ``deallocateAppointmentData`` (cancelled
appointments, 15 minutes after the cancel), ``deleteReservedData`` (expired
reservations) and ``deleteUnconfirmedAppointmentData`` (expired activations)
run from a cron job every minute (``zmsbackend/cron/cronjob.minutly``), and
each run takes a while - longer while the city releases many slots at once.
Every such change (a scheduled release, a cancellation, an expiry, a
deallocation) is due at the next full minute after it happens (the *tick*)
and becomes visible at the tick plus a delay that depends on the model:

``cron``
    No delay: visible exactly at the full minute (the simulator's behaviour
    before the models existed; the default of :class:`Simulator` built in
    code, so that tests can count on whole minutes).
``delayed``
    The cron run needs a while per office (scope). The delay of the run at
    tick ``T`` for office ``O`` is drawn once (so everything that run frees
    at that office appears together) from a log-normal distribution:

    * normally median 6 s, shape sigma 0.7 (mean ~7.7 s, p90 ~14.7 s, p95
      ~19 s), at least 1 s;
    * inside the scenario's bulk-release windows (for ``munich-weekday``
      weekdays 0:05-5 h, 6:30 h, 7-8:30 h and 9-11 h, when the Bürgerbüros
      and other offices release many slots; :meth:`Scenario.is_bulk`)
      median 15 s, sigma
      0.6 (mean ~18 s, p90 ~32 s, p95 ~40 s), at least 3 s, as the run
      works through many slots;

    both capped at 50 s, so a run ends before the next one starts. The
    default of ``mta simulate``.
``random``
    No minute structure at all: each change becomes visible at a uniformly
    random moment in the minute after its tick (``tick + U[0, 60)`` s),
    drawn per change. Looking just after the full minute gains nothing.

Draws are seeded with the simulator seed, the tick and the office (and, for
``random``, the change), so a run is reproducible whatever the request
timing. Manual releases (:meth:`Simulator.release_slot`, the control
surface) bypass the cron and appear at once.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import random

__all__ = [
    "BULK_DELAY",
    "NORMAL_DELAY",
    "VISIBILITY_MODELS",
    "CronDelay",
    "Visibility",
    "cron_run",
]

VISIBILITY_MODELS: dict[str, str] = {
    "cron": "exactly at the full minute after the change (the cron takes no time)",
    "delayed": "some seconds after the full minute: log-normal, median 6 s "
    "(15 s inside bulk-release windows), capped at 50 s",
    "random": "at a uniformly random second of the minute after the full minute",
}
"""The visibility models, with what each means."""


def cron_run(timestamp: float) -> float:
    """When the city's per-minute cron next runs: the next full minute."""
    return math.ceil(timestamp / 60) * 60


@dataclass(frozen=True, slots=True)
class CronDelay:
    """How long one cron run takes: log-normal, clipped to ``[minimum, cap]``.

    Attributes:
        median: median delay in seconds (the log-normal's ``exp(mu)``).
        sigma: shape of the log-normal (the standard deviation of the log).
        minimum: the shortest delay.
        cap: the longest delay (the next run starts 60 s after this one).

    """

    median: float
    sigma: float
    minimum: float
    cap: float = 50.0

    def draw(self, rng: random.Random) -> float:
        """Return one delay in seconds."""
        value = rng.lognormvariate(math.log(self.median), self.sigma)
        return min(self.cap, max(self.minimum, value))


NORMAL_DELAY = CronDelay(median=6.0, sigma=0.7, minimum=1.0)
"""The ``delayed`` model's cron run outside bulk-release windows."""
BULK_DELAY = CronDelay(median=15.0, sigma=0.6, minimum=3.0)
"""The ``delayed`` model's cron run inside bulk-release windows."""


class Visibility:
    """A visibility model: when a change due at a cron run becomes visible.

    Args:
        model: a key of :data:`VISIBILITY_MODELS`.
        seed: the simulator seed.
        normal: the ``delayed`` model's run outside bulk windows.
        bulk: the ``delayed`` model's run inside bulk windows.

    Raises:
        ValueError: an unknown model.

    """

    def __init__(
        self,
        model: str = "cron",
        *,
        seed: int = 0,
        normal: CronDelay = NORMAL_DELAY,
        bulk: CronDelay = BULK_DELAY,
    ) -> None:
        """Check the model's name and keep the settings."""
        if model not in VISIBILITY_MODELS:
            known = ", ".join(VISIBILITY_MODELS)
            msg = f"unknown visibility {model!r}; known: {known}"
            raise ValueError(msg)
        self.model = model
        self.seed = seed
        self.normal = normal
        self.bulk = bulk

    def delay(
        self, tick: float, office_id: int, *, bulk: bool, key: object = None
    ) -> float:
        """Seconds after the cron run at ``tick`` until its change is visible.

        ``key`` names the change (used by ``random`` only, which draws per
        change; ``delayed`` draws once per run and office).
        """
        if self.model == "cron":
            return 0.0
        if self.model == "delayed":
            rng = random.Random(f"{self.seed}:cron:{int(tick)}:{office_id}")
            return (self.bulk if bulk else self.normal).draw(rng)
        rng = random.Random(f"{self.seed}:random:{int(tick)}:{office_id}:{key}")
        return rng.uniform(0.0, 60.0)

    def visible_at(
        self, at: float, office_id: int, *, bulk: bool, key: object = None
    ) -> float:
        """When a change that happens at ``at`` becomes visible."""
        tick = cron_run(at)
        return tick + self.delay(tick, office_id, bulk=bulk, key=key)
