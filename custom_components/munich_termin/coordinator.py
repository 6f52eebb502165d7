"""The coordinator: Home Assistant's clock driving the library's watch engine.

One coordinator serves every watch of the entry. Each refresh runs
``Watcher.poll()`` - exactly the looks that are due - and sets the next
refresh to the moment the engine asks for, so the engine's pacing (looks just
after the city's per-minute cron, denser inside release windows, the request
budget, the back-off after a block) stays the library's. The data are the
watches' statuses keyed by subentry id, which is also the watch id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import json
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from mta_client import (
    Catalogue,
    MTABlockedError,
    MTABudgetExceededError,
    MTAClient,
    MTAConnectionError,
    MTAError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAServerError,
    MTAValidationError,
)
from mta_client.exceptions import MTAProtocolError
from mta_client.store import StoreError
from mta_client.watch import BookingEvent, SlotEvent, SlotEventKind, Watch
from mta_client.watcher import Watcher

from .const import (
    ACTIVATION_REMINDER_SECONDS,
    ATTR_OFFER,
    ATTR_OFFICE,
    ATTR_OFFICE_ID,
    ATTR_START,
    CONF_BASE_URL,
    DOMAIN,
    EVENT_ACTIVATION_DUE,
    EVENT_ACTIVATION_LAPSED,
    EVENT_BOOKED,
    EVENT_BOOKING_FAILED,
    EVENT_SLOT_FOUND,
    EVENT_SLOT_GONE,
    LOGGER,
    MAINTENANCE_ISSUE_AFTER,
    MIN_POLL_DELAY,
)
from .offers import offer_token
from .watches import office_label

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from mta_client.watch import WatchEvent
    from mta_client.watcher import PollError, PollResult, WatchStatus

    from .alerts import AlertForwarder

STORAGE_VERSION = 1
ISSUE_BLOCKED = "ip_blocked"
ISSUE_MAINTENANCE = "maintenance"
ISSUE_API_CHANGED = "api_changed"
ISSUE_TELEGRAM = "telegram_token_rejected"
ISSUE_CONTACT = "watch_contact_invalid"
_ENTRY_WIDE = (
    MTABlockedError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTABudgetExceededError,
    MTAConnectionError,
)


def signal_event(entry_id: str) -> str:
    """The dispatcher signal that carries a watch's events to its entities."""
    return f"{DOMAIN}_{entry_id}_event"


@dataclass
class MunichTerminData:
    """What a loaded entry holds (``entry.runtime_data``)."""

    client: MTAClient
    watcher: Watcher
    coordinator: MunichTerminCoordinator
    watches: dict[str, Watch] = field(default_factory=dict)
    alerts: AlertForwarder | None = None


type MunichTerminConfigEntry = ConfigEntry[MunichTerminData]


class HAStateStore:
    """The library's StateStore on Home Assistant's Store (``.storage``).

    The state holds booking credentials; the Store file is private to Home
    Assistant's config directory.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Keep the state under ``munich_termin.<entry id>``."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", private=True
        )

    async def load(self) -> dict[str, Any]:
        """Return the saved state, or an empty dict."""
        try:
            data = await self._store.async_load()
        except (OSError, ValueError) as err:
            raise StoreError(str(err)) from err
        return data or {}

    async def save(self, state: dict[str, Any]) -> None:
        """Save a copy (the engine keeps changing its dict while we write)."""
        await self._store.async_save(json.loads(json.dumps(state)))

    async def async_remove(self) -> None:
        """Delete the saved state (the entry is gone)."""
        await self._store.async_remove()


TimedClient = MTAClient
"""The entry's client: the library's own.

