"""Honest booking: reserve, fill in, pre-confirm - written once.

:func:`book_slot` is the one booking flow of the library; ``mta book``, the
watcher (automatic and on request) and the examples all call it:

1. reserve the slot (``reserve-appointment/``);
2. add the person's data (``update-appointment/``);
3. pre-confirm (``preconfirm-appointment/``): the city e-mails the
   activation link, and the person's own click on it stays the last step.

When a step after the reservation fails, the reservation is cancelled so it
does not block the slot for others - unless the city says it is gone
already - and the caller hears truthfully whether that cancel worked
(:class:`BookingStep`). The activation deadline comes from the office's
``scope.activationDuration`` (30 minutes when the city does not say).

``on_step`` is awaited *before* each request is sent, so a caller can write
the step down first. The :class:`Booker` does exactly that, which is how a
restart mid-booking resumes instead of booking twice:

* ``reserving`` without credentials: the reserve may or may not have
  happened. If it did, that reservation is no booking (nothing was filled
  in) and the city releases it after ``reservationDuration``; booking may
  start again.
* ``reserved`` with credentials: resume with update and pre-confirm.
* ``preconfirming``: ask the city for the appointment's status first.
  The same when the pre-confirmation's answer was lost while the process
  ran (a timeout, a broken connection, an unreadable answer: the city may
  have carried it out) and releasing the reservation failed too: the
  record stays ``preconfirming`` (``released`` false, the error as its
  reason), the watch books nothing, and the engine asks the city
  (:meth:`Booker.check_status`) until it knows whether the person holds an
  appointment - never a second one for the same person: ``booked``, or
  ``idle`` with reason :data:`UNANSWERED` (a reservation left is released).
* ``booked``, ``confirmed``: never book again for this watch - unless the
  city says the pre-confirmed appointment is gone (``lapsed``, below).

After booking, the person activates the appointment with the link in the
city's e-mail - through :meth:`Booker.confirm`, or in a browser, which the
engine does not see. So the engine asks the city (one ``GET appointment/``,
:meth:`Booker.check_status`, when :meth:`Booker.status_due` says) a little
after the activation deadline, rarely otherwise, and once after a restart
(:class:`StatusChecks`): an activated appointment becomes ``confirmed``; one
the city no longer holds - its activation lapsed, and the city's cron
dropped it - becomes ``lapsed``, and an auto-booking watch books again.

A booking POST is never repeated blindly after a timeout: the next look
decides again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import logging
import time
from typing import TYPE_CHECKING

from .exceptions import (
    MTAAppointmentNotFoundError,
    MTAAppointmentStateError,
    MTAAuthKeyMismatchError,
    MTAConnectionError,
    MTAError,
    MTAInvalidInputError,
    MTAInvalidResponseError,
    MTANotFoundError,
    MTAPreconfirmationExpiredError,
    MTAQuotaError,
    MTAServerError,
    MTASlotUnavailableError,
    MTAValidationError,
)
from .models import Appointment, AppointmentStatus, ProcessCredentials, Slot
from .store import BookingRecord, WatcherState, WatchState
from .watch import BookingEvent, BookingState, Watch

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .client import MTAClient, ServicesArg
    from .models import ContactDetails, Scope

__all__ = [
    "ACTIVATION_LAPSED",
    "DEFAULT_ACTIVATION",
    "GONE",
    "INTERRUPTED",
    "UNANSWERED",
    "BookedAppointment",
    "Booker",
    "BookingConflictError",
    "BookingProgress",
    "BookingStep",
    "NoFittingSlotError",
    "StatusChecks",
    "activation_minutes",
    "book_slot",
    "complete_booking",
]

_LOGGER = logging.getLogger(__name__)

# Failures that would repeat with the same data: stop booking for the watch.
_PERMANENT = (MTAValidationError, MTAInvalidInputError, MTAQuotaError)
# Failures after which a request may have been carried out all the same: no
# answer came (a timeout, a broken connection), an unreadable one, or the
# server failed on the way (a gateway's 502/504, an uncaught 500).
_UNANSWERED_ERRORS = (MTAConnectionError, MTAInvalidResponseError, MTAServerError)
# The city's default activation time, when the scope does not say.
DEFAULT_ACTIVATION = timedelta(minutes=30)
INTERRUPTED = "interrupted"
"""The reason of the event :meth:`Booker.resume` emits for a reserve whose
answer was lost (the process stopped while reserving): if the city took it,
the slot stays blocked until the reservation times out."""
ACTIVATION_LAPSED = "activation_lapsed"
"""The reason of a ``lapsed`` booking whose activation deadline had passed:
the link was not used in time, and the city dropped the appointment."""
GONE = "gone"
"""The reason of a ``lapsed`` booking the city no longer knew before its
activation deadline (cancelled outside the engine, or dropped early)."""
UNANSWERED = "unanswered"
"""The reason of the ``idle`` event after a pre-confirmation that went
unanswered: the city said it holds no appointment, and the watch may book
again."""

# What the city answers for a pre-confirmed appointment it dropped: its cron
# deletes it (appointmentNotFound) or dereferences it first (its auth key
# replaced: authKeyMismatch); the backend's PreconfirmationExpired.
_GONE_ERRORS = (
    MTAAppointmentNotFoundError,
    MTAAuthKeyMismatchError,
    MTAPreconfirmationExpiredError,
)
# Statuses of an appointment that was activated (and perhaps served since).
_ACTIVATED = frozenset(
    {
        AppointmentStatus.CONFIRMED,
        AppointmentStatus.QUEUED,
        AppointmentStatus.CALLED,
        AppointmentStatus.PROCESSING,
        AppointmentStatus.PENDING,
        AppointmentStatus.FINISHED,
        AppointmentStatus.MISSED,
        AppointmentStatus.PARKED,
        AppointmentStatus.ARCHIVED,
        AppointmentStatus.ANONYMIZED,
    }
)
# Statuses that say the city holds it no more. Anything else (pre-confirmed,
# blocked, conflict, a status this version does not know) is asked again.
_DROPPED = frozenset({AppointmentStatus.DELETED, AppointmentStatus.FREE})


@dataclass(frozen=True, kw_only=True)
class StatusChecks:
    """When to ask the city about a booking that waits for its activation.

    Each check is one ``GET appointment/`` through the client's request
    budget. A failed check is tried again after the watcher's usual back-off.

    Attributes:
        margin: seconds after the activation deadline at which to ask: the
            city's per-minute cron drops an unactivated appointment at its
            first run after the deadline, some seconds after the minute.
        interval: the longest time between two checks of a booking (a link
            used in a browser is noticed at the latest then).
        after_restart: a process that starts with a booking last heard of
            longer ago than this asks at once; otherwise this long after.
        recheck: after the deadline the city still holds the appointment
            pre-confirmed: ask again after this, then after as long as has
            passed since the deadline (so the pauses double), at most
            :attr:`interval`.
        unanswered: a pre-confirmation without an answer (:data:`UNANSWERED`)
            is asked about this long after it was sent (a slow server may
            still be at it), and again this long after each answer that
            settles nothing.

    """

    margin: float = 180.0
    interval: float = 3 * 3600.0
    after_restart: float = 600.0
    recheck: float = 300.0
    unanswered: float = 60.0


class BookingConflictError(MTAError):
    """The watch's booking is in a state that does not allow this.

    For example a second booking while one is held (at most one per watch),
    or cancelling when nothing is booked. Nothing was sent.
    """

    def __init__(self, message: str, *, state: BookingState) -> None:
        """Say what conflicts, and the booking's state."""
        super().__init__(message)
        self.state = state


