"""Honest automatic booking: reserve, fill in, pre-confirm, once per watch.

The person's own click on the city's activation link stays the last step.
Every step is written to the state store *before* it is sent, so a restart
mid-booking resumes instead of booking twice:

* ``reserving`` without credentials: the reserve may or may not have
  happened. If it did, that reservation is no booking (nothing was filled
  in) and the city releases it after ``reservationDuration``; booking may
  start again.
* ``reserved`` with credentials: resume with update and pre-confirm.
* ``preconfirming``: ask the city for the appointment's status first.
* ``booked``: never book again for this watch.

A slot someone else took between seeing and reserving moves on to the next
fitting slot. A reservation that cannot be completed is cancelled, so it does
not block the slot for others.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
import logging
import time
from typing import TYPE_CHECKING, Any

from .exceptions import (
    MTAApiError,
    MTAAppointmentStateError,
    MTAError,
    MTAInvalidInputError,
    MTANotFoundError,
    MTAQuotaError,
    MTASlotUnavailableError,
    MTAValidationError,
)
from .models import Appointment, AppointmentStatus, ProcessCredentials, Slot
from .watch import BookingEvent, BookingState, Watch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .client import MTAClient

__all__ = ["Booker"]

_LOGGER = logging.getLogger(__name__)

# Failures that would repeat with the same data: stop booking for the watch.
_PERMANENT = (MTAValidationError, MTAInvalidInputError, MTAQuotaError)
# The city's default activation time, when the scope does not say.
DEFAULT_ACTIVATION = timedelta(minutes=30)


class Booker:
    """Books for watches, at most once each.

    ``state`` is the watcher's per-watch state dict (it holds ``booking``);
    ``save`` persists the whole state.
    """

    def __init__(
        self,
        client: MTAClient,
        *,
        state: dict[str, dict[str, Any]],
        save: Any,
        max_attempts: int = 3,
    ) -> None:
        """Book through ``client``, keeping progress in ``state``."""
        self.client = client
        self._state = state
        self._save = save
        self.max_attempts = max_attempts
        self._locks: dict[str, asyncio.Lock] = {}
        self.reserve_latencies_ms: list[float] = []
        """Real milliseconds from seeing a fitting slot to sending its reserve."""

    def state_of(self, watch_id: str) -> BookingState:
        """Where the watch's booking stands."""
        booking = self._state.get(watch_id, {}).get("booking") or {}
        return BookingState(booking.get("state", BookingState.IDLE))

    def wants_booking(self, watch: Watch) -> bool:
        """Whether the watch should book a fitting slot now."""
        return watch.auto_book and self.state_of(watch.id) is BookingState.IDLE

    async def book(
        self, watch: Watch, candidates: Sequence[Slot], *, seen: float | None = None
    ) -> BookingEvent | None:
        """Book the first candidate that can be had; None if none could.

        Concurrent calls for one watch run one after the other, and a watch
        that is booked (or busy booking) books nothing more. ``seen`` is the
        ``time.perf_counter()`` at which the slots were seen; the delay until
        the reserve is sent is recorded in :attr:`reserve_latencies_ms`.
        """
        lock = self._locks.setdefault(watch.id, asyncio.Lock())
        async with lock:
            if not self.wants_booking(watch):
                return None
            for slot in list(candidates)[: self.max_attempts]:
                event = await self._attempt(watch, slot, seen)
                seen = None
                if event is not None:
                    return event
            return None

    async def resume(self, watch: Watch) -> BookingEvent | None:
        """Finish or clean up a booking a restart interrupted."""
        lock = self._locks.setdefault(watch.id, asyncio.Lock())
        async with lock:
            booking = self._state.get(watch.id, {}).get("booking") or {}
            state = BookingState(booking.get("state", BookingState.IDLE))
            if state is BookingState.RESERVING:
                await self._set(watch.id, BookingState.IDLE)
                return None
            if state not in (BookingState.RESERVED, BookingState.PRECONFIRMING):
                return None
            credentials = ProcessCredentials(
                process_id=booking["process_id"], auth_key=booking["auth_key"]
            )
            slot = Slot(
                office_id=booking["office_id"], start=_from_unix(booking["start"])
            )
            if state is BookingState.PRECONFIRMING:
                return await self._check_preconfirmed(watch, slot, credentials)
            return await self._complete(
                watch,
                slot,
                credentials,
                scope_minutes=booking.get("activation_minutes"),
            )

    # --- steps ---------------------------------------------------------------

    async def _attempt(
        self, watch: Watch, slot: Slot, seen: float | None
    ) -> BookingEvent | None:
        await self._set(
            watch.id,
            BookingState.RESERVING,
            office_id=slot.office_id,
            start=slot.timestamp,
        )
        if seen is not None:
            self.reserve_latencies_ms.append((time.perf_counter() - seen) * 1000)
        try:
            reserved = await self.client.reserve_appointment(
                office_id=slot.office_id,
                services=watch.services,
                timestamp=slot,
            )
        except MTASlotUnavailableError:
            _LOGGER.info(
                "Watch %s: slot %s was taken; trying the next", watch.id, slot.start
            )
            await self._set(watch.id, BookingState.IDLE)
            return None
        except MTAError as err:
            # Never repeat a reserve blindly: the next poll looks again.
            return await self._give_up(watch, slot, err)
        minutes = reserved.scope.activation_duration if reserved.scope else None
        await self._set(
            watch.id,
            BookingState.RESERVED,
            office_id=slot.office_id,
            start=slot.timestamp,
            process_id=reserved.process_id,
            auth_key=reserved.auth_key,
            activation_minutes=minutes,
        )
        return await self._complete(
            watch, slot, reserved.credentials, scope_minutes=minutes, reserved=reserved
        )

    async def _complete(
        self,
        watch: Watch,
        slot: Slot,
        credentials: ProcessCredentials,
        *,
        scope_minutes: int | None,
        reserved: Appointment | None = None,
    ) -> BookingEvent:
        assert watch.contact is not None  # noqa: S101 - Watch validates this
        try:
            await self.client.update_appointment(
                credentials=reserved or credentials, contact=watch.contact
            )
            await self._set_step(watch.id, BookingState.PRECONFIRMING)
            done = await self.client.preconfirm_appointment(credentials=credentials)
        except (MTANotFoundError, MTAAppointmentStateError) as err:
            # The reservation expired or was changed: nothing left to cancel.
            return await self._give_up(watch, slot, err)
        except MTAError as err:
            await self._cancel(credentials)
            return await self._give_up(watch, slot, err)
        minutes = scope_minutes or (
            done.scope.activation_duration if done.scope else None
        )
        return await self._booked(watch, slot, credentials, minutes)

    async def _check_preconfirmed(
        self, watch: Watch, slot: Slot, credentials: ProcessCredentials
    ) -> BookingEvent | None:
        try:
            current = await self.client.get_appointment(credentials=credentials)
        except MTAApiError:
            await self._set(watch.id, BookingState.IDLE)
            return None
        if current.status in (
            AppointmentStatus.PRECONFIRMED,
            AppointmentStatus.CONFIRMED,
        ):
            minutes = current.scope.activation_duration if current.scope else None
            return await self._booked(watch, slot, credentials, minutes)
        if current.status is AppointmentStatus.RESERVED:
            return await self._complete(watch, slot, credentials, scope_minutes=None)
        await self._set(watch.id, BookingState.IDLE)
        return None

    async def _booked(
        self,
        watch: Watch,
        slot: Slot,
        credentials: ProcessCredentials,
        minutes: int | None,
    ) -> BookingEvent:
        deadline = datetime.fromtimestamp(self.client.clock.time(), UTC) + (
            timedelta(minutes=minutes) if minutes else DEFAULT_ACTIVATION
        )
        await self._set(
            watch.id,
            BookingState.BOOKED,
            office_id=slot.office_id,
            start=slot.timestamp,
            process_id=credentials.process_id,
            auth_key=credentials.auth_key,
            activation_deadline=int(deadline.timestamp()),
        )
        _LOGGER.info("Watch %s: booked a slot at office %s", watch.id, slot.office_id)
        return BookingEvent(
            state=BookingState.BOOKED,
            watch_id=watch.id,
            office_id=slot.office_id,
            start=slot.start,
            process_id=credentials.process_id,
            auth_key=credentials.auth_key,
            activation_deadline=deadline,
        )

    async def _give_up(self, watch: Watch, slot: Slot, err: MTAError) -> BookingEvent:
        """End this attempt: for good when the same data would fail again."""
        state = (
            BookingState.FAILED if isinstance(err, _PERMANENT) else BookingState.IDLE
        )
        await self._set(watch.id, state, reason=_reason(err))
        _LOGGER.warning("Watch %s: booking attempt ended: %s", watch.id, _reason(err))
        return BookingEvent(
            state=state,
            watch_id=watch.id,
            office_id=slot.office_id,
            start=slot.start,
            reason=_reason(err),
        )

    async def _cancel(self, credentials: ProcessCredentials) -> None:
        try:
            await self.client.cancel_appointment(credentials=credentials)
        except MTAError as err:
            # The city releases an unconfirmed reservation on its own.
            _LOGGER.warning(
                "Cancelling an unusable reservation failed: %s", type(err).__name__
            )

    async def _set(self, watch_id: str, state: BookingState, **values: Any) -> None:
        entry = self._state.setdefault(watch_id, {})
        entry["booking"] = {"state": state.value, **values}
        await self._save()

    async def _set_step(self, watch_id: str, state: BookingState) -> None:
        booking = self._state.setdefault(watch_id, {}).setdefault("booking", {})
        booking["state"] = state.value
        await self._save()


def _reason(err: MTAError) -> str:
    code = getattr(err, "error_code", None)
    return f"{type(err).__name__}{f' ({code})' if code else ''}"


def _from_unix(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)
