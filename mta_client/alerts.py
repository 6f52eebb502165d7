"""The texts of alerts about watch events, in English and German.

:func:`format_event` turns a :class:`~mta_client.watch.SlotEvent` (a fitting
slot appeared or is gone) or a :class:`~mta_client.watch.BookingEvent` into
an :class:`Alert`: a title, a plain-text message (office, Munich local time,
services, the activation deadline of a booking, a link to the city's booking
page) and optional inline buttons. The texts never carry the person's data
nor a booking's auth key: only what the city publishes (offices, services,
times) and the booking's process number.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from .booking import UNANSWERED
from .client import BERLIN
from .telegram import InlineButton
from .watch import BookingEvent, BookingState, SlotEvent, SlotEventKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from .models import Catalogue
    from .watch import Watch, WatchEvent

__all__ = [
    "BOOKING_PAGE",
    "LANGUAGES",
    "Alert",
    "AlertKind",
    "alert_kind",
    "booking_page_url",
    "format_event",
    "format_local_time",
    "format_slot_events",
]

BOOKING_PAGE: Final = "https://stadt.muenchen.de/buergerservice/terminvereinbarung.html"
LANGUAGES: Final = ("en", "de")


class AlertKind(StrEnum):
    """What an alert is about; a host switches each kind on or off."""

    NEW = "new"
    GONE = "gone"
    BOOKING = "booking"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert, ready to send.

    ``text`` is the title and the message on separate lines, as Telegram
    shows a message with a title. ``buttons`` are rows of inline buttons (a
    link to the booking page, and a "Book it" button when the caller gave a
    token for it); a notify service that cannot carry buttons still has the
    link in the message.
    """

    kind: AlertKind
    title: str
    message: str
    url: str | None = None
    buttons: tuple[tuple[InlineButton, ...], ...] = ()

    @property
    def text(self) -> str:
        """The title and the message, as one text."""
        return f"{self.title}\n{self.message}"


def booking_page_url(service_id: int, office_id: int) -> str:
    """The city's booking page for a service at an office."""
    return f"{BOOKING_PAGE}#/services/{service_id}/locations/{office_id}"


def alert_kind(event: WatchEvent) -> AlertKind:
    """Which kind of alert an event makes."""
    if isinstance(event, BookingEvent):
        return AlertKind.BOOKING
    return AlertKind.NEW if event.kind is SlotEventKind.NEW else AlertKind.GONE


# --- words ----------------------------------------------------------------------