class NoFittingSlotError(MTAError):
    """No free slot fits the watch, so there is nothing to book."""


class BookingStep(StrEnum):
    """A step of :func:`book_slot`, as told to ``on_step``.

    ``reserving``, ``reserved`` and ``preconfirming`` are told before the
    request they name is sent (``reserved``: the reserve was answered, the
    update is next); ``booked`` after the pre-confirmation was answered. A
    failed attempt that had reserved ends with ``released`` (the reservation
    was cancelled), ``release_failed`` (the cancel failed too: the city
    releases it after ``reservationDuration``) or ``lapsed`` (the city said
    the reservation was gone already: nothing to cancel).
    """

    RESERVING = "reserving"
    RESERVED = "reserved"
    PRECONFIRMING = "preconfirming"
    BOOKED = "booked"
    RELEASED = "released"
    RELEASE_FAILED = "release_failed"
    LAPSED = "lapsed"


@dataclass(frozen=True, kw_only=True)
class BookingProgress:
    """What ``on_step`` hears. ``credentials`` are private: never log them."""

    step: BookingStep
    slot: Slot
    credentials: ProcessCredentials | None = field(default=None, repr=False)
    scope: Scope | None = None
    error: BaseException | None = None
    """For the ending steps of a failed attempt: the error that ended it."""
    cancel_error: MTAError | None = None
    """For ``release_failed``: why the cancel failed."""


type StepCallback = Callable[[BookingProgress], Awaitable[None] | None]


@dataclass(frozen=True, kw_only=True)
class BookedAppointment:
    """A pre-confirmed appointment: the person must click the activation link.

    ``credentials`` (process id and auth key) cancel it: keep them private.
    """

    slot: Slot
    credentials: ProcessCredentials = field(repr=False)
    appointment: Appointment
    """The city's answer to the pre-confirmation."""
    scope: Scope | None
    activation_minutes: int
    preconfirmed_at: datetime
    activation_deadline: datetime
    """When the activation link stops working (aware, UTC)."""

    @property
    def process_id(self) -> int:
        """The city's id of the appointment."""
        return self.credentials.process_id

    @property
    def office_id(self) -> int:
        """The office booked."""
        return self.slot.office_id

    @property
    def start(self) -> datetime:
        """When the appointment starts."""
        return self.slot.start


