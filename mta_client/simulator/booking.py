"""Appointments ("processes"): reserve, update, preconfirm, confirm, cancel.

State machine of the city (zmscitizenapi README): ``reserve → reserved →
preconfirm → preconfirmed → confirm → confirmed``; cancel from any of them.
Reservations expire after ``scope.reservationDuration`` minutes and
activations after ``scope.activationDuration`` minutes, and a cancelled
appointment frees its slot ``deallocationDuration`` (15) minutes after the
cancel; the city's cron runs every minute, so each takes effect at the next
full minute, plus the run's delay under the ``delayed`` and ``random``
visibility models (:meth:`BookingHost.cron_time`).

An activation that runs out is deleted: ``GET appointment/`` and
``confirm-appointment/`` answer 404 ``appointmentNotFound``. The city's
cleanup may first "dereference" the process (its auth key becomes
``deref!0``; ``zmsbackend`` ``Process/Repository/Process.php``), and then
both answer 406 ``authKeyMismatch``: :attr:`Bookings.dereference` is the share
of expired activations that take this path (0 by default), each deleted
``deallocationDuration`` later. A day after its day, an appointment is
forgotten (:meth:`Bookings.archive`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Protocol

from .errors import CityError, InternalError
from .outbox import APPOINTMENT_URL, Mail, appointment_hash

if TYPE_CHECKING:
    from collections.abc import Callable
    import random

    from mta_client.clock import Clock

    from .captcha import CaptchaService
    from .catalogue import Catalogue, Office
    from .outbox import Outbox
    from .slots import SlotStore
    from .stats import SimulatorStats

__all__ = ["PLACEHOLDER_EMAIL", "BookingHost", "Bookings", "Process"]

PLACEHOLDER_EMAIL = "test@muenchen.de"  # what the city reserves with
_EMAIL = re.compile(
    r"^(?!.*\.\.)(?!\.)(?!.*\.$)[^\s@+]+(?<!\.)@(?!\.)[^\s@+]+\.[^\s@]{2,}$"
)
_TELEPHONE = re.compile(r"^\+?[0-9]\d{6,14}$")
_AUTH_KEY = re.compile(r"^(?:[0-9a-fA-F]{4}|[0-9a-fA-F]{64})$")
_TAG = re.compile(r"<[^>]*>")
_DIGITS = re.compile(r"^\d+$")
MAX_CUSTOM_TEXTFIELD_CHARS = 250
MAX_INT32 = 2**31 - 1
DEREFERENCED_KEY = "deref!0"


@dataclass(slots=True)
class Process:
    """One appointment of the simulated city."""

    process_id: int
    auth_key: str
    office_id: int
    services: list[tuple[int, int]]
    timestamp: int
    units: list[int]
    status: str
    reserved_at: float
    preconfirmed_at: float | None = None
    family_name: str | None = None
    email: str | None = PLACEHOLDER_EMAIL
    telephone: str | None = None
    custom_textfield: str | None = None
    custom_textfield2: str | None = None
    client_ip: str = ""
    history: list[tuple[float, str]] = field(default_factory=list)


def _int_field(value: Any) -> int | None:
    """Accept an int or a numeric string (PHP is lenient), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class BookingHost(Protocol):
    """What the booking routes need of the simulator.

    :class:`~mta_client.simulator.Simulator` is one; naming only these parts
    keeps this module from importing the simulator that owns it.
    """

    rng: random.Random
    clock: Clock
    tz: dt.tzinfo
    catalogue: Catalogue
    slots: SlotStore
    stats: SimulatorStats
    outbox: Outbox
    captcha: CaptchaService
    deallocation_seconds: float

    def schedule(self, at: float, callback: Callable[[float], None]) -> None:
        """Run ``callback(at)`` once the clock reaches ``at``."""

    def cron_time(self, at: float, office_id: int, *, key: object = None) -> float:
        """When the city's cron has made a change due at ``at`` visible."""

    def hold_units(self, office_id: int, units: list[int]) -> bool:
        """Hold a run of free units for a process; return success."""

    def free_units(
        self, office_id: int, units: list[int], *, source: str, at: float | None = None
    ) -> None:
        """Give a process's units back to the free slots (at ``at``, default now)."""