_WEEKDAYS: Final = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "de": ("Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."),
}
_MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "new": "New appointment slot: {when}",
        "new_many": "{count} new appointment slots, the earliest {when}",
        "gone": "Slot taken: {when}",
        "gone_many": "{count} slots taken, the earliest {when}",
        "more": "… and {count} more",
        "booked": "Appointment booked: {when}",
        "booking_failed": "Booking failed",
        "booking_retry": "Booking attempt failed",
        "booking_step": "Booking: {state}",
        "office": "Office: {office}",
        "time": "Time: {when} (Munich time)",
        "services": "Services: {services}",
        "watch": "Watch: {watch}",
        "book_at": "Book at: {url}",
        "gone_note": "This slot is no longer offered.",
        "process": "Booking number: {process}",
        "deadline": (
            "Click the activation link in the city's e-mail by {deadline}, "
            "or the booking lapses."
        ),
        "deadline_soon": (
            "Click the activation link in the city's e-mail soon, "
            "or the booking lapses."
        ),
        "reason": "Reason: {reason}",
        "lapsed": "Activation lapsed: {when}",
        "lapsed_note": (
            "The city no longer holds this booking: its activation link was not "
            "used in time. The watch may book again."
        ),
        "no_more_tries": "No more automatic tries for this watch.",
        "later_tries": "A later look may try again.",
        "unanswered": "Booking not answered: {when}",
        "unanswered_note": (
            "The booking was sent but its answer was lost, and the reservation "
            "could not be released. The city may hold it (watch for its e-mail); "
            "the watch asks the city and books nothing else until it knows."
        ),
        "not_held": "No booking held: {when}",
        "not_held_note": (
            "The city holds no appointment from the unanswered booking. "
            "The watch may book again."
        ),
        "book_it": "Book it",
        "open_page": "Open booking page",
        "office_fallback": "office {id}",
        "service_fallback": "service {id}",
    },
    "de": {
        "new": "Neuer freier Termin: {when}",
        "new_many": "{count} neue freie Termine, der früheste {when}",
        "gone": "Termin vergeben: {when}",
        "gone_many": "{count} Termine vergeben, der früheste {when}",
        "more": "… und {count} weitere",
        "booked": "Termin gebucht: {when}",
        "booking_failed": "Buchung fehlgeschlagen",
        "booking_retry": "Buchungsversuch fehlgeschlagen",
        "booking_step": "Buchung: {state}",
        "office": "Standort: {office}",
        "time": "Zeit: {when} (Münchner Zeit)",
        "services": "Leistungen: {services}",
        "watch": "Suche: {watch}",
        "book_at": "Buchen unter: {url}",
        "gone_note": "Dieser Termin wird nicht mehr angeboten.",
        "process": "Vorgangsnummer: {process}",
        "deadline": (
            "Bitte den Aktivierungslink in der E-Mail der Stadt bis {deadline} "
            "anklicken, sonst verfällt die Buchung."
        ),
        "deadline_soon": (
            "Bitte den Aktivierungslink in der E-Mail der Stadt bald anklicken, "
            "sonst verfällt die Buchung."
        ),
        "reason": "Grund: {reason}",
        "lapsed": "Aktivierung verfallen: {when}",
        "lapsed_note": (
            "Die Stadt hält diese Buchung nicht mehr: Der Aktivierungslink wurde "
            "nicht rechtzeitig angeklickt. Die Suche kann erneut buchen."
        ),
        "no_more_tries": "Für diese Suche keine weiteren automatischen Versuche.",
        "later_tries": "Ein späterer Blick kann es erneut versuchen.",
        "unanswered": "Buchung ohne Antwort: {when}",
        "unanswered_note": (
            "Die Buchung wurde abgeschickt, aber ihre Antwort ging verloren, und "
            "die Reservierung ließ sich nicht freigeben. Die Stadt hält sie "
            "vielleicht (auf ihre E-Mail achten); die Suche fragt die Stadt und "
            "bucht nichts anderes, bis das klar ist."
        ),
        "not_held": "Keine Buchung gehalten: {when}",
        "not_held_note": (
            "Die Stadt hält keinen Termin aus der unbeantworteten Buchung. "
            "Die Suche kann erneut buchen."
        ),
        "book_it": "Buchen",
        "open_page": "Buchungsseite öffnen",
        "office_fallback": "Standort {id}",
        "service_fallback": "Leistung {id}",
    },
}

_STATES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "reserving": "reserving the slot",
        "reserved": "slot reserved",
        "preconfirming": "sending the booking",
        "idle": "waiting",
        "confirmed": "appointment confirmed",
        "cancelled": "booking cancelled",
    },
    "de": {
        "reserving": "Termin wird reserviert",
        "reserved": "Termin reserviert",
        "preconfirming": "Buchung wird abgeschickt",
        "idle": "wartet",
        "confirmed": "Termin bestätigt",
        "cancelled": "Buchung storniert",
    },
}


def _language(language: str) -> str:
    """``"de"``, ``"de-DE"`` and ``"de_AT"`` are German; anything else is English."""
    code = language.replace("_", "-").split("-", 1)[0].lower()
    return code if code in LANGUAGES else "en"


def format_local_time(moment: datetime, *, language: str = "en") -> str:
    """Return a moment in Munich time: ``Tue 24 Nov 2026, 08:30`` / ``Di., 24.11.2026, 08:30 Uhr``."""  # noqa: E501
    lang = _language(language)
    local = moment.astimezone(BERLIN)
    weekday = _WEEKDAYS[lang][local.weekday()]
    if lang == "de":
        return f"{weekday}, {local:%d.%m.%Y, %H:%M} Uhr"
    month = _MONTHS_EN[local.month - 1]
    return f"{weekday} {local.day} {month} {local.year}, {local:%H:%M}"


# --- formatting -------------------------------------------------------------------