async def book_slot(
    client: MTAClient,
    *,
    office_id: int,
    services: ServicesArg,
    slot: Slot | datetime | int,
    contact: ContactDetails,
    on_step: StepCallback | None = None,
    scope: Scope | None = None,
) -> BookedAppointment:
    """Reserve, fill in and pre-confirm one slot.

    Args:
        client: the client to book through.
        office_id: the office of the slot.
        services: what to book, as for :meth:`MTAClient.reserve_appointment`.
        slot: the slot's start (a :class:`Slot` of that office, an aware
            datetime or a Unix time).
        contact: the person's data.
        on_step: awaited before each request (see :class:`BookingStep`).
        scope: the office's scope from the catalogue, for checking the
            person's data and for the activation time when the city's answers
            do not carry one.

    Raises:
        MTASlotUnavailableError: someone else took the slot (nothing held).
        MTAError: the step that failed; a reservation already made was
            cancelled first, and ``on_step`` heard whether that worked.

    """
    target = _target(office_id, slot)
    await _tell(on_step, BookingProgress(step=BookingStep.RESERVING, slot=target))
    reserved = await client.reserve_appointment(
        office_id=office_id, services=services, timestamp=target.timestamp
    )
    return await complete_booking(
        client,
        credentials=reserved,
        slot=target,
        contact=contact,
        on_step=on_step,
        scope=reserved.scope or scope,
    )


async def complete_booking(
    client: MTAClient,
    *,
    credentials: ProcessCredentials | Appointment,
    slot: Slot,
    contact: ContactDetails,
    on_step: StepCallback | None = None,
    scope: Scope | None = None,
) -> BookedAppointment:
    """Fill in and pre-confirm a reservation: :func:`book_slot` after reserving.

    Also resumes a reservation a restart interrupted. Fails (and releases)
    as :func:`book_slot` does.
    """
    if isinstance(credentials, Appointment):
        scope = credentials.scope or scope
        credentials = credentials.credentials
    try:
        # Told inside the try: a reservation that cannot be written down
        # (the store failed) is released rather than held unknowingly.
        await _tell(
            on_step,
            BookingProgress(
                step=BookingStep.RESERVED,
                slot=slot,
                credentials=credentials,
                scope=scope,
            ),
        )
        await client.update_appointment(
            credentials=credentials, contact=contact, scope=scope
        )
        await _tell(
            on_step,
            BookingProgress(
                step=BookingStep.PRECONFIRMING, slot=slot, credentials=credentials
            ),
        )
        done = await client.preconfirm_appointment(credentials=credentials)
    except Exception as err:
        await _release(client, slot, credentials, err, on_step)
        raise
    booked = _booked(client, slot, credentials, done, scope)
    await _tell(
        on_step,
        BookingProgress(step=BookingStep.BOOKED, slot=slot, credentials=credentials),
    )
    return booked


def _target(office_id: int, slot: Slot | datetime | int) -> Slot:
    if isinstance(slot, Slot):
        if slot.office_id != office_id:
            raise MTAValidationError("office_id", "is not the office of the slot")
        return slot
    if isinstance(slot, int):
        return Slot(office_id=office_id, start=datetime.fromtimestamp(slot, UTC))
    if slot.tzinfo is None:
        raise MTAValidationError("timestamp", "must be timezone-aware")
    return Slot(office_id=office_id, start=slot)


async def _tell(on_step: StepCallback | None, progress: BookingProgress) -> None:
    if on_step is None:
        return
    result = on_step(progress)
    if result is not None:
        await result


async def _release(
    client: MTAClient,
    slot: Slot,
    credentials: ProcessCredentials,
    err: Exception,
    on_step: StepCallback | None,
) -> None:
    """Cancel a reservation that will not be used, and say how that went."""
    progress = BookingProgress(
        step=BookingStep.LAPSED, slot=slot, credentials=credentials, error=err
    )
    if isinstance(err, MTANotFoundError | MTAAppointmentStateError):
        # The reservation expired or was changed: nothing left to cancel.
        await _tell(on_step, progress)
        return
    try:
        await client.cancel_appointment(credentials=credentials)
    except MTAError as cancel_error:
        # The city releases an unconfirmed reservation on its own.
        _LOGGER.warning(
            "Cancelling an unusable reservation failed: %s",
            type(cancel_error).__name__,
        )
        progress = BookingProgress(
            step=BookingStep.RELEASE_FAILED,
            slot=slot,
            credentials=credentials,
            error=err,
            cancel_error=cancel_error,
        )
    else:
        progress = BookingProgress(
            step=BookingStep.RELEASED, slot=slot, credentials=credentials, error=err
        )
    await _tell(on_step, progress)