class Bookings:
    """The booking routes' logic, on the simulator's state."""

    def __init__(self, sim: BookingHost) -> None:
        """Attach to a simulator."""
        self.sim = sim
        self.processes: dict[int, Process] = {}
        self._next_id = 180_000 + sim.rng.randrange(10_000)
        self.dereference = 0.0
        """The share of expired activations dereferenced before deletion."""

    # --- helpers -----------------------------------------------------------

    def _new_key(self) -> str:
        return f"{self.sim.rng.getrandbits(256):064x}"

    def _credentials(self, data: Any) -> tuple[int, str]:
        process_id = _int_field(data.get("processId"))
        auth_key = data.get("authKey")
        errors = []
        if process_id is None or not 1 <= process_id <= MAX_INT32:
            errors.append("invalidProcessId")
        if not isinstance(auth_key, str) or not _AUTH_KEY.match(auth_key):
            errors.append("invalidAuthKey")
        if errors or process_id is None or not isinstance(auth_key, str):
            raise CityError(*errors)
        return process_id, auth_key

    def lookup(self, data: Any, *, allow_deleted: bool = False) -> Process:
        """Validate ``processId``/``authKey`` and return the process.

        Raises:
            CityError: invalid ids, ``appointmentNotFound`` or ``authKeyMismatch``.

        """
        process_id, auth_key = self._credentials(data)
        process = self.processes.get(process_id)
        if process is None:
            raise CityError("appointmentNotFound")
        if process.auth_key.lower() != auth_key.lower():
            raise CityError("authKeyMismatch")
        if process.status == "deleted" and not allow_deleted:
            raise CityError("appointmentNotFound")
        return process

    def office(self, process: Process) -> Office:
        """Return the office of a process."""
        return self.sim.catalogue.offices[process.office_id]

    def to_json(
        self, process: Process, *, captcha_ip: str | None = None
    ) -> dict[str, Any]:
        """Return the city's ThinnedProcess for a process.

        ``captcha_ip`` adds a fresh ``captchaToken`` for that client IP.
        """
        catalogue = self.sim.catalogue
        office = self.office(process)
        (main_id, main_count), *others = process.services
        return {
            "processId": process.process_id,
            "timestamp": str(process.timestamp),
            "authKey": process.auth_key,
            "familyName": process.family_name,
            "customTextfield": process.custom_textfield,
            "customTextfield2": process.custom_textfield2,
            "email": process.email,
            "telephone": process.telephone,
            "officeName": office.name,
            "officeId": office.id,
            "scope": office.scope.data,
            "subRequestCounts": [
                {"id": sid, "name": catalogue.services[sid].name, "count": count}
                for sid, count in others
            ],
            "serviceId": main_id,
            "serviceName": catalogue.services[main_id].name,
            "serviceCount": main_count,
            "status": process.status,
            "captchaToken": (
                self.sim.captcha.issue_token(captcha_ip) if captcha_ip else None
            ),
            "slotCount": len(process.units),
            "displayNumber": None,
            "icsContent": self._ics(process, office),
        }

    def _ics(self, process: Process, office: Office) -> str:
        def stamp(ts: float) -> str:
            return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%dT%H%M%SZ")

        end = process.timestamp + len(process.units) * office.slot_minutes * 60
        address = office.data.get("address") or {}
        location = (
            f"{office.name}, {address.get('street', '')} "
            f"{address.get('house_number', '')}, {address.get('postal_code', '')} "
            f"{address.get('city', '')}"
        )
        service = self.sim.catalogue.services[process.services[0][0]].name
        status = "CANCELLED" if process.status == "deleted" else "CONFIRMED"
        lines = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Landeshauptstadt Muenchen//ZMS//DE",
            "METHOD:PUBLISH",
            "BEGIN:VEVENT",
            f"UID:{process.process_id}@zms.muenchen.de",
            f"DTSTAMP:{stamp(process.reserved_at)}",
            f"DTSTART:{stamp(process.timestamp)}",
            f"DTEND:{stamp(end)}",
            f"SUMMARY:Termin: {service}",
            f"LOCATION:{location}",
            f"STATUS:{status}",
            "END:VEVENT",
            "END:VCALENDAR",
        ]
        return "\r\n".join(lines) + "\r\n"

    def _send(self, process: Process, kind: str) -> None:
        if not process.email or process.email == PLACEHOLDER_EMAIL:
            return
        office = self.office(process)
        code = appointment_hash(process.process_id, process.auth_key)
        when = dt.datetime.fromtimestamp(process.timestamp, self.sim.tz)
        when_text = when.strftime("%d.%m.%Y um %H:%M Uhr")
        link: str | None
        if kind == "preconfirmation":
            link = f"{APPOINTMENT_URL}#/appointment/confirm/{code}"
            minutes = office.scope.activation_minutes
            subject = "Bitte bestätigen Sie Ihren Termin"
            body = (
                f"Bitte aktivieren Sie den folgenden Termin innerhalb von {minutes} "
                f"Minuten: {when_text}, {office.name}.\n{link}\n"
            )
        elif kind == "confirmation":
            link = f"{APPOINTMENT_URL}#/appointment/{code}"
            subject = "Terminbestätigung"
            body = f"Ihr Termin am {when_text}, {office.name}, ist bestätigt.\n{link}\n"
        else:
            link = None
            subject = "Terminabsage"
            body = f"Ihr Termin am {when_text}, {office.name}, wurde abgesagt.\n"
        self.sim.outbox.append(
            Mail(
                to=process.email,
                kind=kind,
                process_id=process.process_id,
                subject=subject,
                body=body,
                link=link,
                sent_at=self.sim.clock.time(),
            )
        )

    def _check_mail_limit(self, process: Process, email: str | None) -> None:
        scope = self.office(process).scope
        limit = scope.appointments_per_mail
        if limit is None or not email or email == PLACEHOLDER_EMAIL:
            return
        if email.lower() in scope.whitelisted_mails:
            return
        same = [
            p
            for p in self.processes.values()
            if p is not process
            and p.status in {"preconfirmed", "confirmed"}
            and p.email is not None
            and p.email.lower() == email.lower()
            and self.office(p).scope.id == scope.id
        ]
        if len(same) >= limit:
            raise CityError("tooManyAppointmentsWithSameMail")

    def _drop(self, process: Process, source: str, at: float | None = None) -> None:
        """Remove a process and free its units (those still in the future)."""
        self.processes.pop(process.process_id, None)
        self.sim.free_units(process.office_id, process.units, source=source, at=at)

    # --- routes --------------------------------------------------------------

    def reserve(  # noqa: C901, PLR0912, PLR0915 - the city's validation order, step by step
        self, data: dict[str, Any], client_ip: str
    ) -> Process:
        """Reserve a slot (``POST /reserve-appointment/``)."""
        sim = self.sim
        service_ids = data.get("serviceId")
        counts = data.get("serviceCount", [1])
        if counts is None:
            counts = [1]
        # A scalar hits PHP's typed ?array parameter: uncaught TypeError → 500.
        if service_ids is not None and not isinstance(service_ids, list):
            raise InternalError
        if not isinstance(counts, list):
            raise InternalError
        errors: list[str] = []
        office_id = _int_field(data.get("officeId"))
        if office_id is None or not 1 <= office_id <= MAX_INT32:
            errors.append("invalidOfficeId")
        ids = [_int_field(s) for s in service_ids or []]
        if not ids or any(i is None or not 1 <= i <= MAX_INT32 for i in ids):
            errors.append("invalidServiceId")
        numbers = [_int_field(c) for c in counts]
        if any(n is None or not 1 <= n <= MAX_INT32 for n in numbers):
            errors.append("invalidServiceCount")
        timestamp = _int_field(data.get("timestamp"))
        if timestamp is None or timestamp <= sim.clock.time():
            errors.append("invalidTimestamp")
        if errors or office_id is None or timestamp is None:
            raise CityError(*errors)
        if len(ids) != len(numbers):
            raise InternalError  # not validated up front by the city
        services = [
            (int(i or 0), int(n or 0)) for i, n in zip(ids, numbers, strict=True)
        ]
        office = sim.catalogue.offices.get(office_id)
        if office is None or any(
            sim.catalogue.relation(office_id, sid) is None for sid, _ in services
        ):
            raise CityError("invalidLocationAndServiceCombination")
        for sid, count in services:
            relation = sim.catalogue.relation(office_id, sid)
            limit = (relation.max_quantity if relation else None) or (
                sim.catalogue.services[sid].max_quantity
            )
            if count > limit:
                raise CityError("tooManyServicesPerAppointment")
        needed = sim.catalogue.units_needed(office_id, services)
        per_appointment = office.scope.slots_per_appointment
        if per_appointment is not None and needed > per_appointment:
            raise CityError("tooManySlotsPerAppointment")
        if office.scope.captcha_required:
            sim.captcha.check_token(data.get("captchaToken") or None, client_ip)
        units = sim.slots.units(office_id, timestamp, needed)
        if sim.slots.align(office_id, timestamp) != timestamp or not sim.hold_units(
            office_id, units
        ):
            raise CityError("appointmentNotAvailable")
        now = sim.clock.time()
        process = Process(
            process_id=self._next_id,
            auth_key=self._new_key(),
            office_id=office_id,
            services=services,
            timestamp=timestamp,
            units=units,
            status="reserved",
            reserved_at=now,
            client_ip=client_ip,
        )
        self._next_id += sim.rng.randrange(1, 40)
        self.processes[process.process_id] = process
        sim.stats.reservations += 1
        expires = now + office.scope.reservation_minutes * 60
        deadline = sim.cron_time(expires, office_id, key=process.process_id)
        sim.schedule(deadline, lambda at: self._expire(process, "reserved", at))
        return process

    def expire(self, process_id: int) -> bool:
        """Let a reservation or activation run out now; return whether one did.

        What the city's cron does at the deadline, brought forward (for the
        control surface and tests).
        """
        process = self.processes.get(process_id)
        if process is None or process.status not in {"reserved", "preconfirmed"}:
            return False
        self._expire(process, process.status, self.sim.clock.time())
        return True

    def _expire(self, process: Process, status: str, at: float) -> None:
        current = self.processes.get(process.process_id)
        if current is not process or process.status != status:
            return
        if status == "reserved":
            self.sim.stats.expired_reservations += 1
        else:
            self.sim.stats.expired_activations += 1
            if self.dereference > 0 and self.sim.rng.random() < self.dereference:
                self._dereference(process, at)
                return
        self._drop(process, "expiry", at)

    def _dereference(self, process: Process, at: float) -> None:
        """Free the slot, keep the row with a dead key; delete it later."""
        process.status = "deleted"
        process.auth_key = DEREFERENCED_KEY
        self.sim.free_units(process.office_id, process.units, source="expiry", at=at)
        due = self.sim.cron_time(
            at + self.sim.deallocation_seconds,
            process.office_id,
            key=(process.process_id, "dereferenced"),
        )

        def delete(_at: float) -> None:
            if self.processes.get(process.process_id) is process:
                del self.processes[process.process_id]

        self.sim.schedule(due, delete)

    def archive(self, before: float) -> int:
        """Forget the appointments that started before ``before``; return how many.

        The city keeps a process past its day (the states ``archived`` and
        ``anonymized``); when is not in its documents. The simulator forgets
        it (``GET appointment/`` then answers ``appointmentNotFound``), so
        that a month of bookings does not pile up.
        """
        old = [p for p in self.processes.values() if p.timestamp < before]
        for process in old:
            del self.processes[process.process_id]
        return len(old)

    def update(self, data: dict[str, Any]) -> Process:
        """Add the citizen's data (``POST /update-appointment/``)."""
        process = self.lookup(data)
        scope = self.office(process).scope.data
        errors: list[str] = []
        family_name = _text(data.get("familyName"))
        if not family_name:
            errors.append("invalidFamilyName")
        email = _text(data.get("email"))
        if scope["emailRequired"] and not _EMAIL.match(email):
            errors.append("invalidEmail")
        telephone = _text(data.get("telephone"))
        if scope["telephoneActivated"] and (
            (scope["telephoneRequired"] and not telephone)
            or (telephone and not _TELEPHONE.match(telephone))
        ):
            errors.append("invalidTelephone")
        texts: dict[str, str] = {}
        for key, code in (
            ("customTextfield", "invalidCustomTextfield"),
            ("customTextfield2", "invalidCustomTextfield2"),
        ):
            text = _TAG.sub("", _text(data.get(key))).strip()
            texts[key] = text
            if not scope[f"{key}Activated"]:
                continue
            if (scope[f"{key}Required"] and not text) or len(
                text
            ) > MAX_CUSTOM_TEXTFIELD_CHARS:
                errors.append(code)
        if errors:
            raise CityError(*errors)
        if process.status != "reserved":
            raise CityError("processNotReservedAnymore")
        self._check_mail_limit(process, email or None)
        process.family_name = family_name
        if email:
            process.email = email
        if scope["telephoneActivated"]:
            process.telephone = telephone or None
        if scope["customTextfieldActivated"]:
            process.custom_textfield = texts["customTextfield"] or None
        if scope["customTextfield2Activated"]:
            process.custom_textfield2 = texts["customTextfield2"] or None
        return process

    def preconfirm(self, data: dict[str, Any]) -> Process:
        """Finish the booking and send the activation mail (preconfirm route)."""
        process = self.lookup(data)
        if process.status != "reserved":
            raise CityError("processNotReservedAnymore")
        scope = self.office(process).scope
        if scope.data["emailRequired"] and process.email in (None, PLACEHOLDER_EMAIL):
            raise CityError("emailIsRequired")
        if scope.data["telephoneRequired"] and not process.telephone:
            raise CityError("telephoneIsRequired")
        self._check_mail_limit(process, process.email)
        now = self.sim.clock.time()
        process.status = "preconfirmed"
        process.preconfirmed_at = now
        if process.email and process.email != PLACEHOLDER_EMAIL:
            self.sim.stats.preconfirmed_by_email[process.email.lower()] += 1
        self._send(process, "preconfirmation")
        expires = now + scope.activation_minutes * 60
        deadline = self.sim.cron_time(
            expires, process.office_id, key=process.process_id
        )
        self.sim.schedule(
            deadline, lambda at: self._expire(process, "preconfirmed", at)
        )
        return process

    def confirm(self, data: dict[str, Any]) -> Process:
        """Activate the appointment (``POST /confirm-appointment/``)."""
        process = self.lookup(data)
        if process.status not in {"reserved", "preconfirmed"}:
            raise CityError("processNotPreconfirmedAnymore")
        process.status = "confirmed"
        if process.email and process.email != PLACEHOLDER_EMAIL:
            self.sim.stats.confirmed_by_email[process.email.lower()] += 1
        self._send(process, "confirmation")
        return process

    def cancel(self, data: dict[str, Any]) -> Process:
        """Cancel (``POST /cancel-appointment/``); the slot is freed later."""
        process = self.lookup(data)
        if process.timestamp <= self.sim.clock.time():
            raise CityError("appointmentCanNotBeCanceled")
        if process.status != "reserved":
            self._send(process, "cancellation")
        process.status = "deleted"
        # Process::writeCanceledEntity rotates the key: the old link stops working.
        process.auth_key = self._new_key()
        self.sim.stats.cancellations += 1
        # deallocateAppointmentData frees it at the first cron run at least
        # deallocationDuration after the cancel.
        due = self.sim.cron_time(
            self.sim.clock.time() + self.sim.deallocation_seconds,
            process.office_id,
            key=process.process_id,
        )
        self.sim.schedule(due, lambda at: self._drop(process, "deallocation", at))
        return process