It times each new captcha token itself (``MTAClient.last_captcha_seconds``,
which the diagnostic sensor shows), so nothing of the client is overridden.
"""


class MunichTerminCoordinator(DataUpdateCoordinator[dict[str, "WatchStatus"]]):
    """Runs the watch engine for every watch of the entry."""

    config_entry: MunichTerminConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: MunichTerminConfigEntry,
        client: MTAClient,
        watches: list[Watch],
    ) -> None:
        """Build the engine (nothing is sent before the first refresh)."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=timedelta(seconds=MIN_POLL_DELAY),
        )
        self.client = client
        self.store = HAStateStore(hass, entry.entry_id)
        self.watcher = Watcher(
            client,
            store=self.store,
            on_event=self._on_engine_event,
            task_factory=self._create_task,
        )
        for watch in watches:
            self.watcher.add(watch)
        self.catalogue: Catalogue | None = None
        self.failed: set[str] = set()
        self.service_device_id: str | None = None
        self.engine_delay: float | None = None
        """Seconds until the engine wants to be polled again (its last answer)."""
        self.reachable: bool | None = None
        self.last_success: datetime | None = None
        self.last_errors: tuple[PollError, ...] = ()
        self._requests: deque[tuple[float, int]] = deque()
        self._recent: deque[WatchEvent] = deque(maxlen=256)
        self._polling = False
        self._maintenance_since: float | None = None
        self._reminders: dict[str, tuple[datetime, CALLBACK_TYPE]] = {}
        # Events of the first look come before the event entities exist.
        self._held: list[tuple[str, str, dict[str, Any]]] | None = []

    # --- engine hooks ----------------------------------------------------------

    def _create_task(
        self, coro: Coroutine[Any, Any, Any], name: str
    ) -> Any:  # asyncio.Task: bookings end with the entry
        return self.config_entry.async_create_background_task(
            self.hass, coro, f"{DOMAIN} {name}"
        )

    def _on_engine_event(self, event: WatchEvent) -> None:
        """An event outside a poll (a booking in the background) is shown at once."""
        if self._polling:
            return  # it comes with the poll's result
        self._handle_event(event)
        if isinstance(event, BookingEvent):
            self.data = {**(self.data or {}), **self.watcher.statuses()}
            self._schedule_reminders()
            self.async_update_listeners()

    # --- refresh ---------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Read the stored state, load the catalogue, resume bookings."""
        try:
            try:
                await self.watcher.load()
            except MTAValidationError:
                # A watch's person's data no longer suits an office (the city
                # changed its rules): the others go on without it.
                await self._drop_unsuitable_watches()
                await self.watcher.load()
            # Cached by the client since the engine's load: costs no request.
            self.catalogue = await self.client.get_catalogue()
            for watch in self.watcher.watches:
                # A watch that was fixed runs again: its notice goes.
                ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_CONTACT}_{watch.id}")
        except StoreError as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN, translation_key="store_failed"
            ) from err
        except MTAError as err:
            raise _update_failed(err, None) from err

    async def _drop_unsuitable_watches(self) -> None:
        catalogue = await self.client.get_catalogue()
        for watch in self.watcher.watches:
            try:
                watch.check_contact(catalogue)
            except MTAValidationError as err:
                subentry = self.config_entry.subentries[watch.id]
                LOGGER.warning(
                    "Watch %s: the person's data no longer suits an office (%s)",
                    subentry.title,
                    err.field,
                )
                self.watcher.remove(watch.id)
                self.config_entry.runtime_data.watches.pop(watch.id, None)
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    f"{ISSUE_CONTACT}_{watch.id}",
                    is_fixable=False,
                    severity=ir.IssueSeverity.ERROR,
                    translation_key=ISSUE_CONTACT,
                    translation_placeholders={
                        "watch": subentry.title,
                        "field": err.field,
                    },
                )

    async def _async_update_data(self) -> dict[str, WatchStatus]:
        """Do what is due now; come back when the engine says."""
        self._polling = True
        try:
            result = await self.watcher.poll()
        except StoreError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="store_failed"
            ) from err
        finally:
            self._polling = False
        delay = max(result.delay, MIN_POLL_DELAY)
        self.engine_delay = delay
        # The coordinator schedules from int(loop.time()): add the fraction
        # it drops, so the next refresh comes at next_due, not up to 1 s early.
        self.update_interval = timedelta(seconds=delay + self.hass.loop.time() % 1)
        self._count_requests()
        for event in result.events:
            self._handle_event(event)
        self.last_errors = result.errors
        entry_wide = self._entry_wide_error(result)
        self._update_reachable(result)
        self._update_issues(result)
        if entry_wide is not None:
            raise _update_failed(entry_wide, delay)
        self._update_failed_watches(result)
        self.last_success = dt_util.utcnow()
        statuses = dict(result.statuses)
        self._schedule_reminders(statuses)
        return statuses

    def _entry_wide_error(self, result: PollResult) -> MTAError | None:
        """The error that hit every watch at once, if any."""
        for problem in result.errors:
            if isinstance(problem.error, _ENTRY_WIDE) or problem.what in (
                "catalogue",
                "captcha",
            ):
                return problem.error
        return None

    def _update_failed_watches(self, result: PollResult) -> None:
        failed = {
            watch_id for problem in result.errors for watch_id in problem.watch_ids
        }
        for watch_id in failed - self.failed:
            LOGGER.info("Watch %s: looking for slots failed; unavailable", watch_id)
        for watch_id in self.failed - failed:
            LOGGER.info("Watch %s: looking for slots works again", watch_id)
        self.failed = failed

    def _update_reachable(self, result: PollResult) -> None:
        down = any(
            isinstance(p.error, MTAConnectionError | MTAServerError)
            for p in result.errors
        )
        if down:
            self.reachable = False
        elif result.requests or result.errors:
            self.reachable = True

    def _count_requests(self) -> None:
        now = dt_util.utcnow().timestamp()
        self._requests.append((now, self.client.budget.sent))
        while len(self._requests) > 1 and self._requests[1][0] <= now - 3600:
            self._requests.popleft()

    @property
    def requests_last_hour(self) -> int:
        """Requests sent to the city in the last hour (as far as recorded)."""
        if not self._requests:
            return 0
        first_at, first = self._requests[0]
        now = dt_util.utcnow().timestamp()
        baseline = first if first_at <= now - 3600 else 0
        return self.client.budget.sent - baseline

    # --- events ----------------------------------------------------------------

    def _handle_event(self, event: WatchEvent) -> None:
        """Show an event once: on the event entity and through the alerts."""
        if any(seen is event for seen in self._recent):
            return
        self._recent.append(event)
        kind, attributes = self.describe_event(event)
        if kind is not None:
            self._dispatch(event.watch_id, kind, attributes)
        forwarder = self.config_entry.runtime_data.alerts
        if forwarder is not None:
            forwarder.handle_event(
                event,
                watch=next(
                    (w for w in self.watcher.watches if w.id == event.watch_id), None
                ),
                catalogue=self.catalogue,
            )

    def describe_event(self, event: WatchEvent) -> tuple[str | None, dict[str, Any]]:
        """The event entity's type and attributes for a library event."""
        attributes: dict[str, Any] = {}
        office_id = event.office_id
        if office_id is not None:
            attributes[ATTR_OFFICE_ID] = office_id
            attributes[ATTR_OFFICE] = office_label(self.catalogue, office_id)
        if event.start is not None:
            attributes[ATTR_START] = event.start.isoformat()
        if isinstance(event, SlotEvent):
            if event.kind is SlotEventKind.NEW:
                attributes[ATTR_OFFER] = offer_token(
                    event.watch_id, event.office_id, event.start
                )
                return EVENT_SLOT_FOUND, attributes
            return EVENT_SLOT_GONE, attributes
        state = str(event.state)
        if state == "booked":
            if event.activation_deadline is not None:
                attributes["activation_deadline"] = (
                    event.activation_deadline.isoformat()
                )
            return EVENT_BOOKED, attributes
        if state == "lapsed":
            # The city no longer holds it: the activation link was not used
            # in time (or the booking was cancelled elsewhere).
            attributes["process_id"] = event.process_id
            attributes["reason"] = event.reason
            return EVENT_ACTIVATION_LAPSED, attributes
        if state == "failed" or (state == "idle" and event.reason):
            attributes["reason"] = event.reason
            return EVENT_BOOKING_FAILED, attributes
        return None, attributes

    def _dispatch(self, watch_id: str, kind: str, attributes: dict[str, Any]) -> None:
        """Hand an event to the event entities (held until they exist)."""
        if self._held is not None:
            self._held.append((watch_id, kind, attributes))
            return
        async_dispatcher_send(
            self.hass,
            signal_event(self.config_entry.entry_id),
            watch_id,
            kind,
            attributes,
        )

    @callback
    def async_entities_ready(self) -> None:
        """The platforms are set up: show the events of the first look."""
        held, self._held = self._held or [], None
        for item in held:
            self._dispatch(*item)

    # --- activation reminders ----------------------------------------------------

    @callback
    def _schedule_reminders(
        self, statuses: dict[str, WatchStatus] | None = None
    ) -> None:
        """Remind of the city's activation link before its deadline."""
        statuses = statuses if statuses is not None else (self.data or {})
        wanted: dict[str, datetime] = {}
        for watch_id, status in statuses.items():
            deadline = status.booking.activation_deadline
            if str(status.booking.state) == "booked" and deadline is not None:
                wanted[watch_id] = deadline
        for watch_id in list(self._reminders):
            if self._reminders[watch_id][0] != wanted.get(watch_id):
                self._reminders.pop(watch_id)[1]()
        for watch_id, deadline in wanted.items():
            if watch_id in self._reminders or deadline <= dt_util.utcnow():
                continue
            at = max(
                deadline - timedelta(seconds=ACTIVATION_REMINDER_SECONDS),
                dt_util.utcnow(),
            )
            self._reminders[watch_id] = (
                deadline,
                async_track_point_in_utc_time(
                    self.hass, self._reminder(watch_id, deadline), at
                ),
            )

    def _reminder(
        self, watch_id: str, deadline: datetime
    ) -> Callable[[datetime], None]:
        @callback
        def remind(_now: datetime) -> None:
            # Reminded once per deadline: keep it, with nothing left to cancel.
            self._reminders[watch_id] = (deadline, lambda: None)
            self._dispatch(
                watch_id,
                EVENT_ACTIVATION_DUE,
                {"activation_deadline": deadline.isoformat()},
            )

        return remind

    @callback
    def async_shutdown_reminders(self) -> None:
        """Cancel pending reminders (the entry unloads)."""
        for _deadline, cancel in self._reminders.values():
            cancel()
        self._reminders.clear()

    # --- repairs -------------------------------------------------------------------

    def _update_issues(self, result: PollResult) -> None:
        errors = [p.error for p in result.errors]
        looked = bool(result.requests)
        placeholders = {"base_url": str(self.config_entry.data.get(CONF_BASE_URL, ""))}
        self._issue(
            ISSUE_BLOCKED,
            active=any(isinstance(e, MTABlockedError) for e in errors),
            clear=looked,
            placeholders=placeholders,
        )
        changed = [
            e
            for e in errors
            if isinstance(e, MTAInvalidResponseError | MTAProtocolError)
        ]
        self._issue(
            ISSUE_API_CHANGED,
            active=bool(changed),
            clear=looked,
            placeholders={**placeholders, "error": type(changed[0]).__name__}
            if changed
            else placeholders,
        )
        maintenance = any(isinstance(e, MTAMaintenanceError) for e in errors)
        now = dt_util.utcnow().timestamp()
        if maintenance:
            self._maintenance_since = self._maintenance_since or now
        elif looked:
            self._maintenance_since = None
        long = (
            self._maintenance_since is not None
            and now - self._maintenance_since > MAINTENANCE_ISSUE_AFTER
        )
        self._issue(
            ISSUE_MAINTENANCE, active=long, clear=looked, placeholders=placeholders
        )

    def _issue(
        self,
        issue_id: str,
        *,
        active: bool,
        clear: bool,
        placeholders: dict[str, str],
    ) -> None:
        if active:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=issue_id,
                translation_placeholders=placeholders,
            )
        elif clear:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)


def _update_failed(err: MTAError, delay: float | None) -> UpdateFailed:
    """The coordinator's error for a failed look, translated."""
    retry_after: float | None = delay
    if isinstance(err, MTABlockedError):
        key = "blocked"
    elif isinstance(err, MTAMaintenanceError):
        key = "maintenance"
    elif isinstance(err, MTARateLimitError | MTABudgetExceededError):
        key = "rate_limited"
        retry_after = max(delay or 0.0, float(getattr(err, "retry_after", 0) or 0))
    elif isinstance(err, MTAConnectionError):
        key = "cannot_connect"
    elif isinstance(err, MTAInvalidResponseError | MTAProtocolError):
        key = "invalid_response"
    else:
        key = "update_failed"
    minutes = f"{(retry_after or 0) / 60:.0f}"
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"error": type(err).__name__, "minutes": minutes},
        retry_after=retry_after,
    )