def _booked(
    client: MTAClient,
    slot: Slot,
    credentials: ProcessCredentials,
    done: Appointment,
    scope: Scope | None,
) -> BookedAppointment:
    minutes = activation_minutes(done.scope, scope)
    # Wall time: the deadline is what the person reads on the clock.
    now = datetime.fromtimestamp(client.clock.time(), UTC)
    return BookedAppointment(
        slot=slot,
        credentials=credentials,
        appointment=done,
        scope=done.scope or scope,
        activation_minutes=minutes,
        preconfirmed_at=now,
        activation_deadline=now + timedelta(minutes=minutes),
    )


def activation_minutes(*scopes: Scope | None) -> int:
    """Minutes to click the activation link: the first scope that says, or 30."""
    for scope in scopes:
        if scope is not None and scope.activation_duration:
            return scope.activation_duration
    return int(DEFAULT_ACTIVATION.total_seconds() // 60)


# --- the booker: one booking per watch, across restarts ---------------------------


@dataclass(kw_only=True)
class _Attempt:
    """What the booker learnt from ``on_step`` during one attempt."""

    reserved: bool = False
    released: bool | None = None
    preconfirm_sent: bool = False


class Booker:
    """Books for watches, at most one booking each, across restarts.

    ``state`` is the watcher's :class:`~mta_client.store.WatcherState`;
    ``save`` persists it. Every step is saved before its request is sent.
    ``scope_of(office_id)`` gives an office's scope from the catalogue.
    """

    def __init__(
        self,
        client: MTAClient,
        *,
        state: WatcherState,
        save: Callable[[], Awaitable[None]],
        scope_of: Callable[[int], Scope | None] | None = None,
        max_attempts: int = 3,
        checks: StatusChecks | None = None,
    ) -> None:
        """Book through ``client``, keeping progress in ``state``."""
        self.client = client
        self.state = state
        self._save = save
        self.scope_of = scope_of or (lambda _office: None)
        self.max_attempts = max_attempts
        self.checks = checks or StatusChecks()
        self._locks: dict[str, asyncio.Lock] = {}
        self._started = client.clock.time()
        self._asked: set[str] = set()
        """Watches whose booking this process asked the city about."""
        self._ask_now: set[str] = set()
        """Watches whose confirm the city refused: ask what it holds."""
        self.reserve_latencies_ms: list[float] = []
        """Real milliseconds from seeing a fitting slot to sending its reserve."""

    def record(self, watch_id: str) -> BookingRecord:
        """The stored booking of a watch (idle when there is none)."""
        entry = self.state.watches.get(watch_id)
        return entry.booking if entry is not None else BookingRecord()

    def state_of(self, watch_id: str) -> BookingState:
        """Where the watch's booking stands."""
        return self.record(watch_id).state

    def credentials(self, watch_id: str) -> ProcessCredentials | None:
        """The process id and auth key of the watch's booking, if it has them."""
        record = self.record(watch_id)
        if record.process_id is None or not record.auth_key:
            return None
        return ProcessCredentials(
            process_id=record.process_id, auth_key=record.auth_key
        )

    def wants_booking(self, watch: Watch) -> bool:
        """Whether the watch should book a fitting slot automatically now."""
        return watch.auto_book and self.state_of(watch.id).books_automatically

    def _lock(self, watch_id: str) -> asyncio.Lock:
        lock = self._locks.get(watch_id)
        if lock is None:
            self._forget_removed()
            lock = self._locks[watch_id] = asyncio.Lock()
        return lock

    def _forget_removed(self) -> None:
        """Drop what is kept for watches whose state is gone (removed ones)."""
        known = self.state.watches
        for watch_id in [w for w, lock in self._locks.items() if w not in known]:
            if not self._locks[watch_id].locked():
                del self._locks[watch_id]
        self._asked &= known.keys()
        self._ask_now &= known.keys()

    # --- booking -------------------------------------------------------------

    async def book(
        self, watch: Watch, candidates: Sequence[Slot], *, seen: float | None = None
    ) -> BookingEvent | None:
        """Book automatically: the first candidate that can be had.

        Returns the event of the outcome, or None when nothing was tried (the
        watch books nothing now) or every candidate was taken. Failures are
        in the event, not raised. Concurrent calls for one watch run one
        after the other. ``seen`` is the ``time.perf_counter()`` at which
        the slots were seen, for :attr:`reserve_latencies_ms`.
        """
        async with self._lock(watch.id):
            if not self.wants_booking(watch):
                return None
            event, _ = await self._first_of(watch, candidates, seen)
            return event

    async def book_now(
        self, watch: Watch, candidates: Sequence[Slot]
    ) -> tuple[BookingEvent | None, MTAError | None]:
        """Book on request: the event (None: all taken) and the error, if any.

        Allowed from ``idle``, ``failed`` and ``cancelled``: asking is the
        person's decision. The first candidate that can be had is booked.

        Raises:
            BookingConflictError: the watch holds a booking, or is booking.
            MTAValidationError: the watch has no contact details.

        """
        if watch.contact is None:
            raise MTAValidationError("contact", "is required for booking")
        async with self._lock(watch.id):
            state = self.state_of(watch.id)
            if state.busy or state.holds_appointment:
                msg = f"the watch's booking is {state.value}: at most one per watch"
                raise BookingConflictError(msg, state=state)
            return await self._first_of(watch, candidates, None)

    async def _first_of(
        self, watch: Watch, candidates: Sequence[Slot], seen: float | None
    ) -> tuple[BookingEvent | None, MTAError | None]:
        error: MTAError | None = None
        for slot in list(candidates)[: self.max_attempts]:
            event, error = await self._attempt(watch, slot, seen)
            seen = None
            if event is not None:
                return event, error
        return None, error

    async def _attempt(
        self, watch: Watch, slot: Slot, seen: float | None
    ) -> tuple[BookingEvent | None, MTAError | None]:
        """One slot; (None, error) means it was taken: try the next."""
        assert watch.contact is not None  # noqa: S101 - Watch validates this
        attempt = _Attempt()

        async def on_step(progress: BookingProgress) -> None:
            await self._on_step(watch.id, progress, attempt, seen)

        try:
            booked = await book_slot(
                self.client,
                office_id=slot.office_id,
                services=watch.services,
                slot=slot,
                contact=watch.contact,
                on_step=on_step,
                scope=self.scope_of(slot.office_id),
            )
        except MTASlotUnavailableError as err:
            if not attempt.reserved:
                _LOGGER.info("Watch %s: slot was taken; trying the next", watch.id)
                await self._set(watch.id, BookingRecord())
                return None, err
            return await self._give_up(watch, slot, err, released=attempt.released), err
        except MTAError as err:
            # Never repeat a reserve blindly: the next look decides again.
            return await self._ended(watch, slot, err, attempt), err
        return await self._booked(watch.id, booked), None

    async def _on_step(
        self,
        watch_id: str,
        progress: BookingProgress,
        attempt: _Attempt,
        seen: float | None,
    ) -> None:
        slot = progress.slot
        match progress.step:
            case BookingStep.RESERVING:
                await self._set(
                    watch_id,
                    BookingRecord(
                        state=BookingState.RESERVING,
                        office_id=slot.office_id,
                        start=slot.start,
                        since=datetime.fromtimestamp(self.client.clock.time(), UTC),
                    ),
                )
                if seen is not None:
                    elapsed = (time.perf_counter() - seen) * 1000
                    self.reserve_latencies_ms.append(elapsed)
            case BookingStep.RESERVED:
                attempt.reserved = True
                await self._reserved(watch_id, progress)
            case BookingStep.PRECONFIRMING:
                await self._step(watch_id, BookingState.PRECONFIRMING)
                attempt.preconfirm_sent = True
            case BookingStep.RELEASED:
                attempt.released = True
            case BookingStep.RELEASE_FAILED:
                attempt.released = False
            case _:
                pass  # booked is saved with its deadline; lapsed holds nothing

    async def _reserved(self, watch_id: str, progress: BookingProgress) -> None:
        credentials = progress.credentials
        assert credentials is not None  # noqa: S101 - reserved carries them
        scope = progress.scope
        await self._set(
            watch_id,
            BookingRecord(
                state=BookingState.RESERVED,
                office_id=progress.slot.office_id,
                start=progress.slot.start,
                process_id=credentials.process_id,
                auth_key=credentials.auth_key,
                activation_minutes=scope.activation_duration if scope else None,
            ),
        )

    async def resume(self, watch: Watch) -> BookingEvent | None:
        """Finish or clean up a booking a restart interrupted.

        A reserve whose answer was lost (``reserving``) starts over, and the
        event tells it (idle, reason :data:`INTERRUPTED`): if the city took
        that reservation, its slot stays blocked until the reservation times
        out (``reservationDuration`` after the record's ``since``).
        """
        async with self._lock(watch.id):
            record = self.record(watch.id)
            if not record.state.busy:
                return None
            credentials = self.credentials(watch.id)
            if (
                record.state is BookingState.RESERVING
                or credentials is None
                or record.office_id is None
                or record.start is None
            ):
                # Nothing (usable) was reserved: start over.
                await self._set(watch.id, BookingRecord())
                if record.state is BookingState.RESERVING:
                    return self._interrupted(watch.id, record)
                return None
            slot = Slot(office_id=record.office_id, start=record.start)
            if record.state is BookingState.PRECONFIRMING:
                return await self._check_preconfirmed(watch, slot, credentials)
            return await self._complete(watch, slot, credentials)

    def _interrupted(self, watch_id: str, record: BookingRecord) -> BookingEvent:
        _LOGGER.warning(
            "Watch %s: a reserve at office %s was sent, but its answer was lost "
            "(the process stopped); if the city took it, the slot stays blocked "
            "until the reservation times out",
            watch_id,
            record.office_id,
        )
        return BookingEvent(
            state=BookingState.IDLE,
            watch_id=watch_id,
            office_id=record.office_id,
            start=record.start,
            reason=INTERRUPTED,
        )

    async def _complete(
        self, watch: Watch, slot: Slot, credentials: ProcessCredentials
    ) -> BookingEvent | None:
        if watch.contact is None:
            # The watch no longer books (its contact was removed): the
            # reservation is of no use to anyone.
            await self._abandon(watch.id, credentials)
            return None
        attempt = _Attempt(reserved=True)

        async def on_step(progress: BookingProgress) -> None:
            await self._on_step(watch.id, progress, attempt, None)

        try:
            booked = await complete_booking(
                self.client,
                credentials=credentials,
                slot=slot,
                contact=watch.contact,
                on_step=on_step,
                scope=self.scope_of(slot.office_id),
            )
        except MTAError as err:
            return await self._ended(watch, slot, err, attempt)
        return await self._booked(watch.id, booked)

    async def _check_preconfirmed(
        self, watch: Watch, slot: Slot, credentials: ProcessCredentials
    ) -> BookingEvent | None:
        try:
            current = await self.client.get_appointment(credentials=credentials)
        except _GONE_ERRORS:
            # Nothing is held: the reservation expired before it was finished.
            await self._set(watch.id, BookingRecord())
            return None
        # Any other failure propagates with the record unchanged: the next
        # load asks again (the pre-confirmation may have been taken).
        if current.status in (
            AppointmentStatus.PRECONFIRMED,
            AppointmentStatus.CONFIRMED,
        ):
            now = datetime.fromtimestamp(self.client.clock.time(), UTC)
            return await self._held(watch.id, slot, credentials, current, since=now)
        if current.status is AppointmentStatus.RESERVED:
            return await self._complete(watch, slot, credentials)
        await self._set(watch.id, BookingRecord())
        return None

    async def _held(
        self,
        watch_id: str,
        slot: Slot,
        credentials: ProcessCredentials,
        current: Appointment,
        *,
        since: datetime,
    ) -> BookingEvent:
        """Book what the city says it holds, pre-confirmed since ``since``."""
        minutes = activation_minutes(current.scope, self.scope_of(slot.office_id))
        booked = BookedAppointment(
            slot=slot,
            credentials=credentials,
            appointment=current,
            scope=current.scope,
            activation_minutes=minutes,
            preconfirmed_at=since,
            activation_deadline=since + timedelta(minutes=minutes),
        )
        return await self._booked(watch_id, booked)

    async def _abandon(self, watch_id: str, credentials: ProcessCredentials) -> None:
        try:
            await self.client.cancel_appointment(credentials=credentials)
        except MTAError as err:
            # The city releases an unconfirmed reservation on its own.
            _LOGGER.warning("Releasing a reservation failed: %s", type(err).__name__)
        await self._set(watch_id, BookingRecord())

    async def _booked(self, watch_id: str, booked: BookedAppointment) -> BookingEvent:
        await self._set(
            watch_id,
            BookingRecord(
                state=BookingState.BOOKED,
                office_id=booked.office_id,
                start=booked.start,
                process_id=booked.process_id,
                auth_key=booked.credentials.auth_key,
                activation_minutes=booked.activation_minutes,
                activation_deadline=booked.activation_deadline,
                since=datetime.fromtimestamp(self.client.clock.time(), UTC),
            ),
        )
        _LOGGER.info("Watch %s: booked a slot at office %s", watch_id, booked.office_id)
        return self.event(watch_id)

    async def _ended(
        self, watch: Watch, slot: Slot, err: MTAError, attempt: _Attempt
    ) -> BookingEvent:
        """End a failed attempt - unless the city may hold the appointment."""
        if (
            attempt.preconfirm_sent
            and attempt.released is False
            and isinstance(err, _UNANSWERED_ERRORS)
        ):
            return await self._unanswered(watch.id, err)
        return await self._give_up(watch, slot, err, released=attempt.released)

    async def _unanswered(self, watch_id: str, err: MTAError) -> BookingEvent:
        record = self.record(watch_id).model_copy(
            update={
                "reason": _reason(err),
                "released": False,
                "since": datetime.fromtimestamp(self.client.clock.time(), UTC),
            }
        )
        await self._set(watch_id, record)
        _LOGGER.warning(
            "Watch %s: the pre-confirmation at office %s was not answered (%s) and "
            "the reservation could not be released; asking the city whether it "
            "holds the appointment before booking again",
            watch_id,
            record.office_id,
            _reason(err),
        )
        return self.event(watch_id)

    async def _give_up(
        self, watch: Watch, slot: Slot, err: MTAError, *, released: bool | None
    ) -> BookingEvent:
        """End this attempt: for good when the same data would fail again."""
        state = (
            BookingState.FAILED if isinstance(err, _PERMANENT) else BookingState.IDLE
        )
        await self._set(
            watch.id,
            BookingRecord(
                state=state,
                office_id=slot.office_id,
                start=slot.start,
                reason=_reason(err),
                released=released,
            ),
        )
        _LOGGER.warning("Watch %s: booking attempt ended: %s", watch.id, _reason(err))
        return self.event(watch.id)

    # --- after booking -------------------------------------------------------

    async def confirm(
        self, watch_id: str, credentials: ProcessCredentials
    ) -> BookingEvent:
        """Activate the watch's booking (what the e-mail's link does).

        Raises:
            BookingConflictError: the watch holds no pre-confirmed booking.
            MTAError: the city refused.

        """
        async with self._lock(watch_id):
            state = self.state_of(watch_id)
            if state is BookingState.CONFIRMED:
                return self.event(watch_id)  # the link was used twice
            if state is not BookingState.BOOKED:
                msg = f"the watch's booking is {state.value}: nothing to confirm"
                raise BookingConflictError(msg, state=state)
            try:
                await self.client.confirm_appointment(credentials=credentials)
            except (MTANotFoundError, MTAAppointmentStateError):
                # Used already (in a browser), or lapsed: ask the city which.
                self._ask_now.add(watch_id)
                raise
            record = self.record(watch_id).model_copy(
                update={"state": BookingState.CONFIRMED, "activation_deadline": None}
            )
            await self._set(watch_id, record)
            return self.event(watch_id)

    async def cancel(self, watch_id: str) -> BookingEvent:
        """Cancel the watch's booking at the city.

        The watch does not book again by itself afterwards (``cancelled`` is
        not ``idle``); :meth:`book_now` may.

        Raises:
            BookingConflictError: the watch holds no booking.
            MTAError: the city refused (the booking stays as it was).

        """
        async with self._lock(watch_id):
            state = self.state_of(watch_id)
            credentials = self.credentials(watch_id)
            if not state.holds_appointment or credentials is None:
                msg = f"the watch's booking is {state.value}: nothing to cancel"
                raise BookingConflictError(msg, state=state)
            await self.client.cancel_appointment(credentials=credentials)
            record = self.record(watch_id)
            # The city rotates the auth key on cancelling: the old one is dead.
            await self._set(
                watch_id,
                BookingRecord(
                    state=BookingState.CANCELLED,
                    office_id=record.office_id,
                    start=record.start,
                    process_id=record.process_id,
                ),
            )
            return self.event(watch_id)

    # --- the city's word on a booking waiting for its activation -----------------

    def status_due(self, watch_id: str) -> float | None:
        """Unix time at which to ask the city about the watch's booking.

        None unless the booking is ``booked`` (waiting for the activation
        link) or a pre-confirmation went unanswered (``preconfirming``, not
        released): see :class:`StatusChecks`. A time in the past means now.
        """
        record = self.record(watch_id)
        if _unanswered(record):
            heard = record.checked_at or record.since
            last = heard.timestamp() if heard else self.client.clock.time()
            return last + self.checks.unanswered
        if record.state is not BookingState.BOOKED:
            return None
        now = self.client.clock.time()
        heard = record.checked_at or record.since
        if watch_id in self._ask_now or heard is None:
            return now
        checks = self.checks
        last = heard.timestamp()
        due = [last + checks.interval]
        deadline = record.activation_deadline
        if deadline is not None:
            after = deadline.timestamp() + checks.margin
            checked = record.checked_at
            if checked is None or checked.timestamp() < after:
                due.append(after)
            else:
                since = last - deadline.timestamp()
                due.append(last + min(checks.interval, max(checks.recheck, since)))
        if watch_id not in self._asked and last < self._started:
            due.append(max(self._started, last + checks.after_restart))
        return min(due)

    async def check_status(self, watch_id: str) -> BookingEvent | None:
        """Ask the city about the watch's ``booked`` appointment (one request).

        Returns the event when the booking moved on: ``confirmed`` (the link
        was used, perhaps in a browser) or ``lapsed`` (the city holds it no
        more; reason :data:`ACTIVATION_LAPSED`, or :data:`GONE` before the
        deadline). None when it still waits, or the watch holds no
        ``booked`` appointment; the time of the answer is saved.

        For an unanswered pre-confirmation (``preconfirming``, not
        released): ``booked`` when the city holds the appointment, ``idle``
        when it does not (a reservation left over is cancelled first), None
        when that is not
        settled yet.

        Raises:
            MTAError: the city could not be asked (try again later; the
                record stays as it is).

        """
        async with self._lock(watch_id):
            record = self.record(watch_id)
            credentials = self.credentials(watch_id)
            if credentials is not None and _unanswered(record):
                return await self._settle_unanswered(watch_id, record, credentials)
            if record.state is not BookingState.BOOKED or credentials is None:
                return None
            try:
                current = await self.client.get_appointment(credentials=credentials)
            except _GONE_ERRORS as err:
                return await self._lapsed(watch_id, record, _reason(err))
            finally:
                self._ask_now.discard(watch_id)
            self._asked.add(watch_id)
            now = datetime.fromtimestamp(self.client.clock.time(), UTC)
            if current.status in _ACTIVATED:
                _LOGGER.info("Watch %s: the booking was activated", watch_id)
                await self._set(
                    watch_id,
                    record.model_copy(
                        update={
                            "state": BookingState.CONFIRMED,
                            "activation_deadline": None,
                            "checked_at": now,
                        }
                    ),
                )
                return self.event(watch_id)
            if current.status in _DROPPED:
                return await self._lapsed(watch_id, record, current.status.value)
            await self._set(watch_id, record.model_copy(update={"checked_at": now}))
            return None

    async def _settle_unanswered(
        self, watch_id: str, record: BookingRecord, credentials: ProcessCredentials
    ) -> BookingEvent | None:
        assert record.office_id is not None  # noqa: S101 - a preconfirming record
        assert record.start is not None  # noqa: S101 - has its slot
        slot = Slot(office_id=record.office_id, start=record.start)
        now = datetime.fromtimestamp(self.client.clock.time(), UTC)
        try:
            current = await self.client.get_appointment(credentials=credentials)
        except _GONE_ERRORS:
            return await self._not_held(watch_id, record)
        if current.status is AppointmentStatus.PRECONFIRMED or (
            current.status in _ACTIVATED
        ):
            _LOGGER.info("Watch %s: the city holds the booking after all", watch_id)
            # The city's deadline runs from its pre-confirmation, which was
            # no earlier than the attempt.
            since = record.since or now
            return await self._held(watch_id, slot, credentials, current, since=since)
        if current.status is AppointmentStatus.RESERVED:
            # Not pre-confirmed (a slow one still on its way fails once
            # the reservation is cancelled): release it.
            await self.client.cancel_appointment(credentials=credentials)
            return await self._not_held(watch_id, record, released=True)
        if current.status in _DROPPED:
            return await self._not_held(watch_id, record)
        await self._set(watch_id, record.model_copy(update={"checked_at": now}))
        return None

    async def _not_held(
        self, watch_id: str, record: BookingRecord, *, released: bool | None = None
    ) -> BookingEvent:
        _LOGGER.info(
            "Watch %s: the city holds no booking; booking may start again", watch_id
        )
        await self._set(
            watch_id,
            BookingRecord(
                office_id=record.office_id,
                start=record.start,
                reason=UNANSWERED,
                released=released,
            ),
        )
        return self.event(watch_id)

    async def _lapsed(
        self, watch_id: str, record: BookingRecord, answer: str
    ) -> BookingEvent:
        self._asked.add(watch_id)
        now = datetime.fromtimestamp(self.client.clock.time(), UTC)
        deadline = record.activation_deadline
        reason = GONE if deadline is None or now < deadline else ACTIVATION_LAPSED
        _LOGGER.warning(
            "Watch %s: the city no longer holds the booking at office %s (%s: %s)",
            watch_id,
            record.office_id,
            reason,
            answer,
        )
        # The credentials are dead: kept is which appointment it was.
        await self._set(
            watch_id,
            BookingRecord(
                state=BookingState.LAPSED,
                office_id=record.office_id,
                start=record.start,
                process_id=record.process_id,
                activation_minutes=record.activation_minutes,
                reason=reason,
                since=now,
            ),
        )
        return self.event(watch_id)

    def event(self, watch_id: str) -> BookingEvent:
        """The booking's current state as an event."""
        record = self.record(watch_id)
        return BookingEvent(
            state=record.state,
            watch_id=watch_id,
            office_id=record.office_id,
            start=record.start,
            process_id=record.process_id,
            auth_key=record.auth_key,
            activation_deadline=record.activation_deadline,
            reason=record.reason,
            released=record.released,
        )

    # --- state ---------------------------------------------------------------

    async def _set(self, watch_id: str, record: BookingRecord) -> None:
        self.state.watches.setdefault(watch_id, WatchState()).booking = record
        await self._save()

    async def _step(self, watch_id: str, state: BookingState) -> None:
        entry = self.state.watches.setdefault(watch_id, WatchState())
        entry.booking = entry.booking.model_copy(update={"state": state})
        await self._save()


def _unanswered(record: BookingRecord) -> bool:
    """Whether the record is a pre-confirmation that went unanswered."""
    return record.state is BookingState.PRECONFIRMING and record.released is False


def _reason(err: MTAError) -> str:
    code = getattr(err, "error_code", None)
    return f"{type(err).__name__}{f' ({code})' if code else ''}"