def format_event(
    event: WatchEvent,
    *,
    catalogue: Catalogue | None = None,
    watch: Watch | None = None,
    language: str = "en",
    book_token: str | None = None,
    watch_names: Mapping[str, str] | None = None,
) -> Alert:
    """Return the alert for a watch event.

    Args:
        event: the slot or booking event.
        catalogue: the city's catalogue, for office and service names (ids
            are shown without it).
        watch: the event's watch, for the services of a booking event (its
            contact details are never read).
        language: ``"en"`` or ``"de"`` (``"de-DE"`` works too).
        book_token: for a new slot, the ``callback_data`` of a "Book it"
            button: a short opaque token (1-64 bytes) that the caller maps
            to the watch and the slot. No button without it.
        watch_names: names to show for watch ids (a host's titles of its
            watches); the id is shown for a watch without one.

    """
    lang = _language(language)
    titles = watch_names or {}
    if isinstance(event, SlotEvent):
        return _slot_alert(event, catalogue, lang, book_token, titles)
    services = watch.service_key if watch is not None else ()
    return _booking_alert(event, services, catalogue, lang, titles)


def format_slot_events(
    events: Sequence[SlotEvent],
    *,
    catalogue: Catalogue | None = None,
    language: str = "en",
    book_token: str | None = None,
    limit: int = 5,
    watch_names: Mapping[str, str] | None = None,
) -> Alert:
    """Return one alert for several slot events of one kind (one look's finds).

    A look often finds many slots at once; one message lists the earliest
    ``limit`` of them (and how many more), so that a chat is not flooded.
    The link and the "Book it" button (``book_token``) are for the earliest.
    One event gives the same alert as :func:`format_event`; ``watch_names``
    as there.

    Raises:
        ValueError: no events, or events of different kinds.

    """
    if not events:
        raise ValueError("no events")
    if len({e.kind for e in events}) != 1:
        raise ValueError("events of one kind only")
    ordered = sorted(events, key=lambda e: (e.start, e.office_id))
    lang = _language(language)
    titles = watch_names or {}
    first = ordered[0]
    if len(ordered) == 1:
        return _slot_alert(first, catalogue, lang, book_token, titles)
    words = _WORDS[lang]
    when = format_local_time(first.start, language=lang)
    lines = [
        f"\N{BULLET} {format_local_time(e.start, language=lang)}, "
        f"{_office(e.office_id, catalogue, lang)}"
        for e in ordered[:limit]
    ]
    if len(ordered) > limit:
        lines.append(words["more"].format(count=len(ordered) - limit))
    services = {s for e in ordered for s in e.services}
    if services:
        names = _services(sorted(services), catalogue, lang)
        lines.append(words["services"].format(services=names))
    watches = sorted({titles.get(e.watch_id, e.watch_id) for e in ordered})
    lines.append(words["watch"].format(watch=", ".join(watches)))
    if first.kind is SlotEventKind.GONE:
        return Alert(
            kind=AlertKind.GONE,
            title=words["gone_many"].format(count=len(ordered), when=when),
            message="\n".join(lines),
        )
    title = words["new_many"].format(count=len(ordered), when=when)
    return _new_slot_alert(words, title, lines, first, book_token)


def _new_slot_alert(
    words: dict[str, str],
    title: str,
    lines: list[str],
    event: SlotEvent,
    book_token: str | None,
) -> Alert:
    """The alert of new slots: the lines, the booking page and the buttons."""
    url = _url(event.services, event.office_id)
    buttons: list[InlineButton] = []
    if book_token is not None:
        buttons.append(InlineButton(words["book_it"], callback_data=book_token))
    if url is not None:
        buttons.append(InlineButton(words["open_page"], url=url))
        lines.append(words["book_at"].format(url=url))
    return Alert(
        kind=AlertKind.NEW,
        title=title,
        message="\n".join(lines),
        url=url,
        buttons=(tuple(buttons),) if buttons else (),
    )


def _slot_alert(
    event: SlotEvent,
    catalogue: Catalogue | None,
    lang: str,
    book_token: str | None,
    titles: Mapping[str, str],
) -> Alert:
    words = _WORDS[lang]
    when = format_local_time(event.start, language=lang)
    lines = [
        words["office"].format(office=_office(event.office_id, catalogue, lang)),
        words["time"].format(when=when),
    ]
    if event.services:
        names = _services(event.services, catalogue, lang)
        lines.append(words["services"].format(services=names))
    lines.append(
        words["watch"].format(watch=titles.get(event.watch_id, event.watch_id))
    )
    if event.kind is SlotEventKind.GONE:
        lines.append(words["gone_note"])
        return Alert(
            kind=AlertKind.GONE,
            title=words["gone"].format(when=when),
            message="\n".join(lines),
        )
    return _new_slot_alert(
        words, words["new"].format(when=when), lines, event, book_token
    )


def _booking_alert(
    event: BookingEvent,
    services: tuple[tuple[int, int], ...],
    catalogue: Catalogue | None,
    lang: str,
    titles: Mapping[str, str],
) -> Alert:
    words = _WORDS[lang]
    when = format_local_time(event.start, language=lang) if event.start else "?"
    lines: list[str] = []
    if event.office_id is not None:
        lines.append(
            words["office"].format(office=_office(event.office_id, catalogue, lang))
        )
    if event.start is not None:
        lines.append(words["time"].format(when=when))
    if services:
        lines.append(
            words["services"].format(services=_services(services, catalogue, lang))
        )
    lines.append(
        words["watch"].format(watch=titles.get(event.watch_id, event.watch_id))
    )
    title, more = _booking_outcome(event, words, when, lang)
    lines.extend(more)
    return Alert(kind=AlertKind.BOOKING, title=title, message="\n".join(lines))


def _booking_outcome(
    event: BookingEvent, words: Mapping[str, str], when: str, lang: str
) -> tuple[str, list[str]]:
    """The booking alert's title and the lines that say what happened."""
    state = event.state
    lines: list[str] = []
    if state is BookingState.BOOKED:
        title = words["booked"].format(when=when)
        if event.process_id is not None:
            lines.append(words["process"].format(process=event.process_id))
        if event.activation_deadline is not None:
            deadline = format_local_time(event.activation_deadline, language=lang)
            lines.append(words["deadline"].format(deadline=deadline))
        else:
            lines.append(words["deadline_soon"])
    elif state is BookingState.PRECONFIRMING and event.released is False:
        title = words["unanswered"].format(when=when)
        if event.process_id is not None:
            lines.append(words["process"].format(process=event.process_id))
        lines.append(words["unanswered_note"])
    elif event.reason == UNANSWERED:
        title = words["not_held"].format(when=when)
        lines.append(words["not_held_note"])
    elif state is BookingState.LAPSED:
        title = words["lapsed"].format(when=when)
        if event.process_id is not None:
            lines.append(words["process"].format(process=event.process_id))
        lines.append(words["lapsed_note"])
    elif state is BookingState.FAILED or event.reason is not None:
        permanent = state is BookingState.FAILED
        title = words["booking_failed" if permanent else "booking_retry"]
        if event.reason:
            lines.append(words["reason"].format(reason=event.reason))
        lines.append(words["no_more_tries" if permanent else "later_tries"])
    else:
        name = _STATES[lang].get(str(state), str(state))
        title = words["booking_step"].format(state=name)
    return title, lines


def _office(office_id: int, catalogue: Catalogue | None, lang: str) -> str:
    office = catalogue.office(office_id) if catalogue is not None else None
    if office is None:
        return _WORDS[lang]["office_fallback"].format(id=office_id)
    return office.name


def _services(
    services: Iterable[tuple[int, int]], catalogue: Catalogue | None, lang: str
) -> str:
    names = []
    for service_id, count in services:
        service = catalogue.service(service_id) if catalogue is not None else None
        name = (
            service.name
            if service is not None
            else _WORDS[lang]["service_fallback"].format(id=service_id)
        )
        names.append(f"{count} \N{MULTIPLICATION SIGN} {name}" if count > 1 else name)
    return ", ".join(names)


def _url(services: tuple[tuple[int, int], ...], office_id: int) -> str | None:
    """The booking page of the first service (the city's page takes one)."""
    if not services:
        return None
    return booking_page_url(services[0][0], office_id)
